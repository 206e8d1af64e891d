/**
 * The migration runner (issue 3): plain SQL files in migrations/, applied by umzug over node-postgres with
 * a per-file transaction, an advisory lock, checksums, order checks, start-up retry and backups.
 */
import type { ClientBase, Pool } from "pg";
import { listMigrationNames } from "./files";
import { listPendingIn } from "./runner";

export { MigrateError } from "./errors";
export { createMigration, defaultMigrationsDir, readMigrations, type MigrationFile } from "./files";
export { down, status, up, type MigrationRun, type MigrationState, type RunOptions, type RunResult } from "./runner";

/**
 * Migrations in `migrationsDir` not yet applied to `db`. Cheap (one or two small queries, no lock, file
 * names only): the app's readiness check calls it. A database without the history table has them all
 * pending. Rejects with a MigrateError on a badly named .sql file, as the runner would.
 */
export async function listPending(db: Pool | ClientBase, migrationsDir: string): Promise<string[]> {
    // async: a badly named file (listMigrationNames throws) is a rejection like a database error.
    return listPendingIn(db, listMigrationNames(migrationsDir));
}
