/**
 * Splits a SQL file into statements the way psql does (src/bin/psql/psqlscan.l in PostgreSQL 16): a `;`
 * ends a statement only outside '...' (and E'...' with backslash escapes), "...", $tag$...$tag$, -- and
 * nested /* *\/ comments, parentheses (CREATE RULE ... DO ALSO (...; ...)), and the BEGIN ... END blocks
 * (with CASE ... END inside them) of CREATE [OR REPLACE] FUNCTION|PROCEDURE: BEGIN ATOMIC bodies of
 * SQL-standard functions. The block rule is psql's heuristic, word for word (the {identifier} rule). Returns each
 * statement with its offset in the file, so a server error position maps back to the file.
 *
 * Used to send `-- migrate:no-transaction` files one statement at a time (PostgreSQL runs a multi-statement
 * simple query as one implicit transaction, where CREATE INDEX CONCURRENTLY is refused), and to find
 * transaction control and COPY ... FROM STDIN in any file before it runs.
 */
export interface Statement {
    text: string;
    offset: number;
}

export interface SplitOptions {
    /**
     * The server's standard_conforming_strings (default on since PostgreSQL 9.1). Off, a backslash escapes
     * a quote in every '...' string, as the server will read it.
     */
    standardConformingStrings?: boolean;
}

/** A letter (any script), digit, _ or $: what continues an identifier (scan.l's ident_cont). */
const IDENT_CONT = /[\p{L}\p{N}_$]/u;
const IDENT_START = /[\p{L}_]/u;
const WORD = /[\p{L}_][\p{L}\p{N}_$]*/uy;

export function splitStatements(sql: string, options: SplitOptions = {}): Statement[] {
    const conforming = options.standardConformingStrings ?? true;
    const out: Statement[] = [];
    let start = 0;
    let i = 0;
    const n = sql.length;
    // psqlscan.l: paren_depth, begin_depth, and the first letters of the statement's leading keywords
    // among create/or/replace/function/procedure (`identifiers`), which decide whether blocks count.
    let parens = 0;
    let blocks = 0;
    let words = 0;
    let leading = "";
    const push = (end: number) => {
        const text = sql.slice(start, end);
        if (stripComments(text).trim() !== "") out.push({ text, offset: start });
        start = end + 1;
        parens = 0;
        blocks = 0;
        words = 0;
        leading = "";
    };
    const routine = () => /^c(f|p|or[fp])/.test(leading);
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
            const escapes =
                !conforming || (i > 0 && /[eE]/.test(sql[i - 1]!) && (i < 2 || !IDENT_CONT.test(sql[i - 2]!)));
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
        } else if (c === "$" && (i === 0 || !IDENT_CONT.test(sql[i - 1]!))) {
            const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
            if (tag) {
                const end = sql.indexOf(tag[0], i + tag[0].length);
                i = end === -1 ? n : end + tag[0].length;
            } else i++;
        } else if (IDENT_START.test(c) && (i === 0 || !IDENT_CONT.test(sql[i - 1]!))) {
            WORD.lastIndex = i;
            const word = WORD.exec(sql)![0].toLowerCase();
            if (["create", "function", "procedure", "or", "replace"].includes(word) && words < 4) {
                leading = leading.padEnd(words, " ") + word[0];
            }
            words++;
            if (routine() && parens === 0) {
                if (word === "begin") blocks++;
                else if (word === "case" && blocks >= 1) blocks++;
                else if (word === "end" && blocks > 0) blocks--;
            }
            i += word.length;
        } else if (c === "(") {
            parens++;
            i++;
        } else if (c === ")") {
            if (parens > 0) parens--;
            i++;
        } else if (c === ";" && parens === 0 && blocks === 0) {
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

/** The first words of a statement, lower-case, comments skipped: `["commit"]`, `["start", "transaction"]`. */
function leadingWords(text: string, count: number): string[] {
    return stripComments(text)
        .trim()
        .split(/[\s;(]+/, count)
        .map((w) => w.toLowerCase());
}

/**
 * Transaction control (BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT, SAVEPOINT, RELEASE, PREPARE
 * TRANSACTION): the statement's own kind, or null. `BEGIN ATOMIC` never starts a statement, so a
 * statement that starts with BEGIN is always the transaction command. `ROLLBACK TO [SAVEPOINT]` is its own
 * kind: it stays inside the transaction.
 */
export function transactionControl(text: string): string | null {
    const [a = "", b = ""] = leadingWords(text, 2);
    if (a === "rollback" && b === "to") return "ROLLBACK TO SAVEPOINT";
    if (["begin", "commit", "end", "rollback", "abort", "savepoint", "release"].includes(a)) {
        return a === "commit" && b === "prepared"
            ? "COMMIT PREPARED"
            : a === "rollback" && b === "prepared"
              ? "ROLLBACK PREPARED"
              : a.toUpperCase();
    }
    if (a === "start" && b === "transaction") return "START TRANSACTION";
    if (a === "prepare" && b === "transaction") return "PREPARE TRANSACTION";
    return null;
}

/** Whether a transaction command leaves no transaction open after it: COMMIT/END/ROLLBACK/ABORT without AND CHAIN. */
export function endsTransaction(text: string, kind: string | null): boolean {
    if (kind !== "COMMIT" && kind !== "END" && kind !== "ROLLBACK" && kind !== "ABORT") return false;
    return !/\band\s+chain\b/i.test(stripComments(text)) || /\band\s+no\s+chain\b/i.test(stripComments(text));
}

/** BEGIN or START TRANSACTION with anything after it but WORK/TRANSACTION (an isolation level, READ ONLY...). */
export function beginHasOptions(text: string): boolean {
    const words = stripComments(text).trim().replace(/;$/, "").trim().toLowerCase().split(/\s+/);
    const rest = words[0] === "start" ? words.slice(2) : words.slice(1);
    return rest.filter((w) => w !== "work" && w !== "transaction").length > 0;
}

/** Statements that end the session's advisory locks, the runner's migration lock among them. */
export function releasesLocks(text: string): boolean {
    const t = stripComments(text).toLowerCase();
    return /^\s*discard\s+all\b/.test(t) || /\bpg_advisory_unlock(_all)?\s*\(/.test(t);
}

/** COPY ... FROM STDIN: its data would have to come through the copy protocol, which a file cannot drive. */
export function isCopyFromStdin(text: string): boolean {
    const words = stripComments(text).trim().toLowerCase();
    return /^copy\b/.test(words) && /\bfrom\s+stdin\b/.test(words);
}

/** 1-based line and column of a 1-based character position in `text` (PostgreSQL's error position). */
export function lineAndColumn(text: string, position: number): { line: number; column: number } {
    const before = text.slice(0, Math.max(0, position - 1));
    const lines = before.split("\n");
    return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
}

/** The 1-based line where a statement at `offset` starts (its first non-blank, non-comment character). */
export function statementLine(sql: string, stmt: Statement): number {
    const lead = /^(\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)*/.exec(stmt.text)?.[0].length ?? 0;
    return lineAndColumn(sql, stmt.offset + lead + 1).line;
}
