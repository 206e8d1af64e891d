import { performance } from "node:perf_hooks";
import type { Client, ClientBase, DatabaseError } from "pg";
import { Umzug, type UmzugStorage } from "umzug";
import { backupDatabase } from "./backup";
import { connectWithRetry, parseDatabaseUrl, type Target } from "./connect";
import { MigrateError } from "./errors";
import { defaultMigrationsDir, readMigrations, type MigrationFile } from "./files";
import { ensureHistoryTable, readHistory, type HistoryRow } from "./history";
import { historyTableName, quoted } from "./historyName";
import { acquireLock, releaseLock } from "./lock";
import { LOCK_CLASS_ID, LOCK_OBJ_ID } from "./lock";
import {
    beginHasOptions,
    endsTransaction,
    isCopyFromStdin,
    lineAndColumn,
    releasesLocks,
    splitStatements,
    statementLine,
    transactionControl,
    type Statement,
} from "./sql";

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

async function invalidIndexes(db: Pick<ClientBase, "query">): Promise<string[]> {
    const r = await db.query<{ name: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE NOT i.indisvalid ORDER BY 1`,
    );
    return r.rows.map((row) => row.name);
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
 * How a file runs, decided from its statements before anything of the run executes: the body to send (a
 * file wrapped in its own BEGIN; ... COMMIT; runs its inside, in the runner's transaction) or the
 * statements one by one (`-- migrate:no-transaction`). Transaction control the runner cannot honour and
 * COPY ... FROM STDIN are refused here, with nothing executed.
 */
interface FilePlan {
    /** File name, e.g. `003_x.sql` or `003_x.down.sql`. */
    file: string;
    /** The migration's name (the history key). */
    name: string;
    checksum: string;
    sql: string;
    noTransaction: boolean;
    /** Transactional: the text sent as one query, and where it starts in the file. */
    body: Statement;
    /** No-transaction: the statements in order. */
    statements: Statement[];
}

function refuse(file: string, sql: string, stmt: Statement, why: string): MigrateError {
    const line = statementLine(sql, stmt);
    return new MigrateError(`${file} line ${line}: ${why}; nothing was run`, { file, line });
}

function planFile(
    file: string,
    name: string,
    checksum: string,
    sql: string,
    noTransaction: boolean,
    standardConformingStrings: boolean,
): FilePlan {
    const statements = splitStatements(sql, { standardConformingStrings });
    for (const stmt of statements) {
        if (isCopyFromStdin(stmt.text)) {
            throw refuse(
                file,
                sql,
                stmt,
                "COPY ... FROM STDIN needs its rows sent through the copy protocol, which a migration file cannot do; write the rows as INSERT ... VALUES, or COPY from a file the server can read (COPY ... FROM '/path', superuser or pg_read_server_files)",
            );
        }
        if (releasesLocks(stmt.text)) {
            throw refuse(
                file,
                sql,
                stmt,
                "DISCARD ALL and pg_advisory_unlock(_all) release the runner's migration lock, so another runner could apply the same files at the same time; remove it (the runner resets the session between files itself)",
            );
        }
    }
    const control = statements.map((stmt) => ({ stmt, kind: transactionControl(stmt.text) }));
    const plan = { file, name, checksum, sql, noTransaction, statements, body: { text: sql, offset: 0 } };
    if (noTransaction) {
        // Statements run one at a time on one connection, so BEGIN ... COMMIT blocks work as in psql; one
        // left open (AND CHAIN starts the next at once; ROLLBACK TO stays inside) would hold its locks past
        // the file and take the history row down with it; two-phase commit is not for migrations.
        let open: Statement | null = null;
        for (const { stmt, kind } of control) {
            if (kind === "PREPARE TRANSACTION" || kind === "COMMIT PREPARED" || kind === "ROLLBACK PREPARED") {
                throw refuse(file, sql, stmt, `${kind} (two-phase commit) is not supported in a migration`);
            }
            if (kind === "BEGIN" || kind === "START TRANSACTION") open = stmt;
            else if (endsTransaction(stmt.text, kind)) open = null;
            // COMMIT/ROLLBACK AND CHAIN end one transaction and start the next at once.
            else if (["COMMIT", "END", "ROLLBACK", "ABORT"].includes(kind ?? "")) open = stmt;
        }
        if (open)
            throw refuse(file, sql, open, "this transaction is never committed or rolled back; end it in the file");
        return plan;
    }
    const kinds = control.filter((c) => c.kind !== null);
    if (kinds.length === 0) return plan;
    // golang-migrate's style: the whole file in its own BEGIN; ... COMMIT;. The runner's transaction is
    // the same thing, so the inside runs in it (with the history row).
    const first = control[0]!;
    const last = control.at(-1)!;
    const opens = first.kind === "BEGIN" || first.kind === "START TRANSACTION";
    const closes = (last.kind === "COMMIT" || last.kind === "END") && endsTransaction(last.stmt.text, last.kind);
    if (opens && closes && kinds.length === 2) {
        if (beginHasOptions(first.stmt.text)) {
            throw refuse(
                file,
                sql,
                first.stmt,
                "a wrapping BEGIN with options (an isolation level, READ ONLY, DEFERRABLE) cannot be honoured inside the runner's transaction; remove the options, or make the first line -- migrate:no-transaction to run the block as written",
            );
        }
        const start = first.stmt.offset + first.stmt.text.length + 1;
        return { ...plan, body: { text: sql.slice(start, last.stmt.offset), offset: start } };
    }
    // The statement to blame: inside a wrapper, the first control statement between its ends.
    const inner = opens && closes ? kinds.slice(1, -1) : kinds;
    const culprit = inner[0] ?? kinds[0]!;
    throw refuse(
        file,
        sql,
        culprit.stmt,
        `${culprit.kind} inside a file the runner wraps in one transaction (with its history row) would commit or end part of it on its own; remove it (a file may be wrapped whole in BEGIN; ... COMMIT;), split the file, or make its first line -- migrate:no-transaction`,
    );
}

function describeFailure(
    err: unknown,
    plan: FilePlan,
    stmt: Statement,
    lockTimeoutMs: number,
    outcome: string,
): MigrateError {
    const e = err as Partial<DatabaseError> & Error;
    const parts: string[] = [];
    let line: number | undefined;
    let column: number | undefined;
    if (e.position !== undefined) {
        ({ line, column } = lineAndColumn(plan.sql, stmt.offset + Number(e.position)));
    } else if (plan.noTransaction) {
        line = statementLine(plan.sql, stmt);
    }
    parts.push(
        `${plan.file} failed${line !== undefined ? ` at line ${line}${column !== undefined ? `, column ${column}` : ""}` : ""}: ${e.message}`,
    );
    if (e.code) parts[0] += ` (SQLSTATE ${e.code})`;
    if (e.detail) parts.push(`detail: ${e.detail}`);
    if (e.hint) parts.push(`hint: ${e.hint}`);
    if (e.where) parts.push(`where: ${e.where}`);
    if (e.code === "55P03") {
        parts.push(
            `another session holds a lock this migration needs and lock_timeout is ${lockTimeoutMs} ms; retry when the database is quieter or raise --lock-timeout`,
        );
    }
    parts.push(outcome);
    return new MigrateError(parts.join("; "), { file: plan.file, sqlState: e.code, line, column, cause: err });
}

/**
 * What every file starts from, and what the runner's own bookkeeping runs under: the connection's own
 * role and settings. A file's SET ROLE, search_path, session_replication_role or statement_timeout never
 * reaches the next file or the history row. (DISCARD ALL would do this too, but it also releases the
 * migration's advisory lock.) RESET ALL skips role and session_authorization, hence the first two.
 */
const RESET_SETTINGS = "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL";
const RESET_SESSION = `${RESET_SETTINGS}; CLOSE ALL; UNLISTEN *; DEALLOCATE ALL; DISCARD TEMP; DISCARD SEQUENCES; DISCARD PLANS`;

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
        private readonly history: string,
        private readonly log: (line: string) => void,
    ) {}

    async run(plan: FilePlan, direction: "up" | "down"): Promise<void> {
        this.startedAt = performance.now();
        if (!plan.noTransaction) {
            await this.client.query("BEGIN");
            this.inTransaction = true;
            // The transaction's id identifies it whatever the file SETs: transaction_timestamp()::text did
            // not (SET LOCAL TimeZone or DateStyle changes how it prints). pg_current_xact_id() assigns the
            // id now; the history row needs one anyway.
            const r = await this.client.query<{ xid: string }>(
                "SELECT pg_catalog.set_config('lock_timeout', $1, true), pg_catalog.pg_current_xact_id()::text AS xid",
                [`${this.lockTimeoutMs}ms`],
            );
            this.txId = r.rows[0]?.xid ?? null;
            try {
                await this.client.query(plan.body.text);
            } catch (err) {
                await this.rollback();
                throw describeFailure(
                    err,
                    plan,
                    plan.body,
                    this.lockTimeoutMs,
                    "rolled back: the database is as it was before this file, later migrations were not attempted; fix the file and run again",
                );
            }
            return;
        }
        await this.client.query("SELECT pg_catalog.set_config('lock_timeout', $1, false)", [`${this.lockTimeoutMs}ms`]);
        let block: { index: number; stmt: Statement } | null = null;
        for (const [index, stmt] of plan.statements.entries()) {
            const kind = transactionControl(stmt.text);
            try {
                await this.client.query(stmt.text);
            } catch (err) {
                throw await this.failedWithoutTransaction(err, plan, direction, index, stmt, block);
            }
            if (kind === "BEGIN" || kind === "START TRANSACTION") block = { index, stmt };
            else if (endsTransaction(stmt.text, kind)) block = null;
        }
        // Whatever the planner missed (a procedure that ends with an open transaction): outside a transaction
        // block, a statement is its own transaction, so now() equals statement_timestamp().
        const idle = await this.client.query<{ idle: boolean }>(
            "SELECT pg_catalog.now() = pg_catalog.statement_timestamp() AS idle",
        );
        if (!idle.rows[0]?.idle) {
            await this.client.query("ROLLBACK").catch(() => undefined);
            await this.client.query(RESET_SESSION).catch(() => undefined);
            throw new MigrateError(
                `${plan.file} left a transaction open at its end; it was rolled back, and with it whatever ran since its last BEGIN; the file is NOT recorded; end every transaction it opens, then check the database and run again`,
                { file: plan.file },
            );
        }
        await this.client.query(RESET_SESSION);
        await this.checkLock(plan.file);
    }

    /** The migration lock is still this session's: a file cannot have released it (planFile refuses the ways). */
    async checkLock(file: string): Promise<void> {
        const r = await this.client.query<{ held: boolean }>(
            `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid() AND locktype = 'advisory'
                AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 2) AS held`,
            [LOCK_CLASS_ID, LOCK_OBJ_ID],
        );
        if (!r.rows[0]?.held) {
            throw new MigrateError(
                `the migration lock was released while ${file} ran, so another runner may have run files at the same time; nothing after ${file} was run; check migration_runner.history and the database, then run again`,
                { file },
            );
        }
    }

    /**
     * A no-transaction file stopped at `stmt`: what ran before it stays (except an open BEGIN block, rolled
     * back here), so the file is recorded as failed with the statement and the error, and `up` refuses it
     * until someone resolves it. Says exactly what happened, and which INVALID indexes exist now.
     */
    private async failedWithoutTransaction(
        err: unknown,
        plan: FilePlan,
        direction: "up" | "down",
        index: number,
        stmt: Statement,
        block: { index: number; stmt: Statement } | null,
    ): Promise<MigrateError> {
        const n = index + 1;
        // Outside a block this only warns; inside one (failed, so aborted) it ends it.
        await this.client.query("ROLLBACK").catch(() => undefined);
        await this.client.query(RESET_SESSION).catch(() => undefined);
        const message = direction === "down" ? `while reverting: ${(err as Error).message}` : (err as Error).message;
        const before = (k: number) => (k === 0 ? "no statement before it ran" : `statements 1 to ${k} stay applied`);
        const kept =
            index === 0
                ? "no statement before it ran"
                : block
                  ? `${before(block.index)}; ${block.index + 1 === index ? `statement ${index}` : `statements ${block.index + 1} to ${index}`} (the BEGIN block at line ${statementLine(plan.sql, block.stmt)}) were rolled back with it`
                  : before(index);
        const resolveHow =
            direction === "down"
                ? `finish the revert by hand, then \`migrate resolve ${plan.name} --retry\` (records it as not applied: the next up runs its up file), or undo what the down file did and \`migrate resolve ${plan.name} --applied\``
                : `fix the database by hand, then \`migrate resolve ${plan.name} --applied\` (records it as applied), or undo what ran and \`migrate resolve ${plan.name} --retry\` (the next up runs the whole file again)`;
        let recorded: string;
        try {
            await this.client.query(
                `INSERT INTO ${quoted(this.history)} AS h (name, checksum, applied_at, duration_ms, status, failed_statement, error)
                 VALUES ($1, $2, pg_catalog.clock_timestamp(), $3, 'failed', $4, $5)
                 ON CONFLICT (name) DO UPDATE SET status = 'failed', failed_statement = $4, error = $5, applied_at = pg_catalog.clock_timestamp()`,
                [plan.name, plan.checksum, Math.round(performance.now() - this.startedAt), n, message],
            );
            recorded = `${plan.name} is recorded as failed (${direction === "down" ? "while reverting, " : ""}statement ${n}), and \`up\` refuses it until you resolve it: ${resolveHow}`;
        } catch (recordErr) {
            recorded = `recording the failure also failed (${(recordErr as Error).message}): check the database by hand before running again`;
        }
        const invalid = await invalidIndexes(this.client).catch(() => []);
        const indexes =
            invalid.length > 0
                ? `; INVALID index(es) now in the database (a failed CREATE INDEX CONCURRENTLY leaves one): ${invalid.join(", ")}; drop each with DROP INDEX CONCURRENTLY before retrying`
                : "";
        return describeFailure(
            err,
            plan,
            stmt,
            this.lockTimeoutMs,
            `statement ${n} of ${plan.statements.length}; it ran without a transaction (-- migrate:no-transaction): ${kept}; ${recorded}${indexes}`,
        );
    }

    /** Writes (or deletes) the history row and commits the file's transaction with it. */
    async finish(
        file: string,
        verb: "applied" | "reverted",
        history: (durationMs: number) => { text: string; values: unknown[] },
    ): Promise<void> {
        try {
            if (this.inTransaction) {
                // Transaction control is refused before a file runs; a COMMIT hidden where the splitter does
                // not look (a procedure's body) would still end the runner's transaction: caught here.
                const r = await this.client.query<{ xid: string }>(
                    "SELECT pg_catalog.pg_current_xact_id()::text AS xid",
                );
                if (r.rows[0]?.xid !== this.txId) {
                    throw new MigrateError(
                        `${file} ended the runner's transaction (a COMMIT or ROLLBACK ran inside it, e.g. in a procedure it called): its statements may be committed or discarded, and the file is NOT recorded as ${verb}; check what it left in the database and remove transaction control from it`,
                        { file },
                    );
                }
                // The file's SET ROLE or search_path must not decide where or as whom the row is written.
                await this.client.query(RESET_SETTINGS);
                await this.checkLock(file);
            }
            const q = history(Math.round(performance.now() - this.startedAt));
            await this.client.query(q.text, q.values);
            if (this.inTransaction) {
                try {
                    await this.client.query("COMMIT");
                } catch (err) {
                    // A deferred constraint checks at COMMIT: the file's error, and nothing of it stays.
                    this.inTransaction = false;
                    await this.client.query(RESET_SESSION).catch(() => undefined);
                    const e = err as Partial<DatabaseError> & Error;
                    throw new MigrateError(
                        `${file} failed at COMMIT: ${e.message}${e.code ? ` (SQLSTATE ${e.code})` : ""}${e.detail ? `; detail: ${e.detail}` : ""}; rolled back: the database is as it was before this file, later migrations were not attempted; fix the file and run again`,
                        { file, sqlState: e.code, cause: err },
                    );
                }
                this.inTransaction = false;
                await this.client.query(RESET_SESSION);
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
        await this.client.query(RESET_SESSION).catch(() => undefined);
    }
}

function upPlan(f: MigrationFile, conforming: boolean): FilePlan {
    return planFile(`${f.name}.sql`, f.name, f.checksum, f.sql, f.noTransaction, conforming);
}

function downPlan(f: MigrationFile, conforming: boolean): FilePlan {
    // Checked before anything runs (in down's plan); kept here so nothing ever "reverts" silently.
    if (!f.down) throw new MigrateError(`${f.name}.sql has no ${f.name}.down.sql; write one to revert it`);
    return planFile(`${f.name}.down.sql`, f.name, f.checksum, f.down.sql, f.down.noTransaction, conforming);
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
        target: parseDatabaseUrl(opts.databaseUrl ?? process.env.DATABASE_URL),
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
