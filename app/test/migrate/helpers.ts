// Shared pieces of the migration runner's tests: throw-away migration directories and a catalog snapshot
// to compare "the database as it was".
import { mkdtempSync, writeFileSync, rmSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll } from "vitest";
import { startPostgres, type TestPostgres } from "../support/postgres";

/** The real migrations of the repository. */
export const SEED_DIR = resolve(__dirname, "../../../migrations");

const made: string[] = [];

/** A temporary migrations directory holding `files` (name -> SQL), plus copies of `copyFrom`'s files. */
export function migrationsDir(files: Record<string, string>, copyFrom?: string): string {
    const dir = mkdtempSync(join(tmpdir(), "mrs-migrations-"));
    made.push(dir);
    if (copyFrom) cpSync(copyFrom, dir, { recursive: true });
    for (const [name, sql] of Object.entries(files)) writeFileSync(join(dir, name), sql);
    return dir;
}

export function removeMigrationDirs(): void {
    for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

export async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
    const c = new Client({ connectionString: url });
    await c.connect();
    try {
        return await fn(c);
    } finally {
        await c.end();
    }
}

/**
 * Everything a migration could change in schema `public`: relations, columns, constraints, indexes,
 * the history rows, and the rows of the given tables.
 */
export async function snapshot(url: string, dataTables: string[] = []): Promise<unknown> {
    return withClient(url, async (c) => {
        const q = async (sql: string) => (await c.query(sql)).rows;
        const out: Record<string, unknown> = {
            relations: await q(
                `SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'public' ORDER BY 1`,
            ),
            columns: await q(
                `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
                  WHERE table_schema = 'public' ORDER BY 1, 2`,
            ),
            constraints: await q(
                `SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
                  WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2`,
            ),
            indexes: await q(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`),
            history: (await q(`SELECT to_regclass('migration_runner.history') IS NOT NULL AS ok`))[0].ok
                ? await q(`SELECT name, checksum, status FROM migration_runner.history ORDER BY name`)
                : null,
        };
        for (const t of dataTables) out[`rows:${t}`] = await q(`SELECT * FROM ${t} ORDER BY 1`);
        return out;
    });
}

export async function historyNames(url: string): Promise<string[]> {
    return withClient(url, async (c) => {
        if ((await c.query(`SELECT to_regclass('migration_runner.history') AS t`)).rows[0].t === null) return [];
        const r = await c.query<{ name: string }>(
            `SELECT name FROM migration_runner.history WHERE status = 'applied' ORDER BY name`,
        );
        return r.rows.map((x) => x.name);
    });
}

/** Runs `fn`, expecting it to reject; returns the error for exact assertions. */
export async function rejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
    try {
        await p;
    } catch (err) {
        return err as Error & Record<string, unknown>;
    }
    throw new Error("expected a rejection, but it resolved");
}

/**
 * A real PostgreSQL 16 for the calling test file: started before its tests, stopped (with the temporary
 * migration directories removed) after them. Read it inside tests and hooks only.
 */
export function useTestPostgres(): TestPostgres {
    let server: TestPostgres | undefined;
    beforeAll(async () => {
        server = await startPostgres();
    });
    afterAll(async () => {
        removeMigrationDirs();
        await server?.cleanup();
    });
    return new Proxy({} as TestPostgres, {
        get(_target, key) {
            if (!server) throw new Error("the test PostgreSQL is not started yet: use it inside a test or hook");
            return Reflect.get(server, key);
        },
    });
}
