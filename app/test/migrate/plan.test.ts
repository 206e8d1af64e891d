// The schema against the seed plan (SPEC-004, "Database Schema", files 001 and 002), whose table and column
// names and types are the contract the collectors and analyzers are written against. On a real PostgreSQL
// 16: the plan's own rows and upserts go in; the columns, types, nullability, defaults, indexes and
// constraints are the plan's except for the differences listed here (a new one fails); a database with
// rows under 001 + 002 upgrades through 003 with every value carried over, and its down file brings back
// exactly the database before.
import { describe, expect, it } from "vitest";
import type { Client } from "pg";
import { down, up } from "../../src/migrate";
import { SEED_DIR, historyNames, rejection, snapshot, useTestPostgres, withClient } from "./helpers";

const pg = useTestPostgres();

const TABLES = [
    "players",
    "matches",
    "match_participants",
    "character_stats",
    "synergy_stats",
    "collection_metadata",
] as const;

async function database(prefix: string, to?: string): Promise<string> {
    const url = await pg.createDatabase(prefix);
    await up({ databaseUrl: url, migrationsDir: SEED_DIR, ...(to === undefined ? {} : { to }) });
    return url;
}

const rows = async (c: Client, sql: string, params: unknown[] = []) => (await c.query(sql, params)).rows;

// ---------------------------------------------------------------------------------------------------------
// What the plan says.

const TS = "timestamp without time zone";
const TSTZ = "timestamp with time zone";

interface Column {
    type: string;
    nullable: boolean;
    /** As information_schema shows it; "serial" for a nextval() default, "identity BY DEFAULT" etc. */
    default: string | null;
}
type Shape = Record<string, Record<string, Column>>;

const col = (type: string, nullable: boolean, dflt: string | null = null): Column => ({
    type,
    nullable,
    default: dflt,
});
const NULL = true;
const NOT_NULL = false;

/** The plan's tables, column by column (SERIAL is an integer with a nextval() default, DECIMAL is numeric). */
const PLAN: Shape = {
    players: {
        username: col("text", NOT_NULL),
        rank_tier: col("text", NULL),
        rank_score: col("integer", NULL),
        discovered_at: col(TS, NULL, "now()"),
        last_updated: col(TS, NULL),
        match_history_fetched: col("boolean", NULL, "false"),
    },
    matches: {
        match_id: col("text", NOT_NULL),
        mode: col("text", NULL),
        season: col("integer", NULL),
        match_timestamp: col(TS, NULL),
        created_at: col(TS, NULL, "now()"),
    },
    match_participants: {
        id: col("integer", NOT_NULL, "serial"),
        match_id: col("text", NOT_NULL),
        username: col("text", NOT_NULL),
        hero_id: col("integer", NULL),
        hero_name: col("text", NOT_NULL),
        role: col("text", NULL),
        team: col("integer", NULL),
        won: col("boolean", NOT_NULL),
        kills: col("integer", NULL, "0"),
        deaths: col("integer", NULL, "0"),
        assists: col("integer", NULL, "0"),
        damage: col("numeric(12,2)", NULL, "0"),
        healing: col("numeric(12,2)", NULL, "0"),
    },
    character_stats: {
        id: col("integer", NOT_NULL, "serial"),
        hero_name: col("text", NOT_NULL),
        rank_tier: col("text", NULL),
        total_games: col("integer", NOT_NULL),
        wins: col("integer", NOT_NULL),
        losses: col("integer", NOT_NULL),
        win_rate: col("numeric(5,4)", NOT_NULL),
        confidence_interval_lower: col("numeric(5,4)", NULL),
        confidence_interval_upper: col("numeric(5,4)", NULL),
        analyzed_at: col(TS, NULL, "now()"),
    },
    synergy_stats: {
        id: col("integer", NOT_NULL, "serial"),
        hero_a: col("text", NOT_NULL),
        hero_b: col("text", NOT_NULL),
        rank_tier: col("text", NULL),
        games_together: col("integer", NOT_NULL),
        wins_together: col("integer", NOT_NULL),
        win_rate: col("numeric(5,4)", NOT_NULL),
        expected_win_rate: col("numeric(5,4)", NULL),
        synergy_score: col("numeric(6,4)", NULL),
        statistical_significance: col("numeric(5,4)", NULL),
        analyzed_at: col(TS, NULL, "now()"),
    },
    collection_metadata: {
        key: col("text", NOT_NULL),
        value: col("text", NULL),
        updated_at: col(TS, NULL, "now()"),
    },
    schema_migrations: {
        version: col("integer", NOT_NULL),
        description: col("text", NOT_NULL),
        applied_at: col(TS, NULL, "now()"),
    },
};

/**
 * The plan's DDL, to check the table above against PostgreSQL's own reading of it. Verbatim but for:
 * - UNIQUE(hero_name, COALESCE(rank_tier, '')) and UNIQUE(hero_a, hero_b, COALESCE(rank_tier, '')), which
 *   PostgreSQL rejects (see "the plan's COALESCE unique is not valid SQL" below): written as UNIQUE NULLS
 *   NOT DISTINCT, the valid form of their intent, as our 001 does;
 * - the rows it inserts, which are not part of the shape.
 */
