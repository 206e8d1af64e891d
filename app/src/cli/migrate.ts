/**
 * Migration CLI (issue 3): `migrate up [--to NAME] | down [--to NAME] | status | resolve NAME --applied|--retry
 * | create NAME`. Reads DATABASE_URL. Human output on stderr; with --json exactly one JSON document on
 * stdout (also on failure, with an `error` member). Exit 0 on success, 1 on any failure and when `status`
 * finds something that needs attention (a failed, drifted or missing file, an INVALID index), 2 on bad usage.
 */
import { parseArgs } from "node:util";
import {
    createMigration,
    defaultMigrationsDir,
    down,
    MigrateError,
    problemsOf,
    resolve,
    status,
    up,
    type RunResult,
} from "../migrate";
import { redact } from "../migrate/errors";

const USAGE = `usage: migrate <command> [options]
  up [--to NAME]        apply pending migrations (up to and including NAME)
  down [--to NAME]      revert the last migration (back to and including NAME; --to 0 reverts all)
  status                list applied (time, checksum ok|drifted|missing), failed and pending migrations and
                        INVALID indexes; exits 1 when any of them needs attention
  resolve NAME --applied   after fixing the database by hand: record a failed no-transaction file as applied
  resolve NAME --retry     clear a failed file's mark: the next up runs the whole file again
  create NAME           write the next NNN_NAME.sql and NNN_NAME.down.sql
options:
  --json                    one JSON document on stdout
  --wait SECONDS            keep retrying while PostgreSQL is not accepting connections (default 30)
  --lock-timeout MS         lock_timeout of each migration and of the backup's pg_dump, >= 1 (default 5000)
  --advisory-lock-timeout SECONDS   wait this long for another runner to finish (default 60)
  --backup-dir DIR          pg_dump into DIR before changing anything (env MIGRATE_BACKUP_DIR)
  --migrations-dir DIR      default: env MIGRATIONS_DIR, else the nearest migrations/ directory
  --history-table S.T       the runner's history (env MIGRATIONS_HISTORY_TABLE; default migration_runner.history)
environment: DATABASE_URL (required), PG_DUMP (pg_dump to use for backups)
from the repository: npm run -s migrate -- <command> (-s: without npm's banner, so --json is clean)`;

class UsageError extends Error {}

function number(flag: string, value: string | undefined, fallback: number): number {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || value.trim() === "") {
        throw new UsageError(`--${flag} must be a non-negative number, got "${value}"`);
    }
    return n;
}

/** A lock_timeout in ms: PostgreSQL reads 0 as "wait forever", which is what the option exists to prevent. */
function lockTimeout(value: string | undefined): number {
    if (value === undefined) return 5000;
    if (!/^\s*\d+\s*$/.test(value) || Number(value) < 1) {
        throw new UsageError(
            `--lock-timeout must be a whole number of milliseconds >= 1 (0 would mean wait forever), got "${value}"`,
        );
    }
    return Number(value);
}

function humanStatus(r: RunResult, err: (line: string) => void): void {
    for (const m of r.migrations) {
        if (m.status === "failed")
            err(`FAILED   ${m.name}  ${m.appliedAt}  statement ${m.failedStatement ?? "?"}: ${m.error ?? ""}`);
        else err(`applied  ${m.name}  ${m.appliedAt}  ${m.checksum}`);
    }
    for (const p of r.pending) err(`pending  ${p}`);
    for (const i of r.invalidIndexes) err(`INVALID  index ${i}`);
    const failed = r.migrations.filter((m) => m.status === "failed").length;
    err(
        `${r.migrations.length - failed} applied, ${failed > 0 ? `${failed} failed, ` : ""}${r.pending.length} pending (history: ${r.historyTable})`,
    );
}

const COMMANDS = ["up", "down", "status", "resolve", "create"];

/**
 * `--stack` is the flag of the repository's stack scripts: this CLI (the app's, in its container too) has no
 * stack, only DATABASE_URL. `npm run migrate --stack odin` (without `--`) reaches us as npm's
 * npm_config_stack, with `odin` as an argument. The one-line refusal, or undefined when no stack was named.
 */
export function stackRefusal(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
    const i = argv.findIndex((a) => a === "--stack" || a.startsWith("--stack="));
    let name: string | undefined;
    if (i >= 0) name = argv[i] === "--stack" ? argv[i + 1] : argv[i]!.slice("--stack=".length);
    else if (env.npm_config_stack)
        name =
            env.npm_config_stack === "true"
                ? argv.find((a) => !a.startsWith("-") && !COMMANDS.includes(a))
                : env.npm_config_stack;
    else return undefined;
    const stack = name && /^[\w.-]+$/.test(name) ? name : "<name>";
    return `migrate has no --stack: it works on the database of DATABASE_URL; a stack's pending migrations: npm run status -- --stack ${stack}`;
}

