// End to end on a real Docker engine (issue 5): the real program (index.ts) with the real Pulumi.dev.yaml,
// brought up by the harness (test/e2e/harness) with a temp dataDir and free ports on 127.0.0.1. The
// scenarios run in order on one stack, each building on the state the previous one left, as a developer's
// stack lives: a preview of the new stack, cold up, schema and seed, run again (and preview again), hot
// reload, a broken migration on a warm stack, destroy and up again, lost state, teardown, bad config, a
// broken migration on a cold stack. Then the odin stack, previewed on the local engine.
//
// The project is copied to a temp directory first (copyProject): hot reload edits app/src and the broken
// migration scenarios add a file to migrations/, which must never touch the working tree.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hotReloadLatency, httpGet, rowCounts, withDb } from "./clients";
import {
    opsByName,
    pulumiDestroy,
    pulumiPreview,
    pulumiUp,
    stackConfig,
    REPO_ROOT,
    type StackRun,
} from "./harness/run";
import { clearLeftovers, devStack, docker, removeTempDir, requireEngine, tempDir } from "./support";
import { expectOk, takeTurnsOnEngine } from "./hooks";
import { HARNESS_LABEL } from "./harness/models";
import { REDIS_CLI_ADMIN } from "../../components/redis";

const run$ = promisify(execFile);
const CONTAINERS = ["marvel-rivals-postgres", "marvel-rivals-redis", "marvel-rivals-app"];
// With the backup container, which has no healthcheck: what a leftover run may hold.
const ALL_CONTAINERS = [...CONTAINERS, "marvel-rivals-backup"];
const NETWORK = "marvel-rivals-network";
const APP_IMAGE = "marvel-rivals-stats-app:dev";
const TABLES = ["players", "matches", "match_participants", "character_stats", "synergy_stats", "collection_metadata"];
/** The repository's migrations, in order (what a first `up` applies). */
const MIGRATIONS = readdirSync(path.join(__dirname, "../../migrations"))
    .filter((f) => /^\d+_[a-z0-9_]+\.sql$/.test(f))
    .map((f) => f.slice(0, -".sql".length))
    .sort();
/** Numbered past any real migration, so the repository's next one never collides with it. */
const BROKEN = "900_e2e_broken";
const BROKEN_SQL = `CREATE TABLE e2e_should_not_exist (id INTEGER);\nSELECT * FROM e2e_no_such_table;\n`;
const LONG = 15 * 60_000;

const engine = requireEngine();

/** `docker exec` with arguments only (the container already holds its secrets in its environment). */
async function dockerExec(container: string, ...argv: string[]): Promise<string> {
    const { stdout } = await run$("docker", ["exec", container, ...argv], { maxBuffer: 10 * 1024 * 1024 });
    return stdout;
}

async function appliedInDb(url: string): Promise<{ name: string; applied_at: Date }[]> {
    return withDb(
        url,
        async (db) => (await db.query("SELECT name, applied_at FROM migration_runner.history ORDER BY name")).rows,
    );
}

/**
 * An image's ID and last tag time, or "absent": a build, even one that comes from cache, tags the image
 * again and moves the time. (The image may be there from an earlier run.)
 */
async function tagged(name: string): Promise<string> {
    const image = await docker().inspect("images", name);
    return image ? `${image.Id} ${image.Metadata?.LastTagTime}` : "absent";
}

/** Whether the app's Docker health turns `healthy` within `ms` (its probe runs every 5 s). */
async function appHealthyWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
        const status = (await docker().inspect("containers", "marvel-rivals-app"))?.State?.Health?.Status;
        if (status === "healthy") return true;
        if (Date.now() > deadline) return false;
        await new Promise((r) => setTimeout(r, 250));
    }
}

async function containerIds(): Promise<Record<string, string | undefined>> {
    const api = docker();
    const out: Record<string, string | undefined> = {};
    for (const name of CONTAINERS) out[name] = (await api.inspect("containers", name))?.Id;
    return out;
}

takeTurnsOnEngine(engine);

