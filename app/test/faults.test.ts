// Issue 12, item 3: every "the database or Redis is not usable" condition answers 503 with a reason (never
// 500), is logged once per outage (not per request), detected quickly when Redis hangs, and no log line
// carries a client object. Real PostgreSQL 16 and a real redis-server; the app in process, logs captured.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import Redis from "ioredis";
import { buildApp } from "../src/app";
import {
    eventually,
    migratedDatabase,
    MIGRATIONS_DIR,
    startStack,
    testConfig,
    withPool,
    type Stack,
} from "./support/stack";
import { seed } from "../src/seed";

let stack: Stack;
let databaseUrl: string;
const apps: FastifyInstance[] = [];

interface LogLine {
    level: number;
    msg: string;
    dependency?: string;
    [key: string]: unknown;
}

/** An app over `url` whose log lines (JSON, down to debug) are collected. */
async function appWithLog(url: string, redisUrl = stack.redis.url) {
    const raw: string[] = [];
    const app = buildApp(testConfig(url, redisUrl), {
        logger: { level: "debug", stream: { write: (line: string) => void raw.push(line) } },
        migrationsDir: MIGRATIONS_DIR,
    });
    apps.push(app);
    await app.ready();
    const lines = () => raw.map((l) => JSON.parse(l) as LogLine);
    /** Lines at warn (40) or above. */
    const loud = () => lines().filter((l) => l.level >= 40);
    return { app, raw, lines, loud };
}

function withUrl(url: string, change: (u: URL) => void): string {
    const u = new URL(url);
    change(u);
    return u.toString();
}

beforeAll(async () => {
    stack = await startStack();
    databaseUrl = await migratedDatabase(stack.postgres, "faults");
    await withPool(databaseUrl, async (pool) => {
        await seed(pool);
        // A role that may log in but has no connection left: PostgreSQL answers 53300 "too many connections".
        await pool.query("CREATE ROLE no_slots LOGIN PASSWORD 'no-slots-pw' CONNECTION LIMIT 0");
        await pool.query("GRANT SELECT ON ALL TABLES IN SCHEMA public TO no_slots");
    });
}, 120_000);

afterAll(async () => {
    await Promise.allSettled(apps.map((a) => a.close()));
    await stack?.cleanup();
});

describe("a database that is not usable answers 503 with the reason, logged once per outage", () => {
    const cases: [string, () => string, string][] = [
        [
            "a wrong password",
            () => withUrl(databaseUrl, (u) => (u.password = "not-the-password")),
            "authentication failed",
        ],
        [
            "a missing database",
            () => withUrl(databaseUrl, (u) => (u.pathname = "/no_such_database")),
            "database does not exist",
        ],
        [
            "no connection slot left",
            () =>
                withUrl(databaseUrl, (u) => {
                    u.username = "no_slots";
                    u.password = "no-slots-pw";
                }),
            "too many connections",
        ],
    ];

    for (const [name, url, reason] of cases) {
        it(name, async () => {
            const { app, raw, loud } = await appWithLog(url());
            for (const path of ["/api/stats/summary", "/api/heroes?rank=Bronze", "/api/stats/summary"]) {
                for (let i = 0; i < 3; i++) {
                    const res = await app.inject(path);
                    // A fresh key (no cache hit): the heroes answer needs the database too.
                    expect(res.statusCode, res.body).toBe(503);
                    expect(res.json()).toEqual({
                        error: "Service Unavailable",
                        dependency: "database",
                        message: `the database is unavailable: ${reason}`,
                    });
                }
            }
            for (let i = 0; i < 3; i++) {
                const ready = await app.inject("/health/ready");
                expect(ready.statusCode).toBe(503);
                expect(ready.json().checks.database).toEqual({ ok: false, error: reason });
                expect((await app.inject("/health/db")).statusCode).toBe(503);
            }
            // Fifteen failed requests and probes: one line at warn or above, the outage's first.
            const database = loud().filter((l) => l.dependency === "database");
            expect(
                database.map((l) => [l.level, l.msg]),
                raw.join(""),
            ).toEqual([[50, `the database is unavailable: ${reason}`]]);
            expect(loud().filter((l) => l.msg === "request failed")).toEqual([]);
            expect(raw.join("")).not.toContain("not-the-password");
            expect(raw.join("")).not.toContain("no-slots-pw");
        });
    }

    it("the first success after an outage ends it with one line", async () => {
        await withPool(databaseUrl, (pool) => pool.query("ALTER ROLE no_slots CONNECTION LIMIT 0"));
        const { app, lines } = await appWithLog(
            withUrl(databaseUrl, (u) => {
                u.username = "no_slots";
                u.password = "no-slots-pw";
            }),
        );
        const grant = (n: number) =>
            withPool(databaseUrl, (pool) => pool.query(`ALTER ROLE no_slots CONNECTION LIMIT ${n}`));
        try {
            expect((await app.inject("/api/stats/summary")).statusCode).toBe(503);
            expect((await app.inject("/api/stats/summary")).statusCode).toBe(503);
            await grant(5);
            const ok = await app.inject("/api/stats/summary");
            expect(ok.statusCode, ok.body).toBe(200);
        } finally {
            await grant(0);
        }
        const messages = lines()
            .filter((l) => l.dependency === "database" && l.level >= 30)
            .map((l) => l.msg);
        expect(messages).toEqual([
            "the database is unavailable: too many connections",
            "the database is available again",
        ]);
    });
});

