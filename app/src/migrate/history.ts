// The history table: where the runner records what it applied (or what failed half-way), and what the
// app's readiness reads to find pending files. Kept apart from the runner so that readiness reads it
// without loading umzug. Its place is configurable (historyName.ts); a table of another shape at that
// place is reported, never touched.
import type { ClientBase, Pool } from "pg";
import { MigrateError } from "./errors";
import { compareMigrationNames, listMigrationNames } from "./files";
import { historyTableName, LEGACY_COLUMNS, LEGACY_HISTORY_TABLE, quoted } from "./historyName";

type Queryable = Pick<ClientBase, "query">;

export interface HistoryRow {
    name: string;
    checksum: string;
    /** When the row was written: applied, or failed (status `failed`). */
    applied_at: Date;
    status: "applied" | "failed";
    /** For a failed `-- migrate:no-transaction` file: the 1-based statement that failed, and its error. */
    failed_statement: number | null;
    error: string | null;
}

/** Every column the runner's table has now: a table with others, or without the legacy ones, is not its own. */
const COLUMNS = [...LEGACY_COLUMNS, "error", "failed_statement", "status"];

/** The table's definition, also shown to a DBA when the runner may not create it. */
export function historyDdl(table: string): string {
    return historyStatements(table).join("; ");
}

/** The history table's definition, statement by statement: its schema, then the table. */
function historyStatements(table: string): [schema: string, table: string] {
    const [schema] = table.split(".");
    return [
        `CREATE SCHEMA IF NOT EXISTS "${schema}"`,
        `CREATE TABLE ${quoted(table)} (name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), duration_ms INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'applied' CHECK (status IN ('applied', 'failed')), failed_statement INTEGER, error TEXT)`,
    ];
}

async function columnsOf(db: Queryable, table: string): Promise<string[] | null> {
    const r = await db.query<{ cols: string[] | null }>(
        `SELECT (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS cols
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
        table.split("."),
    );
    return r.rows.length === 0 ? null : (r.rows[0]!.cols ?? []);
}

async function rowCount(db: Queryable, table: string): Promise<number> {
    const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${quoted(table)}`);
    return r.rows[0]!.n;
}

export type HistoryPlace = "configured" | "legacy" | "legacy beside an empty table" | "none";

/**
 * Where the history is now: the configured table; the legacy public.schema_migrations of the runner's own
 * shape, not moved yet (alone, or beside an empty configured table a DBA made); or nowhere yet. A table at
 * the configured place that is not the runner's (a column it lacks or one it does not know) is refused with
 * the fix, untouched; a public.schema_migrations of any other shape (the seed plan's) is not ours.
 */
export async function locateHistory(db: Queryable, table: string): Promise<HistoryPlace> {
    const cols = await columnsOf(db, table);
    if (cols !== null) {
        const ours = LEGACY_COLUMNS.every((c) => cols.includes(c)) && cols.every((c) => COLUMNS.includes(c));
        if (!ours) {
            throw new MigrateError(
                `${table} exists but is not this runner's history (its columns: ${cols.join(", ") || "none"}; the runner's are ${COLUMNS.join(", ")}, of which ${LEGACY_COLUMNS.join(", ")} at least); nothing was changed; point MIGRATIONS_HISTORY_TABLE (or --history-table) at another schema.table, or rename that table`,
            );
        }
    }
    const legacy = table === LEGACY_HISTORY_TABLE ? null : await columnsOf(db, LEGACY_HISTORY_TABLE);
    const legacyOurs = legacy !== null && legacy.join(",") === LEGACY_COLUMNS.join(",");
    if (cols === null) return legacyOurs ? "legacy" : "none";
    if (legacyOurs && (await rowCount(db, table)) === 0 && (await rowCount(db, LEGACY_HISTORY_TABLE)) > 0) {
        return "legacy beside an empty table";
    }
    return "configured";
}

/** Every history row, in apply order. Reads the legacy table while it has not been moved yet. */
export async function readHistory(db: Queryable, table: string): Promise<HistoryRow[]> {
    const where = await locateHistory(db, table);
    if (where === "none") return [];
    const source = where === "configured" ? table : LEGACY_HISTORY_TABLE;
    // to_jsonb: the same query for the current shape and the legacy one (no status columns yet).
    const r = await db.query<{ h: Record<string, unknown> }>(`SELECT to_jsonb(h) AS h FROM ${quoted(source)} h`);
    const rows = r.rows.map(({ h }) => ({
        name: String(h.name),
        checksum: String(h.checksum),
        applied_at: new Date(String(h.applied_at)),
        status: h.status === "failed" ? ("failed" as const) : ("applied" as const),
        failed_statement: typeof h.failed_statement === "number" ? h.failed_statement : null,
        error: typeof h.error === "string" ? h.error : null,
    }));
    // In apply order (numeric), which down reverses: ORDER BY name put 1000_x before 999_y.
    return rows.sort((a, b) => compareMigrationNames(a.name, b.name));
}

