// The off-site copy wired into the stack (issue 22, item 1), on the real engine: the dev stack with
// backupOffsite pointing at an SFTP target on the stack's own network (an OpenSSH server in a container of
// its own, a second machine as far as the agent can tell). A pass puts the dump off-site, `npm run backups`
// lists it there, the target's files hold none of the data in plaintext, and with every local dump gone the database comes back from the off-site copy alone.
//
// Fails on main: there the backup container gets no off-site target (no BACKUP_OFFSITE_* variables, no
// secret files), a pass pushes nothing, and the agent has no list-offsite or fetch-offsite command.
import { execFile, spawnSync } from "node:child_process";
import { readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withDb } from "./clients";
import { offsiteTarget, SFTP_CONTAINER, type OffsiteTarget } from "./offsiteTarget";
import { pulumiDestroy, pulumiUp, type StackRun } from "./harness/run";
import { clearLeftovers, devStack, removeTempDir, requireEngine, tempDir } from "./support";
import { expectOk, takeTurnsOnEngine } from "./hooks";

const run$ = promisify(execFile);
const SFTP = SFTP_CONTAINER;
const CONTAINERS = ["marvel-rivals-postgres", "marvel-rivals-redis", "marvel-rivals-app", "marvel-rivals-backup", SFTP];
const NETWORK = "marvel-rivals-network";
const LONG = 15 * 60_000;
const OWNER = 1000;
const CANARY = "offsite-canary-7f3e9b21c4d8";
const PASSWORD = "e2e-offsite-repository-password-0123456789";

const engine = requireEngine();

async function sh(cmd: string, args: string[], cwd?: string, env?: NodeJS.ProcessEnv) {
    try {
        const { stdout, stderr } = await run$(cmd, args, {
            cwd,
            env,
            maxBuffer: 16 * 1024 * 1024,
            timeout: 10 * 60_000,
        });
        return { code: 0, stdout, stderr };
    } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
    }
}

function must(cmd: string, args: string[]): string {
    const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(" ")} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
}

takeTurnsOnEngine(engine);

