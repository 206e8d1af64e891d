// TEST HARNESS (issue 5), not product code: a `pulumi.runtime.Mocks` whose `newResource` performs each
// resource for real against a Docker engine and returns the state the provider would, so that the real
// program (index.ts with a real stack file) can be brought up where the Pulumi CLI cannot be installed.
//
// What `pulumi up` would do is kept in a state file (URN-like key -> digest of inputs, outputs): on a run
// again, a resource whose inputs are unchanged is not touched; a changed container is replaced (removed,
// then created: the program's fixed names need deleteBeforeReplace); a changed command runs its update
// (or create) again, a changed trigger replaces it. `destroy()` removes what `pulumi destroy` removes.
// Any resource type or container option this file does not implement fails the run instead of being
// silently ignored.
import type * as pulumi from "@pulumi/pulumi";
import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { DockerApi, socketPathOf } from "./dockerApi";
import { inputsDigest, isSecretWrapper, secret, unwrapSecrets } from "./secrets";

/** Label put on every container the harness creates, so that a crashed run's leftovers can be found. */
export const HARNESS_LABEL = "marvel-rivals-stats.e2e-harness";

export type Operation = "create" | "replace" | "update" | "same" | "delete";

export interface OperationRecord {
    key: string;
    type: string;
    name: string;
    op: Operation;
    /** Milliseconds since the run started. */
    start: number;
    end: number;
    error?: string;
}

interface StateEntry {
    type: string;
    name: string;
    digest: string;
    /** Digest of `triggers` alone (commands: a changed trigger replaces, anything else updates). */
    triggersDigest?: string;
    id: string;
    outputs: Record<string, any>;
    /** Order of creation, for deleting in reverse. */
    seq: number;
}

interface HarnessState {
    seq: number;
    resources: Record<string, StateEntry>;
}

export interface RealEngineMocksOptions {
    /** Where the harness keeps its state between runs (the test's temp dir). */
    stateFile: string;
    /** The program's working directory (relative paths resolve there, as under `pulumi up`). */
    projectDir: string;
}

const log = (msg: string) => process.stderr.write(`[e2e-harness] ${msg}\n`);

export class RealEngineMocks implements pulumi.runtime.Mocks {
    readonly operations: OperationRecord[] = [];
    readonly errors: Error[] = [];
    private readonly t0 = Date.now();
    private readonly state: HarnessState;
    private readonly seenKeys = new Set<string>();
    private readonly pending = new Set<Promise<unknown>>();
    private readonly providerHosts = new Map<string, string | undefined>();

    constructor(private readonly opts: RealEngineMocksOptions) {
        this.state = existsSync(opts.stateFile)
            ? (JSON.parse(readFileSync(opts.stateFile, "utf8")) as HarnessState)
            : { seq: 0, resources: {} };
    }

    // ---- Mocks API

    newResource(args: pulumi.runtime.MockResourceArgs): Promise<pulumi.runtime.MockResourceResult> {
        const p = this.perform(args);
        this.pending.add(p);
        p.catch((err: Error) => this.errors.push(err)).finally(() => this.pending.delete(p));
        return p;
    }

    async call(args: pulumi.runtime.MockCallArgs): Promise<Record<string, any>> {
        const inputs = unwrapSecrets(args.inputs);
        switch (args.token) {
            case "docker:index/getNetwork:getNetwork": {
                const net = await this.api(args.provider).inspect("networks", inputs.name);
                if (!net) throw new Error(`getNetwork: no Docker network named ${JSON.stringify(inputs.name)}`);
                return {
                    id: net.Id,
                    name: net.Name,
                    driver: net.Driver,
                    internal: net.Internal,
                    scope: net.Scope,
                    options: net.Options ?? {},
                    ipamConfigs: (net.IPAM?.Config ?? []).map((c: any) => ({ subnet: c.Subnet, gateway: c.Gateway })),
                };
            }
            default:
                throw new Error(`the e2e harness does not implement the function ${args.token}`);
        }
    }