describe("logs never carry client objects", () => {
    it("an idle connection killed by the server is one warning with the error's own fields only", async () => {
        const { app, raw, lines } = await appWithLog(databaseUrl);
        expect((await app.inject("/api/stats/summary")).statusCode).toBe(200);
        // The pool keeps the connection idle; the server ends it.
        await withPool(databaseUrl, (pool) =>
            pool.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'marvel-rivals-stats-app' AND state = 'idle'",
            ),
        );
        expect(
            await eventually(async () => lines().some((l) => l.msg.startsWith("an idle PostgreSQL connection")), 5000),
        ).toBe(true);
        const line = lines().find((l) => l.msg.startsWith("an idle PostgreSQL connection"))!;
        expect(line.err).toMatchObject({ code: "57P01" });
        expect(Object.keys(line.err as object)).not.toContain("client");
        const all = raw.join("");
        for (const leaked of ["secretKey", "processID", "connectionParameters", stack.postgres.password]) {
            expect(all).not.toContain(leaked);
        }
    });
});

describe("a frozen Redis (process stopped, socket open)", () => {
    it("is detected by the first request: the rest go straight to PostgreSQL, logged once, readiness degraded; then it is used again", async () => {
        const { app, lines } = await appWithLog(databaseUrl);
        expect(await eventually(async () => app.redis.status === "ready", 5000)).toBe(true);
        const admin = new Redis(stack.redis.url);
        await admin.flushall();
        admin.disconnect();
        expect((await app.inject("/api/heroes?rank=Gold")).json().cache).toBe("miss");
        expect((await app.inject("/api/heroes?rank=Gold")).json().cache).toBe("hit");

        stack.redis.freeze();
        try {
            // The first request meets the command timeout (1 s) and answers from PostgreSQL.
            const first = await app.inject("/api/heroes?rank=Gold");
            expect(first.statusCode).toBe(200);
            expect(first.json().cache).toBe("unavailable");
            // Without detection each of these would wait that 1 s again: 20 requests under 5 s is 4x margin.
            const t0 = Date.now();
            for (let i = 0; i < 20; i++) {
                const res = await app.inject(`/api/heroes?rank=${i % 2 ? "Gold" : "Silver"}`);
                expect(res.statusCode).toBe(200);
                expect(res.json().cache).toBe("unavailable");
            }
            expect(Date.now() - t0).toBeLessThan(5000);
            // Readiness answers at once: PostgreSQL serves, the cache is out.
            const ready = await app.inject("/health/ready");
            expect(ready.statusCode).toBe(200);
            expect(ready.json()).toMatchObject({ status: "degraded", degraded: ["redis"] });
            expect((await app.inject("/health/redis")).statusCode).toBe(503);
        } finally {
            stack.redis.thaw();
        }
        expect(
            await eventually(async () => (await app.inject("/api/heroes?rank=Gold")).json().cache === "hit", 10_000),
        ).toBe(true);
        const redisLines = lines().filter((l) => l.dependency === "redis" && l.level >= 30);
        expect(redisLines.map((l) => [l.level, l.msg])).toEqual([
            [40, "Redis does not answer; the API answers from PostgreSQL until it does"],
            [30, "Redis is reachable again"],
        ]);
        expect((await app.inject("/health/ready")).json().status).toBe("ready");
    }, 60_000);
});
