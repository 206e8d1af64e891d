// The whole stack: a private network, PostgreSQL 16, Redis 7, the migration step and the app.
// Config is read and validated once (config.ts); this file only maps it to component args.
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as random from "@pulumi/random";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, PROJECT, parseStackConfig, type StackConfig } from "./config";
import { Network } from "./components/network";
import { HostDirectories } from "./components/hostDirectories";
import { Postgres } from "./components/postgres";
import { Redis } from "./components/redis";
import { AppImage } from "./components/appImage";
import { Migrations } from "./components/migrations";
import { App } from "./components/app";
import { PgAdmin } from "./components/pgadmin";

const stack = pulumi.getStack();
const projectDir = __dirname;
const config = new pulumi.Config(PROJECT);

// ---- configuration: every problem reported at once, before any resource exists
let cfg: StackConfig;
try {
    cfg = parseStackConfig((key) => pulumi.runtime.getConfig(`${PROJECT}:${key}`), {
        projectDir,
        defaultOwner: `${os.userInfo().uid}:${os.userInfo().gid}`,
    });
} catch (err) {
    // RunError: Pulumi prints the message alone, without a stack trace.
    throw err instanceof ConfigError ? new pulumi.RunError(err.message) : err;
}

// ---- secrets: configured, or generated once and kept in the (encrypted) state
// Wrapped in pulumi.secret explicitly: secrecy must not depend on what a provider marks.
const generated = (name: string) =>
    pulumi.secret(new random.RandomPassword(name, { length: 32, special: false }).result);
const dbPassword = config.getSecret("dbPassword") ?? generated("db-password");
const redisPassword = config.getSecret("redisPassword") ?? generated("redis-password");
const apiKey = config.getSecret("marvelRivalsApiKey") ?? pulumi.secret("");

// ---- where everything runs: one explicit Docker provider for the stack
const dockerProvider = new docker.Provider("docker", {
    host: cfg.dockerHost,
    sshOpts: cfg.sshOpts.length > 0 ? cfg.sshOpts : undefined,
});
const onDocker = { providers: { docker: dockerProvider } };

const network = new Network("network", { name: cfg.networkName, external: cfg.externalNetworks }, onDocker);

const dirs = new HostDirectories(
    "data",
    {
        dataDir: cfg.dataDir,
        subdirectories: ["postgres", "redis", "output", "logs", "backups"],
        owner: cfg.hostOwner,
        toolImage: cfg.postgresImage,
        platform: cfg.platform,
        dockerHost: cfg.dockerHost,
    },
    onDocker,
);

const postgres = new Postgres(
    "postgres",
    {
        image: cfg.postgresImage,
        platform: cfg.platform,
        containerName: "marvel-rivals-postgres",
        networkName: network.name,
        dataPath: dirs.paths.postgres,
        dbName: cfg.dbName,
        dbUser: cfg.dbUser,
        password: dbPassword,
        publish: cfg.postgresPublish,
        memoryLimitMb: cfg.memoryLimitMb.postgres,
        waitFor: [dirs],
        dockerHost: cfg.dockerHost,
    },
    onDocker,
);

const redis = new Redis(
    "redis",
    {
        image: cfg.redisImage,
        platform: cfg.platform,
        containerName: "marvel-rivals-redis",
        networkName: network.name,
        dataPath: dirs.paths.redis,
        password: redisPassword,
        persistence: cfg.redisPersistence,
        publish: cfg.redisPublish,
        memoryLimitMb: cfg.memoryLimitMb.redis,
        waitFor: [dirs],
    },
    onDocker,
);

const appImage = new AppImage(
    "app",
    {
        context: projectDir,
        dockerfile: "app/Dockerfile",
        target: cfg.hotReload ? "dev" : "runtime",
        imageName: `marvel-rivals-stats-app:${stack}`,
        platform: cfg.platform,
    },
    onDocker,
);

// URLs as seen from inside the stack's network.
const enc = encodeURIComponent;
const internalDatabaseUrl = pulumi.secret(
    pulumi.interpolate`postgres://${cfg.dbUser}:${dbPassword.apply(enc)}@${postgres.host}:${postgres.port}/${cfg.dbName}`,
);
const internalRedisUrl = pulumi.secret(
    pulumi.interpolate`redis://:${redisPassword.apply(enc)}@${redis.host}:${redis.port}`,
);

