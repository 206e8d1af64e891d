import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as command from "@pulumi/command";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import {
    ROOT_ENTRYPOINT_CAPS,
    containerDefaults,
    dockerEnvironment,
    hardening,
    healthTiming,
    labelList,
    memoryLimit,
    publishedPorts,
    statefulContainerOptions,
    type Labels,
    type Publish,
} from "./common";
import {
    APPLY_SETTINGS,
    CHECK_MAJOR,
    PGDATA_SUBDIR,
    POSTGRES_STOP_GRACE_SECONDS,
    READ_POSTGRES,
    majorMismatch,
    parseReadout,
    planPostgres,
    readSettingsSql,
    settingsSql,
    unknownSettingsError,
    type PostgresPlan,
    type PostgresSettings,
} from "./postgresChanges";

export interface PostgresArgs {
    image: string;
    platform?: string;
    containerName: string;
    networkName: pulumi.Input<string>;
    /** Host directory mounted at /var/lib/postgresql/data; PGDATA lives in a subdirectory of it. */
    dataPath: pulumi.Input<string>;
    dbName: string;
    dbUser: string;
    /** The owner's (bootstrap superuser's) password: the migration step's and the credentials step's. */
    password: pulumi.Input<string>;
    /** The app's login role's password (the active one of `loginRoles`): never the owner's. */
    appPassword: pulumi.Input<string>;
    /** The backup agent's role's (`<dbUser>_backup`). */
    backupPassword: pulumi.Input<string>;
    /** A person's read-only role's (`<dbUser>_reader`, the laptop's tunnel). */
    readerPassword: pulumi.Input<string>;
    /** The SCRAM salt (16 random bytes, hex), made once and kept in the state; unset: derived (tests). */
    scramSalt?: pulumi.Input<string>;
    /**
     * The app's login roles, used in turn so that a new password never fails the version still serving:
     * `active` gets the password now; `inactive` is left as it is (the serving version may still use it;
     * `npm run rotate` disables it once that version is gone). Both are members of `<dbUser>_app`, the
     * rights of the app's queries only.
     */
    loginRoles: { active: string; inactive: string };
    /** Publish 5432 on the Docker host; omit to keep the database on the private network only. */
    publish?: Publish;
    memoryLimitMb?: number;
    /** Resources that must be complete before the container starts (the host directories). */
    waitFor?: pulumi.Input<pulumi.Resource>[];
    /** Labels of the container (the stack's identity). */
    labels?: Labels;
    /** Docker endpoint for the `docker` CLI (the password step): the stack's provider's. */
    dockerHost: string;
    /** Server settings applied with ALTER SYSTEM (`postgresSettings`); undefined: none. */
    settings?: PostgresSettings;
    /** How to move the data directory to another major version: named when an image of another is refused. */
    upgradeHint: string;
}

/**
 * PostgreSQL's SCRAM-SHA-256 verifier for a password (RFC 5802/7677, the format `ALTER ROLE ... PASSWORD`
 * accepts pre-hashed). `salt` (16 bytes, base64 or hex) is made at random once and kept in the state
 * (index.ts, `scram-salt`), so the same password gives the same verifier (no change on every run) without
 * the salt being a function of the password. Without one, the salt of earlier versions (derived from the
 * password) is used: only tests and the rotation's old verifiers rely on it.
 */
export function scramVerifier(password: string, salt?: string, iterations = 4096): string {
    const saltBytes =
        salt === undefined
            ? createHash("sha256").update(`marvel-rivals-stats:${password}`).digest().subarray(0, 16)
            : /^[0-9a-f]{32}$/.test(salt)
              ? Buffer.from(salt, "hex")
              : Buffer.from(salt, "base64");
    if (saltBytes.length < 16) throw new Error("the SCRAM salt must be at least 16 bytes");
    const salted = pbkdf2Sync(password, saltBytes, iterations, 32, "sha256");
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    const storedKey = createHash("sha256").update(clientKey).digest();
    const serverKey = createHmac("sha256", salted).update("Server Key").digest();
    const b64 = (b: Buffer) => b.toString("base64");
    return `SCRAM-SHA-256$${iterations}:${b64(saltBytes)}$${b64(storedKey)}:${b64(serverKey)}`;
}