const PLAN_DDL = `
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE TABLE IF NOT EXISTS players (
    username TEXT PRIMARY KEY, rank_tier TEXT, rank_score INTEGER, discovered_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    last_updated TIMESTAMP, match_history_fetched BOOLEAN DEFAULT FALSE);
CREATE TABLE IF NOT EXISTS matches (
    match_id TEXT PRIMARY KEY, mode TEXT, season INTEGER, match_timestamp TIMESTAMP, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS match_participants (
    id SERIAL PRIMARY KEY, match_id TEXT NOT NULL, username TEXT NOT NULL, hero_id INTEGER, hero_name TEXT NOT NULL,
    role TEXT CHECK (role IN ('vanguard', 'duelist', 'strategist')), team INTEGER CHECK (team IN (0, 1)), won BOOLEAN NOT NULL,
    kills INTEGER DEFAULT 0, deaths INTEGER DEFAULT 0, assists INTEGER DEFAULT 0, damage DECIMAL(12, 2) DEFAULT 0,
    healing DECIMAL(12, 2) DEFAULT 0,
    FOREIGN KEY (match_id) REFERENCES matches(match_id) ON DELETE CASCADE,
    FOREIGN KEY (username) REFERENCES players(username) ON DELETE CASCADE,
    UNIQUE(match_id, username));
CREATE TABLE IF NOT EXISTS character_stats (
    id SERIAL PRIMARY KEY, hero_name TEXT NOT NULL, rank_tier TEXT, total_games INTEGER NOT NULL, wins INTEGER NOT NULL,
    losses INTEGER NOT NULL, win_rate DECIMAL(5, 4) NOT NULL, confidence_interval_lower DECIMAL(5, 4),
    confidence_interval_upper DECIMAL(5, 4), analyzed_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    UNIQUE NULLS NOT DISTINCT (hero_name, rank_tier));
CREATE TABLE IF NOT EXISTS synergy_stats (
    id SERIAL PRIMARY KEY, hero_a TEXT NOT NULL, hero_b TEXT NOT NULL, rank_tier TEXT, games_together INTEGER NOT NULL,
    wins_together INTEGER NOT NULL, win_rate DECIMAL(5, 4) NOT NULL, expected_win_rate DECIMAL(5, 4),
    synergy_score DECIMAL(6, 4), statistical_significance DECIMAL(5, 4), analyzed_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    UNIQUE NULLS NOT DISTINCT (hero_a, hero_b, rank_tier), CHECK(hero_a < hero_b));
CREATE TABLE IF NOT EXISTS collection_metadata (key TEXT PRIMARY KEY, value TEXT, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
INSERT INTO collection_metadata (key, value) VALUES
    ('schema_version', '1'), ('last_collection_run', NULL), ('total_players_discovered', '0'), ('total_matches_collected', '0')
ON CONFLICT (key) DO NOTHING;
CREATE INDEX IF NOT EXISTS idx_match_participants_match_id ON match_participants(match_id);
CREATE INDEX IF NOT EXISTS idx_match_participants_username ON match_participants(username);
CREATE INDEX IF NOT EXISTS idx_match_participants_hero_name ON match_participants(hero_name);
CREATE INDEX IF NOT EXISTS idx_match_participants_won ON match_participants(won);
CREATE INDEX IF NOT EXISTS idx_match_participants_hero_won ON match_participants(hero_name, won);
CREATE INDEX IF NOT EXISTS idx_match_participants_match_team ON match_participants(match_id, team);
CREATE INDEX IF NOT EXISTS idx_matches_season ON matches(season);
CREATE INDEX IF NOT EXISTS idx_matches_timestamp ON matches(match_timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_players_rank_tier ON players(rank_tier);
CREATE INDEX IF NOT EXISTS idx_players_fetched ON players(match_history_fetched);
CREATE INDEX IF NOT EXISTS idx_character_stats_hero ON character_stats(hero_name);
CREATE INDEX IF NOT EXISTS idx_character_stats_analyzed ON character_stats(analyzed_at DESC);
UPDATE collection_metadata SET value = '2', updated_at = CURRENT_TIMESTAMP WHERE key = 'schema_version';
`;

/** The plan's indexes (its 002): name -> "table (columns)". */
const PLAN_INDEXES: Record<string, string> = {
    idx_match_participants_match_id: "match_participants (match_id)",
    idx_match_participants_username: "match_participants (username)",
    idx_match_participants_hero_name: "match_participants (hero_name)",
    idx_match_participants_won: "match_participants (won)",
    idx_match_participants_hero_won: "match_participants (hero_name, won)",
    idx_match_participants_match_team: "match_participants (match_id, team)",
    idx_matches_season: "matches (season)",
    idx_matches_timestamp: "matches (match_timestamp DESC)",
    idx_players_rank_tier: "players (rank_tier)",
    idx_players_fetched: "players (match_history_fetched)",
    idx_character_stats_hero: "character_stats (hero_name)",
    idx_character_stats_analyzed: "character_stats (analyzed_at DESC)",
};

// ---------------------------------------------------------------------------------------------------------
// Where we differ from the plan, each with its reason. A difference not listed here fails the tests.

/** Tables left out of the comparison on both sides. */
const NOT_COMPARED: string[] = [
    // Nothing: the plan's schema_migrations is 004's, and the runner's history lives outside public.
];

/** Column differences, as `diffShapes` words them. Column ORDER is not compared: 003 appends its columns. */
const COLUMN_DIFFERENCES: [difference: string, reason: string][] = [
    // players
    [`players.discovered_at: type ${TS} -> ${TSTZ}`, "a point in time, whatever the session's time zone"],
    ["players.discovered_at: NULL -> NOT NULL", "has the plan's default; only an explicit NULL is refused"],
    [`players.last_updated: type ${TS} -> ${TSTZ}`, "a point in time"],
    ["players.match_history_fetched: NULL -> NOT NULL", "has the plan's default FALSE"],
    // matches
    [`matches.match_timestamp: type ${TS} -> ${TSTZ}`, "a point in time"],
    [`matches.created_at: type ${TS} -> ${TSTZ}`, "a point in time"],
    ["matches.created_at: NULL -> NOT NULL", "has the plan's default"],
    ["matches.duration_seconds: not in the plan (integer, NULL, default none)", "ours (001), optional since 003"],
    ["matches.map_name: not in the plan (text, NULL, default none)", "ours (001), optional"],
    // match_participants
    [
        "match_participants.id: default serial -> identity BY DEFAULT",
        "an identity column behaves as SERIAL (integer, filled from a sequence, an explicit id accepted)",
    ],
    ["match_participants.kills: NULL -> NOT NULL", "has the plan's default 0"],
    ["match_participants.deaths: NULL -> NOT NULL", "has the plan's default 0"],
    ["match_participants.assists: NULL -> NOT NULL", "has the plan's default 0"],
    ["match_participants.damage: NULL -> NOT NULL", "has the plan's default 0"],
    ["match_participants.healing: NULL -> NOT NULL", "has the plan's default 0"],
    ["match_participants.damage_taken: not in the plan (bigint, NOT NULL, default 0)", "ours (001), defaulted"],
    // character_stats
    ["character_stats.id: default serial -> identity BY DEFAULT", "as match_participants.id"],
    ["character_stats.total_games: default none -> 0", "001's default; the plan's inserts always give it"],
    ["character_stats.wins: default none -> 0", "001's default; the plan's inserts always give it"],
    ["character_stats.losses: default none -> 0", "like the other counters; the plan's inserts always give it"],
    ["character_stats.win_rate: default none -> 0", "001's default; the plan's inserts always give it"],
    [`character_stats.analyzed_at: type ${TS} -> ${TSTZ}`, "a point in time"],
    ["character_stats.analyzed_at: NULL -> NOT NULL", "has the plan's default"],
    // synergy_stats
    ["synergy_stats.id: default serial -> identity BY DEFAULT", "as match_participants.id"],
    ["synergy_stats.games_together: default none -> 0", "001's default; the plan's inserts always give it"],
    ["synergy_stats.wins_together: default none -> 0", "001's default; the plan's inserts always give it"],
    ["synergy_stats.win_rate: default none -> 0", "001's default; the plan's inserts always give it"],
    [`synergy_stats.analyzed_at: type ${TS} -> ${TSTZ}`, "a point in time"],
    ["synergy_stats.analyzed_at: NULL -> NOT NULL", "has the plan's default"],
    // collection_metadata
    [`collection_metadata.updated_at: type ${TS} -> ${TSTZ}`, "a point in time"],
    ["collection_metadata.updated_at: NULL -> NOT NULL", "has the plan's default"],
    [`collection_metadata.created_at: not in the plan (${TSTZ}, NOT NULL, default now())`, "ours (001), defaulted"],
    // schema_migrations (004)
    [`schema_migrations.applied_at: type ${TS} -> ${TSTZ}`, "a point in time"],
];

