// `npm run backups` and `npm run restore` (issue 14): the stack's backups seen and used from this machine,
// through the docker CLI and the stack's backup container (agent/main.ts). For odin the docker
// CLI reaches the server the way the stack does: the stack file's dockerHost (ssh://...), your ssh config.
//
//   npm run backups -- [now] [--stack dev|odin] [--json]     (`now`: one scheduled pass first)
//   npm run restore -- [--stack dev|odin] [--from FILE|latest] [--force] [--skip-safety-dump] [--lock-wait SECONDS]
//
// A restore holds the stack's deploy lock (scripts/deployLock.ts) from start to end: no `up` or other
// restore changes the stack under it.
//
// Exit status: 0 done; 1 refused or failed (the message says why and what to do); 2 bad arguments.
import * as path from "node:path";
import { AGENT_ENTRYPOINT, SCHEDULE_LABEL } from "../components/backups";
import { SECRETS_IN_CONTAINER } from "../components/secretFiles";
import { longestGapSeconds, parseSchedule } from "../components/backupSchedule";
import { APP_PORT, CONTAINER_NAMES } from "../components/names";
import { parseDuration, withDeployLock } from "./deployLock";
import {
    docker,
    dockerScript,
    eachArg,
    findApp,
    Refusal,
    refusalExit,
    runAsProgram,
    stackName,
    stackTarget,
    UsageError,
    upCommand,
    type StackTarget,
} from "./target";

export { Refusal, stackTarget, UsageError, type StackTarget };

/** One dump as the agent lists it (its record beside the dump). */
export interface DumpRecord {
    file: string;
    createdAt?: string;
    sizeBytes: number;
    check: "passed" | "failed" | "unchecked";
    reason?: string;
    checkedAt?: string;
    dumpMs?: number;
    checkMs?: number;
    tables?: Record<string, number>;
}

export interface Options {
    command: "list" | "restore";
    /** list: run one scheduled pass first (`npm run backups -- now`). */
    now?: boolean;
    stack: string;
    json: boolean;
    from: string;
    force: boolean;
    /** Restore without a safety dump (a database too broken to dump); the replaced database is kept. */
    skipSafetyDump: boolean;
    /** restore: seconds to wait for the deploy lock when another change holds it. */
    lockWaitSeconds: number;
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
    const [command, ...rest] = argv;
    if (command !== "list" && command !== "restore") throw new UsageError(`unknown command ${command ?? "(none)"}`);
    const opts: Options = {
        command,
        stack: env.PULUMI_STACK || "dev",
        json: false,
        from: "latest",
        force: false,
        skipSafetyDump: false,
        lockWaitSeconds: 0,
    };
    eachArg(
        rest,
        (arg, value) => {
            if (arg === "--stack") opts.stack = value();
            else if (arg === "now" && command === "list") opts.now = true;
            else if (arg === "--json" && command === "list") opts.json = true;
            else if (arg === "--from" && command === "restore") opts.from = value();
            else if (arg === "--force" && command === "restore") opts.force = true;
            else if (arg === "--skip-safety-dump" && command === "restore") opts.skipSafetyDump = true;
            else if (arg === "--lock-wait" && command === "restore") opts.lockWaitSeconds = parseDuration(arg, value());
            else throw new UsageError(`unexpected argument ${arg}`);
        },
        env,
    );
    stackName(opts.stack);
    return opts;
}

/** `docker exec` of an agent command in the backup container; dumps and restores take as long as they take. */
export const agent = (t: StackTarget, ...args: string[]) =>
    docker(t.host, ["exec", t.names.backup, ...AGENT_ENTRYPOINT, ...args], 0);

/**
 * An agent command that needs the database owner (a restore: CREATE DATABASE, the renames, ending the
 * sessions). The agent itself logs in as `<dbUser>_backup` (pg_read_all_data only, issue 24), so the owner's
 * password is lent to this one command: read from the stack's secret file on the Docker host (0400, the
 * stack owner's: components/secretFiles.ts) by a throwaway container of the agent's image, and piped into the
 * agent's stdin (BACKUP_PGPASSWORD_FILE=/dev/stdin). Never an argument, an environment variable, a file on
 * this machine or in the backup container.
 */
