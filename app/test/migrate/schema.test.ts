// The seed schema (migrations/001, 002, 003) on a real PostgreSQL 16: every table, index, CHECK and foreign
// key, the cascades, and the columns the app's queries rely on. How it compares with the seed plan, and
// the upgrade of a database that has rows: plan.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client } from "pg";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { down, up } from "../../src/migrate";
import { SEED_DIR, rejection, withClient } from "./helpers";

let pg: TestPostgres;
let url: string;

beforeAll(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase("seed");
    const r = await up({ databaseUrl: url, migrationsDir: SEED_DIR });
    expect(r.applied.map((m) => m.name)).toEqual([
        "001_initial_schema",
        "002_add_indexes",
        "003_seed_plan_schema",
        "004_plan_schema_migrations",
    ]);
});

afterAll(async () => {
    await pg?.cleanup();
});

const rows = async (c: Client, sql: string, params: unknown[] = []) => (await c.query(sql, params)).rows;

async function seed(c: Client): Promise<void> {
    await c.query(
        `INSERT INTO players (username, rank_tier, rank_score) VALUES ('alice', 'gold', 1200), ('bob', 'diamond', 3000)`,
    );
    await c.query(
        `INSERT INTO matches (match_id, mode, season, match_timestamp, duration_seconds) VALUES
         ('m1', 'competitive', 1, '2025-01-01T10:00:00Z', 900), ('m2', 'competitive', 1, '2025-01-02T10:00:00Z', 600)`,
    );
    await c.query(
        `INSERT INTO match_participants (match_id, username, hero_name, role, team, won) VALUES
         ('m1', 'alice', 'Hulk', 'vanguard', 0, TRUE), ('m1', 'bob', 'Storm', 'duelist', 1, FALSE),
         ('m2', 'alice', 'Hulk', 'vanguard', 1, FALSE), ('m2', 'bob', 'Luna Snow', 'strategist', 0, TRUE)`,
    );
}

/** Runs `sql` in a transaction that is always rolled back, returning the error it raised. */
async function violation(sql: string): Promise<{ code: string; constraint: string }> {
    return withClient(url, async (c) => {
        await c.query("BEGIN");
        try {
            await seed(c);
            const err = await rejection(c.query(sql));
            return { code: String(err.code), constraint: String(err.constraint) };
        } finally {
            await c.query("ROLLBACK");
        }
    });
}

