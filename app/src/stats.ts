// The stats queries behind /api: hero win rates (cached in Redis) and table row counts.
import type pg from "pg";
import type Redis from "ioredis";
import type { RedisCache } from "./redis";
import { wilsonInterval } from "./wilson";

export interface HeroStat {
    hero: string;
    role: string | null;
    matches: number;
    wins: number;
    winRate: number;
    /** Wilson score interval at 95%. */
    ci95: { lower: number; upper: number };
}

export interface HeroesResult {
    rank: string | null;
    generatedAt: string;
    heroes: HeroStat[];
}

export type CacheState = "hit" | "miss" | "unavailable";

/**
 * The rank tiers of Marvel Rivals, lowest first: the values players.rank_tier holds and `?rank=` accepts.
 * A closed set, so that a caller cannot make a cache key (and a query) of anything it likes.
 */
export const RANK_TIERS = [
    "Bronze",
    "Silver",
    "Gold",
    "Platinum",
    "Diamond",
    "Grandmaster",
    "Celestial",
    "Eternity",
    "One Above All",
] as const;
export type RankTier = (typeof RANK_TIERS)[number];

export function isRankTier(value: string): value is RankTier {
    return (RANK_TIERS as readonly string[]).includes(value);
}

const round = (x: number) => Math.round(x * 10_000) / 10_000;

export async function queryHeroes(pool: pg.Pool, rank: string | null): Promise<HeroesResult> {
    // A rank filters on the player's current tier (players.rank_tier).
    const { rows } = await pool.query<{ hero: string; role: string | null; matches: number; wins: number }>(
        rank === null
            ? `SELECT mp.hero_name AS hero, MIN(mp.role) AS role, COUNT(*)::int AS matches,
                      (COUNT(*) FILTER (WHERE mp.won))::int AS wins
                 FROM match_participants mp
                GROUP BY mp.hero_name`
            : `SELECT mp.hero_name AS hero, MIN(mp.role) AS role, COUNT(*)::int AS matches,
                      (COUNT(*) FILTER (WHERE mp.won))::int AS wins
                 FROM match_participants mp
                 JOIN players p ON p.username = mp.username
                WHERE p.rank_tier = $1
                GROUP BY mp.hero_name`,
        rank === null ? [] : [rank],
    );
    const heroes = rows.map((r) => {
        const ci = wilsonInterval(r.wins, r.matches);
        return {
            hero: r.hero,
            role: r.role,
            matches: r.matches,
            wins: r.wins,
            winRate: round(r.wins / r.matches),
            ci95: { lower: round(ci.lower), upper: round(ci.upper) },
        };
    });
    // Best first by the interval's lower bound: a 3-0 hero does not outrank a 60-40 one.
    heroes.sort((a, b) => b.ci95.lower - a.ci95.lower || a.hero.localeCompare(b.hero));
    return { rank, generatedAt: new Date().toISOString(), heroes };
}

const HEROES_KEY_PREFIX = "mrs:heroes:";

export function heroesCacheKey(rank: string | null): string {
    return rank === null ? `${HEROES_KEY_PREFIX}v1:all` : `${HEROES_KEY_PREFIX}v1:rank=${rank}`;
}

/** Drops every cached heroes answer (after the data changed under them); returns how many keys went. */
export async function invalidateHeroesCache(redis: Redis): Promise<number> {
    let removed = 0;
    let cursor = "0";
    do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${HEROES_KEY_PREFIX}*`, "COUNT", 100);
        if (keys.length > 0) removed += await redis.del(...keys);
        cursor = next;
    } while (cursor !== "0");
    return removed;
}

/** Database work in flight per cache key: concurrent misses of one key share one query and one SET. */
const inFlight = new Map<string, Promise<{ result: HeroesResult; cache: CacheState }>>();

/**
 * Hero stats from Redis when there, else from PostgreSQL (then stored for `ttlSeconds`). Redis failing
 * never fails the request: the answer then comes from the database and says `cache: "unavailable"`; a
 * Redis that does not answer is bypassed without waiting until it does (RedisCache).
 * A cold key is computed once however many requests miss it together (single flight, per process).
 */
export async function heroesWithCache(
    pool: pg.Pool,
    cache: RedisCache,
    rank: RankTier | null,
    ttlSeconds: number,
): Promise<{ result: HeroesResult; cache: CacheState }> {
    const key = heroesCacheKey(rank);
    let state: CacheState = "unavailable";
    if (cache.usable) {
        try {
            const hit = await cache.client.get(key);
            cache.succeeded();
            if (hit !== null) return { result: JSON.parse(hit) as HeroesResult, cache: "hit" };
            state = "miss";
        } catch (err) {
            cache.failed(err);
        }
    }
    const pending = inFlight.get(key);
    if (pending) return pending;
    const work = (async () => {
        const result = await queryHeroes(pool, rank);
        if (state === "miss" && cache.usable) {
            try {
                await cache.client.set(key, JSON.stringify(result), "EX", ttlSeconds);
            } catch (err) {
                cache.failed(err);
            }
        }
        return { result, cache: state };
    })();
    inFlight.set(key, work);
    try {
        return await work;
    } finally {
        inFlight.delete(key);
    }
}

export const SUMMARY_TABLES = [
    "players",
    "matches",
    "match_participants",
    "character_stats",
    "synergy_stats",
    "collection_metadata",
] as const;

export async function querySummary(pool: pg.Pool): Promise<Record<(typeof SUMMARY_TABLES)[number], number>> {
    // One round trip; the table names are constants, never input.
    const sql = `SELECT ${SUMMARY_TABLES.map((t) => `(SELECT COUNT(*) FROM ${t})::bigint AS ${t}`).join(", ")}`;
    const { rows } = await pool.query<Record<string, string>>(sql);
    const row = rows[0]!;
    return Object.fromEntries(SUMMARY_TABLES.map((t) => [t, Number(row[t])])) as Record<
        (typeof SUMMARY_TABLES)[number],
        number
    >;
}
