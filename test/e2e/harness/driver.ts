// Which driver runs the e2e scenarios (issue 10, item 4): the real Pulumi CLI through the Automation API
// where `pulumi` is installed (the hosted runner), the harness (RealEngineMocks) everywhere else. The
// scenarios are the same code for both; only run.ts asks this module.
import { accessSync, constants } from "node:fs";
import * as path from "node:path";

export type DriverName = "harness" | "cli";

/** The variable that forces a driver; unset means "the CLI if it is installed". */
export const DRIVER_VARIABLE = "MRS_E2E_DRIVER";

/** The path of an executable `pulumi` on `PATH`, or undefined. */
export function pulumiOnPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
    for (const dir of (env.PATH ?? "").split(path.delimiter)) {
        if (dir === "") continue;
        const candidate = path.join(dir, "pulumi");
        try {
            accessSync(candidate, constants.X_OK);
            return candidate;
        } catch {
            // not here
        }
    }
    return undefined;
}

/**
 * The driver for a run: `MRS_E2E_DRIVER=harness|cli` forces one, otherwise the CLI when `pulumi` is on
 * PATH. A run that asks for the harness (`pinned`, the harness's own tests) always gets it. Forcing the
 * CLI where it is missing, or an unknown value, is an error that says what to do: never a silent fallback.
 */
export function chooseDriver(
    env: NodeJS.ProcessEnv,
    pinned?: "harness",
    findPulumi: (env: NodeJS.ProcessEnv) => string | undefined = pulumiOnPath,
): DriverName {
    if (pinned === "harness") return "harness";
    const forced = env[DRIVER_VARIABLE]?.trim();
    if (forced !== undefined && forced !== "" && forced !== "harness" && forced !== "cli")
        throw new Error(`${DRIVER_VARIABLE}=${forced} is not a driver: use "harness", "cli", or leave it unset`);
    if (forced === "harness") return "harness";
    const found = findPulumi(env) !== undefined;
    if (forced === "cli" && !found)
        throw new Error(
            `${DRIVER_VARIABLE}=cli but no \`pulumi\` is on PATH: install the Pulumi CLI (https://www.pulumi.com/docs/install/) or unset ${DRIVER_VARIABLE}`,
        );
    return found ? "cli" : "harness";
}
