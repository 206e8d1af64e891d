import { MigrateError } from "./errors";

/**
 * Where the runner keeps its history unless told otherwise: a schema of its own, so that it cannot clash
 * with a table of the application (the seed plan itself defines a public.schema_migrations) and needs no
 * CREATE privilege on `public`. Env MIGRATIONS_HISTORY_TABLE or --history-table choose another.
 */
export const DEFAULT_HISTORY_TABLE = "migration_runner.history";
/** Where versions before issue 11 kept it; moved to the configured place by the next `up`. */
export const LEGACY_HISTORY_TABLE = "public.schema_migrations";
/** The columns of that table (in name order): a public.schema_migrations of another shape is not ours. */
export const LEGACY_COLUMNS = ["applied_at", "checksum", "duration_ms", "name"];

const NAME = /^([a-z_][a-z0-9_]{0,62})\.([a-z_][a-z0-9_]{0,62})$/;

/** The history table to use: `given`, else env MIGRATIONS_HISTORY_TABLE, else the default; checked. */
export function historyTableName(given?: string): string {
    const name = given ?? (process.env.MIGRATIONS_HISTORY_TABLE || DEFAULT_HISTORY_TABLE);
    if (!NAME.test(name)) {
        throw new MigrateError(
            `the history table must be written schema.table in lower-case letters, digits and _ (e.g. ${DEFAULT_HISTORY_TABLE}), got ${JSON.stringify(name)}; fix MIGRATIONS_HISTORY_TABLE or --history-table`,
        );
    }
    return name;
}

/** `"schema"."table"` for SQL text (the name is checked, so quoting is only for reserved words). */
export function quoted(name: string): string {
    return name
        .split(".")
        .map((p) => `"${p}"`)
        .join(".");
}
