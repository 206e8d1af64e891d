// The e2e harness itself (issue 5), on a tiny known program (test/e2e/fixtures/tiny-stack): it must
// really create what a program declares, leave unchanged resources alone on a run again, replace what
// changed, fail with the container's story when a healthcheck fails, refuse unknown resource types, and
// destroy like `pulumi destroy`.
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../app/test/support/ports";
import { opsByName, pulumiDestroy, pulumiPreview, pulumiUp, type StackRun } from "./harness/run";
import { clearLeftovers, docker, redisExchange, removeTempDir, requireEngine, tempDir } from "./support";
import { takeTurnsOnEngine } from "./hooks";

const CONTAINER = "mrs-e2e-tiny-redis";
const NETWORK = "mrs-e2e-tiny-net";
const engine = requireEngine();

takeTurnsOnEngine(engine);

describe.skipIf(!engine)("e2e harness on a tiny program", () => {
    let run: StackRun;
    let port: number;
    let dataDir: string;

    beforeAll(async () => {
        await clearLeftovers([CONTAINER], [NETWORK]);
        const work = tempDir("harness");
        port = await freePort();
        dataDir = path.join(work, "data");
        run = {
            projectDir: path.join(__dirname, "fixtures", "tiny-stack"),
            stack: "test",
            workDir: work,
            overrides: { port: String(port), dataDir },
            // These tests check the harness itself: never the CLI driver, even where `pulumi` is installed.
            driver: "harness",
        };
    });

    afterAll(async () => {
        if (run) await pulumiDestroy(run).catch(() => undefined);
        removeTempDir(run?.workDir);
    });

    it("creates every declared resource for real and waits for the healthcheck", async () => {
        const up = await pulumiUp(run);
        expect(up.error).toBeUndefined();
        expect(up.ok).toBe(true);
        const ops = opsByName(up);
        for (const name of ["net", "redis-image", "pw", "prepare", "redis"]) expect(ops[name]?.op).toBe("create");
        expect(up.outputs.preparedOut).toBe(`prepared ${dataDir}`);
        expect(up.outputs.lookedUpNetworkId).toBe(up.outputs.networkId);
        expect(up.outputs.networkId).toMatch(/^[0-9a-f]{64}$/);
        expect(existsSync(dataDir)).toBe(true);
        const info = await docker().inspect("containers", CONTAINER);
        expect(info.State.Health.Status).toBe("healthy");
        expect(info.HostConfig.PortBindings["6379/tcp"]).toEqual([{ HostIp: "127.0.0.1", HostPort: String(port) }]);
        expect(info.NetworkSettings.Networks[NETWORK].Aliases).toContain("cache");
        // The generated password really protects the published port.
        expect(await redisExchange(port, up.outputs.password_, "PING")).toBe("+OK\r\n+PONG\r\n");
        expect(await redisExchange(port, "wrong-password", "PING")).toMatch(/^-WRONGPASS/);
    });

    it("touches nothing when run again with the same inputs", async () => {
        const before = await docker().inspect("containers", CONTAINER);
        const first = before.Id;
        const up = await pulumiUp(run);
        expect(up.error).toBeUndefined();
        expect(up.operations.filter((o) => o.op !== "same").map((o) => `${o.name}: ${o.op} ${o.changed}`)).toEqual([]);
        expect((await docker().inspect("containers", CONTAINER)).Id).toBe(first);
    });

    it("does not look at the engine on a plain up: a container removed by hand stays removed, as without --refresh", async () => {
        const gone = await docker().inspect("containers", CONTAINER);
        await docker().removeContainer(gone.Id, 1);
        const up = await pulumiUp(run);
        expect(up.error).toBeUndefined();
        expect(opsByName(up).redis.op).toBe("same");
        expect(await docker().inspect("containers", CONTAINER)).toBeUndefined();
        // Any change replaces it; deleting the missing old one is not an error (the provider ignores
        // "No such container").
        const back = await pulumiUp({ ...run, overrides: { ...run.overrides, label: "back" } });
        expect(back.error).toBeUndefined();
        expect(opsByName(back).redis.op).toBe("replace");
        expect((await docker().inspect("containers", CONTAINER)).State.Health.Status).toBe("healthy");
    });

    it("fails a preview with expectNoChanges when a change is proposed, as `pulumi preview --expect-no-changes`", async () => {
        // The last up (above) set the label "back".
        const same = await pulumiPreview(
            { ...run, overrides: { ...run.overrides, label: "back" } },
            { expectNoChanges: true },
        );
        expect(same.error).toBeUndefined();
        const changed = await pulumiPreview(
            { ...run, overrides: { ...run.overrides, label: "two" } },
            { expectNoChanges: true },
        );
        expect(changed.ok).toBe(false);
        expect(changed.error).toBe("no changes were expected but changes were proposed: redis: replace");
    });

    it("replaces a container whose inputs changed and keeps the generated password", async () => {
        const before = await docker().inspect("containers", CONTAINER);
        const up = await pulumiUp({ ...run, overrides: { ...run.overrides, label: "two" } });
        expect(up.error).toBeUndefined();
        expect(opsByName(up).redis.op).toBe("replace");
        expect(opsByName(up).pw.op).toBe("same");
        const after = await docker().inspect("containers", CONTAINER);
        expect(after.Id).not.toBe(before.Id);
        expect(after.Config.Labels.tiny).toBe("two");
        run.overrides = { ...run.overrides, label: "two" };
    });

    it("writes a healthcheck change to the state only: the provider's Update never reaches the container", async () => {
        const before = await docker().inspect("containers", CONTAINER);
        const up = await pulumiUp({
            ...run,
            overrides: { ...run.overrides, healthTest: "echo probe-says-no; exit 1" },
        });
        expect(up.error).toBeUndefined();
        expect(opsByName(up).redis).toMatchObject({ op: "update", changed: ["healthcheck"] });
        const after = await docker().inspect("containers", CONTAINER);
        expect(after.Id).toBe(before.Id);
        expect(after.Config.Healthcheck.Test).toEqual(before.Config.Healthcheck.Test);
    });

    it("fails slowly with the provider's message when a new container never turns healthy, and keeps it: the next up only updates it", async () => {
        const broken = {
            ...run,
            overrides: {
                ...run.overrides,
                label: "broken",
                healthTest: "echo probe-says-no; exit 1",
                waitTimeout: "4",
            },
        };
        const up = await pulumiUp(broken);
        expect(up.ok).toBe(false);
        expect(up.error).toContain("container failed to be in healthy state");
        expect(up.error).toContain("probe-says-no");
        expect(up.error).toMatch(/Ready to accept connections/);
        // Pulumi keeps it with an init error; with no replaceOnChanges covering it, the next up sends an
        // Update that changes nothing, and the run "succeeds" with the unhealthy container in place.
        const kept = await docker().inspect("containers", CONTAINER);
        expect(kept.Config.Labels.tiny).toBe("broken");
        const again = await pulumiUp(broken);
        expect(again.error).toBeUndefined();
        expect(opsByName(again).redis.op).toBe("update");
        expect((await docker().inspect("containers", CONTAINER)).Id).toBe(kept.Id);
        // Back to a healthy configuration (a label change replaces it).
        const healed = await pulumiUp(run);
        expect(healed.error).toBeUndefined();
        expect(opsByName(healed).redis.op).toBe("replace");
    });

    it("fails on a resource type it does not implement", async () => {
        const up = await pulumiUp({ ...run, overrides: { ...run.overrides, extraResource: "true" } });
        expect(up.ok).toBe(false);
        expect(up.error).toContain("does not implement the resource type docker:index/volume:Volume");
    });

    it("destroys containers and the network, and leaves host directories alone", async () => {
        writeFileSync(path.join(dataDir, "keep-me"), "still here");
        const down = await pulumiDestroy(run);
        expect(down.error).toBeUndefined();
        expect(await docker().inspect("containers", CONTAINER)).toBeUndefined();
        expect(await docker().inspect("networks", NETWORK)).toBeUndefined();
        expect(existsSync(path.join(dataDir, "keep-me"))).toBe(true);
    });
});

