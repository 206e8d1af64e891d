import { performance } from "node:perf_hooks";
import type { Client, ClientBase, DatabaseError } from "pg";
import { Umzug, type UmzugStorage } from "umzug";
import { backupDatabase } from "./backup";
import { connectWithRetry, parseDatabaseUrl, type Target } from "./connect";
import { MigrateError } from "./errors";
import { defaultMigrationsDir, readMigrations, type MigrationFile } from "./files";
import { ensureHistoryTable, HISTORY, readHistory, type HistoryRow } from "./history";
import { acquireLock, releaseLock } from "./lock";
import { lineAndColumn, splitStatements } from "./sql";

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
    /** When set and something is to be applied or reverted, pg_dump there first. */
    backupDir?: string | null;
    /** pg_dump to run for backups. Default: env PG_DUMP, else `pg_dump` on PATH. */
    pgDump?: string;
    /** up: apply up to and including this one. down: revert back to and including this one, "0" = all. */
    to?: string;
    /** Human progress lines (one per migration, a summary). Default: none. */
    log?: (line: string) => void;
}

export interface MigrationRun {
    name: string;
    durationMs: number;
}

export interface MigrationState {
    name: string;
    appliedAt: string;
    /** `missing`: recorded as applied, but its file is gone. */
    checksum: "ok" | "drifted" | "missing";
}

export interface RunResult {
    command: "up" | "down" | "status";
    applied: MigrationRun[];
    reverted: MigrationRun[];
    /** Every applied migration after the run, in order. */
    migrations: MigrationState[];
    pending: string[];
    backup: string | null;
}

function states(files: MigrationFile[], history: HistoryRow[]): MigrationState[] {
    const byName = new Map(files.map((f) => [f.name, f]));
    return history.map((h) => {
        const f = byName.get(h.name);
        return {
            name: h.name,
            appliedAt: h.applied_at.toISOString(),
            checksum: f === undefined ? "missing" : f.checksum === h.checksum ? "ok" : "drifted",
        };
    });
}

function pendingOf(files: MigrationFile[], history: HistoryRow[]): MigrationFile[] {
    const applied = new Set(history.map((h) => h.name));
    return files.filter((f) => !applied.has(f.name));
}

