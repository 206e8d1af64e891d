// The compiled server as a real process against a real PostgreSQL and Redis: config errors, start-up,
// Redis and the database going away and coming back, and SIGTERM with a request in flight.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConnection } from "node:net";
import { once } from "node:events";
import { join } from "node:path";
import Redis from "ioredis";
import pg from "pg";
import { freePort } from "./support/ports";
import { buildApp, runNode, startServer, type Build, type ServerProcess } from "./support/build";
import { eventually, migratedDatabase, startStack, testEnv, withPool, type Stack } from "./support/stack";
import { seed } from "../src/seed";

let stack: Stack;
let build: Build;
let databaseUrl: string;
const servers: ServerProcess[] = [];

async function get(url: string): Promise<{ status: number; body: any }> {
    const res = await fetch(url, { signal: AbortSignal.timeout(8000) });
    return { status: res.status, body: await res.json() };
}

async function start(extra: Record<string, string> = {}): Promise<ServerProcess> {
    const server = startServer(
        join(build.dir, "server.js"),
        testEnv(databaseUrl, stack.redis.url, { LOG_LEVEL: "info", ...extra }),
        await freePort(),
    );
    servers.push(server);
    const ready = await eventually(async () => (await get(`${server.url}/health/ready`)).status === 200, 10_000, 50);
    if (!ready) throw new Error(`server never became ready; output:\n${server.output()}`);
    return server;
}

/** The container's HEALTHCHECK (app/healthcheck.js) against `server`. */
function healthcheck(server: ServerProcess) {
    return runNode(join(__dirname, "../healthcheck.js"), { PORT: new URL(server.url).port }, 10_000);
}

beforeAll(async () => {
    [stack, build] = await Promise.all([startStack(), Promise.resolve(buildApp())]);
    databaseUrl = await migratedDatabase(stack.postgres);
    await withPool(databaseUrl, (pool) => seed(pool));
});

afterAll(async () => {
    for (const s of servers) if (s.child.exitCode === null) s.child.kill("SIGKILL");
    await stack?.cleanup();
    build?.cleanup();
});

describe("configuration errors", () => {
    it("exit 1 with one message listing every bad variable, no stack trace, no secret", async () => {
        const result = await runNode(join(build.dir, "server.js"), {
            REDIS_URL: "http://:hunter2@cache:6379",
            PORT: "http",
            LOG_LEVEL: "verbose",
        });
        expect(result.code).toBe(1);
        expect(result.stdout).toBe("");
        expect(result.stderr).toBe(
            [
                "Invalid configuration: 4 problems",
                "  - DATABASE_URL is required: set it to a URL like postgres://USER:PASSWORD@HOST:5432/DATABASE",
                "  - REDIS_URL must start with redis:// or rediss:// (got http://...): expected redis://:PASSWORD@HOST:6379",
                '  - PORT must be an integer from 1 to 65535 (got "http")',
                '  - LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "verbose")',
                "Fix the environment variables above and start again.",
                "",
            ].join("\n"),
        );
    });
});

describe("start-up", () => {
    it("keeps its port closed until it is ready (the database answers), then opens it: a proxy never sends it traffic before", async () => {
        await stack.postgres.stop();
        let server: ServerProcess | undefined;
        try {
            server = startServer(
                join(build.dir, "server.js"),
                testEnv(databaseUrl, stack.redis.url, { LOG_LEVEL: "info" }),
                await freePort(),
            );
            servers.push(server);
            // Long enough for a start-up that listens at once (well under a second) to have done so.
            await new Promise((r) => setTimeout(r, 2500));
            const refused = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(2000) }).then(
                () => "answered",
                (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message,
            );
            expect(refused).toBe("ECONNREFUSED");
            expect(server.child.exitCode).toBeNull();
            expect(server.output()).toContain("not ready yet: the port stays closed");
        } finally {
            await stack.postgres.start();
        }
        const opened = await eventually(async () => (await get(`${server!.url}/health/ready`)).status === 200, 20_000);
        expect(opened, server!.output()).toBe(true);
        server!.child.kill("SIGTERM");
        expect(await server!.exited).toBe(0);
    });
});

