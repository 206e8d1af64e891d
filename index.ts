// The whole stack: a private network, PostgreSQL 16, Redis 7, the migration step and the app.
// Config is read and validated once (config.ts); this file only maps it to component args.
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as random from "@pulumi/random";
import * as path from "node:path";
import { PROJECT, readStackConfig } from "./config";
import { Network } from "./components/network";
import { HostDirectories, identityLabels } from "./components/hostDirectories";
import { Postgres, backupRole, loginRoles, readerRole } from "./components/postgres";
import { REDIS_APP_USER, Redis } from "./components/redis";
import { SECRETS_IN_CONTAINER, SecretFiles } from "./components/secretFiles";
import { AppImage } from "./components/appImage";
import { Migrations } from "./components/migrations";
import { App } from "./components/app";
import { PgAdmin } from "./components/pgadmin";
import { Backups } from "./components/backups";
import { BACKUP_IMAGE_REPOSITORY, BackupImage } from "./components/backupImage";
import { stackOffsiteInputs } from "./components/offsite";
import { APP_IMAGE_REPOSITORY, caddyLabels, containerNames, releaseTagPrefix } from "./components/names";
import { pendingMigrations as readPendingMigrations } from "./components/pendingMigrations";
import { TUNNEL_LOCAL_PORT, tunnelCommand } from "./components/databaseTunnel";
import { PidsLimits } from "./components/pidsLimits";

const stack = pulumi.getStack();
/** The backup agent's memory limit (MB): it runs pg_dump and psql clients only. */
const BACKUP_AGENT_MEMORY_MB = 512;

const projectDir = __dirname;
const config = new pulumi.Config(PROJECT);

// ---- configuration: every problem reported at once, before any resource exists
const cfg = readStackConfig(projectDir);

// ---- secrets: configured, or generated once and kept in the (encrypted) state
// Wrapped in pulumi.secret explicitly: secrecy must not depend on what a provider marks.
// `rotation` (set by `npm run rotate`) makes a new one: a RandomPassword is replaced when its keepers change
// (pulumi-random v4.21.1: every input forces replacement), and the old value leaves the state with it. None
// at 0, so a stack from before rotations keeps its password.
const generated = (name: string, rotation = 0) =>
    pulumi.secret(
        new random.RandomPassword(name, {
            length: 32,
            special: false,
            ...(rotation > 0 ? { keepers: { rotation: String(rotation) } } : {}),
        }).result,
    );
const dbPassword = config.getSecret("dbPassword") ?? generated("db-password", cfg.rotation.db);
// Each database login has its own password (components/postgres.ts, RolePasswords): the app's, which its
// process holds, must not open the owner (a superuser). A rotation makes new ones (keepers, as above).
const appDbPassword = generated("app-db-password", cfg.rotation.db);
const backupDbPassword = generated("backup-db-password", cfg.rotation.db);
const readerDbPassword = generated("reader-db-password", cfg.rotation.db);
const redisPassword = config.getSecret("redisPassword") ?? generated("redis-password", cfg.rotation.redis);
// The app logs in as one of two roles in turn: a new password goes to the other one, so the version
// serving keeps logging in until it is drained (components/postgres.ts, credentialsSql).
const appLogin = loginRoles(cfg.dbUser, cfg.rotation.db);
// The SCRAM salt of the database passwords: random, made once and kept in the state (not secret: a salt).
const scramSalt = new random.RandomId("scram-salt", { byteLength: 16 }).hex;
const apiKey = config.getSecret("marvelRivalsApiKey") ?? pulumi.secret("");
const backupNotifyUrl = config.getSecret("backupNotifyUrl");

// ---- where everything runs: one explicit Docker provider for the stack
// The host is always explicit: the containers, the image build and the `docker` CLI steps use this one value.
const dockerProvider = new docker.Provider("docker", { host: cfg.dockerHost });
const onDocker = { providers: { docker: dockerProvider } };

// Which stack, and which state of it, a container or the network belongs to: made once per state, so
// containers a lost state left behind can be told from the ones this state tracks (see HostDirectories).
const stateId = new random.RandomId("state-id", { byteLength: 8 }).hex;
const identity = identityLabels(stack, stateId);

// Fixed names (components/names.ts): people type them, and the backup scripts find the containers by them.
// `containerPrefix` gives a second stack on the same engine names of its own.
const names = containerNames(cfg.containerPrefix);

// The backup directory: <dataDir>/backups, or a directory of its own elsewhere on the host (an NFS share).
const backupsInDataDir = cfg.backup.dir === `${cfg.dataDir}/backups`;

