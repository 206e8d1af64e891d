-- 002_add_indexes: the indexes of the seed plan, for the queries the app and the analyzer run.
-- Plain CREATE INDEX inside the runner's transaction: on the first deploy the tables are empty, and an
-- atomic file matters more than not blocking writes for the moment it takes.

-- Foreign keys: the primary key (match_id, username) serves lookups by match; ON DELETE CASCADE from
-- players and "matches of a player" need username first.
CREATE INDEX idx_match_participants_username ON match_participants (username);

-- /api/heroes: win rate per hero (hero_name, won), optionally per role.
CREATE INDEX idx_match_participants_hero_won ON match_participants (hero_name, won);
CREATE INDEX idx_match_participants_role ON match_participants (role);

-- ?rank= filter and the collector's "players to refresh next".
CREATE INDEX idx_players_rank_tier ON players (rank_tier);
CREATE INDEX idx_players_last_updated ON players (last_updated);

-- Recent matches, per season and mode.
CREATE INDEX idx_matches_match_timestamp ON matches (match_timestamp DESC);
CREATE INDEX idx_matches_season_mode ON matches (season, mode);

-- Rankings: best heroes and best pairs of a rank tier. The (hero_name, rank_tier) and
-- (hero_a, hero_b, rank_tier) lookups are served by the UNIQUE constraints of 001.
CREATE INDEX idx_character_stats_rank_win_rate ON character_stats (rank_tier, win_rate DESC);
CREATE INDEX idx_synergy_stats_rank_score ON synergy_stats (rank_tier, synergy_score DESC);
CREATE INDEX idx_synergy_stats_hero_b ON synergy_stats (hero_b);
