// The HTTP API against a real PostgreSQL (migrated by the real runner, seeded by the real seed) and a real
// Redis. Expected figures are computed here from the generated seed data, independently of the SQL.
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Redis from "ioredis";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app";
import { generateSeedData, seed, SEED_RANK_TIERS } from "../src/seed";
import { wilsonInterval } from "../src/wilson";
import {
    eventually,
    migratedDatabase,
    MIGRATIONS_DIR,
    REPO_ROOT,
    startStack,
    testConfig,
    withPool,
    type Stack,
} from "./support/stack";

let stack: Stack;
let databaseUrl: string;
let app: FastifyInstance;
let redis: Redis;
const data = generateSeedData();

function expectedHeroes(rank: string | null) {
    const tierOf = new Map(data.players.map((p) => [p.username, p.rank_tier]));
    const byHero = new Map<string, { matches: number; wins: number; role: string }>();
    for (const p of data.participants) {
        if (rank !== null && tierOf.get(p.username) !== rank) continue;
        const h = byHero.get(p.hero_name) ?? { matches: 0, wins: 0, role: p.role };
        h.matches++;
        if (p.won) h.wins++;
        byHero.set(p.hero_name, h);
    }
    return byHero;
}

beforeAll(async () => {
    stack = await startStack();
    databaseUrl = await migratedDatabase(stack.postgres);
    await withPool(databaseUrl, (pool) => seed(pool));
    app = buildApp(testConfig(databaseUrl, stack.redis.url, { HEROES_CACHE_TTL_SECONDS: "30" }), {
        logger: false,
        migrationsDir: MIGRATIONS_DIR,
    });
    await app.ready();
    expect(await eventually(async () => app.redis.status === "ready", 5000)).toBe(true);
    redis = new Redis(stack.redis.url);
});

afterAll(async () => {
    await app?.close();
    redis?.disconnect();
    await stack?.cleanup();
});

