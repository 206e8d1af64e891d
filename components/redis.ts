import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import {
    containerDefaults,
    healthTiming,
    labelList,
    memoryLimit,
    publishedPorts,
    statefulContainerOptions,
    type Labels,
    type Publish,
} from "./common";

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
    /** Labels of the container (the stack's identity). */
    labels?: Labels;
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

        // Everything but the password goes in as arguments. Without persistence, `save ""` (no RDB snapshots)
        // goes in through the config on stdin: the provider refuses to create a container with an empty item
        // in `command` (kreuzwerker v4.2.0, internal/provider/resource_docker_container_funcs.go,
        // resourceDockerContainerCreate: "values for command may not be empty"); Redis reads `""` in its
        // config as the empty value.
        // A cache: bounded, and evicting the least recently used keys when full, instead of refusing writes
        // or growing until the host runs out. Three quarters of the container's limit when it has one (Redis
        // needs room beyond its data), else 128 MB.
        const maxMemoryMb = args.memoryLimitMb ? Math.floor(args.memoryLimitMb * 0.75) : 128;
        const config = [
            "requirepass $REDIS_PASSWORD",
            `maxmemory ${maxMemoryMb}mb`,
            "maxmemory-policy allkeys-lru",
            ...(args.persistence ? [] : ['save ""']),
        ];
        const persistence = args.persistence
            ? ["--appendonly", "yes", "--appendfsync", "everysec"]
            : ["--appendonly", "no"];
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
                    `exec docker-entrypoint.sh redis-server - "$@" <<EOF\n${config.join("\n")}\nEOF`,
                    "redis-server",
                    ...persistence,
                ],
                envs: [
                    pulumi.interpolate`REDIS_PASSWORD=${args.password}`,
                    // redis-cli reads the password from REDISCLI_AUTH: the healthcheck needs no -a flag.
                    pulumi.interpolate`REDISCLI_AUTH=${args.password}`,
                ],
                volumes: [{ hostPath: args.dataPath, containerPath: "/data" }],
                labels: labelList(args.labels),
                networksAdvanced: [{ name: args.networkName, aliases: [this.host] }],
                ports: publishedPorts(this.port, args.publish),
                healthcheck: {
                    tests: ["CMD-SHELL", "redis-cli ping | grep -q PONG"],
                    ...healthTiming({ interval: "3s", timeout: "3s", retries: 5, startPeriod: "10s" }),
                },
                wait: true,
                waitTimeout: 120,
                // Time to write the append-only file on the way down, instead of a SIGKILL.
                destroyGraceSeconds: 30,
                ...memoryLimit(args.memoryLimitMb),
                ...containerDefaults,
            },
            {
                parent: this,
                ...statefulContainerOptions(args.memoryLimitMb),
                dependsOn: args.waitFor,
                additionalSecretOutputs: ["envs"],
            },
        );
        this.registerOutputs({ containerId: this.container.id });
    }
}
