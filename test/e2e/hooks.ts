// What every e2e test file does around its tests, with vitest's hooks: kept apart from support.ts, which the
// benchmarks (plain tsx, no vitest) import too.
import { afterAll, beforeAll } from "vitest";
import type { HarnessResult } from "./harness/run";
import { lockEngine } from "./support";

/**
 * One e2e file at a time on the engine (the stacks share container names; the odin file restarts the
 * engine): the file holds the lock from its first hook to its last. Call at the top of the file.
 */
export function takeTurnsOnEngine(engine: boolean): void {
    let unlock: (() => void) | undefined;
    beforeAll(async () => {
        if (engine) unlock = await lockEngine();
    }, 30 * 60_000);
    afterAll(() => unlock?.());
}

/** Fails the test with every error of a run. */
export function expectOk(result: HarnessResult): void {
    if (!result.ok) throw new Error(`the run failed:\n${result.error}`);
}
