// Shared by the components: the docker CLI environment and the options every container gets.
import type * as pulumi from "@pulumi/pulumi";

/**
 * Environment for a `docker` CLI call against the stack's engine: the provider's host, always explicit.
 * With DOCKER_HOST set, the CLI ignores DOCKER_CONTEXT and its current context (docker/cli v28.5.2,
 * cli/command/cli.go, resolveContextName), so the CLI steps reach the engine the provider reaches.
 */
/** A `uid:gid` in numbers: the owner of the host directories, and the user the app and migrations run as. */
export const UID_GID = /^\d{1,10}:\d{1,10}$/;

/** Refuses `value` unless it is a `uid:gid` (a programming error: config.ts checks the user's value first). */
export function requireUidGid(what: string, value: string): void {
    if (!UID_GID.test(value)) throw new Error(`\`${what}\` must be uid:gid, got ${JSON.stringify(value)}`);
}

export function dockerEnvironment(dockerHost: string): Record<string, string> {
    return { DOCKER_HOST: dockerHost };
}

/**
 * Resource options of the app and pgAdmin containers (the stateful ones take statefulContainerOptions).
 * - deleteBeforeReplace: a fixed name cannot exist twice; the old container goes first.
 * - replaceOnChanges "*": any change replaces the container. The provider updates only `restart`,
 *   `memory` and a few limits in place; a change of anything else that is not ForceNew (`healthcheck`,
 *   `wait`, `destroyGraceSeconds`) is written to the state without touching the container
 *   (kreuzwerker v4.2.0, internal/provider/resource_docker_container_funcs.go,
 *   resourceDockerContainerUpdate). And a container that never turned healthy is kept with an init error
 *   that the next `up` only "updates", leaving it broken (pulumi/pulumi v3.259.0,
 *   pkg/resource/deploy/step_generator.go, applyReplaceOnChanges: a "*" path covers the init error).
 */
export const containerOptions = { deleteBeforeReplace: true, replaceOnChanges: ["*"] };

/**
 * Inputs of a container that the provider neither replaces on (not ForceNew) nor applies on Update: a change
 * is written to the state and the container goes on as it was (kreuzwerker v4.2.0,
 * internal/provider/resource_docker_container_funcs.go, resourceDockerContainerUpdate, which sends only
 * restart, max_retry_count, cpu_shares, memory, memory_reservation, cpu_set, memory_swap and the device_*
 * throttles to ContainerUpdate). A new healthcheck must reach the engine, so it replaces.
 */
const NEVER_APPLIED = ["healthcheck", "tmpfs", "cpuPeriod", "cpuQuota"];

/**
 * The change shape of a stateful container (Postgres, Redis, the backup agent), input by input (issue 21):
 * - **in place, no restart:** what resourceDockerContainerUpdate sends to Docker's ContainerUpdate (above):
 *   the restart policy and the memory limit (a new one, or a changed one);
 * - **replaced, the old container stopped first** (deleteBeforeReplace; the provider's own destroy grace,
 *   `destroyGraceSeconds`, is the graceful stop): every ForceNew input (image, environment, command, mounts,
 *   ports, labels, networks), as the provider diffs them. The names are fixed, and two postmasters must
 *   never share one data directory, so never create-before-delete;
 * - **replaced as well** (replaceOnChanges): the inputs the provider never applies (NEVER_APPLIED), and a
 *   memory limit removed: Docker's ContainerUpdate takes a zero Memory as "leave it" (moby/moby v28,
 *   container/container_unix.go, UpdateContainer: `if resources.Memory != 0`), so "none" in place would be
 *   written to the state while the old limit stays;
 * - **the state only, which is right:** `wait` and `waitTimeout` (they count at a create), and
 *   `destroyGraceSeconds` (read from the state when the container is deleted, so the new value is the one a
 *   later stop uses);
 * - **a container left with an init error** (it never turned healthy) is replaced by the next `up`, not
 *   "updated" and left broken: "#initerror" covers exactly that, and no input (pulumi/pulumi v3.259.0,
 *   pkg/resource/deploy/step_generator.go, applyReplaceOnChanges, with
 *   sdk/go/common/resource/properties_path.go, PropertyPath.Contains).
 */
