// Which scheduled dumps a prune removes. Pure: the agent passes the records, this says which go.

import { labelOf, stampTime, type DumpRecord } from "./records";

export interface KeepRule {
    /** The newest N scheduled dumps that passed (and as many failed ones newer than the last of them). */
    keepLast: number;
    /** Those younger than N days. */
    keepDays: number;
}

/**
 * The scheduled dumps past the retention, newest first. Kept: the newest `keepLast` that passed (and at
 * most as many failed ones newer than the last of those), those younger than `keepDays` days, and always
 * the newest one that passed. 0 turns a rule off; both off keeps everything. Other labels (safety,
 * manual, pre-migration) are never pruned here.
 */
export function toPrune(records: DumpRecord[], rule: KeepRule, now: Date): string[] {
    if (rule.keepLast === 0 && rule.keepDays === 0) return [];
    const scheduled = records
        .filter((r) => labelOf(r.file) === "scheduled")
        .sort((a, b) => b.file.localeCompare(a.file));
    let good = 0;
    let bad = 0;
    const out: string[] = [];
    for (const r of scheduled) {
        if (r.check === "passed") {
            good++;
            if (good === 1) continue; // the newest that passed: never pruned
            if (rule.keepLast > 0 && good <= rule.keepLast) continue;
        } else {
            bad++;
            if (rule.keepLast > 0 && good < rule.keepLast && bad <= rule.keepLast) continue;
        }
        if (rule.keepDays > 0) {
            const taken = stampTime(r.file) ?? (r.createdAt ? new Date(r.createdAt) : undefined);
            if (taken && now.getTime() - taken.getTime() < rule.keepDays * 86_400_000) continue;
        }
        out.push(r.file);
    }
    return out;
}