describe("the running service", () => {
    let server: ServerProcess;
    beforeAll(async () => {
        server = await start({ MARVEL_RIVALS_API_KEY: "api-key-never-logged" });
    });

    it("logs JSON lines that name where it connects, without any password or key", async () => {
        await get(`${server.url}/api/heroes`);
        const lines = server.output().trim().split("\n");
        for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
        expect(server.output()).toContain(`"database":"postgres://127.0.0.1:${stack.postgres.port}/`);
        expect(server.output()).not.toContain(stack.postgres.password);
        expect(server.output()).not.toContain(stack.redis.password);
        expect(server.output()).not.toContain("api-key-never-logged");
    });

    it("with a wrong Redis password: neither that password nor a request's Bearer token appears in its output", async () => {
        const wrong = "wrong-redis-password-in-env";
        const redisUrl = `redis://:${wrong}@127.0.0.1:${stack.redis.port}`;
        const bad = startServer(
            join(build.dir, "server.js"),
            testEnv(databaseUrl, redisUrl, { LOG_LEVEL: "debug" }),
            await freePort(),
        );
        servers.push(bad);
        try {
            expect(await eventually(async () => (await get(`${bad.url}/health`)).status === 200, 10_000, 50)).toBe(
                true,
            );
            const res = await fetch(`${bad.url}/api/heroes?rank=%3Bdrop`, {
                headers: { authorization: "Bearer secret-token-xyz" },
                signal: AbortSignal.timeout(8000),
            });
            expect(res.status).toBe(400);
            // The refused AUTH is logged (a warning, then a debug line per reconnection attempt), as is the 400.
            const logged = await eventually(
                async () =>
                    bad.output().includes('"msg":"Redis is still unreachable"') &&
                    bad.output().includes('"msg":"request refused"'),
                10_000,
            );
            expect(logged, bad.output()).toBe(true);
            expect(bad.output()).toMatch(/WRONGPASS|NOAUTH|invalid (username-)?password/i);
            expect(bad.output()).not.toContain(wrong);
            expect(bad.output()).not.toContain("secret-token-xyz");
        } finally {
            bad.child.kill("SIGTERM");
            await bad.exited;
        }
    });

    it("with Redis down: liveness and the container's healthcheck pass, /health/redis 503, readiness degraded but 200, /api answers from the database; then recovers", async () => {
        await stack.redis.stop();
        try {
            expect((await get(`${server.url}/health`)).status).toBe(200);
            expect((await healthcheck(server)).code).toBe(0);
            const redis = await get(`${server.url}/health/redis`);
            expect(redis.status).toBe(503);
            expect(redis.body).toMatchObject({ status: "error", dependency: "redis" });
            // The API serves without its cache: the proxy keeps sending traffic.
            const ready = await get(`${server.url}/health/ready`);
            expect(ready.status).toBe(200);
            expect(ready.body).toMatchObject({
                status: "degraded",
                degraded: ["redis"],
                checks: { redis: { ok: false }, database: { ok: true }, migrations: { ok: true } },
            });
            const heroes = await get(`${server.url}/api/heroes?rank=Silver`);
            expect(heroes.status).toBe(200);
            expect(heroes.body).toMatchObject({ cached: false, cache: "unavailable", rank: "Silver" });
            expect(heroes.body.heroes.length).toBeGreaterThan(0);
        } finally {
            await stack.redis.start();
        }
        expect(await eventually(async () => (await get(`${server.url}/health/redis`)).status === 200, 10_000)).toBe(
            true,
        );
        expect((await get(`${server.url}/health/ready`)).body.status).toBe("ready");
        expect((await get(`${server.url}/api/heroes?rank=Silver`)).body.cache).toBe("miss");
        expect((await get(`${server.url}/api/heroes?rank=Silver`)).body.cache).toBe("hit");
        expect(server.child.exitCode).toBeNull();
    });

    it("with the database down: 503 JSON naming it, the process stays up and recovers by itself", async () => {
        await stack.postgres.stop();
        try {
            expect((await get(`${server.url}/health`)).status).toBe(200);
            const summary = await get(`${server.url}/api/stats/summary`);
            expect(summary.status).toBe(503);
            expect(summary.body).toMatchObject({ error: "Service Unavailable", dependency: "database" });
            expect(summary.body.message).toMatch(/^the database is unavailable: /);
            const heroes = await get(`${server.url}/api/heroes?rank=Platinum`);
            expect(heroes.status).toBe(503);
            expect(heroes.body.dependency).toBe("database");
            const ready = await get(`${server.url}/health/ready`);
            expect(ready.status).toBe(503);
            expect(ready.body.failed).toEqual(["database", "migrations"]);
            expect((await get(`${server.url}/health/db`)).status).toBe(503);
            // Liveness: restarting the app would not bring the database back.
            expect((await healthcheck(server)).code).toBe(0);
            expect(server.child.exitCode).toBeNull();
        } finally {
            await stack.postgres.start();
        }
        expect(await eventually(async () => (await get(`${server.url}/health/ready`)).status === 200, 15_000)).toBe(
            true,
        );
        expect((await get(`${server.url}/api/stats/summary`)).status).toBe(200);
        expect(server.child.exitCode).toBeNull();
    });

    it("on SIGTERM: stops accepting, finishes the request in flight, closes PostgreSQL and Redis, exits 0 within 10 s", async () => {
        const admin = new Redis(stack.redis.url);
        admin.on("error", () => undefined);
        await admin.flushall();
        const clientsBefore = await admin.client("LIST");
        expect(String(clientsBefore)).toContain("name=marvel-rivals-stats-app");

        // Hold the table so that a cache-missing /api/heroes blocks inside PostgreSQL.
        const locker = new pg.Client({ connectionString: databaseUrl });
        await locker.connect();
        await locker.query("BEGIN");
        await locker.query("LOCK TABLE match_participants IN ACCESS EXCLUSIVE MODE");
        const inFlight = fetch(`${server.url}/api/heroes?rank=Celestial`, { signal: AbortSignal.timeout(9000) });
        await new Promise((r) => setTimeout(r, 300));

        const t0 = Date.now();
        server.child.kill("SIGTERM");
        // The listening socket closes at once: a new connection is refused.
        const refused = await eventually(
            () =>
                new Promise<boolean>((resolve) => {
                    const socket = createConnection({ host: "127.0.0.1", port: Number(new URL(server.url).port) });
                    socket.once("connect", () => (socket.destroy(), resolve(false)));
                    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
                }),
            2000,
            50,
        );
        expect(refused).toBe(true);
        expect(server.child.exitCode).toBeNull(); // still draining

        await new Promise((r) => setTimeout(r, 500));
        await locker.query("COMMIT");
        await locker.end();
        const res = await inFlight;
        expect(res.status).toBe(200);
        expect((await res.json()).rank).toBe("Celestial");

        const code = await server.exited;
        expect(code, server.output()).toBe(0);
        expect(Date.now() - t0).toBeLessThan(10_000);
        expect(server.output()).toContain('"msg":"stopped cleanly"');

        const sessions = await withPool(databaseUrl, (pool) =>
            pool.query(
                "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'marvel-rivals-stats-app'",
            ),
        );
        expect(sessions.rows[0].n).toBe(0);
        expect(String(await admin.client("LIST"))).not.toContain("name=marvel-rivals-stats-app");
        admin.disconnect();
    });
});

