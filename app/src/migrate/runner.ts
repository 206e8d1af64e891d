// The runner's orchestration: connect, lock, check the history against the files, plan every file
// (plan.ts), back up, then hand the files to umzug, which runs each through the Session (session.ts).
import type { Client, ClientBase } from "pg";
import { Umzug, type UmzugStorage } from "umzug";
import { backupDatabase } from "./backup";
import { connectWithRetry, parseDatabaseUrl, type Target } from "./connect";
import { MigrateError } from "./errors";
import { defaultMigrationsDir, readMigrations, type MigrationFile } from "./files";
import { ensureHistoryTable, readHistory, type HistoryRow } from "./history";
import { historyTableName, quoted } from "./historyName";
import { acquireLock, releaseLock, waitForBackupPass } from "./lock";
import { downPlan, upPlan, type FilePlan } from "./plan";
import type { MigrationState, RunOptions, RunResult } from "./report";
import { invalidIndexes, Session } from "./session";
import { withSecretFiles } from "../secretFiles";

/** DATABASE_URL, or the file DATABASE_URL_FILE names (the migration step mounts one: issue 24). */
function databaseUrlFromEnv(): string | undefined {
    try {
        return withSecretFiles().DATABASE_URL;
    } catch (err) {
        throw new MigrateError((err as Error).message);
    }
}

export { problemsOf, type MigrationRun, type MigrationState, type RunOptions, type RunResult } from "./report";

function states(files: MigrationFile[], history: HistoryRow[]): MigrationState[] {
    const byName = new Map(files.map((f) => [f.name, f]));
    return history.map((h) => {
        const f = byName.get(h.name);
        return {
            name: h.name,
            appliedAt: h.applied_at.toISOString(),
            checksum: f === undefined ? "missing" : f.checksum === h.checksum ? "ok" : "drifted",
            status: h.status,
            ...(h.status === "failed"
                ? { failedStatement: h.failed_statement ?? undefined, error: h.error ?? undefined }
                : {}),
        };
    });
}

/** Pending files that sort before the last applied one. */
function outOfOrderOf(files: MigrationFile[], history: HistoryRow[]): string[] {
    const order = new Map(files.map((f, i) => [f.name, i]));
    const lastIndex = Math.max(-1, ...history.map((h) => order.get(h.name) ?? -1));
    return pendingOf(files, history)
        .filter((p) => (order.get(p.name) ?? 0) < lastIndex)
        .map((p) => p.name);
}

function pendingOf(files: MigrationFile[], history: HistoryRow[]): MigrationFile[] {
    const applied = new Set(history.map((h) => h.name));
    return files.filter((f) => !applied.has(f.name));
}

/** Refuses failed, drifted, missing and out-of-order migrations: the checks every mutating command makes first. */
function checkConsistency(dir: string, files: MigrationFile[], history: HistoryRow[]): void {
    const failed = history.find((h) => h.status === "failed");
    if (failed) {
        throw new MigrateError(
            `${failed.name}.sql failed at statement ${failed.failed_statement ?? "?"} on ${failed.applied_at.toISOString()} (${failed.error ?? "no error recorded"}) and ran without a transaction, so the statements before it stay applied; nothing was run now; fix the database by hand, then \`migrate resolve ${failed.name} --applied\` (record it as applied without running it), or undo what it did and \`migrate resolve ${failed.name} --retry\` (the next up runs the whole file again)`,
            { file: `${failed.name}.sql` },
        );
    }
    for (const s of states(files, history)) {
        if (s.checksum === "drifted") {
            throw new MigrateError(
                `${s.name}.sql was changed after it was applied (its sha256 differs from the one recorded at ${s.appliedAt}); restore the applied version of the file and put the change in a new migration (runner create NAME)`,
                { file: `${s.name}.sql` },
            );
        }
        if (s.checksum === "missing") {
            throw new MigrateError(
                `${s.name}.sql is recorded as applied (at ${s.appliedAt}) but is missing from ${dir}; restore the file (applied migrations are never deleted)`,
                { file: `${s.name}.sql` },
            );
        }
    }
    const lastApplied = history.at(-1)?.name;
    const order = new Map(files.map((f, i) => [f.name, i]));
    const lastIndex = Math.max(-1, ...history.map((h) => order.get(h.name) ?? -1));
    for (const p of pendingOf(files, history)) {
        if ((order.get(p.name) ?? 0) < lastIndex) {
            throw new MigrateError(
                `${p.name}.sql is pending but sorts before the applied ${files[lastIndex]?.name ?? lastApplied}; it would run out of order, so nothing was applied; renumber it after the last migration (runner create NAME gives the next number)`,
                { file: `${p.name}.sql` },
            );
        }
    }
}

