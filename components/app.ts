import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as random from "@pulumi/random";
import { createHash } from "node:crypto";
import { APP_PORT, APP_ROLE, ROLE_LABEL, VERSION_LABEL } from "./names";
import {
    containerDefaults,
    containerOptions,
    dockerEnvironment,
    healthTiming,
    labelList,
    memoryLimit,
    publishedPorts,
    requireUidGid,
    type Labels,
    type Publish,
} from "./common";

export interface AppArgs {
    /** Image ID of the app image: the one built from app/, or a kept release (a rollback). */
    image: pulumi.Input<string>;
    /**
     * The app's name: its container's name when the app has a host port, else the start of each version's
     * container name (`<name>-<version>`). Always its alias on every network, so the reverse proxy and
     * other containers reach whichever version serves.
     */
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
    /** Docker endpoint for the `docker` CLI steps (readiness gate, releases): the stack's provider's. */
    dockerHost: string;
    /** Seconds a new version gets to answer /health/ready before the deploy fails. */
    readyTimeoutSeconds: number;
    /**
     * Each version that turned ready is tagged `<repository>:<tagPrefix>-<UTC time>` on the Docker host, and
     * the newest `keep` distinct images keep their tags (`npm run rollback` picks from them). Omit to record
     * nothing (a rollback runs a kept release: it is not a new one).
     */
    releases?: { repository: string; tagPrefix: string; keep: number };
}

export { APP_PORT };

/**
 * What a change of the app does. Without a host port (odin behind Caddy), every change starts a new version
 * beside the old one under its own name: both carry the app's alias on every network, the new one opens its
 * port only once ready (app/src/server.ts), the readiness gate below holds the deploy until /health/ready
 * answers 200, and the engine deletes the old version (SIGTERM, drained within destroyGraceSeconds) only at
 * the end of a successful update (pulumi/pulumi v3.259.0, pkg/resource/deploy/step_generator.go,
 * generateStepsFromDiff: create-before-delete unless deleteBeforeReplace; the deletion of a replaced
 * resource is a pending delete run by deployment_executor.go's performPostSteps, which a failed step skips).
 * With a host port (dev, or a LAN port opted into on odin) two versions cannot bind it: the container is
 * stopped first and replaced in place.
 */
export function changeShape(publish: Publish | undefined): "start-first" | "stop-first" {
    return publish ? "stop-first" : "start-first";
}

/**
 * A version: a hash of everything the container is created from except what the provider updates in place
 * (memory and the restart policy: kreuzwerker v4.2.0, internal/provider/resource_docker_container_funcs.go,
 * resourceDockerContainerUpdate). Any other change gives a new version, hence a new name, so the new
 * container never collides with the old one it starts beside (the name is ForceNew: a new name replaces).
 * Not secret: eight hex digits of a hash say nothing of the passwords in the environment they cover.
 */
export function versionOf(createdFrom: unknown): string {
    return createHash("sha256").update(JSON.stringify(createdFrom)).digest("hex").slice(0, 8);
}