/** Plan indexes we do not create, each served by an index whose leading columns are the plan's. */
const SERVED_BY: Record<string, [index: string, reason: string]> = {
    idx_match_participants_match_id: [
        "match_participants_match_id_username_key",
        "the plan's own UNIQUE (match_id, username) starts with match_id",
    ],
    idx_match_participants_hero_name: ["idx_match_participants_hero_won", "(hero_name, won) starts with hero_name"],
    idx_matches_season: ["idx_matches_season_mode", "(season, mode) starts with season"],
    idx_character_stats_hero: ["character_stats_hero_rank_key", "UNIQUE (hero_name, rank_tier) starts with hero_name"],
};

/** Our indexes that the plan does not have (constraint indexes aside): name -> "table (columns)". */
const EXTRA_INDEXES: Record<string, [definition: string, reason: string]> = {
    idx_match_participants_role: ["match_participants (role)", "/api/heroes per role (002)"],
    idx_players_last_updated: ["players (last_updated)", "the collector's players to refresh next (002)"],
    idx_matches_season_mode: [
        "matches (season, mode)",
        "matches of a season and mode (002); serves idx_matches_season",
    ],
    idx_character_stats_rank_win_rate: ["character_stats (rank_tier, win_rate DESC)", "best heroes of a tier (002)"],
    idx_synergy_stats_rank_score: ["synergy_stats (rank_tier, synergy_score DESC)", "best pairs of a tier (002)"],
    idx_synergy_stats_hero_b: ["synergy_stats (hero_b)", "pairs of a hero named second (002)"],
};

/**
 * Our constraints that the plan does not have, as `table: definition`. None refuses a row written the way
 * the plan describes: they refuse empty names, negative counts, rates outside [0, 1] and impossible counts.
 */
const EXTRA_CONSTRAINTS: string[] = [
    "character_stats: CHECK (((confidence_interval_lower >= (0)::numeric) AND (confidence_interval_lower <= (1)::numeric)))",
    "character_stats: CHECK (((confidence_interval_upper >= (0)::numeric) AND (confidence_interval_upper <= (1)::numeric)))",
    "character_stats: CHECK (((win_rate >= (0)::numeric) AND (win_rate <= (1)::numeric)))",
    "character_stats: CHECK (((wins + losses) <= total_games))",
    "character_stats: CHECK ((hero_name <> ''::text))",
    "character_stats: CHECK ((losses >= 0))",
    "character_stats: CHECK ((rank_tier <> ''::text))",
    "character_stats: CHECK ((total_games >= 0))",
    "character_stats: CHECK ((wins <= total_games))",
    "character_stats: CHECK ((wins >= 0))",
    "collection_metadata: CHECK ((key <> ''::text))",
    "match_participants: CHECK ((assists >= 0))",
    "match_participants: CHECK ((damage >= (0)::numeric))",
    "match_participants: CHECK ((damage_taken >= 0))",
    "match_participants: CHECK ((deaths >= 0))",
    "match_participants: CHECK ((healing >= (0)::numeric))",
    "match_participants: CHECK ((hero_name <> ''::text))",
    "match_participants: CHECK ((kills >= 0))",
    "matches: CHECK ((duration_seconds >= 0))",
    "matches: CHECK ((match_id <> ''::text))",
    "matches: CHECK ((mode <> ''::text))",
    "matches: CHECK ((season >= 0))",
    "players: CHECK ((rank_score >= 0))",
    "players: CHECK ((rank_tier <> ''::text))",
    "players: CHECK ((username <> ''::text))",
    "synergy_stats: CHECK (((expected_win_rate >= (0)::numeric) AND (expected_win_rate <= (1)::numeric)))",
    "synergy_stats: CHECK (((statistical_significance >= (0)::numeric) AND (statistical_significance <= (1)::numeric)))",
    "synergy_stats: CHECK (((synergy_score >= ('-1'::integer)::numeric) AND (synergy_score <= (1)::numeric)))",
    "synergy_stats: CHECK (((win_rate >= (0)::numeric) AND (win_rate <= (1)::numeric)))",
    "synergy_stats: CHECK ((games_together >= 0))",
    "synergy_stats: CHECK ((hero_a <> ''::text))",
    "synergy_stats: CHECK ((hero_b <> ''::text))",
    "synergy_stats: CHECK ((rank_tier <> ''::text))",
    "synergy_stats: CHECK ((wins_together <= games_together))",
    "synergy_stats: CHECK ((wins_together >= 0))",
];

// ---------------------------------------------------------------------------------------------------------
// Reading a database's shape.

async function shapeOf(c: Client): Promise<Shape> {
    const cols = await rows(
        c,
        `SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, is_nullable, column_default,
                is_identity, identity_generation
           FROM information_schema.columns
          WHERE table_schema = 'public' AND NOT (table_name = ANY ($1))
          ORDER BY table_name, ordinal_position`,
        [NOT_COMPARED],
    );
    const shape: Shape = {};
    for (const r of cols) {
        const type = r.data_type === "numeric" ? `numeric(${r.numeric_precision},${r.numeric_scale})` : r.data_type;
        let dflt: string | null = r.column_default;
        if (r.is_identity === "YES") dflt = `identity ${r.identity_generation}`;
        else if (dflt?.startsWith("nextval(")) dflt = "serial";
        // DEFAULT CURRENT_TIMESTAMP and now() are the same function (the transaction's start).
        else if (dflt === "CURRENT_TIMESTAMP") dflt = "now()";
        (shape[r.table_name] ??= {})[r.column_name] = col(type, r.is_nullable === "YES", dflt);
    }
    return shape;
}