/**
 * umzug orders the files, calls them and the storage; each file's run and its history row are ours
 * (Session), because umzug's storage is written after its migration resolves, outside any transaction.
 */
function buildUmzug(
    plans: Map<string, FilePlan>,
    session: Session,
    client: ClientBase,
    history: string,
): Umzug<object> {
    const storage: UmzugStorage<object> = {
        async executed() {
            return (await readHistory(client, history)).map((h) => h.name);
        },
        async logMigration({ name }) {
            const plan = plans.get(name)!;
            await session.finish(plan.file, "applied", (durationMs) => ({
                text: `INSERT INTO ${quoted(history)} (name, checksum, applied_at, duration_ms) VALUES ($1, $2, pg_catalog.clock_timestamp(), $3)`,
                values: [name, plan.checksum, durationMs],
            }));
        },
        async unlogMigration({ name }) {
            await session.finish(`${name}.down.sql`, "reverted", () => ({
                text: `DELETE FROM ${quoted(history)} WHERE name = $1`,
                values: [name],
            }));
        },
    };
    return new Umzug<object>({
        migrations: [...plans.values()].map((plan) => ({
            name: plan.name,
            up: () => session.run(plan, "up"),
            down: () => session.run(plan, "down"),
        })),
        storage,
        context: {},
        logger: undefined,
    });
}

interface Prepared {
    dir: string;
    files: MigrationFile[];
    target: Target;
    history: string;
    log: (line: string) => void;
}

function prepare(opts: RunOptions): Prepared {
    const lockTimeoutMs = opts.lockTimeoutMs;
    if (lockTimeoutMs !== undefined && !(Number.isInteger(lockTimeoutMs) && lockTimeoutMs >= 1)) {
        // PostgreSQL reads a lock_timeout of 0 as "wait forever": the very hang the option exists to prevent.
        throw new MigrateError(
            `lockTimeoutMs must be a whole number of milliseconds >= 1 (0 would mean wait forever), got ${lockTimeoutMs}`,
        );
    }
    const dir = opts.migrationsDir ?? defaultMigrationsDir();
    const history = historyTableName(opts.historyTable);
    return {
        dir,
        history,
        files: readMigrations(dir, history),
        target: parseDatabaseUrl(opts.databaseUrl ?? databaseUrlFromEnv()),
        log: opts.log ?? (() => undefined),
    };
}

function emptyResult(command: RunResult["command"], historyTable: string): RunResult {
    return {
        command,
        applied: [],
        reverted: [],
        migrations: [],
        pending: [],
        backup: null,
        invalidIndexes: [],
        historyTable,
        outOfOrder: [],
    };
}

async function serverVersionNum(client: ClientBase): Promise<number> {
    const r = await client.query<{ server_version_num: string }>("SHOW server_version_num");
    return Number(r.rows[0]?.server_version_num);
}

/**
 * Connects (with retry), takes the migration lock, checks the history against the files, then runs
 * `plan` (which returns the migrations to run) through umzug. Every file of the run is planned (and
 * refused, if it must be) before anything runs or is backed up. Lock and connection are released in
 * `finally`, whatever happens.
 */
