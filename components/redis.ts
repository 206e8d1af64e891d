import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as command from "@pulumi/command";
import {
    containerDefaults,
    dockerEnvironment,
    healthTiming,
    labelList,
    memoryChange,
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
    /** Docker endpoint for the `docker` CLI (the maxmemory step): the stack's provider's. */
    dockerHost: string;
}

/**
 * Sets MAXMEMORY to three quarters of the container's memory limit, read from its cgroup (v2
 * `memory.max`, v1 `memory.limit_in_bytes`), or 128mb without a limit ("max", or v1's near-2^63 "none").
 */
export const MAXMEMORY_FROM_CGROUP = [
    "limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || echo max)",
    `MAXMEMORY=$(awk -v l="$limit" 'BEGIN { if (l == "max" || l + 0 >= 2 ^ 52) print "128mb"; else printf "%dmb\\n", l * 0.75 / 1048576 }')`,
].join("\n");

/** Redis with a password that never appears on a command line. */
export class Redis extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    /** Sets Redis' maxmemory from the container's limit, again whenever the limit changes. */
    public readonly maxMemory: command.local.Command;
    /** What the preview said a memory limit change does ("" when none changes). */
    public readonly memoryPlan: pulumi.Output<string>;
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
        // needs room beyond its data), else 128 MB. Read from the container's own cgroup when Redis starts,
        // and set on the running server when the limit changes (the maxmemory step below), so that a new
        // limit is a `docker update` in place (issue 21): in the command, it would replace the container.
        const config = [
            "requirepass $REDIS_PASSWORD",
            "maxmemory $MAXMEMORY",
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
                    `${MAXMEMORY_FROM_CGROUP}\nexec docker-entrypoint.sh redis-server - "$@" <<EOF\n${config.join("\n")}\nEOF`,
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
                    // Left at 3 s (issue 26): the app waits for Redis and for the migrations, which end later
                    // than Redis' first probe, so a shorter interval would cost CPU (docs/performance.md) for
                    // nothing on the critical path.
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
        // The preview says what a new memory limit does to the running container (read-only; none yet: nothing).
        const running = command.local.runOutput({
            command:
                'docker container inspect --format "{{.HostConfig.Memory}}" "$REDIS_CONTAINER" 2>/dev/null || echo absent',
            logging: command.types.enums.local.Logging.None,
            environment: { ...dockerEnvironment(args.dockerHost), REDIS_CONTAINER: args.containerName },
        });
        this.memoryPlan = running.stdout.apply((stdout) => {
            const bytes = stdout.trim();
            const change = /^\d+$/.test(bytes) ? memoryChange(Number(bytes), args.memoryLimitMb) : undefined;
            if (change?.inPlace)
                void pulumi.log.info(
                    `redis (${args.containerName}): ${change.what}: updated in place, no restart; maxmemory follows`,
                    this,
                );
            else if (change)
                void pulumi.log.warn(
                    `redis (${args.containerName}): ${change.what}: the container is replaced (the cache starts empty)`,
                    this,
                );
            return change?.what ?? "";
        });

        // A memory limit changed in place reaches Redis here: the same reading of the cgroup, on the running
        // server (redis-cli takes the password from REDISCLI_AUTH in the container's environment).
        this.maxMemory = new command.local.Command(
            `${name}-maxmemory`,
            {
                create: [
                    "set -eu",
                    'docker exec "$REDIS_CONTAINER" sh -c "$SET_MAXMEMORY"',
                    'echo "maxmemory of $REDIS_CONTAINER: $(docker exec "$REDIS_CONTAINER" redis-cli CONFIG GET maxmemory | tail -n 1) bytes"',
                ].join("\n"),
                environment: {
                    ...dockerEnvironment(args.dockerHost),
                    REDIS_CONTAINER: this.container.name,
                    SET_MAXMEMORY: `${MAXMEMORY_FROM_CGROUP}\nredis-cli CONFIG SET maxmemory "$MAXMEMORY" >/dev/null`,
                    MEMORY_LIMIT_MB: String(args.memoryLimitMb ?? 0),
                },
            },
            { parent: this, dependsOn: [this.container] },
        );
        this.registerOutputs({ containerId: this.container.id, memoryPlan: this.memoryPlan });
    }
}