async function schemaExists(db: Queryable, schema: string): Promise<boolean> {
    const r = await db.query("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", [schema]);
    return r.rows.length > 0;
}

/**
 * Makes the history table ready to write, in one transaction: creates it (and its schema) when missing,
 * moves the legacy public.schema_migrations there, adds the columns a table of an earlier version lacks.
 * Nothing is created when it already exists, so a role without CREATE on the database or on `public`
 * works with a table a DBA made (historyDdl).
 */
export async function ensureHistoryTable(
    client: ClientBase,
    table: string,
    log: (line: string) => void,
): Promise<void> {
    const where = await locateHistory(client, table);
    const [schema, name] = table.split(".") as [string, string];
    const cols = where === "configured" ? ((await columnsOf(client, table)) ?? []) : [];
    if (where === "configured" && cols.includes("status")) return;
    const steps: string[] = [];
    const addColumns = `ALTER TABLE ${quoted(table)} ADD COLUMN IF NOT EXISTS status TEXT NOT NULL DEFAULT 'applied' CHECK (status IN ('applied', 'failed')), ADD COLUMN IF NOT EXISTS failed_statement INTEGER, ADD COLUMN IF NOT EXISTS error TEXT`;
    if (where === "legacy beside an empty table") {
        // A DBA made the new table (the runner may not): the rows move into it, in the same transaction as
        // the old table goes, so that the name is free for the seed plan's own schema_migrations.
        if (!(await columnsOf(client, table))?.includes("status")) steps.push(addColumns);
        steps.push(
            `INSERT INTO ${quoted(table)} (name, checksum, applied_at, duration_ms) SELECT name, checksum, applied_at, duration_ms FROM ${quoted(LEGACY_HISTORY_TABLE)}`,
            `DROP TABLE ${quoted(LEGACY_HISTORY_TABLE)}`,
        );
    } else {
        if (where !== "configured" && !(await schemaExists(client, schema))) steps.push(`CREATE SCHEMA "${schema}"`);
        if (where === "none") {
            steps.push(historyStatements(table)[1]);
        } else {
            let current = where === "legacy" ? LEGACY_HISTORY_TABLE : table;
            if (where === "legacy" && schema !== "public") {
                steps.push(`ALTER TABLE ${quoted(current)} SET SCHEMA "${schema}"`);
                current = `${schema}.schema_migrations`;
            }
            if (where === "legacy" && name !== "schema_migrations") {
                steps.push(`ALTER TABLE ${quoted(current)} RENAME TO "${name}"`);
            }
            steps.push(addColumns);
        }
    }
    try {
        await client.query("BEGIN");
        for (const step of steps) await client.query(step);
        await client.query("COMMIT");
    } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw new MigrateError(
            `cannot prepare the history table ${table}: ${(err as Error).message}; nothing was applied; either let this role create it (GRANT CREATE ON DATABASE ... TO the role), have a DBA create it once: ${historyDdl(table)}; or set MIGRATIONS_HISTORY_TABLE to a schema.table this role may create`,
            { cause: err, sqlState: (err as { code?: string }).code },
        );
    }
    if (where === "legacy" || where === "legacy beside an empty table") {
        log(`moved the migration history from ${LEGACY_HISTORY_TABLE} to ${table}`);
    }
}

/**
 * Migrations in `migrationsDir` not yet applied to `db` (a file marked failed counts as not applied).
 * Cheap (a few small queries, no lock, file names only): the app's readiness check calls it. Rejects with
 * a MigrateError on a badly named file, as the runner would.
 */
export async function listPending(db: Pool | ClientBase, migrationsDir: string, table?: string): Promise<string[]> {
    // async: a badly named file (listMigrationNames throws) is a rejection like a database error.
    const names = listMigrationNames(migrationsDir);
    const applied = new Set(
        (await readHistory(db, historyTableName(table))).filter((h) => h.status === "applied").map((h) => h.name),
    );
    return names.filter((n) => !applied.has(n));
}
