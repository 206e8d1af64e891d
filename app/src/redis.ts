// The Redis client. Commands fail fast instead of queueing while Redis is away (`enableOfflineQueue:
// false`, one attempt, a command timeout): Redis is a cache here, and a request must never wait for it.
// The client keeps reconnecting in the background, so the service recovers by itself.
import Redis from "ioredis";
import type { FastifyBaseLogger } from "fastify";

export interface RedisOptions {
    commandTimeoutMs?: number;
}

export function createRedis(redisUrl: string, logger: FastifyBaseLogger, options: RedisOptions = {}): Redis {
    const client = new Redis(redisUrl, {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        commandTimeout: options.commandTimeoutMs ?? 1000,
        // Reconnect forever, at most every 2 s.
        retryStrategy: (times) => Math.min(times * 100, 2000),
        connectionName: "marvel-rivals-stats-app",
    });
    // Listeners go on before the first connection attempt. While Redis stays down ioredis emits an error for
    // every reconnection attempt: log the first of an outage as a warning and the rest at debug level.
    let down = false;
    client.on("error", (err) => {
        if (down) {
            logger.debug({ err }, "Redis is still unreachable");
        } else {
            down = true;
            logger.warn(
                { err },
                "Redis is unreachable; the API answers from PostgreSQL and readiness reports 503 until it is back",
            );
        }
    });
    client.on("ready", () => {
        if (down) logger.info("Redis is reachable again");
        down = false;
    });
    return client;
}

/** Starts connecting without waiting: a failure is reported by the `error` listener and retried. */
export function connectInBackground(client: Redis): void {
    client.connect().catch(() => undefined);
}
