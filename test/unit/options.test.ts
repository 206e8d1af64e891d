// Optional parts of the stack, switched on through config: pgAdmin, memory limits, a published database on odin.
import { beforeAll, expect, test } from "vitest";
import type { ProgramRun } from "../../support/mockProgram";

let run: ProgramRun;

beforeAll(async () => {
    const { runProgram } = await import("../../support/mockProgram");
    run = await runProgram("dev", {
        pgadmin: "true",
        postgresMemoryMb: "512",
        redisMemoryMb: "64",
        appMemoryMb: "128",
        postgresPort: "5433",
        currentSeason: "5.5",
        dbPassword: "configured-db-password",
    });
});

test("pgAdmin runs on 127.0.0.1 with a generated password, on the stack's network", () => {
    const pgadmin = run.byName("pgadmin-container");
    expect(pgadmin.inputs.ports).toEqual([{ internal: 5050, external: 5050, ip: "127.0.0.1" }]);
    expect(pgadmin.inputs.networksAdvanced).toEqual([{ name: "marvel-rivals-network" }]);
    expect(pgadmin.inputs.envs).toContain("PGADMIN_DEFAULT_PASSWORD=generated-pgadmin-password-0123456789");
    expect(pgadmin.secretInputs).toContain("envs");
    expect(run.outputs.pgadminUrl.value).toBe("http://127.0.0.1:5050");
    // Its python holds CAP_NET_BIND_SERVICE as a file capability: without it in the bounding set the
    // kernel refuses to exec it (components/pgadmin.ts). Nothing else is given back.
    expect(pgadmin.inputs.capabilities).toEqual({ drops: ["ALL"], adds: ["CAP_NET_BIND_SERVICE"] });
    // Its process limit too (components/pidsLimits.ts).
    expect(run.byName("pids-limits").inputs.environment.PIDS_CONTAINERS.split(" ")).toContain(pgadmin.inputs.name);
});

test("memory limits reach their containers", () => {
    expect(run.byName("postgres-container").inputs.memory).toBe(512);
    expect(run.byName("redis-container").inputs.memory).toBe(64);
    expect(run.byName("app-container").inputs.memory).toBe(128);
});

test("a configured port and password are used as given", () => {
    expect(run.byName("postgres-container").inputs.ports).toEqual([
        { internal: 5432, external: 5433, ip: "127.0.0.1" },
    ]);
    expect(run.outputs.databaseUrl).toEqual({
        value: "postgres://marvel_stats:configured-db-password@127.0.0.1:5433/marvel_rivals",
        secret: true,
    });
    expect(run.ofType("random:index/randomPassword:RandomPassword").map((r) => r.name)).not.toContain("db-password");
    expect(run.byName("app-container").inputs.envs).toContain("CURRENT_SEASON=5.5");
});

test("memory limits come with swap unlimited (-1), the one value Docker stores as given on every host", () => {
    // The provider reads MemorySwap back (kreuzwerker v4.2.0, resourceDockerContainerRead); Docker picks twice
    // the limit when unset, or -1 where the kernel cannot limit swap: either would show a change later.
    for (const name of ["postgres-container", "redis-container", "app-container"])
        expect(run.byName(name).inputs.memorySwap, name).toBe(-1);
});

test("Redis is a bounded cache: three quarters of its container's limit, least recently used keys evicted", async () => {
    const { MAXMEMORY_FROM_CGROUP } = await import("../../components/redis");
    const script = run.byName("redis-container").inputs.command[2];
    // Read from the container's cgroup at start, not written in the command: a new limit stays in place.
    expect(script).toContain(`${MAXMEMORY_FROM_CGROUP}\n`);
    expect(script).toContain(`\nexec docker-entrypoint.sh redis-server - "$@" <<EOF\n`);
    expect(script).toContain("\nmaxmemory $MAXMEMORY\nmaxmemory-policy allkeys-lru\n");
    // (Without the ACL's password hash, whose hex digits may hold anything.)
    expect(script.replace(/#[0-9a-f]{64}/, "#HASH")).not.toMatch(/48mb|64/);
    // The running server gets it again when the limit changes (the step's input changes, so it runs).
    const step = run.byName("redis-maxmemory");
    expect(step.inputs.environment).toMatchObject({ MEMORY_LIMIT_MB: "64", REDIS_CONTAINER: "marvel-rivals-redis" });
    expect(step.inputs.environment.SET_MAXMEMORY).toContain(MAXMEMORY_FROM_CGROUP);
    expect(step.dependencies).toContain(run.byName("redis-container").urn);
});