/** Every difference of `ours` from `plan`, one line each. */
function diffShapes(plan: Shape, ours: Shape): string[] {
    const out: string[] = [];
    const show = (c: Column) => `${c.type}, ${c.nullable ? "NULL" : "NOT NULL"}, default ${c.default ?? "none"}`;
    for (const table of new Set([...Object.keys(plan), ...Object.keys(ours)])) {
        if (!ours[table]) {
            out.push(`${table}: table missing`);
            continue;
        }
        if (!plan[table]) {
            out.push(`${table}: table not in the plan`);
            continue;
        }
        for (const name of new Set([...Object.keys(plan[table]), ...Object.keys(ours[table])])) {
            const p = plan[table][name];
            const o = ours[table][name];
            const where = `${table}.${name}`;
            if (!o) out.push(`${where}: missing`);
            else if (!p) out.push(`${where}: not in the plan (${show(o)})`);
            else {
                if (p.type !== o.type) out.push(`${where}: type ${p.type} -> ${o.type}`);
                if (p.nullable !== o.nullable)
                    out.push(`${where}: ${p.nullable ? "NULL" : "NOT NULL"} -> ${o.nullable ? "NULL" : "NOT NULL"}`);
                if (p.default !== o.default)
                    out.push(`${where}: default ${p.default ?? "none"} -> ${o.default ?? "none"}`);
            }
        }
    }
    return out;
}

/** Indexes as name -> "table (columns)", with whether a PRIMARY KEY or UNIQUE constraint owns them. */
async function indexesOf(c: Client): Promise<Map<string, { def: string; constraint: boolean }>> {
    const found = await rows(
        c,
        `SELECT i.indexname, i.indexdef,
                EXISTS (SELECT 1 FROM pg_constraint con
                         WHERE con.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass
                           AND con.contype IN ('p', 'u')) AS owned
           FROM pg_indexes i
          WHERE i.schemaname = 'public' AND NOT (i.tablename = ANY ($1))
          ORDER BY 1`,
        [NOT_COMPARED],
    );
    const out = new Map<string, { def: string; constraint: boolean }>();
    for (const r of found) {
        const m = /^CREATE (?:UNIQUE )?INDEX \S+ ON public\.(\w+) USING btree \((.*)\)(?: NULLS NOT DISTINCT)?$/.exec(
            r.indexdef,
        );
        if (!m) throw new Error(`unexpected index definition: ${r.indexdef}`);
        out.set(r.indexname, { def: `${m[1]} (${m[2]})`, constraint: r.owned });
    }
    return out;
}

async function constraintsOf(c: Client): Promise<string[]> {
    const found = await rows(
        c,
        `SELECT conrelid::regclass::text || ': ' || pg_get_constraintdef(oid) AS c FROM pg_constraint
          WHERE connamespace = 'public'::regnamespace AND NOT (conrelid::regclass::text = ANY ($1))
          ORDER BY 1`,
        [NOT_COMPARED],
    );
    return found.map((r) => r.c);
}

// ---------------------------------------------------------------------------------------------------------

