// TEST HARNESS: the providers the program uses, as models the engine emulation (realEngineMocks.ts) drives
// against a real Docker engine. Each model says what its provider does on Check, Diff, Create, Update and
// Delete, citing the source it follows. The provider versions are the ones package.json pins
// (test/unit/lockfile.test.ts keeps them in step):
// - @pulumi/docker 5.0.0 = pulumi/pulumi-docker v5.0.0, which bridges kreuzwerker/terraform-provider-docker
//   v4.2.0 (its `upstream` submodule). Below, TF = kreuzwerker v4.2.0 internal/provider/, and
//   C = resource_docker_container.go (schema), F = resource_docker_container_funcs.go.
// - @pulumi/command 1.2.1 = pulumi/pulumi-command v1.2.1 (provider/pkg/provider/local, common).
// - @pulumi/random 4.21.1 = pulumi/pulumi-random v4.21.1.
// Where the real behaviour cannot be reproduced here, the model is stricter than it, never more lenient.
import dockerignore from "@balena/dockerignore";
import { spawn } from "node:child_process";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { homedir } from "node:os";
import * as path from "node:path";
import type { DockerApi } from "./dockerApi";
import { canonicalJson, secret } from "../../../support/secrets";

/** Label put on every container the harness creates, so that a crashed run's leftovers can be found. */
export const HARNESS_LABEL = "marvel-rivals-stats.e2e-harness";

/** Pulumi's wire value for an unknown (pulumi/pulumi sdk/nodejs/runtime/rpc.ts, unknownValue). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export interface Resource {
    id: string;
    /** Inputs as last applied (plain). */
    inputs: Record<string, any>;
    /** The provider's state (outputs). */
    outputs: Record<string, any>;
}

export interface DiffResult {
    /** Top-level inputs whose change the provider reports. */
    changed: string[];
    /** Of those, the ones the provider replaces on. */
    replace: string[];
}

export interface ModelContext {
    api: DockerApi;
    projectDir: string;
    log: (msg: string) => void;
}

/** A resource that exists but did not finish creating: kept in the state with an init error (see engine). */
export class PartialCreateError extends Error {
    constructor(
        readonly id: string,
        readonly outputs: Record<string, any>,
        message: string,
    ) {
        super(message);
    }
}

export interface Model {
    /**
     * The provider's deleteBeforeReplace, which the bridge reports only with replace keys of its own
     * (pulumi-terraform-bridge pkg/tfbridge/provider.go, Diff): a replacement that only the program's
     * replaceOnChanges (or an init error) asks for is create-first unless the program sets the option.
     */
    deleteBeforeReplace: boolean;
    /** Inputs the model knows; any other input fails the run (nothing is silently ignored). */
    known: string[];
    /** Check: refusals at preview time, and inputs the provider adds (returns the checked inputs). */
    check(inputs: Record<string, any>, ctx: ModelContext): Record<string, any>;
    diff(old: Resource, news: Record<string, any>): DiffResult;
    create(news: Record<string, any>, ctx: ModelContext): Promise<{ id: string; outputs: Record<string, any> }>;
    update(old: Resource, news: Record<string, any>, ctx: ModelContext): Promise<Record<string, any>>;
    delete(old: Resource, ctx: ModelContext): Promise<void>;
    /** The outputs a preview shows for a create, replace or update: computed values unknown. */
    previewOutputs(news: Record<string, any>, old: Resource | undefined, replace: boolean): Record<string, any>;
}

// ---- helpers

export const containsUnknown = (v: unknown): boolean =>
    v === UNKNOWN ||
    (Array.isArray(v)
        ? v.some(containsUnknown)
        : !!v && typeof v === "object" && Object.values(v).some(containsUnknown));

/** Terraform's zero value test: an unset input equals a zero value in the state (helper/schema, diffString). */
const isZero = (v: unknown) =>
    v === undefined ||
    v === null ||
    v === "" ||
    v === 0 ||
    v === false ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && v !== null && Object.keys(v).length === 0);

/** Canonical form of a TypeSet (order does not count). */
const asSet = (v: unknown) => (Array.isArray(v) ? v.map((x) => canonicalJson(setsInside(x))).sort() : v);
function setsInside(v: any): any {
    if (v && typeof v === "object" && !Array.isArray(v) && Array.isArray(v.aliases))
        return { ...v, aliases: [...v.aliases].sort() };
    return v;
}

/** Go's time.ParseDuration for what the schema validator accepts (go/src/time/format.go), in nanoseconds. */
export function parseGoDuration(d: string): number {
    if (d === "0") return 0;
    const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
    const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
    let total = 0;
    let m: RegExpExecArray | null;
    let at = 0;
    const sign = d.startsWith("-") ? -1 : 1;
    if (d.startsWith("-") || d.startsWith("+")) at = re.lastIndex = 1;
    while ((m = re.exec(d))) {
        total += Number(m[1]) * units[m[2]];
        at = re.lastIndex;
    }
    if (at !== d.length || at === 0) throw new Error(`time: invalid duration ${JSON.stringify(d)}`);
    return sign * Math.round(total);
}

/** Go's time.Duration.String() (go/src/time/time.go), for whole and fractional values. */
export function goDurationString(ns: number): string {
    if (ns === 0) return "0s";
    const neg = ns < 0;
    let u = Math.abs(ns);
    let out: string;
    if (u < 1e9) {
        const [unit, div] = u < 1e3 ? ["ns", 1] : u < 1e6 ? ["µs", 1e3] : ["ms", 1e6];
        out = `${trimFraction(u / (div as number))}${unit}`;
    } else {
        const h = Math.floor(u / 3600e9);
        u -= h * 3600e9;
        const m = Math.floor(u / 60e9);
        u -= m * 60e9;
        const s = `${trimFraction(u / 1e9)}s`;
        out = h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s;
    }
    return neg ? `-${out}` : out;
}
const trimFraction = (x: number) => String(Number(x.toFixed(9)));

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

export function run(
    cmd: string,
    argv: string[],
    opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: string },
): Promise<RunResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, argv, { env: opts.env, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
        // A child that exits without reading its stdin closes the pipe: EPIPE here is not a failure.
        child.stdin.on("error", () => undefined);
        child.stdin.end(opts.stdin ?? "");
    });
}

export const tail = (s: string, lines: number) => s.trimEnd().split("\n").slice(-lines).join("\n");

// ---- docker:index/container:Container (TF docker_container)

/**
 * Every input of the container, from TF C, resourceDockerContainer (line numbers of v4.2.0), as Pulumi names
 * it (pulumi-docker v5.0.0 schema.json): "forceNew" (replace), "computed" (an unset input takes the state's
 * value), "set" (TypeSet: order does not count), "default:<v>".
 */