    // ---- run control

    /** Resolves once no resource operation is in flight (new ones may start while earlier ones finish). */
    async settle(): Promise<void> {
        for (;;) {
            await new Promise((r) => setTimeout(r, 50));
            if (this.pending.size === 0) return;
            await Promise.allSettled([...this.pending]);
        }
    }

    /** After a successful run: resources in the state that the program no longer declares are deleted. */
    async deleteUndeclared(): Promise<void> {
        const stale = Object.entries(this.state.resources)
            .filter(([key]) => !this.seenKeys.has(key))
            .sort(([, a], [, b]) => b.seq - a.seq);
        for (const [key, entry] of stale) await this.deleteEntry(key, entry);
    }

    /** What `pulumi destroy` does: every resource in the state, newest first. */
    async destroy(): Promise<void> {
        const all = Object.entries(this.state.resources).sort(([, a], [, b]) => b.seq - a.seq);
        for (const [key, entry] of all) await this.deleteEntry(key, entry);
    }

    saveState(): void {
        const tmp = `${this.opts.stateFile}.tmp`;
        writeFileSync(tmp, JSON.stringify(this.state, null, 2), { mode: 0o600 });
        renameSync(tmp, this.opts.stateFile);
    }

    // ---- dispatch

    private async perform(args: pulumi.runtime.MockResourceArgs): Promise<pulumi.runtime.MockResourceResult> {
        if (!args.custom) {
            // Component resources (and the stack) have no provider: their outputs come from registerOutputs.
            return { id: undefined, state: {} };
        }
        const key = `${args.type}::${args.name}`;
        if (this.seenKeys.has(key))
            throw new Error(`two resources named ${key}: Pulumi would refuse the duplicate URN`);
        this.seenKeys.add(key);

        if (args.type === "pulumi:providers:docker") {
            const inputs = unwrapSecrets(args.inputs);
            const id = `${args.name}_id`;
            // The provider reference the SDK passes to resources is `<urn>::<id>`; keep the host by id.
            this.providerHosts.set(id, inputs.host);
            socketPathOf(inputs.host); // fails now for a host the harness cannot drive
            return { id, state: args.inputs };
        }
        if (args.type.startsWith("pulumi:providers:")) {
            return { id: `${args.name}_id`, state: args.inputs };
        }

        const prev = this.state.resources[key];
        const digest = inputsDigest(args.inputs);
        const start = Date.now() - this.t0;
        let op: Operation = "same";
        try {
            let result: { id: string; outputs: Record<string, any> };
            switch (args.type) {
                case "docker:index/network:Network":
                    ({ op, result } = await this.network(args, prev, digest));
                    break;
                case "docker:index/remoteImage:RemoteImage":
                    ({ op, result } = await this.remoteImage(args, prev));
                    break;
                case "docker:index/image:Image":
                    ({ op, result } = await this.image(args, prev));
                    break;
                case "docker:index/container:Container":
                    ({ op, result } = await this.container(args, prev, digest));
                    break;
                case "command:local:Command":
                    ({ op, result } = await this.command(args, prev, digest));
                    break;
                case "random:index/randomPassword:RandomPassword":
                    ({ op, result } = this.randomPassword(args, prev, digest));
                    break;
                default:
                    throw new Error(`the e2e harness does not implement the resource type ${args.type} (${args.name})`);
            }
            this.state.resources[key] = {
                type: args.type,
                name: args.name,
                digest,
                triggersDigest: args.inputs.triggers === undefined ? undefined : inputsDigest(args.inputs.triggers),
                id: result.id,
                outputs: result.outputs,
                seq: op === "same" && prev ? prev.seq : ++this.state.seq,
            };
            this.saveState();
            this.operations.push({ key, type: args.type, name: args.name, op, start, end: Date.now() - this.t0 });
            return { id: result.id, state: result.outputs };
        } catch (err) {
            const message = (err as Error).message;
            if (err instanceof PartialCreateError) {
                // As the engine keeps a partially created resource: in the state, replaced on the next run.
                this.state.resources[key] = {
                    type: args.type,
                    name: args.name,
                    digest: "partial",
                    id: err.id,
                    outputs: args.inputs,
                    seq: ++this.state.seq,
                };
                this.saveState();
            } else if (
                prev &&
                op === "replace" &&
                (args.type.endsWith(":Container") || args.type.endsWith(":Network"))
            ) {
                // Replaced delete-before-create: the old one is gone already, nothing of it is left to track.
                delete this.state.resources[key];
                this.saveState();
            }
            this.operations.push({
                key,
                type: args.type,
                name: args.name,
                op,
                start,
                end: Date.now() - this.t0,
                error: message,
            });
            throw new Error(`${args.type} ${args.name}: ${message}`);
        }
    }

