// The Redis client. Commands fail fast instead of queueing while Redis is away (`enableOfflineQueue:
// false`, one attempt, a command timeout): Redis is a cache here, and a request must never wait for it.
// The client keeps reconnecting in the background, so the service recovers by itself.
import Redis from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import { Outage } from "./outage";

export interface RedisOptions {
    commandTimeoutMs?: number;
    /** How often a suspended cache sends a PING to find out whether Redis answers again. */
    probeIntervalMs?: number;
}

/**
 * The cache as requests see it: the client, and whether to use it now. A Redis that is connected but does
 * not answer (a stopped process with its socket open, a full disk in a blocking save, a network that drops
 * packets) makes every command wait for the command timeout. So the first failed command suspends the
 * cache: requests go straight to PostgreSQL, without waiting, while a background PING every
 * `probeIntervalMs` finds out when Redis answers again. One log line per outage (src/outage.ts).
 */
export class RedisCache {
    private suspended = false;
    private probeTimer: NodeJS.Timeout | undefined;
    private closed = false;

    constructor(
        readonly client: Redis,
        private readonly outage: Outage,
        private readonly probeIntervalMs: number,
    ) {}

    /** Whether a request should send Redis a command now. */
    get usable(): boolean {
        return !this.suspended && this.client.status === "ready";
    }

    /** Why the cache is not usable, for health bodies (no error text: those can name hosts). */
    get state(): string {
        if (this.suspended) return "not answering (commands failed; the cache is bypassed until a PING succeeds)";
        return `not connected (client status: ${this.client.status})`;
    }

    /** A command failed: the cache is bypassed until Redis answers a PING. */
    failed(err: unknown): void {
        this.outage.failed(err, "Redis does not answer; the API answers from PostgreSQL until it does");
        if (this.suspended || this.closed) return;
        this.suspended = true;
        this.scheduleProbe();
    }

    /** A command succeeded. */
    succeeded(): void {
        this.outage.recovered();
    }

    /** Stops probing (the app is closing). */
    close(): void {
        this.closed = true;
        clearTimeout(this.probeTimer);
    }

    private scheduleProbe(): void {
        this.probeTimer = setTimeout(() => {
            this.client.ping().then(
                () => {
                    this.suspended = false;
                    this.outage.recovered();
                },
                (err: unknown) => {
                    this.outage.failed(err, "Redis does not answer");
                    if (!this.closed) this.scheduleProbe();
                },
            );
        }, this.probeIntervalMs);
        // A pending probe never keeps the process alive.
        this.probeTimer.unref();
    }
}

export function createRedis(redisUrl: string, logger: FastifyBaseLogger, options: RedisOptions = {}): RedisCache {
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
    const outage = new Outage(logger, {
        dependency: "redis",
        level: "warn",
        still: "Redis is still unreachable",
        back: "Redis is reachable again",
    });
    // Listeners go on before the first connection attempt. While Redis stays down ioredis emits an error for
    // every reconnection attempt: the first of an outage is a warning, the rest are debug lines.
    client.on("error", (err) =>
        outage.failed(err, "Redis is unreachable; the API answers from PostgreSQL until it is back"),
    );
    client.on("ready", () => outage.recovered());
    return new RedisCache(client, outage, options.probeIntervalMs ?? 500);
}

/** Starts connecting without waiting: a failure is reported by the `error` listener and retried. */
export function connectInBackground(client: Redis): void {
    client.connect().catch(() => undefined);
}
