// The odin stack exactly as committed: the app is reached through the server's Caddy, on no host port.
import { beforeAll, expect, test } from "vitest";
import type { ProgramRun } from "../../support/mockProgram";

let run: ProgramRun;

beforeAll(async () => {
    const { runProgram } = await import("../../support/mockProgram");
    run = await runProgram("odin");
});

test("the app is reached through Caddy on the stack's domain, with no port on the LAN", () => {
    const app = run.byName("app-container").inputs;
    expect(app.ports ?? []).toEqual([]);
    expect(app.labels.filter((l: { label: string }) => l.label.startsWith("caddy"))).toEqual([
        { label: "caddy", value: "stats.odin.home.arpa" },
        { label: "caddy.reverse_proxy", value: "marvel-rivals-app:8000" },
        { label: "caddy.reverse_proxy.lb_try_duration", value: "10s" },
        { label: "caddy.reverse_proxy.lb_try_interval", value: "250ms" },
    ]);
    expect(run.outputs.appUrl.value).toBe("https://stats.odin.home.arpa");
});

test("the caddy network is looked up through the stack's provider and joined under the app's alias, never created", () => {
    expect(run.byName("app-container").inputs.networksAdvanced).toEqual([
        { name: "marvel-rivals-network", aliases: ["app", "marvel-rivals-app"] },
        { name: "caddy", aliases: ["marvel-rivals-app"] },
    ]);
    expect(run.ofType("docker:index/network:Network")).toHaveLength(1);
});

test("an app update starts the new version first: its own name, no delete-before-replace, a readiness gate, a release", () => {
    const app = run.byName("app-container");
    const suffix = run.byName("app-version");
    expect(app.inputs.name).toMatch(/^marvel-rivals-app-[0-9a-f]+$/);
    expect(app.deleteBeforeReplace).toBe(false);
    expect(app.replaceOnChanges).toEqual([]);
    expect(app.inputs.wait).toBe(false);
    const version = app.inputs.labels.find((l: { label: string }) => l.label === "marvel-rivals-stats.version");
    // A new version, a new name: the suffix is made anew whenever the version changes.
    expect(version.value).toMatch(/^[0-9a-f]{8}$/);
    expect(suffix.inputs.keepers).toEqual({ version: version.value });
    expect(app.dependencies).toContain(suffix.urn);
    const gate = run.byName("app-ready");
    expect(gate.dependencies).toContain(app.urn);
    expect(gate.inputs.environment).toMatchObject({ DOCKER_HOST: "ssh://root@odin", READY_TIMEOUT: "60" });
    const release = run.byName("app-release");
    expect(release.dependencies).toContain(gate.urn);
    expect(release.inputs.environment).toMatchObject({
        RELEASE_REPOSITORY: "marvel-rivals-stats-app",
        RELEASE_PREFIX: "odin-release",
        RELEASES_KEPT: "3",
    });
});

test("every input of the app container that the provider cannot update in place feeds its version", () => {
    // components/app.ts hashes these into the version (a new version, a new name); the provider updates
    // memory and the restart policy in place, and keeps wait, waitTimeout and destroyGraceSeconds in its
    // state only. An input added to the container without a place here would be replaced under the same
    // name, beside the old container that still holds it: a deploy Docker refuses.
    const hashed = ["image", "envs", "volumes", "networksAdvanced", "user", "labels", "ports", "healthcheck"];
    const defaults = ["restart", "logDriver", "logOpts", "networkMode"];
    // hardening() (components/common.ts): hashed into the version as a whole.
    const hardened = ["capabilities", "securityOpts", "readOnly", "tmpfs"];
    const inPlaceOrStateOnly = ["memory", "memorySwap", "wait", "waitTimeout", "destroyGraceSeconds"];
    const inputs = Object.keys(run.byName("app-container").inputs).filter((k) => k !== "name");
    expect(inputs.filter((k) => ![...hashed, ...defaults, ...hardened, ...inPlaceOrStateOnly].includes(k))).toEqual([]);
});
