-- 001_initial_schema: the tables of the Marvel Rivals Stats Analyzer (issue 3).
--
-- Columns other code relies on (renaming one needs a migration AND a change there):
--   players.username, players.rank_tier              the app's /api/heroes?rank= filter joins on these
--   match_participants.hero_name, .won, .username,   /api/heroes computes win rate per hero from these
--     .match_id
--   matches.match_id                                 /api/stats/summary counts rows of every table below
--
-- Conventions: upper-case keywords; NOT NULL unless NULL means something (said beside the column);
-- TIMESTAMPTZ for every point in time. The runner (app/src/migrate) owns schema_migrations and wraps this
-- file in one transaction with its history row: no BEGIN/COMMIT here.

CREATE TABLE players (
    username              TEXT PRIMARY KEY CHECK (username <> ''),
    -- NULL: rank not known yet (unranked or not fetched).
    rank_tier             TEXT CHECK (rank_tier <> ''),
    -- NULL: not known yet.
    rank_score            INTEGER CHECK (rank_score >= 0),
    match_history_fetched BOOLEAN NOT NULL DEFAULT FALSE,
    discovered_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_updated          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE matches (
    match_id         TEXT PRIMARY KEY CHECK (match_id <> ''),
    mode             TEXT NOT NULL CHECK (mode <> ''),
    season           TEXT NOT NULL CHECK (season <> ''),
    match_timestamp  TIMESTAMPTZ NOT NULL,
    duration_seconds INTEGER NOT NULL CHECK (duration_seconds >= 0),
    -- NULL: the API did not say.
    map_name         TEXT,
    collected_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per player per match. Deleting a match or a player deletes their participations.
CREATE TABLE match_participants (
    match_id      TEXT NOT NULL REFERENCES matches (match_id) ON DELETE CASCADE,
    username      TEXT NOT NULL REFERENCES players (username) ON DELETE CASCADE,
    hero_name     TEXT NOT NULL CHECK (hero_name <> ''),
    role          TEXT NOT NULL CHECK (role IN ('vanguard', 'duelist', 'strategist')),
    team          SMALLINT NOT NULL CHECK (team IN (0, 1)),
    won           BOOLEAN NOT NULL,
    kills         INTEGER NOT NULL DEFAULT 0 CHECK (kills >= 0),
    deaths        INTEGER NOT NULL DEFAULT 0 CHECK (deaths >= 0),
    assists       INTEGER NOT NULL DEFAULT 0 CHECK (assists >= 0),
    damage        BIGINT NOT NULL DEFAULT 0 CHECK (damage >= 0),
    healing       BIGINT NOT NULL DEFAULT 0 CHECK (healing >= 0),
    damage_taken  BIGINT NOT NULL DEFAULT 0 CHECK (damage_taken >= 0),
    PRIMARY KEY (match_id, username)
);

-- Win rate per hero, per rank tier, with a NULL rank_tier meaning "all ranks".
--
-- The seed plan wrote UNIQUE(hero_name, COALESCE(rank_tier, '')) inside CREATE TABLE, which PostgreSQL
-- rejects (a table constraint takes column names, not expressions). UNIQUE NULLS NOT DISTINCT (PostgreSQL
-- 15+, we run 16) keeps the intent as a real constraint: two NULL tiers collide, so there is exactly one
-- "all ranks" row per hero, and writers can use ON CONFLICT (hero_name, rank_tier) directly, which an
-- expression index on COALESCE would not allow. The CHECK on '' keeps '' from becoming a second "all".
CREATE TABLE character_stats (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hero_name   TEXT NOT NULL CHECK (hero_name <> ''),
    -- NULL: all ranks together.
    rank_tier   TEXT CHECK (rank_tier <> ''),
    games       INTEGER NOT NULL DEFAULT 0 CHECK (games >= 0),
    wins        INTEGER NOT NULL DEFAULT 0 CHECK (wins >= 0),
    win_rate    NUMERIC(5, 4) NOT NULL DEFAULT 0 CHECK (win_rate BETWEEN 0 AND 1),
    -- Wilson score interval of win_rate; NULL until computed.
    ci_lower    NUMERIC(5, 4) CHECK (ci_lower BETWEEN 0 AND 1),
    ci_upper    NUMERIC(5, 4) CHECK (ci_upper BETWEEN 0 AND 1),
    analyzed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT character_stats_wins_le_games CHECK (wins <= games),
    CONSTRAINT character_stats_hero_rank_key UNIQUE NULLS NOT DISTINCT (hero_name, rank_tier)
);

-- How two heroes on the same team do together. Each pair is stored once, in name order (hero_a < hero_b),
-- so (A, B) and (B, A) can never both exist; a NULL rank_tier means "all ranks", as above.
CREATE TABLE synergy_stats (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hero_a            TEXT NOT NULL CHECK (hero_a <> ''),
    hero_b            TEXT NOT NULL CHECK (hero_b <> ''),
    -- NULL: all ranks together.
    rank_tier         TEXT CHECK (rank_tier <> ''),
    games             INTEGER NOT NULL DEFAULT 0 CHECK (games >= 0),
    wins              INTEGER NOT NULL DEFAULT 0 CHECK (wins >= 0),
    win_rate          NUMERIC(5, 4) NOT NULL DEFAULT 0 CHECK (win_rate BETWEEN 0 AND 1),
    -- What the pair would win if the heroes were independent; NULL until computed.
    expected_win_rate NUMERIC(5, 4) CHECK (expected_win_rate BETWEEN 0 AND 1),
    -- win_rate - expected_win_rate; NULL until computed.
    synergy_score     NUMERIC(5, 4) CHECK (synergy_score BETWEEN -1 AND 1),
    analyzed_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT synergy_stats_hero_order CHECK (hero_a < hero_b),
    CONSTRAINT synergy_stats_wins_le_games CHECK (wins <= games),
    CONSTRAINT synergy_stats_pair_rank_key UNIQUE NULLS NOT DISTINCT (hero_a, hero_b, rank_tier)
);

-- Bookkeeping of the collector (last run, cursors, rate-limit state), one value per key.
CREATE TABLE collection_metadata (
    key        TEXT PRIMARY KEY CHECK (key <> ''),
    value      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
