// The odin stack's resource graph, from the real Pulumi.yaml + Pulumi.odin.yaml, under Pulumi mocks.
import { beforeAll, describe, expect, test } from "vitest";
import type { ProgramRun } from "../../support/mockProgram";

let run: ProgramRun;
const dataDir = "/mnt/user/appdata/marvel-rivals-stats";

beforeAll(async () => {
    const { runProgram } = await import("../../support/mockProgram");
    // A domain as an operator would set it, to see the caddy labels.
    run = await runProgram("odin", { domain: "stats.example.com" });
});

const container = (name: string) => run.byName(`${name}-container`).inputs;

describe("odin stack", () => {
    test("talks to the server's Docker engine over SSH, for resources and for docker CLI steps", () => {
        const providers = run.ofType("pulumi:providers:docker");
        expect(providers).toHaveLength(1);
        expect(providers[0].inputs.host).toBe("ssh://root@odin");
        expect(run.byName("data-mkdir").inputs.environment.DOCKER_HOST).toBe("ssh://root@odin");
        expect(run.byName("migrations-up").inputs.environment.DOCKER_HOST).toBe("ssh://root@odin");
    });

    test("keeps data under appdata, owned by Unraid's nobody:users", () => {
        expect(run.outputs.dataDir.value).toBe(dataDir);
        expect(run.byName("data-mkdir").inputs.environment).toMatchObject({ DATA_DIR: dataDir, OWNER: "1000:1000" });
        expect(container("postgres").volumes[0].hostPath).toBe(`${dataDir}/postgres`);
        expect(container("redis").volumes[0].hostPath).toBe(`${dataDir}/redis`);
        expect(container("app").volumes.map((v: { hostPath: string }) => v.hostPath)).toEqual([
            `${dataDir}/output`,
            `${dataDir}/logs`,
            `${dataDir}/secrets/app_database_url`,
            `${dataDir}/secrets/app_redis_url`,
            `${dataDir}/secrets/app_api_key`,
        ]);
        expect(container("app").user).toBe("1000:1000");
    });

    test("publishes no Redis port, and Postgres on the server's loopback only (the SSH tunnel's end)", () => {
        expect(container("postgres").ports).toEqual([{ internal: 5432, external: 5432, ip: "127.0.0.1" }]);
        expect(container("redis").ports ?? []).toEqual([]);
    });

    test("exports the laptop's way into the database: the SSH tunnel command and the URL through it, as a secret", () => {
        expect(run.outputs.databaseTunnel.secret).toBe(true);
        expect(run.outputs.databaseTunnel.value).toEqual({
            command: "ssh -N -L 15432:127.0.0.1:5432 root@odin",
            url: "postgres://marvel_stats_reader:generated-reader-db-password-0123456789@127.0.0.1:15432/marvel_rivals",
        });
        // The in-network URL stays what the stack's containers use; the server's loopback is no laptop's.
        expect(run.outputs.databaseUrl.value).toBe(
            "postgres://marvel_stats:generated-db-password-0123456789@postgres:5432/marvel_rivals",
        );
    });

    test("attaches the app to the existing caddy network, which it looks up and never creates", () => {
        expect(container("app").networksAdvanced).toEqual([
            { name: "marvel-rivals-network", aliases: ["app", "marvel-rivals-app"] },
            { name: "caddy", aliases: ["marvel-rivals-app"] },
        ]);
        const networks = run.ofType("docker:index/network:Network").map((n) => n.inputs.name);
        expect(networks).toEqual(["marvel-rivals-network"]);
        expect(container("app").labels).toEqual([
            { label: "marvel-rivals-stats.stack", value: "odin" },
            { label: "marvel-rivals-stats.state", value: "00112233aabbccdd" },
            { label: "caddy", value: "stats.example.com" },
            { label: "caddy.reverse_proxy", value: "marvel-rivals-app:8000" },
            { label: "caddy.reverse_proxy.lb_try_duration", value: "10s" },
            { label: "caddy.reverse_proxy.lb_try_interval", value: "250ms" },
            { label: "marvel-rivals-stats.role", value: "app" },
            { label: "marvel-rivals-stats.version", value: run.byName("app-version").inputs.keepers.version },
        ]);
        expect(run.outputs.appUrl.value).toBe("https://stats.example.com");
    });

    test("runs the runtime image target without hot reload, for the server's platform", () => {
        expect(run.byName("app-image").inputs.build).toMatchObject({ target: "runtime", platform: "linux/amd64" });
        expect(container("app").volumes.some((v: { containerPath: string }) => v.containerPath === "/app/src")).toBe(
            false,
        );
        expect(run.byName("postgres-image").inputs.platform).toBe("linux/amd64");
    });

    test("Redis is a cache: nothing written to disk", () => {
        expect(container("redis").command.slice(4)).toEqual(["--appendonly", "no"]);
    });

    test("backs up before migrating through the backup agent (a checked custom-format dump), not the runner's plain SQL", () => {
        const step = run.byName("migrations-up");
        expect(step.inputs.environment.MIGRATE_BACKUP_CONTAINER).toBe("marvel-rivals-backup");
        expect(step.inputs.environment.HOST_BACKUP_DIR).toBeUndefined();
        expect(step.inputs.create).toContain('docker exec "$MIGRATE_BACKUP_CONTAINER" backup-agent once "$label"');
        expect(step.inputs.create).toContain('*"result=passed "*) ;;');
        // After the backup container: the agent must be there to take the dump.
        expect(step.dependencies).toContain(run.byName("backups-container").urn);
        expect(step.inputs.environment.MIGRATE_USER).toBe("1000:1000");
    });

    test("connection strings point inside the stack's network when nothing is published, and stay secret", () => {
        expect(run.outputs.databaseUrl.secret).toBe(true);
        expect(run.outputs.databaseUrl.value).toBe(
            "postgres://marvel_stats:generated-db-password-0123456789@postgres:5432/marvel_rivals",
        );
        expect(run.outputs.redisUrl).toEqual({
            value: "redis://app:generated-redis-password-0123456789@redis:6379",
            secret: true,
        });
    });

    test("the same start order holds on odin", () => {
        const step = run.byName("migrations-up");
        expect(step.dependencies).toContain(run.byName("postgres-container").urn);
        expect(run.byName("app-container").dependencies).toContain(step.urn);
    });
});
