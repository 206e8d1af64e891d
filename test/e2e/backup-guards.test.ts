// The backup agent's guards (issue 22) on the real engine: the mount guard (a share that is not mounted
// stops `up` and every pass; a real mount: a tmpfs mounted in the test's directory, root needed), and the
// alerts (a failed pass turns the container unhealthy and fires the webhook, received by a small HTTP
// server inside the stack's network).
import { execFile, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeImage } from "../../components/backupImage";
import { pulumiDestroy, pulumiUp, type StackRun } from "./harness/run";
import { clearLeftovers, devStack, removeTempDir, requireEngine, tempDir } from "./support";
import { expectOk, takeTurnsOnEngine } from "./hooks";

const run$ = promisify(execFile);
const CONTAINERS = ["marvel-rivals-postgres", "marvel-rivals-redis", "marvel-rivals-app", "marvel-rivals-backup"];
const NETWORK = "marvel-rivals-network";
const LONG = 15 * 60_000;
const OWNER = 1000;

const engine = requireEngine();
const isRoot = process.getuid?.() === 0;

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

const logsSince = (since: number) =>
    spawnSync("docker", ["logs", "--since", String(since), "marvel-rivals-backup"], { encoding: "utf8" });

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

takeTurnsOnEngine(engine);

describe.skipIf(!engine || !isRoot)("the mount guard (backupRequireMount)", () => {
    let work: string;
    let share: string;
    let mounted = false;
    let run: StackRun;
    const npm = (...args: string[]) => sh("npm", ["run", "-s", ...args], run.projectDir);

    beforeAll(async () => {
        await clearLeftovers(CONTAINERS, [NETWORK]);
        work = tempDir("backup-guards");
        share = path.join(work, "share");
        mkdirSync(share);
        mkdirSync(path.join(work, "plain"));
        run = await devStack(work, {
            hostOwner: `${OWNER}:${OWNER}`,
            backupSchedule: "@every 3s",
            backupRequireMount: "true",
        });
    }, LONG);

    afterAll(async () => {
        if (run) await pulumiDestroy(run).catch(() => undefined);
        await clearLeftovers(CONTAINERS, [NETWORK]).catch(() => undefined);
        if (mounted) spawnSync("umount", [share]);
        removeTempDir(work);
    }, LONG);

    it(
        "a. `up` with the backup directory on a plain directory stops, naming it, before anything is created",
        async () => {
            const dir = path.join(work, "plain", "backups");
            const up = await pulumiUp({ ...run, overrides: { ...run.overrides, backupDir: dir } });
            expect(up.ok).toBe(false);
            expect(up.error).toContain(
                `backupDir ${dir} is not on a mounted share: neither it nor ${path.join(work, "plain")} is a mount point on the Docker host`,
            );
            expect(existsSync(dir)).toBe(false);
            expect((await sh("docker", ["inspect", "marvel-rivals-postgres"])).code).not.toBe(0);
        },
        LONG,
    );

    it(
        "b. on a mounted share `up` goes on and the passes write there; unmounted under a restarted container, a pass writes nothing, says why, and `npm run backups` exits 1",
        async () => {
            expect(spawnSync("mount", ["-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs", share]).status).toBe(0);
            mounted = true;
            const dir = path.join(share, "backups");
            run = { ...run, overrides: { ...run.overrides, backupDir: dir } };
            expectOk(await pulumiUp(run));
            await waitFor("a checked dump on the share", () =>
                readdirSync(dir).some((f) => f.endsWith("-scheduled.dump.json")),
            );
            const listed = await npm("backups");
            expect(listed.code, listed.stderr + listed.stdout).toBe(0);

            // The share goes away (a reboot with the NAS down): the container starts on the empty mount point.
            expect((await sh("docker", ["stop", "marvel-rivals-backup"])).code).toBe(0);
            expect(spawnSync("umount", [share]).status).toBe(0);
            mounted = false;
            mkdirSync(dir);
            chownSync(dir, OWNER, OWNER);
            const since = Math.floor(Date.now() / 1000);
            expect((await sh("docker", ["start", "marvel-rivals-backup"])).code).toBe(0);
            await waitFor("two refused passes", () => {
                const err = logsSince(since).stderr;
                return (
                    (
                        err.match(
                            /backup: ERROR scheduled backup not taken: the backup directory \S+ is not on a mounted share/g,
                        ) ?? []
                    ).length >= 2
                );
            });
            expect(logsSince(since).stderr).toContain(`the backup directory ${dir} is not on a mounted share`);
            expect(readdirSync(dir)).toEqual([]);
            const refused = await npm("backups");
            expect(refused.code).toBe(1);
            expect(refused.stdout).toContain(`ERROR: the backup directory ${dir} is not on a mounted share`);
        },
        LONG,
    );
});

