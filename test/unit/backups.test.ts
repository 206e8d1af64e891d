// Scheduled backups (issue 14): the schedule parser, the config's checks, and the backup container the
// program declares on both stacks (the odin one with its dumps on an NFS share).
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
    agentEnvironment,
    longestGapSeconds,
    matches,
    parseSchedule,
    type CronSchedule,
} from "../../components/backupSchedule";
import { ConfigError, parseStackConfig, projectDefaults, type ParseContext } from "../../config";
import { evaluate } from "../../policy/evaluate";
import { PROJECT_ROOT, loadStackConfig } from "../../support/stackConfig";
import {
    chooseDump,
    freshness,
    parseArgs,
    parseList,
    resultOf,
    stackTarget,
    type DumpRecord,
} from "../../scripts/backups";

describe("parseSchedule", () => {
    it("expands cron fields: numbers, ranges, steps and lists", () => {
        expect(parseSchedule("0 3 * * *")).toMatchObject({ minutes: [0], hours: [3], domAny: true, dowAny: true });
        expect(parseSchedule("*/15 1-3,22 * * 1-5")).toMatchObject({
            minutes: [0, 15, 30, 45],
            hours: [1, 2, 3, 22],
            daysOfWeek: [1, 2, 3, 4, 5],
            dowAny: false,
        });
        expect(parseSchedule("5/20 * * * *")).toMatchObject({ minutes: [5, 25, 45] });
        // 7 is Sunday too.
        expect(parseSchedule("0 0 * * 7")).toMatchObject({ daysOfWeek: [0] });
    });

    it("reads the macros and fixed intervals", () => {
        expect(parseSchedule("@daily")).toMatchObject({ kind: "cron", minutes: [0], hours: [0] });
        expect(parseSchedule("@every 90s")).toEqual({ kind: "every", seconds: 90 });
        expect(parseSchedule("@every 6h")).toEqual({ kind: "every", seconds: 21_600 });
    });

    it.each([
        ["0 3 * *", "a cron schedule has 5 fields (minute hour day-of-month month day-of-week), got 4"],
        ["60 3 * * *", "minute `60` is outside 0-59"],
        ["0 3 0 * *", "day of month `0` is outside 1-31"],
        ["0 3 * * mon", "day of week `mon` is not a number, range, * or step"],
        ["*/0 * * * *", "minute `*/0` has a step below 1"],
        ["@yearly", "`@yearly` is not one of @hourly, @daily, @weekly, @monthly or @every <n>s|m|h"],
        ["@every 0s", "@every must be from 1s to 744h"],
    ])("refuses %j: %s", (text, message) => {
        expect(() => parseSchedule(text)).toThrow(message);
    });

    it("matches minutes as Vixie cron does: a restricted day of month and day of week match when either does", () => {
        const s = parseSchedule("30 2 13 * 5") as CronSchedule;
        expect(matches(s, new Date("2026-11-13T02:30:00Z"))).toBe(true); // the 13th (a Friday)
        expect(matches(s, new Date("2026-11-20T02:30:00Z"))).toBe(true); // a Friday, not the 13th
        expect(matches(s, new Date("2026-12-13T02:30:00Z"))).toBe(true); // the 13th, a Sunday
        expect(matches(s, new Date("2026-11-19T02:30:00Z"))).toBe(false);
        expect(matches(s, new Date("2026-11-20T02:31:00Z"))).toBe(false);
        // A day field starting with `*` is "star" for the rule: `*/2` with a weekday means odd Mondays only.
        const oddMondays = parseSchedule("0 3 */2 * 1") as CronSchedule;
        expect(matches(oddMondays, new Date("2026-11-09T03:00:00Z"))).toBe(true); // Monday the 9th
        expect(matches(oddMondays, new Date("2026-11-16T03:00:00Z"))).toBe(false); // Monday the 16th
        expect(matches(oddMondays, new Date("2026-11-11T03:00:00Z"))).toBe(false); // Wednesday the 11th
        expect(agentEnvironment(oddMondays).BACKUP_DAY_RULE).toBe("both");
        const weekdays = parseSchedule("0 3 * * 1-5") as CronSchedule;
        expect(matches(weekdays, new Date("2026-11-23T03:00:00Z"))).toBe(true); // Monday
        expect(matches(weekdays, new Date("2026-11-22T03:00:00Z"))).toBe(false); // Sunday
    });

    it("knows the longest gap between runs: twice it is when a backup is late", () => {
        expect(longestGapSeconds(parseSchedule("0 3 * * *"))).toBe(86_400);
        expect(longestGapSeconds(parseSchedule("0 3 * * 1-5"), new Date("2026-11-23T00:00:00Z"))).toBe(3 * 86_400);
        expect(longestGapSeconds(parseSchedule("@every 10s"))).toBe(10);
    });

    it("hands the agent one list per field, and the day rule", () => {
        expect(agentEnvironment(parseSchedule("0 3 * * *"))).toEqual({
            BACKUP_MODE: "cron",
            BACKUP_MINUTES: "0",
            BACKUP_HOURS: "3",
            BACKUP_DAYS: Array.from({ length: 31 }, (_, i) => i + 1).join(" "),
            BACKUP_MONTHS: "1 2 3 4 5 6 7 8 9 10 11 12",
            BACKUP_WEEKDAYS: "0 1 2 3 4 5 6",
            BACKUP_DAY_RULE: "both",
        });
        expect(agentEnvironment(parseSchedule("0 3 1 * 0")).BACKUP_DAY_RULE).toBe("either");
        expect(agentEnvironment(undefined)).toEqual({ BACKUP_MODE: "off" });
    });
});

