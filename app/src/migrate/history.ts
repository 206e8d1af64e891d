// The history table: where the runner records what it applied, and what readiness reads to find pending
// files. Kept apart from the runner so that the app's readiness check reads it without loading umzug.
import type { ClientBase, Pool } from "pg";
import { compareMigrationNames, HISTORY_TABLE, listMigrationNames } from "./files";

export interface HistoryRow {
    name: string;
    checksum: string;
    applied_at: Date;
}

export const HISTORY = `public.${HISTORY_TABLE}`;

async function historyTableExists(db: Pick<ClientBase, "query">): Promise<boolean> {
    const r = await db.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [HISTORY]);
    return r.rows[0]?.ok === true;
}

export async function readHistory(db: Pick<ClientBase, "query">): Promise<HistoryRow[]> {
    if (!(await historyTableExists(db))) return [];
    const r = await db.query<HistoryRow>(`SELECT name, checksum, applied_at FROM ${HISTORY}`);
    // In apply order (numeric), which down reverses: ORDER BY name put 1000_x before 999_y.
    return r.rows.sort((a, b) => compareMigrationNames(a.name, b.name));
}

/** Names of migration files not yet recorded as applied. Takes no lock; a missing history table means all. */
async function listPendingIn(db: Pick<ClientBase, "query">, names: string[]): Promise<string[]> {
    if (!(await historyTableExists(db))) return names;
    const r = await db.query<{ name: string }>(`SELECT name FROM ${HISTORY}`);
    const applied = new Set(r.rows.map((row) => row.name));
    return names.filter((n) => !applied.has(n));
}

export async function ensureHistoryTable(client: ClientBase): Promise<void> {
    await client.query(`CREATE TABLE IF NOT EXISTS ${HISTORY} (
        name        TEXT PRIMARY KEY,
        checksum    TEXT NOT NULL,
        applied_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
        duration_ms INTEGER NOT NULL
    )`);
}

/**
 * Migrations in `migrationsDir` not yet applied to `db`. Cheap (one or two small queries, no lock, file
 * names only): the app's readiness check calls it. A database without the history table has them all
 * pending. Rejects with a MigrateError on a badly named .sql file, as the runner would.
 */
export async function listPending(db: Pool | ClientBase, migrationsDir: string): Promise<string[]> {
    // async: a badly named file (listMigrationNames throws) is a rejection like a database error.
    return listPendingIn(db, listMigrationNames(migrationsDir));
}
