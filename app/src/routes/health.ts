// Liveness, dependency checks and readiness. The health routes log at `warn` only: the container
// healthcheck calls them every few seconds, and a log line per call would drown everything else.
import type { FastifyInstance } from "fastify";
import { checkDatabase, checkMigrations, checkRedis } from "../checks";

export async function healthRoutes(app: FastifyInstance): Promise<void> {
    // Liveness: touches no dependency, so a database or Redis outage never gets the container restarted.
    app.get("/health", { logLevel: "warn" }, async () => ({ status: "ok" }));

    app.get("/health/db", { logLevel: "warn" }, async (request, reply) => {
        const result = await checkDatabase(app.pool, request.log);
        if (result.ok) return { status: "ok", dependency: "database", latencyMs: result.latencyMs };
        return reply.code(503).send({ status: "error", dependency: "database", error: result.error });
    });

    app.get("/health/redis", { logLevel: "warn" }, async (request, reply) => {
        const result = await checkRedis(app.redis, request.log);
        if (result.ok) return { status: "ok", dependency: "redis", latencyMs: result.latencyMs };
        return reply.code(503).send({ status: "error", dependency: "redis", error: result.error });
    });

    app.get("/health/ready", { logLevel: "warn" }, async (request, reply) => {
        // In parallel, so readiness takes one check's budget (CHECK_TIMEOUT_MS), not the sum: healthcheck.js
        // gives up after 3 s. The migration check needs the database: when that failed, its result says so.
        const [database, redis, migrationsChecked] = await Promise.all([
            checkDatabase(app.pool, request.log),
            checkRedis(app.redis, request.log),
            checkMigrations(app.pool, app.migrationsDir, request.log),
        ]);
        const migrations = database.ok
            ? migrationsChecked
            : { ok: false as const, error: "not checked: the database is unavailable" };
        const checks = { database, redis, migrations };
        const failed = (Object.keys(checks) as (keyof typeof checks)[]).filter((name) => !checks[name].ok);
        if (failed.length === 0) return { status: "ready", checks };
        return reply.code(503).send({ status: "not ready", failed, checks });
    });
}