    private api(provider: string | undefined): DockerApi {
        const id = provider?.split("::").pop();
        const host = id !== undefined && this.providerHosts.has(id) ? this.providerHosts.get(id) : undefined;
        return new DockerApi(socketPathOf(host));
    }

    // ---- docker:index/network:Network

    private async network(args: pulumi.runtime.MockResourceArgs, prev: StateEntry | undefined, digest: string) {
        const inputs = unwrapSecrets(args.inputs);
        rejectUnknown("Network", inputs, [
            "name",
            "driver",
            "internal",
            "attachable",
            "labels",
            "options",
            "ipamConfigs",
            "checkDuplicate",
            "ipamDriver",
        ]);
        const api = this.api(args.provider);
        let op: Operation = "create";
        if (prev) {
            const existing = await api.inspect("networks", prev.id);
            if (existing && prev.digest === digest)
                return { op: "same" as Operation, result: { id: prev.id, outputs: prev.outputs } };
            if (existing) {
                await api.call("DELETE", `/networks/${prev.id}`, undefined, [404]);
                op = "replace";
            }
        }
        const created = await api.call("POST", "/networks/create", {
            Name: inputs.name,
            Driver: inputs.driver ?? "bridge",
            Internal: inputs.internal ?? false,
            Attachable: inputs.attachable ?? false,
            CheckDuplicate: inputs.checkDuplicate ?? true,
            Labels: Object.fromEntries((inputs.labels ?? []).map((l: any) => [l.label, l.value])),
            Options: inputs.options ?? {},
            IPAM: {
                Driver: inputs.ipamDriver ?? "default",
                Config: (inputs.ipamConfigs ?? []).map((c: any) => ({
                    Subnet: c.subnet,
                    Gateway: c.gateway,
                    IPRange: c.ipRange,
                })),
            },
        });
        const net = await api.inspect("networks", created.Id);
        return {
            op,
            result: {
                id: created.Id,
                outputs: {
                    ...args.inputs,
                    driver: net.Driver,
                    scope: net.Scope,
                    internal: net.Internal,
                    ipamConfigs: (net.IPAM?.Config ?? []).map((c: any) => ({ subnet: c.Subnet, gateway: c.Gateway })),
                },
            },
        };
    }

    // ---- docker:index/remoteImage:RemoteImage (nothing can be pulled here: the image must exist)

    private async remoteImage(args: pulumi.runtime.MockResourceArgs, prev: StateEntry | undefined) {
        const inputs = unwrapSecrets(args.inputs);
        rejectUnknown("RemoteImage", inputs, [
            "name",
            "keepLocally",
            "platform",
            "pullTriggers",
            "forceRemove",
            "triggers",
        ]);
        const image = await this.api(args.provider).inspect("images", inputs.name);
        if (!image) {
            throw new Error(
                `image ${inputs.name} is not present and no registry is reachable here: run .ci/provision.sh`,
            );
        }
        const outputs = { ...args.inputs, imageId: image.Id, repoDigest: image.RepoDigests?.[0] ?? "" };
        const op: Operation = !prev ? "create" : prev.outputs.imageId === image.Id ? "same" : "update";
        return { op, result: { id: `${image.Id}${inputs.name}`, outputs } };
    }

