// A rollback as `npm run rollback` runs it: the odin stack with `appImage` pinned to a kept release.
import { beforeAll, expect, test } from "vitest";
import type { ProgramRun } from "../../support/mockProgram";

let run: ProgramRun;
const KEPT = `sha256:${"ab".repeat(32)}`;

beforeAll(async () => {
    const { runProgram } = await import("../../support/mockProgram");
    run = await runProgram("odin", { appImage: KEPT });
});

test("the app runs the pinned release, started beside the old version and gated on readiness", () => {
    const app = run.byName("app-container");
    expect(app.inputs.image).toBe(KEPT);
    expect(app.deleteBeforeReplace).toBe(false);
    expect(run.byName("app-ready").dependencies).toContain(app.urn);
});

test("the migration step keeps the built image: going back applies and reverts nothing", () => {
    const built = run.byName("app-image");
    expect(run.byName("migrations-up").inputs.environment.MIGRATE_IMAGE).not.toBe(KEPT);
    expect(run.byName("migrations-up").dependencies).toContain(built.urn);
});

test("a rollback records no release, so it does not change what the next rollback returns to", () => {
    expect(run.resources.some((r) => r.name === "app-release")).toBe(false);
    expect(run.outputs.appRelease.value).toBe(`pinned to ${KEPT}`);
});