// The provider models alone, against the real engine: the behaviours a user's first real run meets.
describe.skipIf(!engine)("provider behaviours the harness reproduces", () => {
    const NAME = "mrs-e2e-model-probe";
    const ctx = () => ({ api: docker(), projectDir: __dirname, log: () => undefined });
    let work: string;

    beforeAll(async () => {
        await clearLeftovers([NAME]);
        work = tempDir("models");
    });
    afterAll(async () => {
        await clearLeftovers([NAME]).catch(() => undefined);
        removeTempDir(work);
    });

    it("refuses an empty item in `command` before creating anything", async () => {
        const { containerModel } = await import("./harness/models");
        await expect(
            containerModel.create(
                { name: NAME, image: "redis:7-alpine", command: ["redis-server", "--save", ""] },
                ctx(),
            ),
        ).rejects.toThrow("values for command may not be empty");
        expect(await docker().inspect("containers", NAME)).toBeUndefined();
    });

    it("refuses a healthcheck start interval below Docker API 1.44, as the provider's client does", async () => {
        const { containerModel } = await import("./harness/models");
        const version = await docker().apiVersion();
        const create = containerModel.create(
            {
                name: NAME,
                image: "redis:7-alpine",
                healthcheck: { tests: ["CMD", "true"], interval: "5s", startInterval: "1s" },
            },
            ctx(),
        );
        const [major, minor] = version.split(".").map(Number);
        if (major === 1 && minor < 44) {
            await expect(create).rejects.toThrow(
                `Unable to create container: "specify health-check start interval" requires API version 1.44, but the Docker daemon API version is ${version}`,
            );
            expect(await docker().inspect("containers", NAME)).toBeUndefined();
        } else {
            await create;
            expect((await docker().inspect("containers", NAME)).Config.Healthcheck.StartInterval).toBe(1e9);
            await clearLeftovers([NAME]);
        }
    });

    it("stops a container on delete with destroyGraceSeconds, and kills it at once without", async () => {
        const { containerModel } = await import("./harness/models");
        // On SIGTERM the process takes a second to finish cleanly, then leaves a marker.
        const script = `trap 'sleep 1; touch /out/clean-$RUN; exit 0' TERM; while :; do sleep 0.2; done`;
        const results: Record<string, boolean> = {};
        for (const grace of [0, 10]) {
            const { id, outputs } = await containerModel.create(
                {
                    name: NAME,
                    image: "redis:7-alpine",
                    entrypoints: ["sh", "-c", script],
                    envs: [`RUN=${grace}`],
                    volumes: [{ hostPath: work, containerPath: "/out" }],
                    destroyGraceSeconds: grace || undefined,
                },
                ctx(),
            );
            await new Promise((r) => setTimeout(r, 500));
            await containerModel.delete({ id, inputs: {}, outputs }, ctx());
            expect(await docker().inspect("containers", NAME)).toBeUndefined();
            results[`grace ${grace}`] = existsSync(path.join(work, `clean-${grace}`));
        }
        expect(results).toEqual({ "grace 0": false, "grace 10": true });
    });

    it("uploads files before the start, root's, with the given permissions (secrets as files, issue 22)", async () => {
        const { containerModel } = await import("./harness/models");
        chmodSync(work, 0o777);
        const { id, outputs } = await containerModel.create(
            {
                name: NAME,
                image: "redis:7-alpine",
                user: "99:100",
                entrypoints: [
                    "sh",
                    "-c",
                    "for f in password plain; do stat -c '%u:%g %a' /run/secrets/offsite/$f; cat /run/secrets/offsite/$f; done > /out/seen",
                ],
                volumes: [{ hostPath: work, containerPath: "/out" }],
                uploads: [
                    { file: "/run/secrets/offsite/password", content: "s3cret-line\n", permissions: "0444" },
                    { file: "/run/secrets/offsite/plain", contentBase64: Buffer.from("b64").toString("base64") },
                ],
            },
            ctx(),
        );
        for (let i = 0; i < 50 && !existsSync(path.join(work, "seen")); i++)
            await new Promise((r) => setTimeout(r, 200));
        await new Promise((r) => setTimeout(r, 300));
        expect(readFileSync(path.join(work, "seen"), "utf8")).toBe("0:0 444\ns3cret-line\n0:0 644\nb64");
        await containerModel.delete({ id, inputs: {}, outputs }, ctx());
        await expect(
            containerModel.create(
                { name: NAME, image: "redis:7-alpine", uploads: [{ file: "/x", content: "a", source: "b" }] },
                ctx(),
            ),
        ).rejects.toThrow("error with upload content: only one of 'content', 'content_base64', or 'source' can be set");
        await clearLeftovers([NAME]);
    });

    it("reads healthcheck durations back in Go's form", async () => {
        const { goDurationString, parseGoDuration } = await import("./harness/models");
        expect(
            ["60s", "1m", "90s", "3600s", "0s", "1.5s", "500ms"].map((d) => goDurationString(parseGoDuration(d))),
        ).toEqual(["1m0s", "1m0s", "1m30s", "1h0m0s", "0s", "1.5s", "500ms"]);
    });
});