/** The app container, its readiness gate and its release record. */
export class App extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    public readonly port = APP_PORT;
    /** The serving version's container name, for `docker exec` (e.g. `seed`): known once it is ready. */
    public readonly containerName: pulumi.Output<string>;
    /** The release tag this deploy recorded (`npm run rollback` can return to it), or undefined (a rollback). */
    public readonly release: pulumi.Output<string | undefined>;
    /** Passes once the new version answers /health/ready with 200. */
    public readonly ready: command.local.Command;

    constructor(name: string, args: AppArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:app:App", name, {}, opts);
        requireUidGid("user", args.user);
        if (!Number.isInteger(args.readyTimeoutSeconds) || args.readyTimeoutSeconds < 1)
            throw new Error(
                `\`readyTimeoutSeconds\` must be a whole number of seconds, got ${args.readyTimeoutSeconds}`,
            );
        const shape = changeShape(args.publish);

        const volumes: docker.types.input.ContainerVolume[] = [
            { hostPath: args.outputPath, containerPath: "/app/output" },
            { hostPath: args.logsPath, containerPath: "/app/logs" },
        ];
        if (args.sourcePath) volumes.push({ hostPath: args.sourcePath, containerPath: "/app/src", readOnly: true });

        const aliases = ["app", args.containerName];
        const networks = pulumi
            .output(args.externalNetworks ?? [])
            .apply((external) => [
                { name: pulumi.output(args.networkName), aliases },
                ...external.map((n) => ({ name: pulumi.output(n), aliases: [args.containerName] })),
            ]);
        const envs = Object.entries(args.env).map(([key, value]) => pulumi.interpolate`${key}=${value}`);
        const labels: Labels = { ...args.labels, [ROLE_LABEL]: APP_ROLE };
        const healthcheck = {
            // Liveness: the port opens once the app is ready, so this passes from then on (app/healthcheck.js).
            tests: ["CMD", "node", "/app/healthcheck.js"],
            ...healthTiming({ interval: "5s", timeout: "5s", retries: 3, startPeriod: "30s" }),
        };
        const ports = publishedPorts(this.port, args.publish);
        const version = pulumi.unsecret(
            pulumi
                .all([args.image, envs, volumes, networks, args.user, pulumi.output(labels), ports])
                // What every container gets (log driver and options, network mode: ForceNew too), and whether
                // there is a memory limit at all: Docker's update leaves a zero Memory as it was (moby
                // daemon/container/container_unix.go, UpdateContainer), so removing a limit needs a new
                // container; changing one is done in place.
                .apply((createdFrom) =>
                    versionOf([
                        ...createdFrom,
                        healthcheck,
                        containerDefaults,
                        { memoryLimited: !!args.memoryLimitMb },
                    ]),
                ),
        );

        // The name of a start-first version: random, made anew whenever the version changes (a RandomId's
        // keepers replace it: pulumi-random v4.21.1, every input forces replacement). A hash alone would
        // not do: going back to a version whose container is still being drained (a fix reverted after a
        // failed deploy) would take the name it still holds.
        const suffix =
            shape === "start-first"
                ? new random.RandomId(`${name}-version`, { byteLength: 4, keepers: { version } }, { parent: this })
                : undefined;

        if (shape === "stop-first") {
            pulumi.log.info(
                `app: published on host port ${args.publish!.bindAddress}:${args.publish!.port}, which two versions cannot share: a change replaces the container in place (stopped first, a few seconds without the app). Behind Caddy (\`domain\`, no \`appPort\`) a new version starts beside the old one instead.`,
                this,
            );
        }

        this.container = new docker.Container(
            `${name}-container`,
            {
                name: suffix ? pulumi.interpolate`${args.containerName}-${suffix.hex}` : args.containerName,
                // The image ID, not the name: a name makes the provider see a diff on every run.
                image: args.image,
                envs,
                volumes,
                networksAdvanced: networks,
                ports,
                user: args.user,
                labels: labelList({ ...labels, [VERSION_LABEL]: version }),
                healthcheck,
                // No provider wait: the readiness gate below waits, bounded, and names what is missing. The
                // provider's wait sees only Docker's health check (liveness), and its error names nothing.
                wait: false,
                // The app drains and closes its connections within 9 s of SIGTERM (app/src/server.ts).
                destroyGraceSeconds: 10,
                // No `init`: the image's entrypoint is tini already (signals reach node, zombies are reaped).
                ...memoryLimit(args.memoryLimitMb),
                ...containerDefaults,
            },
            {
                parent: this,
                // Start-first: explicit `false` overrides the provider's delete-before-replace (pulumi-docker
                // v5.0.0 provider/resources.go; step_generator.go, `if goal.DeleteBeforeReplace != nil`); no
                // replaceOnChanges: every change but the in-place ones renames, and a rename replaces.
                ...(shape === "stop-first" ? containerOptions : { deleteBeforeReplace: false }),
                dependsOn: args.waitFor,
                additionalSecretOutputs: ["envs"],
            },
        );

        // The gate: the deploy goes on (and the old version is drained) only once the new one answers
        // /health/ready with 200 from inside its container. On timeout it says why, stops the new version
        // (no crash loop, no traffic) and fails: the old version keeps serving, and the next `up` starts the
        // gate again (a container it stopped is started first).
        this.ready = new command.local.Command(
            `${name}-ready`,
            {
                create: READY_GATE,
                environment: {
                    ...dockerEnvironment(args.dockerHost),
                    APP_CONTAINER: this.container.name,
                    READY_TIMEOUT: String(args.readyTimeoutSeconds),
                },
                triggers: [this.container.id],
            },
            { parent: this, dependsOn: [this.container] },
        );

        this.containerName = pulumi.all([this.container.name, this.ready.stdout]).apply(([n]) => n);
        this.release = pulumi.output(undefined as string | undefined);
        if (args.releases) {
            const { repository, tagPrefix, keep } = args.releases;
            if (!Number.isInteger(keep) || keep < 1)
                throw new Error(`\`releases.keep\` must be at least 1, got ${keep}`);
            const record = new command.local.Command(
                `${name}-release`,
                {
                    create: RECORD_RELEASE,
                    environment: {
                        ...dockerEnvironment(args.dockerHost),
                        APP_CONTAINER: this.container.name,
                        RELEASE_REPOSITORY: repository,
                        RELEASE_PREFIX: tagPrefix,
                        RELEASES_KEPT: String(keep),
                    },
                    triggers: [this.container.id],
                },
                { parent: this, dependsOn: [this.ready] },
            );
            this.release = record.stdout.apply((out) => /^release (\S+)/m.exec(out)?.[1]);
        }
        this.registerOutputs({
            containerId: this.container.id,
            containerName: this.containerName,
            release: this.release,
        });
    }
}

