/**
 * Migration CLI (issue 3): `migrate up [--to NAME] | down [--to NAME] | status | create NAME`.
 * Reads DATABASE_URL. Human output on stderr; with --json exactly one JSON document on stdout (also on
 * failure, with an `error` member). Exit 0 on success, 1 on any failure, 2 on bad usage.
 */
import { parseArgs } from "node:util";
import { createMigration, defaultMigrationsDir, down, MigrateError, status, up, type RunResult } from "../migrate";
import { redact } from "../migrate/errors";

const USAGE = `usage: migrate <command> [options]
  up [--to NAME]        apply pending migrations (up to and including NAME)
  down [--to NAME]      revert the last migration (back to and including NAME; --to 0 reverts all)
  status                list applied (time, checksum ok|drifted|missing) and pending migrations
  create NAME           write the next NNN_NAME.sql and NNN_NAME.down.sql
options:
  --json                    one JSON document on stdout
  --wait SECONDS            keep retrying while PostgreSQL is not accepting connections (default 30)
  --lock-timeout MS         lock_timeout of each migration and of the backup's pg_dump, >= 1 (default 5000)
  --advisory-lock-timeout SECONDS   wait this long for another runner to finish (default 60)
  --backup-dir DIR          pg_dump into DIR before changing anything (env MIGRATE_BACKUP_DIR)
  --migrations-dir DIR      default: env MIGRATIONS_DIR, else the nearest migrations/ directory
environment: DATABASE_URL (required), PG_DUMP (pg_dump to use for backups)`;

class UsageError extends Error {}

function passwordOf(url: string | undefined): string | undefined {
    try {
        const p = new URL(url ?? "").password;
        return p ? decodeURIComponent(p) : undefined;
    } catch {
        return undefined;
    }
}

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
    for (const m of r.migrations) err(`applied  ${m.name}  ${m.appliedAt}  ${m.checksum}`);
    for (const p of r.pending) err(`pending  ${p}`);
    err(`${r.migrations.length} applied, ${r.pending.length} pending`);
}

export async function main(argv: string[], out = process.stdout, errOut = process.stderr): Promise<number> {
    const err = (line: string) => void errOut.write(`${line}\n`);
    let json = false;
    let command = "";
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
        if (!["up", "down", "status"].includes(command)) {
            throw new UsageError(command === "" ? "no command given" : `unknown command "${command}"`);
        }
        if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
        if (values.to !== undefined && command === "status") throw new UsageError("--to applies to up and down only");
        const backupDir = values["backup-dir"] ?? (process.env.MIGRATE_BACKUP_DIR || undefined);
        const opts = {
            migrationsDir,
            to: values.to,
            waitSeconds: number("wait", values.wait, 30),
            lockTimeoutMs: lockTimeout(values["lock-timeout"]),
            advisoryLockTimeoutSeconds: number("advisory-lock-timeout", values["advisory-lock-timeout"], 60),
            backupDir,
            log: err,
        };
        const result = command === "up" ? await up(opts) : command === "down" ? await down(opts) : await status(opts);
        if (command === "status") humanStatus(result, err);
        if (json) out.write(`${JSON.stringify(result)}\n`);
        return 0;
    } catch (e) {
        if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
            err(`migrate: ${(e as Error).message}`);
            err(USAGE);
            if (json) out.write(`${JSON.stringify({ command, error: { message: (e as Error).message } })}\n`);
            return 2;
        }
        // Our messages never hold the password; this also covers errors we did not write.
        const message = redact(
            e instanceof MigrateError ? e.message : `unexpected error: ${(e as Error).stack ?? String(e)}`,
            passwordOf(process.env.DATABASE_URL),
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
