// TEST HARNESS, not product code: a `pulumi.runtime.Mocks` that plays the Pulumi engine for the real
// program (index.ts with a real stack file), so that `pulumi up`, `preview` and `destroy` can be run where
// the Pulumi CLI cannot be installed. The providers are models (models.ts) driven against a real Docker
// engine; this file is the engine's part, following pulumi/pulumi v3.259.0:
// - pkg/resource/deploy/step_generator.go: a resource in the state is diffed by its provider (no Read on a
//   plain `up`: what the state says is what the provider compares against, even if the container is gone);
//   applyReplaceOnChanges turns a change under a `replaceOnChanges` path into a replacement, and a resource
//   with init errors gets an Update step (a replacement only when `replaceOnChanges` covers "#initerror",
//   which "*" does); ignoreChanges keeps the old input; deleteBeforeReplace (the program's option when it
//   set one, `false` included, else the provider's default: generateStepsFromDiff, `if
//   goal.DeleteBeforeReplace != nil`) orders a replacement, otherwise the new resource is created first and
//   the old one is condemned: kept, marked for deletion, and deleted with the resources the program no
//   longer declares after a successful run, newest first (GenerateDeletes, run by the deployment executor's
//   performPostSteps only when no step failed: pkg/resource/deploy/deployment_executor.go, Execute).
// - pkg/resource/deploy/step.go, CreateStep.Apply: a replacement whose create fails with a partial state
//   (an ID and an init error) still marks the old resource for deletion (`s.old.Delete = true`); one that
//   fails without an ID leaves it current. A resource marked for deletion is no longer compared with the
//   program's (deployment.go, olds skip `Delete`) and is deleted at the end of the next successful run.
// - pkg/resource/deploy/step.go: a preview runs no Create, Update or Delete: it reports what they would do,
//   with the outputs the provider's preview returns (computed values unknown).
// - `pulumi destroy`: every resource, newest first; `protect` refuses, `retainOnDelete` drops it from the
//   state without deleting it.
// Resource options come from the registrations the program sends (support/registrations.ts). Any
// resource type or input no model knows fails the run instead of being silently ignored.
import type * as pulumi from "@pulumi/pulumi";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Registration } from "../../../support/registrations";
import { DockerApi, engineEndpoint } from "./dockerApi";
import { MODELS, PartialCreateError, containsUnknown, runFunction, type Model, type ModelContext } from "./models";
import { containsSecret, isSecretWrapper, secret, unwrapSecrets } from "../../../support/secrets";

export { HARNESS_LABEL } from "./models";

/** The engine's step kinds (pulumi/pulumi v3.259.0, pkg/resource/deploy/step.go: OpDeleteReplaced is "delete-replaced"). */
export type Operation = "create" | "replace" | "update" | "same" | "delete" | "delete-replaced";

export interface OperationRecord {
    key: string;
    type: string;
    name: string;
    op: Operation;
    /** Inputs the provider reported as changed (update, replace). */
    changed?: string[];
    /** Milliseconds since the run started. */
    start: number;
    end: number;
    error?: string;
}

interface StateEntry {
    type: string;
    name: string;
    id: string;
    /** The inputs the provider last applied (secret wrappers kept: the file is the test's, mode 0600). */
    inputs: Record<string, any>;
    outputs: Record<string, any>;
    /** Set when the resource was created but did not finish (Pulumi's init errors). */
    initError?: string;
    /** The provider host of the resource (the stack's Docker provider's `host`). */
    host?: string;
    /** Options that matter after the program is gone (destroy). */
    protect?: boolean;
    retainOnDelete?: boolean;
    /** Order of creation, for deleting in reverse. */
    seq: number;
}

interface HarnessState {
    seq: number;
    resources: Record<string, StateEntry>;
    /** Replaced resources marked for deletion (the engine's `Delete: true`), with their keys. */
    condemned?: (StateEntry & { key: string })[];
}

export interface RealEngineMocksOptions {
    /** Where the harness keeps its state between runs (the test's temp dir). */
    stateFile: string;
    /** The program's working directory (relative paths resolve there, as under `pulumi up`). */
    projectDir: string;
    /** A preview: nothing is created, changed or deleted, and the state is not written. */
    preview?: boolean;
}

const log = (msg: string) => process.stderr.write(`[e2e-harness] ${msg}\n`);

