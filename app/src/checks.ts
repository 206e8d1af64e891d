// The dependency checks behind /health/db, /health/redis and /health/ready. Each one reports the real error
// to the dependency's outage log (one line per outage, src/outage.ts: the checks run every few seconds)
// and returns a fixed reason category for the JSON body (reasonCategory: no pg message, no host or role).
import type pg from "pg";
import type { FastifyBaseLogger } from "fastify";
import { databaseUnavailable, isUnavailable, reasonCategory } from "./db";
import type { Outage } from "./outage";
import { defaultMigrationsDir } from "./migrate/files";
import { listPending } from "./migrate/history";
import type { RedisCache } from "./redis";
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

export async function checkDatabase(pool: pg.Pool, outage: Outage): Promise<CheckResult> {
    const start = process.hrtime.bigint();
    try {
        // pool.query releases its client in every case, and destroys it when the query failed. query_timeout
        // (a real pg option that @types/pg leaves out) makes the client give up on a hung server.
        const query = { text: "SELECT 1", query_timeout: CHECK_TIMEOUT_MS } as pg.QueryConfig;
        // withTimeout also bounds the wait for a connection, which query_timeout does not cover.
        await withTimeout(pool.query(query), CHECK_TIMEOUT_MS, "PostgreSQL");
        outage.recovered();
        return { ok: true, latencyMs: elapsed(start) };
    } catch (err) {
        return { ok: false, error: databaseUnavailable(outage, err) };
    }
}

export async function checkRedis(cache: RedisCache): Promise<CheckResult> {
    const start = process.hrtime.bigint();
    // A disconnected or suspended cache is not asked: the body says what state it is in, at once.
    if (!cache.usable) return { ok: false, error: cache.state };
    try {
        const reply = await withTimeout(cache.client.ping(), CHECK_TIMEOUT_MS, "Redis");
        if (reply !== "PONG") throw new Error(`unexpected PING reply ${JSON.stringify(reply)}`);
        cache.succeeded();
        return { ok: true, latencyMs: elapsed(start) };
    } catch (err) {
        cache.failed(err);
        return { ok: false, error: reasonCategory(err) };
    }
}

export type MigrationsResult = { ok: true; pending: [] } | { ok: false; pending?: string[]; error: string };

export async function checkMigrations(
    pool: pg.Pool,
    migrationsDir: string | undefined,
    outage: Outage,
    log: FastifyBaseLogger,
): Promise<MigrationsResult> {
    try {
        // The history table's reader only (src/migrate/history.ts): umzug stays out of the server process.
        const pending = await withTimeout(
            listPending(pool, migrationsDir ?? defaultMigrationsDir()),
            CHECK_TIMEOUT_MS,
            "the migration check",
        );
        if (pending.length === 0) return { ok: true, pending: [] };
        return { ok: false, pending, error: `${pending.length} migration(s) pending: run \`migrate up\`` };
    } catch (err) {
        // The database being away is its outage's line; anything else (an unreadable directory) is logged.
        if (isUnavailable(err)) databaseUnavailable(outage, err);
        else log.warn({ err, migrationsDir }, "migration check failed");
        return { ok: false, error: reasonCategory(err) };
    }
}