    // ---- docker:index/image:Image (built by the engine, never pushed)

    private async image(args: pulumi.runtime.MockResourceArgs, prev: StateEntry | undefined) {
        const inputs = unwrapSecrets(args.inputs);
        rejectUnknown("Image", inputs, ["imageName", "build", "skipPush", "buildOnPreview", "registry"]);
        if (inputs.skipPush !== true)
            throw new Error("the harness cannot push: only `skipPush: true` images are supported");
        const build = inputs.build ?? {};
        rejectUnknown("Image.build", build, [
            "context",
            "dockerfile",
            "target",
            "platform",
            "args",
            "builderVersion",
            "network",
            "addHosts",
        ]);
        const context = path.resolve(this.opts.projectDir, build.context ?? ".");
        // As the provider (v4.1+, pulumi-docker#572): a relative dockerfile is relative to the working
        // directory, and the default is <context>/Dockerfile.
        const dockerfile = build.dockerfile
            ? path.resolve(this.opts.projectDir, build.dockerfile)
            : path.join(context, "Dockerfile");
        if (!existsSync(dockerfile)) throw new Error(`could not open dockerfile at ${dockerfile}`);

        const argv = ["build", "--quiet", "--tag", inputs.imageName, "--file", dockerfile];
        if (build.target) argv.push("--target", build.target);
        if (build.platform) argv.push("--platform", build.platform);
        if (build.network) argv.push("--network", build.network);
        for (const h of build.addHosts ?? []) argv.push("--add-host", h);
        // Build args by name only: the CLI reads their values from its environment, never from argv.
        const env: NodeJS.ProcessEnv = { ...process.env };
        for (const [k, v] of Object.entries(build.args ?? {})) {
            argv.push("--build-arg", k);
            env[k] = String(v);
        }
        argv.push(context);
        const cli = await buildCli(build.builderVersion !== "BuilderV1");
        env.DOCKER_BUILDKIT = cli.buildkit ? "1" : "0";
        const res = await run(cli.path, argv, { env, cwd: this.opts.projectDir });
        if (res.code !== 0)
            throw new Error(`docker build failed (exit ${res.code}):\n${tail(res.stderr || res.stdout, 60)}`);
        const image = await this.api(args.provider).inspect("images", inputs.imageName);
        if (!image) throw new Error(`docker build succeeded but ${inputs.imageName} is missing`);
        const outputs = {
            ...args.inputs,
            imageName: inputs.imageName,
            baseImageName: inputs.imageName,
            // For an image that is not pushed, the provider reports the local image ID here.
            repoDigest: image.Id,
            context: build.context,
            dockerfile: build.dockerfile,
            platform: build.platform,
            registryServer: "",
        };
        const op: Operation = !prev ? "create" : prev.outputs.repoDigest === image.Id ? "same" : "update";
        return { op, result: { id: image.Id, outputs } };
    }

    // ---- docker:index/container:Container