export async function agentAsOwner(t: StackTarget, dbUser: string, ...args: string[]) {
    const inspected = await docker(t.host, ["inspect", "--format", "{{.Image}}|{{.Config.User}}", t.names.backup]);
    const [image, runAs] = inspected.stdout.trim().split("|");
    const dir = await secretsDir(t);
    if (inspected.code !== 0 || !image || !dir)
        return {
            code: 1,
            stdout: "",
            stderr: `cannot find the owner's password file: ${inspected.stderr.trim() || `no secret mounts on the app container; run ${upCommand(t.stack)}`}`,
        };
    return dockerScript(
        t.host,
        'set -o pipefail; docker run --rm --network none --user "$RUN_AS" --cap-drop ALL --security-opt no-new-privileges:true -v "$SECRETS:/s:ro" --entrypoint cat "$IMAGE" /s/owner_db_password | docker exec -i -e PGUSER="$OWNER" -e BACKUP_PGPASSWORD_FILE=/dev/stdin "$BACKUP" "$@"',
        [...AGENT_ENTRYPOINT, ...args],
        { RUN_AS: runAs || "0:0", SECRETS: dir, IMAGE: image, OWNER: dbUser, BACKUP: t.names.backup },
    );
}

/** The stack's secret-file directory on the Docker host: the source of the app container's secret mounts. */
async function secretsDir(t: StackTarget): Promise<string | undefined> {
    const app = (await findApp(t)) ?? t.names.app;
    const r = await docker(t.host, ["container", "inspect", "--format", "{{json .Mounts}}", app]);
    if (r.code !== 0) return undefined;
    const mounts = JSON.parse(r.stdout) as { Source: string; Destination: string }[];
    const m = mounts.find((x) => x.Destination.startsWith(`${SECRETS_IN_CONTAINER}/`));
    return m ? path.dirname(m.Source) : undefined;
}

/**
 * The agent's own word on how a command ended: its last `result=...` line. Only this is trusted, never
 * the docker client's exit code (a dropped SSH connection or a signal says nothing of the agent).
 */
export function resultOf(stdout: string): string[] | undefined {
    const line = stdout
        .trim()
        .split("\n")
        .reverse()
        .find((l) => l.startsWith("result="));
    return line?.slice("result=".length).split(" ");
}

/** An agent command with no result line: what is known, and what to look at. */
function outcomeUnknown(t: StackTarget, what: string, r: { code: number; stderr: string }): string {
    return `${what}: no word from the agent on how it ended (the docker client ${r.code === -1 ? "was stopped" : `exited ${r.code}`}${r.stderr.trim() ? `: ${r.stderr.trim()}` : ""}); it may still be working on the server. See \`docker logs ${t.names.backup}\` before anything else`;
}

async function requireBackupContainer(t: StackTarget, stack: string): Promise<void> {
    const { host } = t;
    const r = await docker(host, ["inspect", "--format", "{{.State.Running}}", t.names.backup]);
    if (r.code === 127) throw new Refusal(`the docker CLI could not run: ${r.stderr.trim()}; install Docker's CLI`);
    if (r.code !== 0)
        throw new Refusal(
            `no backup container ${t.names.backup} on ${host ?? "the local engine"}: bring the stack up first (${upCommand(stack)})${r.stderr.includes("No such") ? "" : `; docker said: ${r.stderr.trim()}`}`,
        );
    if (r.stdout.trim() !== "true")
        throw new Refusal(
            `the backup container ${t.names.backup} is not running: start it (docker start ${t.names.backup}) or run \`${upCommand(stack)}\``,
        );
}

/** The stack's dumps as the agent lists them, once its container is known to run. */
async function dumpsOf(t: StackTarget, stack: string): Promise<DumpRecord[]> {
    return (await listing(t, stack)).dumps;
}