/** The role the app's login roles are members of: the rights of the app's queries, nothing more. */
export function appGroupRole(owner: string): string {
    return `${owner}_app`;
}

/**
 * The backup agent's login role: reads everything (`pg_read_all_data`, PostgreSQL 14+), writes nothing,
 * owns nothing. A password of its own; restores go through the Postgres container's local socket as the
 * owner, never through this role.
 */
export function backupRole(owner: string): string {
    return `${owner}_backup`;
}

/**
 * A person's read-only login (the laptop's tunnel, `databaseTunnel`): `pg_read_all_data` like the backup
 * role, but a role and password of its own, so that the server's log tells a person from the agent and a
 * laptop's copy of the URL opens nothing the agent's file does.
 */
export function readerRole(owner: string): string {
    return `${owner}_reader`;
}

/**
 * Each login's own password. One password for all (the previous version's way, and a plain string here)
 * would let the app's password, which the app's process holds, log in as the owner, a superuser.
 */
export interface RolePasswords {
    owner: string;
    app: string;
    backup: string;
    reader: string;
}

/** Schemas whose tables the app reads and writes (its data: players, matches, match_participants, ...). */
export const APP_WRITE_SCHEMAS = ["public"];
/** Schemas whose tables the app only reads (the migration history its readiness check reads). */
export const APP_READ_SCHEMAS = ["migration_runner"];

/**
 * The credentials step's SQL, run as the bootstrap superuser (`owner`, POSTGRES_USER: the migration step's
 * role) through the container's local socket, in the app's database, on every create and every new password:
 * - the owner's password;
 * - `<owner>_app`, a NOLOGIN group with exactly the rights of the app's queries (app/src/stats.ts, seed.ts,
 *   checks.ts): SELECT, INSERT, UPDATE, DELETE on the tables of `public`, USAGE on its sequences, SELECT on
 *   the migration history; for the tables migrations create later too (default privileges of the owner).
 *   No CREATE anywhere (PostgreSQL 15+ gives PUBLIC no CREATE on `public`; revoked again for a database
 *   that was made otherwise), no superuser, no pg_execute_server_program;
 * - the app's two login roles, members of that group only. Earlier versions made them members of the owner
 *   acting as it (`SET role`): that membership and setting are removed here, so an existing stack moves on
 *   its next `up` (its sessions keep the old rights until they reconnect: the rotation's new version opens
 *   new ones). The inactive role is created NOLOGIN on a new database and otherwise keeps its password: the
 *   version serving may still log in with it;
 * - `<owner>_backup` (the backup agent) and `<owner>_reader` (a person's tunnel), login roles with
 *   pg_read_all_data.
 * Each login has its own password (`RolePasswords`): the app's must not open the owner.
 */
