// The stack's fixed container names: people type them (`docker exec marvel-rivals-app seed`), the README
// uses them, and `npm run backups` / `npm run restore` find the containers by them.
export const CONTAINER_NAMES = {
    postgres: "marvel-rivals-postgres",
    redis: "marvel-rivals-redis",
    app: "marvel-rivals-app",
    pgadmin: "marvel-rivals-pgadmin",
    backup: "marvel-rivals-backup",
} as const;