describe("the schema after every migration, against the seed plan", () => {
    it("takes the plan's own rows, and its upserts written against the valid unique constraints", async () => {
        const url = await database("plan_rows");
        await withClient(url, async (c) => {
            // Written the way the plan's DDL describes rows: its names, its optional columns omitted or NULL,
            // seasons as integers, DECIMAL damage, TIMESTAMP literals, no match_participants.id.
            await c.query(`INSERT INTO players (username, rank_tier, rank_score) VALUES ('alice', 'Gold', 1200)`);
            await c.query(`INSERT INTO players (username) VALUES ('bob')`);
            // The plan's own version rows, as its 001 and 002 write them (004 wrote them already: no-ops).
            for (const [version, description] of [
                [1, "Initial schema with players, matches, stats tables"],
                [2, "Add performance indexes for queries"],
            ]) {
                await c.query(
                    `INSERT INTO schema_migrations (version, description) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING`,
                    [version, description],
                );
            }
            expect((await c.query(`SELECT version, description FROM schema_migrations ORDER BY version`)).rows).toEqual(
                [
                    { version: 1, description: "Initial schema with players, matches, stats tables" },
                    { version: 2, description: "Add performance indexes for queries" },
                ],
            );
            await c.query(
                `INSERT INTO players (username, rank_tier, rank_score, last_updated, match_history_fetched)
                 VALUES ('carol', NULL, NULL, CURRENT_TIMESTAMP, TRUE)`,
            );
            await c.query(
                `INSERT INTO matches (match_id, mode, season, match_timestamp) VALUES ('m1', 'competitive', 3, '2025-10-15 18:30:00')`,
            );
            await c.query(
                `INSERT INTO matches (match_id, mode, season, match_timestamp) VALUES ('m2', NULL, NULL, NULL)`,
            );
            const p1 = await rows(
                c,
                `INSERT INTO match_participants
                     (match_id, username, hero_id, hero_name, role, team, won, kills, deaths, assists, damage, healing)
                 VALUES ('m1', 'alice', 1011, 'Hulk', 'vanguard', 0, TRUE, 12, 3, 7, 12345.67, 0.5),
                        ('m1', 'carol', 1014, 'Storm', 'duelist', 1, FALSE, 8, 6, 2, 23456.78, 0)
                 RETURNING id`,
            );
            const p2 = await rows(
                c,
                `INSERT INTO match_participants (match_id, username, hero_name, role, team, won)
                 VALUES ('m2', 'bob', 'Luna Snow', NULL, NULL, FALSE) RETURNING id`,
            );
            expect([...p1, ...p2].map((r) => r.id)).toEqual([1, 2, 3]);
            await c.query(
                `INSERT INTO character_stats
                     (hero_name, rank_tier, total_games, wins, losses, win_rate, confidence_interval_lower, confidence_interval_upper)
                 VALUES ('Hulk', NULL, 100, 55, 45, 0.55, 0.4524, 0.6438), ('Hulk', 'Gold', 10, 6, 4, 0.6, NULL, NULL)`,
            );
            await c.query(
                `INSERT INTO synergy_stats
                     (hero_a, hero_b, rank_tier, games_together, wins_together, win_rate, expected_win_rate, synergy_score,
                      statistical_significance)
                 VALUES ('Hulk', 'Storm', NULL, 40, 26, 0.65, 0.52, 0.13, 0.0312)`,
            );
            await c.query(`INSERT INTO collection_metadata (key, value) VALUES ('collector_cursor', NULL)`);
            await c.query(
                `UPDATE collection_metadata SET value = '2025-10-15T18:30:00Z', updated_at = CURRENT_TIMESTAMP
                  WHERE key = 'last_collection_run'`,
            );

            // The plan's upserts. Its UNIQUE (..., COALESCE(rank_tier, '')) is not valid SQL; the valid
            // UNIQUE NULLS NOT DISTINCT lets ON CONFLICT name the columns, a NULL tier ("all ranks") included.
            const heroUpsert = `INSERT INTO character_stats
                    (hero_name, rank_tier, total_games, wins, losses, win_rate, confidence_interval_lower, confidence_interval_upper)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (hero_name, rank_tier) DO UPDATE SET
                    total_games = EXCLUDED.total_games, wins = EXCLUDED.wins, losses = EXCLUDED.losses,
                    win_rate = EXCLUDED.win_rate, confidence_interval_lower = EXCLUDED.confidence_interval_lower,
                    confidence_interval_upper = EXCLUDED.confidence_interval_upper, analyzed_at = CURRENT_TIMESTAMP`;
            await c.query(heroUpsert, ["Hulk", null, 120, 70, 50, 0.5833, 0.4939, 0.6679]);
            await c.query(heroUpsert, ["Hulk", "Gold", 12, 7, 5, 0.5833, null, null]);
            await c.query(heroUpsert, ["Storm", null, 30, 12, 18, 0.4, 0.2459, 0.5768]);
            const pairUpsert = `INSERT INTO synergy_stats
                    (hero_a, hero_b, rank_tier, games_together, wins_together, win_rate, expected_win_rate, synergy_score,
                     statistical_significance)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (hero_a, hero_b, rank_tier) DO UPDATE SET
                    games_together = EXCLUDED.games_together, wins_together = EXCLUDED.wins_together,
                    win_rate = EXCLUDED.win_rate, expected_win_rate = EXCLUDED.expected_win_rate,
                    synergy_score = EXCLUDED.synergy_score, statistical_significance = EXCLUDED.statistical_significance,
                    analyzed_at = CURRENT_TIMESTAMP`;
            await c.query(pairUpsert, ["Hulk", "Storm", null, 50, 31, 0.62, 0.52, 0.1, 0.0457]);
            await c.query(pairUpsert, ["Hulk", "Storm", "Gold", 5, 2, 0.4, 0.5, -0.1, 0.6]);
            // SERIAL accepts an explicit id, and so does the identity column BY DEFAULT.
            await c.query(
                `INSERT INTO character_stats (id, hero_name, rank_tier, total_games, wins, losses, win_rate)
                 VALUES (100, 'Magneto', NULL, 0, 0, 0, 0)`,
            );

            expect(
                await rows(
                    c,
                    `SELECT username, rank_tier, rank_score, match_history_fetched, last_updated IS NULL AS never_updated,
                            discovered_at IS NOT NULL AS discovered FROM players ORDER BY 1`,
                ),
            ).toEqual([
                {
                    username: "alice",
                    rank_tier: "Gold",
                    rank_score: 1200,
                    match_history_fetched: false,
                    never_updated: true,
                    discovered: true,
                },
                {
                    username: "bob",
                    rank_tier: null,
                    rank_score: null,
                    match_history_fetched: false,
                    never_updated: true,
                    discovered: true,
                },
                {
                    username: "carol",
                    rank_tier: null,
                    rank_score: null,
                    match_history_fetched: true,
                    never_updated: false,
                    discovered: true,
                },
            ]);
            expect(
                await rows(
                    c,
                    `SELECT match_id, mode, season, match_timestamp IS NULL AS no_time, created_at IS NOT NULL AS created
                       FROM matches ORDER BY 1`,
                ),
            ).toEqual([
                { match_id: "m1", mode: "competitive", season: 3, no_time: false, created: true },
                { match_id: "m2", mode: null, season: null, no_time: true, created: true },
            ]);
            expect(
                await rows(
                    c,
                    `SELECT id, match_id, username, hero_id, hero_name, role, team, won, kills, deaths, assists, damage, healing
                       FROM match_participants ORDER BY id`,
                ),
            ).toEqual([
                {
                    id: 1,
                    match_id: "m1",
                    username: "alice",
                    hero_id: 1011,
                    hero_name: "Hulk",
                    role: "vanguard",
                    team: 0,
                    won: true,
                    kills: 12,
                    deaths: 3,
                    assists: 7,
                    damage: "12345.67",
                    healing: "0.50",
                },
                {
                    id: 2,
                    match_id: "m1",
                    username: "carol",
                    hero_id: 1014,
                    hero_name: "Storm",
                    role: "duelist",
                    team: 1,
                    won: false,
                    kills: 8,
                    deaths: 6,
                    assists: 2,
                    damage: "23456.78",
                    healing: "0.00",
                },
                {
                    id: 3,
                    match_id: "m2",
                    username: "bob",
                    hero_id: null,
                    hero_name: "Luna Snow",
                    role: null,
                    team: null,
                    won: false,
                    kills: 0,
                    deaths: 0,
                    assists: 0,
                    damage: "0.00",
                    healing: "0.00",
                },
            ]);
            expect(
                await rows(
                    c,
                    `SELECT id, hero_name, rank_tier, total_games, wins, losses, win_rate, confidence_interval_lower,
                            confidence_interval_upper
                       FROM character_stats ORDER BY hero_name, rank_tier NULLS FIRST`,
                ),
            ).toEqual([
                {
                    id: 1,
                    hero_name: "Hulk",
                    rank_tier: null,
                    total_games: 120,
                    wins: 70,
                    losses: 50,
                    win_rate: "0.5833",
                    confidence_interval_lower: "0.4939",
                    confidence_interval_upper: "0.6679",
                },
                {
                    id: 2,
                    hero_name: "Hulk",
                    rank_tier: "Gold",
                    total_games: 12,
                    wins: 7,
                    losses: 5,
                    win_rate: "0.5833",
                    confidence_interval_lower: null,
                    confidence_interval_upper: null,
                },
                {
                    id: 100,
                    hero_name: "Magneto",
                    rank_tier: null,
                    total_games: 0,
                    wins: 0,
                    losses: 0,
                    win_rate: "0.0000",
                    confidence_interval_lower: null,
                    confidence_interval_upper: null,
                },
                {
                    // The upserts that updated consumed ids 3 and 4 (ON CONFLICT draws the default first).
                    id: 5,
                    hero_name: "Storm",
                    rank_tier: null,
                    total_games: 30,
                    wins: 12,
                    losses: 18,
                    win_rate: "0.4000",
                    confidence_interval_lower: "0.2459",
                    confidence_interval_upper: "0.5768",
                },
            ]);
            expect(
                await rows(
                    c,
                    `SELECT hero_a, hero_b, rank_tier, games_together, wins_together, win_rate, expected_win_rate,
                            synergy_score, statistical_significance
                       FROM synergy_stats ORDER BY rank_tier NULLS FIRST`,
                ),
            ).toEqual([
                {
                    hero_a: "Hulk",
                    hero_b: "Storm",
                    rank_tier: null,
                    games_together: 50,
                    wins_together: 31,
                    win_rate: "0.6200",
                    expected_win_rate: "0.5200",
                    synergy_score: "0.1000",
                    statistical_significance: "0.0457",
                },
                {
                    hero_a: "Hulk",
                    hero_b: "Storm",
                    rank_tier: "Gold",
                    games_together: 5,
                    wins_together: 2,
                    win_rate: "0.4000",
                    expected_win_rate: "0.5000",
                    synergy_score: "-0.1000",
                    statistical_significance: "0.6000",
                },
            ]);
            expect(await rows(c, `SELECT key, value FROM collection_metadata ORDER BY key`)).toEqual([
                { key: "collector_cursor", value: null },
                { key: "last_collection_run", value: "2025-10-15T18:30:00Z" },
                { key: "schema_version", value: "2" },
                { key: "total_matches_collected", value: "0" },
                { key: "total_players_discovered", value: "0" },
            ]);
        });
    });

    it("the plan's COALESCE unique is not valid SQL, hence UNIQUE NULLS NOT DISTINCT", async () => {
        const url = await pg.createDatabase("plan_coalesce");
        const err = await withClient(url, (c) =>
            rejection(
                c.query(`CREATE TABLE character_stats (hero_name TEXT NOT NULL, rank_tier TEXT,
                         UNIQUE(hero_name, COALESCE(rank_tier, '')))`),
            ),
        );
        expect([err.code, err.message]).toEqual(["42601", 'syntax error at or near "("']);
    });

    it("reads the plan's DDL as the table in this file says", async () => {
        const url = await pg.createDatabase("plan_ddl");
        const shape = await withClient(url, async (c) => {
            await c.query(PLAN_DDL);
            return shapeOf(c);
        });
        expect(shape).toEqual(PLAN);
        const indexes = await withClient(url, indexesOf);
        expect(
            Object.fromEntries([...indexes].filter(([, i]) => !i.constraint).map(([name, i]) => [name, i.def])),
        ).toEqual(PLAN_INDEXES);
    });

    it("has the plan's columns, types, nullability and defaults, but for the differences listed here", async () => {
        const url = await database("plan_columns");
        const ours = await withClient(url, shapeOf);
        expect(diffShapes(PLAN, ours)).toEqual(COLUMN_DIFFERENCES.map(([d]) => d));
    });

    it("has every index of the plan, under its name or served by the index named here, and only the extras named here", async () => {
        const url = await database("plan_indexes");
        const ours = await withClient(url, indexesOf);
        for (const [name, def] of Object.entries(PLAN_INDEXES)) {
            const served = SERVED_BY[name];
            if (served) {
                expect(ours.has(name), `${name} is served by ${served[0]}, not created`).toBe(false);
                const by = ours.get(served[0]);
                const [table, columns] = /^(\w+) \((.*)\)$/.exec(def)!.slice(1);
                expect(by?.def, `${name}: ${served[0]} on ${table}, leading with ${columns}`).toMatch(
                    new RegExp(`^${table} \\(${columns}(, .*)?\\)$`),
                );
            } else {
                expect(ours.get(name)?.def, name).toBe(def);
            }
        }
        const extras = [...ours].filter(([name, i]) => !i.constraint && !(name in PLAN_INDEXES));
        expect(Object.fromEntries(extras.map(([name, i]) => [name, i.def]))).toEqual(
            Object.fromEntries(Object.entries(EXTRA_INDEXES).map(([name, [def]]) => [name, def])),
        );
        const extension = await withClient(url, (c) =>
            rows(c, `SELECT extname FROM pg_extension WHERE extname = 'uuid-ossp'`),
        );
        expect(extension).toEqual([{ extname: "uuid-ossp" }]);
    });

    it("has the plan's constraints (its COALESCE uniques as UNIQUE NULLS NOT DISTINCT) and only the extra CHECKs listed here", async () => {
        const planUrl = await pg.createDatabase("plan_constraints");
        const plan = await withClient(planUrl, async (c) => {
            await c.query(PLAN_DDL);
            return constraintsOf(c);
        });
        const ours = await withClient(await database("our_constraints"), constraintsOf);
        expect(plan.filter((x) => !ours.includes(x))).toEqual([]);
        expect(ours.filter((x) => !plan.includes(x)).sort()).toEqual([...EXTRA_CONSTRAINTS].sort());
        // The ones the plan's programs rely on, spelled out.
        expect(plan).toEqual(
            expect.arrayContaining([
                "match_participants: PRIMARY KEY (id)",
                "match_participants: UNIQUE (match_id, username)",
                "match_participants: FOREIGN KEY (match_id) REFERENCES matches(match_id) ON DELETE CASCADE",
                "match_participants: FOREIGN KEY (username) REFERENCES players(username) ON DELETE CASCADE",
                "character_stats: UNIQUE NULLS NOT DISTINCT (hero_name, rank_tier)",
                "synergy_stats: UNIQUE NULLS NOT DISTINCT (hero_a, hero_b, rank_tier)",
                "synergy_stats: CHECK ((hero_a < hero_b))",
            ]),
        );
    });

    it("holds the plan's initial collection_metadata rows as its 001 and 002 leave them", async () => {
        const planUrl = await pg.createDatabase("plan_metadata");
        const read = (c: Client) => rows(c, `SELECT key, value FROM collection_metadata ORDER BY key`);
        const plan = await withClient(planUrl, async (c) => {
            await c.query(PLAN_DDL);
            return read(c);
        });
        expect(plan).toEqual([
            { key: "last_collection_run", value: null },
            { key: "schema_version", value: "2" },
            { key: "total_matches_collected", value: "0" },
            { key: "total_players_discovered", value: "0" },
        ]);
        expect(await withClient(await database("our_metadata"), read)).toEqual(plan);
    });
});