export function credentialsSql(
    owner: string,
    roles: { active: string; inactive: string },
    password: string | RolePasswords,
    salt?: string,
): string {
    const app = appGroupRole(owner);
    const backup = backupRole(owner);
    const reader = readerRole(owner);
    for (const r of [owner, roles.active, roles.inactive, app, backup, reader])
        if (!/^[a-z_][a-z0-9_]{0,62}$/.test(r))
            throw new Error(`role name ${JSON.stringify(r)} is not a plain identifier`);
    const passwords =
        typeof password === "string"
            ? { owner: password, app: password, backup: password, reader: password }
            : password;
    const verifier = (role: keyof RolePasswords) => scramVerifier(passwords[role], salt);
    const limited = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
    const ensure = (r: string, extra = "") =>
        `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${r}') THEN CREATE ROLE "${r}" NOLOGIN${extra}; END IF; END $$;`;
    // Only when the schema exists (the migration runner makes its own on the first `up`); the default
    // privileges below cover a schema and tables made later.
    const inSchema = (schema: string, sql: string) =>
        `DO $$ BEGIN IF EXISTS (SELECT FROM pg_namespace WHERE nspname = '${schema}') THEN ${sql} END IF; END $$;`;
    const write = "SELECT, INSERT, UPDATE, DELETE";
    return [
        `ALTER ROLE "${owner}" PASSWORD '${verifier("owner")}';`,
        ensure(app),
        `ALTER ROLE "${app}" WITH NOLOGIN ${limited};`,
        // Objects the owner makes from now on (the migration step runs as the owner).
        `ALTER DEFAULT PRIVILEGES FOR ROLE "${owner}" GRANT USAGE ON SCHEMAS TO "${app}";`,
        `ALTER DEFAULT PRIVILEGES FOR ROLE "${owner}" GRANT SELECT ON TABLES TO "${app}";`,
        ...APP_WRITE_SCHEMAS.flatMap((s) => [
            `ALTER DEFAULT PRIVILEGES FOR ROLE "${owner}" IN SCHEMA "${s}" GRANT ${write} ON TABLES TO "${app}";`,
            `ALTER DEFAULT PRIVILEGES FOR ROLE "${owner}" IN SCHEMA "${s}" GRANT USAGE, SELECT ON SEQUENCES TO "${app}";`,
        ]),
        // What exists already (a stack made by an earlier version).
        ...APP_WRITE_SCHEMAS.map((s) =>
            inSchema(
                s,
                `REVOKE CREATE ON SCHEMA "${s}" FROM PUBLIC; GRANT USAGE ON SCHEMA "${s}" TO "${app}"; GRANT ${write} ON ALL TABLES IN SCHEMA "${s}" TO "${app}"; GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "${s}" TO "${app}";`,
            ),
        ),
        ...APP_READ_SCHEMAS.map((s) =>
            inSchema(
                s,
                `GRANT USAGE ON SCHEMA "${s}" TO "${app}"; GRANT SELECT ON ALL TABLES IN SCHEMA "${s}" TO "${app}";`,
            ),
        ),
        ensure(roles.active, ` INHERIT IN ROLE "${app}"`),
        ensure(roles.inactive, ` INHERIT IN ROLE "${app}"`),
        ...[roles.active, roles.inactive].flatMap((r) => [
            // Earlier versions: a member of the owner, acting as it.
            `REVOKE "${owner}" FROM "${r}";`,
            `ALTER ROLE "${r}" RESET role;`,
            `GRANT "${app}" TO "${r}";`,
            `ALTER ROLE "${r}" WITH INHERIT ${limited};`,
        ]),
        `ALTER ROLE "${roles.active}" WITH LOGIN PASSWORD '${verifier("app")}';`,
        ensure(backup),
        `ALTER ROLE "${backup}" WITH LOGIN INHERIT ${limited} PASSWORD '${verifier("backup")}';`,
        `GRANT pg_read_all_data TO "${backup}";`,
        ensure(reader),
        `ALTER ROLE "${reader}" WITH LOGIN INHERIT ${limited} PASSWORD '${verifier("reader")}';`,
        `GRANT pg_read_all_data TO "${reader}";`,
    ].join("\n");
}

/** The app's two login roles for `owner` and which one a rotation count makes active. */
export function loginRoles(owner: string, rotation: number): { active: string; inactive: string } {
    const [a, b] = [`${owner}_a`, `${owner}_b`];
    return rotation % 2 === 0 ? { active: a, inactive: b } : { active: b, inactive: a };
}

