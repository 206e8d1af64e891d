// Issue 24's policy rules (policy/rules.ts): containers-hardened (item 3) and server-publishes-only-loopback
// (item 4), each called with what it guards missing, and through `npm run policy` on a changed odin stack.
// The graphs of both stacks: least-privilege-dev.test.ts and least-privilege-odin.test.ts.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { ROOT_ENTRYPOINT_CAPS, PROCESS_LIMIT, hardening, hardeningFlags } from "../../components/common";
import { PIDS_LIMITS_STEP } from "../../components/pidsLimits";
import {
    COMMAND,
    CONTAINER,
    DOCKER_PROVIDER,
    containersHardened,
    policies,
    serverPublishesOnlyLoopback,
    type Resource,
} from "../../policy/rules";
import type { StackValidationPolicy } from "@pulumi/policy";

const REPO = resolve(__dirname, "../..");
const policy = (...args: string[]) =>
    spawnSync("npm", ["run", "-s", "policy", "--", ...args], { cwd: REPO, encoding: "utf8", timeout: 120_000 });

it("hardeningFlags gives the CLI the same limits, with the pids limit the provider lacks", () => {
    expect(hardeningFlags({ capAdd: ["CAP_CHOWN"] })).toBe(
        `--cap-drop ALL --cap-add CAP_CHOWN --security-opt no-new-privileges:true --pids-limit ${PROCESS_LIMIT}`,
    );
    expect(() => hardening({ capAdd: ["CHOWN"] })).toThrow(/CAP_NAME/);
});

const res = (name: string, props: Record<string, any>): Resource => ({
    type: CONTAINER,
    name,
    urn: `urn:pulumi:test::marvel-rivals-stats::${CONTAINER}::${name}`,
    props,
    opts: { additionalSecretOutputs: [] },
});
function violations(policy: StackValidationPolicy, resources: Resource[]): string[] {
    const out: string[] = [];
    void policy.validateStack({ resources } as never, (message) => out.push(message));
    return out;
}
const appLabel = [{ label: "marvel-rivals-stats.role", value: "app" }];
/** The stack's pids-limits step (components/pidsLimits.ts), listing `names`. */
const pidsStep = (...names: string[]): Resource => ({
    ...res(PIDS_LIMITS_STEP, { environment: { PIDS_CONTAINERS: names.join(" "), PIDS_LIMIT: "1024" } }),
    type: COMMAND,
});
const hardenedApp = { ...hardening({ readOnly: { tmpfs: { "/tmp": "rw" } } }), memory: 512, user: "1000:1000" };