const dirs = new HostDirectories(
    "data",
    {
        dataDir: cfg.dataDir,
        subdirectories: ["postgres", "redis", "output", "logs", ...(backupsInDataDir ? ["backups"] : [])],
        directories: backupsInDataDir ? {} : { backups: cfg.backup.dir },
        mountRequired: cfg.backup.requireMount ? [cfg.backup.dir] : [],
        owner: cfg.hostOwner,
        toolImage: cfg.postgresImage,
        platform: cfg.platform,
        dockerHost: cfg.dockerHost,
        identity: {
            containers: Object.values(names),
            app: names.app,
            network: cfg.networkName,
            stack,
            stateId,
            stopGraceSeconds: 60,
        },
    },
    onDocker,
);

const network = new Network(
    "network",
    { name: cfg.networkName, external: cfg.externalNetworks, labels: identity, waitFor: [dirs] },
    onDocker,
);

const postgres = new Postgres(
    "postgres",
    {
        image: cfg.postgresImage,
        platform: cfg.platform,
        containerName: names.postgres,
        networkName: network.name,
        dataPath: dirs.paths.postgres,
        dbName: cfg.dbName,
        dbUser: cfg.dbUser,
        password: dbPassword,
        appPassword: appDbPassword,
        backupPassword: backupDbPassword,
        readerPassword: readerDbPassword,
        loginRoles: appLogin,
        scramSalt,
        labels: identity,
        publish: cfg.postgresPublish,
        memoryLimitMb: cfg.memoryLimitMb.postgres,
        waitFor: [dirs],
        dockerHost: cfg.dockerHost,
        settings: cfg.postgresSettings,
        // Named when an image of another PostgreSQL major version than the data directory's is refused.
        upgradeHint: `npm run upgrade -- --stack ${stack} --to ${cfg.postgresImage}`,
    },
    onDocker,
);

// The backup agent's image: the stack's Postgres image with the agent (agent/) and its tools.
const backupImage = new BackupImage(
    "backup",
    {
        root: projectDir,
        postgresImage: cfg.postgresImage,
        postgresImageId: postgres.imageId,
        imageName: `${BACKUP_IMAGE_REPOSITORY}:${stack}`,
        platform: cfg.platform,
    },
    onDocker,
);

// Scheduled backups, each proved by a restore; the agent also serves `npm run restore` and `npm run backups`.
const backups = new Backups(
    "backups",
    {
        image: backupImage.imageId,
        containerName: names.backup,
        postgresContainer: names.postgres,
        networkName: network.name,
        database: {
            host: postgres.host,
            port: postgres.port,
            name: cfg.dbName,
            // pg_read_all_data only (issue 24); a restore borrows the owner's password (npm run restore).
            user: backupRole(cfg.dbUser),
            password: backupDbPassword,
        },
        backupDir: dirs.paths.backups,
        scheduleText: cfg.backup.scheduleText,
        schedule: cfg.backup.schedule,
        verifySchedule: cfg.backup.verifySchedule,
        keepLast: cfg.backup.keepLast,
        keepDays: cfg.backup.keepDays,
        // Issue 24: every container has a memory limit (pg_dump and the restore proof's client).
        memoryLimitMb: BACKUP_AGENT_MEMORY_MB,
        tiers: {
            daily: cfg.backup.keepDaily,
            weekly: cfg.backup.keepWeekly,
            monthly: cfg.backup.keepMonthly,
            otherDays: cfg.backup.keepOtherDays,
        },
        requireMount: cfg.backup.requireMount,
        notifyUrl: backupNotifyUrl,
        offsite: stackOffsiteInputs(cfg.offsite, config),
        stack,
        user: cfg.hostOwner,
        labels: identity,
        waitFor: [postgres, dirs],
    },
    onDocker,
);

const redis = new Redis(
    "redis",
    {
        image: cfg.redisImage,
        platform: cfg.platform,
        containerName: names.redis,
        networkName: network.name,
        dataPath: dirs.paths.redis,
        password: redisPassword,
        persistence: cfg.redisPersistence,
        labels: identity,
        publish: cfg.redisPublish,
        memoryLimitMb: cfg.memoryLimitMb.redis,
        waitFor: [dirs],
        dockerHost: cfg.dockerHost,
    },
    onDocker,
);

// Hot reload: the app's source on this machine, mounted into the dev image's containers.
const appSource = cfg.hotReload ? path.join(projectDir, "app", "src") : undefined;
const appImage = new AppImage(
    "app",
    {
        context: projectDir,
        dockerfile: "app/Dockerfile",
        target: cfg.hotReload ? "dev" : "runtime",
        imageName: `${APP_IMAGE_REPOSITORY}:${stack}`,
        platform: cfg.platform,
    },
    onDocker,
);

