// Liveness, dependency checks and readiness against a real PostgreSQL and Redis (in-process app).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, connect, type Server, type Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app";
import { up } from "../src/migrate";
import { eventually, migratedDatabase, MIGRATIONS_DIR, startStack, testConfig, type Stack } from "./support/stack";

let stack: Stack;
let app: FastifyInstance;

async function appFor(databaseUrl: string): Promise<FastifyInstance> {
    const a = buildApp(testConfig(databaseUrl, stack.redis.url), { logger: false, migrationsDir: MIGRATIONS_DIR });
    await a.ready();
    expect(await eventually(async () => a.redis.status === "ready", 5000)).toBe(true);
    return a;
}

beforeAll(async () => {
    stack = await startStack();
    app = await appFor(await migratedDatabase(stack.postgres));
});

afterAll(async () => {
    await app?.close();
    await stack?.cleanup();
});

describe("health endpoints", () => {
    it("GET /health answers 200 without touching a dependency", async () => {
        const res = await app.inject("/health");
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ status: "ok" });
    });

    it("GET /health/db runs SELECT 1", async () => {
        const res = await app.inject("/health/db");
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({ status: "ok", dependency: "database" });
        expect(res.json().latencyMs).toBeGreaterThanOrEqual(0);
    });

    it("GET /health/redis sends PING", async () => {
        const res = await app.inject("/health/redis");
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({ status: "ok", dependency: "redis" });
    });

    it("GET /health/ready is 200 when the database and Redis answer and nothing is pending", async () => {
        const res = await app.inject("/health/ready");
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({
            status: "ready",
            checks: { database: { ok: true }, redis: { ok: true }, migrations: { ok: true, pending: [] } },
        });
    });
});

describe("readiness and migrations", () => {
    it("is 503 naming the pending migration when one is not applied yet, and 200 once it is", async () => {
        const url = await stack.postgres.createDatabase("partial");
        await up({ databaseUrl: url, migrationsDir: MIGRATIONS_DIR, to: "001_initial_schema" });
        const partial = await appFor(url);
        try {
            const res = await partial.inject("/health/ready");
            expect(res.statusCode).toBe(503);
            expect(res.json()).toMatchObject({
                status: "not ready",
                failed: ["migrations"],
                checks: {
                    database: { ok: true },
                    redis: { ok: true },
                    migrations: {
                        ok: false,
                        pending: ["002_add_indexes", "003_seed_plan_schema", "004_plan_schema_migrations"],
                        error: "3 migration(s) pending: run `migrate up`",
                    },
                },
            });
            await up({ databaseUrl: url, migrationsDir: MIGRATIONS_DIR });
            expect((await partial.inject("/health/ready")).statusCode).toBe(200);
        } finally {
            await partial.close();
        }
    });

    it("counts every migration as pending on an empty database", async () => {
        const empty = await appFor(await stack.postgres.createDatabase("empty"));
        try {
            const res = await empty.inject("/health/ready");
            expect(res.statusCode).toBe(503);
            expect(res.json().checks.migrations.pending).toEqual([
                "001_initial_schema",
                "002_add_indexes",
                "003_seed_plan_schema",
                "004_plan_schema_migrations",
            ]);
        } finally {
            await empty.close();
        }
    });

    it("is 503 naming the database when it cannot be reached, and skips the migration check", async () => {
        // A database that does not exist: the server answers, the connection is refused.
        const url = stack.postgres.adminUrl.replace(/\/postgres$/, "/no_such_database");
        const broken = await appFor(url);
        try {
            const res = await broken.inject("/health/ready");
            expect(res.statusCode).toBe(503);
            expect(res.json()).toEqual({
                status: "not ready",
                failed: ["database", "migrations"],
                checks: {
                    database: { ok: false, error: "database does not exist" },
                    redis: { ok: true, latencyMs: expect.any(Number) },
                    migrations: { ok: false, error: "not checked: the database is unavailable" },
                },
            });
            const db = await broken.inject("/health/db");
            expect(db.statusCode).toBe(503);
            expect(db.json()).toEqual({
                status: "error",
                dependency: "database",
                error: "database does not exist",
            });
            // pg's own message names the database; the body only gives the category.
            expect(db.body + res.body).not.toContain("no_such_database");
            expect((await broken.inject("/health")).statusCode).toBe(200);
        } finally {
            await broken.close();
        }
    });
});

/**
 * A TCP proxy in front of PostgreSQL that, once `slow` is set, holds every reply for `delayMs`: a database
 * that answers, slowly. Replies keep their order.
 */
async function slowProxy(target: number, delayMs: number): Promise<{ port: number; slow: boolean; close(): void }> {
    const sockets = new Set<Socket>();
    const state = { port: 0, slow: false, close: () => undefined as void };
    const server: Server = createServer((client) => {
        const upstream = connect(target, "127.0.0.1");
        sockets.add(client).add(upstream);
        let queue = Promise.resolve();
        client.on("data", (d) => upstream.write(d));
        upstream.on("data", (d) => {
            const wait = state.slow ? delayMs : 0;
            queue = queue.then(() => new Promise((r) => setTimeout(r, wait))).then(() => void client.write(d));
        });
        for (const [a, b] of [
            [client, upstream],
            [upstream, client],
        ] as const) {
            a.on("error", () => b.destroy());
            a.on("close", () => b.destroy());
        }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    state.port = (server.address() as { port: number }).port;
    state.close = () => {
        for (const s of sockets) s.destroy();
        server.close();
    };
    return state;
}

describe("failure reasons", () => {
    it("are a fixed category: a refused password says 'authentication failed', never pg's message naming the role", async () => {
        const url = new URL(await migratedDatabase(stack.postgres, "authfail"));
        url.password = "not-the-password";
        const wrong = await appFor(url.toString());
        try {
            const res = await wrong.inject("/health/db");
            expect(res.statusCode).toBe(503);
            expect(res.json()).toEqual({ status: "error", dependency: "database", error: "authentication failed" });
            expect(res.body).not.toContain(decodeURIComponent(url.username));
        } finally {
            await wrong.close();
        }
    });
});

describe("readiness budget", () => {
    it("answers 503 naming the database within 3 s (a proxy probe's timeout) when the database answers slowly", async () => {
        const url = new URL(await migratedDatabase(stack.postgres, "slow"));
        const proxy = await slowProxy(Number(url.port), 1600);
        url.port = String(proxy.port);
        const slow = await appFor(url.toString());
        try {
            // Warm up: a pooled connection open and the migration runner loaded, as in a running service.
            expect((await slow.inject("/health/ready")).statusCode).toBe(200);
            proxy.slow = true;
            const t0 = Date.now();
            const res = await slow.inject("/health/ready");
            const took = Date.now() - t0;
            expect(res.statusCode).toBe(503);
            expect(res.json()).toMatchObject({
                status: "not ready",
                failed: ["database", "migrations"],
                checks: {
                    database: { ok: false, error: "timeout" },
                    migrations: { ok: false, error: "not checked: the database is unavailable" },
                },
            });
            expect(took).toBeLessThan(3000);
        } finally {
            await slow.close();
            proxy.close();
        }
    });
});