/** A raw TCP connection to `url`'s port: what it received so far, and how it ended. */
async function rawConnection(url: string) {
    const socket = createConnection({ host: "127.0.0.1", port: Number(new URL(url).port) });
    await once(socket, "connect");
    let received = "";
    socket.on("data", (d: Buffer) => (received += d.toString()));
    const ended = new Promise<string>((resolve) => {
        socket.once("close", () => resolve("closed"));
        socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    return { socket, received: () => received, ended };
}

describe("SIGTERM on a keep-alive connection", () => {
    it("a request written just after SIGTERM on an idle keep-alive connection is answered, with Connection: close", async () => {
        const s = await start();
        const { socket, received, ended } = await rawConnection(s.url);
        const request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        socket.write(request);
        expect(await eventually(async () => received().includes('{"status":"ok"}'), 5000, 10)).toBe(true);
        expect(received().toLowerCase()).toContain("connection: keep-alive");
        const first = received();

        // The connection is idle now. SIGTERM, and once the server says it is stopping, the next request.
        s.child.kill("SIGTERM");
        expect(await eventually(async () => s.output().includes('"msg":"stopping:'), 5000, 5)).toBe(true);
        socket.write(request);
        expect(await ended).toBe("closed");
        const second = received().slice(first.length);
        expect(second, `answer after SIGTERM: ${JSON.stringify(second)}`).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
        expect(second.toLowerCase()).toContain("connection: close");
        expect(second).toContain('{"status":"ok"}');
        expect(await s.exited, s.output()).toBe(0);
    });
});

describe("close() while a request is being read", () => {
    it("answers it as usual (Connection: close), not with Fastify's default 503, which a proxy would pass on", async () => {
        const s = await start();
        // A proxy's new connection whose request is half written when close() runs: the connection is busy
        // (a request begun), so close() keeps it, and the request is routed after close(), when Fastify's
        // default answers 503 ("Service Unavailable") without running the handler.
        const { socket, received, ended } = await rawConnection(s.url);
        socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        await new Promise((r) => setTimeout(r, 100));
        s.child.kill("SIGTERM");
        // Past the drain (src/server.ts, DRAIN_MS): close() has run, the listening socket is closed.
        expect(await eventually(async () => s.output().includes('"msg":"stopping:'), 5000, 5)).toBe(true);
        const refused = await eventually(
            () =>
                new Promise<boolean>((resolve) => {
                    const probe = createConnection({ host: "127.0.0.1", port: Number(new URL(s.url).port) });
                    probe.once("connect", () => (probe.destroy(), resolve(false)));
                    probe.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
                }),
            3000,
            20,
        );
        expect(refused).toBe(true);
        socket.write("\r\n");
        expect(await ended).toBe("closed");
        expect(received(), received().slice(0, 400)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
        expect(received().toLowerCase()).toContain("connection: close");
        expect(received()).toContain('{"status":"ok"}');
        expect(await s.exited, s.output()).toBe(0);
    });
});

describe("seed CLI", () => {
    const fingerprint = (url: string) =>
        withPool(url, async (pool) => {
            const q = async (sql: string) => (await pool.query<{ f: string }>(sql)).rows[0]!.f;
            return [
                await q("SELECT md5(string_agg(p::text, '|' ORDER BY username)) AS f FROM players p"),
                await q("SELECT md5(string_agg(m::text, '|' ORDER BY match_id)) AS f FROM matches m"),
                await q(
                    "SELECT md5(string_agg(mp::text, '|' ORDER BY match_id, username)) AS f FROM match_participants mp",
                ),
            ];
        });

    it("inserts the sample data once; a second run changes nothing", async () => {
        const url = await migratedDatabase(stack.postgres, "seedcli");
        const first = await runNode(join(build.dir, "cli/seed.js"), { DATABASE_URL: url });
        expect(first.stderr).toBe("");
        expect(first.code).toBe(0);
        expect(first.stdout).toBe(
            "seed: players: 42 inserted, 0 already present\n" +
                "seed: matches: 120 inserted, 0 already present\n" +
                "seed: match_participants: 1440 inserted, 0 already present\n",
        );
        const before = await fingerprint(url);
        const second = await runNode(join(build.dir, "cli/seed.js"), { DATABASE_URL: url });
        expect(second.code).toBe(0);
        expect(second.stdout).toBe(
            "seed: players: 0 inserted, 42 already present\n" +
                "seed: matches: 0 inserted, 120 already present\n" +
                "seed: match_participants: 0 inserted, 1440 already present\n",
        );
        expect(await fingerprint(url)).toEqual(before);
    });

    it("produces the same rows in two different databases", async () => {
        const a = await migratedDatabase(stack.postgres, "seeda");
        const b = await migratedDatabase(stack.postgres, "seedb");
        expect((await runNode(join(build.dir, "cli/seed.js"), { DATABASE_URL: a })).code).toBe(0);
        expect((await runNode(join(build.dir, "cli/seed.js"), { DATABASE_URL: b })).code).toBe(0);
        expect(await fingerprint(a)).toEqual(await fingerprint(b));
    });

    it("fails with one clear line without DATABASE_URL, or before the migrations", async () => {
        const missing = await runNode(join(build.dir, "cli/seed.js"), {});
        expect(missing.code).toBe(1);
        expect(missing.stderr).toBe(
            "seed: Invalid configuration: 1 problem\n  - DATABASE_URL is required: set it to a URL like postgres://USER:PASSWORD@HOST:5432/DATABASE\nFix the environment variables above and start again.\n",
        );
        const empty = await stack.postgres.createDatabase("seedempty");
        const bare = await runNode(join(build.dir, "cli/seed.js"), { DATABASE_URL: empty });
        expect(bare.code).toBe(1);
        const name = new URL(empty).pathname;
        expect(bare.stderr).toBe(
            `seed: failed against 127.0.0.1:${stack.postgres.port}${name}: relation "players" does not exist (42P01): the schema is missing, run \`migrate up\` first\n`,
        );
        expect(bare.stderr).not.toContain(stack.postgres.password);
    });
});
