// Database changes without needless restarts (issue 21): the change shape of the stateful containers, what
// the preview says each change does (components/postgresChanges.ts, from what the read of the running
// container prints), the major-version check before the container, and postgresSettings from the stack
// config to the SQL that applies it. The odin stack under mocks, with settings and a memory limit.
import { beforeAll, describe, expect, it } from "vitest";
import {
    RESTART_DOWNTIME,
    majorOfTag,
    parseReadout,
    planPostgres,
    readSettingsSql,
    settingsSql,
    type PostgresDesired,
} from "../../components/postgresChanges";
import { statefulContainerOptions } from "../../components/common";
import type { ProgramRun } from "../../support/mockProgram";

let run: ProgramRun;

beforeAll(async () => {
    const { runProgram } = await import("../../support/mockProgram");
    run = await runProgram("odin", {
        postgresMemoryMb: "512",
        postgresSettings: JSON.stringify({ work_mem: "8MB", max_connections: 150, jit: false }),
    });
});

describe("the change shape of the stateful containers", () => {
    it("Postgres, Redis and the backup agent: in place for what Docker updates, replaced delete-first for the rest", () => {
        for (const name of ["postgres-container", "redis-container", "backups-container"]) {
            const c = run.byName(name);
            expect(c.deleteBeforeReplace, name).toBe(true);
            // No "*": a memory limit or a restart policy is updated in place.
            expect(c.replaceOnChanges, name).not.toContain("*");
            // A container left with an init error is still replaced by the next up.
            expect(c.replaceOnChanges, name).toContain("#initerror");
            // What the provider writes to the state without applying it must replace.
            expect(c.replaceOnChanges, name).toEqual(expect.arrayContaining(["healthcheck", "tmpfs"]));
        }
        // The app (behind Caddy on odin) starts each version beside the old one instead (components/app.ts).
        expect(run.byName("app-container").replaceOnChanges).toEqual([]);
        expect(run.byName("app-container").deleteBeforeReplace).toBe(false);
    });

    it("a memory limit is changed in place, but removing one replaces: Docker leaves a zero Memory as it was", () => {
        expect(statefulContainerOptions(512).replaceOnChanges).not.toContain("memory");
        expect(statefulContainerOptions(0).replaceOnChanges).toEqual(expect.arrayContaining(["memory", "memorySwap"]));
        expect(statefulContainerOptions(undefined).replaceOnChanges).toContain("memory");
        expect(run.byName("postgres-container").replaceOnChanges).not.toContain("memory");
        // Both have a limit by default (issue 24); a stack that sets 0 gets the replacement above.
        expect(run.byName("redis-container").replaceOnChanges).not.toContain("memory");
    });

    it("the preview's words for a memory limit: in place when set or changed, a replacement when removed, nothing when equal", async () => {
        const { memoryChange } = await import("../../components/common");
        expect(memoryChange(0, 64)).toEqual({ what: "memory limit none -> 64 MB", inPlace: true });
        expect(memoryChange(64 * 1024 * 1024, 128)).toEqual({ what: "memory limit 64 MB -> 128 MB", inPlace: true });
        expect(memoryChange(64 * 1024 * 1024, 0)).toEqual({
            what: "the memory limit is removed (64 MB -> none; Docker cannot remove one in place)",
            inPlace: false,
        });
        expect(memoryChange(64 * 1024 * 1024, 64)).toBeUndefined();
        expect(memoryChange(0, undefined)).toBeUndefined();
    });

    it("Postgres is given its grace to stop on a replacement", () => {
        expect(run.byName("postgres-container").inputs.destroyGraceSeconds).toBe(60);
    });
});

