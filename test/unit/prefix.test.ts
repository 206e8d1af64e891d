// `containerPrefix` (issue 13): a second stack on the same engine gets container names of its own, and
// everything that names a container follows (the host step's orphan check, the backup container, the
// preview's history read, the app's output).
import { beforeAll, expect, test } from "vitest";
import type { ProgramRun } from "../../support/mockProgram";

let run: ProgramRun;

beforeAll(async () => {
    const { runProgram } = await import("../../support/mockProgram");
    run = await runProgram("dev", { containerPrefix: "mrs-second", networkName: "mrs-second-network" });
});

test("every container is named from the prefix", () => {
    expect(
        run
            .ofType("docker:index/container:Container")
            .map((c) => c.inputs.name)
            .sort(),
    ).toEqual(["mrs-second-app", "mrs-second-backup", "mrs-second-postgres", "mrs-second-redis"]);
    expect(run.outputs.appContainer.value).toBe("mrs-second-app");
    expect(run.outputs.backupContainer.value).toBe("mrs-second-backup");
});

test("the host step frees and checks the prefixed names, not the default ones", () => {
    expect(run.byName("data-mkdir").inputs.environment.STACK_CONTAINERS).toBe(
        "mrs-second-postgres mrs-second-redis mrs-second-app mrs-second-pgadmin mrs-second-backup",
    );
});

test("the steps that reach into Postgres use the prefixed container", () => {
    expect(run.byName("postgres-password").inputs.environment.PG_CONTAINER).toBe("mrs-second-postgres");
});