describe("containers-hardened", () => {
    it("is in the pack", () => {
        expect(policies).toContain(containersHardened);
        expect(containersHardened.enforcementLevel).toBe("mandatory");
    });
    it("passes a hardened app", () => {
        expect(
            violations(containersHardened, [
                res("app", { ...hardenedApp, name: "mrs-app", labels: appLabel }),
                pidsStep("mrs-pg", "mrs-app"),
            ]),
        ).toEqual([]);
    });
    it.each([
        ["capabilities", { capabilities: undefined }, /default capabilities/],
        ["no-new-privileges", { securityOpts: [] }, /no-new-privileges/],
        ["the memory limit", { memory: 0 }, /no memory limit/],
        ["the read-only root", { readOnly: false }, /writable root file system/],
        ["a non-root user", { user: "0:0" }, /runs as 0:0/],
        ["a user at all", { user: undefined }, /the image's user/],
    ])("fails an app without %s", (_what, change, message) => {
        const found = violations(containersHardened, [
            res("app", { ...hardenedApp, name: "mrs-app", ...change, labels: appLabel }),
            pidsStep("mrs-app"),
        ]);
        expect(found).toHaveLength(1);
        expect(found[0]).toMatch(message);
    });
    it("fails a container the pids-limits step leaves out, and a stack without the step", () => {
        const app = res("app", { ...hardenedApp, name: "mrs-app", labels: appLabel });
        expect(violations(containersHardened, [app, pidsStep("mrs-pg")])).toEqual([
            "app has no process limit (not in the pids-limits step); the PidsLimits component (components/pidsLimits.ts)",
        ]);
        expect(violations(containersHardened, [app])).toEqual([
            "app has no process limit (not in the pids-limits step); the PidsLimits component (components/pidsLimits.ts)",
        ]);
    });
    it("asks a read-only root and a user of the app only", () => {
        const pg = res("postgres", { ...hardening({ capAdd: ROOT_ENTRYPOINT_CAPS }), name: "mrs-pg", memory: 1024 });
        expect(violations(containersHardened, [pg, pidsStep("mrs-pg")])).toEqual([]);
    });
    it("reports a stack set to no memory limit (npm run policy)", () => {
        const r = policy("odin", "--set", "appMemoryMb=0");
        expect(r.status).toBe(1);
        expect(r.stdout.split("\n").filter((l) => l.includes("violation of"))).toEqual([
            "mandatory violation of containers-hardened (app-container): app-container has no memory limit; set postgresMemoryMb, redisMemoryMb or appMemoryMb above 0",
        ]);
    }, 120_000);
});

describe("server-publishes-only-loopback", () => {
    const server = { ...res("docker", { host: "ssh://root@odin" }), type: DOCKER_PROVIDER };
    const laptop = { ...res("docker", { host: "unix:///var/run/docker.sock" }), type: DOCKER_PROVIDER };
    const app = (ip: string) => res("app", { ports: [{ internal: 8000, external: 8000, ip }] });
    it("is in the pack, advisory: a LAN port is the user's explicit opt-in", () => {
        expect(policies).toContain(serverPublishesOnlyLoopback);
        expect(serverPublishesOnlyLoopback.enforcementLevel).toBe("advisory");
    });
    it("reports the app on the server's LAN, not on loopback, not on a laptop", () => {
        expect(violations(serverPublishesOnlyLoopback, [server, app("0.0.0.0")])).toEqual([
            "app publishes port 8000 on 0.0.0.0:8000 of the server, plain HTTP on the LAN beside Caddy; unset appPort/appBindAddress and reach it through `domain` unless you mean it",
        ]);
        expect(violations(serverPublishesOnlyLoopback, [server, app("127.0.0.1")])).toEqual([]);
        expect(violations(serverPublishesOnlyLoopback, [laptop, app("0.0.0.0")])).toEqual([]);
    });
    it("names the keys of the container that publishes: Postgres', Redis', pgAdmin's, not the app's", () => {
        const on = (name: string, internal: number) =>
            res(name, { ports: [{ internal, external: internal, ip: "192.168.1.5" }] });
        expect(
            violations(serverPublishesOnlyLoopback, [
                server,
                on("postgres-container", 5432),
                on("redis-container", 6379),
                on("pgadmin-container", 5050),
            ]),
        ).toEqual([
            "postgres-container publishes port 5432 on 192.168.1.5:5432 of the server, PostgreSQL on the LAN; unset postgresPort/postgresBindAddress, or set postgresBindAddress 127.0.0.1 for the SSH tunnel",
            "redis-container publishes port 6379 on 192.168.1.5:6379 of the server, Redis on the LAN; unset redisPort/redisBindAddress and reach it through `docker exec`",
            "pgadmin-container publishes port 5050 on 192.168.1.5:5050 of the server, pgAdmin on the LAN; set pgadmin false (a tool for a local Docker engine; pgadminPort is its port)",
        ]);
    });
    it("reports odin set to publish the app on the LAN (npm run policy), without failing it", () => {
        const r = policy("odin", "--set", "appPort=8000", "--set", "appBindAddress=0.0.0.0");
        expect(r.status).toBe(0);
        expect(r.stdout.split("\n").filter((l) => l.includes("violation of"))).toEqual([
            "advisory violation of server-publishes-only-loopback (app-container): app-container publishes port 8000 on 0.0.0.0:8000 of the server, plain HTTP on the LAN beside Caddy; unset appPort/appBindAddress and reach it through `domain` unless you mean it",
        ]);
    }, 120_000);
});
