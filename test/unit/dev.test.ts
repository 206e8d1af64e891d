// The dev stack's resource graph, from the real Pulumi.yaml + Pulumi.dev.yaml, under Pulumi mocks.
import { beforeAll, describe, expect, test } from "vitest";
import * as path from "node:path";
import { PROJECT_ROOT } from "../../support/stackConfig";
import { defaultOwnerOf } from "../../config";
import type { ProgramRun, Registered } from "../../support/mockProgram";

let run: ProgramRun;
const dataDir = path.join(PROJECT_ROOT, "data");

beforeAll(async () => {
    const { runProgram } = await import("../../support/mockProgram");
    run = await runProgram("dev");
});

const container = (name: string) => run.byName(`${name}-container`).inputs;
const dependsOn = (r: Registered, other: Registered) => r.dependencies.includes(other.urn);

describe("dev stack", () => {
    test("declares one explicit Docker provider on the local engine, its host written out", () => {
        const providers = run.ofType("pulumi:providers:docker");
        expect(providers).toHaveLength(1);
        // Explicit, so the provider, the image build and the docker CLI steps reach the same engine.
        expect(providers[0].inputs).toEqual({ host: "unix:///var/run/docker.sock" });
        for (const step of run.ofType("command:local:Command"))
            expect(step.inputs.environment.DOCKER_HOST, step.name).toBe("unix:///var/run/docker.sock");
    });

    test("creates the bridge network marvel-rivals-network", () => {
        const network = run.byName("network-bridge");
        expect(network.type).toBe("docker:index/network:Network");
        expect(network.inputs).toMatchObject({ name: "marvel-rivals-network", driver: "bridge" });
    });

    test("pulls nothing by name into containers: every container runs an image ID", () => {
        for (const c of run.ofType("docker:index/container:Container")) {
            expect(c.inputs.image, c.name).toMatch(/^sha256:[0-9a-f]{64}$/);
        }
        expect(run.byName("postgres-image").inputs).toMatchObject({ name: "postgres:16-alpine", keepLocally: true });
        expect(run.byName("redis-image").inputs).toMatchObject({ name: "redis:7-alpine", keepLocally: true });
    });

    test("resolves ./data inside the project and mounts every data directory under it", () => {
        expect(run.outputs.dataDir.value).toBe(dataDir);
        expect(container("postgres").volumes).toEqual([
            { hostPath: `${dataDir}/postgres`, containerPath: "/var/lib/postgresql/data" },
        ]);
        expect(container("redis").volumes).toEqual([{ hostPath: `${dataDir}/redis`, containerPath: "/data" }]);
        expect(container("app").volumes).toEqual([
            { hostPath: `${dataDir}/output`, containerPath: "/app/output" },
            { hostPath: `${dataDir}/logs`, containerPath: "/app/logs" },
            { hostPath: path.join(PROJECT_ROOT, "app", "src"), containerPath: "/app/src", readOnly: true },
            // The credentials, one read-only file each (issue 24).
            {
                hostPath: `${dataDir}/secrets/app_database_url`,
                containerPath: "/run/secrets/database_url",
                readOnly: true,
            },
            { hostPath: `${dataDir}/secrets/app_redis_url`, containerPath: "/run/secrets/redis_url", readOnly: true },
            { hostPath: `${dataDir}/secrets/app_api_key`, containerPath: "/run/secrets/api_key", readOnly: true },
        ]);
    });

    test("creates the host directories with the caller's uid:gid before any container mounts them", () => {
        const mkdir = run.byName("data-mkdir");
        expect(mkdir.type).toBe("command:local:Command");
        expect(mkdir.inputs.environment).toMatchObject({
            DATA_DIR: dataDir,
            SUBDIRS: "postgres redis output logs backups",
            OWNER: defaultOwnerOf({ uid: process.getuid!(), gid: process.getgid!() }),
        });
        // no delete command: destroy never removes data directories
        expect(mkdir.inputs.delete).toBeUndefined();
        for (const name of ["postgres-container", "redis-container", "app-container"]) {
            expect(dependsOn(run.byName(name), mkdir), name).toBe(true);
        }
    });

    test("publishes Postgres, Redis and the app on 127.0.0.1 only", () => {
        expect(container("postgres").ports).toEqual([{ internal: 5432, external: 5432, ip: "127.0.0.1" }]);
        expect(container("redis").ports).toEqual([{ internal: 6379, external: 6379, ip: "127.0.0.1" }]);
        expect(container("app").ports).toEqual([{ internal: 8000, external: 8000, ip: "127.0.0.1" }]);
    });

    test("Postgres: PGDATA in a subdirectory, pg_isready healthcheck over TCP, waits until healthy", () => {
        const pg = container("postgres");
        expect(pg.envs).toContain("PGDATA=/var/lib/postgresql/data/pgdata");
        expect(pg.envs).toContain("POSTGRES_DB=marvel_rivals");
        expect(pg.envs).toContain("POSTGRES_USER=marvel_stats");
        expect(pg.healthcheck).toEqual({
            tests: ["CMD-SHELL", 'pg_isready -h 127.0.0.1 -p 5432 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'],
            // As the provider reads them back (Go's Duration.String()), and no startInterval: Docker < 25
            // refuses to create a container with one.
            interval: "1s",
            timeout: "5s",
            retries: 15,
            startPeriod: "1m0s",
        });
        expect(pg.wait).toBe(true);
        expect(pg.networksAdvanced).toEqual([{ name: "marvel-rivals-network", aliases: ["postgres"] }]);
    });

    test("Redis: an ACL with the app's password as a hash, no environment, no persistence in dev, redis-cli healthcheck", async () => {
        const { MAXMEMORY_FROM_CGROUP, MAKE_ADMIN_PASSWORD, redisAclLines } = await import("../../components/redis");
        const { createHash } = await import("node:crypto");
        const redis = container("redis");
        const password = "generated-redis-password-0123456789";
        expect(redis.command.join(" ")).not.toContain(password);
        expect(redis.command).toEqual([
            "sh",
            "-c",
            `${MAXMEMORY_FROM_CGROUP}\n${MAKE_ADMIN_PASSWORD}\nexec docker-entrypoint.sh redis-server - "$@" <<EOF\n${redisAclLines(createHash("sha256").update(password).digest("hex")).join("\n")}\nmaxmemory $MAXMEMORY\nmaxmemory-policy allkeys-lru\nsave ""\nEOF`,
            "redis-server",
            "--appendonly",
            "no",
        ]);
        // The provider refuses to create a container with an empty item in `command`.
        expect(redis.command).not.toContain("");
        expect(redis.envs).toBeUndefined();
        expect(redis.healthcheck.tests).toEqual([
            "CMD-SHELL",
            "redis-cli --no-auth-warning --user health --pass - ping | grep -q PONG",
        ]);
        expect(redis.wait).toBe(true);
    });

    test("the role's password is set to the stack's through the container's socket, never in argv", () => {
        const step = run.byName("postgres-password");
        expect(step.type).toBe("command:local:Command");
        expect(dependsOn(step, run.byName("postgres-container"))).toBe(true);
        expect(step.inputs.create).toContain('docker exec -i "$PG_CONTAINER" psql');
        expect(step.inputs.create).not.toContain("generated-db-password");
        expect(step.inputs.environment).toMatchObject({
            PG_CONTAINER: "marvel-rivals-postgres",
            PG_USER: "marvel_stats",
            PG_DB: "marvel_rivals",
        });
        expect(step.inputs.environment.ROLE_SQL).toMatch(/^ALTER ROLE "marvel_stats" PASSWORD 'SCRAM-SHA-256\$4096:/);
        expect(step.inputs.environment.ROLE_SQL).not.toContain("generated-db-password");
        expect(step.secretInputs).toContain("environment");
    });

    test("every container restarts unless stopped and rotates json-file logs", () => {
        const containers = run.ofType("docker:index/container:Container");
        expect(containers.map((c) => c.inputs.name).sort()).toEqual([
            "marvel-rivals-app",
            "marvel-rivals-backup",
            "marvel-rivals-postgres",
            "marvel-rivals-redis",
        ]);
        for (const c of containers) {
            expect(c.inputs.restart, c.name).toBe("unless-stopped");
            expect(c.inputs.logDriver, c.name).toBe("json-file");
            expect(c.inputs.logOpts, c.name).toEqual({ "max-size": "10m", "max-file": "3" });
            expect(c.inputs.networkMode, c.name).toBe("bridge");
            // Issue 24: a memory limit by default on every stack (Pulumi.yaml; the backup agent's in index.ts).
            expect(c.inputs.memory, c.name).toBeGreaterThan(0);
        }
    });

    test("builds the app's dev target from app/Dockerfile with the repository as context, never on preview", () => {
        const image = run.byName("app-image");
        expect(image.type).toBe("docker:index/image:Image");
        expect(image.inputs).toMatchObject({
            imageName: "marvel-rivals-stats-app:dev",
            skipPush: true,
            buildOnPreview: false,
            build: { context: PROJECT_ROOT, dockerfile: "app/Dockerfile", target: "dev" },
        });
    });

    test("the migration step runs after Postgres is healthy, and the app after the migration step", () => {
        const step = run.byName("migrations-up");
        expect(dependsOn(step, run.byName("postgres-container"))).toBe(true);
        expect(dependsOn(step, run.byName("postgres-password"))).toBe(true);
        expect(dependsOn(run.byName("app-container"), step)).toBe(true);
        expect(dependsOn(run.byName("app-container"), run.byName("redis-container"))).toBe(true);
        expect(container("postgres").wait).toBe(true);
    });

    test("the migration step keeps the database URL out of the command line and re-runs when migrations change", async () => {
        const step = run.byName("migrations-up");
        expect(step.inputs.create).not.toMatch(/postgres:\/\//);
        expect(step.inputs.create).toContain("-e DATABASE_URL_FILE=/run/secrets/database_url");
        expect(step.inputs.create).toContain('-v "$HOST_DATABASE_URL_FILE:/run/secrets/database_url:ro"');
        expect(step.inputs.create).toContain('--network "$MIGRATE_NETWORK"');
        expect(step.inputs.create).toContain("migrate up --json");
        // The owner's URL is a file (issue 24), written by the secrets step.
        expect(step.inputs.environment.DATABASE_URL).toBeUndefined();
        expect(step.inputs.environment.HOST_DATABASE_URL_FILE).toBe(`${dataDir}/secrets/owner_database_url`);
        const secrets = run.byName("secrets-write");
        expect(secrets.inputs.environment.SECRET_owner_database_url).toBe(
            "postgres://marvel_stats:generated-db-password-0123456789@postgres:5432/marvel_rivals",
        );
        expect(secrets.inputs.create).not.toMatch(/generated-/);
        expect(secrets.secretInputs).toContain("environment");
        expect(step.inputs.environment.HOST_BACKUP_DIR).toBeUndefined();
        expect(step.inputs.environment.MIGRATE_BACKUP_CONTAINER).toBeUndefined();
        const { hashMigrations } = await import("../../components/migrations");
        expect(step.inputs.triggers).toEqual([hashMigrations(path.join(PROJECT_ROOT, "migrations"))]);
    });

    test("the app gets its environment, runs as the directory owner and is healthy only when ready", () => {
        const app = container("app");
        const env = Object.fromEntries(
            app.envs.map((e: string) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
        );
        expect(env).toEqual({
            // Files, not values (issue 24): the secrets step writes them.
            DATABASE_URL_FILE: "/run/secrets/database_url",
            REDIS_URL_FILE: "/run/secrets/redis_url",
            MARVEL_RIVALS_API_KEY_FILE: "/run/secrets/api_key",
            CREDENTIALS_VERSION: expect.stringMatching(/^[0-9a-f]{8}$/),
            APP_ENV: "development",
            LOG_LEVEL: "debug",
            RATE_LIMIT_REQUESTS_PER_MINUTE: "7",
        });
        const secrets = run.byName("secrets-write").inputs.environment;
        // The first of the app's two login roles (npm run rotate switches to the other).
        expect(secrets.SECRET_app_database_url).toBe(
            "postgres://marvel_stats_a:generated-app-db-password-0123456789@postgres:5432/marvel_rivals",
        );
        expect(secrets.SECRET_app_redis_url).toBe("redis://app:generated-redis-password-0123456789@redis:6379");
        expect(secrets.SECRET_app_api_key).toBe("");
        expect(app.user).toBe(defaultOwnerOf({ uid: process.getuid!(), gid: process.getgid!() }));
        expect(app.healthcheck.tests).toEqual(["CMD", "node", "/app/healthcheck.js"]);
        // Ready is the readiness gate's to say (app-ready), bounded and naming what is missing.
        expect(app.wait).toBe(false);
        expect(run.byName("app-ready").dependencies).toContain(run.byName("app-container").urn);
        expect(app.networksAdvanced).toEqual([
            { name: "marvel-rivals-network", aliases: ["app", "marvel-rivals-app"] },
        ]);
        expect(app.labels.map((l: { label: string }) => l.label)).toEqual([
            "marvel-rivals-stats.stack",
            "marvel-rivals-stats.state",
            "marvel-rivals-stats.role",
            "marvel-rivals-stats.version",
        ]);
        // A port on the host cannot be shared by two versions: the app keeps its name and is replaced in place.
        expect(app.name).toBe("marvel-rivals-app");
    });

    test("secrets reach the engine as secrets; the database container's environment holds none", () => {
        for (const name of ["secrets-write", "postgres-password"])
            expect(run.byName(name).secretInputs, name).toContain("environment");
        // No container's environment holds a credential (issue 24); the backup agent is another issue's.
        for (const name of ["redis-container", "app-container", "postgres-container"])
            expect(JSON.stringify(run.byName(name).inputs.envs ?? []), name).not.toMatch(
                /generated-|:\/\/[^/]*:[^@]*@/,
            );
        // initdb's password is read from the kernel (a random UUID) and never stored; the credentials step
        // sets the real one: a new password changes nothing of the container.
        expect(run.byName("postgres-container").inputs.envs).toContain(
            "POSTGRES_PASSWORD_FILE=/proc/sys/kernel/random/uuid",
        );
        expect(JSON.stringify(run.byName("postgres-container").inputs.envs)).not.toContain("generated-db-password");
    });

    test("connection strings are secret outputs reachable from the host", () => {
        expect(run.outputs.databaseUrl).toEqual({
            value: "postgres://marvel_stats:generated-db-password-0123456789@127.0.0.1:5432/marvel_rivals",
            secret: true,
        });
        expect(run.outputs.redisUrl).toEqual({
            value: "redis://app:generated-redis-password-0123456789@127.0.0.1:6379",
            secret: true,
        });
        expect(run.outputs.appUrl).toEqual({ value: "http://127.0.0.1:8000", secret: false });
        // The laptop's own engine: the URL above is the way in, no tunnel.
        expect(run.outputs.databaseTunnel?.value).toBeUndefined();
        expect(run.outputs.networkName.value).toBe("marvel-rivals-network");
        expect(run.outputs.migrationsApplied).toEqual({
            value: [
                { name: "001_initial_schema", appliedAt: "2026-11-22T00:00:00.000Z" },
                { name: "002_add_indexes", appliedAt: "2026-11-22T00:00:00.000Z" },
            ],
            secret: false,
        });
    });

    test("fixed names are replaced delete-first, the app on every change, and containers stop with a grace period", () => {
        const grace: Record<string, number> = {};
        for (const c of run.ofType("docker:index/container:Container")) {
            expect(c.deleteBeforeReplace, c.name).toBe(true);
            grace[c.inputs.name] = c.inputs.destroyGraceSeconds;
        }
        // The stateful containers' shapes are test/unit/database-changes.test.ts's.
        expect(run.byName("app-container").replaceOnChanges).toEqual(["*"]);
        expect(grace).toEqual({
            "marvel-rivals-postgres": 60,
            "marvel-rivals-redis": 30,
            "marvel-rivals-app": 10,
            "marvel-rivals-backup": 30,
        });
        const network = run.byName("network-bridge");
        expect(network.deleteBeforeReplace).toBe(true);
        // The host step frees a name left by a lost state before the network takes it.
        expect(dependsOn(network, run.byName("data-mkdir"))).toBe(true);
        // Nothing is protected or retained: data lives in host directories that no resource deletes.
        expect(run.resources.filter((r) => r.protect || r.retainOnDelete)).toEqual([]);
    });

    test("the host step frees the stack's names from its own orphans, told apart by labels with this state's ID", () => {
        const step = run.byName("data-mkdir");
        expect(step.inputs.environment).toMatchObject({
            STACK_CONTAINERS:
                "marvel-rivals-postgres marvel-rivals-redis marvel-rivals-app marvel-rivals-pgadmin marvel-rivals-backup",
            STACK_NETWORK: "marvel-rivals-network",
            STACK_LABEL: "marvel-rivals-stats.stack",
            STACK: "dev",
            STATE_LABEL: "marvel-rivals-stats.state",
            STATE_ID: "00112233aabbccdd",
            STOP_GRACE: "60",
        });
        for (const script of [step.inputs.create, step.inputs.update]) {
            expect(script).toContain('[ "$(label container "$STATE_LABEL" "$name")" = "$STATE_ID" ] && continue');
            expect(script).toContain('docker stop -t "$STOP_GRACE" "$name"');
            expect(script).toContain("mkdir -p");
        }
        expect(step.inputs.triggers).toBeUndefined();
        // Every container and the network carry the labels the step reads.
        const identity = [
            { label: "marvel-rivals-stats.stack", value: "dev" },
            { label: "marvel-rivals-stats.state", value: "00112233aabbccdd" },
        ];
        for (const r of [...run.ofType("docker:index/container:Container"), run.byName("network-bridge")])
            expect(r.inputs.labels, r.name).toEqual(expect.arrayContaining(identity));
    });

    test("hot reload: the migration step mounts app/src read-only, as the dev image runs the source", () => {
        const step = run.byName("migrations-up");
        expect(step.inputs.environment.HOST_APP_SRC).toBe(path.join(PROJECT_ROOT, "app", "src"));
        expect(step.inputs.create).toContain('-v "$HOST_APP_SRC:/app/src:ro"');
    });

    test("fixed-name resources use component type tokens and are parented", () => {
        for (const r of run.resources) {
            if (r.type.startsWith("marvel-rivals-stats:")) {
                expect(r.type).toMatch(/^marvel-rivals-stats:[a-z]+:[A-Z][A-Za-z]+$/);
            } else if (!r.type.startsWith("pulumi:providers:") && !r.type.startsWith("random:")) {
                expect(r.parent, r.name).toMatch(/marvel-rivals-stats:[a-z]+:[A-Z]/);
            }
        }
        expect(run.ofType("marvel-rivals-stats:tools:PgAdmin")).toHaveLength(0);
    });
});