describe.skipIf(!engine)("the off-site copy on the dev stack", () => {
    let work: string;
    let target: OffsiteTarget;
    let repo: string;
    let run: StackRun & { dataDir: string };
    let project: string;
    let databaseUrl: string;

    const backupDir = () => path.join(run.dataDir, "backups");
    const npm = (...args: string[]) => sh("npm", ["run", "-s", ...args], project);
    const canaries = () =>
        withDb(databaseUrl, async (db) =>
            Number((await db.query("SELECT count(*) AS n FROM players WHERE username = $1", [CANARY])).rows[0].n),
        );

    beforeAll(async () => {
        await clearLeftovers(CONTAINERS, [NETWORK]);
        work = tempDir("offsite");
        target = offsiteTarget(work, PASSWORD);
        repo = target.repoDir;
        run = await devStack(work, { hostOwner: `${OWNER}:${OWNER}`, ...target.overrides });
        run.secrets = target.secrets;
        project = run.projectDir;
        const up = await pulumiUp(run);
        expectOk(up);
        databaseUrl = up.outputs.databaseUrl;
        // The second machine, on the stack's network (the agent reaches it by name, as it would a NAS).
        target.start(NETWORK);
        expect((await sh("docker", ["exec", "marvel-rivals-app", "seed"])).code).toBe(0);
        await withDb(databaseUrl, (db) => db.query("INSERT INTO players (username) VALUES ($1)", [CANARY]));
    }, LONG);

    afterAll(async () => {
        if (run) await pulumiDestroy(run).catch(() => undefined);
        await clearLeftovers(CONTAINERS, [NETWORK]).catch(() => undefined);
        removeTempDir(work);
    }, LONG);

    it(
        "a pass puts the dump off-site, encrypted; `npm run backups` lists it; the database comes back from there alone",
        async () => {
            // No secret in the container's environment: the files are uploads.
            const inspect = await sh("docker", ["inspect", "--format", "{{json .Config.Env}}", "marvel-rivals-backup"]);
            expect(inspect.stdout).toContain("BACKUP_OFFSITE_REPOSITORY=sftp:offsite@");
            expect(inspect.stdout).not.toContain(PASSWORD);
            expect(inspect.stdout).not.toContain(new URL(databaseUrl).password);
            expect(inspect.stdout).not.toContain('"PGPASSWORD=');

            const pass = await npm("backups", "--", "now");
            expect(pass.code, pass.stdout + pass.stderr).toBe(0);
            expect(pass.stdout).toMatch(/off-site: \S+-scheduled\.dump pushed to sftp:offsite@/);
            const dump = readdirSync(backupDir()).find((f) => f.endsWith("-scheduled.dump"))!;
            expect(dump).toBeDefined();

            const listed = await npm("backups");
            expect(listed.code, listed.stdout + listed.stderr).toBe(0);
            expect(listed.stdout).toContain(`off-site: 1 copy at sftp:offsite@${SFTP}:/srv/repo`);
            expect(listed.stdout).toMatch(new RegExp(`^  [0-9a-f]{8} .* ${dump.replace(/\./g, "\\.")}$`, "m"));

            // The target holds a restic repository, and nothing of the data, the file's name or its hash in
            // any of its files.
            const files = String(must("find", [path.join(repo, "repo"), "-type", "f"]))
                .split("\n")
                .filter(Boolean);
            expect(files.some((f) => f.endsWith("/config"))).toBe(true);
            expect(files.some((f) => f.includes("/data/"))).toBe(true);
            const record = JSON.parse(readFileSync(path.join(backupDir(), `${dump}.json`), "utf8"));
            for (const needle of [CANARY, dump, record.sha256]) {
                const grep = spawnSync("grep", ["-rlF", needle, path.join(repo, "repo")]);
                expect(grep.status, `${needle} found in ${grep.stdout}`).toBe(1);
            }
            // The local disk is lost: every dump gone. Then the data changes.
            for (const f of readdirSync(backupDir())) rmSync(path.join(backupDir(), f), { force: true });
            await withDb(databaseUrl, (db) => db.query("DELETE FROM players WHERE username = $1", [CANARY]));
            expect(await canaries()).toBe(0);

            const fetched = await sh("docker", [
                "exec",
                "marvel-rivals-backup",
                "backup-agent",
                "fetch-offsite",
                "latest",
            ]);
            expect(fetched.code, fetched.stderr).toBe(0);
            expect(fetched.stdout).toContain(`result=fetched ${dump}`);
            expect(statSync(path.join(backupDir(), dump)).uid).toBe(OWNER);
            const restored = await npm("restore", "--", "--from", dump);
            expect(restored.code, restored.stdout + restored.stderr).toBe(0);
            expect(await canaries()).toBe(1);

            // The periodic verify re-reads the off-site copy too.
            const verify = await sh("docker", ["exec", "marvel-rivals-backup", "backup-agent", "verify-all"]);
            expect(verify.stdout).toContain("restic check --read-data passed");
        },
        LONG,
    );

    it(
        "a push that fails fails the pass: `now` exits 1, the container turns unhealthy, `npm run backups` fails",
        async () => {
            expect((await sh("docker", ["exec", "marvel-rivals-backup", "backup-agent", "health"])).code).toBe(0);
            // The second machine goes away.
            expect((await sh("docker", ["stop", "-t", "1", SFTP])).code).toBe(0);
            const pass = await npm("backups", "--", "now");
            expect(pass.code).toBe(1);
            expect(pass.stdout + pass.stderr).toMatch(
                /off-site copy of \S+-scheduled\.dump FAILED: off-site target sftp:/,
            );
            const health = await sh("docker", ["exec", "marvel-rivals-backup", "backup-agent", "health"]);
            expect(health.code).toBe(1);
            expect(health.stdout).toContain("passed its check but its off-site copy failed");
            const listed = await npm("backups");
            expect(listed.code).toBe(1);
        },
        LONG,
    );
});
