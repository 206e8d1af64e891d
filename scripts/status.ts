// `npm run status` (issue 25): how a stack is, in one view, read over its engine (for odin the stack file's
// dockerHost, ssh://, through your ~/.ssh/config): its containers and their health, the app's readiness,
// the last verified backup and its age, the migrations not applied yet, and where to reach it. It only
// reads. Exit 0 when all is well, 1 with an `attention:` line for each thing to look at.
//   npm run status -- [--stack dev|odin] [--json]
import { spawn } from "node:child_process";
import * as path from "node:path";
import { SCHEDULE_LABEL } from "../components/backups";
import { STACK_LABEL } from "../components/hostDirectories";
import {
    HISTORY_READ_SECONDS,
    READ_HISTORY,
    reportPending,
    type PendingMigrations,
} from "../components/pendingMigrations";
import { TUNNEL_LOCAL_PORT } from "../components/databaseTunnel";
import { agent, freshness, parseList, type Freshness } from "./backups";
import {
    PROJECT_DIR,
    Refusal,
    UsageError,
    docker,
    eachArg,
    engineName,
    findApp,
    refusalExit,
    runAsProgram,
    stackConfigText,
    stackName,
    stackNames,
    stackTarget,
    type StackTarget,
} from "./target";

export interface Options {
    stack: string;
    json: boolean;
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
    const opts: Options = { stack: env.PULUMI_STACK || "dev", json: false };
    eachArg(
        argv,
        (arg, value) => {
            if (arg === "--stack") opts.stack = value();
            else if (arg === "--json") opts.json = true;
            else if (stackNames().includes(arg))
                throw new UsageError(
                    `unexpected argument ${arg}: a stack goes after --stack: npm run status -- --stack ${arg}`,
                );
            else throw new UsageError(`unexpected argument ${arg}`);
        },
        env,
    );
    stackName(opts.stack);
    return opts;
}

/** What status reads, before it is put in words. */
export interface Facts {
    stack: string;
    engine: string;
    /** `docker ps -a` of the stack's containers: name, state, status (`Up 2 hours (healthy)`). */
    containers: { name: string; state: string; status: string }[];
    /** The serving app version and its readiness answer (`200 {...}`), or why there is none. */
    app: { name?: string; ready: boolean; answer: string };
    /** The backups' freshness line, or why they could not be read. */
    backups: Freshness | { message: string; stale: true; unread: true };
    migrations: Pick<PendingMigrations, "summary" | "pending" | "drifted" | "missing" | "failed" | "database">;
    urls: string[];
}

/** The lines `npm run status` prints, and the things that need attention. */
export function statusLines(f: Facts): { lines: string[]; attention: string[] } {
    const lines = [`stack ${f.stack} on ${f.engine}`];
    const attention: string[] = [];
    if (f.containers.length === 0) {
        lines.push("containers: none: the stack is not up (npm run up -- --stack " + f.stack + ")");
        attention.push(`no container of stack ${f.stack} on ${f.engine}`);
    } else {
        lines.push("containers:");
        const width = Math.max(...f.containers.map((c) => c.name.length));
        for (const c of f.containers) {
            lines.push(`  ${c.name.padEnd(width)}  ${c.state.padEnd(10)} ${c.status}`);
            if (c.state !== "running" && !/-app-[0-9a-f]+$/.test(c.name))
                attention.push(`${c.name} is ${c.state} (docker logs ${c.name})`);
            else if (/\(unhealthy\)/.test(c.status)) attention.push(`${c.name} is unhealthy (docker logs ${c.name})`);
        }
    }
    lines.push(`app: ${f.app.name ?? "none"}: ${f.app.ready ? "ready" : "not ready"}: ${f.app.answer}`);
    if (!f.app.ready) attention.push(`the app is not ready: ${f.app.answer}`);
    lines.push(`backups: ${f.backups.message}`);
    if (f.backups.stale) attention.push(`backups: ${f.backups.message}`);
    lines.push(...f.migrations.summary);
    const m = f.migrations;
    if (m.pending.length > 0) attention.push(`${m.pending.length} migration(s) pending: the next up applies them`);
    for (const x of [...m.drifted, ...m.missing, ...m.failed]) attention.push(`migration ${x}: see above`);
    for (const u of f.urls) lines.push(u);
    return { lines: [...lines, ...attention.map((a) => `attention: ${a}`)], attention };
}

