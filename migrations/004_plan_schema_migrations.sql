-- 004_plan_schema_migrations: the seed plan's own version table (SPEC-004, 001_initial_schema.sql):
-- public.schema_migrations (version, description, applied_at), one row per version of the plan's schema,
-- which the analyzer's programs may read. It is NOT the migration runner's history: the runner keeps that
-- in migration_runner.history (app/src/migrate/historyName.ts), which is why this name is free now.
--
-- IF NOT EXISTS and ON CONFLICT, as in the plan: a database where someone already made the plan's table
-- keeps it and its rows. TIMESTAMPTZ instead of the plan's TIMESTAMP, as everywhere (a point in time);
-- a row written the way the plan writes it still inserts.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP
);

-- The plan's two versions, which 003 brought the tables to (collection_metadata.schema_version is '2').
INSERT INTO schema_migrations (version, description) VALUES
    (1, 'Initial schema with players, matches, stats tables'),
    (2, 'Add performance indexes for queries')
ON CONFLICT (version) DO NOTHING;
