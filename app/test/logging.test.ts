// What the app's logs never contain, against a real PostgreSQL and Redis (in-process app, logs captured).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app";
import { eventually, migratedDatabase, MIGRATIONS_DIR, startStack, testConfig, type Stack } from "./support/stack";

let stack: Stack;
let databaseUrl: string;
const apps: FastifyInstance[] = [];

/** An app whose log lines (JSON, down to debug) are collected in `lines`. */
function appWithLog(redisUrl: string): { app: FastifyInstance; lines: string[] } {
    const lines: string[] = [];
    const app = buildApp(testConfig(databaseUrl, redisUrl), {
        logger: { level: "debug", stream: { write: (line: string) => void lines.push(line) } },
        migrationsDir: MIGRATIONS_DIR,
    });
    apps.push(app);
    return { app, lines };
}

beforeAll(async () => {
    stack = await startStack();
    databaseUrl = await migratedDatabase(stack.postgres);
});

afterAll(async () => {
    await Promise.allSettled(apps.map((a) => a.close()));
    await stack?.cleanup();
});

describe("logs", () => {
    it("never contain the Redis password when Redis refuses AUTH, neither the warning nor the reconnect lines", async () => {
        const password = "wrong-redis-password-4f2a";
        const { app, lines } = appWithLog(`redis://:${password}@127.0.0.1:${stack.redis.port}`);
        await app.ready();
        // The first refusal is a warning, the following reconnection attempts are debug lines.
        const logged = await eventually(
            async () =>
                lines.some((l) => l.includes('"msg":"Redis is unreachable')) &&
                lines.some((l) => l.includes('"msg":"Redis is still unreachable"')),
            10_000,
        );
        expect(logged, lines.join("")).toBe(true);
        expect(lines.join("")).not.toContain(password);
        const warning = JSON.parse(lines.find((l) => l.includes('"msg":"Redis is unreachable'))!);
        expect(warning.err.message).toMatch(/WRONGPASS|NOAUTH|invalid (username-)?password/i);
        expect(warning.err).not.toHaveProperty("command");
    });

    it("of a failed request name its method and URL, never its headers", async () => {
        const { app, lines } = appWithLog(stack.redis.url);
        const res = await app.inject({
            url: "/api/heroes?rank=%3Bdrop",
            headers: { authorization: "Bearer secret-token-xyz", cookie: "session=cookie-value-xyz" },
        });
        expect(res.statusCode).toBe(400);
        const all = lines.join("");
        expect(all).not.toContain("secret-token-xyz");
        expect(all).not.toContain("cookie-value-xyz");
        // A client error is one line at info, without a stack (issue 12).
        const refused = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request refused");
        expect(refused).toHaveLength(1);
        expect(refused[0]).toMatchObject({
            level: 30,
            req: { method: "GET", url: "/api/heroes?rank=%3Bdrop" },
            statusCode: 400,
            reason: 'querystring/rank must match pattern "^[A-Za-z0-9 _-]+$"',
        });
        expect(refused[0]).not.toHaveProperty("err");
        expect(refused[0].reqId).toEqual(expect.any(String));
        expect(all).not.toContain('"stack"');
    });
});
