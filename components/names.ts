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

/** Label naming what a container is for; the app's versions carry `app` (scripts find the app by it). */
export const ROLE_LABEL = "marvel-rivals-stats.role";
export const APP_ROLE = "app";
/** Label holding an app container's version (see components/app.ts, versionOf). */
export const VERSION_LABEL = "marvel-rivals-stats.version";

/** The repository of the app's images on the Docker host: `<repository>:<stack>` is the latest build. */
export const APP_IMAGE_REPOSITORY = "marvel-rivals-stats-app";

/** Release tags of a stack's app images: `<repository>:<stack>-release-<UTC time>` (components/app.ts). */
export function releaseTagPrefix(stack: string): string {
    return `${stack}-release`;
}

/**
 * The labels from which the server's label-driven Caddy (lucaslorentz/caddy-docker-proxy) writes the app's
 * site: a reverse proxy to the app's alias on the caddy network, which every version of the app carries, so
 * the generated Caddyfile does not change with a deploy. Caddy resolves the alias at each dial (Go's dialer
 * tries each address in turn: a version whose port is not open yet is skipped), and retries a failed dial
 * for lb_try_duration, every lb_try_interval, instead of answering 502 while versions change.
 */
export function caddyLabels(domain: string, appAlias: string): Record<string, string> {
    return {
        caddy: domain,
        "caddy.reverse_proxy": `${appAlias}:${APP_PORT}`,
        "caddy.reverse_proxy.lb_try_duration": "10s",
        "caddy.reverse_proxy.lb_try_interval": "250ms",
    };
}
