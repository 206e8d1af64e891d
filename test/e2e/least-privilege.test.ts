// Issue 24 on a real Docker engine: a dev stack made by the last main before this issue (87ec0be, its
// program checked out into a temp directory) is brought up, seeded, then upgraded in place by this
// program with every row kept; after that, with the app's own credentials `rolsuper` is false and
// `COPY ... TO PROGRAM` is denied, and `docker inspect` of every container shows CapDrop ALL,
// no-new-privileges, a process and a memory limit, and no credential in Config.Env of the database, Redis
// and the app (the backup agent is rewritten by another change); the app has a read-only root and a
// non-root user; its API answers through Redis' ACL user.
// Fails on today's main: its app logs in as a member of the superuser owner (rolsuper through SET role,
// COPY TO PROGRAM allowed), its containers drop nothing and carry the passwords in their environment.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { httpGet, rowCounts, withDb } from "./clients";
import { pulumiDestroy, pulumiUp, REPO_ROOT, copyProject, type StackRun } from "./harness/run";
import { clearLeftovers, devStack, docker, removeTempDir, requireEngine, tempDir } from "./support";
import { expectOk, takeTurnsOnEngine } from "./hooks";
import { credentialVariables } from "../../policy/rules";
import { seed } from "../../app/src/seed";

const CONTAINERS = ["marvel-rivals-postgres", "marvel-rivals-redis", "marvel-rivals-app", "marvel-rivals-backup"];
const NETWORK = "marvel-rivals-network";
const TABLES = ["players", "matches", "match_participants"];
/** The last main before issue 24. */
const MAIN_BEFORE = "87ec0be";
const LONG = 15 * 60_000;

const engine = requireEngine();
takeTurnsOnEngine(engine);

describe.skipIf(!engine)("least privilege at run time (issue 24)", () => {
    let work: string;
    let run: StackRun & { dataDir: string };
    let before: Record<string, number>;
    let databaseUrl: string;

    beforeAll(async () => {
        await clearLeftovers(CONTAINERS, [NETWORK]);
        work = tempDir("least-privilege");
        // main's program, with this repository's node_modules (the same dependencies).
        const mainSource = path.join(work, "main-source");
        mkdirSync(mainSource, { recursive: true });
        execFileSync("sh", ["-c", `git -C "$0" archive ${MAIN_BEFORE} | tar -x -C "$1"`, REPO_ROOT, mainSource]);
        symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(mainSource, "node_modules"));
        run = await devStack(work, { hostOwner: "1000:1000" });
        run.projectDir = copyProject(path.join(work, "main-project"), mainSource);
    }, LONG);

    afterAll(async () => {
        if (run) await pulumiDestroy(run).catch(() => undefined);
        await clearLeftovers(CONTAINERS, [NETWORK]).catch(() => undefined);
        removeTempDir(work);
    }, LONG);

    it(
        "a stack of the previous main, seeded, upgrades in place with every row kept",
        async () => {
            const old = await pulumiUp(run);
            expectOk(old);
            databaseUrl = old.outputs.databaseUrl;
            const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
            await seed(pool).finally(() => pool.end());
            before = await rowCounts(databaseUrl, TABLES);
            expect(before.players).toBeGreaterThan(0);

            // The same state and data, this program.
            run.projectDir = copyProject(path.join(work, "project"));
            const up = await pulumiUp(run);
            expectOk(up);
            databaseUrl = up.outputs.databaseUrl;
            expect(await rowCounts(databaseUrl, TABLES)).toEqual(before);
            const appUrl = up.outputs.appUrl;
            expect((await httpGet(`${appUrl}/health/ready`)).status).toBe(200);
            // Through Redis' ACL user: a miss, then a hit.
            const first = await httpGet(`${appUrl}/api/heroes`);
            expect(first.status).toBe(200);
            const second = await httpGet(`${appUrl}/api/heroes`);
            expect(second.status).toBe(200);
            expect(second.json().cache).toBe("hit");
        },
        LONG,
    );

    it("with the app's credentials: not a superuser, COPY TO PROGRAM denied, the app's tables readable", async () => {
        // The app's URL as its container reads it (the secret file), pointed at the published port.
        const file = readFileSync(path.join(run.dataDir, "secrets", "app_database_url"), "utf8");
        const url = new URL(file.trim());
        const published = new URL(databaseUrl);
        url.host = published.host;
        expect(url.username).toMatch(/^marvel_stats_[ab]$/);
        await withDb(url.toString(), async (db) => {
            expect((await db.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).rows).toEqual([
                { rolsuper: false },
            ]);
            await expect(db.query("COPY (SELECT 1) TO PROGRAM 'id'")).rejects.toThrow(/permission denied|superuser/);
            await expect(db.query("CREATE TABLE planted (id int)")).rejects.toThrow(/permission denied/);
            expect((await db.query("SELECT count(*)::int AS n FROM players")).rows[0].n).toBe(before.players);
        });
    });

    it("docker inspect: every container drops all capabilities, no-new-privileges, process and memory limits; no credential in the environment; the app read-only and not root", async () => {
        const api = docker();
        for (const name of CONTAINERS) {
            const c = await api.inspect("containers", name);
            expect(c, name).toBeDefined();
            expect(c.HostConfig.CapDrop, name).toEqual(["ALL"]);
            expect(c.HostConfig.SecurityOpt, name).toContain("no-new-privileges:true");
            // The pids limit the pids-limits step set (the provider has none); not the per-uid nproc ulimit.
            expect(c.HostConfig.PidsLimit, name).toBe(1024);
            expect(c.HostConfig.Ulimits ?? [], name).toEqual([]);
            expect(c.HostConfig.Memory, name).toBeGreaterThan(0);
            if (name === "marvel-rivals-backup") continue;
            // A *_FILE variable names a path (POSTGRES_PASSWORD_FILE, DATABASE_URL_FILE): not a credential.
            const env = (c.Config.Env as string[]).filter((e) => !/^[A-Z_]+_FILE=\/[^\s]*$/.test(e));
            expect(credentialVariables(env), name).toEqual([]);
        }
        const app = await api.inspect("containers", "marvel-rivals-app");
        expect(app.HostConfig.ReadonlyRootfs).toBe(true);
        expect(app.HostConfig.CapAdd ?? []).toEqual([]);
        expect(app.Config.User).toBe("1000:1000");
        const redis = await api.inspect("containers", "marvel-rivals-redis");
        expect(JSON.stringify(redis.Config.Cmd)).not.toMatch(/requirepass/);
        // Redis: no command without a user; the app's user cannot FLUSHALL.
        const cli = (...args: string[]) =>
            execFileSync("docker", ["exec", "marvel-rivals-redis", "redis-cli", ...args], { encoding: "utf8" });
        expect(cli("GET", "x")).toMatch(/NOAUTH|NOPERM|WRONGPASS|no password/i);
        const redisUrl = new URL(readFileSync(path.join(run.dataDir, "secrets", "app_redis_url"), "utf8").trim());
        const asApp = execFileSync(
            "docker",
            ["exec", "-i", "marvel-rivals-redis", "sh", "-c", 'REDISCLI_AUTH="$(cat)" redis-cli --user app FLUSHALL'],
            { input: decodeURIComponent(redisUrl.password), encoding: "utf8" },
        );
        expect(asApp).toMatch(/NOPERM/);
    });
});