    private async container(args: pulumi.runtime.MockResourceArgs, prev: StateEntry | undefined, digest: string) {
        const inputs = unwrapSecrets(args.inputs);
        rejectUnknown("Container", inputs, [
            "name",
            "image",
            "envs",
            "command",
            "entrypoints",
            "user",
            "workingDir",
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
            "hostname",
            "domainname",
            "stopSignal",
            "stopTimeout",
            "destroyGraceSeconds",
            "capabilities",
            "mustRun",
            "start",
            "tty",
            "stdinOpen",
            "readOnly",
            "shmSize",
            "tmpfs",
            "groupAdd",
            "dns",
            "hosts",
            "ulimits",
            "sysctls",
            "privileged",
            "rm",
            "attach",
            "logs",
            "securityOpts",
        ]);
        if (inputs.rm || inputs.attach || inputs.logs)
            throw new Error("`rm`, `attach` and `logs` are not implemented by the harness");
        const api = this.api(args.provider);
        let op: Operation = "create";
        if (prev) {
            const existing = await api.inspect("containers", prev.id);
            if (existing && prev.digest === digest)
                return { op: "same" as Operation, result: { id: prev.id, outputs: prev.outputs } };
            if (existing) {
                // deleteBeforeReplace: a fixed name cannot exist twice.
                await api.removeContainer(prev.id, prev.outputs.destroyGraceSeconds ?? 10);
                op = "replace";
            } else {
                log(`${args.name}: container ${prev.id.slice(0, 12)} is gone, creating it again`);
            }
        }

        const nets: { name: string; aliases?: string[]; ipv4Address?: string }[] = inputs.networksAdvanced ?? [];
        const exposed: Record<string, object> = {};
        const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
        for (const p of inputs.ports ?? []) {
            const k = `${p.internal}/${p.protocol ?? "tcp"}`;
            exposed[k] = {};
            (bindings[k] ??= []).push({
                HostIp: p.ip ?? "0.0.0.0",
                HostPort: p.external === undefined ? "" : String(p.external),
            });
        }
        const binds = (inputs.volumes ?? []).map((v: any) => {
            if (v.fromContainer) throw new Error("volumes[].fromContainer is not implemented by the harness");
            const src = v.hostPath ?? v.volumeName;
            if (!src) throw new Error("a volume needs hostPath or volumeName");
            return `${src}:${v.containerPath}${v.readOnly ? ":ro" : ""}`;
        });
        const hc = inputs.healthcheck;
        const body = {
            Image: inputs.image,
            Env: inputs.envs ?? [],
            Cmd: inputs.command,
            Entrypoint: inputs.entrypoints,
            User: inputs.user ?? "",
            WorkingDir: inputs.workingDir ?? "",
            Hostname: inputs.hostname,
            Domainname: inputs.domainname,
            Tty: inputs.tty ?? false,
            OpenStdin: inputs.stdinOpen ?? false,
            StopSignal: inputs.stopSignal,
            StopTimeout: inputs.stopTimeout,
            Labels: {
                ...Object.fromEntries((inputs.labels ?? []).map((l: any) => [l.label, l.value])),
                [HARNESS_LABEL]: "1",
            },
            ExposedPorts: exposed,
            Healthcheck: hc
                ? {
                      Test: hc.tests,
                      Interval: durationNs(hc.interval),
                      Timeout: durationNs(hc.timeout),
                      StartPeriod: durationNs(hc.startPeriod),
                      // StartInterval needs API 1.44 (Docker 25); older engines ignore it, as they ignore it
                      // from the provider.
                      StartInterval: durationNs(hc.startInterval),
                      Retries: hc.retries ?? 0,
                  }
                : undefined,
            HostConfig: {
                Binds: binds,
                PortBindings: bindings,
                RestartPolicy: { Name: inputs.restart ?? "no", MaximumRetryCount: inputs.maxRetryCount ?? 0 },
                LogConfig: { Type: inputs.logDriver ?? "json-file", Config: inputs.logOpts ?? {} },
                Memory: inputs.memory ? inputs.memory * 1024 * 1024 : 0,
                MemorySwap: inputs.memorySwap ? inputs.memorySwap * 1024 * 1024 : 0,
                Init: inputs.init ?? false,
                NetworkMode: nets[0]?.name ?? inputs.networkMode ?? "default",
                CapAdd: inputs.capabilities?.adds,
                CapDrop: inputs.capabilities?.drops,
                ReadonlyRootfs: inputs.readOnly ?? false,
                ShmSize: inputs.shmSize ? inputs.shmSize * 1024 * 1024 : undefined,
                Tmpfs: inputs.tmpfs,
                GroupAdd: inputs.groupAdd,
                Dns: inputs.dns,
                ExtraHosts: (inputs.hosts ?? []).map((h: any) => `${h.host}:${h.ip}`),
                Privileged: inputs.privileged ?? false,
                SecurityOpt: inputs.securityOpts,
                Sysctls: inputs.sysctls,
                Ulimits: (inputs.ulimits ?? []).map((u: any) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
            },
            NetworkingConfig: nets[0] ? { EndpointsConfig: { [nets[0].name]: endpoint(nets[0]) } } : undefined,
        };
        const created = await api.call("POST", `/containers/create?name=${encodeURIComponent(inputs.name)}`, body);
        const id: string = created.Id;
        try {
            for (const n of nets.slice(1)) {
                await api.call("POST", `/networks/${encodeURIComponent(n.name)}/connect`, {
                    Container: id,
                    EndpointConfig: endpoint(n),
                });
            }
            if (inputs.start !== false) {
                await api.call("POST", `/containers/${id}/start`, undefined, [304]);
                if (inputs.wait) await this.waitHealthy(api, id, inputs.name, (inputs.waitTimeout ?? 60) * 1000);
                else if (inputs.mustRun !== false) await this.ensureRunning(api, id, inputs.name);
            }
        } catch (err) {
            throw new PartialCreateError(id, (err as Error).message);
        }
        const info = await api.inspect("containers", id);
        const outputs = {
            ...args.inputs,
            exitCode: null,
            hostname: info.Config.Hostname,
            networkData: Object.entries(info.NetworkSettings.Networks ?? {}).map(([networkName, n]: [string, any]) => ({
                networkName,
                ipAddress: n.IPAddress,
                ipPrefixLength: n.IPPrefixLen,
                gateway: n.Gateway,
                macAddress: n.MacAddress,
            })),
        };
        return { op, result: { id, outputs } };
    }

    private async waitHealthy(api: DockerApi, id: string, name: string, timeoutMs: number): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const info = await api.inspect("containers", id);
            const state = info?.State;
            if (!state) throw new Error(`container ${name} disappeared while waiting for it to turn healthy`);
            const health = state.Health?.Status as string | undefined;
            if (!state.Running) {
                throw new Error(
                    `container ${name} exited (code ${state.ExitCode}) before turning healthy; its logs:\n${await api.logs(id)}`,
                );
            }
            if (health === undefined || health === "healthy") return; // no healthcheck: running is all we can wait for
            if (health === "unhealthy") {
                const probes = (state.Health.Log ?? [])
                    .map((l: any) => `  exit ${l.ExitCode}: ${String(l.Output).trim()}`)
                    .join("\n");
                throw new Error(
                    `container ${name} turned unhealthy; last probes:\n${probes}\nits logs:\n${await api.logs(id)}`,
                );
            }
            if (Date.now() > deadline) {
                throw new Error(
                    `container ${name} not healthy after ${timeoutMs / 1000} s (${health}); its logs:\n${await api.logs(id)}`,
                );
            }
            await new Promise((r) => setTimeout(r, 200));
        }
    }

    private async ensureRunning(api: DockerApi, id: string, name: string): Promise<void> {
        // The provider checks that a container it started is still running shortly after.
        await new Promise((r) => setTimeout(r, 500));
        const info = await api.inspect("containers", id);
        if (!info?.State?.Running) {
            throw new Error(
                `container ${name} is not running (exit ${info?.State?.ExitCode}); its logs:\n${await api.logs(id)}`,
            );
        }
    }

    // ---- command:local:Command

    private async command(args: pulumi.runtime.MockResourceArgs, prev: StateEntry | undefined, digest: string) {
        const inputs = unwrapSecrets(args.inputs);
        rejectUnknown("Command", inputs, [
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
            "assetPaths",
            "archivePaths",
        ]);
        if (inputs.assetPaths || inputs.archivePaths)
            throw new Error("assetPaths/archivePaths are not implemented by the harness");
        const triggersDigest = inputs.triggers === undefined ? undefined : inputsDigest(inputs.triggers);
        if (prev && prev.digest === digest)
            return { op: "same" as Operation, result: { id: prev.id, outputs: prev.outputs } };
        let op: Operation = "create";
        let script: string | undefined = inputs.create;
        if (prev) {
            if (prev.triggersDigest !== triggersDigest) {
                // Create before delete (Pulumi's default replacement): the old one's delete runs once the
                // new one exists; if the new create fails, the old one stays in the state.
                op = "replace";
            } else {
                op = "update";
                script = inputs.update ?? inputs.create;
            }
        }
        let stdout = "";
        let stderr = "";
        if (script !== undefined) {
            const res = await runScript(script, inputs, this.opts.projectDir, prev?.outputs);
            if (res.code !== 0) {
                throw new Error(
                    `exit status ${res.code}: running ${JSON.stringify(op === "update" ? "update" : "create")}:\nstdout: ${tail(res.stdout, 40)}\nstderr: ${tail(res.stderr, 60)}`,
                );
            }
            // The provider trims the trailing newline of both streams.
            stdout = res.stdout.replace(/\n$/, "");
            stderr = res.stderr.replace(/\n$/, "");
        }
        if (op === "replace" && prev) await this.runDelete(prev);
        const secretEnv =
            Object.values(args.inputs.environment ?? {}).some(isSecretWrapper) ||
            isSecretWrapper(args.inputs.environment);
        // Outputs derived from secret inputs stay secret, as the engine does for the real provider.
        const wrap = (s: string) => (secretEnv ? secret(s) : s);
        return {
            op,
            result: {
                id: prev?.id ?? `command-${Date.now()}-${randomInt(1e9)}`,
                outputs: { ...args.inputs, stdout: wrap(stdout), stderr: wrap(stderr) },
            },
        };
    }

    private async runDelete(entry: StateEntry): Promise<void> {
        const inputs = unwrapSecrets(entry.outputs);
        if (inputs.delete === undefined) return;
        const res = await runScript(inputs.delete, inputs, this.opts.projectDir, inputs);
        if (res.code !== 0)
            throw new Error(`exit status ${res.code}: running "delete" of ${entry.name}:\n${tail(res.stderr, 40)}`);
    }

    // ---- random:index/randomPassword:RandomPassword

    private randomPassword(args: pulumi.runtime.MockResourceArgs, prev: StateEntry | undefined, digest: string) {
        if (prev && prev.digest === digest)
            return { op: "same" as Operation, result: { id: prev.id, outputs: prev.outputs } };
        const inputs = unwrapSecrets(args.inputs);
        rejectUnknown("RandomPassword", inputs, [
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
        ]);
        const sets: [boolean, string, number][] = [
            [inputs.lower ?? true, "abcdefghijklmnopqrstuvwxyz", inputs.minLower ?? 0],
            [inputs.upper ?? true, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", inputs.minUpper ?? 0],
            [inputs.numeric ?? inputs.number ?? true, "0123456789", inputs.minNumeric ?? 0],
            [inputs.special ?? true, inputs.overrideSpecial ?? "!@#$%&*()-_=+[]{}<>:?", inputs.minSpecial ?? 0],
        ];
        const enabled = sets.filter(([on]) => on);
        const all = enabled.map(([, chars]) => chars).join("");
        const chars: string[] = [];
        for (const [, set, min] of enabled) for (let i = 0; i < min; i++) chars.push(set[randomInt(set.length)]);
        while (chars.length < inputs.length) chars.push(all[randomInt(all.length)]);
        for (let i = chars.length - 1; i > 0; i--) {
            const j = randomInt(i + 1);
            [chars[i], chars[j]] = [chars[j], chars[i]];
        }
        const result = chars.join("");
        return {
            op: (prev ? "replace" : "create") as Operation,
            result: { id: "none", outputs: { ...args.inputs, result: secret(result), bcryptHash: secret("") } },
        };
    }

    // ---- deletion

    private async deleteEntry(key: string, entry: StateEntry): Promise<void> {
        const start = Date.now() - this.t0;
        const outputs = unwrapSecrets(entry.outputs);
        try {
            const api = new DockerApi(socketPathOf(undefined));
            switch (entry.type) {
                case "docker:index/container:Container":
                    await api.removeContainer(entry.id, outputs.destroyGraceSeconds ?? 10);
                    break;
                case "docker:index/network:Network":
                    await api.call("DELETE", `/networks/${entry.id}`, undefined, [404]);
                    break;
                case "command:local:Command":
                    await this.runDelete(entry);
                    break;
                // Images: RemoteImage with keepLocally and local-only Images stay, as the program asks; the
                // harness never deletes images (CI's stand-ins are shared by every run).
                // RandomPassword: state only.
                default:
                    break;
            }
        } catch (err) {
            this.operations.push({
                key,
                type: entry.type,
                name: entry.name,
                op: "delete",
                start,
                end: Date.now() - this.t0,
                error: (err as Error).message,
            });
            throw err;
        }
        delete this.state.resources[key];
        this.saveState();
        this.operations.push({
            key,
            type: entry.type,
            name: entry.name,
            op: "delete",
            start,
            end: Date.now() - this.t0,
        });
    }
}

