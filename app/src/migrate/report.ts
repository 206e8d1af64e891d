// What a run of the runner reports: its options, the result (also the CLI's --json), and what in a result
// needs a person's attention.
export interface RunOptions {
    /** Default: env DATABASE_URL. */
    databaseUrl?: string;
    /** Default: defaultMigrationsDir(). */
    migrationsDir?: string;
    /** Seconds to keep retrying while the server does not accept connections. Default 30. */
    waitSeconds?: number;
    /** Per-migration `SET LOCAL lock_timeout` and pg_dump's --lock-wait-timeout, in ms: an integer >= 1 (0 would mean wait forever). Default 5000. */
    lockTimeoutMs?: number;
    /** Seconds to wait for the migration (advisory) lock. Default 60. */
    advisoryLockTimeoutSeconds?: number;
    /** Seconds to wait for a running backup pass (the backup agent's lock) before ending it. Default 600. */
    backupWaitSeconds?: number;
    /** When set and something is to be applied or reverted, pg_dump there first. */
    backupDir?: string | null;
    /** pg_dump to run for backups. Default: env PG_DUMP, else `pg_dump` on PATH. */
    pgDump?: string;
    /** up: apply up to and including this one. down: revert back to and including this one, "0" = all. */
    to?: string;
    /** Human progress lines (one per migration, a summary). Default: none. */
    log?: (line: string) => void;
    /** schema.table of the runner's history. Default: env MIGRATIONS_HISTORY_TABLE, else migration_runner.history. */
    historyTable?: string;
}

export interface MigrationRun {
    name: string;
    durationMs: number;
}

export interface MigrationState {
    name: string;
    /** When it was recorded: applied, or failed. */
    appliedAt: string;
    /** `missing`: recorded, but its file is gone. */
    checksum: "ok" | "drifted" | "missing";
    /** `failed`: a `-- migrate:no-transaction` file stopped half-way; `up` refuses until it is resolved. */
    status: "applied" | "failed";
    /** For a failed file: the 1-based statement that failed and PostgreSQL's error. */
    failedStatement?: number;
    error?: string;
}

export interface RunResult {
    command: "up" | "down" | "status" | "resolve";
    applied: MigrationRun[];
    reverted: MigrationRun[];
    /** Every recorded migration after the run (applied or failed), in order. */
    migrations: MigrationState[];
    pending: string[];
    backup: string | null;
    /** Indexes PostgreSQL marks INVALID (a failed CREATE INDEX CONCURRENTLY leaves one): schema.name. */
    invalidIndexes: string[];
    /** Where the history is kept (schema.table). */
    historyTable: string;
    /** Pending files that sort before an applied one: `up` refuses them (they would run out of order). */
    outOfOrder: string[];
}

/** What needs a person's attention in a result: drifted, missing or failed files, INVALID indexes. */
export function problemsOf(r: RunResult): string[] {
    const out: string[] = [];
    for (const m of r.migrations) {
        if (m.status === "failed") {
            out.push(
                `${m.name}.sql failed at statement ${m.failedStatement ?? "?"} (${m.appliedAt}): ${m.error ?? "no error recorded"}; resolve it with \`migrate resolve ${m.name} --applied\` after fixing the database by hand, or \`--retry\` to run the whole file again`,
            );
        }
        if (m.checksum === "drifted") out.push(`${m.name}.sql was changed after it was applied`);
        if (m.checksum === "missing") out.push(`${m.name}.sql is recorded but its file is gone`);
    }
    for (const o of r.outOfOrder) {
        out.push(
            `${o}.sql is pending but sorts before an applied migration; up refuses it; renumber it after the last one`,
        );
    }
    for (const i of r.invalidIndexes) {
        out.push(
            `index ${i} is INVALID (a failed CREATE INDEX CONCURRENTLY); drop it (DROP INDEX CONCURRENTLY ${i}) and build it again`,
        );
    }
    return out;
}
