/**
 * Splits a SQL file into statements, for `-- migrate:no-transaction` files: PostgreSQL runs a multi-
 * statement simple query as one implicit transaction, where CREATE INDEX CONCURRENTLY is refused, so
 * those files are sent one statement at a time. Understands '...' (and E'...' escapes), "...",
 * $tag$...$tag$, -- and nested /* *\/ comments. Returns each statement with its offset in the file, so a
 * server error position maps back to the file.
 */
export function splitStatements(sql: string): { text: string; offset: number }[] {
    const out: { text: string; offset: number }[] = [];
    let start = 0;
    let i = 0;
    const n = sql.length;
    const push = (end: number) => {
        const text = sql.slice(start, end);
        if (stripComments(text).trim() !== "") out.push({ text, offset: start });
        start = end + 1;
    };
    while (i < n) {
        const c = sql[i]!;
        const next = sql[i + 1];
        if (c === "-" && next === "-") {
            const eol = sql.indexOf("\n", i);
            i = eol === -1 ? n : eol + 1;
        } else if (c === "/" && next === "*") {
            let depth = 1;
            i += 2;
            while (i < n && depth > 0) {
                if (sql[i] === "/" && sql[i + 1] === "*") {
                    depth++;
                    i += 2;
                } else if (sql[i] === "*" && sql[i + 1] === "/") {
                    depth--;
                    i += 2;
                } else i++;
            }
        } else if (c === "'") {
            const escapes = i > 0 && /[eE]/.test(sql[i - 1]!) && (i < 2 || !/\w/.test(sql[i - 2]!));
            i++;
            while (i < n) {
                if (escapes && sql[i] === "\\") i += 2;
                else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
                else if (sql[i] === "'") {
                    i++;
                    break;
                } else i++;
            }
        } else if (c === '"') {
            const end = sql.indexOf('"', i + 1);
            i = end === -1 ? n : end + 1;
        } else if (c === "$" && (i === 0 || !/[\w$]/.test(sql[i - 1]!))) {
            const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
            if (tag) {
                const end = sql.indexOf(tag[0], i + tag[0].length);
                i = end === -1 ? n : end + tag[0].length;
            } else i++;
        } else if (c === ";") {
            push(i);
            i++;
        } else i++;
    }
    if (start < n) push(n);
    return out;
}

/** The text without -- and /* *\/ comments (approximate: ignores quoting; for checks, not for running). */
export function stripComments(s: string): string {
    return s.replace(/--[^\n]*/g, "").replace(/\/\*[\s\S]*?\*\//g, "");
}

/** 1-based line and column of a 1-based character position in `text` (PostgreSQL's error position). */
export function lineAndColumn(text: string, position: number): { line: number; column: number } {
    const before = text.slice(0, Math.max(0, position - 1));
    const lines = before.split("\n");
    return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
}
