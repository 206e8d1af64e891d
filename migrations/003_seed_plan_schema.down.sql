-- Reverts 003_seed_plan_schema: back to the names and types of 001 and 002.
--
-- Refused (nothing changes) while a row holds a NULL that 001 has no room for: matches.mode, .season,
-- .match_timestamp, .duration_seconds, match_participants.role, .team. Fill in or delete those rows first;
-- inventing a value here would pass a guess off as data.
--
-- LOSSY, with a backup directory configured the runner dumps the database first (see README,
-- "Restoring a backup"):
--   * match_participants.id, .hero_id, synergy_stats.statistical_significance: dropped with their values.
--   * character_stats.losses: dropped (003 applied again computes it as games - wins, which is what it
--     was unless a writer stored a different number).
--   * match_participants.damage, .healing: rounded to whole numbers (BIGINT in 001).
--   * players.last_updated NULL (never refreshed): set to discovered_at, as 001 wrote it at discovery.
--   * collection_metadata: the rows with a NULL value are deleted (001 has no NULL value; no row means
--     "not set" there), so are schema_version (003 set it; a value from before 003 was overwritten by
--     it) and total_players_discovered / total_matches_collected while still '0' (003 inserts them at '0';
--     a counter at '0' says nothing). Counters that moved stay.
--   * character_stats and synergy_stats ids become BIGINT GENERATED ALWAYS again; values stay.
--   * The uuid-ossp extension is dropped, even if it was there before 003 (DROP fails, and with it this
--     file, if anything uses it).

DO $$
DECLARE
    problems TEXT;
BEGIN
    SELECT string_agg(format('%s: %s row(s)', col, n), ', ' ORDER BY ord)
      INTO problems
      FROM (SELECT 1 AS ord, 'matches.mode' AS col, count(*) FILTER (WHERE mode IS NULL) AS n FROM matches
            UNION ALL SELECT 2, 'matches.season', count(*) FILTER (WHERE season IS NULL) FROM matches
            UNION ALL SELECT 3, 'matches.match_timestamp', count(*) FILTER (WHERE match_timestamp IS NULL) FROM matches
            UNION ALL SELECT 4, 'matches.duration_seconds', count(*) FILTER (WHERE duration_seconds IS NULL) FROM matches
            UNION ALL SELECT 5, 'match_participants.role', count(*) FILTER (WHERE role IS NULL) FROM match_participants
            UNION ALL SELECT 6, 'match_participants.team', count(*) FILTER (WHERE team IS NULL) FROM match_participants
           ) AS c
     WHERE n > 0;
    IF problems IS NOT NULL THEN
        RAISE EXCEPTION '003_seed_plan_schema.down: these columns hold NULLs that 001 does not allow: %; fill them in or delete those rows, then revert again (nothing was changed)',
            problems;
    END IF;
END
$$;

-- The indexes of 003.
DROP INDEX idx_character_stats_analyzed;
DROP INDEX idx_players_fetched;
DROP INDEX idx_match_participants_won;
DROP INDEX idx_match_participants_match_team;

-- collection_metadata
DELETE FROM collection_metadata
 WHERE value IS NULL
    OR key = 'schema_version'
    OR (key IN ('total_players_discovered', 'total_matches_collected') AND value = '0');
ALTER TABLE collection_metadata ALTER COLUMN value SET NOT NULL;

-- synergy_stats
ALTER TABLE synergy_stats
    DROP COLUMN statistical_significance,
    ALTER COLUMN synergy_score TYPE NUMERIC(5, 4),
    ALTER COLUMN id TYPE BIGINT,
    ALTER COLUMN id SET GENERATED ALWAYS;
ALTER TABLE synergy_stats
    RENAME CONSTRAINT synergy_stats_wins_together_le_games_together TO synergy_stats_wins_le_games;
ALTER TABLE synergy_stats RENAME CONSTRAINT synergy_stats_wins_together_check TO synergy_stats_wins_check;
ALTER TABLE synergy_stats RENAME CONSTRAINT synergy_stats_games_together_check TO synergy_stats_games_check;
ALTER TABLE synergy_stats RENAME COLUMN wins_together TO wins;
ALTER TABLE synergy_stats RENAME COLUMN games_together TO games;

-- character_stats
ALTER TABLE character_stats
    DROP CONSTRAINT character_stats_wins_losses_le_total_games,
    DROP COLUMN losses,
    ALTER COLUMN id TYPE BIGINT,
    ALTER COLUMN id SET GENERATED ALWAYS;
ALTER TABLE character_stats
    RENAME CONSTRAINT character_stats_confidence_interval_upper_check TO character_stats_ci_upper_check;
ALTER TABLE character_stats
    RENAME CONSTRAINT character_stats_confidence_interval_lower_check TO character_stats_ci_lower_check;
ALTER TABLE character_stats RENAME CONSTRAINT character_stats_wins_le_total_games TO character_stats_wins_le_games;
ALTER TABLE character_stats RENAME CONSTRAINT character_stats_total_games_check TO character_stats_games_check;
ALTER TABLE character_stats RENAME COLUMN confidence_interval_upper TO ci_upper;
ALTER TABLE character_stats RENAME COLUMN confidence_interval_lower TO ci_lower;
ALTER TABLE character_stats RENAME COLUMN total_games TO games;

-- match_participants: the CHECKs on damage and healing are dropped and written again, so that they read
-- as 001's (a re-typed column would keep them as damage::numeric >= 0).
ALTER TABLE match_participants
    DROP CONSTRAINT match_participants_pkey,
    DROP CONSTRAINT match_participants_match_id_username_key,
    DROP CONSTRAINT match_participants_damage_check,
    DROP CONSTRAINT match_participants_healing_check,
    DROP COLUMN id,
    DROP COLUMN hero_id,
    ALTER COLUMN role SET NOT NULL,
    ALTER COLUMN team TYPE SMALLINT,
    ALTER COLUMN team SET NOT NULL,
    ALTER COLUMN damage TYPE BIGINT USING round(damage)::BIGINT,
    ALTER COLUMN healing TYPE BIGINT USING round(healing)::BIGINT,
    ADD CONSTRAINT match_participants_damage_check CHECK (damage >= 0),
    ADD CONSTRAINT match_participants_healing_check CHECK (healing >= 0),
    ADD CONSTRAINT match_participants_pkey PRIMARY KEY (match_id, username);

-- matches
ALTER INDEX idx_matches_timestamp RENAME TO idx_matches_match_timestamp;
ALTER TABLE matches DROP CONSTRAINT matches_season_check;
ALTER TABLE matches
    ALTER COLUMN season TYPE TEXT USING season::TEXT,
    ALTER COLUMN season SET NOT NULL,
    ADD CONSTRAINT matches_season_check CHECK (season <> ''),
    ALTER COLUMN mode SET NOT NULL,
    ALTER COLUMN match_timestamp SET NOT NULL,
    ALTER COLUMN duration_seconds SET NOT NULL;
ALTER TABLE matches RENAME COLUMN created_at TO collected_at;

-- players
UPDATE players SET last_updated = discovered_at WHERE last_updated IS NULL;
ALTER TABLE players
    ALTER COLUMN last_updated SET DEFAULT now(),
    ALTER COLUMN last_updated SET NOT NULL;

DROP EXTENSION IF EXISTS "uuid-ossp";