async function mutate(
    command: "up" | "down",
    opts: RunOptions,
    plan: (files: MigrationFile[], history: HistoryRow[]) => MigrationFile[],
): Promise<RunResult> {
    const { dir, files, target, history: table, log } = prepare(opts);
    const result = emptyResult(command, table);
    const client: Client = await connectWithRetry(target, opts.waitSeconds ?? 30);
    const lockTimeoutMs = opts.lockTimeoutMs ?? 5000;
    const session = new Session(client, lockTimeoutMs, table, log);
    let locked = false;
    try {
        await acquireLock(client, opts.advisoryLockTimeoutSeconds ?? 60, log);
        locked = true;
        const history = await readHistory(client, table);
        checkConsistency(dir, files, history);
        const todo = plan(files, history);
        // How the server will read backslashes in '...' (the splitter must read them the same way).
        const scs = await client.query<{ standard_conforming_strings: string }>("SHOW standard_conforming_strings");
        const conforming = scs.rows[0]?.standard_conforming_strings !== "off";
        const plans = new Map(
            todo.map((f) => [f.name, command === "up" ? upPlan(f, conforming) : downPlan(f, conforming)]),
        );
        // A running backup pass holds every table's ACCESS SHARE lock: wait for it (or end it) first.
        if (todo.length > 0) await waitForBackupPass(client, opts.backupWaitSeconds ?? 600, log);
        if (todo.length > 0 && opts.backupDir) {
            const label = command === "up" ? todo[0]!.name : `down-${todo[0]!.name}`;
            result.backup = await backupDatabase({
                target,
                dir: opts.backupDir,
                label,
                serverVersionNum: await serverVersionNum(client),
                pgDump: opts.pgDump,
                // The same bound as each migration's lock_timeout: neither may block behind the app for long.
                lockWaitTimeoutMs: lockTimeoutMs,
            });
            log(`backup written to ${result.backup}`);
        }
        // Only now, after the backup: a failed backup must leave the database untouched.
        if (todo.length > 0) await ensureHistoryTable(client, table, log);
        const umzug = buildUmzug(plans, session, client, table);
        try {
            if (command === "up") await umzug.up({ migrations: todo.map((m) => m.name) });
            else await umzug.down({ migrations: todo.map((m) => m.name) });
        } catch (err) {
            // umzug wraps what the migration threw; ours already names the file and the way out.
            const cause = (err as { cause?: unknown }).cause;
            throw cause instanceof MigrateError ? cause : err;
        }
        return await finishResult(result, session, client, files, table, log);
    } catch (err) {
        await session.rollback();
        const failure =
            err instanceof MigrateError
                ? err
                : new MigrateError(`migration ${command} failed: ${(err as Error).message}`, { cause: err });
        await finishResult(result, session, client, files, table, () => undefined).catch(() => undefined);
        failure.result = result;
        throw failure;
    } finally {
        if (locked) await releaseLock(client).catch(() => undefined);
        await client.end().catch(() => undefined);
    }
}

async function finishResult(
    result: RunResult,
    session: Session,
    client: ClientBase,
    files: MigrationFile[],
    table: string,
    log: (line: string) => void,
): Promise<RunResult> {
    if (result.command === "up") result.applied = session.done;
    else result.reverted = session.done;
    const history = await readHistory(client, table);
    result.migrations = states(files, history);
    result.pending = pendingOf(files, history).map((f) => f.name);
    result.outOfOrder = outOfOrderOf(files, history);
    result.invalidIndexes = await invalidIndexes(client);
    const count = result.command === "up" ? `applied ${result.applied.length}` : `reverted ${result.reverted.length}`;
    log(`${count}, ${result.pending.length} pending`);
    return result;
}

/** Applies every pending migration (or up to and including `opts.to`). */
export function up(opts: RunOptions = {}): Promise<RunResult> {
    return mutate("up", opts, (files, history) => {
        const pending = pendingOf(files, history);
        if (opts.to === undefined) return pending;
        const idx = files.findIndex((f) => f.name === opts.to);
        if (idx === -1) throw new MigrateError(`--to ${opts.to}: no migration file named ${opts.to}.sql`);
        return pending.filter((p) => files.indexOf(p) <= idx);
    });
}

/**
 * Reverts the last applied migration, or with `opts.to` every applied migration back to and including
 * that one (umzug's meaning of `to`); `to: "0"` reverts all. Refuses before reverting anything if one of
 * them has no down file.
 */
