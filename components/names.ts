// What people and scripts type: the stack's fixed container names (`docker exec marvel-rivals-app seed`,
// the README, `npm run backups` / `npm run restore`) and the app's port.
export const CONTAINER_NAMES = {
    postgres: "marvel-rivals-postgres",
    redis: "marvel-rivals-redis",
    app: "marvel-rivals-app",
    pgadmin: "marvel-rivals-pgadmin",
    backup: "marvel-rivals-backup",
} as const;

/** The port the app listens on inside its container (app/Dockerfile's PORT). */
export const APP_PORT = 8000;