// ---- helpers

/** A resource that exists but did not finish creating (a container that never turned healthy). */
class PartialCreateError extends Error {
    constructor(
        readonly id: string,
        message: string,
    ) {
        super(message);
    }
}

function rejectUnknown(what: string, inputs: Record<string, unknown>, known: string[]): void {
    const unknown = Object.keys(inputs).filter((k) => inputs[k] !== undefined && !known.includes(k));
    if (unknown.length > 0) throw new Error(`${what} inputs not implemented by the e2e harness: ${unknown.join(", ")}`);
}

function endpoint(n: { aliases?: string[]; ipv4Address?: string }) {
    return { Aliases: n.aliases ?? [], IPAMConfig: n.ipv4Address ? { IPv4Address: n.ipv4Address } : undefined };
}

/** "10s", "1m30s", "500ms" -> nanoseconds, as the provider parses healthcheck durations. */
export function durationNs(d: string | undefined): number {
    if (d === undefined || d === "") return 0;
    const units: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
    let total = 0;
    const re = /(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g;
    let consumed = 0;
    for (let m = re.exec(d); m; m = re.exec(d)) {
        total += Number(m[1]) * units[m[2]];
        consumed += m[0].length;
    }
    if (consumed !== d.length) throw new Error(`invalid duration ${JSON.stringify(d)}`);
    return Math.round(total);
}

function tail(s: string, lines: number): string {
    return s.trimEnd().split("\n").slice(-lines).join("\n");
}

let chosenCli: Promise<{ path: string; buildkit: boolean }> | undefined;

/**
 * The provider builds with BuildKit through the API. From a CLI, BuildKit needs either the buildx plugin
 * (CLI 23+) or a CLI older than 23 (the engine's built-in BuildKit). Debian's docker.io CLI is such an
 * older one, while a newer `docker` may come first on PATH without buildx. Without either: the classic
 * builder, and a note on stderr (builds are then slower: no parallel stages).
 */
function buildCli(wantBuildkit: boolean): Promise<{ path: string; buildkit: boolean }> {
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

interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

function run(
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

/** A command's script as @pulumi/command runs it: interpreter (default `/bin/sh -c`), environment, dir. */
function runScript(
    script: string,
    inputs: any,
    projectDir: string,
    previous?: Record<string, any>,
): Promise<RunResult> {
    const interpreter: string[] = inputs.interpreter ?? ["/bin/sh", "-c"];
    const env: NodeJS.ProcessEnv = { ...process.env, ...(inputs.environment ?? {}) };
    if (inputs.addPreviousOutputInEnv !== false && previous) {
        const prev = unwrapSecrets(previous);
        if (prev.stdout !== undefined) env.PULUMI_COMMAND_STDOUT = prev.stdout;
        if (prev.stderr !== undefined) env.PULUMI_COMMAND_STDERR = prev.stderr;
    }
    return run(interpreter[0], [...interpreter.slice(1), script], {
        env,
        cwd: inputs.dir ? path.resolve(projectDir, inputs.dir) : projectDir,
        stdin: inputs.stdin,
    });
}
