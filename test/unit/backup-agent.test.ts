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
import { mountProblem, mountRoot } from "../../agent/mount";
import { isoWeek, otherToPrune, toPrune } from "../../agent/retention";
import { afterPass, health, notification } from "../../agent/status";
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

describe("the agent's mount guard", () => {
    // /proc/self/mountinfo lines as a container sees its bind mount of the backup directory.
    const line = (root: string, fs = "nfs4") =>
        `1419 1401 0:52 ${root} /backups rw,relatime master:1 - ${fs} nas:/export rw,vers=4.2`;
    const other = "1401 1400 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/x";

    it("passes a directory that is a mount point or whose parent is one", () => {
        expect(mountProblem(`${other}\n${line("/")}\n`, "/backups", "/mnt/remotes/NAS/x")).toBeUndefined();
        expect(mountProblem(`${other}\n${line("/x")}\n`, "/backups", "/mnt/remotes/NAS/x")).toBeUndefined();
    });

    it("fails one deeper in a filesystem (a share's empty mount point), naming it and the fix", () => {
        const p = mountProblem(`${other}\n${line("/mnt/remotes/NAS/x", "rootfs")}\n`, "/backups", "/mnt/remotes/NAS/x");
        expect(p).toContain("the backup directory /mnt/remotes/NAS/x is not on a mounted share");
        expect(p).toContain("it is /mnt/remotes/NAS/x on a rootfs filesystem");
        expect(p).toContain("set `backupRequireMount` to false");
        expect(mountProblem(other, "/backups", "/h")).toContain("is not mounted into the backup container at /backups");
    });

    it("reads octal escapes and the last of stacked mounts", () => {
        expect(mountRoot(`${line("/a\\040b/c")}\n${line("/d")}`, "/backups")).toEqual({ root: "/d", fsType: "nfs4" });
        expect(mountRoot(line("/a\\040b/c"), "/backups")).toEqual({ root: "/a b/c", fsType: "nfs4" });
    });
});

describe("the agent's status: health and notifications", () => {
    const start = { startedAt: "2026-12-05T00:00:00Z" };
    const at = (s: string) => new Date(`2026-12-05T${s}Z`);

    it("is healthy until a pass fails, unhealthy after one failed pass, healthy again after a good one", () => {
        expect(health(undefined, at("01:00:00"), 60).healthy).toBe(true);
        const good = afterPass(start, { at: "2026-12-05T00:00:10Z", ok: true, file: "a.dump" });
        expect(good.event).toBeUndefined();
        expect(health(good.status, at("00:00:20"), 60)).toEqual({
            healthy: true,
            message: "last good pass: a.dump at 2026-12-05T00:00:10Z",
        });
        const bad = afterPass(good.status, { at: "2026-12-05T00:00:20Z", ok: false, error: "pg_dump: no space" });
        expect(bad.event).toBe("failure");
        expect(health(bad.status, at("00:00:21"), 60)).toEqual({
            healthy: false,
            message: "the last scheduled pass (2026-12-05T00:00:20Z) failed: pg_dump: no space",
        });
        // A second failure in a row does not notify again; the recovery does.
        const again = afterPass(bad.status, { at: "2026-12-05T00:00:30Z", ok: false, error: "again" });
        expect(again.event).toBeUndefined();
        const back = afterPass(again.status, { at: "2026-12-05T00:00:40Z", ok: true, file: "b.dump" });
        expect(back.event).toBe("recovery");
        expect(back.status.lastError).toBeUndefined();
        expect(health(back.status, at("00:00:41"), 60).healthy).toBe(true);
    });

    it("is unhealthy when a pass is overdue, from the last good one or the start; never without a schedule", () => {
        expect(health(start, at("00:01:01"), 60).message).toBe(
            "overdue: no good pass since the agent started at 2026-12-05T00:00:00Z, 61 s ago (allowed 60 s)",
        );
        expect(health(start, at("00:00:59"), 60).healthy).toBe(true);
        expect(health(start, at("23:00:00"), 0).healthy).toBe(true);
        const good = afterPass(start, { at: "2026-12-05T00:00:10Z", ok: true, file: "a.dump" }).status;
        expect(health(good, at("00:01:11"), 60).message).toContain("overdue: the last good pass (a.dump)");
    });

    it("speaks ntfy's, Gotify's and Discord's fields, never the URL", () => {
        const bad = afterPass(start, { at: "2026-12-05T00:00:20Z", ok: false, error: "disk full" }).status;
        const body = notification("failure", "odin", bad);
        expect(body).toMatchObject({ event: "failure", stack: "odin", title: "Backups FAILING on odin", priority: 8 });
        expect(body.message).toContain("failed: disk full. Last good backup: none");
        expect(body.content).toContain("**Backups FAILING on odin**");
    });
});

