// `npm run upgrade` (issue 21): moves the stack's database to another PostgreSQL major version without
// touching the old data directory, which is kept until you remove it. Through the docker CLI against the
// stack's engine (the stack file's dockerHost: ssh:// for odin), as `npm run restore` does.
//
//   npm run upgrade -- [--stack dev|odin] --to IMAGE
//
// 1. Reads the running Postgres container: its data directory (the mount), PG_VERSION, database and role;
//    the new image's major (PG_MAJOR, else `postgres --version`). The same major: nothing to do.
// 2. Stops the app (nothing writes after the dump), takes a dump with the backup agent and requires that
//    it passed its check (restored into a scratch database, the same row counts).
// 3. Builds the new data directory beside the old one (`postgres-upgrade-<major>`) with a temporary server
//    of the new image on no network, restores the dump into it and compares every table's rows with the
//    dump's record; carries ALTER SYSTEM's settings (postgresql.auto.conf) across.
// 4. Stops the old server gracefully and switches: `postgres` -> `postgres-<old major>-<stamp>` (kept),
//    `postgres-upgrade-<major>` -> `postgres`. Starts the app again (ready once the database is back).
// 5. Tells you to set `postgresImage` and run `npm run up`, which replaces the Postgres container with the
//    new image on the new data directory (the major check then passes), and how to undo.
// Until step 4 the old server runs untouched; any failure before it leaves everything as it was, the
// temporary server and the new directory removed, the app started again.
//
// Exit status: 0 done; 1 refused or failed (the message says why and what to do); 2 bad arguments.
import { randomBytes } from "node:crypto";
import { agent, parseList, resultOf } from "./backups";
import { withDeployLock } from "./deployLock";
import {
    Refusal,
    UsageError,
    docker,
    dockerScript,
    eachArg,
    findApp,
    refusalExit,
    runAsProgram,
    stackName,
    stackTarget,
    upCommand,
    type StackTarget,
} from "./target";
import { configCommand } from "../config";
import { PGDATA_SUBDIR } from "../components/postgresChanges";
import { BACKUP_MOUNT } from "../components/backups";

export interface UpgradeOptions {
    stack: string;
    to: string;
}

export function parseUpgradeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): UpgradeOptions {
    let stack = env.PULUMI_STACK || "dev";
    let to: string | undefined;
    eachArg(
        argv,
        (arg, value) => {
            if (arg === "--stack") stack = value();
            else if (arg === "--to") to = value();
            else throw new UsageError(`unexpected argument ${arg}`);
        },
        env,
    );
    stackName(stack);
    if (!to) throw new UsageError("--to IMAGE is required: the PostgreSQL image of the new major version");
    return { stack, to };
}

const MOUNT = "/var/lib/postgresql/data";

/** Every table's rows (`schema.table|rows`), as the backup agent counts them (agent/main.ts, COUNT_SQL). */
export const COUNT_ROWS = `SELECT n.nspname || '.' || c.relname || '|' || (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1`;

/** `a|1` lines to {a: 1}. */
export function parseCounts(stdout: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const line of stdout.trim().split("\n").filter(Boolean)) {
        const at = line.lastIndexOf("|");
        out[line.slice(0, at)] = Number(line.slice(at + 1));
    }
    return out;
}

/** Tables whose rows differ between the dump's record and the new cluster, as `table: want -> got`. */
export function countDifferences(want: Record<string, number>, got: Record<string, number>): string[] {
    const names = [...new Set([...Object.keys(want), ...Object.keys(got)])].sort();
    return names.filter((n) => want[n] !== got[n]).map((n) => `${n}: ${want[n] ?? "absent"} -> ${got[n] ?? "absent"}`);
}

