// Start-up: the runner waits for a PostgreSQL that is not accepting connections yet, and fails clearly
// (host, port, reason, never the password) when it does not come up within --wait.
import { describe, expect, it } from "vitest";
import { freePort } from "../support/ports";
import { up } from "../../src/migrate";
import { migrationsDir, rejection, useTestPostgres } from "./helpers";

const pg = useTestPostgres();

const FILES = { "001_t.sql": "CREATE TABLE t (id INTEGER);\n" };

describe("start-up", () => {
    it("retries while the server is down and applies once it starts", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir(FILES);
        await pg.stop();
        const started = Date.now();
        const run = up({ databaseUrl: url, migrationsDir: dir, waitSeconds: 30 });
        // Let the runner fail to connect a few times first.
        await new Promise((r) => setTimeout(r, 1500));
        await pg.start();
        const r = await run;
        expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
        expect(r.applied.map((m) => m.name)).toEqual(["001_t"]);
    });

    it("connects to a running server with --wait 0: one attempt, with the full connect timeout", async () => {
        const url = await pg.createDatabase();
        const r = await up({ databaseUrl: url, migrationsDir: migrationsDir(FILES), waitSeconds: 0 });
        expect(r.applied.map((m) => m.name)).toEqual(["001_t"]);
    });

    it("fails after --wait with host, port and reason, without the password", async () => {
        const port = await freePort();
        const password = "s3cret-Pa55word";
        const started = Date.now();
        const err = await rejection(
            up({
                databaseUrl: `postgres://app:${password}@127.0.0.1:${port}/stats`,
                migrationsDir: migrationsDir(FILES),
                waitSeconds: 1,
            }),
        );
        const elapsed = Date.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(900);
        expect(elapsed).toBeLessThan(5000);
        expect(err.message).toMatch(
            new RegExp(
                `^cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port} \\(database "stats", user "app"\\) within 1 s \\(\\d+ attempts?\\): connect ECONNREFUSED 127\\.0\\.0\\.1:${port}; check that the server is running and that DATABASE_URL points at it, or raise --wait$`,
            ),
        );
        expect(err.message).not.toContain(password);
    });

    it("fails at once on a wrong password, without printing it", async () => {
        const url = new URL(await pg.createDatabase());
        url.password = "wrong-password-xyz";
        const started = Date.now();
        const err = await rejection(
            up({ databaseUrl: url.toString(), migrationsDir: migrationsDir(FILES), waitSeconds: 30 }),
        );
        expect(Date.now() - started).toBeLessThan(5000);
        expect(err.message).toBe(
            `cannot connect to PostgreSQL at 127.0.0.1:${pg.port} (database "${url.pathname.slice(1)}", user "postgres"): password authentication failed for user "postgres"; check the credentials and database name in DATABASE_URL`,
        );
        expect(err.message).not.toContain("wrong-password-xyz");
    });
});