describe("the backup settings", () => {
    const ctx: ParseContext = {
        projectDir: "/home/dev/marvel-rivals-stats",
        defaultOwner: "1000:1000",
        defaults: projectDefaults(PROJECT_ROOT),
        env: {},
    };
    const parse = (stack: string, overrides: Record<string, string>) => {
        const { config } = loadStackConfig(stack, overrides);
        return parseStackConfig((key) => config[`marvel-rivals-stats:${key}`], ctx);
    };
    const problems = (stack: string, overrides: Record<string, string>) => {
        try {
            parse(stack, overrides);
        } catch (err) {
            expect(err).toBeInstanceOf(ConfigError);
            return (err as ConfigError).problems;
        }
        return [];
    };

    it("are off on dev and nightly on odin, into <dataDir>/backups, keeping 7", () => {
        expect(parse("dev", {}).backup).toMatchObject({
            scheduleText: undefined,
            dir: "/home/dev/marvel-rivals-stats/data/backups",
            keepLast: 7,
            keepDays: 0,
        });
        expect(parse("odin", {}).backup).toMatchObject({
            scheduleText: "0 3 * * *",
            dir: "/mnt/user/appdata/marvel-rivals-stats/backups",
        });
    });

    it("refuse a bad schedule with what is wrong and examples", () => {
        expect(problems("dev", { backupSchedule: "0 25 * * *" })).toEqual([
            '`marvel-rivals-stats:backupSchedule` is "0 25 * * *": hour `25` is outside 0-23; use cron\'s 5 fields in UTC such as "0 3 * * *" (03:00 every night), @daily, or @every 6h.',
        ]);
    });

    it.each([
        ["backups", "must be an absolute directory path on the Docker host"],
        ["/mnt/nas/my backups", "must be an absolute directory path on the Docker host"],
        ["/mnt/user/appdata/marvel-rivals-stats", "must be a directory of its own"],
        ["/mnt/user/appdata/marvel-rivals-stats/postgres/dumps", "must be a directory of its own"],
        ["/", "must be a directory of its own"],
        ["/mnt/user/appdata", "must be a directory of its own"],
        ["/mnt/user/appdata/marvel-rivals-stats/logs", "must be a directory of its own"],
    ])("refuse backupDir %j", (dir, message) => {
        const found = problems("odin", { backupDir: dir });
        expect(found).toHaveLength(1);
        expect(found[0]).toContain(`\`marvel-rivals-stats:backupDir\` is ${JSON.stringify(dir)}: ${message}`);
    });

    it("refuse a negative retention", () => {
        expect(problems("dev", { backupKeepLast: "-1" })).toEqual([
            '`marvel-rivals-stats:backupKeepLast` is "-1": must be a whole number from 0 to 10000.',
        ]);
    });

    it("require a mounted share by default only on a remote engine with backupDir outside dataDir", () => {
        const share = "/mnt/remotes/NAS_backups/marvel-rivals-stats";
        expect(parse("odin", { backupDir: share }).backup.requireMount).toBe(true);
        expect(parse("odin", {}).backup.requireMount).toBe(false);
        expect(parse("odin", { backupDir: share, backupRequireMount: "false" }).backup.requireMount).toBe(false);
        expect(parse("dev", { backupDir: "/tmp/elsewhere/backups" }).backup.requireMount).toBe(false);
        expect(
            parse("dev", { backupDir: "/tmp/elsewhere/backups", backupRequireMount: "true" }).backup.requireMount,
        ).toBe(true);
    });

    it("verify weekly by default when backups are scheduled, as configured, or never", () => {
        expect(parse("odin", {}).backup).toMatchObject({ verifyScheduleText: "0 4 * * 0" });
        expect(parse("dev", {}).backup.verifySchedule).toBeUndefined();
        expect(parse("odin", { backupVerifySchedule: "off" }).backup.verifySchedule).toBeUndefined();
        expect(parse("odin", { backupVerifySchedule: "@every 6h" }).backup.verifySchedule).toEqual({
            kind: "every",
            seconds: 21_600,
        });
        expect(problems("odin", { backupVerifySchedule: "weekly" })).toEqual([
            '`marvel-rivals-stats:backupVerifySchedule` is "weekly": a cron schedule has 5 fields (minute hour day-of-month month day-of-week), got 1; use cron\'s 5 fields in UTC such as "0 4 * * 0" (Sundays 04:00), @weekly, or off.',
        ]);
    });

    it("refuse a backupNotifyUrl that is no http(s) URL, without showing it", () => {
        const p = problems("dev", { backupNotifyUrl: "ntfy.sh/secret-topic" });
        expect(p).toContain(
            "`marvel-rivals-stats:backupNotifyUrl` (value hidden) must be an http:// or https:// URL (an ntfy topic, a Gotify /message?token=..., a Discord webhook); set it with `pulumi config set --secret backupNotifyUrl <url>`.",
        );
        expect(p.join("\n")).not.toContain("secret-topic");
    });

    it("refuse a backupRequireMount that is not true or false", () => {
        expect(problems("dev", { backupRequireMount: "yes" })).toEqual([
            '`marvel-rivals-stats:backupRequireMount` is "yes": must be true or false.',
        ]);
    });
});

