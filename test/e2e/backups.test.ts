// Scheduled backups, each proved by a restore, and a one-command restore (issue 14), on the real engine:
// the dev stack with a schedule of a few seconds, its dumps in the test's directory, the README's
// `npm run backups` and `npm run restore` run in the project copy as a user runs them.
import { execFile, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpGet, rowCounts, withDb } from "./clients";
import { pulumiDestroy, pulumiUp, type StackRun } from "./harness/run";
import { clearLeftovers, devStack, removeTempDir, requireEngine, tempDir } from "./support";
import { expectOk, takeTurnsOnEngine } from "./hooks";

const run$ = promisify(execFile);
const CONTAINERS = ["marvel-rivals-postgres", "marvel-rivals-redis", "marvel-rivals-app", "marvel-rivals-backup"];
const NETWORK = "marvel-rivals-network";
const TABLES = ["players", "matches", "match_participants", "character_stats", "synergy_stats", "collection_metadata"];
const AGENT = ["exec", "marvel-rivals-backup", "backup-agent"];
const LONG = 15 * 60_000;
const OWNER = 1000;

const engine = requireEngine();

/** A command's exit code and output, never throwing. */
async function sh(
    cmd: string,
    args: string[],
    cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
        const { stdout, stderr } = await run$(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024, timeout: 10 * 60_000 });
        return { code: 0, stdout, stderr };
    } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
    }
}

takeTurnsOnEngine(engine);