/**
 * The dumps, and what is wrong with the backup directory: the agent lists and exits 3 when it must be a
 * mounted share and is not (backupRequireMount).
 */
async function listing(t: StackTarget, stack: string): Promise<{ dumps: DumpRecord[]; problem?: string }> {
    await requireBackupContainer(t, stack);
    const listed = await agent(t, "list");
    if (listed.code === 3)
        return { dumps: parseList(listed.stdout), problem: listed.stderr.trim().replace(/^\S+ backup: ERROR /, "") };
    if (listed.code !== 0) throw new Refusal(`listing the backups failed: ${listed.stderr.trim()}`);
    return { dumps: parseList(listed.stdout) };
}

export function parseList(stdout: string): DumpRecord[] {
    return stdout
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => {
            try {
                return JSON.parse(l) as DumpRecord;
            } catch {
                throw new Refusal(`a dump's record in the backup directory is not JSON: ${l.slice(0, 200)}`);
            }
        });
}

/** The dump `--from latest` means: the newest that passed its check, other than restore's own safety dumps. */
export function latestRestorable(dumps: DumpRecord[]): DumpRecord | undefined {
    return [...dumps]
        .sort((a, b) => a.file.localeCompare(b.file))
        .filter((d) => d.check === "passed" && !d.file.endsWith("-safety.dump"))
        .pop();
}

/** The dump a restore takes, or a refusal that says what to do. */
export function chooseDump(dumps: DumpRecord[], from: string, force: boolean): DumpRecord {
    if (from === "latest") {
        const latest = latestRestorable(dumps);
        if (!latest)
            throw new Refusal(
                "no dump has passed its check: list them with `npm run backups`, then name one with --from FILE (and --force for one that failed)",
            );
        return latest;
    }
    const name = path.basename(from);
    const dump = dumps.find((d) => d.file === name);
    if (!dump) throw new Refusal(`no dump named ${name} in the backup directory: \`npm run backups\` lists them`);
    if (dump.check !== "passed" && !force)
        throw new Refusal(
            `${name} ${dump.check === "failed" ? `failed its check (${dump.reason})` : "was never checked"}: pick another (\`npm run backups\`), or restore it anyway with --force`,
        );
    return dump;
}

const rows = (d: DumpRecord) => Object.values(d.tables ?? {}).reduce((a, b) => a + b, 0);