describe("the major-version check", () => {
    it("runs on the pulled image against the data directory before the container, and again for each new image", () => {
        const check = run.byName("postgres-major-version");
        const container = run.byName("postgres-container");
        expect(container.dependencies).toContain(check.urn);
        expect(check.dependencies).toContain(run.byName("postgres-image").urn);
        expect(check.inputs.environment).toMatchObject({
            DOCKER_HOST: "ssh://root@odin",
            DATA_DIR: "/mnt/user/appdata/marvel-rivals-stats/postgres",
        });
        expect(check.inputs.environment.PG_IMAGE).toMatch(/^sha256:/);
        expect(check.inputs.triggers).toEqual([check.inputs.environment.PG_IMAGE]);
        expect(check.inputs.environment.REFUSAL).toBe(
            `the data directory is PostgreSQL {DATA}, the image postgres:16-alpine is PostgreSQL {IMAGE}: PostgreSQL {IMAGE} cannot start on it, so the up refuses before touching the running container. Upgrade the data first (npm run upgrade -- --stack odin --to postgres:16-alpine), or set postgresImage back to a PostgreSQL {DATA} image.`,
        );
    });

    it("reads the major of an image from its tag when the engine does not have it yet", () => {
        expect(majorOfTag("postgres:17-alpine")).toBe("17");
        expect(majorOfTag("postgres:16.4")).toBe("16");
        expect(majorOfTag("registry:5000/postgres:16")).toBe("16");
        expect(majorOfTag("postgres:latest")).toBeUndefined();
        expect(majorOfTag("postgres")).toBeUndefined();
    });
});

describe("postgresSettings", () => {
    it("reach the settings step as SQL after the role's password, every value as text", () => {
        const step = run.byName("postgres-settings");
        expect(step.dependencies).toContain(run.byName("postgres-password").urn);
        expect(step.inputs.environment.NAMES).toBe("work_mem,max_connections,jit");
        expect(step.inputs.environment.SET_SQL).toBe(
            "ALTER SYSTEM SET work_mem = '8MB';\nALTER SYSTEM SET max_connections = '150';\nALTER SYSTEM SET jit = 'false';\nSELECT pg_reload_conf();",
        );
        expect(step.inputs.environment.DOCKER_HOST).toBe("ssh://root@odin");
    });

    it("quote values as SQL literals and refuse names that are not setting names", () => {
        expect(settingsSql({ search_path: "'$user', public" }).SET_SQL).toContain(
            "ALTER SYSTEM SET search_path = '''$user'', public';",
        );
        expect(() => settingsSql({ "work_mem; DROP TABLE x": "1" })).toThrow();
        expect(() => readSettingsSql(["Work_Mem"])).toThrow();
        expect(settingsSql({}).SET_SQL).toBe("SELECT pg_reload_conf();");
    });
});

const desired = (over: Partial<PostgresDesired> = {}): PostgresDesired => ({
    containerName: "marvel-rivals-postgres",
    image: "postgres:16-alpine",
    memoryLimitMb: 0,
    settings: {},
    upgradeHint: "HINT",
    ...over,
});
const readout = (lines: string[]) => parseReadout(lines.join("\n"));
const RUNNING = ["container true sha256:aaa 0", "image sha256:aaa 16", "data 16", "settings []"];
const who = "postgres (marvel-rivals-postgres)";