const CONTAINER_SCHEMA: Record<string, string> = {
    name: "forceNew", // C:50
    rm: "default:false", // C:57
    readOnly: "forceNew default:false", // C:64
    start: "default:true", // C:72
    wait: "default:false", // C:79
    waitTimeout: "default:60", // C:86
    attach: "default:false", // C:93
    logs: "default:false", // C:100
    mustRun: "default:true", // C:122
    image: "forceNew", // C:141
    hostname: "forceNew computed", // C:148
    domainname: "forceNew", // C:156
    command: "forceNew computed", // C:163
    entrypoints: "forceNew computed", // C:172
    user: "forceNew", // C:181
    dns: "forceNew set", // C:196
    dnsOpts: "forceNew set", // C:205
    dnsSearches: "forceNew set", // C:214
    publishAllPorts: "forceNew", // C:223
    restart: "default:no", // C:230
    maxRetryCount: "", // C:238
    workingDir: "forceNew", // C:243
    removeVolumes: "default:true", // C:256
    capabilities: "forceNew set", // C:262
    securityOpts: "forceNew computed set", // C:291
    runtime: "forceNew computed", // C:300
    platform: "forceNew computed", // C:307
    stopSignal: "forceNew computed", // C:314
    stopTimeout: "forceNew computed", // C:321
    mounts: "forceNew set", // C:328
    volumes: "forceNew set", // C:434
    tmpfs: "", // C:482
    ports: "forceNew", // C:487
    hosts: "forceNew set", // C:537
    ulimits: "forceNew set", // C:561
    envs: "forceNew computed set", // C:590
    privileged: "forceNew", // C:656
    devices: "forceNew set", // C:663
    deviceReadBps: "set", // C:693
    deviceReadIops: "set", // C:713
    deviceWriteBps: "set", // C:733
    deviceWriteIops: "set", // C:753
    deviceRequests: "forceNew set", // C:774
    destroyGraceSeconds: "", // C:827
    labels: "forceNew computed set", // C:833
    memory: "", // C:842
    memoryReservation: "default:0", // C:848
    memorySwap: "", // C:856
    shmSize: "forceNew computed", // C:863
    cpuShares: "", // C:872
    cpuSet: "", // C:879
    logDriver: "forceNew computed", // C:886
    logOpts: "forceNew", // C:894
    networkMode: "forceNew default:bridge", // C:901
    networksAdvanced: "forceNew set", // C:909
    pidMode: "forceNew", // C:974
    usernsMode: "forceNew", // C:980
    uploads: "forceNew set", // C:987
    healthcheck: "computed", // C:1045
    containerReadRefreshTimeoutMilliseconds: "", // C:1098
    sysctls: "forceNew", // C:1105
    ipcMode: "forceNew computed", // C:1111
    groupAdds: "forceNew set", // C:1118
    init: "computed", // C:1126
    tty: "forceNew default:false", // C:1132
    stdinOpen: "forceNew default:false", // C:1139
    storageOpts: "forceNew", // C:1146
    gpus: "forceNew", // C:1152
    cpus: "forceNew", // C:1158
    cpuPeriod: "", // C:1164
    cpuQuota: "", // C:1170
    cgroupnsMode: "forceNew", // C:1176
    cgroupParent: "forceNew", // C:1182
};
const flagged = (flag: string) =>
    Object.keys(CONTAINER_SCHEMA).filter((k) => CONTAINER_SCHEMA[k].split(" ").includes(flag));
const CONTAINER_FORCE_NEW = flagged("forceNew");
const CONTAINER_COMPUTED = flagged("computed");
const CONTAINER_SETS = flagged("set");
const CONTAINER_DEFAULTS: Record<string, unknown> = Object.fromEntries(
    Object.entries(CONTAINER_SCHEMA).flatMap(([k, flags]) => {
        const d = /default:(\S+)/.exec(flags)?.[1];
        return d === undefined
            ? []
            : [[k, d === "true" ? true : d === "false" ? false : /^\d+$/.test(d) ? Number(d) : d]];
    }),
);
// TF F, resourceDockerContainerUpdate: the attributes it sends to ContainerUpdate (and must_run's start).
// Any other change that is not ForceNew is written to the state and never reaches the container.
const CONTAINER_UPDATE = [
    "restart",
    "maxRetryCount",
    "cpuShares",
    "memory",
    "memoryReservation",
    "cpuSet",
    "memorySwap",
];
// The inputs the harness can create a container with; the schema's other inputs fail the run if set.
const CONTAINER_EMULATED = [
    "name",
    "image",
    "envs",
    "command",
    "entrypoints",
    "user",
    "workingDir",
    "hostname",
    "domainname",
    "labels",
    "ports",
    "volumes",
    "networksAdvanced",
    "networkMode",
    "healthcheck",
    "restart",
    "maxRetryCount",
    "logDriver",
    "logOpts",
    "memory",
    "memorySwap",
    "init",
    "wait",
    "waitTimeout",
    "destroyGraceSeconds",
    "uploads",
    "mustRun",
    "start",
    "rm",
    "removeVolumes",
    "stopSignal",
    "stopTimeout",
    "tty",
    "stdinOpen",
    "capabilities",
    "readOnly",
    "shmSize",
    "tmpfs",
    "groupAdds",
    "dns",
    "hosts",
    "ulimits",
    "sysctls",
    "privileged",
    "securityOpts",
];
const HEALTH_DURATIONS = ["interval", "timeout", "startPeriod", "startInterval"];

/** Input as TF plans it: schema defaults applied, nested defaults for ports and healthcheck. */
function plannedContainer(key: string, v: any): any {
    if (v === undefined) return CONTAINER_DEFAULTS[key];
    if (key === "ports" && Array.isArray(v))
        // C, ports: protocol defaults to "tcp"; ip to "0.0.0.0" (its StateFunc turns "" into it too).
        return v.map((p) => ({ ...p, protocol: p.protocol ?? "tcp", ip: p.ip || "0.0.0.0" }));
    if (key === "healthcheck" && v && typeof v === "object")
        return {
            interval: "0s",
            timeout: "0s",
            startPeriod: "0s",
            startInterval: "0s",
            retries: 0,
            ...Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined)),
        };
    return v;
}

// C: DiffSuppressFunc "treat \"\" as a no-op" (an unset user or working_dir keeps the image's).
const CONTAINER_EMPTY_KEEPS = ["user", "workingDir"];

function sameContainerValue(key: string, planned: any, state: any): boolean {
    if (containsUnknown(planned)) return false;
    if (planned === undefined || (planned === "" && CONTAINER_EMPTY_KEEPS.includes(key)))
        return CONTAINER_COMPUTED.includes(key) || CONTAINER_EMPTY_KEEPS.includes(key) || isZero(state);
    if (CONTAINER_SETS.includes(key)) return canonicalJson(asSet(planned)) === canonicalJson(asSet(state ?? []));
    if (key === "ports") {
        // C, ports DiffSuppressFunc: an external port left unset (Computed) does not diff; the count does.
        const s = (state ?? []) as any[];
        return (
            s.length === planned.length &&
            (planned as any[]).every(
                (p, i) => canonicalJson({ ...p, external: p.external ?? s[i].external }) === canonicalJson(s[i]),
            )
        );
    }
    if (isZero(planned) && isZero(state)) return true;
    return canonicalJson(planned) === canonicalJson(state);
}

/** Docker 25 (API 1.44) is the first engine that takes a start interval; the provider's client checks. */
const versionBelow = (v: string, min: string) => {
    const [a, b] = v.split(".").map(Number);
    const [c, d] = min.split(".").map(Number);
    return a < c || (a === c && b < d);
};

