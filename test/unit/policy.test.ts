// The policy pack's rules (policy/rules.ts), each called directly with resources that pass and resources
// that fail, then over the real odin stack's resource graph (the program under mocks), which passes.
import { beforeAll, describe, expect, it } from "vitest";
import {
    BUILT_IMAGE,
    COMMAND,
    CONTAINER,
    DOCKER_PROVIDER,
    REMOTE_IMAGE,
    dataMountsUnderDataDir,
    imagesPinned,
    noPlaintextSecretInEnv,
    noStorePortOnLan,
    pinned,
    serverContainersRotateLogsAndRestart,
    type Resource,
} from "../../policy/rules";
import { evaluate, stackResources } from "../../policy/evaluate";
import type { StackValidationPolicy } from "@pulumi/policy";

const res = (type: string, name: string, props: Record<string, any>, secretOutputs: string[] = []): Resource => ({
    type,
    name,
    urn: `urn:pulumi:test::marvel-rivals-stats::${type}::${name}`,
    props,
    opts: { additionalSecretOutputs: secretOutputs },
});
const server = res(DOCKER_PROVIDER, "docker", { host: "ssh://deploy@odin" });
const laptop = res(DOCKER_PROVIDER, "docker", { host: "unix:///var/run/docker.sock" });
const dirs = res(COMMAND, "data-dirs", { environment: { DATA_DIR: "/mnt/user/appdata/mrs" } });
const good = {
    logDriver: "json-file",
    logOpts: { "max-size": "10m", "max-file": "3" },
    restart: "unless-stopped",
    image: `sha256:${"a".repeat(64)}`,
};

function violations(policy: StackValidationPolicy, resources: Resource[]): string[] {
    const out: string[] = [];
    void policy.validateStack({ resources } as never, (message) => out.push(message));
    return out;
}

describe("no-database-port-on-lan", () => {
    const pgOn = (ip: string) =>
        res(CONTAINER, "postgres", { ...good, ports: [{ internal: 5432, external: 5432, ip }] });
    it("passes loopback on a laptop, and the app's port anywhere", () => {
        expect(violations(noStorePortOnLan, [laptop, pgOn("127.0.0.1")])).toEqual([]);
        const app = res(CONTAINER, "app", { ...good, ports: [{ internal: 8000, external: 8000, ip: "0.0.0.0" }] });
        expect(violations(noStorePortOnLan, [server, app])).toEqual([]);
    });
    it("fails a store port on a LAN address, and any store port on the server", () => {
        expect(violations(noStorePortOnLan, [laptop, pgOn("0.0.0.0")])).toEqual([
            "postgres publishes PostgreSQL's port 5432 on 0.0.0.0, reachable from the network; bind it to 127.0.0.1 (postgresBindAddress/redisBindAddress)",
        ]);
        const redis = res(CONTAINER, "redis", {
            ...good,
            ports: [{ internal: 6379, external: 6379, ip: "127.0.0.1" }],
        });
        expect(violations(noStorePortOnLan, [server, redis])).toEqual([
            "redis publishes Redis's port 6379 (as 127.0.0.1:6379) on the server; only PostgreSQL on the server's loopback is allowed (postgresBindAddress 127.0.0.1, for the SSH tunnel): set that, or remove postgresPort/redisPort, and reach it through `docker exec` or the tunnel",
        ]);
    });
    it("passes PostgreSQL on the server's loopback (the SSH tunnel's end) and refuses every other address there", () => {
        expect(violations(noStorePortOnLan, [server, pgOn("127.0.0.1")])).toEqual([]);
        for (const ip of ["0.0.0.0", "192.168.1.10", "10.0.0.5", "172.17.0.1", "127.0.0.2", "::", "::1", "localhost"]) {
            expect(violations(noStorePortOnLan, [server, pgOn(ip)]), ip).toEqual([
                `postgres publishes PostgreSQL's port 5432 (as ${ip}:5432) on the server; only PostgreSQL on the server's loopback is allowed (postgresBindAddress 127.0.0.1, for the SSH tunnel): set that, or remove postgresPort/redisPort, and reach it through \`docker exec\` or the tunnel`,
            ]);
        }
        // No address given: Docker publishes on every interface.
        const anyIp = res(CONTAINER, "postgres", { ...good, ports: [{ internal: 5432, external: 5432 }] });
        expect(violations(noStorePortOnLan, [server, anyIp])).toHaveLength(1);
    });
});