// ---------------------------------------------------------------------------------------------------------

/** Every row of every table, in a fixed order, for before/after comparisons. */
async function allRows(url: string): Promise<Record<string, Record<string, unknown>[]>> {
    const order: Record<(typeof TABLES)[number], string> = {
        players: "username",
        matches: "match_id",
        match_participants: "match_id, username",
        character_stats: "hero_name, rank_tier NULLS FIRST",
        synergy_stats: "hero_a, hero_b, rank_tier NULLS FIRST",
        collection_metadata: "key",
    };
    return withClient(url, async (c) => {
        const out: Record<string, Record<string, unknown>[]> = {};
        for (const t of TABLES) out[t] = await rows(c, `SELECT * FROM ${t} ORDER BY ${order[t]}`);
        return out;
    });
}

/** Rows in every table, written under 001 + 002 with their column names. */
async function writeOldRows(c: Client): Promise<void> {
    await c.query(
        `INSERT INTO players (username, rank_tier, rank_score, match_history_fetched, discovered_at, last_updated) VALUES
         ('alice', 'Gold', 1200, TRUE, '2025-01-01T00:00:00Z', '2025-01-05T00:00:00Z'),
         ('bob', NULL, NULL, FALSE, '2025-01-02T00:00:00Z', '2025-01-02T00:00:00Z')`,
    );
    await c.query(
        `INSERT INTO matches (match_id, mode, season, match_timestamp, duration_seconds, map_name, collected_at) VALUES
         ('m1', 'competitive', '1', '2025-01-03T10:00:00Z', 900, 'Tokyo 2099: Shin-Shibuya', '2025-01-03T11:00:00Z'),
         ('m2', 'quick', '12', '2025-01-04T10:00:00Z', 600, NULL, '2025-01-04T11:00:00Z'),
         ('m3', 'competitive', '0', '2025-01-05T10:00:00Z', 0, NULL, '2025-01-05T11:00:00Z')`,
    );
    await c.query(
        `INSERT INTO match_participants
             (match_id, username, hero_name, role, team, won, kills, deaths, assists, damage, healing, damage_taken) VALUES
         ('m1', 'alice', 'Hulk', 'vanguard', 0, TRUE, 3, 2, 9, 12345, 0, 25000),
         ('m1', 'bob', 'Storm', 'duelist', 1, FALSE, 7, 5, 1, 9999999999, 10, 3000),
         ('m2', 'alice', 'Luna Snow', 'strategist', 1, TRUE, 0, 1, 15, 2000, 18000, 4000)`,
    );
    await c.query(
        `INSERT INTO character_stats (hero_name, rank_tier, games, wins, win_rate, ci_lower, ci_upper, analyzed_at) VALUES
         ('Hulk', NULL, 10, 6, 0.6, 0.3127, 0.8318, '2025-01-06T00:00:00Z'),
         ('Hulk', 'Gold', 4, 4, 1, NULL, NULL, '2025-01-06T00:00:00Z'),
         ('Storm', NULL, 0, 0, 0, NULL, NULL, '2025-01-06T00:00:00Z')`,
    );
    await c.query(
        `INSERT INTO synergy_stats (hero_a, hero_b, rank_tier, games, wins, win_rate, expected_win_rate, synergy_score, analyzed_at) VALUES
         ('Hulk', 'Storm', NULL, 5, 3, 0.6, 0.5, 0.1, '2025-01-06T00:00:00Z'),
         ('Hulk', 'Luna Snow', 'Gold', 4, 0, 0, 0.25, -0.25, '2025-01-06T00:00:00Z'),
         ('Luna Snow', 'Storm', NULL, 1, 1, 1, NULL, NULL, '2025-01-06T00:00:00Z')`,
    );
    // total_matches_collected is one of the plan's initial keys: 003 must keep this value.
    await c.query(
        `INSERT INTO collection_metadata (key, value, created_at, updated_at) VALUES
         ('collector_cursor', 'page-7', '2025-01-06T00:00:00Z', '2025-01-06T01:00:00Z'),
         ('total_matches_collected', '3', '2025-01-06T00:00:00Z', '2025-01-06T01:00:00Z')`,
    );
}