export const containerModel: Model = {
    // pulumi-docker v5.0.0 provider/resources.go: docker_container DeleteBeforeReplace: true.
    deleteBeforeReplace: true,
    known: CONTAINER_EMULATED,

    check(inputs) {
        // The schema's validators run at Check (and so in a preview). TF internal/provider/validators.go.
        if (inputs.restart !== undefined && !/^(no|on-failure|always|unless-stopped)$/.test(inputs.restart))
            throw new Error(`'${inputs.restart}' doesn't match the pattern '^(no|on-failure|always|unless-stopped)$'`);
        for (const k of ["memory", "memorySwap"] as const) {
            const min = k === "memory" ? 0 : -1;
            if (inputs[k] !== undefined && inputs[k] < min)
                throw new Error(`'${inputs[k]}' cannot be lower than ${min}`);
        }
        const hc = inputs.healthcheck;
        for (const k of HEALTH_DURATIONS) {
            const d = hc?.[k];
            if (d === undefined || d === UNKNOWN) continue;
            let ns: number;
            try {
                ns = parseGoDuration(d);
            } catch {
                throw new Error(`'${d}' is not a valid duration`);
            }
            if (ns < 0) throw new Error(`'${d}' duration must not be negative`);
        }
        for (const v of inputs.volumes ?? []) {
            if (v.hostPath !== undefined && v.hostPath !== UNKNOWN && !/^[a-zA-Z]:[\\/]|^\//.test(v.hostPath))
                throw new Error(`'${v.hostPath}' must be an absolute path`);
        }
        return inputs;
    },

    diff(old, news) {
        const changed: string[] = [];
        // Every input of the schema, set or not: an attribute the program leaves unset still diffs when the
        // state holds a value that is neither its default nor zero (unless it is Computed).
        for (const key of Object.keys(CONTAINER_SCHEMA)) {
            if (!sameContainerValue(key, plannedContainer(key, news[key]), old.outputs[key])) changed.push(key);
        }
        return { changed, replace: changed.filter((k) => CONTAINER_FORCE_NEW.includes(k)) };
    },

    async create(news, ctx) {
        const { api } = ctx;
        // TF F, resourceDockerContainerCreate, in its order.
        for (const c of news.command ?? []) if (c === "") throw new Error("values for command may not be empty");
        if (!(await api.inspect("images", news.image)))
            throw new Error(
                `Unable to create container with image ${news.image}: unable to find or pull image ${news.image}`,
            );
        if (news.volumes?.some((v: any) => v.fromContainer)) throw new Error("volumes[].fromContainer: not emulated");
        const version = await api.apiVersion();
        const hc = news.healthcheck;
        const startInterval = hc?.startInterval ? parseGoDuration(hc.startInterval) : 0;
        // The docker client (v28.5.2, client/container_create.go) refuses this before the request.
        if (startInterval !== 0 && versionBelow(version, "1.44"))
            throw new Error(
                `Unable to create container: "specify health-check start interval" requires API version 1.44, but the Docker daemon API version is ${version}`,
            );
        const exposed: Record<string, object> = {};
        const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
        for (const p of plannedContainer("ports", news.ports) ?? []) {
            const k = `${p.internal}/${p.protocol}`;
            exposed[k] = {};
            (bindings[k] ??= []).push({ HostIp: p.ip, HostPort: p.external === undefined ? "" : String(p.external) });
        }
        const binds = (news.volumes ?? []).map((v: any) => {
            const src = v.hostPath ?? v.volumeName;
            if (!src)
                throw new Error("Unable to parse volumes: volume entry without container path or source container");
            return `${src}:${v.containerPath}${v.readOnly ? ":ro" : ""}`;
        });
        const body = {
            Image: news.image,
            Env: news.envs ?? [],
            Cmd: news.command,
            Entrypoint: news.entrypoints,
            User: news.user ?? "",
            WorkingDir: news.workingDir ?? "",
            Hostname: news.hostname,
            Domainname: news.domainname,
            Tty: news.tty ?? false,
            OpenStdin: news.stdinOpen ?? false,
            StopSignal: news.stopSignal,
            StopTimeout: news.stopTimeout,
            Labels: {
                ...Object.fromEntries((news.labels ?? []).map((l: any) => [l.label, l.value])),
                [HARNESS_LABEL]: "1",
            },
            ExposedPorts: exposed,
            Healthcheck: hc
                ? {
                      Test: hc.tests,
                      Interval: parseGoDuration(hc.interval ?? "0s"),
                      Timeout: parseGoDuration(hc.timeout ?? "0s"),
                      StartPeriod: parseGoDuration(hc.startPeriod ?? "0s"),
                      StartInterval: startInterval,
                      Retries: hc.retries ?? 0,
                  }
                : undefined,
            HostConfig: {
                Binds: binds,
                PortBindings: bindings,
                RestartPolicy: { Name: news.restart ?? "no", MaximumRetryCount: news.maxRetryCount ?? 0 },
                LogConfig: { Type: news.logDriver ?? "", Config: news.logOpts ?? {} },
                Memory: (news.memory ?? 0) * 1024 * 1024,
                MemorySwap: news.memorySwap > 0 ? news.memorySwap * 1024 * 1024 : (news.memorySwap ?? 0),
                // F: `init := d.Get("init").(bool); hostConfig.Init = &init`: always explicit.
                Init: news.init ?? false,
                // F: the container is created on network_mode (default "bridge") with an empty NetworkingConfig.
                NetworkMode: news.networkMode ?? "bridge",
                AutoRemove: news.rm ?? false,
                CapAdd: news.capabilities?.adds,
                CapDrop: news.capabilities?.drops,
                ReadonlyRootfs: news.readOnly ?? false,
                ShmSize: news.shmSize ? news.shmSize * 1024 * 1024 : undefined,
                Tmpfs: news.tmpfs,
                GroupAdd: news.groupAdds,
                Dns: news.dns,
                ExtraHosts: (news.hosts ?? []).map((h: any) => `${h.host}:${h.ip}`),
                Privileged: news.privileged ?? false,
                SecurityOpt: news.securityOpts,
                Sysctls: news.sysctls,
                Ulimits: (news.ulimits ?? []).map((u: any) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
            },
            NetworkingConfig: {},
        };
        let id: string;
        try {
            id = (await api.call("POST", `/containers/create?name=${encodeURIComponent(news.name)}`, body)).Id;
        } catch (err) {
            throw new Error(`Unable to create container: ${(err as Error).message}`);
        }
        // From here on the container has an ID: a failure leaves it in the state with an init error.
        const partial = async (message: string): Promise<never> => {
            // No Read ran: the state holds the planned values (F: d.SetId before the failure).
            throw new PartialCreateError(id, plannedState(news), message);
        };
        if (news.networksAdvanced?.length) {
            // F: disconnect the default bridge, then connect every networks_advanced entry (a set).
            await api
                .call("POST", `/networks/bridge/disconnect`, { Container: id, Force: false })
                .catch((err: Error) =>
                    /is not connected to the network bridge/.test(err.message)
                        ? undefined
                        : partial(`Unable to disconnect the default network: ${err.message}`),
                );
            for (const n of news.networksAdvanced) {
                await api
                    .call("POST", `/networks/${encodeURIComponent(n.name)}/connect`, {
                        Container: id,
                        EndpointConfig: {
                            Aliases: n.aliases ?? [],
                            IPAMConfig: { IPv4Address: n.ipv4Address ?? "", IPv6Address: n.ipv6Address ?? "" },
                        },
                    })
                    .catch((err: Error) => partial(`Unable to connect to network '${n.name}': ${err.message}`));
            }
        }
        for (const upload of news.uploads ?? []) {
            const archive = uploadArchive(upload, ctx.projectDir);
            if (typeof archive === "string") await partial(archive);
            await api
                .call("PUT", `/containers/${id}/archive?path=/`, archive)
                .catch((err: Error) => partial(`Unable to upload volume content: ${err.message}`));
        }
        if (news.start !== false) {
            await api
                .call("POST", `/containers/${id}/start`, undefined, [304])
                .catch((err: Error) => partial(`Unable to start container: ${err.message}`));
            if (news.wait) {
                const problem = await waitHealthy(api, id, news.waitTimeout ?? 60);
                if (problem) await partial(problem);
            }
        }
        return { id, outputs: await readContainer(api, id, news) };
    },

    async update(old, news, ctx) {
        // TF F, resourceDockerContainerUpdate: start on must_run false -> true; one ContainerUpdate when a
        // resource attribute changed; no Read afterwards: the planned values become the state.
        const d = this.diff(old, news);
        if (d.changed.includes("mustRun") && news.mustRun !== false && old.outputs.mustRun === false)
            await ctx.api.call("POST", `/containers/${old.id}/start`, undefined, [304]);
        if (d.changed.some((k) => CONTAINER_UPDATE.includes(k))) {
            const body: Record<string, unknown> = {
                RestartPolicy: { Name: news.restart ?? "no", MaximumRetryCount: news.maxRetryCount ?? 0 },
                Memory: (news.memory ?? 0) * 1024 * 1024,
            };
            if (news.memorySwap)
                body.MemorySwap = news.memorySwap > 0 ? news.memorySwap * 1024 * 1024 : news.memorySwap;
            await ctx.api.call("POST", `/containers/${old.id}/update`, body).catch((err: Error) => {
                throw new Error(`Unable to update a container: ${err.message}`);
            });
        }
        const planned: Record<string, any> = { ...old.outputs };
        for (const key of Object.keys(CONTAINER_SCHEMA)) {
            const v = plannedContainer(key, news[key]);
            if (v !== undefined || !CONTAINER_COMPUTED.includes(key)) planned[key] = v;
        }
        return planned;
    },

    async delete(old, ctx) {
        // TF F, resourceDockerContainerDelete: stop with destroy_grace_seconds (0 when unset: the stop signal,
        // then SIGKILL at once), then remove with force and remove_volumes (default true).
        const grace = old.outputs.destroyGraceSeconds > 0 ? old.outputs.destroyGraceSeconds : 0;
        const started = Date.now();
        await ctx.api.call("POST", `/containers/${old.id}/stop?t=${grace}`, undefined, [304, 404]);
        ctx.log(`stopped ${old.outputs.name} (grace ${grace} s) in ${Date.now() - started} ms`);
        const v = old.outputs.removeVolumes === false ? 0 : 1;
        await ctx.api.call("DELETE", `/containers/${old.id}?force=1&v=${v}`, undefined, [404]);
    },

    previewOutputs(news, old, replace) {
        // The bridge's preview of a create or replace: planned values, computed attributes unknown.
        if (!old || replace) return { ...news, id: UNKNOWN, networkData: UNKNOWN, exitCode: UNKNOWN };
        return { ...old.outputs, ...news };
    },
};

/**
 * TF F, Create's wait loop: inspect every second until healthy; "unhealthy" does not end it early; no
 * healthcheck at all fails at once. Returns the provider's error, with the harness's diagnostics after it.
 */
async function waitHealthy(api: DockerApi, id: string, timeoutSeconds: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
        const info = await api.inspect("containers", id);
        if (!info?.State?.Health)
            return "you have supplied a 'wait' argument, but the container does not have a healthcheck defined. Please remove the 'wait' argument or add a 'healthcheck' attribute";
        if (info.State.Health.Status === "healthy") return undefined;
        if (Date.now() > deadline) {
            const probes = (info.State.Health.Log ?? [])
                .map((l: any) => `  exit ${l.ExitCode}: ${String(l.Output).trim()}`)
                .join("\n");
            return `container failed to be in healthy state\n[e2e harness diagnostics] state ${info.State.Status}, health ${info.State.Health.Status}; last probes:\n${probes}\nlogs:\n${await api.logs(id)}`;
        }
        await new Promise((r) => setTimeout(r, 1000));
    }
}

/** The values Terraform plans from a container's config: defaults applied. */
function plannedState(config: Record<string, any>): Record<string, any> {
    const state: Record<string, any> = {};
    for (const [k, v] of Object.entries(config)) state[k] = plannedContainer(k, v);
    for (const [k, v] of Object.entries(CONTAINER_DEFAULTS)) state[k] ??= v;
    return state;
}

/** TF F, resourceDockerContainerRead (run at the end of Create): the state, with what it reads back. */
/**
 * One `uploads` entry as the provider sends it, or its error: TF F, resourceDockerContainerCreate (v4.5.0,
 * internal/provider/resource_docker_container_funcs.go): exactly one of content, contentBase64, source; mode
 * from `permissions` (octal), else 0744 when executable, else 0644; one tar entry `tar.Header{Name: file,
 * Mode, Size, ModTime}` (no owner: root's in the container) sent with CopyToContainer to "/". Go's
 * archive/tar writes a ustar header; names over 100 bytes, which it would split, are refused here.
 */
function uploadArchive(upload: Record<string, any>, projectDir: string): Buffer | string {
    const given = ["content", "contentBase64", "source"].filter((k) => upload[k] !== undefined && upload[k] !== "");
    if (given.length === 0)
        return "error with upload content: one of 'content', 'content_base64', or 'source' must be set";
    if (given.length > 1)
        return "error with upload content: only one of 'content', 'content_base64', or 'source' can be set";
    const data =
        upload.content !== undefined && upload.content !== ""
            ? Buffer.from(upload.content, "utf8")
            : upload.contentBase64
              ? Buffer.from(upload.contentBase64, "base64")
              : readFileSync(path.resolve(projectDir, upload.source));
    let mode = upload.executable ? 0o744 : 0o644;
    if (upload.permissions) {
        if (!/^[0-7]+$/.test(upload.permissions)) return `Error parsing permission: ${upload.permissions}`;
        mode = parseInt(upload.permissions, 8);
    }
    const name = Buffer.from(upload.file, "utf8");
    if (name.length > 100) throw new Error(`uploads[].file longer than 100 bytes is not emulated: ${upload.file}`);
    const header = Buffer.alloc(512);
    const octal = (value: number, at: number, width: number) =>
        header.write(`${value.toString(8).padStart(width - 1, "0")}\0`, at, width, "ascii");
    name.copy(header, 0);
    octal(mode, 100, 8);
    octal(0, 108, 8); // uid
    octal(0, 116, 8); // gid
    octal(data.length, 124, 12);
    octal(Math.floor(Date.now() / 1000), 136, 12);
    header.write("0", 156, 1, "ascii"); // a regular file
    header.write("ustar\0", 257, 6, "ascii");
    header.write("00", 263, 2, "ascii");
    header.fill(" ", 148, 156); // the checksum is computed with its own field as spaces
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
    const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
    return Buffer.concat([header, data, padding, Buffer.alloc(1024)]);
}

async function readContainer(api: DockerApi, id: string, config: Record<string, any>): Promise<Record<string, any>> {
    const c = await api.inspect("containers", id);
    const state = plannedState(config);
    // v4.2.0: ports re-read whenever the container runs or must_run (v4.5.0: only when configured).
    if (c.State.Running || state.mustRun) state.ports = flattenPorts(c.NetworkSettings?.Ports ?? {});
    state.networkData = Object.entries(c.NetworkSettings?.Networks ?? {}).map(([networkName, n]: [string, any]) => ({
        networkName,
        ipAddress: n.IPAddress,
        gateway: n.Gateway,
    }));
    if (!c.State.Running) {
        state.exitCode = c.State.ExitCode;
        if (state.mustRun) state.mustRun = false;
    }
    state.name = String(c.Name).replace(/^\/+/, "");
    state.image = String(config.image).startsWith("sha256:") ? c.Image : c.Config.Image;
    state.hostname = c.Config.Hostname;
    state.domainname = c.Config.Domainname;
    state.command = c.Config.Cmd ?? undefined;
    state.entrypoints = c.Config.Entrypoint ?? undefined;
    state.user = c.Config.User;
    state.dns = c.HostConfig.Dns ?? undefined;
    state.securityOpts = c.HostConfig.SecurityOpt ?? undefined;
    state.restart = c.HostConfig.RestartPolicy.Name;
    state.maxRetryCount = c.HostConfig.RestartPolicy.MaximumRetryCount;
    state.init = c.HostConfig.Init ?? false;
    state.workingDir = c.Config.WorkingDir;
    state.tmpfs = c.HostConfig.Tmpfs ?? undefined;
    state.privileged = c.HostConfig.Privileged;
    state.memory = Math.floor(c.HostConfig.Memory / 1024 / 1024);
    state.memorySwap =
        c.HostConfig.MemorySwap > 0 ? Math.floor(c.HostConfig.MemorySwap / 1024 / 1024) : c.HostConfig.MemorySwap;
    state.shmSize = Math.floor((c.HostConfig.ShmSize ?? 0) / 1024 / 1024);
    state.logDriver = c.HostConfig.LogConfig.Type;
    // F, containerLogOptsForState: the daemon's map, only when log_opts is configured.
    state.logOpts = config.logOpts ? c.HostConfig.LogConfig.Config : undefined;
    state.networkMode = c.HostConfig.NetworkMode;
    const h = c.Config.Healthcheck;
    if (h)
        state.healthcheck = {
            tests: h.Test,
            interval: goDurationString(h.Interval ?? 0),
            timeout: goDurationString(h.Timeout ?? 0),
            startPeriod: goDurationString(h.StartPeriod ?? 0),
            startInterval: goDurationString(h.StartInterval ?? 0),
            retries: h.Retries ?? 0,
        };
    state.stopSignal = c.Config.StopSignal ?? "";
    state.stopTimeout = c.Config.StopTimeout ?? 0;
    state.tty = c.Config.Tty;
    state.stdinOpen = c.Config.OpenStdin;
    state.rm = c.HostConfig.AutoRemove;
    state.readOnly = c.HostConfig.ReadonlyRootfs;
    state.dnsOpts = c.HostConfig.DnsOptions ?? undefined;
    state.dnsSearches = c.HostConfig.DnsSearch ?? undefined;
    state.publishAllPorts = c.HostConfig.PublishAllPorts;
    if ((c.HostConfig.CapAdd ?? []).length > 0 || (c.HostConfig.CapDrop ?? []).length > 0)
        state.capabilities = { adds: c.HostConfig.CapAdd ?? [], drops: c.HostConfig.CapDrop ?? [] };
    state.runtime = c.HostConfig.Runtime;
    state.platform = c.Platform;
    state.mounts = (c.HostConfig.Mounts ?? []).map((m: any) => ({
        target: m.Target,
        source: m.Source,
        type: m.Type,
        readOnly: m.ReadOnly ?? false,
    }));
    state.hosts = (c.HostConfig.ExtraHosts ?? []).map((h: string) => ({ host: h.split(":")[0], ip: h.split(":")[1] }));
    state.ulimits = (c.HostConfig.Ulimits ?? []).map((u: any) => ({ name: u.Name, soft: u.Soft, hard: u.Hard }));
    state.sysctls = c.HostConfig.Sysctls ?? undefined;
    state.ipcMode = c.HostConfig.IpcMode;
    state.groupAdds = c.HostConfig.GroupAdd ?? undefined;
    state.pidMode = c.HostConfig.PidMode;
    state.usernsMode = c.HostConfig.UsernsMode;
    state.storageOpts = c.HostConfig.StorageOpt ?? undefined;
    state.cpuShares = c.HostConfig.CpuShares;
    state.cpuSet = c.HostConfig.CpusetCpus;
    state.memoryReservation = Math.floor((c.HostConfig.MemoryReservation ?? 0) / 1024 / 1024);
    if (c.HostConfig.NanoCpus > 0) state.cpus = String(c.HostConfig.NanoCpus / 1e9);
    // env, labels, volumes and networks_advanced are not read back: the config stays in the state.
    // (The gpus, devices and device_* attributes, which the harness does not create with, are left out.)
    return state;
}

/** TF resource_docker_container_structures.go, flattenContainerPorts: one entry per host binding. */
function flattenPorts(ports: Record<string, { HostIp: string; HostPort: string }[] | null>) {
    const keys = Object.keys(ports).sort((a, b) => {
        const [pa, qa] = a.split("/");
        const [pb, qb] = b.split("/");
        return Number(pa) - Number(pb) || qa.localeCompare(qb);
    });
    return keys.flatMap((k) =>
        (ports[k] ?? []).map((b) => {
            const [internal, protocol] = k.split("/");
            return { internal: Number(internal), external: Number(b.HostPort), ip: b.HostIp, protocol };
        }),
    );
}

// ---- docker:index/network:Network (TF docker_network: no Update, every argument ForceNew)

const NETWORK_INPUTS = ["name", "driver", "labels", "options", "internal", "attachable", "ipamDriver", "ipamConfigs"];

export const networkModel: Model = {
    deleteBeforeReplace: false,
    known: NETWORK_INPUTS,
    check: (inputs) => inputs,
    diff(old, news) {
        const changed = NETWORK_INPUTS.filter((k) => {
            if (containsUnknown(news[k])) return true;
            // driver and ipam are Optional+Computed: unset takes the state's.
            if (news[k] === undefined)
                return !["driver", "ipamDriver", "ipamConfigs"].includes(k) && !isZero(old.outputs[k]);
            return canonicalJson(news[k]) !== canonicalJson(old.outputs[k]);
        });
        return { changed, replace: changed };
    },
    async create(news, { api }) {
        // Stricter than an engine below API 1.44, which would create a second network of the same name
        // (the later NetworkConnect by name then fails as ambiguous): refuse here, as newer engines do.
        if (await api.inspect("networks", news.name))
            throw new Error(`Error response from daemon: network with name ${news.name} already exists`);
        const created = await api.call("POST", "/networks/create", {
            Name: news.name,
            Driver: news.driver ?? "",
            Internal: news.internal ?? false,
            Attachable: news.attachable ?? false,
            Labels: Object.fromEntries((news.labels ?? []).map((l: any) => [l.label, l.value])),
            Options: news.options ?? {},
            IPAM: { Driver: news.ipamDriver ?? "default", Config: [] },
        });
        const net = await api.inspect("networks", created.Id);
        return {
            id: created.Id,
            outputs: {
                ...news,
                driver: net.Driver,
                scope: net.Scope,
                internal: net.Internal,
                ipamDriver: net.IPAM?.Driver,
            },
        };
    },
    async update() {
        throw new Error("docker_network has no update: every change replaces it");
    },
    async delete(old, { api }) {
        // TF resource_docker_network_funcs.go, resourceDockerNetworkDelete: retry while endpoints remain (30 s).
        const deadline = Date.now() + 30_000;
        for (;;) {
            try {
                await api.call("DELETE", `/networks/${old.id}`, undefined, [404]);
                return;
            } catch (err) {
                if (!/has active endpoints/.test((err as Error).message) || Date.now() > deadline) throw err;
                await new Promise((r) => setTimeout(r, 1000));
            }
        }
    },
    previewOutputs: (news, old, replace) =>
        !old || replace ? { ...news, driver: news.driver ?? UNKNOWN } : old.outputs,
};

// ---- docker:index/remoteImage:RemoteImage (TF docker_image)

const REMOTE_IMAGE_FORCE_NEW = ["name", "platform", "pullTriggers", "triggers"];

export const remoteImageModel: Model = {
    deleteBeforeReplace: false,
    known: [...REMOTE_IMAGE_FORCE_NEW, "keepLocally", "forceRemove"],
    check: (inputs) => inputs,
    diff(old, news) {
        const changed = this.known.filter(
            (k) =>
                containsUnknown(news[k]) ||
                (!(isZero(news[k]) && isZero(old.inputs[k])) &&
                    canonicalJson(news[k]) !== canonicalJson(old.inputs[k])),
        );
        return { changed, replace: changed.filter((k) => REMOTE_IMAGE_FORCE_NEW.includes(k)) };
    },
    async create(news, { api }) {
        // TF resource_docker_image_funcs.go, findImage: the local image if present; a pull otherwise (no
        // registry here: a missing image fails, as a pull would fail offline).
        const image = await api.inspect("images", news.name);
        if (!image)
            throw new Error(
                `unable to find or pull image ${news.name}: no registry is reachable here (run .ci/provision.sh)`,
            );
        const digest = (image.RepoDigests ?? []).find((d: string) => d.startsWith(`${news.name.split(":")[0]}@`));
        return {
            id: `${image.Id}${news.name}`,
            outputs: { ...news, imageId: image.Id, repoDigest: digest ?? image.RepoDigests?.[0] ?? "" },
        };
    },
    async update(old, news, ctx) {
        return (await this.create(news, ctx)).outputs;
    },
    async delete(old, { api }) {
        // removeImage: nothing with keep_locally; otherwise the image goes (force_remove for one in use).
        if (old.outputs.keepLocally) return;
        await api.call(
            "DELETE",
            `/images/${encodeURIComponent(old.outputs.name)}?force=${old.outputs.forceRemove ? 1 : 0}`,
            undefined,
            [404],
        );
    },
    previewOutputs: (news, old, replace) =>
        !old || replace ? { ...news, imageId: UNKNOWN, repoDigest: UNKNOWN } : { ...old.outputs, ...news },
};

// ---- docker:index/image:Image (pulumi-docker v5.0.0's own: provider/provider.go, provider/image.go)

/**
 * provider.go, hashContext: the Dockerfile's content, then every file of the context that the ignore file
 * keeps (getIgnorePatterns: `<dockerfile>.dockerignore`, else `<context>/.dockerignore`), by relative path,
 * mode and content (a symlink by its target). mtimes do not count.
 */
export function contextDigest(contextDir: string, dockerfile: string): string {
    const candidates = [`${dockerfile}.dockerignore`, path.join(contextDir, ".dockerignore")];
    const ignoreFile = candidates.find((f) => existsSync(f));
    const ig = dockerignore({ ignorecase: false });
    if (ignoreFile) ig.add(readFileSync(ignoreFile, "utf8"));
    const hash = createHash("sha256");
    hash.update("Dockerfile\0").update(readFileSync(dockerfile)).update("\0");
    const walk = (rel: string) => {
        for (const entry of readdirSync(path.join(contextDir, rel)).sort()) {
            const relPath = rel ? `${rel}/${entry}` : entry;
            const st = lstatSync(path.join(contextDir, relPath));
            if (st.isDirectory()) {
                walk(relPath);
                continue;
            }
            if (ig.ignores(relPath)) continue;
            hash.update(relPath).update("\0").update(String(st.mode)).update("\0");
            hash.update(
                st.isSymbolicLink()
                    ? readlinkSync(path.join(contextDir, relPath))
                    : readFileSync(path.join(contextDir, relPath)),
            );
            hash.update("\0");
        }
    };
    walk("");
    return hash.digest("hex");
}

export const imageModel: Model = {
    deleteBeforeReplace: false,
    known: ["imageName", "build", "skipPush", "buildOnPreview", "registry"],
    check(inputs, { projectDir }) {
        // provider.go, Check: build defaults (dockerfile relative to the working directory), the Dockerfile
        // must exist, the implicit contextDigest, and the host platform when none is set.
        const build = { ...(inputs.build ?? {}) };
        build.context ??= ".";
        build.dockerfile ??= path.join(build.context, "Dockerfile");
        const dockerfile = path.resolve(projectDir, build.dockerfile);
        if (!existsSync(dockerfile)) {
            if (path.isAbsolute(build.dockerfile))
                throw new Error(`expected a relative Dockerfile path; got ${JSON.stringify(build.dockerfile)} instead`);
            throw new Error(`could not open dockerfile at relative path ${JSON.stringify(build.dockerfile)}`);
        }
        build.contextDigest = contextDigest(path.resolve(projectDir, build.context), dockerfile);
        build.platform ??= `linux/${process.arch === "x64" ? "amd64" : process.arch}`;
        if (inputs.skipPush !== true)
            throw new Error("the e2e harness cannot push: only `skipPush: true` images are emulated");
        return { ...inputs, build };
    },
    diff(old, news) {
        // provider.go, Diff: old inputs against the new ones; never a replacement.
        const changed = this.known.filter(
            (k) => containsUnknown(news[k]) || canonicalJson(news[k]) !== canonicalJson(old.inputs[k]),
        );
        return { changed, replace: [] };
    },
    async create(news, ctx) {
        return { id: news.imageName, outputs: await buildImage(news, ctx) };
    },
    async update(old, news, ctx) {
        return buildImage(news, ctx);
    },
    async delete() {
        // provider.go, Delete: a no-op; the image stays in the engine.
    },
    previewOutputs(news, old) {
        // Create and Update in a preview return the inputs only (canPreview is false without buildOnPreview):
        // repoDigest is missing, which a preview shows as unknown.
        return { ...news, repoDigest: UNKNOWN, id: old?.id ?? UNKNOWN };
    },
};

let chosenCli: Promise<{ path: string; buildkit: boolean }> | undefined;

/**
 * The provider builds with BuildKit through the API. From a CLI, BuildKit needs either the buildx plugin
 * (CLI 23+) or a CLI older than 23 (the engine's built-in BuildKit). Debian's docker.io CLI is such an
 * older one, while a newer `docker` may come first on PATH without buildx. Without either: the classic
 * builder, and a note on stderr (builds are then slower: no parallel stages).
 */
function buildCli(wantBuildkit: boolean, log: (m: string) => void): Promise<{ path: string; buildkit: boolean }> {
    if (!wantBuildkit) return Promise.resolve({ path: "docker", buildkit: false });
    chosenCli ??= (async () => {
        for (const cli of ["docker", "/usr/bin/docker"]) {
            if ((await run(cli, ["buildx", "version"], {}).catch(() => ({ code: 1 }))).code === 0)
                return { path: cli, buildkit: true };
            const v = await run(cli, ["version", "--format", "{{.Client.Version}}"], {}).catch(() => ({
                code: 1,
                stdout: "",
            }));
            const major = Number(/^(\d+)\./.exec(v.stdout.trim())?.[1]);
            if (v.code === 0 && major > 0 && major < 23) return { path: cli, buildkit: true };
        }
        log("no docker CLI here can build with BuildKit (no buildx plugin, no CLI < 23): using the classic builder");
        return { path: "docker", buildkit: false };
    })();
    return chosenCli;
}

/**
 * What the provider's build does with this machine's Docker config before it sends anything (pulumi-docker
 * v5.0.0, provider/image.go, dockerBuild: getDefaultDockerConfig, i.e. config.Load(config.Dir()), then
 * cfg.GetAllCredentials(), whose error aborts the build). GetAllCredentials (docker/cli cli/config/
 * configfile/file.go) lists the credsStore's credentials with its helper (`docker-credential-<store> list`,
 * cli/config/credentials/native_store.go, GetAll) and fails when that fails; the CLI the harness builds
 * with may not, so the harness does it first. A config.json that is not JSON fails config.Load.
 */
async function readAllCredentials(env: NodeJS.ProcessEnv): Promise<void> {
    const dir = env.DOCKER_CONFIG || path.join(env.HOME || homedir(), ".docker");
    const file = path.join(dir, "config.json");
    if (!existsSync(file)) return;
    let config: any;
    try {
        config = JSON.parse(readFileSync(file, "utf8") || "{}");
    } catch (err) {
        throw new Error(`loading config file ${file}: ${(err as Error).message}`);
    }
    const store = typeof config?.credsStore === "string" ? config.credsStore : "";
    if (store === "") return;
    const helper = `docker-credential-${store}`;
    const res = await run(helper, ["list"], { env }).catch((err: Error) => ({
        code: -1,
        stdout: "",
        stderr: `exec: "${helper}": ${err.message}`,
    }));
    if (res.code !== 0)
        throw new Error(`error getting credentials - err: ${res.stderr.trim()}, out: \`${res.stdout.trim()}\``);
}

async function buildImage(news: Record<string, any>, ctx: ModelContext): Promise<Record<string, any>> {
    const build = news.build;
    await readAllCredentials(process.env);
    const argv = [
        "build",
        "--quiet",
        "--tag",
        news.imageName,
        "--file",
        path.resolve(ctx.projectDir, build.dockerfile),
    ];
    if (build.target) argv.push("--target", build.target);
    if (build.platform) argv.push("--platform", build.platform);
    if (build.network) argv.push("--network", build.network);
    for (const h of build.addHosts ?? []) argv.push("--add-host", h);
    // Build args by name only: the CLI reads their values from its environment, never from argv.
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: ctx.api.dockerHost };
    for (const [k, v] of Object.entries(build.args ?? {})) {
        argv.push("--build-arg", k);
        env[k] = String(v);
    }
    argv.push(path.resolve(ctx.projectDir, build.context));
    const cli = await buildCli(build.builderVersion !== "BuilderV1", ctx.log);
    env.DOCKER_BUILDKIT = cli.buildkit ? "1" : "0";
    const res = await run(cli.path, argv, { env, cwd: ctx.projectDir });
    if (res.code !== 0)
        throw new Error(`docker build failed (exit ${res.code}):\n${tail(res.stderr || res.stdout, 60)}`);
    const image = await ctx.api.inspect("images", news.imageName);
    if (!image) throw new Error(`docker build succeeded but ${news.imageName} is missing`);
    // image.go, dockerBuild: with skipPush, repoDigest is the local image ID.
    return {
        ...news,
        baseImageName: news.imageName,
        repoDigest: image.Id,
        context: build.context,
        dockerfile: build.dockerfile,
        platform: build.platform,
        registryServer: "",
    };
}

