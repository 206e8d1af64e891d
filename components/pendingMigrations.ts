import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { readMigrations } from "../app/src/migrate/files";
import { DEFAULT_HISTORY_TABLE, LEGACY_COLUMNS, LEGACY_HISTORY_TABLE } from "../app/src/migrate/historyName";
import { dockerEnvironment } from "./common";

export interface PendingMigrationsArgs {
    /** The stack's Postgres container, read only if it exists and runs. */
    containerName: string;
    dbUser: string;
    dbName: string;
    /** Docker endpoint for the `docker` CLI: the stack's provider's. */
    dockerHost: string;
    /** Directory of `NNN_name.sql` files on this machine: what the migration step will apply. */
    migrationsDir: string;
    /** Whether the migration step takes a pg_dump before applying anything. */
    backups: boolean;
}

export interface PendingMigrations {
    /** What was read: the history, or why not (no container yet, stopped, unreadable). */
    database: "read" | "not created yet" | "stopped" | "unreadable";
    /** Files the next `up` applies, with their first line. */
    pending: { file: string; firstLine: string }[];
    /** Applied files whose content changed since (the `up` refuses them). */
    drifted: string[];
    /** Applied files that are gone from migrations/ (the `up` refuses that too). */
    missing: string[];
    /** Files recorded as failed half-way (the `up` refuses until `migrate resolve`). */
    failed: string[];
    /** Whether a pg_dump is taken before they are applied. */
    backupFirst: boolean;
    /** The report as lines, as the preview prints them. */
    summary: string[];
}

/**
 * Reads the database's migration history read-only, through `psql` inside the stack's own Postgres
 * container (`docker exec` over the stack's engine, so it works on odin where no port is published), and
 * only when that container exists and runs. Prints nothing but a JSON array (or why it could not), and
 * never fails: the report says what it could not read instead of stopping a preview.
 */
export const READ_HISTORY = [
    "set -u",
    'running=$(docker container inspect --format "{{.State.Running}}" "$PG_CONTAINER" 2>/dev/null) || { echo none; exit 0; }',
    '[ "$running" = true ] || { echo stopped; exit 0; }',
    'q() { docker exec "$PG_CONTAINER" psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$PG_USER" -d "$PG_DB" -c "$1" 2>&1; }',
    // The runner's history (migration_runner.history), or the table of earlier versions not moved yet.
    // (The names are the runner's constants, checked lower-case identifiers: safe inside the SQL text.)
    `where=$(q "SELECT CASE WHEN to_regclass('${DEFAULT_HISTORY_TABLE}') IS NOT NULL THEN '${DEFAULT_HISTORY_TABLE}' WHEN (SELECT string_agg(attname, ',' ORDER BY attname) FROM pg_attribute WHERE attrelid = to_regclass('${LEGACY_HISTORY_TABLE}') AND attnum > 0 AND NOT attisdropped) = '${LEGACY_COLUMNS.join(",")}' THEN '${LEGACY_HISTORY_TABLE}' ELSE '' END") || { echo "unreadable $where"; exit 0; }`,
    "[ -n \"$where\" ] || { echo '[]'; exit 0; }",
    'rows=$(q "SELECT coalesce(json_agg(to_jsonb(h)), \'[]\') FROM $where h") || { echo "unreadable $rows"; exit 0; }',
    'echo "$rows"',
].join("\n");

/** The report of `stdout` (READ_HISTORY's) against the files in `args.migrationsDir`. */
export function reportPending(stdout: string, args: PendingMigrationsArgs): PendingMigrations {
    const files = readMigrations(args.migrationsDir);
    const out = stdout.trim();
    const firstLine = (sql: string) =>
        sql
            .split(/\r?\n/)
            .find((l) => l.trim() !== "")
            ?.trim() ?? "";
    const report: PendingMigrations = {
        database: "read",
        pending: [],
        drifted: [],
        missing: [],
        failed: [],
        backupFirst: false,
        summary: [],
    };
    let history: { name: string; checksum: string; status?: string }[] = [];
    if (out === "none") report.database = "not created yet";
    else if (out === "stopped") report.database = "stopped";
    else if (out.startsWith("unreadable")) report.database = "unreadable";
    else history = JSON.parse(out) as typeof history;

    const applied = new Map(history.map((h) => [h.name, h]));
    for (const f of files) {
        const h = applied.get(f.name);
        if (!h) report.pending.push({ file: `${f.name}.sql`, firstLine: firstLine(f.sql) });
        else if (h.status === "failed") report.failed.push(`${f.name}.sql`);
        else if (h.checksum !== f.checksum) report.drifted.push(`${f.name}.sql`);
    }
    const names = new Set(files.map((f) => f.name));
    report.missing = history.filter((h) => !names.has(h.name)).map((h) => `${h.name}.sql`);
    report.backupFirst = args.backups && report.pending.length > 0 && report.database === "read";

    const where = `${args.containerName} (database ${args.dbName})`;
    const s = report.summary;
    if (report.database === "not created yet") {
        s.push(`migrations: ${where} does not exist yet: a first deploy, every file is pending (${files.length})`);
    } else if (report.database === "stopped") {
        s.push(
            `migrations: ${where} is stopped: its history was not read; the up starts it, then applies what is pending`,
        );
    } else if (report.database === "unreadable") {
        s.push(`migrations: the history of ${where} could not be read (${out.slice("unreadable".length).trim()})`);
    } else {
        s.push(
            report.pending.length === 0
                ? `migrations: nothing pending on ${where}`
                : `migrations: ${report.pending.length} pending on ${where}${report.backupFirst ? ", a pg_dump into backups/ is taken first" : ""}`,
        );
    }
    if (report.database !== "read" && report.database !== "not created yet") return report;
    for (const p of report.pending) s.push(`  pending  ${p.file}  ${p.firstLine}`);
    for (const d of report.drifted) s.push(`  DRIFTED  ${d}: changed after it was applied; the up will refuse it`);
    for (const m of report.missing) s.push(`  MISSING  ${m}: applied, but its file is gone; the up will refuse it`);
    for (const f of report.failed) {
        s.push(`  FAILED   ${f}: failed half-way; the up refuses until \`migrate resolve\``);
    }
    return report;
}

/**
 * What the next `up` will do to the database, known before anything changes: during `preview` and at the
 * start of `up`. An invoke (command.local.run), so it runs in a preview too; it only reads.
 */
export function pendingMigrations(args: PendingMigrationsArgs): pulumi.Output<PendingMigrations> {
    const read = command.local.runOutput({
        command: READ_HISTORY,
        // The history JSON is for the report below, not for the preview's log (pulumi-command logs a run's
        // stdout and stderr unless told not to: v1.2.1, local/logging.go, ShouldLogStdout).
        logging: command.types.enums.local.Logging.None,
        environment: {
            ...dockerEnvironment(args.dockerHost),
            PG_CONTAINER: args.containerName,
            PG_USER: args.dbUser,
            PG_DB: args.dbName,
        },
    });
    return read.stdout.apply((stdout) => {
        const report = reportPending(stdout, args);
        for (const line of report.summary) void pulumi.log.info(line);
        return report;
    });
}