async function must(
    t: StackTarget,
    args: string[],
    what: string,
    timeoutMs = 120_000,
    env: Record<string, string> = {},
): Promise<string> {
    const r = await docker(t.host, args, timeoutMs, env);
    if (r.code !== 0) throw new Refusal(`${what} failed: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout.trim();
}

async function upgrade(opts: UpgradeOptions, out: (line: string) => void): Promise<number> {
    const t = stackTarget(opts.stack);
    const say = (line: string) => out(`upgrade: ${line}`);
    const pg = t.names.postgres;
    const info = await docker(t.host, ["container", "inspect", pg]);
    if (info.code !== 0)
        throw new Refusal(`no Postgres container ${pg} on ${t.host ?? "the local engine"}: bring the stack up first`);
    const c = JSON.parse(info.stdout)[0];
    if (!c.State.Running) throw new Refusal(`${pg} is not running: start it (docker start ${pg}) first`);
    const dataDir: string | undefined = c.Mounts.find((m: any) => m.Destination === MOUNT)?.Source;
    if (!dataDir) throw new Refusal(`${pg} has no data directory mounted at ${MOUNT}`);
    const env = Object.fromEntries(
        (c.Config.Env as string[]).map((e) => [e.split("=")[0], e.slice(e.indexOf("=") + 1)]),
    );
    const [user, db] = [env.POSTGRES_USER, env.POSTGRES_DB];
    const from = await must(t, ["exec", pg, "cat", `${MOUNT}/${PGDATA_SUBDIR}/PG_VERSION`], "reading PG_VERSION");

    if ((await docker(t.host, ["image", "inspect", opts.to])).code !== 0) {
        say(`pulling ${opts.to}`);
        await must(t, ["pull", opts.to], `pulling ${opts.to}`, 0);
    }
    const imageEnv = await must(
        t,
        ["image", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", opts.to],
        "inspecting the image",
    );
    let to = /^PG_MAJOR=(\d+)/m.exec(imageEnv)?.[1];
    if (!to) {
        const v = await must(
            t,
            ["run", "--rm", "--network", "none", "--entrypoint", "postgres", opts.to, "--version"],
            "postgres --version",
        );
        to = /(\d+)/.exec(v)?.[1];
    }
    if (!to) throw new Refusal(`cannot tell the PostgreSQL major version of ${opts.to}`);
    if (to === from)
        throw new Refusal(
            `the data directory is already PostgreSQL ${from}: nothing to upgrade; set postgresImage ${opts.to} (${configCommand(`set postgresImage ${opts.to}`, opts.stack)}) and run ${upCommand(opts.stack)}`,
        );
    const parent = dataDir.replace(/\/[^/]+$/, "");
    const base = dataDir.slice(parent.length + 1);
    const stamp = new Date()
        .toISOString()
        .replace(/[-:]/g, "")
        .replace(/\.\d+Z$/, "Z");
    const next = `${base}-upgrade-${to}`;
    const kept = `${base}-${from}-${stamp}`;
    const backup = await docker(t.host, ["container", "inspect", "--format", "{{.Config.User}}", t.names.backup]);
    if (backup.code !== 0)
        throw new Refusal(
            `no backup container ${t.names.backup}: the upgrade needs its checked dump; run ${upCommand(opts.stack)} first`,
        );
    const owner = backup.stdout.trim() || "0:0";
    const backupDir = JSON.parse(
        await must(
            t,
            ["container", "inspect", "--format", "{{json .Mounts}}", t.names.backup],
            "inspecting the backup container",
        ),
    ).find((m: any) => m.Destination === BACKUP_MOUNT)?.Source as string;
    if (!backupDir)
        throw new Refusal(
            `${t.names.backup} has no backup directory mounted at ${BACKUP_MOUNT}: run ${upCommand(opts.stack)} first`,
        );
    say(
        `stack ${opts.stack} on ${t.host ?? "the local engine"}: ${dataDir} is PostgreSQL ${from}, ${opts.to} is PostgreSQL ${to}`,
    );

    // A helper on the data directory's parent, as root: the directories are the server's, not this machine's.
    const onParent = (script: string, what: string) =>
        must(
            t,
            ["run", "--rm", "--network", "none", "--entrypoint", "sh", "-v", `${parent}:/p`, opts.to, "-c", script],
            what,
        );
    const clash = await onParent(
        `for d in ${next} ${kept}; do [ ! -e "/p/$d" ] || echo "$d"; done`,
        "looking at the data directory's parent",
    );
    if (clash)
        throw new Refusal(
            `${parent}/${clash.split("\n")[0]} exists already: an earlier upgrade left it; look at it and remove it, nothing was changed`,
        );

    // Found by its labels: behind Caddy each version of the app has a name of its own.
    const appName = (await findApp(t)) ?? t.names.app;
    const app = await docker(t.host, ["inspect", "--format", "{{.State.Running}}", appName]);
    const appRunning = app.code === 0 && app.stdout.trim() === "true";
    const temp = `${pg}-upgrade`;
    let switched = false;
    try {
        if (appRunning) {
            await must(t, ["stop", "-t", "10", appName], "stopping the app");
            say("app stopped: nothing writes to the database from here");
        }
        const dumped = await agent(t, "once", "before-upgrade");
        const result = resultOf(dumped.stdout);
        if (!result || result[0] !== "passed")
            throw new Refusal(
                `the dump before the upgrade did not pass its check (${result?.join(" ") ?? "no word from the agent"}): ${dumped.stderr.trim()}; nothing was changed`,
            );
        const file = result[1];
        const record = parseList((await agent(t, "list")).stdout).find((d) => d.file === file);
        const want = record?.tables ?? {};
        say(
            `checked dump ${file} (${Object.values(want).reduce((a, b) => a + b, 0)} rows in ${Object.keys(want).length} tables)`,
        );

        await onParent(`mkdir "/p/${next}" && chown ${owner} "/p/${next}"`, "creating the new data directory");
        await must(
            t,
            [
                "run",
                "-d",
                "--name",
                temp,
                "--network",
                "none",
                "-e",
                `POSTGRES_USER=${user}`,
                "-e",
                `POSTGRES_DB=${db}`,
                // Only for initdb, from the CLI's environment (never argv): the stack's password step sets the
                // role's password when the `up` starts the new container.
                "-e",
                "POSTGRES_PASSWORD",
                "-e",
                `PGDATA=${MOUNT}/${PGDATA_SUBDIR}`,
                "-v",
                `${parent}/${next}:${MOUNT}`,
                "-v",
                `${backupDir}:/backups:ro`,
                opts.to,
            ],
            "starting the temporary server",
            120_000,
            { POSTGRES_PASSWORD: randomBytes(18).toString("hex") },
        );
        const deadline = Date.now() + 180_000;
        while (
            (await docker(t.host, ["exec", temp, "pg_isready", "-h", "127.0.0.1", "-U", user, "-d", db])).code !== 0
        ) {
            if (Date.now() > deadline)
                throw new Refusal(`the temporary server did not start within 180 s: see docker logs ${temp}`);
            await new Promise((r) => setTimeout(r, 500));
        }
        // The roles first (issue 24: the app's group and login roles, the backup and reader roles): a dump
        // holds the grants to them, not the roles, and pg_restore --exit-on-error stops at the first GRANT to
        // a role the new cluster lacks. pg_dumpall --roles-only on the running server, into the new one
        // through a pipe (the SCRAM verifiers never reach a file or an argument); the owner exists there
        // already (its CREATE ROLE fails, its ALTER ROLE applies).
        const roles = await carryRoles(t.host, pg, temp, user);
        if (roles.code !== 0)
            throw new Refusal(
                `copying the roles into the new data directory failed: ${roles.stderr.trim().slice(-500)}; nothing was switched`,
            );
        await must(
            t,
            ["exec", temp, "pg_restore", "--exit-on-error", "-U", user, "-d", db, `/backups/${file}`],
            "restoring the dump into the new data directory",
            0,
        );
        await must(t, ["exec", temp, "psql", "-X", "-q", "-U", user, "-d", db, "-c", "ANALYZE"], "ANALYZE");
        const got = parseCounts(
            await must(
                t,
                ["exec", temp, "psql", "-X", "-tA", "-U", user, "-d", db, "-c", COUNT_ROWS],
                "counting the rows",
            ),
        );
        const diff = countDifferences(want, got);
        if (diff.length > 0)
            throw new Refusal(
                `the new data directory does not hold the dump's rows (${diff.join("; ")}); nothing was switched`,
            );
        say(`restored into ${parent}/${next} on PostgreSQL ${to}: every table's rows as in the dump`);
        await must(t, ["stop", "-t", "60", temp], "stopping the temporary server");

        // The switch: from here the old server is down until `npm run up` starts the new one.
        await must(t, ["stop", "-t", "60", pg], "stopping the old server");
        await onParent(
            [
                "set -e",
                `old="/p/${base}/${PGDATA_SUBDIR}/postgresql.auto.conf"`,
                `[ ! -s "$old" ] || cp -p "$old" "/p/${next}/${PGDATA_SUBDIR}/postgresql.auto.conf"`,
                `mv "/p/${base}" "/p/${kept}"`,
                `mv "/p/${next}" "/p/${base}"`,
            ].join("\n"),
            "switching the data directories",
        );
        switched = true;
        say(`switched: ${dataDir} is the PostgreSQL ${to} directory; the old one is kept as ${parent}/${kept}`);
    } finally {
        await docker(t.host, ["rm", "-f", temp]);
        if (!switched) {
            await docker(t.host, [
                "run",
                "--rm",
                "--network",
                "none",
                "--entrypoint",
                "rm",
                "-v",
                `${parent}:/p`,
                opts.to,
                "-rf",
                `/p/${next}`,
            ]);
        }
        if (appRunning) {
            const start = await docker(t.host, ["start", appName]);
            if (start.code !== 0)
                out(`upgrade: could not start the app: ${start.stderr.trim()} (docker start ${appName})`);
            else
                say(
                    switched
                        ? `app started: ready again once \`${upCommand(opts.stack)}\` brings the database back`
                        : "app started again; nothing was changed",
                );
        }
    }
    say(
        `now: ${configCommand(`set postgresImage ${opts.to}`, opts.stack)}, then ${upCommand(opts.stack)} (the database is down until it runs)`,
    );
    say(
        `to undo before that up: docker stop ${appName}; move ${parent}/${kept} back to ${dataDir} (the new one aside); docker start ${pg} ${appName}. After it: the same, with postgresImage set back, then ${upCommand(opts.stack)}`,
    );
    return 0;
}

