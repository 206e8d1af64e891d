-- 003_seed_plan_schema: the tables' names and types back to the seed plan's (SPEC-004, "Database Schema",
-- files 001 and 002). Those names and types are a data contract: the collectors and analyzers are written
-- against the plan, and 001/002 had drifted from it (renamed, dropped and retyped columns, required columns
-- the plan leaves optional, two missing indexes, no initial collection_metadata rows). This file brings a
-- database with 001 and 002 applied, rows included, to the plan's shape; every row stays.
--
-- What we keep beyond the plan, each because a row written the way the plan describes still inserts:
--   * UNIQUE NULLS NOT DISTINCT instead of the plan's UNIQUE (..., COALESCE(rank_tier, '')), which is
--     not valid SQL (see 001): same intent, and ON CONFLICT (hero_name, rank_tier) works with it.
--   * TIMESTAMPTZ instead of TIMESTAMP (a point in time, whatever the session's time zone).
--   * NOT NULL beside the plan's DEFAULT (players.discovered_at, .match_history_fetched, matches.created_at,
--     match_participants.kills/deaths/assists/damage/healing, character_stats.analyzed_at,
--     synergy_stats.analyzed_at, collection_metadata.updated_at): a row that omits the column gets the
--     plan's default; only an explicit NULL, which the plan's DDL allows but describes nowhere, is refused.
--   * DEFAULT 0 on the counts and win_rate of character_stats and synergy_stats, which the plan requires
--     (NOT NULL) without a default: its inserts always give them.
--   * CHECKs beyond the plan's three (role, team, hero_a < hero_b): non-empty texts, counts and seasons
--     >= 0, rates and p-values between 0 and 1, wins <= games, wins + losses <= total_games.
--   * Columns the plan does not have, all optional or defaulted: matches.duration_seconds, .map_name,
--     match_participants.damage_taken, collection_metadata.created_at.
-- Every difference from the plan is listed with its reason, and checked, in app/test/migrate/plan.test.ts.
--
-- Columns appended here (match_participants.id, .hero_id, character_stats.losses,
-- synergy_stats.statistical_significance) come last in their table, not where the plan lists them: name
-- your columns (INSERT with a column list), never rely on their position.
--
-- Like every file, this runs in one transaction: if any statement fails, nothing of it stays.

-- The plan enables it; nothing uses it yet. Both the embedded PostgreSQL of the tests and the
-- postgres:16-alpine image ship it.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

-- players ------------------------------------------------------------------------------------------------