export function down(opts: RunOptions = {}): Promise<RunResult> {
    return mutate("down", opts, (files, history) => {
        const byName = new Map(files.map((f) => [f.name, f]));
        const applied = history.map((h) => byName.get(h.name)!).reverse();
        let todo: MigrationFile[];
        if (opts.to === undefined) todo = applied.slice(0, 1);
        else if (opts.to === "0") todo = applied;
        else {
            const idx = applied.findIndex((f) => f.name === opts.to);
            if (idx === -1) {
                throw new MigrateError(
                    `--to ${opts.to}: not an applied migration; applied: ${applied.map((f) => f.name).join(", ") || "none"}`,
                );
            }
            todo = applied.slice(0, idx + 1);
        }
        const noDown = todo.filter((f) => f.down === null);
        if (noDown.length > 0) {
            throw new MigrateError(
                `cannot revert ${noDown.map((f) => `${f.name}.sql`).join(", ")}: no .down.sql beside it; write ${noDown.map((f) => `${f.name}.down.sql`).join(", ")} first; nothing was reverted`,
                { file: `${noDown[0]!.name}.sql` },
            );
        }
        return todo;
    });
}

/**
 * Applied (and failed) migrations with time and checksum state, pending ones, INVALID indexes. Takes no
 * lock, changes nothing; problemsOf(result) says what needs attention.
 */
export async function status(opts: RunOptions = {}): Promise<RunResult> {
    const { files, target, history: table } = prepare(opts);
    const client = await connectWithRetry(target, opts.waitSeconds ?? 30);
    try {
        const history = await readHistory(client, table);
        const result = emptyResult("status", table);
        result.migrations = states(files, history);
        result.pending = pendingOf(files, history).map((f) => f.name);
        result.outOfOrder = outOfOrderOf(files, history);
        result.invalidIndexes = await invalidIndexes(client);
        return result;
    } finally {
        await client.end().catch(() => undefined);
    }
}

/**
 * Ends the failed state of a `-- migrate:no-transaction` file, after a person fixed the database:
 * `applied` records it as applied as it is on disk now (nothing runs); `retry` removes the mark, so the
 * next `up` runs the whole file again. Under the migration lock; refuses a file that is not marked failed.
 */
export async function resolve(opts: RunOptions & { name: string; as: "applied" | "retry" }): Promise<RunResult> {
    const { files, target, history: table, log } = prepare(opts);
    const client = await connectWithRetry(target, opts.waitSeconds ?? 30);
    let locked = false;
    try {
        await acquireLock(client, opts.advisoryLockTimeoutSeconds ?? 60, log);
        locked = true;
        const history = await readHistory(client, table);
        const row = history.find((h) => h.name === opts.name);
        if (!row || row.status !== "failed") {
            const failed = history.filter((h) => h.status === "failed").map((h) => h.name);
            throw new MigrateError(
                `${opts.name} is not marked failed (${row ? "it is applied" : "it is not in the history"}); nothing was changed; failed: ${failed.join(", ") || "none"}`,
            );
        }
        if (opts.as === "applied") {
            const file = files.find((f) => f.name === opts.name);
            if (!file)
                throw new MigrateError(`${opts.name}.sql is not in the migrations directory; nothing was changed`);
            await client.query(
                `UPDATE ${quoted(table)} SET status = 'applied', checksum = $2, failed_statement = NULL, error = NULL, applied_at = pg_catalog.clock_timestamp() WHERE name = $1`,
                [opts.name, file.checksum],
            );
            log(`${opts.name} recorded as applied (nothing was run)`);
        } else {
            await client.query(`DELETE FROM ${quoted(table)} WHERE name = $1`, [opts.name]);
            log(`${opts.name} is pending again: the next up runs the whole file`);
        }
        const result = emptyResult("resolve", table);
        const after = await readHistory(client, table);
        result.migrations = states(files, after);
        result.pending = pendingOf(files, after).map((f) => f.name);
        result.invalidIndexes = await invalidIndexes(client);
        return result;
    } finally {
        if (locked) await releaseLock(client).catch(() => undefined);
        await client.end().catch(() => undefined);
    }
}
