// One file at a time on the runner's connection (issue 11): from a clean session, inside the runner's
// transaction or statement by statement, its history row written under the connection's own settings, a
// no-transaction file that fails half-way recorded as failed, the migration lock checked after each file.
import { performance } from "node:perf_hooks";
import type { ClientBase, DatabaseError } from "pg";
import { MigrateError } from "./errors";
import { quoted } from "./historyName";
import { LOCK_CLASS_ID, LOCK_OBJ_ID } from "./lock";
import type { FilePlan } from "./plan";
import type { MigrationRun } from "./report";
import { endsTransaction, lineAndColumn, statementLine, transactionControl, type Statement } from "./sql";

/** Indexes PostgreSQL marks INVALID (a failed CREATE INDEX CONCURRENTLY leaves one), as schema.name. */
export async function invalidIndexes(db: Pick<ClientBase, "query">): Promise<string[]> {
    const r = await db.query<{ name: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE NOT i.indisvalid ORDER BY 1`,
    );
    return r.rows.map((row) => row.name);
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
export class Session {
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