/** Where to reach the stack, from its stack file. */
export function urlsOf(stack: string, projectDir = PROJECT_DIR): string[] {
    const text = (key: string) => stackConfigText(stack, key, projectDir);
    const urls: string[] = [];
    const domain = text("domain");
    if (domain) urls.push(`app: https://${domain}`);
    if (text("appPort") && text("appBindAddress"))
        urls.push(`app: http://${text("appBindAddress")}:${text("appPort")}`);
    const host = text("dockerHost");
    const pgPort = text("postgresPort");
    if (pgPort && text("postgresBindAddress") && host?.startsWith("ssh://")) {
        urls.push(
            `database from this machine: npm run outputs -- databaseTunnel --stack ${stack} (ssh tunnel to 127.0.0.1:${TUNNEL_LOCAL_PORT}), or npm run psql -- --stack ${stack}`,
        );
    } else if (pgPort && text("postgresBindAddress")) {
        urls.push(
            `database: ${text("postgresBindAddress")}:${pgPort} (npm run outputs -- databaseUrl --stack ${stack}), or npm run psql`,
        );
    } else urls.push(`database: npm run psql -- --stack ${stack}`);
    return urls;
}

/** READ_HISTORY (the preview's own read of the migration history) over the stack's engine. */
function readHistory(t: StackTarget): Promise<string> {
    return new Promise((resolve) => {
        const child = spawn("bash", ["-c", READ_HISTORY], {
            env: {
                ...process.env,
                ...(t.host ? { DOCKER_HOST: t.host } : {}),
                PG_CONTAINER: t.names.postgres,
                PG_USER: t.dbUser,
                PG_DB: t.dbName,
                // The read's time limit (the script runs under `set -u`: without it, no history is read).
                LIMIT: String(HISTORY_READ_SECONDS),
            },
            stdio: ["ignore", "pipe", "ignore"],
        });
        let out = "";
        child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
        child.on("error", (err) => resolve(`unreadable ${err.message}`));
        child.on("close", () => resolve(out));
    });
}

async function backupsOf(t: StackTarget): Promise<Facts["backups"]> {
    const inspected = await docker(t.host, [
        "inspect",
        "--format",
        `{{.State.Running}}|{{index .Config.Labels "${SCHEDULE_LABEL}"}}|{{.State.StartedAt}}`,
        t.names.backup,
    ]);
    const [running, label, startedAt] = inspected.stdout.trim().split("|");
    if (inspected.code !== 0 || running !== "true")
        return { message: `the backup container ${t.names.backup} is not running`, stale: true, unread: true };
    const listed = await agent(t, "list");
    if (listed.code !== 0)
        return { message: `could not list the backups: ${listed.stderr.trim()}`, stale: true, unread: true };
    return freshness(
        parseList(listed.stdout),
        (label ?? "").replace(/^<no value>$/, ""),
        new Date(),
        startedAt ? new Date(startedAt) : undefined,
        t.names.backup,
    );
}

export async function gather(t: StackTarget): Promise<Facts> {
    const ps = await docker(t.host, [
        "ps",
        "-a",
        "--filter",
        `label=${STACK_LABEL}=${t.stack}`,
        "--format",
        "{{.Names}}\t{{.State}}\t{{.Status}}",
    ]);
    if (ps.code === 127) throw new Refusal(`the docker CLI could not run: ${ps.stderr.trim()}; install Docker's CLI`);
    if (ps.code !== 0) throw new Refusal(`cannot reach the Docker engine ${engineName(t)}: ${ps.stderr.trim()}`);
    const containers = ps.stdout
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => {
            const [name = "", state = "", status = ""] = l.split("\t");
            return { name, state, status };
        })
        .sort((a, b) => a.name.localeCompare(b.name));
    const appName = await findApp(t);
    let app: Facts["app"] = { ready: false, answer: "no app container: deploy first" };
    if (appName) {
        const r = await docker(t.host, ["exec", appName, "node", "/app/healthcheck.js", "ready"], 15_000);
        const answer = (r.stdout.trim() || r.stderr.trim() || `exit ${r.code}`).slice(0, 300);
        app = { name: appName, ready: r.code === 0, answer };
    }
    const history = await readHistory(t);
    const migrations = reportPending(history, {
        containerName: t.names.postgres,
        dbUser: t.dbUser,
        dbName: t.dbName,
        dockerHost: t.host ?? "",
        migrationsDir: path.join(PROJECT_DIR, "migrations"),
        backups: false,
    });
    return {
        stack: t.stack,
        engine: engineName(t),
        containers,
        app,
        backups: await backupsOf(t),
        migrations,
        urls: urlsOf(t.stack),
    };
}

export async function main(argv: string[], out = (l: string) => process.stdout.write(`${l}\n`)): Promise<number> {
    let opts: Options;
    try {
        opts = parseArgs(argv);
    } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`${err.message}\nusage: npm run status -- [--stack dev|odin] [--json]\n`);
        return 2;
    }
    try {
        const facts = await gather(stackTarget(opts.stack));
        const { lines, attention } = statusLines(facts);
        if (opts.json) out(JSON.stringify({ ...facts, attention }, null, 2));
        else lines.forEach((l) => out(l));
        return attention.length === 0 ? 0 : 1;
    } catch (err) {
        return refusalExit("status", err);
    }
}

runAsProgram(module, main);
