// Builds the application: logger, pool, Redis client, routes. It does not listen: src/server.ts does.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import type pg from "pg";
import type Redis from "ioredis";
import type { Config } from "./config";
import { createPool } from "./db";
import { connectInBackground, createRedis, type RedisCache } from "./redis";
import { Outage } from "./outage";
import { healthRoutes } from "./routes/health";
import { apiRoutes } from "./routes/api";
import { errSerializer } from "./logging";
import { STATUS_CODES } from "node:http";

declare module "fastify" {
    interface FastifyInstance {
        config: Config;
        pool: pg.Pool;
        redis: Redis;
        /** The Redis client as requests use it: bypassed while Redis does not answer (src/redis.ts). */
        cache: RedisCache;
        /** One log line per database outage (src/outage.ts), shared by the API and the health checks. */
        databaseOutage: Outage;
        /** Explicit migrations directory; undefined = the runner's defaultMigrationsDir(), resolved on first use. */
        migrationsDir: string | undefined;
    }
}

export interface BuildOptions {
    /** Fastify logger options; defaults to JSON lines on stdout at `config.logLevel`. */
    logger?: FastifyServerOptions["logger"];
    /** Defaults to the runner's `defaultMigrationsDir()` (env MIGRATIONS_DIR, else the nearest migrations/). */
    migrationsDir?: string;
}

/** The caller's logger options (default: JSON lines at `level`), always with the app's `err` serializer. */
function loggerOptions(level: string, given: BuildOptions["logger"]): FastifyServerOptions["logger"] {
    if (given === false) return false;
    const base = given === undefined || given === true ? { level } : given;
    return { ...base, serializers: { ...base.serializers, err: errSerializer } };
}

export function buildApp(config: Config, options: BuildOptions = {}): FastifyInstance {
    const app = Fastify({
        // Structured JSON always; pretty printing is left to the reader's terminal (`| pino-pretty`).
        // Every `err` goes through errSerializer, which drops ioredis's `command.args` (a password on AUTH).
        logger: loggerOptions(config.logLevel, options.logger),
        // Bounds how long a client may take to send a whole request (slow uploads, slowloris). It does not
        // bound a handler, during shutdown or otherwise: handlers are bounded by the pool's query timeout
        // (src/db.ts) and Redis's command timeout (src/redis.ts), so close() waits at most that long.
        requestTimeout: 15_000,
        // Keep-alive connections that are idle are closed at once on shutdown; busy ones finish first.
        // src/server.ts drains before it calls close(), so that requests already written on such a connection
        // are answered (with `Connection: close`) instead of reset.
        forceCloseConnections: "idle",
        // A request that arrives after close() on a connection still busy (Fastify 5.12, lib/route.js: "requests
        // already pipelined or arriving on an active keep-alive connection") is answered as usual, with
        // `Connection: close`, not with Fastify's default 503: the proxy does not retry a 503 (Caddy retries
        // only failed dials), so the client of a deploy would see it (the odin deploys e2e did, once).
        return503OnClosing: false,
    });

    // Listeners are attached inside createPool/createRedis, before anything uses them.
    const databaseOutage = new Outage(app.log, {
        dependency: "database",
        level: "error",
        still: "the database is still unavailable",
        back: "the database is available again",
    });
    const pool = createPool(config.databaseUrl, app.log);
    const cache = createRedis(config.redisUrl, app.log);
    app.decorate("config", config);
    app.decorate("pool", pool);
    app.decorate("redis", cache.client);
    app.decorate("cache", cache);
    app.decorate("databaseOutage", databaseOutage);
    app.decorate("migrationsDir", options.migrationsDir);
    connectInBackground(cache.client);

    app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, request, reply) => {
        const status = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500;
        // The request's identity only: the raw request would put every header (Authorization, Cookie) in the
        // log. request.log already carries the request id. A client error is one line, without a stack: it
        // is the client's mistake, not the service's.
        const req = { method: request.method, url: request.url };
        if (status >= 500) request.log.error({ err, req }, "request failed");
        else request.log.info({ req, statusCode: status, reason: err.message }, "request refused");
        // The HTTP reason phrase names the error; only client errors carry their message back, a 500 says
        // nothing about the internals.
        const error = STATUS_CODES[status] ?? "Error";
        void reply
            .code(status)
            .send(status < 500 ? { error, message: err.message, statusCode: status } : { error, statusCode: status });
    });

    app.register(healthRoutes);
    app.register(apiRoutes);

    // Node's server.close() only closes the keep-alive connections that are idle at that moment; one that
    // finishes a request later would stay open until its keep-alive timeout and hold the shutdown. So from
    // the start of close() (or of the drain before it, src/server.ts) every response says `Connection: close`.
    app.addHook("preClose", async () => announceClose(app));

    // Runs after the server stopped accepting and in-flight requests finished (app.close()).
    app.addHook("onClose", async () => {
        cache.close();
        await Promise.allSettled([pool.end(), cache.client.quit().catch(() => cache.client.disconnect())]);
    });
    return app;
}

const announced = new WeakSet<FastifyInstance>();

/**
 * From now on every response of `app` carries `Connection: close`, so that clients open a new connection
 * (to the next instance) instead of reusing this one. A listener added on the raw server at that moment,
 * not a hook on every response: an onSend hook cost about 11% of /health's throughput (issue 12).
 */
export function announceClose(app: FastifyInstance): void {
    if (announced.has(app)) return;
    announced.add(app);
    app.server.prependListener("request", (_req, res) => res.setHeader("connection", "close"));
    // A request already in flight answers without that header, and its connection would then sit idle for
    // the keep-alive timeout (72 s) and hold close() that long: Node sets a connection's idle timeout from
    // server.keepAliveTimeout when a response finishes, so from now on that is at once.
    app.server.keepAliveTimeout = 1;
}
