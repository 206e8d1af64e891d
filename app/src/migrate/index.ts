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
 * pending.
 */
export function listPending(db: Pool | ClientBase, migrationsDir: string): Promise<string[]> {
    return listPendingIn(db, listMigrationNames(migrationsDir));
}
