import type { RunResult } from "./report";

/**
 * Every failure the runner reports on purpose. The message names the problem (the file, the server, the
 * lock) and the way out; the CLI prints it as is and exits non-zero.
 */
export class MigrateError extends Error {
    /** The migration file the error is about, relative to the migrations directory, if any. */
    readonly file: string | undefined;
    /** PostgreSQL's SQLSTATE, when the error came from the server. */
    readonly sqlState: string | undefined;
    /** 1-based line and column in `file` where PostgreSQL located the error. */
    readonly line: number | undefined;
    readonly column: number | undefined;
    /** What was done before the failure (set by the runner): applied files stay applied. */
    result: RunResult | undefined;

    constructor(
        message: string,
        details: { file?: string; sqlState?: string; line?: number; column?: number; cause?: unknown } = {},
    ) {
        super(message, details.cause === undefined ? undefined : { cause: details.cause });
        this.name = "MigrateError";
        this.file = details.file;
        this.sqlState = details.sqlState;
        this.line = details.line;
        this.column = details.column;
        this.result = undefined;
    }
}

/**
 * Removes passwords where they appear as passwords: the password part of any URL (`scheme://user:***@`),
 * and `password=...` / `PGPASSWORD=...` connection parameters, whatever their value. Nowhere else: a
 * password such as `p` or `database` leaves "permission denied" and "database name" readable. (`_secret`
 * is kept for callers that know the password; no message of ours prints it anywhere else.)
 */
export function redact(text: string, _secret?: string): string {
    return (
        text
            // (The placeholder of our own messages, postgres://USER:PASSWORD@HOST, stays.)
            .replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)(?!PASSWORD@)[^\s@]*@/gi, "$1***@")
            .replace(/\b((?:PG)?password\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s;,&]+)/gi, "$1***")
    );
}