export async function main(argv: string[], out = (l: string) => process.stdout.write(`${l}\n`)): Promise<number> {
    let opts: UpgradeOptions;
    try {
        opts = parseUpgradeArgs(argv);
    } catch (err) {
        process.stderr.write(`${(err as Error).message}\nusage: npm run upgrade -- [--stack dev|odin] --to IMAGE\n`);
        return 2;
    }
    try {
        // The deploy lock from start to end: no up, restore or rollback changes the stack under it.
        return await withDeployLock(stackTarget(opts.stack), "upgrade", () => upgrade(opts, out));
    } catch (err) {
        return refusalExit("upgrade", err);
    }
}

runAsProgram(module, main);

/**
 * The old cluster's roles into the new one: `pg_dumpall --roles-only` in `from`, piped into psql in `to`
 * (both through their local sockets as `user`). psql goes on past the one expected error (the owner's
 * CREATE ROLE: initdb made it); the result is judged by the restore that follows (a missing role fails it).
 */
export async function carryRoles(
    host: string | undefined,
    from: string,
    to: string,
    user: string,
): Promise<{ code: number; stderr: string }> {
    const r = await dockerScript(
        host,
        'set -o pipefail; docker exec "$FROM" pg_dumpall --roles-only -U "$PGU" | docker exec -i "$TO" psql -X -q -U "$PGU" -d postgres >/dev/null',
        [],
        { FROM: from, TO: to, PGU: user },
    );
    return {
        code: r.code,
        // The owner's own CREATE ROLE is the one error expected.
        stderr: r.stderr
            .split("\n")
            .filter((l) => l.trim() && !/role "[^"]+" already exists/.test(l))
            .join("\n"),
    };
}