function human(bytes: number): string {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = bytes;
    let u = 0;
    while (v >= 1024 && u < units.length - 1) {
        v /= 1024;
        u++;
    }
    return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

function age(iso: string | undefined, now: Date): string {
    if (!iso) return "?";
    const s = Math.max(0, Math.round((now.getTime() - new Date(iso).getTime()) / 1000));
    if (s < 120) return `${s}s`;
    if (s < 7200) return `${Math.round(s / 60)}m`;
    if (s < 172_800) return `${Math.round(s / 3600)}h`;
    return `${Math.round(s / 86_400)}d`;
}

export interface Freshness {
    schedule: string;
    lastVerified?: string;
    /** The last verified scheduled backup is older than twice the schedule's longest gap (or there is none). */
    stale: boolean;
    message: string;
}

/**
 * Whether the backups keep up with their schedule: the line `npm run backups` ends with. `since`: when the
 * backup container started, so that a stack younger than twice the schedule is not late for its first.
 */
export function freshness(
    dumps: DumpRecord[],
    scheduleText: string,
    now = new Date(),
    since?: Date,
    backupContainer: string = CONTAINER_NAMES.backup,
): Freshness {
    const newestPassed = (only?: string) =>
        dumps
            .filter((d) => d.check === "passed" && d.createdAt && (!only || d.file.endsWith(only)))
            .sort((a, b) => a.createdAt!.localeCompare(b.createdAt!))
            .pop();
    // Only the schedule's own dumps say whether it keeps up (a safety dump is of whatever was there).
    const verified = newestPassed(scheduleText === "" ? undefined : "-scheduled.dump");
    if (scheduleText === "")
        return {
            schedule: "none",
            lastVerified: verified?.createdAt,
            stale: false,
            message: `no schedule (backupSchedule unset); last verified backup: ${verified ? `${verified.file}, ${age(verified.createdAt, now)} ago` : "none"}`,
        };
    const limit = 2 * longestGapSeconds(parseSchedule(scheduleText), now);
    if (!verified) {
        const young = since !== undefined && (now.getTime() - since.getTime()) / 1000 <= limit;
        return {
            schedule: scheduleText,
            stale: !young,
            message: young
                ? `no verified backup yet; the schedule (${scheduleText} UTC) started ${age(since!.toISOString(), now)} ago`
                : `WARNING: no verified backup yet (schedule ${scheduleText} UTC): check \`docker logs ${backupContainer}\``,
        };
    }
    const ageSeconds = (now.getTime() - new Date(verified.createdAt!).getTime()) / 1000;
    const stale = ageSeconds > limit;
    return {
        schedule: scheduleText,
        lastVerified: verified.createdAt,
        stale,
        message: stale
            ? `WARNING: the last verified backup (${verified.file}) is ${age(verified.createdAt, now)} old, more than twice the schedule (${scheduleText} UTC): check \`docker logs ${backupContainer}\``
            : `last verified backup: ${verified.file}, ${age(verified.createdAt, now)} ago (schedule ${scheduleText} UTC)`,
    };
}

async function list(opts: Options, out: (line: string) => void): Promise<number> {
    const t = stackTarget(opts.stack);
    if (opts.now) {
        await requireBackupContainer(t, opts.stack);
        const pass = await agent(t, "now");
        for (const line of `${pass.stdout}${pass.stderr}`.split("\n").filter((l) => l && !l.startsWith("result=")))
            if (opts.json) process.stderr.write(`${line}\n`);
            else out(line.replace(/^\S+ backup: /, "backup: "));
        if (!resultOf(pass.stdout)) throw new Refusal(outcomeUnknown(t, "the pass", pass));
    }
    const { dumps, problem } = await listing(t, opts.stack);
    const inspected = await docker(t.host, [
        "inspect",
        "--format",
        `{{index .Config.Labels "${SCHEDULE_LABEL}"}}|{{.State.StartedAt}}`,
        t.names.backup,
    ]);
    const [label, startedAt] = inspected.stdout.trim().split("|");
    const scheduleText = label.replace(/^<no value>$/, "");
    const fresh = freshness(
        dumps,
        scheduleText,
        new Date(),
        startedAt ? new Date(startedAt) : undefined,
        t.names.backup,
    );
    const off = await offsiteListing(t);
    const failing = fresh.stale || problem !== undefined || off.problem !== undefined;
    if (opts.json) {
        out(
            JSON.stringify(
                {
                    stack: opts.stack,
                    backups: dumps,
                    ...fresh,
                    ...(problem ? { problem } : {}),
                    ...(off.snapshots ? { offsite: off.snapshots } : {}),
                    ...(off.problem ? { offsiteProblem: off.problem } : {}),
                },
                null,
                2,
            ),
        );
        return failing ? 1 : 0;
    }
    const now = new Date();
    if (dumps.length === 0) out("no backups yet");
    for (const d of dumps) {
        const check =
            d.check === "passed"
                ? `passed (${Object.keys(d.tables ?? {}).length} tables, ${rows(d)} rows)`
                : `${d.check.toUpperCase()}: ${d.reason}`;
        out(
            `${d.file.padEnd(36)} ${human(d.sizeBytes).padStart(10)} ${age(d.createdAt, now).padStart(5)} ago  ${check}`,
        );
    }
    out(fresh.message);
    if (off.snapshots) {
        const n = off.snapshots.length;
        out(`off-site: ${n === 0 ? "no copy yet" : `${n} ${n === 1 ? "copy" : "copies"}`} at ${off.repository}`);
        for (const s of off.snapshots)
            out(
                `  ${s.id.slice(0, 8)}  ${age(s.time, now).padStart(5)} ago  ${s.files.filter((f) => f.endsWith(".dump")).join(" ")}`,
            );
    }
    if (problem) out(`ERROR: ${problem}`);
    if (off.problem) out(`ERROR: ${off.problem}`);
    return failing ? 1 : 0;
}

/** One snapshot on the off-site target as the agent lists it (`backup-agent list-offsite`). */
export interface OffsiteListed {
    id: string;
    time: string;
    tags: string[];
    files: string[];
}

/**
 * The off-site copies: undefined snapshots when the stack has no target (the agent prints nothing), a
 * problem when the target cannot be listed (unreachable, wrong password): `npm run backups` then fails.
 */
async function offsiteListing(
    t: StackTarget,
): Promise<{ repository?: string; snapshots?: OffsiteListed[]; problem?: string }> {
    const listed = await agent(t, "list-offsite");
    // An agent from before the off-site copy (its container not yet recreated by `npm run up`): none.
    if (listed.code === 2 && /^usage: backup-agent /m.test(listed.stderr)) return {};
    if (listed.code !== 0)
        return {
            problem:
                listed.stderr.trim().replace(/^\S+ backup: ERROR /, "") ||
                `listing the off-site copies failed (exit ${listed.code})`,
        };
    // `repository=<url>` first when the stack has a target, then one JSON line per snapshot.
    const lines = listed.stdout.split("\n");
    const repository = lines.find((l) => l.startsWith("repository="))?.slice("repository=".length);
    if (repository === undefined) return {};
    return {
        repository,
        snapshots: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as OffsiteListed),
    };
}

