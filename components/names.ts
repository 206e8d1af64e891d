// What people and scripts type: the stack's container names (`docker exec marvel-rivals-app seed`, the
// README, `npm run backups` / `npm run restore`, the deploy lock of `npm run lock`) and the app's port.

/** The prefix of every container name unless the stack sets `containerPrefix`. */
export const DEFAULT_CONTAINER_PREFIX = "marvel-rivals";

export interface ContainerNames {
    postgres: string;
    redis: string;
    app: string;
    pgadmin: string;
    backup: string;
}

/** The stack's container names for a prefix: `<prefix>-postgres`, `<prefix>-app`, ... */
export function containerNames(prefix = DEFAULT_CONTAINER_PREFIX): ContainerNames {
    return {
        postgres: `${prefix}-postgres`,
        redis: `${prefix}-redis`,
        app: `${prefix}-app`,
        pgadmin: `${prefix}-pgadmin`,
        backup: `${prefix}-backup`,
    };
}

/**
 * The stack's deploy lock (scripts/deployLock.ts): `<prefix>-deploy-lock`. Not among `ContainerNames`: the
 * program's host step frees and checks every one of those before it creates anything, and the lock is held
 * by the very `up` that runs it.
 */
export function deployLockName(prefix = DEFAULT_CONTAINER_PREFIX): string {
    return `${prefix}-deploy-lock`;
}

/** The names with the default prefix (marvel-rivals-postgres, ...), as the README writes them. */
export const CONTAINER_NAMES = containerNames();

/** The port the app listens on inside its container (app/Dockerfile's PORT). */
export const APP_PORT = 8000;