const migrations = new Migrations(
    "migrations",
    {
        migrationsDir: path.join(projectDir, "migrations"),
        image: appImage.imageId,
        networkName: network.name,
        databaseUrl: internalDatabaseUrl,
        user: cfg.hostOwner,
        backupDir: cfg.backups ? path.posix.join(cfg.dataDir, "backups") : undefined,
        dockerHost: cfg.dockerHost,
        waitFor: [postgres.container, postgres.credentials, dirs],
    },
    onDocker,
);

const app = new App(
    "app",
    {
        image: appImage.imageId,
        containerName: "marvel-rivals-app",
        networkName: network.name,
        externalNetworks: network.externalNames,
        env: {
            DATABASE_URL: internalDatabaseUrl,
            REDIS_URL: internalRedisUrl,
            APP_ENV: cfg.appEnv,
            LOG_LEVEL: cfg.logLevel,
            MARVEL_RIVALS_API_KEY: apiKey,
            RATE_LIMIT_REQUESTS_PER_MINUTE: String(cfg.rateLimitRequestsPerMinute),
            ...(cfg.currentSeason ? { CURRENT_SEASON: cfg.currentSeason } : {}),
        },
        outputPath: dirs.paths.output,
        logsPath: dirs.paths.logs,
        sourcePath: cfg.hotReload ? path.join(projectDir, "app", "src") : undefined,
        user: cfg.hostOwner,
        publish: cfg.appPublish,
        labels: cfg.domain ? { caddy: cfg.domain, "caddy.reverse_proxy": "{{upstreams 8000}}" } : undefined,
        memoryLimitMb: cfg.memoryLimitMb.app,
        waitFor: [migrations.step, redis.container, dirs],
    },
    onDocker,
);

const pgadmin = cfg.pgadmin
    ? new PgAdmin(
          "pgadmin",
          {
              image: "dpage/pgadmin4:9.8",
              containerName: "marvel-rivals-pgadmin",
              networkName: network.name,
              email: "admin@example.com",
              password: generated("pgadmin-password"),
              publish: { port: cfg.pgadminPort, bindAddress: "127.0.0.1" },
          },
          onDocker,
      )
    : undefined;

// ---- outputs: connection strings for people, reachable from where they sit
/** Host a published port is reached at: the bind address, or the Docker host's name for 0.0.0.0. */
function reachableHost(bindAddress: string): string {
    if (bindAddress !== "0.0.0.0") return bindAddress;
    const host = cfg.dockerHost ? new URL(cfg.dockerHost.replace(/^ssh:\/\//, "http://")).hostname : "";
    return host || "127.0.0.1";
}
const pgHost = cfg.postgresPublish ? reachableHost(cfg.postgresPublish.bindAddress) : postgres.host;
const pgPort = cfg.postgresPublish?.port ?? postgres.port;
const redisHost = cfg.redisPublish ? reachableHost(cfg.redisPublish.bindAddress) : redis.host;
const redisPort = cfg.redisPublish?.port ?? redis.port;

export const databaseUrl = pulumi.secret(
    pulumi.interpolate`postgres://${cfg.dbUser}:${dbPassword.apply(enc)}@${pgHost}:${pgPort}/${cfg.dbName}`,
);
export const redisUrl = pulumi.secret(
    pulumi.interpolate`redis://:${redisPassword.apply(enc)}@${redisHost}:${redisPort}`,
);
export const appUrl = cfg.domain
    ? `https://${cfg.domain}`
    : cfg.appPublish
      ? `http://${reachableHost(cfg.appPublish.bindAddress)}:${cfg.appPublish.port}`
      : `http://app:${app.port} (inside the ${cfg.networkName} network)`;
export const dataDir = cfg.dataDir;
export const networkName = network.name;
export const migrationsApplied = migrations.applied;
export const pgadminUrl = pgadmin?.url;
export const appContainer = app.container.name;