async function readiness(t: StackTarget, app: string): Promise<boolean> {
    const probe = `fetch('http://127.0.0.1:${APP_PORT}/health/ready').then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(2))`;
    return (await docker(t.host, ["exec", app, "node", "-e", probe], 15_000)).code === 0;
}

/** One change at a time on the stack: the restore runs under its deploy lock. */
async function restore(opts: Options, out: (line: string) => void): Promise<number> {
    const t = stackTarget(opts.stack);
    return withDeployLock(t, "restore", () => restoreLocked(t, opts, out), { waitSeconds: opts.lockWaitSeconds });
}

async function restoreLocked(t: StackTarget, opts: Options, out: (line: string) => void): Promise<number> {
    const started = Date.now();
    const { host } = t;
    const say = (line: string) => out(`restore: ${line}`);
    const dump = chooseDump(await dumpsOf(t, opts.stack), opts.from, opts.force);
    say(
        `stack ${opts.stack} on ${host ?? "the local engine"}: restoring ${dump.file} (taken ${dump.createdAt ?? "?"}, check ${dump.check}, ${rows(dump)} rows)`,
    );

    // Before anything stops: whether the database exists, and whether an earlier restore's replaced
    // database is still there (the agent refuses to restore over it).
    const pre = await agent(t, "preflight");
    const facts = resultOf(pre.stdout);
    if (!facts || facts.length !== 2)
        throw new Refusal(
            `cannot tell the database's state, so nothing was changed: ${pre.stderr.trim() || "no answer from the agent"}`,
        );
    const [exists, replaced] = facts.map((f) => f.split(":")[1]);
    if (replaced === "yes")
        throw new Refusal(
            `${pre.stdout.match(/^.*still exists.*$/m)?.[0]?.replace(/^\S+ backup: /, "") ?? "an earlier restore's replaced database still exists"}; nothing was changed`,
        );

    // Found by its labels: on a stack behind Caddy each version of the app has a name of its own.
    const appName = (await findApp(t)) ?? t.names.app;
    const app = await docker(host, ["inspect", "--format", "{{.State.Running}}", appName]);
    const appRunning = app.code === 0 && app.stdout.trim() === "true";
    if (appRunning) {
        const stop = await docker(host, ["stop", "-t", "10", appName]);
        if (stop.code !== 0) throw new Refusal(`could not stop the app: ${stop.stderr.trim()}; nothing was changed`);
        say("app stopped");
    }
    // The app is started again afterwards only when the database's state is known.
    let known = true;
    let restored = false;
    // From here the app is stopped: Ctrl-C would leave it so. Say what is going on instead, and finish.
    const onInterrupt = () =>
        out("restore: interrupting now would leave the app stopped; the restore finishes first (kill -9 to force)");
    process.on("SIGINT", onInterrupt);
    try {
        // The database as it is now, in a checked dump, before anything changes (none if it is gone).
        let safetyName = "";
        if (exists === "no") say("the database does not exist: no safety dump to take");
        else if (opts.skipSafetyDump)
            say("no safety dump (--skip-safety-dump): the replaced database will be kept beside the restored one");
        else {
            const safety = await agent(t, "once", "safety");
            const result = resultOf(safety.stdout);
            if (!result) {
                known = false;
                throw new Refusal(outcomeUnknown(t, "the safety dump", safety));
            }
            if (result[0] !== "passed")
                throw new Refusal(
                    `the safety dump of the current database ${result[1] ? `(${result[1]}) did not pass its check` : "failed"}, so nothing was restored: ${safety.stderr.trim()}; if the database is too damaged to dump, run again with --skip-safety-dump (the replaced database is then kept)`,
                );
            safetyName = result[1];
            say(
                `safety dump of the current database: ${safetyName} (checked); to undo: npm run restore -- --stack ${opts.stack} --from ${safetyName}`,
            );
        }

        const load = await agentAsOwner(t, t.dbUser, "restore", dump.file, ...(safetyName ? [safetyName] : []));
        for (const line of load.stdout
            .trim()
            .split("\n")
            .filter((l) => l && !l.startsWith("result=")))
            say(line.replace(/^\S+ backup: /, ""));
        const result = resultOf(load.stdout);
        if (!result) {
            known = false;
            throw new Refusal(outcomeUnknown(t, "the restore", load));
        }
        if (result[0] !== "restored")
            throw new Refusal(`the restore failed, the database is as it was: ${load.stderr.trim()}`);
        restored = true;
        say(`database restored from ${dump.file}`);
    } finally {
        process.off("SIGINT", onInterrupt);
        if (known && (appRunning || restored)) {
            // The app starts before the migrations run in it: while one is pending it answers /health but
            // not /health/ready, so the reverse proxy sends it nothing.
            const start = await docker(host, ["start", appName]);
            if (start.code !== 0) out(`restore: could not start the app: ${start.stderr.trim()}`);
            else say("app started");
        } else if (!known)
            out(`restore: the app stays stopped until the agent's outcome is known (docker start ${appName})`);
    }

    // Migrations up to the files' head: the dump may predate some.
    const migrate = await docker(host, ["exec", appName, "migrate", "up"], 0);
    if (migrate.code !== 0)
        throw new Refusal(
            `the database is restored but the migrations failed: ${(migrate.stderr || migrate.stdout).trim()}; fix it, then run \`${upCommand(opts.stack)}\``,
        );
    for (const line of migrate.stdout.trim().split("\n").filter(Boolean)) say(`migrate: ${line}`);

    const deadline = Date.now() + 90_000;
    while (!(await readiness(t, appName))) {
        if (Date.now() > deadline)
            throw new Refusal(
                `the database is restored but the app is not ready after 90 s: see \`docker logs ${appName}\``,
            );
        await new Promise((r) => setTimeout(r, 500));
    }
    say(`app ready; done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 0;
}

export async function main(argv: string[], out = (l: string) => process.stdout.write(`${l}\n`)): Promise<number> {
    let opts: Options;
    try {
        opts = parseArgs(argv);
    } catch (err) {
        process.stderr.write(
            `${(err as Error).message}\nusage: npm run backups -- [now] [--stack dev|odin] [--json]\n       npm run restore -- [--stack dev|odin] [--from FILE|latest] [--force] [--skip-safety-dump] [--lock-wait SECONDS]\n`,
        );
        return 2;
    }
    try {
        return opts.command === "list" ? await list(opts, out) : await restore(opts, out);
    } catch (err) {
        return refusalExit(opts.command === "list" ? "backups" : "restore", err);
    }
}

runAsProgram(module, main);
