import type { RunResult } from "./runner";

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

/** Replaces every occurrence of `secret` (and its URL-encoded form) in `text`. */
export function redact(text: string, secret: string | undefined): string {
    if (!secret) return text;
    let out = text.split(secret).join("***");
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join("***");
    return out;
}