/** The readiness gate's script (values in the environment, never spliced in). */
export const READY_GATE = `set -u
deadline=$(( $(date +%s) + READY_TIMEOUT ))
started=$(date +%s)
docker start "$APP_CONTAINER" >/dev/null
answer=""
while :; do
  if answer=$(docker exec "$APP_CONTAINER" node /app/healthcheck.js ready 2>&1); then
    echo "app: $APP_CONTAINER ready after $(( $(date +%s) - started )) s: $answer"
    exit 0
  fi
  [ "$(date +%s)" -ge "$deadline" ] && break
  # A quarter second: the app answers within a second of its start (bench:e2e app_own_start_s, issue 26).
  sleep 0.25
done
{
  echo "app: $APP_CONTAINER did not answer /health/ready with 200 within $READY_TIMEOUT s (appReadyTimeoutSeconds): it is stopped and takes no traffic; the version that served before keeps serving."
  echo "last readiness answer: $answer"
  echo "container: $(docker inspect --format '{{.State.Status}}, restarted {{.RestartCount}} times, exit code {{.State.ExitCode}}' "$APP_CONTAINER" 2>&1)"
  echo "its last log lines:"
  docker logs --tail 15 "$APP_CONTAINER" 2>&1 | sed 's/^/  /'
  echo "Fix the cause (the log above), then run the deploy again."
} >&2
docker stop -t 10 "$APP_CONTAINER" >/dev/null 2>&1 || true
exit 1`;

/** Tags the ready version's image as a release and removes the tags of releases beyond the kept ones. */
export const RECORD_RELEASE = `set -u
image="" out=""
# The new version serves already: a release that cannot be recorded is a warning, not a failed deploy (which
# would keep the old version running beside it until the next up).
if ! image=$(docker inspect --format '{{.Image}}' "$APP_CONTAINER" 2>&1) || ! tag="$RELEASE_REPOSITORY:$RELEASE_PREFIX-$(date -u +%Y%m%dT%H%M%SZ)" || ! out=$(docker tag "$image" "$tag" 2>&1); then
  echo "warning: the release of $APP_CONTAINER was not recorded, so npm run rollback cannot return to it: $image $out" >&2
  exit 0
fi
echo "release $tag ($image)"
docker image ls --no-trunc --format '{{.Tag}} {{.ID}}' "$RELEASE_REPOSITORY" | grep "^$RELEASE_PREFIX-[0-9]\\{8\\}T[0-9]\\{6\\}Z " | sort -r |
  awk -v keep="$RELEASES_KEPT" '{ if (!($2 in seen)) { seen[$2] = 1; n++ } if (n > keep) print $1 }' |
  while read -r old; do
    if docker image rm "$RELEASE_REPOSITORY:$old" >/dev/null 2>&1; then echo "pruned release $old"; else echo "kept release $old (in use)"; fi
  done`;