describe.skipIf(!engine)("alerts: the healthcheck, backupNotifyUrl and `npm run backups`", () => {
    const HOOK = "mrs-i22-hook";
    let work: string;
    let run: StackRun & { dataDir: string };
    const npm = (...args: string[]) => sh("npm", ["run", "-s", ...args], run.projectDir);
    const health = async () =>
        (await sh("docker", ["inspect", "--format", "{{.State.Health.Status}}", "marvel-rivals-backup"])).stdout.trim();
    /** The requests the receiver got, one JSON line each. */
    const received = () =>
        spawnSync("docker", ["logs", HOOK], { encoding: "utf8" })
            .stdout.split("\n")
            .filter((l) => l.startsWith("{"))
            .map((l) => JSON.parse(l) as { method: string; url: string; type: string; body: string });
    async function waitHealth(want: string): Promise<void> {
        const deadline = Date.now() + 120_000;
        for (;;) {
            const h = await health();
            if (h === want) return;
            if (Date.now() > deadline) throw new Error(`the backup container is ${h}, not ${want}, after 120 s`);
            await new Promise((r) => setTimeout(r, 1000));
        }
    }

    // The receiver is this test's own container (not the harness's): removed by name before and after.
    const removeHook = () => spawnSync("docker", ["rm", "-f", HOOK], { encoding: "utf8" });

    beforeAll(async () => {
        removeHook();
        await clearLeftovers(CONTAINERS, [NETWORK]);
        work = tempDir("backup-alerts");
        run = {
            ...(await devStack(work, {
                hostOwner: `${OWNER}:${OWNER}`,
                backupSchedule: "@every 3s",
                backupNotifyUrl: `http://${HOOK}:8080/hook?token=t0ps3cret`,
            })),
            secrets: ["backupNotifyUrl"],
        };
        expectOk(await pulumiUp(run));
        const server = `require("http").createServer((q, r) => { let b = ""; q.on("data", (d) => (b += d)); q.on("end", () => { console.log(JSON.stringify({ method: q.method, url: q.url, type: q.headers["content-type"], body: b })); r.end("ok"); }); }).listen(8080)`;
        const started = await sh("docker", [
            "run",
            "-d",
            "--name",
            HOOK,
            "--network",
            NETWORK,
            "--entrypoint",
            "node",
            nodeImage(),
            "-e",
            server,
        ]);
        expect(started.code, started.stderr).toBe(0);
    }, LONG);

    afterAll(async () => {
        removeHook();
        if (run) await pulumiDestroy(run).catch(() => undefined);
        await clearLeftovers(CONTAINERS, [NETWORK]).catch(() => undefined);
        removeTempDir(work);
    }, LONG);

    it(
        "a failed pass turns the container unhealthy, fires the webhook once and fails `npm run backups`; the recovery fires it again",
        async () => {
            const dir = path.join(run.dataDir, "backups");
            await waitFor("a checked dump", () => readdirSync(dir).some((f) => f.endsWith("-scheduled.dump.json")));
            await waitHealth("healthy");
            expect((await npm("backups")).code).toBe(0);

            chmodSync(dir, 0o500);
            try {
                await waitHealth("unhealthy");
                await waitFor("the failure notification", () => received().length >= 1);
                const listed = await npm("backups");
                expect(listed.code).toBe(1);
                expect(listed.stdout).toMatch(/ERROR: the last scheduled pass \(\S+\) failed: the dump failed/);
                const ran = await npm("backups", "--", "now");
                expect(ran.code).toBe(1);
                expect(ran.stdout).toContain("failed, previous backups untouched: pg_dump");
            } finally {
                chmodSync(dir, 0o700);
            }
            await waitFor("the recovery notification", () => received().length >= 2);
            await waitHealth("healthy");
            const [failure, recovery, ...more] = received();
            expect(more).toEqual([]);
            expect(failure).toMatchObject({ method: "POST", url: "/hook?token=t0ps3cret", type: "application/json" });
            expect(JSON.parse(failure.body)).toMatchObject({
                event: "failure",
                stack: "dev",
                title: "Backups FAILING on dev",
            });
            expect(JSON.parse(recovery.body)).toMatchObject({ event: "recovery", stack: "dev" });
            // The URL (its token) is never in the agent's log.
            const logs = await sh("docker", ["logs", "marvel-rivals-backup"]);
            expect(logs.stdout + logs.stderr).toContain("notified the failure");
            expect(logs.stdout + logs.stderr).not.toContain("t0ps3cret");
            const now = await npm("backups", "--", "now");
            expect(now.code, now.stderr).toBe(0);
            expect(now.stdout).toMatch(/backup: \S+-scheduled\.dump written and checked/);
        },
        LONG,
    );

    it(
        "a flipped byte in a stored dump is caught by the verify, marked failed, and `latest` skips it; the newest good one restores in a cluster of its own",
        async () => {
            // The schedule off, so that no newer dump comes after the damaged one.
            const off = await pulumiUp({ ...run, overrides: { ...run.overrides, backupSchedule: null } });
            expectOk(off);
            const dir = path.join(run.dataDir, "backups");
            const record = (f: string) => JSON.parse(readFileSync(path.join(dir, `${f}.json`), "utf8"));
            const good = readdirSync(dir)
                // A pass the schedule change stopped may have left a dump without its record yet: not one of these.
                .filter((f) => f.endsWith("-scheduled.dump") && existsSync(path.join(dir, `${f}.json`)))
                .filter((f) => record(f).check === "passed")
                .sort();
            expect(good.length).toBeGreaterThanOrEqual(2);
            const [previous, newest] = good.slice(-2);
            expect(record(newest).sha256).toMatch(/^[0-9a-f]{64}$/);
            const body = readFileSync(path.join(dir, newest));
            body[Math.floor(body.length / 2)] ^= 0x01;
            writeFileSync(path.join(dir, newest), body);

            const verify = await sh("docker", ["exec", "marvel-rivals-backup", "backup-agent", "verify-all"]);
            expect(verify.code).toBe(1);
            expect(verify.stderr).toContain(`${newest} FAILED ITS VERIFY: SHA-256`);
            expect(verify.stdout).toContain(`${previous} restored into a new cluster`);
            expect(record(newest)).toMatchObject({ check: "failed" });
            expect(record(newest).reason).toContain("the file changed after it was written");
            const listed = await npm("backups");
            expect(listed.code).toBe(1);
            expect(listed.stdout).toMatch(new RegExp(`${newest}.*FAILED: SHA-256`));

            const restored = await npm("restore", "--", "--from", "latest");
            expect(restored.code, restored.stderr).toBe(0);
            expect(restored.stdout).toContain(`restoring ${previous}`);
        },
        LONG,
    );
});
