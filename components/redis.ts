import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { containerDefaults, memoryLimit, publishedPorts, type Publish } from "./common";

export interface RedisArgs {
    image: string;
    platform?: string;
    containerName: string;
    networkName: pulumi.Input<string>;
    /** Host directory mounted at /data. */
    dataPath: pulumi.Input<string>;
    password: pulumi.Input<string>;
    /** Append-only file persistence; off means nothing is written to disk. */
    persistence: boolean;
    publish?: Publish;
    memoryLimitMb?: number;
    /** Resources that must be complete before the container starts (the host directories). */
    waitFor?: pulumi.Input<pulumi.Resource>[];
}

/** Redis with a password that never appears on a command line. */
export class Redis extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    public readonly host = "redis";
    public readonly port = 6379;

    constructor(name: string, args: RedisArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:cache:Redis", name, {}, opts);
        if (!args.image) throw new Error("`image` is required");

        const image = new docker.RemoteImage(
            `${name}-image`,
            { name: args.image, keepLocally: true, platform: args.platform },
            { parent: this },
        );

        const persistence = args.persistence
            ? ["--appendonly", "yes", "--appendfsync", "everysec"]
            : ["--appendonly", "no", "--save", ""];
        this.container = new docker.Container(
            `${name}-container`,
            {
                name: args.containerName,
                image: image.imageId,
                // `redis-server -` reads its config from stdin: the password goes in through a here-document
                // from the environment instead of `--requirepass` in the process list. The image's
                // entrypoint still drops root and owns /data as it does for a plain `redis-server` command.
                command: [
                    "sh",
                    "-c",
                    'exec docker-entrypoint.sh redis-server - "$@" <<EOF\nrequirepass $REDIS_PASSWORD\nEOF',
                    "redis-server",
                    ...persistence,
                ],
                envs: [
                    pulumi.interpolate`REDIS_PASSWORD=${args.password}`,
                    // redis-cli reads the password from REDISCLI_AUTH: the healthcheck needs no -a flag.
                    pulumi.interpolate`REDISCLI_AUTH=${args.password}`,
                ],
                volumes: [{ hostPath: args.dataPath, containerPath: "/data" }],
                networksAdvanced: [{ name: args.networkName, aliases: [this.host] }],
                ports: publishedPorts(this.port, args.publish),
                healthcheck: {
                    tests: ["CMD-SHELL", "redis-cli ping | grep -q PONG"],
                    // Docker < 25 ignores startInterval and probes first one interval after start, which
                    // gates everything downstream: keep the interval short.
                    interval: "5s",
                    timeout: "3s",
                    retries: 5,
                    startPeriod: "10s",
                    startInterval: "1s",
                },
                wait: true,
                waitTimeout: 120,
                memory: memoryLimit(args.memoryLimitMb),
                ...containerDefaults,
            },
            { parent: this, deleteBeforeReplace: true, dependsOn: args.waitFor, additionalSecretOutputs: ["envs"] },
        );
        this.registerOutputs({ containerId: this.container.id });
    }
}