export async function main(
    argv: string[],
    out: NodeJS.WritableStream = process.stdout,
    errOut: NodeJS.WritableStream = process.stderr,
    env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
    const err = (line: string) => void errOut.write(`${line}\n`);
    let json = false;
    let command = "";
    const stack = stackRefusal(argv, env);
    if (stack) {
        err(`migrate: ${stack}`);
        if (argv.includes("--json")) out.write(`${JSON.stringify({ command, error: { message: stack } })}\n`);
        return 2;
    }
    try {
        const { values, positionals } = parseArgs({
            args: argv,
            allowPositionals: true,
            options: {
                json: { type: "boolean", default: false },
                to: { type: "string" },
                wait: { type: "string" },
                "lock-timeout": { type: "string" },
                "advisory-lock-timeout": { type: "string" },
                "backup-dir": { type: "string" },
                "migrations-dir": { type: "string" },
                "history-table": { type: "string" },
                applied: { type: "boolean", default: false },
                retry: { type: "boolean", default: false },
                help: { type: "boolean", short: "h", default: false },
            },
        });
        json = values.json === true;
        if (values.help) {
            err(USAGE);
            return 0;
        }
        command = positionals[0] ?? "";
        const rest = positionals.slice(1);
        const migrationsDir = values["migrations-dir"] ?? defaultMigrationsDir();
        if (command === "create") {
            if (rest.length !== 1) throw new UsageError("create takes exactly one NAME, e.g. create add_player_region");
            const files = createMigration(migrationsDir, rest[0]!);
            if (json) out.write(`${JSON.stringify({ command, created: [files.up, files.down] })}\n`);
            err(`created ${files.up}`);
            err(`created ${files.down}`);
            return 0;
        }
        if (!COMMANDS.includes(command)) {
            throw new UsageError(command === "" ? "no command given" : `unknown command "${command}"`);
        }
        const resolveName = command === "resolve" ? rest.shift() : undefined;
        if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
        if (command === "resolve" && (resolveName === undefined || values.applied === values.retry)) {
            throw new UsageError("resolve takes a migration NAME and exactly one of --applied or --retry");
        }
        if (command !== "resolve" && (values.applied || values.retry)) {
            throw new UsageError("--applied and --retry belong to resolve");
        }
        if (values.to !== undefined && command === "status") throw new UsageError("--to applies to up and down only");
        const backupDir = values["backup-dir"] ?? (process.env.MIGRATE_BACKUP_DIR || undefined);
        const opts = {
            migrationsDir,
            to: values.to,
            waitSeconds: number("wait", values.wait, 30),
            lockTimeoutMs: lockTimeout(values["lock-timeout"]),
            advisoryLockTimeoutSeconds: number("advisory-lock-timeout", values["advisory-lock-timeout"], 60),
            backupDir,
            historyTable: values["history-table"],
            log: err,
        };
        const result =
            command === "up"
                ? await up(opts)
                : command === "down"
                  ? await down(opts)
                  : command === "resolve"
                    ? await resolve({ ...opts, name: resolveName!, as: values.applied ? "applied" : "retry" })
                    : await status(opts);
        const problems = problemsOf(result);
        if (command === "status" || command === "resolve") humanStatus(result, err);
        for (const p of problems) err(`attention: ${p}`);
        if (json) out.write(`${JSON.stringify({ ...result, problems })}\n`);
        return command === "status" && problems.length > 0 ? 1 : 0;
    } catch (e) {
        if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
            err(`migrate: ${(e as Error).message}`);
            err(USAGE);
            if (json) out.write(`${JSON.stringify({ command, error: { message: (e as Error).message } })}\n`);
            return 2;
        }
        // Our messages never hold the password; this also covers errors we did not write (a URL in a stack).
        const message = redact(
            e instanceof MigrateError ? e.message : `unexpected error: ${(e as Error).stack ?? String(e)}`,
        );
        err(`migrate ${command}: ${message}`);
        if (json) {
            const partial = e instanceof MigrateError ? e.result : undefined;
            const error = {
                message,
                file: e instanceof MigrateError ? (e.file ?? null) : null,
                line: e instanceof MigrateError ? (e.line ?? null) : null,
                column: e instanceof MigrateError ? (e.column ?? null) : null,
                sqlState: e instanceof MigrateError ? (e.sqlState ?? null) : null,
            };
            out.write(`${JSON.stringify({ ...(partial ?? { command }), error })}\n`);
        }
        return 1;
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => {
            process.exitCode = code;
        },
        (e: unknown) => {
            process.stderr.write(`migrate: ${(e as Error).stack ?? String(e)}\n`);
            process.exitCode = 1;
        },
    );
}
