// Which scheduled dumps a prune removes. Pure: the agent passes the records, this says which go.

import { labelOf, stampTime, type DumpRecord } from "./records";

export interface KeepRule {
    /** The newest N scheduled dumps that passed (and as many failed ones newer than the last of them). */
    keepLast: number;
    /** Those younger than N days. */
    keepDays: number;
    /** Tiers: the newest passed dump of each of the last N days, W ISO weeks, M months (UTC) that have one. */
    daily?: number;
    weekly?: number;
    monthly?: number;
    /** Other labels (safety, manual, pre-migration): those younger than N days, and the newest 3 of each. */
    otherDays?: number;
}

/** The ISO week of `t` (UTC) as yyyy-Www. */
export function isoWeek(t: Date): string {
    const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
    const day = d.getUTCDay() || 7;
    d.setUTCDate(d.getUTCDate() + 4 - day);
    const year = d.getUTCFullYear();
    const week = Math.ceil(((d.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 + 1) / 7);
    return `${year}-W${String(week).padStart(2, "0")}`;
}

/** The files the tiers keep: for each bucket (newest first, at most `n`), its newest passed dump. */
function tier(passedNewestFirst: DumpRecord[], n: number, bucket: (t: Date) => string): Set<string> {
    const kept = new Set<string>();
    const seen = new Set<string>();
    for (const r of passedNewestFirst) {
        if (seen.size >= n) break;
        const t = stampTime(r.file);
        if (!t) continue;
        const b = bucket(t);
        if (seen.has(b)) continue;
        seen.add(b);
        kept.add(r.file);
    }
    return kept;
}

/** Dumps of other labels past their rule: older than `days` days and not among the newest 3 of their label. */
export function otherToPrune(records: DumpRecord[], days: number, now: Date): string[] {
    if (days <= 0) return [];
    const byLabel = new Map<string, DumpRecord[]>();
    for (const r of records) {
        const label = labelOf(r.file);
        if (!label || label === "scheduled") continue;
        byLabel.set(label, [...(byLabel.get(label) ?? []), r]);
    }
    const out: string[] = [];
    for (const list of byLabel.values()) {
        const newestFirst = list.sort((a, b) => b.file.localeCompare(a.file));
        for (const r of newestFirst.slice(3)) {
            const t = stampTime(r.file);
            if (t && now.getTime() - t.getTime() >= days * 86_400_000) out.push(r.file);
        }
    }
    return out;
}

/**
 * The scheduled dumps past the retention, newest first. A dump goes only when every rule lets it go. Kept: the newest `keepLast` that passed (and at
 * most as many failed ones newer than the last of those), those younger than `keepDays` days, and always
 * the newest one that passed. 0 turns a rule off; both off keeps everything. Other labels (safety,
 * manual, pre-migration) are never pruned here.
 */
export function toPrune(records: DumpRecord[], rule: KeepRule, now: Date): string[] {
    const tiers = (rule.daily ?? 0) + (rule.weekly ?? 0) + (rule.monthly ?? 0);
    if (rule.keepLast === 0 && rule.keepDays === 0 && tiers === 0) return [];
    const scheduled = records
        .filter((r) => labelOf(r.file) === "scheduled")
        .sort((a, b) => b.file.localeCompare(a.file));
    const passed = scheduled.filter((r) => r.check === "passed");
    const tiered = new Set([
        ...tier(passed, rule.daily ?? 0, (t) => t.toISOString().slice(0, 10)),
        ...tier(passed, rule.weekly ?? 0, isoWeek),
        ...tier(passed, rule.monthly ?? 0, (t) => t.toISOString().slice(0, 7)),
    ]);
    let good = 0;
    let bad = 0;
    const out: string[] = [];
    for (const r of scheduled) {
        if (tiered.has(r.file)) {
            if (r.check === "passed") good++;
            continue;
        }
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