const without = <T extends Record<string, unknown>>(row: T, ...keys: string[]) =>
    Object.fromEntries(Object.entries(row).filter(([k]) => !keys.includes(k)));

describe("upgrading a database that has rows, from 001 + 002 through 003", () => {
    it("carries every row and value over to the plan's names and types; down brings back the database before", async () => {
        const url = await database("upgrade", "002_add_indexes");
        await withClient(url, writeOldRows);
        const catalogBefore = await snapshot(url);
        const before = await allRows(url);

        const r = await up({ databaseUrl: url, migrationsDir: SEED_DIR, to: "003_seed_plan_schema" });
        expect(r.applied.map((m) => m.name)).toEqual(["003_seed_plan_schema"]);
        const after = await allRows(url);

        expect(after.players).toEqual(before.players);
        expect(after.matches).toEqual(
            before.matches!.map((m) => ({
                ...without(m, "collected_at", "season"),
                season: Number(m.season),
                created_at: m.collected_at,
            })),
        );
        expect(after.matches!.map((m) => m.season)).toEqual([1, 12, 0]);
        // Every participation numbered, each once; damage and healing the same numbers as DECIMAL(12, 2).
        expect(after.match_participants!.map((p) => p.id).sort()).toEqual([1, 2, 3]);
        expect(after.match_participants!.map((p) => without(p, "id"))).toEqual(
            before.match_participants!.map((p) => ({
                ...p,
                damage: `${String(p.damage)}.00`,
                healing: `${String(p.healing)}.00`,
                hero_id: null,
            })),
        );
        expect(after.match_participants!.map((p) => p.damage)).toEqual(["12345.00", "9999999999.00", "2000.00"]);
        expect(after.character_stats).toEqual(
            before.character_stats!.map((s) => ({
                ...without(s, "games", "ci_lower", "ci_upper"),
                id: Number(s.id),
                total_games: s.games,
                losses: (s.games as number) - (s.wins as number),
                confidence_interval_lower: s.ci_lower,
                confidence_interval_upper: s.ci_upper,
            })),
        );
        expect(after.character_stats!.map((s) => s.losses)).toEqual([4, 0, 0]);
        expect(after.synergy_stats).toEqual(
            before.synergy_stats!.map((s) => ({
                ...without(s, "games", "wins"),
                id: Number(s.id),
                games_together: s.games,
                wins_together: s.wins,
                statistical_significance: null,
            })),
        );
        // The rows that were there, as they were; the plan's initial rows added, an existing key kept.
        const metadata = new Map(after.collection_metadata!.map((m) => [m.key, m]));
        for (const m of before.collection_metadata!) expect(metadata.get(m.key)).toEqual(m);
        expect(after.collection_metadata!.map((m) => [m.key, m.value])).toEqual([
            ["collector_cursor", "page-7"],
            ["last_collection_run", null],
            ["schema_version", "2"],
            ["total_matches_collected", "3"],
            ["total_players_discovered", "0"],
        ]);

        // New rows continue the numbering of the old ones.
        await withClient(url, async (c) => {
            await c.query("BEGIN");
            try {
                const [stat] = await rows(
                    c,
                    `INSERT INTO character_stats (hero_name, total_games, wins, losses, win_rate)
                     VALUES ('Magneto', 1, 1, 0, 1) RETURNING id`,
                );
                expect(stat!.id).toBe(Math.max(...before.character_stats!.map((s) => Number(s.id))) + 1);
                const [part] = await rows(
                    c,
                    `INSERT INTO match_participants (match_id, username, hero_name, won) VALUES ('m3', 'bob', 'Groot', TRUE)
                     RETURNING id`,
                );
                expect(part!.id).toBe(4);
            } finally {
                await c.query("ROLLBACK");
            }
        });

        const back = await down({ databaseUrl: url, migrationsDir: SEED_DIR, to: "003_seed_plan_schema" });
        expect(back.reverted.map((m) => m.name)).toEqual(["003_seed_plan_schema"]);
        expect(await snapshot(url)).toEqual(catalogBefore);
        expect(await allRows(url)).toEqual(before);
        const identity = await withClient(url, (c) =>
            rows(
                c,
                `SELECT table_name, data_type, identity_generation FROM information_schema.columns
                  WHERE table_schema = 'public' AND column_name = 'id' ORDER BY 1`,
            ),
        );
        expect(identity).toEqual([
            { table_name: "character_stats", data_type: "bigint", identity_generation: "ALWAYS" },
            { table_name: "synergy_stats", data_type: "bigint", identity_generation: "ALWAYS" },
        ]);
    });

    it("refuses a season that is not a whole number, naming the match, and changes nothing", async () => {
        const url = await database("upgrade_season", "002_add_indexes");
        await withClient(url, async (c) => {
            await writeOldRows(c);
            await c.query(
                `INSERT INTO matches (match_id, mode, season, match_timestamp, duration_seconds) VALUES
                 ('m4', 'competitive', '2.5', now(), 600), ('m5', 'quick', 'S1', now(), 600)`,
            );
        });
        const catalog = await snapshot(url);
        const data = await allRows(url);
        const err = await rejection(up({ databaseUrl: url, migrationsDir: SEED_DIR }));
        expect(err.message).toContain(
            "003_seed_plan_schema: matches.season becomes INTEGER, but 2 match(es) have a season that is not a whole number: m4 (season '2.5'), m5 (season 'S1')",
        );
        expect(await historyNames(url)).toEqual(["001_initial_schema", "002_add_indexes"]);
        expect(await snapshot(url)).toEqual(catalog);
        expect(await allRows(url)).toEqual(data);
    });

    it("down refuses NULLs that 001 cannot hold, and loses only what its header says", async () => {
        const url = await database("downgrade");
        await withClient(url, async (c) => {
            await c.query(`INSERT INTO players (username) VALUES ('alice')`);
            await c.query(`INSERT INTO matches (match_id) VALUES ('m1')`);
            await c.query(
                `INSERT INTO match_participants (match_id, username, hero_id, hero_name, won, damage, healing)
                 VALUES ('m1', 'alice', 1011, 'Hulk', TRUE, 12345.67, 0.5)`,
            );
            await c.query(
                `INSERT INTO synergy_stats (hero_a, hero_b, games_together, wins_together, win_rate, statistical_significance)
                 VALUES ('Hulk', 'Storm', 2, 1, 0.5, 0.5)`,
            );
            await c.query(
                `UPDATE collection_metadata SET value = '1' WHERE key = 'total_players_discovered';
                 INSERT INTO collection_metadata (key, value) VALUES ('collector_cursor', NULL), ('kept', 'x')`,
            );
        });
        const err = await rejection(down({ databaseUrl: url, migrationsDir: SEED_DIR, to: "003_seed_plan_schema" }));
        expect(err.message).toContain(
            "003_seed_plan_schema.down: these columns hold NULLs that 001 does not allow: matches.mode: 1 row(s), matches.season: 1 row(s), matches.match_timestamp: 1 row(s), matches.duration_seconds: 1 row(s), match_participants.role: 1 row(s), match_participants.team: 1 row(s)",
        );
        expect(await historyNames(url)).toContain("003_seed_plan_schema");

        await withClient(url, async (c) => {
            await c.query(
                `UPDATE matches SET mode = 'quick', season = 4, match_timestamp = now(), duration_seconds = 60;
                 UPDATE match_participants SET role = 'vanguard', team = 0`,
            );
        });
        await down({ databaseUrl: url, migrationsDir: SEED_DIR, to: "003_seed_plan_schema" });
        await withClient(url, async (c) => {
            expect(
                await rows(c, `SELECT username, last_updated = discovered_at AS refreshed_at_discovery FROM players`),
            ).toEqual([{ username: "alice", refreshed_at_discovery: true }]);
            expect(await rows(c, `SELECT match_id, season FROM matches`)).toEqual([{ match_id: "m1", season: "4" }]);
            // id and hero_id are gone with their values; damage and healing rounded.
            expect(await rows(c, `SELECT * FROM match_participants`)).toEqual([
                {
                    match_id: "m1",
                    username: "alice",
                    hero_name: "Hulk",
                    role: "vanguard",
                    team: 0,
                    won: true,
                    kills: 0,
                    deaths: 0,
                    assists: 0,
                    damage: "12346",
                    healing: "1",
                    damage_taken: "0",
                },
            ]);
            expect(await rows(c, `SELECT games, wins FROM synergy_stats`)).toEqual([{ games: 2, wins: 1 }]);
            expect(await rows(c, `SELECT key, value FROM collection_metadata ORDER BY key`)).toEqual([
                { key: "kept", value: "x" },
                { key: "total_players_discovered", value: "1" },
            ]);
        });
        // And 003 applies again on top.
        expect(
            (await up({ databaseUrl: url, migrationsDir: SEED_DIR, to: "003_seed_plan_schema" })).applied.map(
                (m) => m.name,
            ),
        ).toEqual(["003_seed_plan_schema"]);
    });
});
