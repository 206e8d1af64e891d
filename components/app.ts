import * as pulumi from "@pulumi/pulumi";
import { APP_PORT } from "./names";
import * as docker from "@pulumi/docker";
import {
    containerDefaults,
    containerOptions,
    healthTiming,
    labelList,
    memoryLimit,
    publishedPorts,
    requireUidGid,
    type Labels,
    type Publish,
} from "./common";

export interface AppArgs {
    /** Image ID of the built app image. */
    image: pulumi.Input<string>;
    containerName: string;
    networkName: pulumi.Input<string>;
    /** Further networks to join (a reverse proxy's). */
    externalNetworks?: pulumi.Input<string[]>;
    env: Record<string, pulumi.Input<string>>;
    /** Host directories mounted at /app/output and /app/logs. */
    outputPath: pulumi.Input<string>;
    logsPath: pulumi.Input<string>;
    /** Host source directory bind-mounted read-only at /app/src for hot reload. */
    sourcePath?: string;
    /** `uid:gid` the process runs as: the owner of its host directories. */
    user: string;
    publish?: Publish;
    /** Labels of the container (the stack's identity, a reverse proxy's routing). */
    labels?: Labels;
    memoryLimitMb?: number;
    /** Resources that must have completed first (the migration step). */
    waitFor: pulumi.Input<pulumi.Resource>[];
}

export { APP_PORT };

/** The app container: starts once the migration step has succeeded, healthy once /health/ready answers. */
export class App extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    public readonly port = APP_PORT;
    /** The container's name, for `docker exec` (e.g. `seed`). */
    public readonly containerName: pulumi.Output<string>;

    constructor(name: string, args: AppArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:app:App", name, {}, opts);
        requireUidGid("user", args.user);

        const volumes: docker.types.input.ContainerVolume[] = [
            { hostPath: args.outputPath, containerPath: "/app/output" },
            { hostPath: args.logsPath, containerPath: "/app/logs" },
        ];
        if (args.sourcePath) volumes.push({ hostPath: args.sourcePath, containerPath: "/app/src", readOnly: true });

        const networks = pulumi
            .output(args.externalNetworks ?? [])
            .apply((external) => [
                { name: pulumi.output(args.networkName), aliases: ["app"] },
                ...external.map((n) => ({ name: pulumi.output(n) })),
            ]);

        this.container = new docker.Container(
            `${name}-container`,
            {
                name: args.containerName,
                // The image ID, not the name: a name makes the provider see a diff on every run.
                image: args.image,
                envs: Object.entries(args.env).map(([key, value]) => pulumi.interpolate`${key}=${value}`),
                volumes,
                networksAdvanced: networks,
                ports: publishedPorts(this.port, args.publish),
                user: args.user,
                labels: labelList(args.labels),
                healthcheck: {
                    tests: ["CMD", "node", "/app/healthcheck.js"],
                    ...healthTiming({ interval: "5s", timeout: "5s", retries: 3, startPeriod: "30s" }),
                },
                wait: true,
                waitTimeout: 120,
                // The app drains and closes its connections within 9 s of SIGTERM (app/src/server.ts).
                destroyGraceSeconds: 10,
                // No `init`: the image's entrypoint is tini already (signals reach node, zombies are reaped).
                ...memoryLimit(args.memoryLimitMb),
                ...containerDefaults,
            },
            { parent: this, ...containerOptions, dependsOn: args.waitFor, additionalSecretOutputs: ["envs"] },
        );
        this.containerName = this.container.name;
        this.registerOutputs({ containerId: this.container.id });
    }
}