describe("the backup container", () => {
    it("runs the agent from the Postgres image as the backup role (pg_read_all_data), its own password in a secret file only", async () => {
        const { runProgram } = await import("../../support/mockProgram");
        const run = await runProgram("odin", { backupDir: "/mnt/remotes/NAS_backups/marvel-rivals-stats" });
        const backup = run.byName("backups-container");
        const postgres = run.byName("postgres-container");
        // Its own image, built FROM the stack's Postgres image with the agent in it (agent/Dockerfile).
        const image = run.byName("backup-image");
        expect(backup.inputs.image).toBe(
            `sha256:${createHash("sha256").update(JSON.stringify(image.inputs.build)).digest("hex")}`,
        );
        expect(image.inputs).toMatchObject({
            imageName: "marvel-rivals-stats-backup:odin",
            skipPush: true,
            build: { dockerfile: "agent/Dockerfile", args: { POSTGRES_IMAGE: "postgres:16-alpine" } },
        });
        expect(image.inputs.build.args.NODE_IMAGE).toMatch(/^node:\d+\.\d+\.\d+-/);
        expect(backup.inputs.entrypoints).toBeUndefined();
        expect(backup.inputs).toMatchObject({
            name: "marvel-rivals-backup",
            user: "1000:1000",
            command: ["run"],
            volumes: [{ hostPath: "/mnt/remotes/NAS_backups/marvel-rivals-stats", containerPath: "/backups" }],
            networksAdvanced: [{ name: "marvel-rivals-network" }],
            restart: "unless-stopped",
        });
        const env = Object.fromEntries(
            (backup.inputs.envs as string[]).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
        );
        expect(env).toMatchObject({
            BACKUP_MODE: "cron",
            BACKUP_MINUTES: "0",
            BACKUP_HOURS: "3",
            BACKUP_SCHEDULE: "0 3 * * *",
            BACKUP_KEEP_LAST: "7",
            PGHOST: "postgres",
            // Not the owner (issue 24): a restore borrows the owner's password (scripts/backups.ts).
            PGUSER: "marvel_stats_backup",
            PGDATABASE: "marvel_rivals",
            BACKUP_PGPASSWORD_FILE: "/run/secrets/backup/pgpassword",
        });
        // The password is a file copied into the container (a secret in the state), not in its environment.
        expect(env.PGPASSWORD).toBeUndefined();
        expect(JSON.stringify(backup.inputs.envs)).not.toContain("generated-");
        expect(backup.inputs.uploads).toEqual([
            {
                file: "/run/secrets/backup/pgpassword",
                content: "generated-backup-db-password-0123456789",
                permissions: "0444",
            },
        ]);
        expect(backup.secretInputs).toContain("uploads");
        // The agent is in the image, not in the environment.
        expect(env.BACKUP_AGENT).toBeUndefined();
        // Never in an argument.
        expect(JSON.stringify([backup.inputs.entrypoints, backup.inputs.command])).not.toContain("generated-db");
        // It starts once the database is healthy and the directory exists.
        expect(backup.dependencies).toContain(postgres.urn);
        expect(backup.dependencies).toContain(run.byName("data-mkdir").urn);
        // The share is created by the host step (outside dataDir), the pre-migration dumps go there too,
        // and the policy pack accepts the mount.
        expect(run.byName("data-mkdir").inputs.environment).toMatchObject({
            SUBDIRS: "postgres redis output logs",
            EXTRA_DIRS: "/mnt/remotes/NAS_backups/marvel-rivals-stats",
            // The share must be mounted (backupRequireMount's default on a remote engine, outside dataDir).
            MOUNT_REQUIRED: "/mnt/remotes/NAS_backups/marvel-rivals-stats",
        });
        expect(run.byName("data-mkdir").inputs.create).toContain("is not on a mounted share");
        expect(env).toMatchObject({
            BACKUP_VERIFY_MODE: "cron",
            BACKUP_VERIFY_HOURS: "4",
            BACKUP_VERIFY_WEEKDAYS: "0",
            BACKUP_OVERDUE_SECONDS: String(86_400 + 3600),
            BACKUP_STACK: "odin",
            BACKUP_REQUIRE_MOUNT: "1",
            BACKUP_HOST_DIR: "/mnt/remotes/NAS_backups/marvel-rivals-stats",
        });
        expect(run.outputs.backupDir.value).toBe("/mnt/remotes/NAS_backups/marvel-rivals-stats");
        expect(run.outputs.backupSchedule.value).toBe("0 3 * * *");
        const resources = run.resources.map((r) => ({
            type: r.type,
            name: r.name,
            urn: r.urn,
            props: r.inputs,
            opts: { additionalSecretOutputs: r.additionalSecretOutputs ?? [] },
        }));
        expect(evaluate(resources as never)).toEqual([]);
    });
});

