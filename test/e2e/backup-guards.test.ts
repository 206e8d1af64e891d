// The backup agent's guards (issue 22) on the real engine: the mount guard (a share that is not mounted
// stops `up` and every pass). A real mount: a tmpfs mounted in the test's directory (root needed).
import { execFile, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