export function statefulContainerOptions(memoryLimitMb: number | undefined) {
    return {
        deleteBeforeReplace: true,
        replaceOnChanges: ["#initerror", ...NEVER_APPLIED, ...(memoryLimitMb ? [] : ["memory", "memorySwap"])],
    };
}

/**
 * A memory limit's change as the preview says it, from the running container's (bytes, 0: none) to the
 * configured one (MB, 0 or unset: none), or undefined when it stays: in place, or (removed) a replacement,
 * as statefulContainerOptions decides.
 */
export function memoryChange(
    currentBytes: number,
    wantMb: number | undefined,
): { what: string; inPlace: boolean } | undefined {
    const wantBytes = (wantMb ?? 0) * 1024 * 1024;
    if (wantBytes === currentBytes) return undefined;
    const mb = (b: number) => (b ? `${Math.round(b / 1024 / 1024)} MB` : "none");
    return wantBytes === 0
        ? {
              what: `the memory limit is removed (${mb(currentBytes)} -> none; Docker cannot remove one in place)`,
              inPlace: false,
          }
        : { what: `memory limit ${mb(currentBytes)} -> ${mb(wantBytes)}`, inPlace: true };
}

/** Options every container of the stack gets. */
export const containerDefaults = {
    restart: "unless-stopped",
    // Rotated json-file logs: a chatty container cannot fill the server's disk.
    logDriver: "json-file",
    logOpts: { "max-size": "10m", "max-file": "3" },
    // Stated explicitly: the provider reads "bridge" back and otherwise shows a diff on every run
    // (pulumi/pulumi-docker#1272). The stack's own networks come from networksAdvanced.
    networkMode: "bridge",
};

/** Docker labels by key; values may come from other resources. */
export type Labels = Record<string, pulumi.Input<string>>;

/** The provider's form of labels. */
export function labelList(labels: Labels | undefined): { label: string; value: pulumi.Input<string> }[] {
    return Object.entries(labels ?? {}).map(([label, value]) => ({ label, value }));
}

export interface Publish {
    port: number;
    bindAddress: string;
}

/** A container's `ports`: `internal` published on the Docker host only when `publish` is given. */
export function publishedPorts(internal: number, publish: Publish | undefined) {
    return publish ? [{ internal, external: publish.port, ip: publish.bindAddress }] : [];
}

/**
 * A container's memory limit in MB (0 or unset: none), with no separate swap limit (-1). The provider reads
 * MemorySwap back after a create (kreuzwerker v4.2.0, resourceDockerContainerRead), and Docker stores
 * anything but -1 differently by host: twice the limit when unset, -1 where the kernel cannot limit swap.
 * -1 is stored as given everywhere, so the next `up` sees no change.
 */
export function memoryLimit(mb: number | undefined): { memory?: number; memorySwap?: number } {
    return mb ? { memory: mb, memorySwap: -1 } : {};
}

/** Whole seconds as Go's time.Duration.String() writes them: "5s", "1m0s", "1h0m0s". */
function goSeconds(total: number): string {
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}

export interface HealthTiming {
    interval: string;
    timeout: string;
    retries: number;
    startPeriod: string;
}

/**
 * A healthcheck's timing, checked to be written the way the provider reads it back from the engine: the
 * provider stores `interval.String()` of Go's time.Duration after a create (kreuzwerker v4.2.0,
 * internal/provider/resource_docker_container_funcs.go, resourceDockerContainerRead), so "60s" would come
 * back as "1m0s" and show a change on the next `up`. There is no `startInterval`: below API 1.44
 * (Docker < 25: Debian's 20.10, Unraid's 24) the provider's Docker client refuses to create a container
 * with one (docker/docker v28.5.2, client/container_create.go); short intervals instead.
 */
