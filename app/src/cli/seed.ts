// `seed`: inserts the deterministic sample data (src/seed.ts). Reads DATABASE_URL; exit 0 on success,
// 1 with one clear line on any failure. Running it again inserts nothing. With REDIS_URL (as in the app's
// container) it then drops the cached /api/heroes answers, which the new rows made stale.
import pg from "pg";
import Redis from "ioredis";
import { ConfigError, loadDatabaseUrl } from "../config";
import { isMissingTable, shortReason } from "../db";
import { seed } from "../seed";
import { withSecretFiles } from "../secretFiles";
import { invalidateHeroesCache } from "../stats";

/** Drops the heroes cache; a Redis that cannot be reached is a warning (the answers expire by their TTL). */
async function clearCache(redisUrl: string): Promise<void> {
    const redis = new Redis(redisUrl, {
        lazyConnect: true,
        connectTimeout: 2000,
        maxRetriesPerRequest: 1,
        retryStrategy: () => null,
    });
    redis.on("error", () => undefined); // reported below, once
    try {
        await redis.connect();
        const removed = await invalidateHeroesCache(redis);
        process.stdout.write(`seed: heroes cache cleared (${removed} cached answer${removed === 1 ? "" : "s"})\n`);
    } catch (err) {
        process.stderr.write(
            `seed: warning: could not clear the heroes cache (${shortReason(err)}); cached answers stay until they expire\n`,
        );
    } finally {
        redis.disconnect();
    }
}

async function main(): Promise<number> {
    let databaseUrl: string;
    try {
        databaseUrl = loadDatabaseUrl();
    } catch (err) {
        if (err instanceof ConfigError) {
            process.stderr.write(`seed: ${err.message}\n`);
            return 1;
        }
        throw err;
    }
    const pool = new pg.Pool({
        connectionString: databaseUrl,
        max: 1,
        connectionTimeoutMillis: 10_000,
        application_name: "marvel-rivals-stats-seed",
    });
    pool.on("error", () => undefined); // a failing idle client surfaces through the next query anyway
    try {
        const report = await seed(pool);
        for (const [table, { total, inserted }] of Object.entries(report)) {
            process.stdout.write(`seed: ${table}: ${inserted} inserted, ${total - inserted} already present\n`);
        }
        const redisUrl = withSecretFiles().REDIS_URL;
        if (redisUrl) await clearCache(redisUrl);
        return 0;
    } catch (err) {
        const where = new URL(databaseUrl);
        const hint = isMissingTable(err) ? ": the schema is missing, run `migrate up` first" : "";
        process.stderr.write(
            `seed: failed against ${where.hostname}:${where.port || 5432}${where.pathname}: ${shortReason(err)}${hint}\n`,
        );
        return 1;
    } finally {
        await pool.end().catch(() => undefined);
    }
}

main().then((code) => process.exit(code));
