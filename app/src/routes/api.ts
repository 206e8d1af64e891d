// The stats API. A database that is not usable (down, refusing the password, missing, out of connections,
// too slow) answers 503 with a JSON body naming it, and is logged once per outage (src/outage.ts); the
// process stays up and the pool reconnects by itself. A missing table means the migrations were not
// applied, and says so. Anything else is a bug and a 500.
import type { FastifyInstance, FastifyReply } from "fastify";
import { databaseUnavailable, isMissingTable, isUnavailable } from "../db";
import type { Outage } from "../outage";
import { RANK_TIERS, heroesWithCache, isRankTier, querySummary } from "../stats";

function databaseFailure(err: unknown, reply: FastifyReply, outage: Outage): FastifyReply | never {
    if (isMissingTable(err)) {
        outage.failed(err, "a table is missing: the migrations have not been applied");
        return reply.code(503).send({
            error: "Service Unavailable",
            dependency: "database",
            message: "the database schema is missing: run `migrate up`",
        });
    }
    if (isUnavailable(err)) {
        const reason = databaseUnavailable(outage, err);
        return reply.code(503).send({
            error: "Service Unavailable",
            dependency: "database",
            message: `the database is unavailable: ${reason}`,
        });
    }
    throw err;
}

export async function apiRoutes(app: FastifyInstance): Promise<void> {
    app.get<{ Querystring: { rank?: string } }>(
        "/api/heroes",
        {
            schema: {
                querystring: {
                    type: "object",
                    properties: { rank: { type: "string", minLength: 1, maxLength: 32, pattern: "^[A-Za-z0-9 _-]+$" } },
                    // Unknown parameters (cache busters, tracking) are dropped by Fastify's validator, not refused.
                    additionalProperties: false,
                },
            },
        },
        async (request, reply) => {
            const rank = request.query.rank ?? null;
            if (rank !== null && !isRankTier(rank)) {
                return reply.code(400).send({
                    error: "Bad Request",
                    message: `rank must be one of ${RANK_TIERS.join(", ")}`,
                });
            }
            try {
                const { result, cache } = await heroesWithCache(
                    app.pool,
                    app.cache,
                    rank,
                    app.config.heroesCacheTtlSeconds,
                );
                if (cache !== "hit") app.databaseOutage.recovered();
                return { ...result, cached: cache === "hit", cache, ttlSeconds: app.config.heroesCacheTtlSeconds };
            } catch (err) {
                return databaseFailure(err, reply, app.databaseOutage);
            }
        },
    );

    app.get("/api/stats/summary", async (request, reply) => {
        try {
            const tables = await querySummary(app.pool);
            app.databaseOutage.recovered();
            return { tables };
        } catch (err) {
            return databaseFailure(err, reply, app.databaseOutage);
        }
    });
}