describe("data-mounts-under-data-dir", () => {
    it("passes mounts under DATA_DIR and read-only ones elsewhere", () => {
        const app = res(CONTAINER, "app", {
            volumes: [
                { hostPath: "/mnt/user/appdata/mrs/logs", containerPath: "/app/logs" },
                { hostPath: "/home/dev/project/app/src", containerPath: "/app/src", readOnly: true },
            ],
        });
        expect(violations(dataMountsUnderDataDir, [dirs, app])).toEqual([]);
    });
    it("fails a writable mount outside it (a prefix of the name is not inside), and a stack without the step", () => {
        const pg = res(CONTAINER, "postgres", {
            volumes: [{ hostPath: "/mnt/user/appdata/mrs-old/postgres", containerPath: "/var/lib/postgresql/data" }],
        });
        expect(violations(dataMountsUnderDataDir, [dirs, pg])).toEqual([
            "postgres mounts /mnt/user/appdata/mrs-old/postgres at /var/lib/postgresql/data writable, outside the data directory /mnt/user/appdata/mrs; put it under /mnt/user/appdata/mrs (HostDirectories) or mount it read-only",
        ]);
        expect(violations(dataMountsUnderDataDir, [pg])).toHaveLength(1);
    });
});

describe("server-log-rotation-and-restart", () => {
    it("passes rotated, restarting containers on the server, and anything on a laptop", () => {
        expect(violations(serverContainersRotateLogsAndRestart, [server, res(CONTAINER, "app", good)])).toEqual([]);
        expect(violations(serverContainersRotateLogsAndRestart, [laptop, res(CONTAINER, "app", {})])).toEqual([]);
    });
    it("fails a container without rotation or a restart policy on the server", () => {
        const bare = res(CONTAINER, "app", { logDriver: "json-file", logOpts: { "max-size": "10m" } });
        expect(violations(serverContainersRotateLogsAndRestart, [server, bare])).toEqual([
            "app logs through json-file without json-file rotation (max-size and max-file); the server's disk fills up; use containerDefaults (components/common.ts)",
            'app has restart policy "no": it stays down after a crash or a reboot of the server; use unless-stopped (containerDefaults)',
        ]);
    });
});

describe("images-pinned", () => {
    it("tells pinned references from floating ones", () => {
        for (const ref of ["postgres:16-alpine", "registry:5000/team/app:1.2.3", `redis@sha256:${"b".repeat(64)}`]) {
            expect(pinned(ref), ref).toBe(true);
        }
        for (const ref of ["postgres", "postgres:latest", "registry:5000/team/app"])
            expect(pinned(ref), ref).toBe(false);
    });
    it("passes pinned images and fails floating ones, pulled or built", () => {
        const ok = [
            res(REMOTE_IMAGE, "pg", { name: "postgres:16-alpine" }),
            res(BUILT_IMAGE, "app", { imageName: "app:odin" }),
        ];
        expect(violations(imagesPinned, ok)).toEqual([]);
        const bad = [
            res(REMOTE_IMAGE, "pg", { name: "postgres" }),
            res(BUILT_IMAGE, "app", { imageName: "app:latest" }),
        ];
        expect(violations(imagesPinned, bad)).toEqual([
            "pg uses postgres, which is not pinned; name a version tag (not latest) or a digest",
            "app uses app:latest, which is not pinned; name a version tag (not latest) or a digest",
        ]);
    });
});

describe("no-plaintext-secret-in-env", () => {
    const envs = ["APP_ENV=production", "DATABASE_URL=postgres://stats:s3cret@postgres:5432/stats", "REDIS_PASSWORD=x"];
    it("passes credentials kept secret in the state, and an environment without any", () => {
        expect(violations(noPlaintextSecretInEnv, [res(CONTAINER, "app", { envs }, ["envs"])])).toEqual([]);
        expect(
            violations(noPlaintextSecretInEnv, [res(CONTAINER, "app", { envs: ["APP_ENV=dev", "API_KEY="] })]),
        ).toEqual([]);
    });
    it("fails credentials the state would keep in plaintext", () => {
        expect(violations(noPlaintextSecretInEnv, [res(CONTAINER, "app", { envs })])).toEqual([
            'app carries DATABASE_URL, REDIS_PASSWORD in its environment, which the state would keep in plaintext; pass them as secrets and add additionalSecretOutputs: ["envs"]',
        ]);
    });
});

describe("the odin stack's own resource graph", () => {
    let resources: Resource[];
    beforeAll(async () => {
        resources = await stackResources("odin");
    });
    it("is on the server, with its data directory, and breaks no rule", () => {
        expect(resources.some((r) => r.type === DOCKER_PROVIDER && String(r.props.host).startsWith("ssh://"))).toBe(
            true,
        );
        expect(
            resources
                .filter((r) => r.type === CONTAINER)
                .map((r) => r.name)
                .sort(),
        ).toEqual(["app-container", "backups-container", "postgres-container", "redis-container"]);
        expect(evaluate(resources)).toEqual([]);
    });
});
