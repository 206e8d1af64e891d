// A real PostgreSQL 16 and a real redis-server for the app's tests, plus the app configuration that
// points at them. The schema comes from the migration runner itself (app/src/migrate), never a copy.
import { resolve } from "node:path";
import pg from "pg";
import { startPostgres, type TestPostgres } from "./postgres";
import { startRedis, type TestRedis } from "./redis";
import { up } from "../../src/migrate";
import { loadConfig, type Config } from "../../src/config";

export const REPO_ROOT = resolve(__dirname, "../../..");
export const MIGRATIONS_DIR = resolve(REPO_ROOT, "migrations");

export interface Stack {
    postgres: TestPostgres;
    redis: TestRedis;
    /** Stops both servers and deletes PostgreSQL's data directory. */
    cleanup(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
    const [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
    return {
        postgres,
        redis,
        async cleanup() {
            await Promise.allSettled([redis.stop(), postgres.cleanup()]);
        },
    };
}

/** A fresh database with every migration applied; returns its URL. */
export async function migratedDatabase(postgres: TestPostgres, prefix = "app"): Promise<string> {
    const url = await postgres.createDatabase(prefix);
    await up({ databaseUrl: url, migrationsDir: MIGRATIONS_DIR, waitSeconds: 5 });
    return url;
}

export function testEnv(
    databaseUrl: string,
    redisUrl: string,
    extra: Record<string, string> = {},
): Record<string, string> {
    return { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, HOST: "127.0.0.1", LOG_LEVEL: "silent", ...extra };
}

export function testConfig(databaseUrl: string, redisUrl: string, extra: Record<string, string> = {}): Config {
    return loadConfig(testEnv(databaseUrl, redisUrl, extra));
}

/** Runs `fn` with a one-connection pool of its own (for setting up and checking rows behind the app's back). */
export async function withPool<T>(databaseUrl: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    pool.on("error", () => undefined);
    try {
        return await fn(pool);
    } finally {
        await pool.end();
    }
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns whether it became true. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        if (await check().catch(() => false)) return true;
        if (Date.now() > deadline) return false;
        await new Promise((r) => setTimeout(r, intervalMs));
    }
}
