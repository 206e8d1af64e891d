/**
 * The migration runner (issue 3): plain SQL files in migrations/, applied by umzug over node-postgres with
 * a per-file transaction, an advisory lock, checksums, order checks, start-up retry and backups.
 */
export { MigrateError } from "./errors";
export { createMigration, defaultMigrationsDir, readMigrations, type MigrationFile } from "./files";
export { listPending } from "./history";
export { DEFAULT_HISTORY_TABLE, historyTableName } from "./historyName";
export {
    down,
    problemsOf,
    resolve,
    status,
    up,
    type MigrationRun,
    type MigrationState,
    type RunOptions,
    type RunResult,
} from "./runner";
