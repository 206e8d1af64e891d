-- Reverts 001_initial_schema. This DROPS EVERY TABLE AND ITS DATA: with a backup directory configured
-- the runner dumps the database first (see README, "Restoring a migration backup").
DROP TABLE collection_metadata;
DROP TABLE synergy_stats;
DROP TABLE character_stats;
DROP TABLE match_participants;
DROP TABLE matches;
DROP TABLE players;
