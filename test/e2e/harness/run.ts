// TEST HARNESS (issue 5): what the tests call. `pulumiUp`/`pulumiDestroy` run a real Pulumi program
// through RealEngineMocks (up.ts) in a child process, with the stack's config read the way the Pulumi CLI
// reads it: project defaults from Pulumi.yaml, the stack file Pulumi.<stack>.yaml, then the test's
// overrides (a temp dataDir, free ports, test secrets).
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { CliConfigError, loadStackConfig } from "../../../support/stackConfig";
import type { OperationRecord } from "./realEngineMocks";
import { DockerApi, socketPathOf } from "./dockerApi";
import { chooseDriver } from "./driver";

export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");

export interface HarnessSpec {
    mode: "up" | "preview" | "destroy";
    projectDir: string;
    project: string;
    stack: string;
    main?: string;
    stateFile: string;
    resultFile: string;
    config: Record<string, string>;
    secretKeys: string[];
}

export interface HarnessResult {
    ok: boolean;
    /** Every failure of the run, one per line (config errors, failed resources, failed outputs). */
    error?: string;
    /** Stack outputs, secrets unwrapped (test code only); "<unknown>" for an unknown one in a preview. */
    outputs: Record<string, any>;
    /** Names of the outputs that are secret. */
    secretOutputs: string[];
    operations: OperationRecord[];
    /** Time inside the run (program and resources), without process start-up. */
    durationMs: number;
    /** Wall time of the whole child process, as a user waiting for `pulumi up` sees it. */
    wallMs: number;
}

export interface StackRun {
    /** Directory with Pulumi.yaml, Pulumi.<stack>.yaml and the program. */
    projectDir: string;
    stack: string;
    /** Harness state and result files go here (one directory per stack under test). */
    workDir: string;
    /** `key` (project namespace implied) or `ns:key` -> value; `null` removes a key set by the stack file. */
    overrides?: Record<string, string | null>;
    /** Keys of `overrides` set as secrets (`pulumi config set --secret`). */
    secrets?: string[];
    /** Environment of the run over the machine's (a test ssh client's PATH and HOME). */
    env?: Record<string, string>;
    /**
     * "harness" for the harness's own tests; otherwise driver.ts chooses (the real CLI where it is installed).
     */
    driver?: "harness";
}

export interface PreviewOptions {
    /** `pulumi preview --expect-no-changes`: the run fails when any resource would change. */
    expectNoChanges?: boolean;
}

/**
 * The stack's config as the Pulumi CLI would hand it to the program (the shared loader, with the CLI's
 * refusals), with the test's overrides standing for `pulumi config set` (`--secret` for `secrets`).
 */
export function stackConfig(run: StackRun) {
    const overrides: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(run.overrides ?? {})) overrides[k] = v ?? undefined;
    return loadStackConfig(run.stack, overrides, { projectDir: run.projectDir, secretOverrides: run.secrets });
}

async function runStack(mode: HarnessSpec["mode"], run: StackRun, opts: PreviewOptions = {}): Promise<HarnessResult> {
    if (chooseDriver(process.env, run.driver) === "cli") {
        mkdirSync(run.workDir, { recursive: true });
        // The CLI writes Pulumi.<stack>.yaml: never in the working tree, always in a private copy.
        const projectDir =
            path.resolve(run.projectDir) === REPO_ROOT
                ? existsSync(path.join(run.workDir, "cli-project"))
                    ? path.join(run.workDir, "cli-project")
                    : copyProject(path.join(run.workDir, "cli-project"))
                : run.projectDir;
        const { runWithCli } = await import("./cliDriver");
        const started = Date.now();
        const result = await runWithCli(mode, run, { projectDir, expectNoChanges: opts.expectNoChanges });
        return { ...result, wallMs: Date.now() - started };
    }
    const result = await runHarness(mode, run);
    if (mode === "preview" && opts.expectNoChanges && result.ok) {
        // The CLI's refusal: pulumi/pulumi v3.260.0, pkg/backend/backenderr/backenderr.go, NoChangesExpectedError.
        const changes = result.operations.filter((o) => o.op !== "same");
        if (changes.length > 0)
            return {
                ...result,
                ok: false,
                error: `no changes were expected but changes were proposed: ${changes.map((o) => `${o.name}: ${o.op}`).join(", ")}`,
            };
    }
    return result;
}

