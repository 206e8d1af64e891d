// The odin stack exactly as committed (no domain set): the app is reached on the server's LAN address.
import { beforeAll, expect, test } from "vitest";
import type { ProgramRun } from "../../support/mockProgram";

let run: ProgramRun;

beforeAll(async () => {
    const { runProgram } = await import("../../support/mockProgram");
    run = await runProgram("odin");
});

test("without a domain the app has no caddy labels and its URL is the server's published port", () => {
    const app = run.byName("app-container").inputs;
    expect(app.labels.filter((l: { label: string }) => l.label.startsWith("caddy"))).toEqual([]);
    expect(app.ports).toEqual([{ internal: 8000, external: 8000, ip: "0.0.0.0" }]);
    expect(run.outputs.appUrl.value).toBe("http://odin:8000");
});

test("the caddy network is looked up through the stack's provider and joined, never created", () => {
    expect(run.byName("app-container").inputs.networksAdvanced).toEqual([
        { name: "marvel-rivals-network", aliases: ["app"] },
        { name: "caddy" },
    ]);
    expect(run.ofType("docker:index/network:Network")).toHaveLength(1);
});