describe("the seed schema", () => {
    it("has exactly the seven tables of the plan in public (the runner's history is elsewhere)", async () => {
        const tables = await withClient(url, (c) =>
            rows(c, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`),
        );
        expect(tables.map((t) => t.table_name)).toEqual([
            "character_stats",
            "collection_metadata",
            "match_participants",
            "matches",
            "players",
            "schema_migrations",
            "synergy_stats",
        ]);
    });

    it("keeps the columns the app's queries use", async () => {
        const cols = await withClient(url, (c) =>
            rows(
                c,
                `SELECT table_name || '.' || column_name AS col, data_type FROM information_schema.columns
                  WHERE table_schema = 'public' AND (table_name, column_name) IN
                  (('players','username'), ('players','rank_tier'), ('matches','match_id'), ('match_participants','match_id'),
                   ('match_participants','username'), ('match_participants','hero_name'), ('match_participants','won'))
                  ORDER BY 1`,
            ),
        );
        expect(cols).toEqual([
            { col: "match_participants.hero_name", data_type: "text" },
            { col: "match_participants.match_id", data_type: "text" },
            { col: "match_participants.username", data_type: "text" },
            { col: "match_participants.won", data_type: "boolean" },
            { col: "matches.match_id", data_type: "text" },
            { col: "players.rank_tier", data_type: "text" },
            { col: "players.username", data_type: "text" },
        ]);
        // The shape of the app's /api/heroes?rank= query.
        const heroes = await withClient(url, async (c) => {
            await c.query("BEGIN");
            try {
                await seed(c);
                return await rows(
                    c,
                    `SELECT mp.hero_name, count(*)::int AS games, avg(mp.won::int)::float AS win_rate
                       FROM match_participants mp JOIN players p ON p.username = mp.username
                      WHERE p.rank_tier = $1 GROUP BY mp.hero_name ORDER BY 1`,
                    ["gold"],
                );
            } finally {
                await c.query("ROLLBACK");
            }
        });
        expect(heroes).toEqual([{ hero_name: "Hulk", games: 2, win_rate: 0.5 }]);
    });

    it("has every index of 002 and 003 and the unique constraints", async () => {
        const idx = await withClient(url, (c) =>
            rows(
                c,
                `SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY 1`,
            ),
        );
        expect(idx.map((i) => i.indexname)).toEqual([
            "character_stats_hero_rank_key",
            "character_stats_pkey",
            "collection_metadata_pkey",
            "idx_character_stats_analyzed",
            "idx_character_stats_rank_win_rate",
            "idx_match_participants_hero_won",
            "idx_match_participants_match_team",
            "idx_match_participants_role",
            "idx_match_participants_username",
            "idx_match_participants_won",
            "idx_matches_season_mode",
            "idx_matches_timestamp",
            "idx_players_fetched",
            "idx_players_last_updated",
            "idx_players_rank_tier",
            "idx_synergy_stats_hero_b",
            "idx_synergy_stats_rank_score",
            "match_participants_match_id_username_key",
            "match_participants_pkey",
            "matches_pkey",
            "players_pkey",
            "synergy_stats_pair_rank_key",
            "synergy_stats_pkey",
        ]);
    });

    it("has both foreign keys with ON DELETE CASCADE", async () => {
        const fks = await withClient(url, (c) =>
            rows(
                c,
                `SELECT conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS def FROM pg_constraint
                  WHERE contype = 'f' AND connamespace = 'public'::regnamespace ORDER BY 2`,
            ),
        );
        expect(fks).toEqual([
            { tbl: "match_participants", def: "FOREIGN KEY (match_id) REFERENCES matches(match_id) ON DELETE CASCADE" },
            { tbl: "match_participants", def: "FOREIGN KEY (username) REFERENCES players(username) ON DELETE CASCADE" },
        ]);
    });

    it("has the CHECKs of the plan", async () => {
        const checks = await withClient(url, (c) =>
            rows(
                c,
                `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
                  WHERE contype = 'c' AND connamespace = 'public'::regnamespace
                    AND conname IN ('match_participants_role_check', 'match_participants_team_check', 'synergy_stats_hero_order')
                  ORDER BY 1`,
            ),
        );
        expect(checks).toEqual([
            {
                conname: "match_participants_role_check",
                def: "CHECK ((role = ANY (ARRAY['vanguard'::text, 'duelist'::text, 'strategist'::text])))",
            },
            { conname: "match_participants_team_check", def: "CHECK ((team = ANY (ARRAY[0, 1])))" },
            { conname: "synergy_stats_hero_order", def: "CHECK ((hero_a < hero_b))" },
        ]);
    });

    it("rejects a bad role, a bad team and hero_a >= hero_b", async () => {
        const participant = (role: string, team: number) =>
            `INSERT INTO match_participants (match_id, username, hero_name, role, team, won) VALUES ('m2', 'bob2', 'Hulk', '${role}', ${team}, TRUE)`;
        const withBob2 = (sql: string) => `WITH p AS (INSERT INTO players (username) VALUES ('bob2')) ${sql}`;
        expect(await violation(withBob2(participant("healer", 0)))).toEqual({
            code: "23514",
            constraint: "match_participants_role_check",
        });
        expect(await violation(withBob2(participant("duelist", 2)))).toEqual({
            code: "23514",
            constraint: "match_participants_team_check",
        });
        for (const [a, b] of [
            ["Storm", "Hulk"],
            ["Hulk", "Hulk"],
        ]) {
            expect(await violation(`INSERT INTO synergy_stats (hero_a, hero_b) VALUES ('${a}', '${b}')`)).toEqual({
                code: "23514",
                constraint: "synergy_stats_hero_order",
            });
        }
        expect(
            await violation(`INSERT INTO character_stats (hero_name, total_games, wins) VALUES ('Hulk', 1, 2)`),
        ).toEqual({
            code: "23514",
            constraint: "character_stats_wins_le_total_games",
        });
        expect(
            await violation(
                `INSERT INTO character_stats (hero_name, total_games, wins, losses) VALUES ('Hulk', 3, 2, 2)`,
            ),
        ).toEqual({
            code: "23514",
            constraint: "character_stats_wins_losses_le_total_games",
        });
        expect(
            await violation(
                `INSERT INTO synergy_stats (hero_a, hero_b, games_together, wins_together) VALUES ('Hulk', 'Storm', 1, 2)`,
            ),
        ).toEqual({
            code: "23514",
            constraint: "synergy_stats_wins_together_le_games_together",
        });
        expect(
            await violation(
                `INSERT INTO synergy_stats (hero_a, hero_b, statistical_significance) VALUES ('Hulk', 'Storm', 1.5)`,
            ),
        ).toEqual({
            code: "23514",
            constraint: "synergy_stats_statistical_significance_check",
        });
        expect(await violation(`INSERT INTO matches (match_id, season) VALUES ('m3', -1)`)).toEqual({
            code: "23514",
            constraint: "matches_season_check",
        });
        // And accepts the good ones (the ordered pair; a participant with a valid role and team).
        await withClient(url, async (c) => {
            await c.query("BEGIN");
            try {
                await seed(c);
                await c.query(`INSERT INTO synergy_stats (hero_a, hero_b) VALUES ('Hulk', 'Storm')`);
            } finally {
                await c.query("ROLLBACK");
            }
        });
    });

    it("keeps one character_stats row per hero and rank tier, a NULL tier being one 'all ranks' row", async () => {
        await withClient(url, async (c) => {
            await c.query("BEGIN");
            try {
                await c.query(
                    `INSERT INTO character_stats (hero_name, rank_tier) VALUES ('Hulk', NULL), ('Hulk', 'gold'), ('Storm', NULL)`,
                );
                const dup = await rejection(
                    c.query(`INSERT INTO character_stats (hero_name, rank_tier) VALUES ('Hulk', NULL)`),
                );
                expect([dup.code, dup.constraint]).toEqual(["23505", "character_stats_hero_rank_key"]);
            } finally {
                await c.query("ROLLBACK");
            }
        });
        // The upsert writers can use (what an expression index on COALESCE would not allow).
        await withClient(url, async (c) => {
            await c.query("BEGIN");
            try {
                const upsert = `INSERT INTO character_stats (hero_name, rank_tier, total_games, wins, losses, win_rate) VALUES ('Hulk', NULL, $1, $2, $3, $4)
                                ON CONFLICT (hero_name, rank_tier) DO UPDATE SET total_games = EXCLUDED.total_games, wins = EXCLUDED.wins,
                                    losses = EXCLUDED.losses, win_rate = EXCLUDED.win_rate`;
                await c.query(upsert, [2, 1, 1, 0.5]);
                await c.query(upsert, [4, 3, 1, 0.75]);
                expect(
                    await rows(c, `SELECT total_games, wins, losses FROM character_stats WHERE hero_name = 'Hulk'`),
                ).toEqual([{ total_games: 4, wins: 3, losses: 1 }]);
                const dupPair = await rejection(
                    c.query(`INSERT INTO synergy_stats (hero_a, hero_b) VALUES ('Hulk', 'Storm'), ('Hulk', 'Storm')`),
                );
                expect([dupPair.code, dupPair.constraint]).toEqual(["23505", "synergy_stats_pair_rank_key"]);
            } finally {
                await c.query("ROLLBACK");
            }
        });
    });

    it("cascades deletes of a match and of a player to their participations", async () => {
        await withClient(url, async (c) => {
            await c.query("BEGIN");
            try {
                await seed(c);
                await c.query(`DELETE FROM matches WHERE match_id = 'm1'`);
                expect(await rows(c, `SELECT match_id, username FROM match_participants ORDER BY 1, 2`)).toEqual([
                    { match_id: "m2", username: "alice" },
                    { match_id: "m2", username: "bob" },
                ]);
                await c.query(`DELETE FROM players WHERE username = 'bob'`);
                expect(await rows(c, `SELECT match_id, username FROM match_participants ORDER BY 1, 2`)).toEqual([
                    { match_id: "m2", username: "alice" },
                ]);
            } finally {
                await c.query("ROLLBACK");
            }
        });
    });

    it("reverts completely with its down files and applies again", async () => {
        const other = await pg.createDatabase("seed_down");
        await up({ databaseUrl: other, migrationsDir: SEED_DIR });
        const r = await down({ databaseUrl: other, migrationsDir: SEED_DIR, to: "0" });
        expect(r.reverted.map((m) => m.name)).toEqual([
            "004_plan_schema_migrations",
            "003_seed_plan_schema",
            "002_add_indexes",
            "001_initial_schema",
        ]);
        const left = await withClient(other, (c) =>
            rows(c, `SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1`),
        );
        // Nothing left in public: the runner's history lives in its own schema.
        expect(left.map((x) => x.relname)).toEqual([]);
        expect((await up({ databaseUrl: other, migrationsDir: SEED_DIR })).applied).toHaveLength(4);
    });
});
