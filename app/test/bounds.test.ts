// Issue 12, item 1: no backend outlives the request that started it. With a lock held on `matches`, waves
// of requests that time out must not leave their queries waiting in PostgreSQL (the client-side timeout
// alone gave up on them while the server went on waiting: 10, 20, then 30 backends for three waves, beyond
// the pool's 10 connections, until PostgreSQL ran out of connections).
import { afterAll, beforeAll, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import pg from "pg";
import { buildApp } from "../src/app";
import { eventually, migratedDatabase, MIGRATIONS_DIR, startStack, testConfig, type Stack } from "./support/stack";

let stack: Stack;
let databaseUrl: string;
let app: FastifyInstance;
let holder: pg.Client;

beforeAll(async () => {
    stack = await startStack();
    databaseUrl = await migratedDatabase(stack.postgres, "bounds");
    app = buildApp(testConfig(databaseUrl, stack.redis.url), { logger: false, migrationsDir: MIGRATIONS_DIR });
    await app.ready();
    expect(await eventually(async () => app.redis.status === "ready", 5000)).toBe(true);
    holder = new pg.Client({ connectionString: databaseUrl });
    await holder.connect();
}, 120_000);

afterAll(async () => {
    await holder?.end().catch(() => undefined);
    await app?.close();
    await stack?.cleanup();
});

/** The app's backends (by its application_name) waiting on a lock right now. */
async function appBackendsWaitingOnLocks(): Promise<number> {
    const r = await holder.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'marvel-rivals-stats-app' AND wait_event_type = 'Lock'",
    );
    return r.rows[0].n;
}

it("queries stuck behind a lock are cancelled by the server within the request's time: waves of requests leave no backend waiting", async () => {
    await holder.query("BEGIN");
    await holder.query("LOCK TABLE matches IN ACCESS EXCLUSIVE MODE");
    try {
        const waiting: number[] = [];
        for (let wave = 0; wave < 3; wave++) {
            const answers = await Promise.all(
                Array.from({ length: 10 }, () => app.inject("/api/stats/summary").then((r) => r.statusCode)),
            );
            // A database that cannot answer in time is unavailable, not broken.
            expect(
                answers.every((s) => s === 503),
                answers.join(","),
            ).toBe(true);
            waiting.push(await appBackendsWaitingOnLocks());
        }
        expect(waiting).toEqual([0, 0, 0]);
    } finally {
        await holder.query("ROLLBACK");
    }
    expect((await app.inject("/api/stats/summary")).statusCode).toBe(200);
}, 120_000);

it("every connection of the app carries server-side bounds consistent with its client timeout", async () => {
    const pool = app.pool;
    const r = await pool.query(
        "SELECT current_setting('statement_timeout') AS s, current_setting('lock_timeout') AS l, current_setting('idle_in_transaction_session_timeout') AS i",
    );
    expect(r.rows[0]).toEqual({ s: "5s", l: "5s", i: "10s" });
});