describe.skipIf(!engine)("scheduled backups and a one-command restore on the dev stack", () => {
    let work: string;
    let project: string;
    let backupDir: string;
    let run: StackRun;
    let databaseUrl: string;
    let appUrl: string;
    let seeded: Record<string, number>;

    const records = () =>
        readdirSync(backupDir)
            .filter((f) => f.endsWith(".dump.json"))
            .sort()
            .map((f) => JSON.parse(readFileSync(path.join(backupDir, f), "utf8")));
    const scheduled = () =>
        readdirSync(backupDir)
            .filter((f) => f.endsWith("-scheduled.dump"))
            .sort();
    /** Waits for `until` to be true of the backup directory, up to `ms`. */
    async function waitFor(what: string, until: () => boolean, ms = 120_000): Promise<void> {
        const deadline = Date.now() + ms;
        while (!until()) {
            if (Date.now() > deadline) {
                const logs = await sh("docker", ["logs", "--tail", "20", "marvel-rivals-backup"]);
                throw new Error(`${what}: not within ${ms / 1000} s; the agent said:\n${logs.stdout}${logs.stderr}`);
            }
            await new Promise((r) => setTimeout(r, 500));
        }
    }
    const npm = (...args: string[]) => sh("npm", ["run", "-s", ...args], project);

    beforeAll(async () => {
        await clearLeftovers(CONTAINERS, [NETWORK]);
        work = tempDir("backups");
        const dev = await devStack(work, {
            hostOwner: `${OWNER}:${OWNER}`,
            backupSchedule: "@every 6s",
            backupKeepLast: "2",
        });
        run = dev;
        project = dev.projectDir;
        backupDir = path.join(dev.dataDir, "backups");
        const up = await pulumiUp(run);
        expectOk(up);
        databaseUrl = up.outputs.databaseUrl;
        appUrl = up.outputs.appUrl;
        expect(up.outputs.backupDir).toBe(backupDir);
        expect((await sh("docker", ["exec", "marvel-rivals-app", "seed"])).code).toBe(0);
        seeded = await rowCounts(databaseUrl, TABLES);
        expect(seeded.match_participants).toBeGreaterThan(0);
    }, LONG);

    afterAll(async () => {
        if (run) await pulumiDestroy(run).catch(() => undefined);
        await clearLeftovers(CONTAINERS, [NETWORK]).catch(() => undefined);
        removeTempDir(work);
    }, LONG);

    it(
        "a. a backup appears on the schedule, owned by the stack's owner, checked against the source's rows at its snapshot",
        async () => {
            const seededAt = new Date().toISOString().replace(/\.\d+Z$/, "Z");
            const isSeeded = (r: { tables: Record<string, number> }) =>
                TABLES.every((t) => r.tables[`public.${t}`] === seeded[t]);
            await waitFor("a checked backup of the seeded data", () =>
                records().some((r) => r.createdAt >= seededAt && r.check === "passed" && isSeeded(r)),
            );
            const record = records().find((r) => r.createdAt >= seededAt && isSeeded(r))!;
            expect(record).toMatchObject({ check: "passed", reason: "" });
            expect(record.sizeBytes).toBeGreaterThan(0);
            // The migration history is in the dump too: a restore knows what was applied.
            expect(Object.keys(record.tables)).toContain("migration_runner.history");
            const dump = path.join(backupDir, record.file);
            expect(statSync(dump).uid).toBe(OWNER);
            expect(statSync(`${dump}.json`).uid).toBe(OWNER);
            expect(statSync(dump).size).toBe(record.sizeBytes);
            // Written under a temporary name and renamed: no partial file is ever left.
            expect(readdirSync(backupDir).filter((f) => f.startsWith("."))).toEqual([]);
            // The scratch database of the check is gone.
            const dbs = await withDb(
                databaseUrl,
                async (db) => (await db.query("SELECT datname FROM pg_database")).rows,
            );
            expect(
                dbs.map((d: { datname: string }) => d.datname).filter((n: string) => n.startsWith("backup_check")),
            ).toEqual([]);
            // The password never reached an argument of the agent's processes.
            const ps = await sh("docker", [
                "exec",
                "marvel-rivals-backup",
                "sh",
                "-c",
                "cat /proc/[0-9]*/cmdline | tr '\\0' ' '",
            ]);
            expect(ps.stdout).toContain("backup-agent");
            const password = new URL(databaseUrl).password;
            expect(ps.stdout).not.toContain(decodeURIComponent(password));
        },
        LONG,
    );

    it(
        "b. retention keeps the newest 2 scheduled dumps and prunes the older ones",
        async () => {
            const seen = new Set<string>();
            await waitFor("five scheduled backups", () => {
                for (const f of scheduled()) seen.add(f);
                return seen.size >= 5;
            });
            // A pass ends with the prune: wait for the directory to settle on the newest two.
            await waitFor("the retention", () => scheduled().length === 2);
            const kept = scheduled();
            const all = [...seen].sort();
            expect(kept.every((f) => f >= all[all.length - 3])).toBe(true);
            expect(all.filter((f) => !kept.includes(f) && f < kept[0]).length).toBeGreaterThanOrEqual(3);
            for (const f of all.slice(0, -3)) expect(existsSync(path.join(backupDir, f)), f).toBe(false);
            for (const f of kept) expect(existsSync(path.join(backupDir, `${f}.json`)), f).toBe(true);
        },
        LONG,
    );

    it(
        "b2. a backup that fails is logged loudly each time, leaves the earlier dumps untouched, and the next one succeeds",
        async () => {
            const before = readdirSync(backupDir).sort();
            const since = Math.floor(Date.now() / 1000);
            // The agent (uid 1000) can no longer write into its directory: pg_dump fails.
            chmodSync(backupDir, 0o500);
            try {
                await waitFor("two failed backups in the log", () => {
                    const logs = spawnSync("docker", ["logs", "--since", String(since), "marvel-rivals-backup"], {
                        encoding: "utf8",
                    });
                    return (
                        (
                            logs.stderr.match(
                                /backup: ERROR backup \S+ failed, previous backups untouched: pg_dump/g,
                            ) ?? []
                        ).length >= 2
                    );
                });
                expect(readdirSync(backupDir).sort()).toEqual(before);
            } finally {
                chmodSync(backupDir, 0o700);
            }
            const after = Math.floor(Date.now() / 1000);
            await waitFor("a checked backup after the failures", () => {
                const logs = spawnSync("docker", ["logs", "--since", String(after), "marvel-rivals-backup"], {
                    encoding: "utf8",
                });
                return /written and checked/.test(logs.stdout);
            });
        },
        LONG,
    );

    it(
        "c. the schedule is config: without it the agent idles and `npm run backups` lists the dumps and says so",
        async () => {
            // Off before the destructive change below, so that no later dump of the damage becomes `latest`.
            const off = await pulumiUp({ ...run, overrides: { ...run.overrides, backupSchedule: null } });
            expectOk(off);
            expect(off.outputs.backupSchedule).toBe("none");
            const before = scheduled();
            await new Promise((r) => setTimeout(r, 8000));
            expect(scheduled()).toEqual(before);
            const listed = await npm("backups");
            expect(listed.code, listed.stderr).toBe(0);
            for (const f of before)
                expect(listed.stdout).toMatch(
                    new RegExp(`${f} +[0-9.]+ (B|KiB|MiB) +\\S+ ago  passed \\(\\d+ tables, \\d+ rows\\)`),
                );
            expect(listed.stdout).toMatch(
                /no schedule \(backupSchedule unset\); last verified backup: \S+-scheduled\.dump/,
            );
            const json = JSON.parse((await npm("backups", "--", "--json")).stdout);
            expect(json).toMatchObject({ stack: "dev", schedule: "none", stale: false });
            expect(json.backups.map((b: { file: string }) => b.file)).toEqual(expect.arrayContaining(before));
        },
        LONG,
    );

    it(
        "d. a corrupted dump fails its check, is kept and marked failed, and a restore refuses it unless forced",
        async () => {
            const good = scheduled().pop()!;
            const bad = "20200101T000000Z-manual.dump";
            const body = readFileSync(path.join(backupDir, good));
            writeFileSync(path.join(backupDir, bad), body.subarray(0, Math.floor(body.length / 2)));
            writeFileSync(path.join(backupDir, `${bad}.json`), readFileSync(path.join(backupDir, `${good}.json`)));
            for (const f of [bad, `${bad}.json`]) chownSync(path.join(backupDir, f), OWNER, OWNER);
            const verify = await sh("docker", [...AGENT, "verify", bad]);
            expect(verify.code).toBe(1);
            // Checked in a temporary cluster of the container, never a scratch database on the server.
            expect(verify.stderr).toContain(`${bad} FAILED ITS CHECK: pg_restore into a new cluster failed`);
            expect(existsSync(path.join(backupDir, bad))).toBe(true);
            const record = JSON.parse(readFileSync(path.join(backupDir, `${bad}.json`), "utf8"));
            expect(record).toMatchObject({ file: bad, check: "failed" });
            const listed = await npm("backups");
            expect(listed.stdout).toContain(`${bad}`);
            expect(listed.stdout).toMatch(new RegExp(`${bad}.*FAILED: pg_restore into a new cluster failed`));

            const refused = await npm("restore", "--", "--from", bad);
            expect(refused.code).toBe(1);
            expect(refused.stderr).toContain(`restore: ${bad} failed its check (pg_restore into a new cluster failed`);
            expect(refused.stderr).toContain("or restore it anyway with --force");
            // Refused before anything happened: the app never stopped.
            expect((await httpGet(`${appUrl}/health/ready`)).status).toBe(200);
            // Forced, the broken dump does not load and the database is as it was.
            const forced = await npm("restore", "--", "--from", bad, "--force");
            expect(forced.code).toBe(1);
            expect(forced.stderr).toContain("the restore failed, the database is as it was");
            expect(await rowCounts(databaseUrl, TABLES)).toEqual(seeded);
            await waitForReady();
        },
        LONG,
    );

    async function waitForReady(): Promise<void> {
        const deadline = Date.now() + 60_000;
        for (;;) {
            const answer = await httpGet(`${appUrl}/health/ready`).catch(() => undefined);
            if (answer?.status === 200) return;
            if (Date.now() > deadline) throw new Error(`the app is not ready: ${answer?.status} ${answer?.body}`);
            await new Promise((r) => setTimeout(r, 500));
        }
    }

    it(
        "e. after a destructive change, `npm run restore -- --from latest` brings every row back, the app healthy, and keeps a safety dump of the damage",
        async () => {
            const latest = scheduled().pop()!;
            await withDb(databaseUrl, async (db) => {
                await db.query("DELETE FROM match_participants");
                await db.query("DELETE FROM synergy_stats");
                await db.query("UPDATE players SET rank_tier = 'overwritten'");
            });
            const damaged = await rowCounts(databaseUrl, TABLES);
            expect(damaged.match_participants).toBe(0);

            const restored = await npm("restore", "--", "--from", "latest");
            expect(restored.code, restored.stderr).toBe(0);
            expect(restored.stdout).toContain(`restore: stack dev on the local engine: restoring ${latest}`);
            expect(restored.stdout).toContain("restore: app stopped");
            expect(restored.stdout).toMatch(/restore: app ready; done in [0-9.]+ s/);

            // Every row back, the app healthy and ready, nothing pending.
            expect(await rowCounts(databaseUrl, TABLES)).toEqual(seeded);
            const tiers = await withDb(
                databaseUrl,
                async (db) =>
                    (await db.query("SELECT count(*)::int AS n FROM players WHERE rank_tier = 'overwritten'")).rows,
            );
            expect(tiers).toEqual([{ n: 0 }]);
            expect((await httpGet(`${appUrl}/health/ready`)).status).toBe(200);
            const heroes = await httpGet(`${appUrl}/api/heroes`);
            expect(heroes.status).toBe(200);
            const status = JSON.parse(
                (await sh("docker", ["exec", "marvel-rivals-app", "migrate", "status", "--json"])).stdout,
            );
            expect(status.pending).toEqual([]);

            // The safety dump holds the damaged state, checked, and restore says how to go back to it.
            const safety = /safety dump of the current database: (\S+-safety\.dump) \(checked\)/.exec(
                restored.stdout,
            )?.[1];
            expect(safety).toBeDefined();
            const record = JSON.parse(readFileSync(path.join(backupDir, `${safety}.json`), "utf8"));
            expect(record.check).toBe("passed");
            expect(record.tables["public.match_participants"]).toBe(0);
            expect(record.tables["public.players"]).toBe(damaged.players);
            expect(restored.stdout).toContain(`to undo: npm run restore -- --stack dev --from ${safety}`);
            // `latest` is never a safety dump: a second restore takes the same scheduled dump again.
            const again = await npm("restore", "--", "--from", "latest");
            expect(again.code, again.stderr).toBe(0);
            expect(again.stdout).toContain(`restoring ${latest}`);
            expect(await rowCounts(databaseUrl, TABLES)).toEqual(seeded);
            // No database of the restore is left beside the real one.
            const dbs = await withDb(
                databaseUrl,
                async (db) => (await db.query("SELECT datname FROM pg_database ORDER BY 1")).rows,
            );
            expect(dbs.map((d: { datname: string }) => d.datname)).toEqual([
                "marvel_rivals",
                "postgres",
                "template0",
                "template1",
            ]);
        },
        LONG,
    );

    it(
        "e2. --skip-safety-dump keeps the replaced database, and the next restore refuses until it is dealt with",
        async () => {
            const skipped = await npm("restore", "--", "--from", "latest", "--skip-safety-dump");
            expect(skipped.code, skipped.stderr).toBe(0);
            expect(skipped.stdout).toContain("no safety dump (--skip-safety-dump)");
            expect(skipped.stdout).toContain("the replaced database is kept as marvel_rivals_replaced");
            const dbs = async () =>
                (
                    await withDb(
                        databaseUrl,
                        async (db) => (await db.query("SELECT datname FROM pg_database ORDER BY 1")).rows,
                    )
                ).map((d: { datname: string }) => d.datname);
            expect(await dbs()).toContain("marvel_rivals_replaced");
            const refused = await npm("restore", "--", "--from", "latest");
            expect(refused.code).toBe(1);
            expect(refused.stderr).toContain(
                "marvel_rivals_replaced, the database an earlier restore replaced, still exists",
            );
            // Refused before anything stopped: no safety dump taken, the app never stopped, nothing changed.
            expect(refused.stderr).toContain("nothing was changed");
            expect(refused.stdout).not.toContain("app stopped");
            await waitForReady();
            expect(await rowCounts(databaseUrl, TABLES)).toEqual(seeded);
            expect(
                (
                    await sh("docker", [
                        "exec",
                        "marvel-rivals-postgres",
                        "dropdb",
                        "-U",
                        "marvel_stats",
                        "marvel_rivals_replaced",
                    ])
                ).code,
            ).toBe(0);
            expect(await dbs()).toEqual(["marvel_rivals", "postgres", "template0", "template1"]);
        },
        LONG,
    );

    it(
        "f. destroy removes the backup container and leaves every dump where it was",
        async () => {
            const before = readdirSync(backupDir).sort();
            const down = await pulumiDestroy(run);
            expectOk(down);
            expect(readdirSync(backupDir).sort()).toEqual(before);
            const gone = await sh("docker", ["inspect", "marvel-rivals-backup"]);
            expect(gone.code).not.toBe(0);
            const refused = await npm("backups");
            expect(refused.code).toBe(1);
            expect(refused.stderr).toContain(
                "no backup container marvel-rivals-backup on the local engine: bring the stack up first",
            );
        },
        LONG,
    );
});