// The connection URLs, one way to build each (secret: they hold the passwords), for a host and port.
const enc = encodeURIComponent;
const postgresUrl = (
    host: pulumi.Input<string>,
    port: pulumi.Input<number>,
    user = cfg.dbUser,
    password: pulumi.Output<string> = dbPassword,
) => pulumi.secret(pulumi.interpolate`postgres://${user}:${password.apply(enc)}@${host}:${port}/${cfg.dbName}`);
// Redis' ACL user of the app (components/redis.ts, redisAclLines): the default user is off.
const redisUrlOf = (host: pulumi.Input<string>, port: pulumi.Input<number>) =>
    pulumi.secret(pulumi.interpolate`redis://${REDIS_APP_USER}:${redisPassword.apply(enc)}@${host}:${port}`);
// As seen from inside the stack's network.
const internalDatabaseUrl = postgresUrl(postgres.host, postgres.port);
const internalRedisUrl = redisUrlOf(redis.host, redis.port);

// Credentials as files on the Docker host (issue 24): mounted read-only, never in an environment.
const secretFiles = new SecretFiles(
    "secrets",
    {
        dataDir: cfg.dataDir,
        owner: cfg.hostOwner,
        toolImage: postgres.imageId,
        dockerHost: cfg.dockerHost,
        files: {
            // The active login role, with the app's own password (two roles in turn across a rotation).
            app_database_url: postgresUrl(postgres.host, postgres.port, appLogin.active, appDbPassword),
            app_redis_url: internalRedisUrl,
            app_api_key: apiKey,
            // The migration step's: the owner.
            owner_database_url: internalDatabaseUrl,
            // The owner's password alone, lent to `npm run restore` (scripts/backups.ts, agentAsOwner).
            owner_db_password: dbPassword,
        },
        waitFor: [dirs],
    },
    onDocker,
);
const inApp = (file: string, as: string) => ({
    hostPath: secretFiles.paths[file]!,
    containerPath: `${SECRETS_IN_CONTAINER}/${as}`,
});

const migrations = new Migrations(
    "migrations",
    {
        migrationsDir: path.join(projectDir, "migrations"),
        image: appImage.imageId,
        networkName: network.name,
        databaseUrlFile: secretFiles.paths.owner_database_url!,
        secretsVersion: secretFiles.version,
        user: cfg.hostOwner,
        // The dump before pending migrations is the backup agent's, like every other (issue 22, item 7).
        backupContainer: cfg.backups ? backups.containerName : undefined,
        sourcePath: appSource,
        dockerHost: cfg.dockerHost,
        // A component in dependsOn waits for all of its children (the healthy container, the role's password):
        // the SDK sends their URNs as dependencies (pulumi/pulumi v3.270.0, sdk/nodejs/runtime/dependsOn.ts,
        // getAllTransitivelyReferencedResourceURNs).
        waitFor: [postgres, dirs, secretFiles, ...(cfg.backups ? [backups] : [])],
    },
    onDocker,
);

// A rollback pins a kept release (`appImage`, set by `npm run rollback`); the migration step keeps the built
// image, whose migrations are already applied, so going back touches no data.
const app = new App(
    "app",
    {
        image: cfg.app.image ?? appImage.imageId,
        containerName: names.app,
        networkName: network.name,
        externalNetworks: network.externalNames,
        env: {
            // Files, not values (app/src/secretFiles.ts): the credentials are in no environment.
            DATABASE_URL_FILE: `${SECRETS_IN_CONTAINER}/database_url`,
            REDIS_URL_FILE: `${SECRETS_IN_CONTAINER}/redis_url`,
            MARVEL_RIVALS_API_KEY_FILE: `${SECRETS_IN_CONTAINER}/api_key`,
            // A new password is a new file content, hence a new version of the app (a rotation needs one).
            CREDENTIALS_VERSION: secretFiles.version,
            APP_ENV: cfg.appEnv,
            LOG_LEVEL: cfg.logLevel,
            RATE_LIMIT_REQUESTS_PER_MINUTE: String(cfg.rateLimitRequestsPerMinute),
            ...(cfg.currentSeason ? { CURRENT_SEASON: cfg.currentSeason } : {}),
        },
        readOnlyFiles: [
            inApp("app_database_url", "database_url"),
            inApp("app_redis_url", "redis_url"),
            inApp("app_api_key", "api_key"),
        ],
        outputPath: dirs.paths.output,
        logsPath: dirs.paths.logs,
        sourcePath: appSource,
        user: cfg.hostOwner,
        publish: cfg.appPublish,
        labels: {
            ...identity,
            ...(cfg.domain ? caddyLabels(cfg.domain, names.app) : {}),
        },
        memoryLimitMb: cfg.memoryLimitMb.app,
        waitFor: [migrations, redis, dirs, secretFiles],
        dockerHost: cfg.dockerHost,
        readyTimeoutSeconds: cfg.app.readyTimeoutSeconds,
        // A rollback runs a kept release: not a new one.
        releases: cfg.app.image
            ? undefined
            : { repository: APP_IMAGE_REPOSITORY, tagPrefix: releaseTagPrefix(stack), keep: cfg.app.releasesKept },
    },
    onDocker,
);