// ---- command:local:Command (pulumi-command v1.2.1)

const COMMAND_INPUTS = [
    "create",
    "update",
    "delete",
    "environment",
    "dir",
    "interpreter",
    "stdin",
    "triggers",
    "addPreviousOutputInEnv",
    "logging",
];

/** A command's script as local/commandOutputs.go, run(), runs it: interpreter, environment, dir, stdin. */
export function runScript(
    script: string,
    inputs: any,
    projectDir: string,
    previous?: Record<string, any>,
): Promise<RunResult> {
    const interpreter: string[] = inputs.interpreter?.length ? inputs.interpreter : ["/bin/sh", "-c"];
    const env: NodeJS.ProcessEnv = { ...process.env, ...(inputs.environment ?? {}) };
    if (inputs.addPreviousOutputInEnv !== false && previous) {
        if (previous.stdout) env.PULUMI_COMMAND_STDOUT = previous.stdout;
        if (previous.stderr) env.PULUMI_COMMAND_STDERR = previous.stderr;
    }
    return run(interpreter[0], [...interpreter.slice(1), script], {
        env,
        cwd: inputs.dir ? path.resolve(projectDir, inputs.dir) : projectDir,
        stdin: inputs.stdin,
    });
}

export async function runCommand(
    which: string,
    script: string,
    inputs: any,
    ctx: ModelContext,
    previous?: Record<string, any>,
) {
    const res = await runScript(script, inputs, ctx.projectDir, previous);
    if (res.code !== 0)
        // commandOutputs.go, run: `%w: running %q:\n%s` with the combined output.
        throw new Error(
            `exit status ${res.code}: running ${JSON.stringify(which)}:\n${tail(res.stdout, 40)}\n${tail(res.stderr, 60)}`,
        );
    // One trailing newline is trimmed from each stream.
    return { stdout: res.stdout.replace(/\n$/, ""), stderr: res.stderr.replace(/\n$/, "") };
}