-- NULL: never refreshed since it was discovered (the plan's column has no default). Existing rows keep
-- their time.
ALTER TABLE players
    ALTER COLUMN last_updated DROP NOT NULL,
    ALTER COLUMN last_updated DROP DEFAULT;

-- matches ------------------------------------------------------------------------------------------------

-- season becomes the plan's INTEGER. A season that is not a whole number (e.g. '2.5', 'S1') is NOT mapped
-- to anything: the migration fails, naming the matches, and changes nothing. Fix those rows by hand (decide
-- what they mean), then run it again. Ten digits or more is refused too (past INTEGER).
DO $$
DECLARE
    bad_count BIGINT;
    examples  TEXT;
BEGIN
    SELECT count(*), string_agg(format('%s (season %L)', match_id, season), ', ' ORDER BY match_id)
      INTO bad_count, examples
      FROM matches
     WHERE season !~ '^[0-9]{1,9}$';
    IF bad_count > 0 THEN
        RAISE EXCEPTION '003_seed_plan_schema: matches.season becomes INTEGER, but % match(es) have a season that is not a whole number: %; set those seasons to whole numbers and run the migration again (nothing was changed)',
            bad_count, left(examples, 500);
    END IF;
END
$$;

ALTER TABLE matches RENAME COLUMN collected_at TO created_at;
ALTER TABLE matches DROP CONSTRAINT matches_season_check;
-- NULL in mode, season or match_timestamp: the API did not say (optional in the plan).
-- duration_seconds and map_name are ours, not the plan's: NULL when the API did not say.
ALTER TABLE matches
    ALTER COLUMN season TYPE INTEGER USING season::INTEGER,
    ALTER COLUMN season DROP NOT NULL,
    ADD CONSTRAINT matches_season_check CHECK (season >= 0),
    ALTER COLUMN mode DROP NOT NULL,
    ALTER COLUMN match_timestamp DROP NOT NULL,
    ALTER COLUMN duration_seconds DROP NOT NULL;
-- The plan's name for the same index (match_timestamp DESC).
ALTER INDEX idx_matches_match_timestamp RENAME TO idx_matches_timestamp;

-- match_participants -------------------------------------------------------------------------------------

-- The plan's SERIAL id as an identity column BY DEFAULT: like SERIAL it is an INTEGER filled from a
-- sequence and, like SERIAL, it accepts an explicit id (GENERATED ALWAYS would refuse one, and a program
-- written against the plan may give one). Existing rows are numbered as the table is rewritten.
-- (match_id, username) stays unique, now as the plan's UNIQUE constraint instead of the primary key.
-- role, team: NULL when the API did not say (optional in the plan); their CHECKs stay.
-- hero_id: the game's id of the hero; NULL when the API did not say.
-- damage, healing: the plan's DECIMAL(12, 2) (the game reports fractions); existing whole numbers carry
-- over exactly.
ALTER TABLE match_participants
    DROP CONSTRAINT match_participants_pkey,
    ADD COLUMN id INTEGER GENERATED BY DEFAULT AS IDENTITY,
    ADD COLUMN hero_id INTEGER,
    ALTER COLUMN role DROP NOT NULL,
    ALTER COLUMN team TYPE INTEGER,
    ALTER COLUMN team DROP NOT NULL,
    ALTER COLUMN damage TYPE NUMERIC(12, 2),
    ALTER COLUMN healing TYPE NUMERIC(12, 2);
ALTER TABLE match_participants
    ADD CONSTRAINT match_participants_pkey PRIMARY KEY (id),
    ADD CONSTRAINT match_participants_match_id_username_key UNIQUE (match_id, username);

-- character_stats ----------------------------------------------------------------------------------------

ALTER TABLE character_stats RENAME COLUMN games TO total_games;
ALTER TABLE character_stats RENAME COLUMN ci_lower TO confidence_interval_lower;
ALTER TABLE character_stats RENAME COLUMN ci_upper TO confidence_interval_upper;
ALTER TABLE character_stats RENAME CONSTRAINT character_stats_games_check TO character_stats_total_games_check;
ALTER TABLE character_stats RENAME CONSTRAINT character_stats_wins_le_games TO character_stats_wins_le_total_games;
ALTER TABLE character_stats
    RENAME CONSTRAINT character_stats_ci_lower_check TO character_stats_confidence_interval_lower_check;
ALTER TABLE character_stats
    RENAME CONSTRAINT character_stats_ci_upper_check TO character_stats_confidence_interval_upper_check;
-- id: the plan's SERIAL, as for match_participants (an explicit id is accepted).
-- losses: the plan's inserts always give it; DEFAULT 0 like the other counters of the table, so a row
-- that gives none of them is still all zeros. Existing rows: total_games - wins.
ALTER TABLE character_stats
    ALTER COLUMN id SET GENERATED BY DEFAULT,
    ALTER COLUMN id TYPE INTEGER,
    ADD COLUMN losses INTEGER NOT NULL DEFAULT 0 CONSTRAINT character_stats_losses_check CHECK (losses >= 0);
UPDATE character_stats SET losses = total_games - wins;
ALTER TABLE character_stats
    ADD CONSTRAINT character_stats_wins_losses_le_total_games CHECK (wins + losses <= total_games);

-- synergy_stats ------------------------------------------------------------------------------------------

ALTER TABLE synergy_stats RENAME COLUMN games TO games_together;
ALTER TABLE synergy_stats RENAME COLUMN wins TO wins_together;
ALTER TABLE synergy_stats RENAME CONSTRAINT synergy_stats_games_check TO synergy_stats_games_together_check;
ALTER TABLE synergy_stats RENAME CONSTRAINT synergy_stats_wins_check TO synergy_stats_wins_together_check;
ALTER TABLE synergy_stats
    RENAME CONSTRAINT synergy_stats_wins_le_games TO synergy_stats_wins_together_le_games_together;
-- id: the plan's SERIAL, as above. synergy_score: the plan's DECIMAL(6, 4); it stays between -1 and 1.
-- statistical_significance: the p-value of the synergy; NULL until computed.
ALTER TABLE synergy_stats
    ALTER COLUMN id SET GENERATED BY DEFAULT,
    ALTER COLUMN id TYPE INTEGER,
    ALTER COLUMN synergy_score TYPE NUMERIC(6, 4),
    ADD COLUMN statistical_significance NUMERIC(5, 4)
        CONSTRAINT synergy_stats_statistical_significance_check CHECK (statistical_significance BETWEEN 0 AND 1);

-- collection_metadata ------------------------------------------------------------------------------------

-- NULL: the key is known but has no value yet (e.g. last_collection_run before the first run).
ALTER TABLE collection_metadata ALTER COLUMN value DROP NOT NULL;

-- The plan's initial rows; a key already there keeps its value, except schema_version (below).
INSERT INTO collection_metadata (key, value) VALUES
    ('schema_version', '2'),
    ('last_collection_run', NULL),
    ('total_players_discovered', '0'),
    ('total_matches_collected', '0')
ON CONFLICT (key) DO NOTHING;

-- schema_version holds the version of the seed plan's schema that the tables match, as the plan's programs
-- read it: '2', what the plan's 001 (sets '1') and 002 (sets '2') leave. It is not the number of our last
-- migration file (the runner's history has that) and changes only when a migration changes the contract.
UPDATE collection_metadata SET value = '2', updated_at = now() WHERE key = 'schema_version' AND value IS DISTINCT FROM '2';

-- The plan's indexes ---------------------------------------------------------------------------------------
--
-- The plan's 002, index by index:
--   idx_match_participants_match_id (match_id)        served by match_participants_match_id_username_key
--                                                     (match_id, username): match_id leads it
--   idx_match_participants_username (username)        002, same name
--   idx_match_participants_hero_name (hero_name)      served by idx_match_participants_hero_won
--                                                     (hero_name, won): hero_name leads it
--   idx_match_participants_won (won)                  below
--   idx_match_participants_hero_won (hero_name, won)  002, same name
--   idx_match_participants_match_team                 below
--   idx_matches_season (season)                       served by idx_matches_season_mode (season, mode)
--   idx_matches_timestamp (match_timestamp DESC)      002's idx_matches_match_timestamp, renamed above
--   idx_players_rank_tier (rank_tier)                 002, same name
--   idx_players_fetched (match_history_fetched)       below
--   idx_character_stats_hero (hero_name)              served by character_stats_hero_rank_key
--                                                     (hero_name, rank_tier): hero_name leads it
--   idx_character_stats_analyzed (analyzed_at DESC)   below
-- Ours beyond the plan (002): idx_match_participants_role, idx_players_last_updated,
-- idx_character_stats_rank_win_rate, idx_synergy_stats_rank_score, idx_synergy_stats_hero_b.
-- Plain CREATE INDEX inside the transaction, as in 002: it blocks writes to the table while it builds.

-- Synergy analysis: the players of one team of a match.
CREATE INDEX idx_match_participants_match_team ON match_participants (match_id, team);
CREATE INDEX idx_match_participants_won ON match_participants (won);
-- The collector's "players whose match history is not fetched yet".
CREATE INDEX idx_players_fetched ON players (match_history_fetched);
-- The freshness of the cached stats.
CREATE INDEX idx_character_stats_analyzed ON character_stats (analyzed_at DESC);
