// `npm run bench:e2e` (issue 5): the dev stack on the real Docker engine, through the e2e harness, on a
// private copy of the project with a fresh dataDir and free ports on 127.0.0.1. Prints one line per figure:
//
//   cold_up_s                   a fresh stack (empty state and dataDir) up to every container healthy; the
//                               app image build included (with whatever build cache the engine holds)
//   cold_up_wall_s              the same, plus starting the process and loading the program
//   warm_rerun_s                the program run again with nothing changed
//   hot_reload_ms               an edit under app/src to the running dev container serving it
//   teardown_s                  destroy (containers and network; data stays)
//   postgres_ready_s, app_image_built_s, migrations_s, app_ready_s
//                               the pieces of the critical path, measured in the cold run
//   critical_path_s             max(Postgres ready, app image built) + migrations + app ready
//   cold_up_over_critical_path  how close the cold up comes to its critical path (goal <= 1.15)
//
// Needs what the e2e tests need: a Docker engine and the images (.ci/provision.sh). Not a test: it fails
// only when a run fails.
import * as path from "node:path";
import { freePort } from "../test/support/ports";
import { copyProject, opsByName, pulumiDestroy, pulumiUp, type HarnessResult } from "../test/e2e/harness/run";
import { clearLeftovers, removeTempDir, tempDir } from "../test/e2e/support";
import { hotReloadLatency } from "../test/e2e/clients";

const CONTAINERS = ["marvel-rivals-postgres", "marvel-rivals-redis", "marvel-rivals-app"];

function ensureOk(what: string, r: HarnessResult): void {
    if (!r.ok) throw new Error(`${what} failed:\n${r.error}`);
}

const s = (ms: number) => (ms / 1000).toFixed(2);

async function main(): Promise<void> {
    await clearLeftovers(CONTAINERS, ["marvel-rivals-network"]);
    const work = tempDir("bench");
    const project = copyProject(path.join(work, "project"));
    const run = {
        projectDir: project,
        stack: "dev",
        workDir: path.join(work, "harness"),
        overrides: {
            dataDir: path.join(work, "data"),
            postgresPort: String(await freePort()),
            redisPort: String(await freePort()),
            appPort: String(await freePort()),
        },
    };
    try {
        const cold = await pulumiUp(run);
        ensureOk("cold up", cold);
        const warm = await pulumiUp(run);
        ensureOk("warm re-run", warm);
        const changed = warm.operations.filter((o) => o.op !== "same");
        if (changed.length > 0)
            throw new Error(`the warm re-run changed ${changed.map((o) => `${o.name} (${o.op})`).join(", ")}`);
        const hotReload = await hotReloadLatency(project, `http://127.0.0.1:${run.overrides.appPort}`);
        if (hotReload < 0) throw new Error("the hot reload edit was not served within 10 s");
        const down = await pulumiDestroy(run);
        ensureOk("teardown", down);

        const ops = opsByName(cold);
        const need = (name: string) => {
            const op = ops[name];
            if (!op) throw new Error(`the cold run has no ${name} operation: did the program's resource names change?`);
            return op;
        };
        const pgReady = need("postgres-container").end;
        const imageBuilt = need("app-image").end;
        const migrations = need("migrations-up").end - need("migrations-up").start;
        const appReady = need("app-container").end - need("app-container").start;
        const critical = Math.max(pgReady, imageBuilt) + migrations + appReady;

        const lines: [string, string, string][] = [
            ["cold_up_s", s(cold.durationMs), "s"],
            ["cold_up_wall_s", s(cold.wallMs), "s"],
            ["warm_rerun_s", s(warm.durationMs), "s"],
            ["warm_rerun_wall_s", s(warm.wallMs), "s"],
            ["hot_reload_ms", String(hotReload), "ms"],
            ["teardown_s", s(down.durationMs), "s"],
            ["postgres_ready_s", s(pgReady), "s"],
            ["app_image_built_s", s(imageBuilt), "s"],
            ["migrations_s", s(migrations), "s"],
            ["app_ready_s", s(appReady), "s"],
            ["critical_path_s", s(critical), "s"],
            ["cold_up_over_critical_path", (cold.durationMs / critical).toFixed(3), "ratio"],
        ];
        for (const [name, value, unit] of lines) process.stdout.write(`${name}: ${value} ${unit}\n`);
    } finally {
        await pulumiDestroy(run).catch(() => undefined);
        removeTempDir(work);
    }
}

main().catch((err) => {
    process.stderr.write(`bench:e2e: ${(err as Error).message}\n`);
    process.exit(1);
});
