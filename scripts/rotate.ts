// `npm run rotate -- db|redis [--stack dev|odin]` (issue 21): a new generated password, with the database up
// and no failed request. The stack's `dbPasswordRotation` (or `redisPasswordRotation`) is bumped, which makes
// a new RandomPassword (index.ts; the old value leaves the state with the replaced resource), then `up`:
//
// - db: the credentials step gives the new password to the owner role (migrations, backups, people's
//   `databaseUrl`) and to the app's other login role (components/postgres.ts, credentialsSql); the app starts
//   a new version logging in with it beside the serving one, which keeps its role and password until it is
//   drained; then this script disables the old login role (NOLOGIN, no password) and ends any session left
//   on it. The database container is untouched: its environment holds no password.
// - redis: Redis is a cache the app bypasses while it is away, so a new password replaces the Redis container
//   (a few seconds without the cache, every request still answered) and starts a new app version with it.
//
// A password set in the stack's config (`dbPassword`, `redisPassword`) is the user's: it is refused here.
// The whole run holds the deploy lock. Exit status: 0 done; 1 refused or failed; 2 bad arguments.
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { loginRoles } from "../components/postgres";
import { withDeployLock } from "./deployLock";
import {
    Refusal,
    UsageError,
    docker,
    refusalExit,
    runAsProgram,
    npmAteFlags,
    stackName,
    stackTarget,
    upCommand,
    type StackTarget,
} from "./target";
import { configCommand } from "../config";

const PROJECT_DIR = path.resolve(__dirname, "..");
const NS = "marvel-rivals-stats";

export interface Options {
    what: "db" | "redis";
    stack: string;
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
    npmAteFlags(argv, env);
    const [what, ...rest] = argv;
    if (what !== "db" && what !== "redis")
        throw new UsageError(`rotate what? ${what === undefined ? "(nothing)" : JSON.stringify(what)}: db or redis`);
    const opts: Options = { what, stack: env.PULUMI_STACK || "dev" };
    for (let i = 0; i < rest.length; i++) {
        if (rest[i] === "--stack" && rest[i + 1] && !rest[i + 1].startsWith("--")) opts.stack = rest[++i];
        else throw new UsageError(`unexpected argument ${rest[i]}`);
    }
    stackName(opts.stack);
    return opts;
}

/** The SQL that retires a login role: no login, no password, no session left. */
export function retireSql(role: string): string {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) throw new Error(`role name ${JSON.stringify(role)} is not plain`);
    return [
        `ALTER ROLE "${role}" WITH NOLOGIN PASSWORD NULL;`,
        `SELECT count(pg_terminate_backend(pid)) AS ended FROM pg_stat_activity WHERE usename = '${role}';`,
    ].join("\n");
}

/** Disables `role` through the Postgres container's local socket (as the owner); the sessions it ended. */
export async function retireLoginRole(t: StackTarget, role: string): Promise<number> {
    const r = await docker(
        t.host,
        [
            "exec",
            "-e",
            "RETIRE_SQL",
            t.names.postgres,
            "sh",
            "-c",
            'printf "%s\\n" "$RETIRE_SQL" | psql -X -qtA -v ON_ERROR_STOP=1 -U "$0" -d "$1"',
            t.dbUser,
            t.dbName,
        ],
        60_000,
        { RETIRE_SQL: retireSql(role) },
    );
    if (r.code !== 0) throw new Refusal(`could not disable the login role ${role}: ${r.stderr.trim()}`);
    return Number(r.stdout.trim().split("\n").pop() ?? 0);
}

/** `bash scripts/pulumi.sh <args>` for the stack; its status and output. */
function pulumi(stack: string, args: string[], capture = false): { status: number; stdout: string } {
    const r = spawnSync("bash", [path.join(PROJECT_DIR, "scripts", "pulumi.sh"), ...args], {
        cwd: PROJECT_DIR,
        // The lock is this process's (pulumi.sh does not take it again); a rollback's pin stays (MRS_ROLLBACK).
        env: { ...process.env, PULUMI_STACK: stack, MRS_ROLLBACK: "1", MRS_DEPLOY_LOCK_HELD: "rotate" },
        stdio: capture ? ["ignore", "pipe", "inherit"] : "inherit",
        encoding: "utf8",
    });
    return { status: r.status ?? 1, stdout: r.stdout ?? "" };
}

/** A password set in the stack's config is the user's to change: how (the value is asked for, never an argument). */
export function rotateOwnSecretHint(secretKey: string, stack: string): string {
    return `${secretKey} is set in the stack's config, so it is yours to change: set the new one (${configCommand(`set --secret ${secretKey}`, stack)}, which asks for it) and run ${upCommand(stack)}, or remove it (${configCommand(`rm ${secretKey}`, stack)}) to have one generated and rotated`;
}

export async function main(argv: string[], out = (l: string) => process.stdout.write(`${l}\n`)): Promise<number> {
    let opts: Options;
    try {
        opts = parseArgs(argv);
    } catch (err) {
        process.stderr.write(`${(err as Error).message}\nusage: npm run rotate -- db|redis [--stack dev|odin]\n`);
        return 2;
    }
    try {
        const t = stackTarget(opts.stack);
        const secretKey = opts.what === "db" ? "dbPassword" : "redisPassword";
        const counterKey = opts.what === "db" ? "dbPasswordRotation" : "redisPasswordRotation";
        await withDeployLock(t, "rotate", async () => {
            if (pulumi(opts.stack, ["config", "get", `${NS}:${secretKey}`], true).status === 0)
                throw new Refusal(rotateOwnSecretHint(secretKey, opts.stack));
            const got = pulumi(opts.stack, ["config", "get", `${NS}:${counterKey}`], true);
            const current = got.status === 0 ? Number(got.stdout.trim()) : 0;
            if (!Number.isInteger(current) || current < 0) throw new Refusal(`${counterKey} is ${got.stdout.trim()}`);
            if (pulumi(opts.stack, ["config", "set", `${NS}:${counterKey}`, String(current + 1)]).status !== 0)
                throw new Refusal(`could not set ${counterKey}; nothing was changed`);
            if (pulumi(opts.stack, ["up", "--yes", "--skip-preview"]).status !== 0)
                throw new Refusal(
                    `the up with the new ${opts.what} password failed (above): run \`npm run rotate -- ${opts.what} --stack ${opts.stack}\` again once it is fixed (${counterKey} is already ${current + 1}; the next up makes no other password)`,
                );
            if (opts.what === "db") {
                const old = loginRoles(t.dbUser, current).active;
                const ended = await retireLoginRole(t, old);
                out(
                    `rotate: new password of ${t.dbUser} and of the app's login role ${loginRoles(t.dbUser, current + 1).active}; ${old} disabled${ended > 0 ? ` (${ended} session(s) ended)` : ""}`,
                );
            } else out("rotate: new Redis password; the app's new version uses it");
        });
        return 0;
    } catch (err) {
        return refusalExit("rotate", err);
    }
}

runAsProgram(module, main);
