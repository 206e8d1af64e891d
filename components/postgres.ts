import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as command from "@pulumi/command";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import {
    containerDefaults,
    dockerEnvironment,
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
    password: pulumi.Input<string>;
    /**
     * The app's login roles, used in turn so that a new password never fails the version still serving:
     * `active` gets the password now; `inactive` is left as it is (the serving version may still use it;
     * `npm run rotate` disables it once that version is gone). Both are members of `dbUser`, which owns
     * everything, and act as it (`SET role`).
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
 * accepts pre-hashed). The salt is derived from the password so the same password gives the same
 * verifier: an unchanged password must not show up as a change on every run.
 */
export function scramVerifier(password: string, iterations = 4096): string {
    const salt = createHash("sha256").update(`marvel-rivals-stats:${password}`).digest().subarray(0, 16);
    const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    const storedKey = createHash("sha256").update(clientKey).digest();
    const serverKey = createHmac("sha256", salted).update("Server Key").digest();
    const b64 = (b: Buffer) => b.toString("base64");
    return `SCRAM-SHA-256$${iterations}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}

/**
 * The credentials step's SQL: the owner's password, and the active login role made (with its sibling, a
 * member of the owner that acts as it) and given the password. The inactive role is created NOLOGIN on a
 * new database and otherwise left alone: the version serving may still log in with it.
 */
export function credentialsSql(owner: string, roles: { active: string; inactive: string }, password: string): string {
    for (const r of [owner, roles.active, roles.inactive])
        if (!/^[a-z_][a-z0-9_]{0,62}$/.test(r))
            throw new Error(`role name ${JSON.stringify(r)} is not a plain identifier`);
    const verifier = scramVerifier(password);
    const make = (r: string) =>
        `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${r}') THEN CREATE ROLE "${r}" NOLOGIN INHERIT IN ROLE "${owner}"; END IF; END $$;`;
    return [
        `ALTER ROLE "${owner}" PASSWORD '${verifier}';`,
        make(roles.active),
        make(roles.inactive),
        `ALTER ROLE "${roles.active}" SET role = '${owner}';`,
        `ALTER ROLE "${roles.inactive}" SET role = '${owner}';`,
        `ALTER ROLE "${roles.active}" WITH LOGIN PASSWORD '${verifier}';`,
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

    constructor(name: string, args: PostgresArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:database:Postgres", name, {}, opts);
        if (!args.image) throw new Error("`image` is required");
        if (!args.containerName) throw new Error("`containerName` is required");

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
                    'echo "password of $PG_USER and of the login role $LOGIN_ROLE set"',
                ].join("\n"),
                environment: {
                    ...dockerEnvironment(args.dockerHost),
                    PG_CONTAINER: this.container.name,
                    PG_USER: args.dbUser,
                    PG_DB: args.dbName,
                    LOGIN_ROLE: args.loginRoles.active,
                    ROLE_SQL: pulumi.secret(
                        pulumi.output(args.password).apply((p) => credentialsSql(args.dbUser, args.loginRoles, p)),
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