const pgadmin = cfg.pgadmin
    ? new PgAdmin(
          "pgadmin",
          {
              image: "dpage/pgadmin4:9.8",
              containerName: names.pgadmin,
              networkName: network.name,
              email: "admin@example.com",
              password: generated("pgadmin-password"),
              publish: { port: cfg.pgadminPort, bindAddress: "127.0.0.1" },
              labels: identity,
          },
          onDocker,
      )
    : undefined;

// Every container's process limit (components/pidsLimits.ts: the provider has no pids input).
new PidsLimits(
    "pids",
    [postgres.container, redis.container, backups.container, app.container, ...(pgadmin ? [pgadmin.container] : [])],
    cfg.dockerHost,
);

// ---- outputs: connection strings for people, reachable from where they sit
/** Host a published port is reached at: the bind address, or the Docker host's name for 0.0.0.0. */
function reachableHost(bindAddress: string): string {
    if (bindAddress !== "0.0.0.0") return bindAddress;
    const host = cfg.dockerHost ? new URL(cfg.dockerHost.replace(/^ssh:\/\//, "http://")).hostname : "";
    return host || "127.0.0.1";
}
// On a server the published port is its loopback (the tunnel's end), no address of the laptop's: the URL
// keeps to the stack's network there, and `databaseTunnel` is the laptop's way in.
const pgLocal = cfg.postgresPublish && !cfg.remote ? cfg.postgresPublish : undefined;
const pgHost = pgLocal ? reachableHost(pgLocal.bindAddress) : postgres.host;
const pgPort = pgLocal?.port ?? postgres.port;
const redisHost = cfg.redisPublish ? reachableHost(cfg.redisPublish.bindAddress) : redis.host;
const redisPort = cfg.redisPublish?.port ?? redis.port;

export const databaseUrl = postgresUrl(pgHost, pgPort);
export const redisUrl = redisUrlOf(redisHost, redisPort);
/**
 * From a laptop into a server's database: the ssh command that forwards 127.0.0.1:15432 on the laptop to
 * Postgres on the server's loopback, and the URL to use while it runs (secret: it holds the password).
 * Only on a server (ssh://) with Postgres published on its loopback.
 */
const tunnel =
    cfg.remote && cfg.postgresPublish && /^127\./.test(cfg.postgresPublish.bindAddress)
        ? tunnelCommand(cfg.dockerHost, cfg.postgresPublish.port)
        : undefined;
export const databaseTunnel = tunnel
    ? pulumi.secret({
          command: tunnel,
          // A person's read-only role (components/postgres.ts, readerRole): changes go through migrations
          // or `npm run psql` on the server.
          url: postgresUrl("127.0.0.1", TUNNEL_LOCAL_PORT, readerRole(cfg.dbUser), readerDbPassword),
      })
    : undefined;
export const appUrl = cfg.domain
    ? `https://${cfg.domain}`
    : cfg.appPublish
      ? `http://${reachableHost(cfg.appPublish.bindAddress)}:${cfg.appPublish.port}`
      : `http://app:${app.port} (inside the ${cfg.networkName} network)`;
export const dataDir = cfg.dataDir;
export const networkName = network.name;
// Names and times only: plain, whatever a provider version marks (pulumi-command 1.2.1 leaves stdout plain).
export const migrationsApplied = pulumi.unsecret(migrations.applied);
/**
 * What this run's migration step will apply, read from the database before anything changes (in a preview
 * too): pending files with their first line, drifted, missing or failed ones, and whether a backup comes
 * first. Also printed as info lines. Not secret: file names and first lines only.
 */
export const pendingMigrations = readPendingMigrations({
    containerName: names.postgres,
    dbUser: cfg.dbUser,
    dbName: cfg.dbName,
    dockerHost: cfg.dockerHost,
    migrationsDir: path.join(projectDir, "migrations"),
    backups: cfg.backups,
});
export const pgadminUrl = pgadmin?.url;
/** Where the dumps are, on the Docker host, and when they are taken (UTC; "none": on demand only). */
export const backupDir = dirs.paths.backups;
export const backupSchedule = cfg.backup.scheduleText ?? "none";
export const backupContainer = backups.containerName;
/** The serving version of the app: its container (find it by the label marvel-rivals-stats.role=app). */
export const appContainer = app.containerName;
/** The release this deploy recorded (a tag on the Docker host that `npm run rollback` can return to). */
export const appRelease = app.release.apply((r) => r ?? (cfg.app.image ? `pinned to ${cfg.app.image}` : "none"));