describe("tiered retention over 400 simulated nights", () => {
    it("keeps 7 daily, 4 weekly and 6 monthly nightly dumps, and the other kinds by their own rule", () => {
        const rule = { keepLast: 7, keepDays: 0, daily: 7, weekly: 4, monthly: 6 };
        let kept: DumpRecord[] = [];
        let t = new Date(Date.UTC(2025, 0, 1, 3, 0, 0));
        for (let night = 1; night <= 400; night++) {
            kept.push({ file: `${stamp(t)}-scheduled.dump`, sizeBytes: 1, check: "passed" });
            const gone = new Set(toPrune(kept, rule, new Date(t.getTime() + 600_000)));
            kept = kept.filter((r) => !gone.has(r.file));
            // Never more than the tiers can hold.
            expect(kept.length).toBeLessThanOrEqual(17);
            t = new Date(t.getTime() + 86_400_000);
        }
        const days = kept.map((r) => stampTime(r.file)!.toISOString().slice(0, 10)).sort();
        // Night 400 is 2026-02-04, a Wednesday.
        expect(days).toEqual([
            "2025-09-30",
            "2025-10-31",
            "2025-11-30",
            "2025-12-31", // monthly: the last night of each of the 5 months before, and this month's newest
            "2026-01-18",
            "2026-01-25", // weekly: the Sundays ending the weeks before (Feb 1 is in the dailies)
            "2026-01-29",
            "2026-01-30",
            "2026-01-31",
            "2026-02-01",
            "2026-02-02",
            "2026-02-03",
            "2026-02-04", // daily
        ]);
        expect(isoWeek(new Date("2026-02-04T03:00:00Z"))).toBe("2026-W06");
        expect(isoWeek(new Date("2026-02-01T03:00:00Z"))).toBe("2026-W05");
        expect(isoWeek(new Date("2021-01-03T03:00:00Z"))).toBe("2020-W53");
    });

    it("a failed night is not a tier's dump; the newest passed one stands for its day", () => {
        const rule = { keepLast: 0, keepDays: 0, daily: 2, weekly: 0, monthly: 0 };
        const r = (s: string, check: DumpRecord["check"] = "passed") => ({
            file: `${s}-scheduled.dump`,
            sizeBytes: 1,
            check,
        });
        const records = [
            r("20260101T030000Z"),
            r("20260102T030000Z"),
            r("20260102T150000Z"),
            r("20260103T030000Z", "failed"),
        ];
        expect(toPrune(records, rule, new Date("2026-01-03T04:00:00Z"))).toEqual([
            "20260103T030000Z-scheduled.dump",
            "20260102T030000Z-scheduled.dump",
        ]);
    });

    it("prunes safety, manual and pre-migration dumps after their days, keeping the newest 3 of each", () => {
        const now = new Date("2026-03-01T00:00:00Z");
        const records = [1, 2, 3, 4, 5].flatMap((d) => [
            { file: `2026010${d}T030000Z-safety.dump`, sizeBytes: 1, check: "passed" as const },
            { file: `2026020${d}T030000Z-pre-migration.dump`, sizeBytes: 1, check: "passed" as const },
        ]);
        expect(otherToPrune(records, 30, now).sort()).toEqual([
            "20260101T030000Z-safety.dump",
            "20260102T030000Z-safety.dump",
        ]);
        expect(otherToPrune(records, 0, now)).toEqual([]);
    });
});