/** PostgreSQL with its data on a host bind mount, healthy only once it accepts TCP connections. */
export class Postgres extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    /** The ID of the image the server runs: its client tools (pg_dump, pg_restore) match the server. */
    public readonly imageId: pulumi.Output<string>;
    /** Sets the role's password to the configured one; dependents wait for it as for the container. */
    public readonly credentials: command.local.Command;
    /** Applies `postgresSettings`: a reload, or a graceful restart for postmaster settings. */
    public readonly settings: command.local.Command;
    /** What the preview said each change does (read before anything changes). */
    public readonly plan: pulumi.Output<PostgresPlan>;
    /** Host name on the stack's network. */
    public readonly host = "postgres";
    public readonly port = 5432;
    /** The backup agent's login role (pg_read_all_data, a password of its own): `<dbUser>_backup`. */
    public readonly backupUser: string;

    constructor(name: string, args: PostgresArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:database:Postgres", name, {}, opts);
        if (!args.image) throw new Error("`image` is required");
        if (!args.containerName) throw new Error("`containerName` is required");
        this.backupUser = backupRole(args.dbUser);

        // keepLocally: destroying the stack must not delete an image other projects may share.
        const image = new docker.RemoteImage(
            `${name}-image`,
            { name: args.image, keepLocally: true, platform: args.platform },
            { parent: this },
        );
        this.imageId = image.imageId;
        const settings = args.settings ?? {};
        const engineEnv = dockerEnvironment(args.dockerHost);

        // The preview says which shape each change takes (postgresChanges.ts), from a read-only look at the
        // running container; settings the server does not know stop the run here, before anything changes.
        const read = command.local.runOutput({
            command: READ_POSTGRES,
            logging: command.types.enums.local.Logging.None,
            environment: {
                ...engineEnv,
                PG_CONTAINER: args.containerName,
                PG_IMAGE: args.image,
                PG_USER: args.dbUser,
                PG_DB: args.dbName,
                SETTINGS_SQL: readSettingsSql(Object.keys(settings)),
            },
        });
        this.plan = read.stdout.apply((stdout) => {
            const plan = planPostgres(parseReadout(stdout), {
                containerName: args.containerName,
                image: args.image,
                memoryLimitMb: args.memoryLimitMb,
                settings,
                upgradeHint: args.upgradeHint,
            });
            for (const line of plan.info) void pulumi.log.info(line, this);
            for (const line of plan.warn) void pulumi.log.warn(line, this);
            if (plan.unknownSettings.length > 0)
                throw new pulumi.RunError(unknownSettingsError(plan.unknownSettings.join(", ")));
            return plan;
        });

        // Before the container is created or replaced: an image of another major version than the data
        // directory's would delete the running server and loop on "database files are incompatible".
        // The container depends on this step, so a refusal leaves it untouched (the engine registers a
        // resource only once its dependencies succeeded).
        const majorCheck = new command.local.Command(
            `${name}-major-version`,
            {
                create: CHECK_MAJOR,
                environment: {
                    ...engineEnv,
                    PG_IMAGE: image.imageId,
                    DATA_DIR: args.dataPath,
                    REFUSAL: majorMismatch("{DATA}", "{IMAGE}", args.image, args.upgradeHint),
                },
                // Each new image is checked again.
                triggers: [image.imageId],
            },
            { parent: this, dependsOn: args.waitFor },
        );

        this.container = new docker.Container(
            `${name}-container`,
            {
                name: args.containerName,
                // The image ID, not the name: a name makes the provider see a diff on every run.
                image: image.imageId,
                envs: [
                    `POSTGRES_DB=${args.dbName}`,
                    `POSTGRES_USER=${args.dbUser}`,
                    // initdb's superuser password: a random UUID read from the kernel when the data directory
                    // is created, never stored anywhere. The credentials step below sets the real one through
                    // the local socket before anything logs in; so the password is not in this container's
                    // environment, and a new one neither replaces nor restarts the database.
                    "POSTGRES_PASSWORD_FILE=/proc/sys/kernel/random/uuid",
                    // A subdirectory: initdb needs an empty directory it can own, and appdata shares
                    // (Unraid) often hold files or ownership initdb refuses at the mount point itself.
                    `PGDATA=/var/lib/postgresql/data/${PGDATA_SUBDIR}`,
                ],
                volumes: [{ hostPath: args.dataPath, containerPath: "/var/lib/postgresql/data" }],
                labels: labelList(args.labels),
                networksAdvanced: [{ name: args.networkName, aliases: [this.host] }],
                ports: publishedPorts(this.port, args.publish),
                healthcheck: {
                    // TCP on 127.0.0.1, not the socket: the image's first-start init server listens on the
                    // socket only, so a socket check reports healthy before the real server is up.
                    tests: ["CMD-SHELL", 'pg_isready -h 127.0.0.1 -p 5432 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'],
                    // Probed every second (issue 26): before Docker 25 there is no start_interval (kreuzwerker
                    // v4.2.0, resource_docker_container_funcs.go, createContainer, maps start_interval to
                    // HealthConfig.StartInterval, which API < 1.44 refuses), and the engine runs the first probe
                    // one interval after the start (moby v24 daemon/health.go, monitor), so the interval is what
                    // the migration step waits on after Postgres accepts. 15 retries keep the old 15 s before a
                    // running database is called unhealthy. Cost: one pg_isready exec a second (docs/performance.md).
                    ...healthTiming({ interval: "1s", timeout: "5s", retries: 15, startPeriod: "1m0s" }),
                },
                // Dependents (the migration step) are created only once the container is healthy.
                wait: true,
                waitTimeout: 180,
                // The provider stops a container for this long before removing it; without it, it removes
                // the running container at once (SIGKILL). PostgreSQL needs the time for a clean shutdown.
                destroyGraceSeconds: POSTGRES_STOP_GRACE_SECONDS,
                ...memoryLimit(args.memoryLimitMb),
                ...containerDefaults,
                // The official entrypoint chowns PGDATA and drops to `postgres` (common.ts, ROOT_ENTRYPOINT_CAPS).
                ...hardening({ capAdd: ROOT_ENTRYPOINT_CAPS }),
            },
            {
                parent: this,
                ...statefulContainerOptions(args.memoryLimitMb),
                dependsOn: [...(args.waitFor ?? []), majorCheck],
                additionalSecretOutputs: ["envs"],
            },
        );
        // POSTGRES_PASSWORD only counts when the image creates the database. The data outlives the stack
        // (destroy, lost state): when a new password is generated or configured, the existing role must
        // get it too, or nothing can log in. Through the container's local socket (trust in the official
        // image), with a SCRAM verifier computed here: no plaintext password reaches the server or argv.
        this.credentials = new command.local.Command(
            `${name}-password`,
            {
                create: [
                    "set -eu",
                    'printf \'%s\\n\' "$ROLE_SQL" | docker exec -i "$PG_CONTAINER" psql -X -q -v ON_ERROR_STOP=1 -U "$PG_USER" -d "$PG_DB"',
                    'echo "password of $PG_USER, of the login role $LOGIN_ROLE and of $BACKUP_ROLE set; the app\'s rights granted to $APP_GROUP"',
                ].join("\n"),
                environment: {
                    ...dockerEnvironment(args.dockerHost),
                    PG_CONTAINER: this.container.name,
                    PG_USER: args.dbUser,
                    PG_DB: args.dbName,
                    LOGIN_ROLE: args.loginRoles.active,
                    APP_GROUP: appGroupRole(args.dbUser),
                    BACKUP_ROLE: backupRole(args.dbUser),
                    ROLE_SQL: pulumi.secret(
                        pulumi
                            .all([
                                args.password,
                                args.appPassword,
                                args.backupPassword,
                                args.readerPassword,
                                args.scramSalt,
                            ])
                            .apply(([owner, app, backup, reader, salt]) =>
                                credentialsSql(args.dbUser, args.loginRoles, { owner, app, backup, reader }, salt),
                            ),
                    ),
                },
                // A replaced container (new ID) gets the step again.
                triggers: [this.container.id],
            },
            { parent: this, dependsOn: [this.container] },
        );
        const sql = settingsSql(settings);
        this.settings = new command.local.Command(
            `${name}-settings`,
            {
                create: APPLY_SETTINGS,
                environment: {
                    ...engineEnv,
                    PG_CONTAINER: this.container.name,
                    PG_USER: args.dbUser,
                    PG_DB: args.dbName,
                    STOP_GRACE: String(POSTGRES_STOP_GRACE_SECONDS),
                    UNKNOWN_MESSAGE: unknownSettingsError("{NAMES}"),
                    ...sql,
                },
            },
            { parent: this, dependsOn: [this.credentials] },
        );
        this.registerOutputs({ containerId: this.container.id, plan: this.plan });
    }
}
