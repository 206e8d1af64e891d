import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { containerDefaults } from "./common";

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
    /** Publish 5432 on the Docker host; omit to keep the database on the private network only. */
    publish?: { port: number; bindAddress: string };
    memoryLimitMb?: number;
}

/** PostgreSQL with its data on a host bind mount, healthy only once it accepts TCP connections. */
export class Postgres extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    /** Image ID, reused by steps that need a small shell on the Docker host. */
    public readonly imageId: pulumi.Output<string>;
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

        this.container = new docker.Container(
            `${name}-container`,
            {
                name: args.containerName,
                // The image ID, not the name: a name makes the provider see a diff on every run.
                image: image.imageId,
                envs: [
                    `POSTGRES_DB=${args.dbName}`,
                    `POSTGRES_USER=${args.dbUser}`,
                    pulumi.interpolate`POSTGRES_PASSWORD=${args.password}`,
                    // A subdirectory: initdb needs an empty directory it can own, and appdata shares
                    // (Unraid) often hold files or ownership initdb refuses at the mount point itself.
                    "PGDATA=/var/lib/postgresql/data/pgdata",
                ],
                volumes: [{ hostPath: args.dataPath, containerPath: "/var/lib/postgresql/data" }],
                networksAdvanced: [{ name: args.networkName, aliases: [this.host] }],
                ports: args.publish
                    ? [{ internal: this.port, external: args.publish.port, ip: args.publish.bindAddress }]
                    : [],
                healthcheck: {
                    // TCP on 127.0.0.1, not the socket: the image's first-start init server listens on the
                    // socket only, so a socket check reports healthy before the real server is up.
                    tests: ["CMD-SHELL", 'pg_isready -h 127.0.0.1 -p 5432 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'],
                    interval: "10s",
                    timeout: "5s",
                    retries: 5,
                    startPeriod: "60s",
                    // Probe every second while starting (Docker 25+), so dependents do not wait 10 s.
                    startInterval: "1s",
                },
                // Dependents (the migration step) are created only once the container is healthy.
                wait: true,
                waitTimeout: 180,
                // 0 or unset: no limit.
                memory: args.memoryLimitMb ? args.memoryLimitMb : undefined,
                ...containerDefaults,
            },
            // A fixed container name cannot exist twice: remove the old container before its replacement.
            { parent: this, deleteBeforeReplace: true, additionalSecretOutputs: ["envs"] },
        );
        this.registerOutputs({ imageId: this.imageId, containerId: this.container.id });
    }
}