/**
 * The command:local:run function (pulumi-command v1.2.1, provider/pkg/provider/local/runController.go,
 * Run.Invoke): the same run() as a command's create (local/commandOutputs.go), so the same interpreter,
 * environment, directory and error on a non-zero exit; its outputs are its inputs plus stdout and stderr.
 * Invokes run in a preview too (the SDK skips one only when an input is unknown, which the caller sees).
 */
export async function runFunction(inputs: any, projectDir: string): Promise<Record<string, any>> {
    if (containsUnknown(inputs)) throw new Error("command:local:run was called with an unknown input");
    return { ...inputs, ...(await runCommand(inputs.command, inputs.command, inputs, { projectDir } as ModelContext)) };
}

export const commandModel: Model = {
    deleteBeforeReplace: false,
    known: COMMAND_INPUTS,
    check(inputs) {
        if (inputs.assetPaths || inputs.archivePaths) throw new Error("assetPaths/archivePaths are not emulated");
        return inputs;
    },
    diff(old, news) {
        // infer Diff over old and new inputs: only `triggers` (replaceOnChanges) replaces; anything else updates.
        const changed = COMMAND_INPUTS.filter(
            (k) => containsUnknown(news[k]) || canonicalJson(news[k]) !== canonicalJson(old.inputs[k]),
        );
        return { changed, replace: changed.filter((k) => k === "triggers") };
    },
    async create(news, ctx) {
        const id = `${randomBytes(4).toString("hex")}`;
        if (news.create === undefined) return { id, outputs: { ...news, stdout: "", stderr: "" } };
        // stdout and stderr are plain outputs, even when the environment holds secrets: only an output that
        // shares a secret input's name is secret (pulumi-go-provider v1.3.0, infer/resource.go). A failed
        // command is a plain error, not a ResourceInitFailedError, so the engine records nothing of it
        // (infer/resource.go, derivedResourceController.Create): the next `up` creates it again.
        return { id, outputs: { ...news, ...(await runCommand("create", news.create, news, ctx)) } };
    },
    async update(old, news, ctx) {
        // commandController.go, Update: `update` if set, else `create`; with the previous outputs in the env.
        const script = news.update ?? news.create;
        if (script === undefined) return { ...news, stdout: old.outputs.stdout, stderr: old.outputs.stderr };
        return { ...news, ...(await runCommand(news.update ? "update" : "create", script, news, ctx, old.outputs)) };
    },
    async delete(old, ctx) {
        // commandController.go, Delete: the old state's `delete`, with the old state's environment.
        if (old.outputs.delete === undefined) return;
        await runCommand("delete", old.outputs.delete, old.outputs, ctx, old.outputs);
    },
    previewOutputs(news, old) {
        // No command runs in a preview; stdout/stderr of a create or changed command are unknown.
        return { ...news, stdout: UNKNOWN, stderr: UNKNOWN, id: old?.id };
    },
};