describe("what the preview says a change does", () => {
    it("nothing when nothing changes", () => {
        expect(planPostgres(readout(RUNNING), desired())).toEqual({ info: [], warn: [], unknownSettings: [] });
    });

    it("a first deploy (the unit tier's mocks answer `none`): created, nothing else", () => {
        expect(planPostgres(parseReadout("none"), desired({ settings: { work_mem: "8MB" } }))).toEqual({
            info: [`${who}: no container yet: created`],
            warn: [],
            unknownSettings: [],
        });
    });

    it("a new memory limit: in place, no restart; a removed one: a replacement with its downtime", () => {
        expect(planPostgres(readout(RUNNING), desired({ memoryLimitMb: 512 })).info).toEqual([
            `${who}: memory limit none -> 512 MB: updated in place, no restart`,
        ]);
        const limited = ["container true sha256:aaa 536870912", ...RUNNING.slice(1)];
        expect(planPostgres(readout(limited), desired({ memoryLimitMb: 0 })).warn).toEqual([
            `${who}: the memory limit is removed (512 MB -> none; Docker cannot remove one in place): the container is replaced, the database stops gracefully first (${RESTART_DOWNTIME})`,
        ]);
    });

    it("a new image: a replacement, announced with its downtime", () => {
        const r = readout(["container true sha256:aaa 0", "image sha256:bbb 16", "data 16", "settings []"]);
        expect(planPostgres(r, desired({ image: "postgres:16.9-alpine" })).warn).toEqual([
            `${who}: the image changes to postgres:16.9-alpine: the container is replaced, the database stops gracefully first (about 5 s of downtime, at most 60 s for the stop)`,
        ]);
    });

    it("an image of another major: the data directory's version and the refusal to come", () => {
        const r = readout(["container true sha256:aaa 0", "image sha256:bbb 17", "data 16", "settings []"]);
        const plan = planPostgres(r, desired({ image: "postgres:17-alpine" }));
        expect(plan.warn).toContain(
            `${who}: the data directory is PostgreSQL 16, the image postgres:17-alpine is PostgreSQL 17: PostgreSQL 17 cannot start on it, so the up refuses before touching the running container. Upgrade the data first (HINT), or set postgresImage back to a PostgreSQL 16 image.`,
        );
        // Not pulled yet: its tag tells.
        const notPulled = readout(["container true sha256:aaa 0", "image absent unknown", "data 16", "settings []"]);
        expect(planPostgres(notPulled, desired({ image: "postgres:17-alpine" })).warn[0]).toMatch(
            /data directory is PostgreSQL 16, the image postgres:17-alpine is PostgreSQL 17/,
        );
    });

    it("settings: a reload for sighup and user ones, a graceful restart for postmaster ones, unknown names refused", () => {
        const settings = JSON.stringify([
            { name: "work_mem", context: "user", file: null, current: "4MB" },
            { name: "shared_buffers", context: "postmaster", file: null, current: "128MB" },
            { name: "max_connections", context: "postmaster", file: "100", current: "100" },
            { name: "log_min_duration_statement", context: "superuser", file: "250ms", current: "250ms" },
            { name: "wrok_mem", context: null, file: null, current: null },
            { name: "server_version", context: "internal", file: null, current: "16.4" },
        ]);
        const r = readout([...RUNNING.slice(0, 3), `settings ${settings}`]);
        const plan = planPostgres(
            r,
            desired({
                settings: {
                    work_mem: "8MB",
                    shared_buffers: "256MB",
                    max_connections: "100",
                    log_min_duration_statement: "250ms",
                    wrok_mem: "1MB",
                    server_version: "17",
                },
            }),
        );
        expect(plan.info).toEqual([
            `${who}: setting work_mem 4MB (its default) -> 8MB: applied with ALTER SYSTEM and a reload, no restart`,
        ]);
        expect(plan.warn).toEqual([
            `${who}: setting shared_buffers 128MB (its default) -> 256MB needs a restart (context postmaster): applied with ALTER SYSTEM, then the database restarts gracefully (${RESTART_DOWNTIME})`,
        ]);
        expect(plan.unknownSettings).toEqual(["wrok_mem", "server_version"]);
    });

    it("a postmaster setting already running at the new value needs no restart", () => {
        const settings = JSON.stringify([
            { name: "max_connections", context: "postmaster", file: null, current: "100" },
        ]);
        const plan = planPostgres(readout([...RUNNING.slice(0, 3), `settings ${settings}`]), {
            ...desired(),
            settings: { max_connections: "100" },
        });
        expect(plan.warn).toEqual([]);
        expect(plan.info[0]).toMatch(
            /max_connections 100 \(its default\) -> 100: applied with ALTER SYSTEM and a reload/,
        );
    });

    it("says what it could not read instead of failing the preview", () => {
        const r = readout([...RUNNING.slice(0, 3), "settings psql: error: connection refused"]);
        expect(r.settingsError).toBe("psql: error: connection refused");
        expect(planPostgres(r, desired({ settings: { work_mem: "8MB" } })).info).toEqual([
            `${who}: the settings could not be read (psql: error: connection refused); the up applies postgresSettings`,
        ]);
        const stopped = readout(["container false sha256:aaa 0", "image sha256:aaa 16", "data 16"]);
        expect(planPostgres(stopped, desired({ settings: { work_mem: "8MB" } })).info).toEqual([
            `${who}: not running: postgresSettings are checked and applied by the up`,
        ]);
    });
});
