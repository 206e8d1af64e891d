// TEST HARNESS (issue 5): one `pulumi up` (or `pulumi destroy`) of a real program against the real Docker
// engine, in its own process: Pulumi's mock runtime is global per process, so every run gets a fresh one.
// Input: the JSON file named by MRS_HARNESS_SPEC (see run.ts). Output: a JSON result file, exit 0 iff ok.
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { HarnessSpec, HarnessResult } from "./run";
import { RealEngineMocks } from "./realEngineMocks";
import { closeForwards } from "./dockerApi";
import { unwrapSecrets } from "../../../support/secrets";
import { interceptRegistrations } from "../../../support/registrations";

async function main(): Promise<number> {
    const spec = JSON.parse(readFileSync(process.env.MRS_HARNESS_SPEC ?? "", "utf8")) as HarnessSpec;
    // Config the way the Pulumi CLI hands it to a program: environment, read by @pulumi/pulumi.
    process.env.PULUMI_CONFIG = JSON.stringify(spec.config);
    process.env.PULUMI_CONFIG_SECRET_KEYS = JSON.stringify(spec.secretKeys);
    process.chdir(spec.projectDir);

    const started = Date.now();
    const preview = spec.mode === "preview";
    const mocks = new RealEngineMocks({ stateFile: spec.stateFile, projectDir: spec.projectDir, preview });
    const problems: string[] = [];
    process.on("unhandledRejection", (err) => problems.push(String((err as Error)?.message ?? err)));
    const outputs: Record<string, unknown> = {};
    const secretOutputs: string[] = [];

    if (spec.mode === "destroy") {
        try {
            await mocks.destroy();
        } catch (err) {
            problems.push((err as Error).message);
        }
    } else {
        const pulumi = await import("@pulumi/pulumi");
        await pulumi.runtime.setMocks(mocks, spec.project, spec.stack, preview);
        // The options of every registration (deleteBeforeReplace, replaceOnChanges, ...), as the engine gets them.
        interceptRegistrations(spec.project, spec.stack, (r) => mocks.registrations.set(`${r.type}::${r.name}`, r));
        try {
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const program = require(path.join(spec.projectDir, spec.main ?? "index.ts")) as Record<string, unknown>;
            for (const [name, value] of Object.entries(program)) {
                if (pulumi.Output.isInstance(value)) {
                    try {
                        const output = value as any;
                        // A preview's unknown outputs stay unknown (never resolved to a value).
                        const known = preview ? await output.isKnown : true;
                        outputs[name] = known ? unwrapSecrets(await output.promise()) : "<unknown>";
                        if (await output.isSecret) secretOutputs.push(name);
                    } catch (err) {
                        problems.push(`output ${name}: ${(err as Error).message}`);
                    }
                } else if (typeof value !== "function") {
                    outputs[name] = value;
                }
            }
        } catch (err) {
            problems.push((err as Error).message);
        }
        await mocks.settle();
        for (const err of mocks.errors) if (!problems.includes(err.message)) problems.unshift(err.message);
        if (problems.length === 0) {
            try {
                await mocks.deleteUndeclared();
            } catch (err) {
                problems.push((err as Error).message);
            }
        }
    }
    mocks.saveState();
    closeForwards();
    // wallMs is measured by the parent process around this one (run.ts).
    const result: Omit<HarnessResult, "wallMs"> = {
        ok: problems.length === 0,
        error: problems.length > 0 ? [...new Set(problems)].join("\n") : undefined,
        outputs,
        secretOutputs,
        operations: mocks.operations,
        durationMs: Date.now() - started,
    };
    writeFileSync(spec.resultFile, JSON.stringify(result, null, 2), { mode: 0o600 });
    return result.ok ? 0 : 1;
}

main().then(
    (code) => process.exit(code),
    (err) => {
        process.stderr.write(`[e2e-harness] ${(err as Error).stack ?? err}\n`);
        process.exit(2);
    },
);