describe.skipIf(!engine)("the dev stack on a real Docker engine", () => {
    let work: string;
    let project: string;
    let dataDir: string;
    let run: StackRun;
    let appUrl: string;
    let databaseUrl: string;
    let firstApplied: { name: string; applied_at: Date }[];
    let seededCounts: Record<string, number>;

    beforeAll(async () => {
        await clearLeftovers(ALL_CONTAINERS, [NETWORK]);
        work = tempDir("stack");
        const dev = await devStack(work, {
            // Not root, as on a laptop (the tests run as root, which would hide permission bugs).
            hostOwner: "1000:1000",
            // Limits on: the provider reads the swap limit back, a second `up` must still change nothing.
            postgresMemoryMb: "512",
            redisMemoryMb: "128",
            appMemoryMb: "768",
        });
        run = dev;
        project = dev.projectDir;
        dataDir = dev.dataDir;
    }, LONG);

    it(
        "0. a preview of the new stack plans every resource and creates nothing: no container, network, image build, directory or state",
        async () => {
            const imageBefore = await tagged(APP_IMAGE);
            const preview = await pulumiPreview(run);
            expect(await tagged(APP_IMAGE)).toBe(imageBefore);
            expectOk(preview);
            const ops = opsByName(preview);
            for (const name of [
                "data-mkdir",
                "network-bridge",
                "postgres-container",
                "migrations-up",
                "app-image",
                "app-container",
            ])
                expect(ops[name]?.op, name).toBe("create");
            expect(preview.operations.filter((o) => o.op !== "create")).toEqual([]);
            for (const name of CONTAINERS) expect(await docker().inspect("containers", name)).toBeUndefined();
            expect(await docker().inspect("networks", NETWORK)).toBeUndefined();
            expect(existsSync(dataDir)).toBe(false);
            expect(existsSync(path.join(run.workDir, "harness-state.json"))).toBe(false);
            // What only the run can know is unknown; what the config says is known.
            expect(preview.outputs.migrationsApplied).toBe("<unknown>");
            expect(preview.outputs.dataDir).toBe(dataDir);
            // The pending migrations are known before anything exists: all of them, no database yet.
            expect(preview.outputs.pendingMigrations).toMatchObject({
                database: "not created yet",
                backupFirst: false,
            });
            expect(preview.outputs.pendingMigrations.pending.map((p: { file: string }) => p.file)).toEqual(
                MIGRATIONS.map((m) => `${m}.sql`),
            );
        },
        LONG,
    );

    afterAll(async () => {
        if (run) await pulumiDestroy(run).catch(() => undefined);
        await clearLeftovers(ALL_CONTAINERS, [NETWORK]).catch(() => undefined);
        removeTempDir(work); // MRS_E2E_KEEP=1 keeps it (state, data, project copy) for a post-mortem
    }, LONG);

    it(
        "a. cold up: Postgres healthy before the migrations, migrations applied, app healthy and ready, databaseUrl works from the host",
        async () => {
            const up = await pulumiUp(run);
            expectOk(up);
            const ops = opsByName(up);
            for (const name of ["postgres-container", "migrations-up", "app-container", "app-image"])
                expect(ops[name]?.op).toBe("create");
            // Order: the migration step starts only after the Postgres container turned healthy, the app only
            // after the migration step succeeded.
            expect(ops["migrations-up"].start).toBeGreaterThanOrEqual(ops["postgres-container"].end);
            expect(ops["app-container"].start).toBeGreaterThanOrEqual(ops["migrations-up"].end);

            expect(up.outputs.migrationsApplied.map((m: { name: string }) => m.name)).toEqual(MIGRATIONS);
            const api = docker();
            // Postgres and Redis: the provider waited for their health. The app: the deploy waited for its
            // readiness (app-ready); Docker's liveness status follows at its next probe (within 5 s).
            for (const name of ["marvel-rivals-postgres", "marvel-rivals-redis"])
                expect((await api.inspect("containers", name)).State.Health.Status).toBe("healthy");
            expect(ops["app-ready"]?.op).toBe("create");
            expect(await appHealthyWithin(10_000)).toBe(true);

            appUrl = up.outputs.appUrl;
            expect(appUrl).toBe(`http://127.0.0.1:${run.overrides!.appPort}`);
            const ready = await httpGet(`${appUrl}/health/ready`);
            expect(ready.status).toBe(200);

            databaseUrl = up.outputs.databaseUrl;
            expect(new URL(databaseUrl).host).toBe(`127.0.0.1:${run.overrides!.postgresPort}`);
            firstApplied = await appliedInDb(databaseUrl);
            expect(firstApplied.map((r) => r.name)).toEqual(MIGRATIONS);
        },
        LONG,
    );

    it(
        "b. the seed plan's schema is all there, and seeded data comes back from /api/heroes",
        async () => {
            await withDb(databaseUrl, async (db) => {
                const tables = (
                    await db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
                ).rows.map((r) => r.tablename);
                expect(tables).toEqual(expect.arrayContaining(TABLES));

                const indexes = (
                    await db.query("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
                ).rows.map((r) => r.indexname);
                expect(indexes).toEqual(
                    expect.arrayContaining([
                        "idx_match_participants_username",
                        "idx_match_participants_hero_won",
                        "idx_match_participants_role",
                        "idx_players_rank_tier",
                        "idx_players_last_updated",
                        "idx_matches_timestamp",
                        "idx_matches_season_mode",
                        "idx_character_stats_rank_win_rate",
                        "idx_synergy_stats_rank_score",
                        "idx_synergy_stats_hero_b",
                        "idx_match_participants_match_team",
                        "idx_match_participants_won",
                        "idx_players_fetched",
                        "idx_character_stats_analyzed",
                        "character_stats_hero_rank_key",
                        "synergy_stats_pair_rank_key",
                    ]),
                );

                const fks = (
                    await db.query(`SELECT conrelid::regclass::text AS tbl, confrelid::regclass::text AS ref, confdeltype
                                FROM pg_constraint WHERE contype = 'f' ORDER BY 1, 2`)
                ).rows;
                expect(fks).toEqual([
                    { tbl: "match_participants", ref: "matches", confdeltype: "c" },
                    { tbl: "match_participants", ref: "players", confdeltype: "c" },
                ]);

                const checks = (
                    await db.query(`SELECT conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS def
                                FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace`)
                ).rows.map((r) => `${r.tbl}: ${r.def}`);
                for (const expected of [
                    /^match_participants: CHECK \(\(role = ANY \(ARRAY\['vanguard'::text, 'duelist'::text, 'strategist'::text\]\)\)\)$/,
                    /^match_participants: CHECK \(\(team = ANY \(ARRAY\[0, 1\]\)\)\)$/,
                    /^character_stats: CHECK \(\(wins <= total_games\)\)$/,
                    /^synergy_stats: CHECK \(\(hero_a < hero_b\)\)$/,
                    /^character_stats: CHECK \(\(\(win_rate >= \(0\)::numeric\) AND \(win_rate <= \(1\)::numeric\)\)\)$/,
                ]) {
                    expect(
                        checks.some((c) => expected.test(c)),
                        `a CHECK matching ${expected}`,
                    ).toBe(true);
                }
                // Every table has at least one CHECK, as the seed plan has.
                for (const t of TABLES)
                    expect(
                        checks.some((c) => c.startsWith(`${t}: `)),
                        `a CHECK on ${t}`,
                    ).toBe(true);
            });

            // Redis is a bounded cache (the dev run's redisMemoryMb is 128: 96 MB of data).
            expect(await dockerExec("marvel-rivals-redis", "sh", "-c", `${REDIS_CLI_ADMIN} CONFIG GET maxmemory`)).toBe(
                "maxmemory\n100663296\n",
            );
            expect(
                await dockerExec("marvel-rivals-redis", "sh", "-c", `${REDIS_CLI_ADMIN} CONFIG GET maxmemory-policy`),
            ).toBe("maxmemory-policy\nallkeys-lru\n");
            const seeded = await dockerExec("marvel-rivals-app", "seed");
            expect(seeded).toMatch(/inserted/);
            seededCounts = await rowCounts(databaseUrl, TABLES);
            expect(seededCounts.match_participants).toBeGreaterThan(0);

            const heroes = await httpGet(`${appUrl}/api/heroes`);
            expect(heroes.status).toBe(200);
            const body = heroes.json<{ heroes: { hero: string; matches: number }[] }>();
            const inDb = await withDb(databaseUrl, async (db) =>
                (await db.query("SELECT DISTINCT hero_name FROM match_participants ORDER BY 1")).rows.map(
                    (r) => r.hero_name,
                ),
            );
            expect(body.heroes.map((h) => h.hero).sort()).toEqual(inDb);
            expect(body.heroes.every((h) => h.matches > 0)).toBe(true);
        },
        LONG,
    );

    it(
        "c. the whole program run again changes nothing: no container recreated, nothing pending, same data",
        async () => {
            const before = await containerIds();
            const up = await pulumiUp(run);
            expectOk(up);
            const changed = up.operations.filter((o) => o.op !== "same").map((o) => `${o.name}: ${o.op} ${o.changed}`);
            expect(changed).toEqual([]);
            expect(await containerIds()).toEqual(before);
            // A preview of the warm stack shows no change either (`--expect-no-changes`), and the outputs keep
            // their secrecy.
            const preview = await pulumiPreview(run, { expectNoChanges: true });
            expectOk(preview);
            expect(
                preview.operations.filter((o) => o.op !== "same").map((o) => `${o.name}: ${o.op} ${o.changed}`),
            ).toEqual([]);
            // Read from the running database: nothing pending, nothing drifted.
            expect(preview.outputs.pendingMigrations).toMatchObject({
                database: "read",
                pending: [],
                drifted: [],
                missing: [],
                failed: [],
            });
            expect(up.secretOutputs.sort()).toEqual(["databaseUrl", "redisUrl"]);
            const status = JSON.parse(await dockerExec("marvel-rivals-app", "migrate", "status", "--json"));
            expect(status.pending).toEqual([]);
            expect(status.migrations.map((m: { name: string }) => m.name)).toEqual(MIGRATIONS);
            expect(await appliedInDb(databaseUrl)).toEqual(firstApplied);
            expect(await rowCounts(databaseUrl, TABLES)).toEqual(seededCounts);
        },
        LONG,
    );

    it(
        // How fast is a benchmark figure (npm run bench:e2e: hot_reload_ms), not a timed assertion here.
        "e. hot reload: an edit under app/src is served by the running dev container, without a rebuild",
        async () => {
            const before = await containerIds();
            const imageBefore = (await docker().inspect("containers", "marvel-rivals-app")).Image;
            const servedAfter = await hotReloadLatency(project, appUrl);
            expect(servedAfter, "the edit was not served within 10 s").toBeGreaterThanOrEqual(0);
            expect(await containerIds()).toEqual(before);
            expect((await docker().inspect("containers", "marvel-rivals-app")).Image).toBe(imageBefore);
            // Back to the original source and ready again before the next scenario (a restarted server answers
            // 503 on /health/ready until its connections are up, which is right).
            const deadline = Date.now() + 15_000;
            let restored: { status: number; probe: boolean } | undefined;
            while (Date.now() < deadline) {
                const [health, ready] = await Promise.all([
                    httpGet(`${appUrl}/health`, 1000).catch(() => undefined),
                    httpGet(`${appUrl}/health/ready`, 1000).catch(() => undefined),
                ]);
                restored = { status: ready?.status ?? 0, probe: health?.body.includes('"probe"') ?? true };
                if (restored.status === 200 && !restored.probe) break;
                await new Promise((r) => setTimeout(r, 100));
            }
            expect(restored).toEqual({ status: 200, probe: false });

            // An edit is in app/src when the developer runs `up` again: the image is rebuilt (pulumi-docker
            // hashes the whole build context) but comes out the same, so no container is replaced and the
            // migrations do not run again.
            const file = path.join(project, "app", "src", "wilson.ts");
            const source = readFileSync(file, "utf8");
            writeFileSync(file, `${source}\n// edited by the e2e test\n`);
            try {
                const up = await pulumiUp(run);
                expectOk(up);
                expect(up.operations.filter((o) => o.op !== "same").map((o) => `${o.name}: ${o.op}`)).toEqual([
                    "app-image: update",
                ]);
                expect(await containerIds()).toEqual(before);
            } finally {
                writeFileSync(file, source);
            }
            const back = await pulumiUp(run);
            expectOk(back);
            expect(back.operations.filter((o) => o.op !== "same").map((o) => `${o.name}: ${o.op}`)).toEqual([
                "app-image: update",
            ]);
            expect(await containerIds()).toEqual(before);
        },
        LONG,
    );

    it(
        "f. (warm) a broken migration fails the step with the file and PostgreSQL's error; the database and the running app stay as they were",
        async () => {
            const before = await containerIds();
            const broken = path.join(project, "migrations", `${BROKEN}.sql`);
            writeFileSync(broken, BROKEN_SQL);
            try {
                // The preview names the file the up would apply, with its first line, and writes nothing.
                const historyBefore = await appliedInDb(databaseUrl);
                const preview = await pulumiPreview(run);
                expectOk(preview);
                expect(preview.outputs.pendingMigrations).toMatchObject({
                    database: "read",
                    pending: [{ file: `${BROKEN}.sql`, firstLine: BROKEN_SQL.split("\n")[0] }],
                });
                expect(await appliedInDb(databaseUrl)).toEqual(historyBefore);
                const up = await pulumiUp(run);
                expect(up.ok).toBe(false);
                expect(up.error).toContain(BROKEN);
                expect(up.error).toContain('relation "e2e_no_such_table" does not exist');
                expect(opsByName(up)["migrations-up"]?.error).toBeDefined();
                expect(opsByName(up)["app-container"]).toBeUndefined();

                expect(await appliedInDb(databaseUrl)).toEqual(firstApplied);
                await withDb(databaseUrl, async (db) => {
                    expect(
                        (await db.query("SELECT to_regclass('public.e2e_should_not_exist') AS t")).rows[0].t,
                    ).toBeNull();
                });
                expect(await containerIds()).toEqual(before);
                expect((await docker().inspect("containers", "marvel-rivals-app")).State.Health.Status).toBe("healthy");
                expect((await httpGet(`${appUrl}/health/ready`)).status).toBe(200);
            } finally {
                rmSync(broken, { force: true });
            }
            // Fixed again: the next run succeeds; only the image is built back (the failed run had built it
            // with the broken file); the step and the containers stay (the failed step never replaced them).
            const up = await pulumiUp(run);
            expectOk(up);
            expect(up.operations.filter((o) => o.op !== "same").map((o) => `${o.name}: ${o.op}`)).toEqual([
                "app-image: update",
            ]);
            expect(await appliedInDb(databaseUrl)).toEqual(firstApplied);
            expect(await containerIds()).toEqual(before);
        },
        LONG,
    );

    it(
        "d. persistence: after removing every container and the network, a new up finds every row and re-applies nothing",
        async () => {
            const down = await pulumiDestroy(run);
            expectOk(down);
            for (const name of CONTAINERS) expect(await docker().inspect("containers", name)).toBeUndefined();
            expect(await docker().inspect("networks", NETWORK)).toBeUndefined();

            const up = await pulumiUp(run);
            if (!up.ok && /password authentication failed/.test(up.error ?? "")) {
                // `pulumi destroy` drops the RandomPassword resources with everything else, so the next `up`
                // generates new passwords, while the database kept in <dataDir> has the first one
                // (POSTGRES_PASSWORD is only read by initdb): the program must set the role's password.
                throw new Error(
                    "after destroy, `up` generated a new dbPassword that the kept database does not accept:\n" +
                        up.error,
                );
            }
            expectOk(up);
            expect(opsByName(up)["postgres-container"].op).toBe("create");
            expect(opsByName(up)["migrations-up"].op).toBe("create");
            expect(await rowCounts(up.outputs.databaseUrl, TABLES)).toEqual(seededCounts);
            expect(await appliedInDb(up.outputs.databaseUrl)).toEqual(firstApplied);
            // The step ran and reported the same history: nothing applied anew.
            expect(up.outputs.migrationsApplied).toEqual(
                firstApplied.map((r) => ({ name: r.name, appliedAt: r.applied_at.toISOString() })),
            );
            // `pulumi destroy` dropped the generated passwords with the rest of the state: the new ones must
            // open the kept database (the old one no longer does), and the app must be ready with them.
            expect(up.outputs.databaseUrl).not.toBe(databaseUrl);
            await expect(withDb(databaseUrl, async () => undefined)).rejects.toThrow(/password authentication failed/);
            databaseUrl = up.outputs.databaseUrl;
            expect((await httpGet(`${appUrl}/health/ready`)).status).toBe(200);
            expect((await httpGet(`${appUrl}/api/heroes`)).json().heroes.length).toBeGreaterThan(0);
        },
        LONG,
    );

    it(
        "i. lost state: a new state finds the stack's containers running under its names, takes them over, and every row is still there",
        async () => {
            const before = await containerIds();
            rmSync(path.join(run.workDir, "harness-state.json"));
            const up = await pulumiUp(run);
            expectOk(up);
            expect(opsByName(up)["data-mkdir"].op).toBe("create");
            for (const name of ["network-bridge", "postgres-container", "redis-container", "app-container"])
                expect(opsByName(up)[name].op, name).toBe("create");
            const after = await containerIds();
            for (const name of CONTAINERS) expect(after[name], name).not.toBe(before[name]);
            expect(await rowCounts(up.outputs.databaseUrl, TABLES)).toEqual(seededCounts);
            expect(await appliedInDb(up.outputs.databaseUrl)).toEqual(firstApplied);
            expect((await httpGet(`${appUrl}/health/ready`)).status).toBe(200);
            databaseUrl = up.outputs.databaseUrl;
        },
        LONG,
    );

    it(
        "h. teardown leaves <dataDir> and its content intact",
        async () => {
            const marker = path.join(dataDir, "output", "e2e-marker.txt");
            writeFileSync(marker, "written before teardown");
            const down = await pulumiDestroy(run);
            expectOk(down);
            expect(opsByName(down)["postgres-container"].op).toBe("delete");
            for (const name of CONTAINERS) expect(await docker().inspect("containers", name)).toBeUndefined();
            for (const sub of ["postgres", "redis", "output", "logs", "backups"])
                expect(existsSync(path.join(dataDir, sub)), sub).toBe(true);
            expect(readFileSync(path.join(dataDir, "postgres", "pgdata", "PG_VERSION"), "utf8").trim()).toBe("16");
            // PostgreSQL was given its grace period and shut down cleanly (a killed server leaves its pid file).
            expect(existsSync(path.join(dataDir, "postgres", "pgdata", "postmaster.pid"))).toBe(false);
            expect(readdirSync(path.join(dataDir, "postgres", "pgdata", "base")).length).toBeGreaterThan(0);
            expect(readFileSync(marker, "utf8")).toBe("written before teardown");
        },
        LONG,
    );

    it(
        "j. a container of one of the stack's names that is not the stack's stops the run by name, and stays",
        async () => {
            const api = docker();
            const foreign = await api.call("POST", "/containers/create?name=marvel-rivals-redis", {
                Image: "redis:7-alpine",
                Labels: { [HARNESS_LABEL]: "1" },
            });
            try {
                const up = await pulumiUp(run);
                expect(up.ok).toBe(false);
                expect(up.error).toContain(
                    "a container named marvel-rivals-redis exists but is not this stack's (no label marvel-rivals-stats.stack=dev): rename or remove it (docker rm -f marvel-rivals-redis), then run again",
                );
                expect((await api.inspect("containers", "marvel-rivals-redis"))?.Id).toBe(foreign.Id);
                expect(await api.inspect("containers", "marvel-rivals-postgres")).toBeUndefined();
            } finally {
                await api.removeContainer(foreign.Id, 0);
            }
        },
        LONG,
    );

    it(
        "g. bad config (an invalid port) fails the run before any container is created",
        async () => {
            const bad = { ...run, overrides: { ...run.overrides, appPort: "99999" } };
            const up = await pulumiUp(bad);
            expect(up.ok).toBe(false);
            expect(up.error).toContain("appPort");
            expect(up.error).toContain("99999");
            expect(up.operations).toEqual([]);
            for (const name of CONTAINERS) expect(await docker().inspect("containers", name)).toBeUndefined();
            expect(await docker().inspect("networks", NETWORK)).toBeUndefined();
        },
        LONG,
    );

    it(
        "f. (cold) a broken migration on a new stack fails the step, records nothing of it, and never starts the app",
        async () => {
            const cold: StackRun = {
                ...run,
                workDir: path.join(work, "harness-cold"),
                overrides: { ...run.overrides, dataDir: path.join(work, "data-cold") },
            };
            mkdirSync(cold.workDir, { recursive: true });
            const broken = path.join(project, "migrations", `${BROKEN}.sql`);
            writeFileSync(broken, BROKEN_SQL);
            try {
                const up = await pulumiUp(cold);
                expect(up.ok).toBe(false);
                expect(up.error).toContain(BROKEN);
                expect(up.error).toContain('relation "e2e_no_such_table" does not exist');
                expect(opsByName(up)["app-container"]).toBeUndefined();
                expect(await docker().inspect("containers", "marvel-rivals-app")).toBeUndefined();
                // Postgres is up (published on its port); the broken file left no trace.
                const coldUrl = readColdDatabaseUrl(cold);
                const names = (await appliedInDb(coldUrl)).map((r) => r.name);
                expect(names).not.toContain(BROKEN);
                await withDb(coldUrl, async (db) => {
                    expect(
                        (await db.query("SELECT to_regclass('public.e2e_should_not_exist') AS t")).rows[0].t,
                    ).toBeNull();
                });
            } finally {
                rmSync(broken, { force: true });
                await pulumiDestroy(cold).catch(() => undefined);
            }
        },
        LONG,
    );
});

/**
 * The cold stack generated its own database password and the failed run exported nothing: build its URL
 * from the harness state and the stack's config, as `pulumi stack output --show-secrets` would show it.
 */
function readColdDatabaseUrl(cold: StackRun): string {
    const state = JSON.parse(readFileSync(path.join(cold.workDir, "harness-state.json"), "utf8"));
    const pw = state.resources["random:index/randomPassword:RandomPassword::db-password"]?.outputs?.result;
    const password: string | undefined = typeof pw === "object" ? pw?.value : pw;
    if (!password) throw new Error("the cold run generated no database password");
    const { config } = stackConfig(cold);
    const [user, db] = [config["marvel-rivals-stats:dbUser"], config["marvel-rivals-stats:dbName"]];
    return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${cold.overrides!.postgresPort}/${db}`;
}

describe.skipIf(!engine)("the odin stack, previewed on the local engine", () => {
    // The odin stack file as committed, with only the engine (the local one, not ssh://root@odin), the data
    // directory and the reverse proxy's network (one of the test's) overridden.
    const PROXY_NETWORK = "mrs-e2e-proxy";
    let work: string;
    let run: StackRun;

    beforeAll(async () => {
        work = tempDir("odin-preview");
        run = {
            projectDir: REPO_ROOT,
            stack: "odin",
            workDir: path.join(work, "harness"),
            overrides: {
                dockerHost: "unix:///var/run/docker.sock",
                dataDir: path.join(work, "appdata"),
                externalNetworks: JSON.stringify([PROXY_NETWORK]),
            },
        };
    }, LONG);

    afterAll(async () => {
        const net = await docker().inspect("networks", PROXY_NETWORK);
        if (net) await docker().call("DELETE", `/networks/${net.Id}`, undefined, [404]);
        removeTempDir(work);
    }, LONG);

    it(
        "fails while the proxy's network is missing, naming it, and creates nothing",
        async () => {
            const preview = await pulumiPreview(run);
            expect(preview.ok).toBe(false);
            expect(preview.error).toContain(`Could not find docker network: ${PROXY_NETWORK}`);
            expect(existsSync(path.join(work, "appdata"))).toBe(false);
        },
        LONG,
    );

    it(
        "plans the whole stack once the network exists, and still creates nothing",
        async () => {
            await docker().call("POST", "/networks/create", { Name: PROXY_NETWORK });
            const imageBefore = await tagged("marvel-rivals-stats-app:odin");
            const preview = await pulumiPreview(run);
            expectOk(preview);
            const ops = opsByName(preview);
            for (const name of [
                "data-mkdir",
                "postgres-container",
                "redis-container",
                "migrations-up",
                "app-image",
                "app-container",
            ])
                expect(ops[name]?.op, name).toBe("create");
            for (const name of CONTAINERS) expect(await docker().inspect("containers", name)).toBeUndefined();
            expect(await docker().inspect("networks", NETWORK)).toBeUndefined();
            expect(await tagged("marvel-rivals-stats-app:odin")).toBe(imageBefore);
            expect(existsSync(path.join(work, "appdata"))).toBe(false);
            expect(preview.outputs.appUrl).toBe("https://stats.odin.home.arpa");
        },
        LONG,
    );
});
