// The backup agent's logic (agent/, issue 22): the schedule it reads from its environment, its records and
// its retention. The agent itself runs against a real PostgreSQL in test/e2e/backups.test.ts.
import { describe, expect, it } from "vitest";
import { agentEnvironment, matches, parseSchedule, type CronSchedule } from "../../components/backupSchedule";
import {
    countDifferences,
    labelOf,
    parseCounts,
    parseRecord,
    stamp,
    stampTime,
    type DumpRecord,
} from "../../agent/records";
import { toPrune } from "../../agent/retention";
import { due, nextDue, scheduleFromEnv } from "../../agent/schedule";

describe("the agent's schedule", () => {
    it.each(["0 3 * * *", "*/15 1-3,22 * * 1-5", "30 2 13 * 5", "0 0 1 * 0", "0 0 */2 * 1", "@hourly", "@monthly"])(
        "fires in exactly the minutes the program's parser matches: %s",
        (text) => {
            const parsed = parseSchedule(text) as CronSchedule;
            const env = agentEnvironment(parsed);
            const agent = scheduleFromEnv(env);
            // Two months of minutes from a fixed instant, across a month and a year boundary.
            const start = Date.UTC(2026, 10, 20, 0, 0);
            let fired = 0;
            for (let i = 0; i < 60 * 24 * 62; i++) {
                const t = new Date(start + i * 60_000);
                const want = matches(parsed, t);
                if (due(agent, t) !== want)
                    throw new Error(`${text} at ${t.toISOString()}: agent ${!want}, parser ${want}`);
                if (want) fired++;
            }
            expect(fired).toBeGreaterThan(0);
        },
    );

    it("reads off and every, refuses what it does not know", () => {
        expect(scheduleFromEnv({ BACKUP_MODE: "off" })).toEqual({ mode: "off" });
        expect(scheduleFromEnv({})).toEqual({ mode: "off" });
        expect(scheduleFromEnv(agentEnvironment(parseSchedule("@every 6s")))).toEqual({ mode: "every", seconds: 6 });
        expect(() => scheduleFromEnv({ BACKUP_MODE: "every", BACKUP_EVERY_SECONDS: "x" })).toThrow(
            "BACKUP_EVERY_SECONDS must be a whole number of seconds, got x",
        );
        expect(() => scheduleFromEnv({ BACKUP_MODE: "weekly" })).toThrow("unknown BACKUP_MODE weekly");
    });

    it("finds the next run", () => {
        const s = scheduleFromEnv(agentEnvironment(parseSchedule("0 3 * * *")));
        expect(nextDue(s, new Date("2026-12-05T03:00:10Z"))?.toISOString()).toBe("2026-12-06T03:00:00.000Z");
        expect(nextDue(s, new Date("2026-12-05T02:59:59Z"))?.toISOString()).toBe("2026-12-05T03:00:00.000Z");
        expect(nextDue({ mode: "off" }, new Date())).toBeUndefined();
    });
});

describe("the agent's records", () => {
    it("names dumps by their UTC stamp and reads the stamp back", () => {
        const t = new Date("2026-12-05T03:00:07.123Z");
        const name = `${stamp(t)}-scheduled.dump`;
        expect(name).toBe("20261205T030007Z-scheduled.dump");
        expect(stampTime(name)?.toISOString()).toBe("2026-12-05T03:00:07.000Z");
        expect(labelOf(name)).toBe("scheduled");
        expect(labelOf("20261205T030007Z-pre-migration.dump")).toBe("pre-migration");
        expect(stampTime("notes.dump")).toBeUndefined();
    });

    it("reads psql's counts, a `|` in a table's name included, and says where two differ", () => {
        const counts = parseCounts('public.players|12\npublic."a|b"|3\n\nnoise\npublic.empty|0\n');
        expect(counts).toEqual({ "public.players": 12, 'public."a|b"': 3, "public.empty": 0 });
        expect(countDifferences(counts, { ...counts })).toEqual([]);
        expect(countDifferences(counts, { "public.players": 11, 'public."a|b"': 3, "public.extra": 1 })).toEqual([
            "public.empty: 0 -> missing",
            "public.extra: missing -> 1",
            "public.players: 12 -> 11",
        ]);
    });

    it("refuses a record that is not one", () => {
        expect(() => parseRecord("[]")).toThrow("not a dump record");
        expect(() => parseRecord("{")).toThrow();
        expect(parseRecord('{"file":"a.dump","check":"passed","sizeBytes":1}').check).toBe("passed");
    });
});

describe("the agent's retention (keepLast, keepDays)", () => {
    const rec = (day: number, check: DumpRecord["check"] = "passed", label = "scheduled"): DumpRecord => ({
        file: `${stamp(new Date(Date.UTC(2026, 0, day, 3)))}-${label}.dump`,
        sizeBytes: 1,
        check,
    });
    const now = new Date(Date.UTC(2026, 0, 31, 4));

    it("keeps the newest N that passed, prunes the rest, never other labels", () => {
        const records = [1, 2, 3, 4, 5].map((d) => rec(d));
        records.push(rec(1, "passed", "safety"), rec(2, "passed", "manual"));
        expect(toPrune(records, { keepLast: 2, keepDays: 0 }, now)).toEqual([rec(3).file, rec(2).file, rec(1).file]);
    });

    it("always keeps the newest that passed, and at most N failed ones newer than it", () => {
        const records = [rec(1), rec(2, "failed"), rec(3, "failed"), rec(4, "failed")];
        expect(toPrune(records, { keepLast: 1, keepDays: 0 }, now)).toEqual([rec(3).file, rec(2).file]);
        expect(toPrune(records, { keepLast: 3, keepDays: 0 }, now)).toEqual([]);
        expect(toPrune([...records, rec(5, "failed")], { keepLast: 3, keepDays: 0 }, now)).toEqual([rec(2).file]);
    });

    it("keeps those younger than N days by the stamp in their name", () => {
        const records = [25, 26, 27, 28, 29, 30].map((d) => rec(d));
        expect(toPrune(records, { keepLast: 0, keepDays: 3 }, now)).toEqual([
            rec(28).file,
            rec(27).file,
            rec(26).file,
            rec(25).file,
        ]);
    });

    it("keeps everything when both rules are off", () => {
        expect(toPrune([rec(1), rec(2)], { keepLast: 0, keepDays: 0 }, now)).toEqual([]);
    });
});