describe("GET /api/heroes", () => {
    it("returns win rate, matches and the Wilson 95% interval of every hero, best lower bound first", async () => {
        await redis.flushall();
        const res = await app.inject("/api/heroes");
        expect(res.statusCode).toBe(200);
        const body = res.json();
        const expected = expectedHeroes(null);
        expect(body.rank).toBeNull();
        expect(body.heroes).toHaveLength(expected.size);
        for (const h of body.heroes) {
            const e = expected.get(h.hero)!;
            expect(e, h.hero).toBeDefined();
            expect(h).toMatchObject({ role: e.role, matches: e.matches, wins: e.wins });
            expect(h.winRate).toBeCloseTo(e.wins / e.matches, 4);
            const ci = wilsonInterval(e.wins, e.matches);
            expect(h.ci95.lower).toBeCloseTo(ci.lower, 4);
            expect(h.ci95.upper).toBeCloseTo(ci.upper, 4);
            expect(h.ci95.lower).toBeLessThanOrEqual(h.winRate);
            expect(h.ci95.upper).toBeGreaterThanOrEqual(h.winRate);
        }
        const lowers = body.heroes.map((h: { ci95: { lower: number } }) => h.ci95.lower);
        expect(lowers).toEqual([...lowers].sort((a, b) => b - a));
        expect(body.heroes.reduce((n: number, h: { matches: number }) => n + h.matches, 0)).toBe(
            data.participants.length,
        );
    });

    it("filters by the players' rank tier with ?rank=", async () => {
        const res = await app.inject("/api/heroes?rank=Gold");
        expect(res.statusCode).toBe(200);
        const body = res.json();
        const expected = expectedHeroes("Gold");
        expect(body.rank).toBe("Gold");
        expect(body.heroes.length).toBe(expected.size);
        for (const h of body.heroes)
            expect([h.matches, h.wins]).toEqual([expected.get(h.hero)!.matches, expected.get(h.hero)!.wins]);
        const total = body.heroes.reduce((n: number, h: { matches: number }) => n + h.matches, 0);
        expect(total).toBeGreaterThan(0);
        expect(total).toBeLessThan(data.participants.length);
    });

    it("answers an empty list for a rank nobody has", async () => {
        const res = await app.inject("/api/heroes?rank=Eternity");
        expect(res.statusCode).toBe(200);
        expect(res.json().heroes).toEqual([]);
    });

    it("refuses a malformed rank with 400 and says why", async () => {
        const res = await app.inject("/api/heroes?rank=%27%3B%20DROP");
        expect(res.statusCode).toBe(400);
        expect(res.json()).toEqual({
            error: "Bad Request",
            message: 'querystring/rank must match pattern "^[A-Za-z0-9 _-]+$"',
            statusCode: 400,
        });
    });

    it("misses the cache first, then answers from Redis until the TTL runs out", async () => {
        await redis.flushall();
        const first = await app.inject("/api/heroes?rank=Diamond");
        expect(first.json()).toMatchObject({ cached: false, cache: "miss", ttlSeconds: 30 });
        const ttl = await redis.ttl("mrs:heroes:v1:rank=Diamond");
        expect(ttl).toBeGreaterThan(25);
        expect(ttl).toBeLessThanOrEqual(30);

        // A change in the database is not seen while the cached answer lives: proof it came from Redis.
        await withPool(databaseUrl, (pool) =>
            pool.query(
                "UPDATE match_participants mp SET won = NOT won FROM players p WHERE p.username = mp.username AND p.rank_tier = 'Diamond'",
            ),
        );
        const second = await app.inject("/api/heroes?rank=Diamond");
        expect(second.json()).toMatchObject({ cached: true, cache: "hit" });
        expect(second.json().heroes).toEqual(first.json().heroes);
        expect(second.json().generatedAt).toBe(first.json().generatedAt);

        // Expired (deleted here rather than waiting 30 s): the next answer is fresh from the database.
        await redis.del("mrs:heroes:v1:rank=Diamond");
        const third = await app.inject("/api/heroes?rank=Diamond");
        expect(third.json()).toMatchObject({ cached: false, cache: "miss" });
        const winsBefore = first
            .json()
            .heroes.map((h: { hero: string; wins: number; matches: number }) => [h.hero, h.matches - h.wins]);
        const winsAfter = third.json().heroes.map((h: { hero: string; wins: number }) => [h.hero, h.wins]);
        expect(Object.fromEntries(winsAfter)).toEqual(Object.fromEntries(winsBefore));
        await withPool(databaseUrl, (pool) =>
            pool.query(
                "UPDATE match_participants mp SET won = NOT won FROM players p WHERE p.username = mp.username AND p.rank_tier = 'Diamond'",
            ),
        );
    });

    it("refuses a tier that does not exist with 400 naming the tiers, and caches nothing for it", async () => {
        await redis.flushall();
        for (const rank of ["-1", " ", "Gold OR 1-1", "gold"]) {
            const res = await app.inject(`/api/heroes?rank=${encodeURIComponent(rank)}`);
            expect(res.statusCode, rank).toBe(400);
            expect(res.json()).toEqual({
                error: "Bad Request",
                message:
                    "rank must be one of Bronze, Silver, Gold, Platinum, Diamond, Grandmaster, Celestial, Eternity, One Above All",
            });
        }
        expect(await redis.keys("mrs:heroes:*")).toEqual([]);
    });

    it("computes a cold key once for a stampede of 50 concurrent requests (one query, one cached answer)", async () => {
        await redis.flushall();
        const pool = app.pool;
        const original = pool.query.bind(pool);
        let heroQueries = 0;
        (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
            if (typeof args[0] === "string" && args[0].includes("FROM match_participants")) heroQueries++;
            return (original as (...a: unknown[]) => unknown)(...args);
        };
        try {
            const answers = await Promise.all(
                Array.from({ length: 50 }, () => app.inject("/api/heroes?rank=Platinum")),
            );
            expect(answers.every((r) => r.statusCode === 200)).toBe(true);
            expect(new Set(answers.map((r) => JSON.stringify(r.json().heroes))).size).toBe(1);
        } finally {
            (pool as unknown as { query: unknown }).query = original;
        }
        expect(heroQueries).toBe(1);
        expect(await redis.keys("mrs:heroes:*")).toEqual(["mrs:heroes:v1:rank=Platinum"]);
    });

    it("keeps one cache entry per rank", async () => {
        await redis.flushall();
        await app.inject("/api/heroes");
        await app.inject("/api/heroes?rank=Bronze");
        expect((await redis.keys("mrs:heroes:*")).sort()).toEqual(["mrs:heroes:v1:all", "mrs:heroes:v1:rank=Bronze"]);
        expect((await app.inject("/api/heroes?rank=Silver")).json().cache).toBe("miss");
    });
});