export function healthTiming(t: HealthTiming): HealthTiming {
    for (const [key, value] of Object.entries(t)) {
        if (key === "retries") continue;
        const m = /^(?:(\d+)h)?(?:(\d+)m)?(\d+)s$/.exec(String(value));
        const seconds = m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3]) : NaN;
        if (!m || goSeconds(seconds) !== value) {
            throw new Error(
                `healthcheck \`${key}\` ${JSON.stringify(value)} must be whole seconds written as Go writes them (${Number.isNaN(seconds) ? "e.g. 1m0s" : goSeconds(seconds)})`,
            );
        }
    }
    return t;
}

/**
 * Processes (threads count too) a container may hold: its cgroup's pids limit (HostConfig.PidsLimit). The
 * provider has no pids limit (kreuzwerker/terraform-provider-docker v4.2.0, the version @pulumi/docker 5.0.0
 * bridges, internal/provider/resource_docker_container.go: no `pids_limit` in the schema), so `pidsLimits`
 * sets it with `docker update` once a container exists; the provider neither reads it back
 * (resource_docker_container_funcs.go, resourceDockerContainerRead) nor resets it on an in-place update
 * (resourceDockerContainerUpdate sends container.Resources without PidsLimit, nil: unchanged). Not the
 * `nproc` ulimit: RLIMIT_NPROC counts every process of the uid on the whole host (no user namespaces), so
 * a laptop user's own browser and editor threads would count against the app's limit and stop it starting.
 */
export const PROCESS_LIMIT = 1024;

export interface HardeningArgs {
    /**
     * Capabilities the image needs on top of none, written in Docker's `CAP_` form, one spelling everywhere
     * (the engine stores CapAdd as sent, moby daemon/container.go validateCapabilities, and the provider
     * reads it back as stored).
     */
    capAdd?: string[];
    /** A read-only root file system, with these tmpfs mounts (path -> options) for what the process writes. */
    readOnly?: { tmpfs: Record<string, string> };
}

/**
 * Capabilities the official postgres and redis images need: their entrypoint starts as root, creates and
 * chowns the data directory (CHOWN; DAC_OVERRIDE and FOWNER to create and chmod inside a host directory
 * owned by `hostOwner`, and in /var/run/postgresql, owned by the image's user), then drops to the image's
 * user with gosu/su-exec/setpriv (SETUID, SETGID; setuid syscalls, not a setuid binary, so
 * no-new-privileges does not stop it). Running them as the data owner's uid instead would need no
 * capability at all, but the data directories of existing stacks belong to the image's uid (70 or 999),
 * which the entrypoint chowned them to: a `user` would have to re-own them first.
 */
export const ROOT_ENTRYPOINT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID"];

/**
 * The run-time hardening every container of the stack gets (OWASP Docker cheat sheet rules 3, 4, 7, 8; CIS
 * Docker Benchmark 5.3, 5.12, 5.25, 5.28): every capability dropped and only `capAdd` given back,
 * `no-new-privileges` (no setuid binary or file capability raises a process's privileges), and on request a
 * read-only root file system with tmpfs mounts. The process limit (PROCESS_LIMIT) comes after the container
 * exists: `pidsLimits`.
 */
export function hardening(args: HardeningArgs = {}) {
    for (const cap of args.capAdd ?? [])
        if (!/^CAP_[A-Z_]+$/.test(cap)) throw new Error(`capability ${JSON.stringify(cap)} must be written CAP_NAME`);
    return {
        capabilities: { drops: ["ALL"], adds: [...(args.capAdd ?? [])].sort() },
        securityOpts: ["no-new-privileges:true"],
        ...(args.readOnly ? { readOnly: true, tmpfs: args.readOnly.tmpfs } : {}),
    };
}

/** The same hardening as flags of a `docker run` (the migration step and the host step's throwaway containers). */
export function hardeningFlags(args: Omit<HardeningArgs, "readOnly"> = {}): string {
    const h = hardening(args);
    return [
        "--cap-drop ALL",
        ...h.capabilities.adds.map((c) => `--cap-add ${c}`),
        "--security-opt no-new-privileges:true",
        // The CLI has the pids limit the provider lacks.
        `--pids-limit ${PROCESS_LIMIT}`,
    ].join(" ");
}
