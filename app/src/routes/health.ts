// Liveness, dependency checks and readiness. The health routes log at `warn` only: the container
// healthcheck and the reverse proxy call them every few seconds, and a log line per call would drown
// everything else.
//
// - /health (liveness): "this process should be restarted if this fails". It touches no dependency, so a
//   database or Redis outage never gets the container restarted. The container's HEALTHCHECK
//   (app/healthcheck.js) calls it.
// - /health/ready (readiness): "send me traffic". The API needs PostgreSQL with the migrations applied;
//   Redis is a cache it can do without, so a Redis outage makes readiness `degraded`, still 200. The
//   reverse proxy's active health check calls it (docs/app.md, "Health endpoints").
import type { FastifyInstance } from "fastify";
import { checkDatabase, checkMigrations, checkRedis } from "../checks";

export async function healthRoutes(app: FastifyInstance): Promise<void> {
    app.get("/health", { logLevel: "warn" }, async () => ({ status: "ok" }));

    app.get("/health/db", { logLevel: "warn" }, async (_request, reply) => {
        const result = await checkDatabase(app.pool, app.databaseOutage);
        if (result.ok) return { status: "ok", dependency: "database", latencyMs: result.latencyMs };
        return reply.code(503).send({ status: "error", dependency: "database", error: result.error });
    });

    app.get("/health/redis", { logLevel: "warn" }, async (_request, reply) => {
        const result = await checkRedis(app.cache);
        if (result.ok) return { status: "ok", dependency: "redis", latencyMs: result.latencyMs };
        return reply.code(503).send({ status: "error", dependency: "redis", error: result.error });
    });

    app.get("/health/ready", { logLevel: "warn" }, async (request, reply) => {
        // In parallel, so readiness takes one check's budget (CHECK_TIMEOUT_MS), not the sum: a proxy's probe
        // gets a 503 that names the dependency, not a timeout that names nothing. The migration check needs
        // the database: when that failed, its result says so.
        const [database, redis, migrationsChecked] = await Promise.all([
            checkDatabase(app.pool, app.databaseOutage),
            checkRedis(app.cache),
            checkMigrations(app.pool, app.migrationsDir, app.databaseOutage, request.log),
        ]);
        const migrations = database.ok
            ? migrationsChecked
            : { ok: false as const, error: "not checked: the database is unavailable" };
        const checks = { database, redis, migrations };
        const failed = (["database", "migrations"] as const).filter((name) => !checks[name].ok);
        if (failed.length > 0) return reply.code(503).send({ status: "not ready", failed, checks });
        // Without Redis every answer comes from PostgreSQL: slower, still correct.
        if (!redis.ok) return { status: "degraded", degraded: ["redis"], checks };
        return { status: "ready", checks };
    });
}