export class RealEngineMocks implements pulumi.runtime.Mocks {
    readonly operations: OperationRecord[] = [];
    readonly errors: Error[] = [];
    /** Registrations by `type::name`, recorded by up.ts before each newResource call. */
    readonly registrations = new Map<string, Registration>();
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
        try {
            return await this.invoke(args);
        } catch (err) {
            // The CLI reports a failed invoke as itself; the program only sees it inside whatever used it.
            this.errors.push(err as Error);
            throw err;
        }
    }

    private async invoke(args: pulumi.runtime.MockCallArgs): Promise<Record<string, any>> {
        // Invokes run in a preview too.
        const inputs = unwrapSecrets(args.inputs);
        switch (args.token) {
            case "docker:index/getNetwork:getNetwork": {
                // kreuzwerker v4.2.0, internal/provider/data_source_docker_network.go.
                const net = await (await this.api(args.provider)).inspect("networks", inputs.name);
                if (!net) throw new Error(`Could not find docker network: ${inputs.name}`);
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
            case "command:local:run":
                return runFunction(inputs, this.opts.projectDir);
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

    /**
     * After a successful run: replaced resources marked for deletion, and resources in the state that the
     * program no longer declares, are deleted, newest first.
     */
    async deleteUndeclared(): Promise<void> {
        const stale = Object.entries(this.state.resources).filter(([key]) => !this.seenKeys.has(key));
        await this.deleteAll(stale);
    }

    /** What `pulumi destroy` does: every resource in the state, newest first. */
    async destroy(): Promise<void> {
        await this.deleteAll(Object.entries(this.state.resources));
    }

    /** Deletes `entries` and every condemned resource, newest first. */
    private async deleteAll(entries: [string, StateEntry][]): Promise<void> {
        const all: { key: string; entry: StateEntry; condemned: boolean }[] = [
            ...entries.map(([key, entry]) => ({ key, entry, condemned: false })),
            ...(this.state.condemned ?? []).map((entry) => ({ key: entry.key, entry, condemned: true })),
        ].sort((a, b) => b.entry.seq - a.entry.seq);
        for (const { key, entry, condemned } of all) await this.deleteEntry(key, entry, condemned);
    }

    /** The engine's `s.old.Delete = true`: `old` stays in the state, marked, until a successful run ends. */
    private condemn(key: string, old: StateEntry): void {
        (this.state.condemned ??= []).push({ ...old, key });
        this.saveState();
    }

    saveState(): void {
        if (this.opts.preview) return;
        const tmp = `${this.opts.stateFile}.tmp`;
        writeFileSync(tmp, JSON.stringify(this.state, null, 2), { mode: 0o600 });
        renameSync(tmp, this.opts.stateFile);
    }

    // ---- the engine's steps

    private async context(host: string | undefined): Promise<ModelContext> {
        return { api: new DockerApi(engineEndpoint(host)), projectDir: this.opts.projectDir, log };
    }

    private async api(provider: string | undefined): Promise<DockerApi> {
        return (await this.context(this.hostOf(provider))).api;
    }

    private hostOf(provider: string | undefined): string | undefined {
        const id = provider?.split("::").pop();
        return id !== undefined && this.providerHosts.has(id) ? this.providerHosts.get(id) : undefined;
    }

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
            engineEndpoint(inputs.host); // fails now for a host the harness cannot drive
            return { id, state: args.inputs };
        }
        if (args.type.startsWith("pulumi:providers:")) return { id: `${args.name}_id`, state: args.inputs };

        const model: Model | undefined = MODELS[args.type];
        if (!model) throw new Error(`the e2e harness does not implement the resource type ${args.type} (${args.name})`);
        const reg = this.registrations.get(key);
        if (!reg) throw new Error(`no registration recorded for ${key}`);
        const host = this.hostOf(args.provider);
        const ctx = await this.context(host);
        const prev = this.state.resources[key];
        const start = Date.now() - this.t0;
        const record = (op: Operation, extra: Partial<OperationRecord> = {}) =>
            this.operations.push({
                key,
                type: args.type,
                name: args.name,
                op,
                start,
                end: Date.now() - this.t0,
                ...extra,
            });

        // Plain inputs for the provider; which top-level inputs were secret, to keep them secret in the state.
        let news: Record<string, any> = unwrapSecrets(args.inputs);
        const secretInputs = Object.keys(args.inputs).filter((k) => containsSecret(args.inputs[k]));
        const unknown = Object.keys(news).filter((k) => containsUnknown(news[k]));
        if (unknown.length > 0 && !this.opts.preview)
            throw new Error(`${key}: inputs unknown outside a preview: ${unknown.join(", ")}`);
        for (const k of Object.keys(news))
            if (news[k] !== undefined && !model.known.includes(k)) {
                throw new Error(`${args.type} ${args.name}: input \`${k}\` is not emulated by the e2e harness`);
            }
        // ignoreChanges: the old input stands in for the new one (step_generator.go, processIgnoreChanges).
        for (const path of reg.ignoreChanges) {
            if (path.includes(".") || path.includes("["))
                throw new Error(`ignoreChanges path ${path}: only top-level keys are emulated`);
            if (prev) news[path] = prev.inputs[path];
        }

        let op: Operation = "create";
        let changed: string[] | undefined;
        let providerReplaces = false;
        try {
            news = model.check(news, ctx);
            if (prev) {
                const d = model.diff(
                    { id: prev.id, inputs: unwrapSecrets(prev.inputs), outputs: unwrapSecrets(prev.outputs) },
                    news,
                );
                const replaceByOption = d.changed.filter((k) => reg.replaceOnChanges.some((p) => covers(p, k)));
                const replace = [...new Set([...d.replace, ...replaceByOption])];
                const initReplace =
                    prev.initError !== undefined && reg.replaceOnChanges.some((p) => covers(p, "#initerror"));
                changed = d.changed;
                providerReplaces = d.replace.length > 0;
                op =
                    replace.length > 0 || initReplace
                        ? "replace"
                        : d.changed.length > 0 || prev.initError
                          ? "update"
                          : "same";
            }

            if (op === "same") {
                record("same");
                return { id: prev.id, state: prev.outputs };
            }
            const old = prev && {
                id: prev.id,
                inputs: unwrapSecrets(prev.inputs),
                outputs: unwrapSecrets(prev.outputs),
            };
            if (this.opts.preview) {
                record(op, { changed });
                const outputs = model.previewOutputs(news, old, op === "replace");
                // An empty ID is an unknown one in a preview (the SDK resolves it as unknown).
                return { id: op === "update" ? prev.id : undefined, state: this.rewrap(outputs, secretInputs) };
            }

            let id: string;
            let outputs: Record<string, any>;
            if (op === "update") {
                id = prev.id;
                outputs = await model.update(old!, news, ctx);
            } else if (
                op === "replace" &&
                (reg.deleteBeforeReplace ?? (model.deleteBeforeReplace && providerReplaces))
            ) {
                await model.delete(old!, ctx);
                delete this.state.resources[key];
                this.saveState();
                ({ id, outputs } = await model.create(news, ctx));
            } else {
                try {
                    ({ id, outputs } = await model.create(news, ctx));
                } catch (err) {
                    if (op === "replace" && err instanceof PartialCreateError) this.condemn(key, prev);
                    throw err;
                }
                if (op === "replace") this.condemn(key, prev);
            }
            this.store(
                key,
                args,
                reg,
                host,
                { id, inputs: news, outputs, secretInputs },
                op === "update" ? prev.seq : undefined,
            );
            record(op, { changed });
            return { id, state: this.rewrap(outputs, secretInputs) };
        } catch (err) {
            const message = (err as Error).message;
            if (err instanceof PartialCreateError) {
                // As the engine keeps a partially created resource: in the state, with an init error.
                this.store(
                    key,
                    args,
                    reg,
                    host,
                    { id: err.id, inputs: news, outputs: err.outputs, secretInputs },
                    undefined,
                    message,
                );
            }
            record(op, { changed, error: message });
            throw new Error(`${args.type} ${args.name}: ${message}`);
        }
    }

    /** Outputs back in Pulumi's wire form: inputs that were secret stay secret (as the engine keeps them). */
    private rewrap(outputs: Record<string, any>, secretInputs: string[]): Record<string, any> {
        const out: Record<string, any> = { ...outputs };
        for (const k of secretInputs) if (out[k] !== undefined && !isSecretWrapper(out[k])) out[k] = secret(out[k]);
        return out;
    }

    private store(
        key: string,
        args: pulumi.runtime.MockResourceArgs,
        reg: Registration,
        host: string | undefined,
        r: { id: string; inputs: Record<string, any>; outputs: Record<string, any>; secretInputs: string[] },
        seq?: number,
        initError?: string,
    ): void {
        this.state.resources[key] = {
            type: args.type,
            name: args.name,
            id: r.id,
            inputs: this.rewrap(r.inputs, r.secretInputs),
            outputs: this.rewrap(r.outputs, r.secretInputs),
            initError,
            host,
            protect: reg.protect || undefined,
            retainOnDelete: reg.retainOnDelete || undefined,
            seq: seq ?? ++this.state.seq,
        };
        this.saveState();
    }

    private async deleteEntry(key: string, entry: StateEntry, condemned = false): Promise<void> {
        const start = Date.now() - this.t0;
        const record = (error?: string) => {
            this.operations.push({
                key,
                type: entry.type,
                name: entry.name,
                op: condemned ? "delete-replaced" : "delete",
                start,
                end: Date.now() - this.t0,
                error,
            });
        };
        if (this.opts.preview) return record();
        try {
            if (entry.protect)
                throw new Error(`resource ${key} is protected: unprotect it (\`pulumi state unprotect\`) to delete it`);
            if (!entry.retainOnDelete)
                await MODELS[entry.type].delete(
                    { id: entry.id, inputs: unwrapSecrets(entry.inputs), outputs: unwrapSecrets(entry.outputs) },
                    await this.context(entry.host),
                );
        } catch (err) {
            record((err as Error).message);
            throw err;
        }
        if (condemned) this.state.condemned = (this.state.condemned ?? []).filter((c) => c.id !== entry.id);
        else delete this.state.resources[key];
        this.saveState();
        record();
    }
}

/**
 * pulumi/pulumi v3.259.0 sdk/go/common/resource/properties_path.go, PropertyPath.Contains, for the top-level
 * keys the models report: a path covers a key when its first segment is the key (or "*") and the rest
 * only wildcards (`triggers[*]`, which @pulumi/command adds, covers any change of `triggers`); "*" also
 * covers "#initerror". A path into specific nested elements is not emulated and fails the run.
 */
function covers(path: string, key: string): boolean {
    const m = /^([^.[]+)((?:\[\*\]|\.\*)*)$/.exec(path);
    if (!m) throw new Error(`replaceOnChanges path ${path}: only a key followed by wildcards is emulated`);
    return m[1] === "*" || m[1] === key;
}