describe("GET /api/stats/summary", () => {
    it("counts the rows of every main table", async () => {
        await withPool(databaseUrl, (pool) =>
            pool.query(
                "INSERT INTO collection_metadata (key, value) VALUES ('summary-test', 'x') ON CONFLICT DO NOTHING",
            ),
        );
        const res = await app.inject("/api/stats/summary");
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({
            tables: {
                players: data.players.length,
                matches: data.matches.length,
                match_participants: data.participants.length,
                character_stats: 0,
                synergy_stats: 0,
                // The seed plan's four initial rows (migrations/003) and this test's.
                collection_metadata: 5,
            },
        });
    });

    it("says the schema is missing (run `migrate up`) on a database without migrations", async () => {
        const emptyUrl = await stack.postgres.createDatabase("empty");
        const bare = buildApp(testConfig(emptyUrl, stack.redis.url), { logger: false, migrationsDir: MIGRATIONS_DIR });
        try {
            const res = await bare.inject("/api/stats/summary");
            expect(res.statusCode).toBe(503);
            expect(res.json()).toEqual({
                error: "Service Unavailable",
                dependency: "database",
                message: "the database schema is missing: run `migrate up`",
            });
        } finally {
            await bare.close();
        }
    });
});

describe("unknown routes", () => {
    it("answer 404 JSON", async () => {
        const res = await app.inject("/api/nope");
        expect(res.statusCode).toBe(404);
        expect(res.json()).toMatchObject({ statusCode: 404 });
    });
});

it("seeds every rank tier it claims to", () => {
    expect(new Set(data.players.map((p) => p.rank_tier))).toEqual(new Set(SEED_RANK_TIERS));
});

describe("the error handler", () => {
    it("returns the message of a client error, and nothing of a server error's", async () => {
        const probe = buildApp(testConfig(databaseUrl, stack.redis.url), {
            logger: false,
            migrationsDir: MIGRATIONS_DIR,
        });
        probe.get("/probe/teapot", async () => {
            throw Object.assign(new Error("short and stout"), { statusCode: 418 });
        });
        probe.get("/probe/crash", async () => {
            throw new Error("internal detail: password=hunter2");
        });
        try {
            const teapot = await probe.inject("/probe/teapot");
            expect(teapot.statusCode).toBe(418);
            expect(teapot.json()).toEqual({ error: "I'm a Teapot", message: "short and stout", statusCode: 418 });
            const crash = await probe.inject("/probe/crash");
            expect(crash.statusCode).toBe(500);
            expect(crash.json()).toEqual({ error: "Internal Server Error", statusCode: 500 });
            expect(crash.body).not.toContain("hunter2");
        } finally {
            await probe.close();
        }
    });
});

describe("the seed command", () => {
    it("leaves no stale cached answer: /api/heroes shows the new rows at once", async () => {
        const url = await migratedDatabase(stack.postgres, "seedcache");
        const fresh = buildApp(testConfig(url, stack.redis.url, { HEROES_CACHE_TTL_SECONDS: "60" }), {
            logger: false,
            migrationsDir: MIGRATIONS_DIR,
        });
        await fresh.ready();
        try {
            expect(await eventually(async () => fresh.redis.status === "ready", 5000)).toBe(true);
            await redis.flushall();
            expect((await fresh.inject("/api/heroes")).json()).toMatchObject({ heroes: [], cache: "miss" });
            expect((await fresh.inject("/api/heroes")).json()).toMatchObject({ heroes: [], cache: "hit" });
            const run = spawnSync(
                process.execPath,
                [resolve(REPO_ROOT, "node_modules/tsx/dist/cli.mjs"), resolve(REPO_ROOT, "app/src/cli/seed.ts")],
                {
                    env: { ...process.env, DATABASE_URL: url, REDIS_URL: stack.redis.url },
                    encoding: "utf8",
                    timeout: 60_000,
                },
            );
            expect(run.status, run.stderr).toBe(0);
            expect(run.stdout).toContain("seed: heroes cache cleared (1 cached answer)");
            const after = (await fresh.inject("/api/heroes")).json();
            expect(after.cache).toBe("miss");
            expect(after.heroes.length).toBeGreaterThan(0);
        } finally {
            await fresh.close();
        }
    });
});