/** Refuses drifted, missing and out-of-order migrations: the checks every mutating command makes first. */
function checkConsistency(dir: string, files: MigrationFile[], history: HistoryRow[]): void {
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

interface Describable {
    file: string;
    sql: string;
    noTransaction: boolean;
    lockTimeoutMs: number;
}

function describeFailure(err: unknown, what: Describable, offset: number): MigrateError {
    const e = err as Partial<DatabaseError> & Error;
    const parts: string[] = [];
    let line: number | undefined;
    let column: number | undefined;
    if (e.position !== undefined) {
        ({ line, column } = lineAndColumn(what.sql, offset + Number(e.position)));
    }
    parts.push(`${what.file} failed${line !== undefined ? ` at line ${line}, column ${column}` : ""}: ${e.message}`);
    if (e.code) parts[0] += ` (SQLSTATE ${e.code})`;
    if (e.detail) parts.push(`detail: ${e.detail}`);
    if (e.hint) parts.push(`hint: ${e.hint}`);
    if (e.where) parts.push(`where: ${e.where}`);
    if (e.code === "55P03") {
        parts.push(
            `another session holds a lock this migration needs and lock_timeout is ${what.lockTimeoutMs} ms; retry when the database is quieter or raise --lock-timeout`,
        );
    }
    parts.push(
        what.noTransaction
            ? "it ran without a transaction (-- migrate:no-transaction): statements before the failing one stay applied, and it is not recorded as applied; make the file safe to re-run, then run again"
            : "rolled back: the database is as it was before this file, later migrations were not attempted; fix the file and run again",
    );
    return new MigrateError(parts.join("; "), { file: what.file, sqlState: e.code, line, column, cause: err });
}

/**
 * Runs one file at a time on the runner's dedicated connection. A transactional file runs inside
 * BEGIN ... and the history row is written by the storage before COMMIT, so both commit or neither.
 */
class Session {
    private inTransaction = false;
    private txId: string | null = null;
    private startedAt = 0;
    readonly done: MigrationRun[] = [];

    constructor(
        private readonly client: ClientBase,
        private readonly lockTimeoutMs: number,
        private readonly log: (line: string) => void,
    ) {}

    async run(file: string, sql: string, noTransaction: boolean): Promise<void> {
        const what = { file, sql, noTransaction, lockTimeoutMs: this.lockTimeoutMs };
        this.startedAt = performance.now();
        if (!noTransaction) {
            await this.client.query("BEGIN");
            this.inTransaction = true;
            // The transaction's id identifies it whatever the file SETs: transaction_timestamp()::text did
            // not (SET LOCAL TimeZone or DateStyle changes how it prints). pg_current_xact_id() assigns the
            // id now; the history row needs one anyway.
            const r = await this.client.query<{ xid: string }>(
                "SELECT set_config('lock_timeout', $1, true), pg_current_xact_id()::text AS xid",
                [`${this.lockTimeoutMs}ms`],
            );
            this.txId = r.rows[0]?.xid ?? null;
            try {
                await this.client.query(sql);
            } catch (err) {
                await this.rollback();
                throw describeFailure(err, what, 0);
            }
            return;
        }
        await this.client.query("SELECT set_config('lock_timeout', $1, false)", [`${this.lockTimeoutMs}ms`]);
        try {
            for (const stmt of splitStatements(sql)) {
                try {
                    await this.client.query(stmt.text);
                } catch (err) {
                    throw describeFailure(err, what, stmt.offset);
                }
            }
        } finally {
            await this.client.query("RESET lock_timeout").catch(() => undefined);
        }
    }

    /** Writes (or deletes) the history row and commits the file's transaction with it. */
    async finish(
        file: string,
        verb: "applied" | "reverted",
        history: (durationMs: number) => { text: string; values: unknown[] },
    ): Promise<void> {
        try {
            if (this.inTransaction) {
                // After a COMMIT or ROLLBACK in the file this runs in another transaction, with another id.
                const r = await this.client.query<{ xid: string }>("SELECT pg_current_xact_id()::text AS xid");
                if (r.rows[0]?.xid !== this.txId) {
                    throw new MigrateError(
                        `${file} ended the runner's transaction (it contains COMMIT, ROLLBACK or BEGIN): its statements may be committed (COMMIT) or discarded (ROLLBACK), and the file is NOT recorded as ${verb}; check what it left in the database, remove transaction control from the file (the runner wraps it), or make its first line -- migrate:no-transaction`,
                        { file },
                    );
                }
            }
            const q = history(Math.round(performance.now() - this.startedAt));
            await this.client.query(q.text, q.values);
            if (this.inTransaction) {
                await this.client.query("COMMIT");
                this.inTransaction = false;
            }
            const name = file.replace(/(\.down)?\.sql$/, "");
            const durationMs = Math.round(performance.now() - this.startedAt);
            this.done.push({ name, durationMs });
            this.log(`${verb} ${name} (${durationMs} ms)`);
        } catch (err) {
            await this.rollback();
            throw err;
        }
    }

    async rollback(): Promise<void> {
        if (!this.inTransaction) return;
        this.inTransaction = false;
        await this.client.query("ROLLBACK").catch(() => undefined);
    }
}

function buildUmzug(files: MigrationFile[], session: Session, client: ClientBase): Umzug<object> {
    const byName = new Map(files.map((f) => [f.name, f]));
    const storage: UmzugStorage<object> = {
        async executed() {
            return (await readHistory(client)).map((h) => h.name);
        },
        async logMigration({ name }) {
            const f = byName.get(name)!;
            await session.finish(`${name}.sql`, "applied", (durationMs) => ({
                text: `INSERT INTO ${HISTORY} (name, checksum, applied_at, duration_ms) VALUES ($1, $2, clock_timestamp(), $3)`,
                values: [name, f.checksum, durationMs],
            }));
        },
        async unlogMigration({ name }) {
            await session.finish(`${name}.down.sql`, "reverted", () => ({
                text: `DELETE FROM ${HISTORY} WHERE name = $1`,
                values: [name],
            }));
        },
    };
    return new Umzug<object>({
        migrations: files.map((f) => ({
            name: f.name,
            path: f.path,
            up: () => session.run(`${f.name}.sql`, f.sql, f.noTransaction),
            down: async () => {
                // Checked before anything runs (planDown); kept here so umzug never "reverts" silently.
                if (!f.down) throw new MigrateError(`${f.name}.sql has no ${f.name}.down.sql; write one to revert it`);
                await session.run(`${f.name}.down.sql`, f.down.sql, f.down.noTransaction);
            },
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
    return {
        dir,
        files: readMigrations(dir),
        target: parseDatabaseUrl(opts.databaseUrl ?? process.env.DATABASE_URL),
        log: opts.log ?? (() => undefined),
    };
}

function emptyResult(command: RunResult["command"]): RunResult {
    return { command, applied: [], reverted: [], migrations: [], pending: [], backup: null };
}

async function serverVersionNum(client: ClientBase): Promise<number> {
    const r = await client.query<{ server_version_num: string }>("SHOW server_version_num");
    return Number(r.rows[0]?.server_version_num);
}

/**
 * Connects (with retry), takes the migration lock, checks the history against the files, then runs
 * `plan` (which returns the migrations to run and how to hand them to umzug). Lock and connection are
 * released in `finally`, whatever happens.
 */
async function mutate(
    command: "up" | "down",
    opts: RunOptions,
    plan: (files: MigrationFile[], history: HistoryRow[]) => MigrationFile[],
): Promise<RunResult> {
    const { dir, files, target, log } = prepare(opts);
    const result = emptyResult(command);
    const client: Client = await connectWithRetry(target, opts.waitSeconds ?? 30);
    const lockTimeoutMs = opts.lockTimeoutMs ?? 5000;
    const session = new Session(client, lockTimeoutMs, log);
    let locked = false;
    try {
        await acquireLock(client, opts.advisoryLockTimeoutSeconds ?? 60, log);
        locked = true;
        const history = await readHistory(client);
        checkConsistency(dir, files, history);
        const todo = plan(files, history);
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
        if (todo.length > 0) await ensureHistoryTable(client);
        const umzug = buildUmzug(files, session, client);
        try {
            if (command === "up") await umzug.up({ migrations: todo.map((m) => m.name) });
            else await umzug.down({ migrations: todo.map((m) => m.name) });
        } catch (err) {
            // umzug wraps what the migration threw; ours already names the file and the way out.
            const cause = (err as { cause?: unknown }).cause;
            throw cause instanceof MigrateError ? cause : err;
        }
        return await finishResult(result, session, client, files, log);
    } catch (err) {
        await session.rollback();
        const failure =
            err instanceof MigrateError
                ? err
                : new MigrateError(`migration ${command} failed: ${(err as Error).message}`, { cause: err });
        await finishResult(result, session, client, files, () => undefined).catch(() => undefined);
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
    log: (line: string) => void,
): Promise<RunResult> {
    if (result.command === "up") result.applied = session.done;
    else result.reverted = session.done;
    const history = await readHistory(client);
    result.migrations = states(files, history);
    result.pending = pendingOf(files, history).map((f) => f.name);
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

/** Applied migrations (with time and checksum state) and pending ones. Takes no lock, changes nothing. */
export async function status(opts: RunOptions = {}): Promise<RunResult> {
    const { files, target } = prepare(opts);
    const client = await connectWithRetry(target, opts.waitSeconds ?? 30);
    try {
        const history = await readHistory(client);
        const result = emptyResult("status");
        result.migrations = states(files, history);
        result.pending = pendingOf(files, history).map((f) => f.name);
        return result;
    } finally {
        await client.end().catch(() => undefined);
    }
}
