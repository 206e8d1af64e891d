// How each file of a run will run, decided before anything of the run executes (issue 11): the body of a
// transactional file (a whole-file BEGIN; ... COMMIT; unwrapped), the statements of a no-transaction one,
// and every refusal (transaction control the runner cannot honour, COPY FROM STDIN, lock releases).
import { MigrateError } from "./errors";
import type { MigrationFile } from "./files";
import {
    beginHasOptions,
    endsTransaction,
    isCopyFromStdin,
    releasesLocks,
    splitStatements,
    statementLine,
    transactionControl,
    type Statement,
} from "./sql";

/**
 * How a file runs, decided from its statements before anything of the run executes: the body to send (a
 * file wrapped in its own BEGIN; ... COMMIT; runs its inside, in the runner's transaction) or the
 * statements one by one (`-- migrate:no-transaction`). Transaction control the runner cannot honour and
 * COPY ... FROM STDIN are refused here, with nothing executed.
 */
export interface FilePlan {
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

export function upPlan(f: MigrationFile, conforming: boolean): FilePlan {
    return planFile(`${f.name}.sql`, f.name, f.checksum, f.sql, f.noTransaction, conforming);
}

export function downPlan(f: MigrationFile, conforming: boolean): FilePlan {
    // Checked before anything runs (in down's plan); kept here so nothing ever "reverts" silently.
    if (!f.down) throw new MigrateError(`${f.name}.sql has no ${f.name}.down.sql; write one to revert it`);
    return planFile(`${f.name}.down.sql`, f.name, f.checksum, f.down.sql, f.down.noTransaction, conforming);
}
