// The stats API. A database outage answers 503 with a JSON body naming it (the process stays up and the
// pool reconnects by itself); a missing table means the migrations were not applied, and says so.
import type { FastifyInstance, FastifyReply, FastifyBaseLogger } from "fastify";
import { isMissingTable, isUnavailable, reasonCategory } from "../db";
import { RANK_TIERS, heroesWithCache, isRankTier, querySummary } from "../stats";

function databaseFailure(err: unknown, reply: FastifyReply, log: FastifyBaseLogger): FastifyReply | never {
    if (isMissingTable(err)) {
        log.error({ err }, "a table is missing: the migrations have not been applied");
        return reply.code(503).send({
            error: "Service Unavailable",
            dependency: "database",
            message: "the database schema is missing: run `migrate up`",
        });
    }
    if (isUnavailable(err)) {
        log.error({ err }, "the database is unavailable");
        return reply.code(503).send({
            error: "Service Unavailable",
            dependency: "database",
            message: `the database is unavailable: ${reasonCategory(err)}`,
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
                    app.redis,
                    rank,
                    app.config.heroesCacheTtlSeconds,
                    request.log,
                );
                return { ...result, cached: cache === "hit", cache, ttlSeconds: app.config.heroesCacheTtlSeconds };
            } catch (err) {
                return databaseFailure(err, reply, request.log);
            }
        },
    );

    app.get("/api/stats/summary", async (request, reply) => {
        try {
            return { tables: await querySummary(app.pool) };
        } catch (err) {
            return databaseFailure(err, reply, request.log);
        }
    });
}