function runHarness(mode: HarnessSpec["mode"], run: StackRun): Promise<HarnessResult> {
    mkdirSync(run.workDir, { recursive: true });
    let loaded: ReturnType<typeof stackConfig>;
    try {
        loaded = stackConfig(run);
    } catch (err) {
        // The CLI stops before the program runs: nothing is touched.
        if (!(err instanceof CliConfigError)) throw err;
        return Promise.resolve({
            ok: false,
            error: err.message,
            outputs: {},
            secretOutputs: [],
            operations: [],
            durationMs: 0,
            wallMs: 0,
        });
    }
    const { project, main, config, secretKeys } = loaded;
    const spec: HarnessSpec = {
        mode,
        projectDir: run.projectDir,
        project,
        stack: run.stack,
        main,
        stateFile: path.join(run.workDir, "harness-state.json"),
        resultFile: path.join(run.workDir, `result-${mode}-${Date.now()}.json`),
        config,
        secretKeys,
    };
    const specFile = path.join(run.workDir, `spec-${Date.now()}.json`);
    // The spec holds test secrets: a private file in the test's own directory, never argv or a log.
    writeFileSync(specFile, JSON.stringify(spec), { mode: 0o600 });
    const tsx = path.join(REPO_ROOT, "node_modules", ".bin", "tsx");
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn(tsx, [path.join(__dirname, "up.ts")], {
            cwd: run.projectDir,
            env: { ...process.env, ...run.env, MRS_HARNESS_SPEC: specFile },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stderr = "";
        let stdout = "";
        child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
        child.on("error", reject);
        child.on("close", (code) => {
            rmSync(specFile, { force: true });
            if (!existsSync(spec.resultFile)) {
                reject(new Error(`the harness crashed (exit ${code}):\n${stderr}\n${stdout}`.slice(-6000)));
                return;
            }
            const result = JSON.parse(readFileSync(spec.resultFile, "utf8")) as HarnessResult;
            result.wallMs = Date.now() - started;
            resolve(result);
        });
    });
}

export const pulumiUp = (run: StackRun) => runStack("up", run);
export const pulumiDestroy = (run: StackRun) => runStack("destroy", run);
export const pulumiPreview = (run: StackRun, opts?: PreviewOptions) => runStack("preview", run, opts);

/**
 * A private copy of the project (program, stack files, app, migrations) for tests that edit app/src or
 * migrations/: the working tree stays untouched. node_modules is linked, so the copy runs the same
 * @pulumi/pulumi as the harness (one mock runtime).
 */
export function copyProject(dest: string, from = REPO_ROOT): string {
    const skip = new Set(["node_modules", ".git", "data", ".pulumi-state", "dist", "test", "support", "bench", ".ci"]);
    rmSync(dest, { recursive: true, force: true });
    cpSync(from, dest, {
        recursive: true,
        filter: (src) => {
            const rel = path.relative(from, src);
            if (rel === "") return true;
            const parts = rel.split(path.sep);
            // Top-level skips, and node_modules/dist anywhere (app/node_modules, app/dist).
            if (parts.length === 1 && skip.has(parts[0])) return false;
            return !parts.includes("node_modules") && !(parts[0] === "app" && parts[1] === "dist");
        },
    });
    symlinkSync(path.join(from, "node_modules"), path.join(dest, "node_modules"));
    return dest;
}

/** Whether a Docker engine answers on the local socket. */
export async function engineAnswers(): Promise<boolean> {
    try {
        const res = await new DockerApi(socketPathOf(undefined)).raw("GET", "/_ping", undefined, 5000);
        return res.status === 200;
    } catch {
        return false;
    }
}

/**
 * Operations of a run by resource name (the last one wins), leaving out the deletion of a replaced resource
 * at the end of the run (`delete-replaced`): the name's operation is its replacement.
 */
export function opsByName(result: HarnessResult): Record<string, OperationRecord> {
    return Object.fromEntries(result.operations.filter((o) => o.op !== "delete-replaced").map((o) => [o.name, o]));
}