describe("npm run backups / restore: what they decide", () => {
    const dump = (file: string, check: DumpRecord["check"], createdAt?: string): DumpRecord => ({
        file,
        check,
        createdAt,
        sizeBytes: 1000,
        reason: check === "failed" ? "pg_restore failed: truncated" : "",
        tables: { "public.players": 3 },
    });
    const dumps = [
        dump("20261201T030000Z-scheduled.dump", "passed", "2026-12-01T03:00:00Z"),
        dump("20261202T030000Z-scheduled.dump", "failed", "2026-12-02T03:00:00Z"),
        dump("20261202T101010Z-safety.dump", "passed", "2026-12-02T10:10:10Z"),
        dump("20261202T111111Z-manual.dump", "unchecked"),
    ];

    it("parses the two commands' arguments, the stack defaulting to PULUMI_STACK, then dev", () => {
        expect(parseArgs(["list"], {})).toEqual({
            command: "list",
            stack: "dev",
            json: false,
            from: "latest",
            force: false,
            skipSafetyDump: false,
            lockWaitSeconds: 0,
        });
        expect(parseArgs(["restore", "--skip-safety-dump"], {}).skipSafetyDump).toBe(true);
        expect(parseArgs(["restore", "--lock-wait", "2m"], {}).lockWaitSeconds).toBe(120);
        expect(() => parseArgs(["list", "--lock-wait", "5"], {})).toThrow("unexpected argument --lock-wait");
        expect(parseArgs(["list", "--json"], { PULUMI_STACK: "odin" })).toMatchObject({ stack: "odin", json: true });
        expect(parseArgs(["restore", "--stack", "odin", "--from", "x.dump", "--force"], {})).toMatchObject({
            command: "restore",
            stack: "odin",
            from: "x.dump",
            force: true,
        });
        expect(() => parseArgs(["restore", "--from"], {})).toThrow("--from needs a value");
        expect(() => parseArgs(["list", "--force"], {})).toThrow("unexpected argument --force");
        expect(() => parseArgs(["restore", "--stack", "../x"], {})).toThrow(
            'unknown stack "../x": the stacks are dev, odin (one per Pulumi.<name>.yaml file); choose one with --stack <name>',
        );
    });

    it("takes the newest checked dump for `latest`, never a safety dump", () => {
        expect(chooseDump(dumps, "latest", false).file).toBe("20261201T030000Z-scheduled.dump");
        expect(() => chooseDump([dumps[1], dumps[2]], "latest", false)).toThrow("no dump has passed its check");
    });

    it("refuses a dump that failed or was never checked unless forced, and an unknown one always", () => {
        expect(() => chooseDump(dumps, "20261202T030000Z-scheduled.dump", false)).toThrow(
            "20261202T030000Z-scheduled.dump failed its check (pg_restore failed: truncated): pick another (`npm run backups`), or restore it anyway with --force",
        );
        expect(chooseDump(dumps, "/some/path/20261202T030000Z-scheduled.dump", true).file).toBe(
            "20261202T030000Z-scheduled.dump",
        );
        expect(() => chooseDump(dumps, "20261202T111111Z-manual.dump", false)).toThrow("was never checked");
        expect(() => chooseDump(dumps, "nope.dump", true)).toThrow(
            "no dump named nope.dump in the backup directory: `npm run backups` lists them",
        );
    });

    it("says a backup is late when the last verified scheduled one is older than twice the schedule", () => {
        const nightly = "0 3 * * *";
        const ok = freshness(dumps, nightly, new Date("2026-12-02T10:00:00Z"));
        expect(ok).toMatchObject({ stale: false, lastVerified: "2026-12-01T03:00:00Z" });
        expect(ok.message).toBe(
            "last verified backup: 20261201T030000Z-scheduled.dump, 31h ago (schedule 0 3 * * * UTC)",
        );
        // The newer safety dump does not count: the schedule's own dumps say whether it keeps up.
        const late = freshness(dumps, nightly, new Date("2026-12-03T03:00:01Z"));
        expect(late.stale).toBe(true);
        expect(late.message).toContain(
            "WARNING: the last verified backup (20261201T030000Z-scheduled.dump) is 2d old, more than twice the schedule (0 3 * * * UTC)",
        );
        // No verified backup: late, unless the schedule started less than twice its gap ago.
        expect(freshness([], nightly, new Date("2026-12-03T00:00:00Z")).stale).toBe(true);
        const young = freshness([], nightly, new Date("2026-12-03T00:00:00Z"), new Date("2026-12-02T00:00:00Z"));
        expect(young).toMatchObject({
            stale: false,
            message: "no verified backup yet; the schedule (0 3 * * * UTC) started 24h ago",
        });
        // No schedule: never late, and it says so.
        expect(freshness(dumps, "", new Date("2027-01-01T00:00:00Z"))).toMatchObject({
            schedule: "none",
            stale: false,
        });
    });

    it("refuses a dump record that is not JSON, saying which, instead of crashing", () => {
        expect(() => parseList('{"file":"a.dump","check":"passed","sizeBytes":1}\n{"file":"b.dump",')).toThrow(
            'a dump\'s record in the backup directory is not JSON: {"file":"b.dump",',
        );
    });

    it("finds the stack's engine, container names and Postgres image in its stack file: odin over SSH, dev the docker CLI's own", () => {
        expect(stackTarget("odin")).toEqual({
            stack: "odin",
            host: "ssh://root@odin",
            // Pulumi.yaml's default: the stack file does not set it.
            postgresImage: projectDefaults(PROJECT_ROOT).postgresImage,
            names: {
                postgres: "marvel-rivals-postgres",
                redis: "marvel-rivals-redis",
                app: "marvel-rivals-app",
                pgadmin: "marvel-rivals-pgadmin",
                backup: "marvel-rivals-backup",
            },
            deployLock: "marvel-rivals-deploy-lock",
            // Pulumi.yaml's defaults too (npm run rotate retires a login role as the owner).
            dbName: "marvel_rivals",
            dbUser: "marvel_stats",
        });
        expect(projectDefaults(PROJECT_ROOT).postgresImage).toMatch(/^postgres:16/);
        expect(stackTarget("dev").host).toBeUndefined();
        expect(() => stackTarget("prod")).toThrow(
            'unknown stack "prod": the stacks are dev, odin (one per Pulumi.<name>.yaml file); choose one with --stack <name>',
        );
    });

    it("follows the stack file's containerPrefix and postgresImage", () => {
        const dir = mkdtempSync(path.join(tmpdir(), "mrs-target-"));
        try {
            writeFileSync(
                path.join(dir, "Pulumi.second.yaml"),
                "config:\n  marvel-rivals-stats:containerPrefix: mrs-second\n  marvel-rivals-stats:postgresImage: postgres:16.9\n",
            );
            writeFileSync(
                path.join(dir, "Pulumi.yaml"),
                "name: x\nconfig:\n  postgresImage:\n    default: postgres:16-x\n",
            );
            expect(stackTarget("second", dir)).toMatchObject({
                names: { app: "mrs-second-app", backup: "mrs-second-backup" },
                deployLock: "mrs-second-deploy-lock",
                postgresImage: "postgres:16.9",
            });
            // Unset in the stack file: the project's default, read from its Pulumi.yaml (one home).
            writeFileSync(path.join(dir, "Pulumi.third.yaml"), "config: {}\n");
            expect(stackTarget("third", dir).postgresImage).toBe("postgres:16-x");
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("the agent's result line", () => {
    it("is the last result= line, split into words; none means the outcome is unknown", () => {
        expect(resultOf("2026 backup: x written and checked\nresult=passed 20261202T000000Z-safety.dump\n")).toEqual([
            "passed",
            "20261202T000000Z-safety.dump",
        ]);
        expect(resultOf("result=exists:yes replaced:no")).toEqual(["exists:yes", "replaced:no"]);
        expect(resultOf("2026 backup: restored x into db\n")).toBeUndefined();
        expect(resultOf("")).toBeUndefined();
    });
});
