-- Reverts 002_add_indexes. Dropping an index loses no data.
DROP INDEX idx_synergy_stats_hero_b;
DROP INDEX idx_synergy_stats_rank_score;
DROP INDEX idx_character_stats_rank_win_rate;
DROP INDEX idx_matches_season_mode;
DROP INDEX idx_matches_match_timestamp;
DROP INDEX idx_players_last_updated;
DROP INDEX idx_players_rank_tier;
DROP INDEX idx_match_participants_role;
DROP INDEX idx_match_participants_hero_won;
DROP INDEX idx_match_participants_username;
