// The dependency checks behind /health/db, /health/redis and /health/ready. Each one logs the real error
// and returns a fixed reason category for the JSON body (reasonCategory: no pg message, no host or role).
import type pg from "pg";
import type Redis from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import { reasonCategory } from "./db";
import { withTimeout } from "./timeout";

/**
 * Each check's whole budget. Readiness runs its checks in parallel, so it answers within about this long
 * whatever the dependencies do: well inside healthcheck.js's 3 s, so a slow database gives a 503 that names
 * it instead of a healthcheck timeout that names nothing.
 */
export const CHECK_TIMEOUT_MS = 1200;

export type CheckResult = { ok: true; latencyMs: number } | { ok: false; error: string };

function elapsed(start: bigint): number {
    return Math.round(Number(process.hrtime.bigint() - start) / 1e4) / 100;
}

export async function checkDatabase(pool: pg.Pool, log: FastifyBaseLogger): Promise<CheckResult> {
    const start = process.hrtime.bigint();
    try {
        // pool.query releases its client in every case, and destroys it when the query failed. query_timeout
        // (a real pg option that @types/pg leaves out) makes the client give up on a hung server.
        const query = { text: "SELECT 1", query_timeout: CHECK_TIMEOUT_MS } as pg.QueryConfig;
        // withTimeout also bounds the wait for a connection, which query_timeout does not cover.
        await withTimeout(pool.query(query), CHECK_TIMEOUT_MS, "PostgreSQL");
        return { ok: true, latencyMs: elapsed(start) };
    } catch (err) {
        log.warn({ err }, "database check failed");
        return { ok: false, error: reasonCategory(err) };
    }
}

export async function checkRedis(redis: Redis, log: FastifyBaseLogger): Promise<CheckResult> {
    const start = process.hrtime.bigint();
    if (redis.status !== "ready") {
        // The client's own error listener has logged why; the body says what state it is in.
        return { ok: false, error: `not connected (client status: ${redis.status})` };
    }
    try {
        const reply = await withTimeout(redis.ping(), CHECK_TIMEOUT_MS, "Redis");
        if (reply !== "PONG") throw new Error(`unexpected PING reply ${JSON.stringify(reply)}`);
        return { ok: true, latencyMs: elapsed(start) };
    } catch (err) {
        log.warn({ err }, "Redis check failed");
        return { ok: false, error: reasonCategory(err) };
    }
}

export type MigrationsResult = { ok: true; pending: [] } | { ok: false; pending?: string[]; error: string };

export async function checkMigrations(
    pool: pg.Pool,
    migrationsDir: string | undefined,
    log: FastifyBaseLogger,
): Promise<MigrationsResult> {
    try {
        // Loaded on first use: the runner brings umzug (~200 ms, ~6 MB), which liveness and the API never
        // need, and the server listens sooner without it (hot reload in the dev stage, issue 4).
        // Loading it counts against the budget too.
        const pending = await withTimeout(
            import("./migrate").then(({ listPending, defaultMigrationsDir }) =>
                listPending(pool, migrationsDir ?? defaultMigrationsDir()),
            ),
            CHECK_TIMEOUT_MS,
            "the migration check",
        );
        if (pending.length === 0) return { ok: true, pending: [] };
        return { ok: false, pending, error: `${pending.length} migration(s) pending: run \`migrate up\`` };
    } catch (err) {
        log.warn({ err, migrationsDir }, "migration check failed");
        return { ok: false, error: reasonCategory(err) };
    }
}
