// The second e2e driver (issue 10, item 4): the real Pulumi CLI through the Automation API, with a local file
// backend and a passphrase, for machines where `pulumi` is installed (the hosted runner of ci.yml). Chosen by
// driver.ts; run.ts hands it the same StackRun the harness gets and it answers with the same HarnessResult,
// so the scenarios do not know which one ran them. Here the real engine and providers check our work: this
// file only translates, it emulates nothing.
//
// It cannot run on our machines (no CLI); its translation of engine events and outputs is unit-tested
// (test/unit/e2e-driver.test.ts) on events shaped like the CLI's: pulumi/pulumi v3.260.0,
// pkg/backend/display/events.go (ConvertEngineEvent), with secrets masked as in display/json.go.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { EngineEvent, OpType, OutputMap, Stack } from "@pulumi/pulumi/automation";
import type { Operation, OperationRecord } from "./realEngineMocks";
import type { HarnessResult, HarnessSpec, StackRun } from "./run";

/** The CLI's marker of an unknown value (sdk/go/common/resource/plugin/rpc.go, UnknownStringValue). */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/** The signature key of a secret value in engine events (sdk/go/common/resource/sig, Key/Secret). */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

export interface CliRunOptions {
    /** The project the CLI runs in: a private copy, since the CLI writes Pulumi.<stack>.yaml. */
    projectDir: string;
    /** `pulumi preview --expect-no-changes`. */
    expectNoChanges?: boolean;
}

/** The harness's name for an engine step (the harness records one replace where the engine has three). */
export function operationOf(op: OpType): Operation | undefined {
    switch (op) {
        case "same":
        case "create":
        case "update":
        case "delete":
            return op;
        case "replace":
        case "create-replacement":
            return "replace";
        default:
            // delete-replaced, read, refresh, import, discard...: no record of their own in the harness.
            return undefined;
    }
}

/**
 * The custom resources' operations of a run, as the harness records them: one per resource (the last step
 * wins), providers, components and the stack left out, timed from `t0` by the events' arrival.
 */
export function operationsOf(events: { event: EngineEvent; at: number }[], t0: number): OperationRecord[] {
    const records = new Map<string, OperationRecord>();
    for (const { event, at } of events) {
        const step = event.resourcePreEvent ?? event.resOutputsEvent ?? event.resOpFailedEvent;
        if (!step || step.metadata.type.startsWith("pulumi:providers:")) continue;
        const md = step.metadata;
        if ((md.new ?? md.old)?.custom !== true) continue;
        const op = operationOf(md.op);
        if (op === undefined) continue;
        const name = md.urn.split("::").pop() ?? md.urn;
        const key = `${md.type}::${name}`;
        const record = records.get(key) ?? { key, type: md.type, name, op, start: at - t0, end: at - t0 };
        record.op = op;
        record.end = at - t0;
        if (md.diffs && md.diffs.length > 0) record.changed = md.diffs;
        if (event.resOpFailedEvent) record.error = `failed (status ${event.resOpFailedEvent.status})`;
        records.set(key, record);
    }
    return [...records.values()];
}

/** A value from an engine event with the harness's conventions: unknowns as "<unknown>", secrets opened. */
function plain(value: unknown): { value: unknown; secret: boolean } {
    if (value === UNKNOWN) return { value: "<unknown>", secret: false };
    if (Array.isArray(value)) {
        const items = value.map(plain);
        return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
    }
    if (value !== null && typeof value === "object") {
        const obj = value as Record<string, unknown>;
        // Events never carry a secret's value (display/json.go masks it): the CLI shows "[secret]", so do we.
        if (obj[SECRET_SIG] !== undefined) return { value: "[secret]", secret: true };
        const entries = Object.entries(obj).map(([k, v]) => [k, plain(v)] as const);
        return {
            value: Object.fromEntries(entries.map(([k, v]) => [k, v.value])),
            secret: entries.some(([, v]) => v.secret),
        };
    }
    return { value, secret: false };
}

/** A preview's stack outputs, from the last event of the stack resource (the CLI prints them from it). */
export function previewOutputsOf(events: { event: EngineEvent }[]): Pick<HarnessResult, "outputs" | "secretOutputs"> {
    let outputs: Record<string, unknown> = {};
    for (const { event } of events) {
        const md = (event.resOutputsEvent ?? event.resourcePreEvent)?.metadata;
        if (md?.type === "pulumi:pulumi:Stack" && md.new?.outputs) outputs = md.new.outputs;
    }
    const result: Pick<HarnessResult, "outputs" | "secretOutputs"> = { outputs: {}, secretOutputs: [] };
    for (const [name, raw] of Object.entries(outputs)) {
        const { value, secret } = plain(raw);
        result.outputs[name] = value;
        if (secret) result.secretOutputs.push(name);
    }
    return result;
}