// ---- random:index/randomPassword:RandomPassword (pulumi-random v4.21.1: every input forces replacement)

const RANDOM_INPUTS = [
    "length",
    "special",
    "upper",
    "lower",
    "numeric",
    "number",
    "overrideSpecial",
    "minLower",
    "minUpper",
    "minNumeric",
    "minSpecial",
    "keepers",
];

export const randomPasswordModel: Model = {
    deleteBeforeReplace: false,
    known: RANDOM_INPUTS,
    check: (inputs) => inputs,
    diff(old, news) {
        const changed = RANDOM_INPUTS.filter(
            (k) => containsUnknown(news[k]) || canonicalJson(news[k]) !== canonicalJson(old.inputs[k]),
        );
        return { changed, replace: changed };
    },
    async create(news) {
        const sets: [boolean, string, number][] = [
            [news.lower ?? true, "abcdefghijklmnopqrstuvwxyz", news.minLower ?? 0],
            [news.upper ?? true, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", news.minUpper ?? 0],
            [news.numeric ?? news.number ?? true, "0123456789", news.minNumeric ?? 0],
            [news.special ?? true, news.overrideSpecial ?? "!@#$%&*()-_=+[]{}<>:?", news.minSpecial ?? 0],
        ];
        const enabled = sets.filter(([on]) => on);
        const all = enabled.map(([, chars]) => chars).join("");
        const chars: string[] = [];
        for (const [, set, min] of enabled) for (let i = 0; i < min; i++) chars.push(set[randomInt(set.length)]);
        while (chars.length < news.length) chars.push(all[randomInt(all.length)]);
        for (let i = chars.length - 1; i > 0; i--) {
            const j = randomInt(i + 1);
            [chars[i], chars[j]] = [chars[j], chars[i]];
        }
        // result and bcryptHash are secret outputs of the provider.
        return { id: "none", outputs: { ...news, result: secret(chars.join("")), bcryptHash: secret("") } };
    },
    async update() {
        throw new Error("RandomPassword has no update: every change replaces it");
    },
    async delete() {
        // state only
    },
    previewOutputs: (news) => ({ ...news, result: secret(UNKNOWN), bcryptHash: secret(UNKNOWN) }),
};

// ---- random:index/randomId:RandomId (pulumi-random v4.21.1: every input forces replacement)

const RANDOM_ID_INPUTS = ["byteLength", "prefix", "keepers"];

export const randomIdModel: Model = {
    deleteBeforeReplace: false,
    known: RANDOM_ID_INPUTS,
    check: (inputs) => inputs,
    diff(old, news) {
        const changed = RANDOM_ID_INPUTS.filter(
            (k) => containsUnknown(news[k]) || canonicalJson(news[k]) !== canonicalJson(old.inputs[k]),
        );
        return { changed, replace: changed };
    },
    async create(news) {
        const bytes = randomBytes(news.byteLength);
        const prefix = news.prefix ?? "";
        return {
            id: bytes.toString("base64url"),
            outputs: {
                ...news,
                hex: prefix + bytes.toString("hex"),
                b64Url: prefix + bytes.toString("base64url"),
                b64Std: prefix + bytes.toString("base64"),
                dec: prefix + BigInt(`0x${bytes.toString("hex")}`).toString(),
            },
        };
    },
    async update() {
        throw new Error("RandomId has no update: every change replaces it");
    },
    async delete() {
        // state only
    },
    previewOutputs: (news) => ({ ...news, hex: UNKNOWN, b64Url: UNKNOWN, b64Std: UNKNOWN, dec: UNKNOWN }),
};

export const MODELS: Record<string, Model> = {
    "docker:index/container:Container": containerModel,
    "docker:index/network:Network": networkModel,
    "docker:index/remoteImage:RemoteImage": remoteImageModel,
    "docker:index/image:Image": imageModel,
    "command:local:Command": commandModel,
    "random:index/randomPassword:RandomPassword": randomPasswordModel,
    "random:index/randomId:RandomId": randomIdModel,
};
