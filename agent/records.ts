// A dump's record: <dump>.json beside <dump>, written under a temporary name and renamed, readable by its
// owner only. Pure helpers here; the agent (main.ts) does the IO.

export type Check = "passed" | "failed" | "unchecked";

export interface DumpRecord {
    file: string;
    createdAt?: string;
    sizeBytes: number;
    check: Check;
    reason?: string;
    checkedAt?: string;
    dumpMs?: number;
    checkMs?: number;
    /** SHA-256 of the dump file, hex, as written. */
    sha256?: string;
    tables?: Record<string, number>;
}

/** A dump's name: <UTC stamp>-<label>.dump, the stamp as yyyymmddThhmmssZ. */
export const DUMP_NAME = /^(\d{8}T\d{6}Z)-([a-z0-9-]+)\.dump$/;
export const LABEL = /^[a-z0-9-]+$/;

export function stamp(t: Date): string {
    return t
        .toISOString()
        .replace(/[-:]/g, "")
        .replace(/\.\d+Z$/, "Z");
}

/** The time a dump's name says it was taken, or undefined for a name of another form. */
export function stampTime(file: string): Date | undefined {
    const m = DUMP_NAME.exec(file);
    if (!m) return undefined;
    const s = m[1];
    return new Date(
        `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`,
    );
}

export const labelOf = (file: string): string | undefined => DUMP_NAME.exec(file)?.[2];

/** `schema.table|rows` lines (psql -At) to a map; a name may itself hold `|`, the count is the last field. */
export function parseCounts(text: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const line of text.split("\n")) {
        const i = line.lastIndexOf("|");
        if (i < 0) continue;
        const rows = line.slice(i + 1).trim();
        if (!/^\d+$/.test(rows)) continue;
        out[line.slice(0, i)] = Number(rows);
    }
    return out;
}

/** Where two row counts differ, at most `max` lines of `table: expected -> restored`; empty when equal. */
export function countDifferences(
    expected: Record<string, number>,
    restored: Record<string, number>,
    max = 5,
): string[] {
    const names = [...new Set([...Object.keys(expected), ...Object.keys(restored)])].sort();
    return names
        .filter((n) => expected[n] !== restored[n])
        .slice(0, max)
        .map((n) => `${n}: ${expected[n] ?? "missing"} -> ${restored[n] ?? "missing"}`);
}

/** A record read back, or the reason it cannot be used. */
export function parseRecord(text: string): DumpRecord {
    const r = JSON.parse(text) as DumpRecord;
    if (typeof r !== "object" || r === null || typeof r.file !== "string" || typeof r.check !== "string")
        throw new Error("not a dump record");
    return r;
}

/** The record of a dump with no record beside it. */
export const unrecorded = (file: string, sizeBytes: number): DumpRecord => ({
    file,
    sizeBytes,
    check: "unchecked",
    reason: "no record beside the dump",
});

/** One line of text (a reason in a record or a log line): no newlines or tabs. */
export const oneLine = (s: string): string => s.replace(/[\n\t\r]+/g, " ").trim();
