-- Reverts 004_plan_schema_migrations: drops the plan's version table (and its rows, which 004 wrote or
-- found). The runner's own history is elsewhere and is not touched.
DROP TABLE schema_migrations;