/** An `up`'s stack outputs (the CLI's `stack output --show-secrets --json`, with its secret flags). */
export function upOutputsOf(map: OutputMap): Pick<HarnessResult, "outputs" | "secretOutputs"> {
    const result: Pick<HarnessResult, "outputs" | "secretOutputs"> = { outputs: {}, secretOutputs: [] };
    for (const [name, { value, secret }] of Object.entries(map)) {
        result.outputs[name] = value;
        if (secret) result.secretOutputs.push(name);
    }
    return result;
}

/** The error lines of a run: the engine's error diagnostics, else the CLI's own message. */
export function errorsOf(events: { event: EngineEvent }[], fallback: string): string {
    const lines = events
        .map(({ event }) => event.diagnosticEvent)
        .filter((d) => d !== undefined && d.severity === "error")
        .map((d) => d!.message.trim());
    return lines.length > 0 ? [...new Set(lines)].join("\n") : fallback;
}

/**
 * `pulumi config set --secret KEY` with the value on stdin, never on argv (the Automation API's setConfig
 * passes values as arguments). The CLI reads stdin when it is not a terminal: pulumi/pulumi v3.260.0,
 * pkg/cmd/pulumi/config/config.go, configSetCmd.Run (`case !term.IsTerminal(...)`: io.ReadAll(stdin)).
 */
function setSecret(projectDir: string, stack: string, key: string, value: string, env: NodeJS.ProcessEnv) {
    return new Promise<void>((resolve, reject) => {
        const child = spawn("pulumi", ["config", "set", "--secret", "--non-interactive", "--stack", stack, key], {
            cwd: projectDir,
            env,
            stdio: ["pipe", "ignore", "pipe"],
        });
        let stderr = "";
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
        child.on("error", reject);
        child.on("close", (code) =>
            code === 0 ? resolve() : reject(new Error(`pulumi config set --secret ${key} failed: ${stderr.trim()}`)),
        );
        child.stdin.end(value);
    });
}

/** One `up`, `preview` or `destroy` of `run` by the real CLI. */
export async function runWithCli(
    mode: HarnessSpec["mode"],
    run: StackRun,
    opts: CliRunOptions,
): Promise<Omit<HarnessResult, "wallMs">> {
    const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
    const backend = path.join(run.workDir, "cli-backend");
    mkdirSync(backend, { recursive: true });
    // A passphrase per test stack, in a private file: the CLI reads it from PULUMI_CONFIG_PASSPHRASE_FILE.
    const passphraseFile = path.join(run.workDir, "cli-passphrase");
    if (!existsSync(passphraseFile)) writeFileSync(passphraseFile, randomBytes(24).toString("hex"), { mode: 0o600 });
    const envVars: Record<string, string> = {
        PULUMI_BACKEND_URL: `file://${backend}`,
        PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        ...run.env,
    };
    const stack: Stack = await LocalWorkspace.createOrSelectStack(
        { stackName: run.stack, workDir: opts.projectDir },
        { envVars, secretsProvider: "passphrase" },
    );

    // The test's overrides, as `pulumi config set` / `rm` on the stack (the CLI merges and checks them).
    for (const [key, value] of Object.entries(run.overrides ?? {})) {
        if (value === null) await stack.removeConfig(key);
        else if (run.secrets?.includes(key))
            await setSecret(opts.projectDir, run.stack, key, value, { ...process.env, ...envVars });
        else await stack.setConfig(key, { value });
    }

    const events: { event: EngineEvent; at: number }[] = [];
    const onEvent = (event: EngineEvent) => events.push({ event, at: Date.now() });
    const t0 = Date.now();
    let outputs: Pick<HarnessResult, "outputs" | "secretOutputs"> = { outputs: {}, secretOutputs: [] };
    let error: string | undefined;
    try {
        if (mode === "up") outputs = upOutputsOf((await stack.up({ onEvent, color: "never" })).outputs);
        else if (mode === "preview") {
            await stack.preview({ onEvent, color: "never", expectNoChanges: opts.expectNoChanges });
            outputs = previewOutputsOf(events);
        } else await stack.destroy({ onEvent, color: "never" });
    } catch (err) {
        error = errorsOf(events, (err as Error).message);
        if (mode === "preview") outputs = previewOutputsOf(events);
    }
    return {
        ok: error === undefined,
        error,
        ...outputs,
        operations: operationsOf(events, t0),
        durationMs: Date.now() - t0,
    };
}
