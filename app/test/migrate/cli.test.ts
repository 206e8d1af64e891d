// The migrate CLI end to end, as deploys run it: a child process, DATABASE_URL in its environment, exit
// codes, human lines on stderr and exactly one JSON document on stdout with --json.
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort } from "../support/ports";
import { SEED_DIR, migrationsDir, useTestPostgres } from "./helpers";

const REPO = resolve(__dirname, "../../..");
const TSX = join(REPO, "node_modules/tsx/dist/cli.mjs");
const CLI = join(REPO, "app/src/cli/migrate.ts");

const pg = useTestPostgres();

interface Run {
    code: number | null;
    stdout: string;
    stderr: string;
}

function migrate(args: string[], env: Record<string, string | undefined>): Promise<Run> {
    return new Promise((res, rej) => {
        const childEnv: NodeJS.ProcessEnv = { ...process.env, MIGRATE_BACKUP_DIR: "", ...env };
        for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
        const child = spawn(process.execPath, [TSX, CLI, ...args], { env: childEnv, cwd: REPO });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("error", rej);
        child.on("close", (code) => res({ code, stdout, stderr }));
    });
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe("migrate CLI", () => {
    it("up --json applies the seed, prints one JSON document, exits 0; a second run applies nothing", async () => {
        const url = await pg.createDatabase("cli");
        const first = await migrate(["up", "--json"], { DATABASE_URL: url, MIGRATIONS_DIR: SEED_DIR });
        expect(first.code).toBe(0);
        const report = JSON.parse(first.stdout);
        expect(first.stdout.trim().split("\n")).toHaveLength(1);
        expect(Object.keys(report).sort()).toEqual([
            "applied",
            "backup",
            "command",
            "historyTable",
            "invalidIndexes",
            "migrations",
            "outOfOrder",
            "pending",
            "problems",
            "reverted",
        ]);
        expect(report).toMatchObject({ command: "up", pending: [], backup: null, reverted: [] });
        expect(report.applied.map((m: { name: string }) => m.name)).toEqual([
            "001_initial_schema",
            "002_add_indexes",
            "003_seed_plan_schema",
            "004_plan_schema_migrations",
        ]);
        for (const m of report.applied) expect(typeof m.durationMs).toBe("number");
        expect(report.migrations).toHaveLength(4);
        for (const m of report.migrations) {
            expect(m.appliedAt).toMatch(ISO);
            expect(m.checksum).toBe("ok");
        }
        expect(first.stderr).toMatch(
            /^applied 001_initial_schema \(\d+ ms\)\napplied 002_add_indexes \(\d+ ms\)\napplied 003_seed_plan_schema \(\d+ ms\)\napplied 004_plan_schema_migrations \(\d+ ms\)\napplied 4, 0 pending\n$/,
        );

        const second = await migrate(["up"], { DATABASE_URL: url, MIGRATIONS_DIR: SEED_DIR });
        expect(second).toEqual({ code: 0, stdout: "", stderr: "applied 0, 0 pending\n" });

        const st = await migrate(["status", "--json"], { DATABASE_URL: url, MIGRATIONS_DIR: SEED_DIR });
        expect(st.code).toBe(0);
        expect(JSON.parse(st.stdout)).toMatchObject({
            command: "status",
            applied: [],
            migrations: report.migrations,
            pending: [],
        });
        expect(st.stderr).toMatch(
            /^applied {2}001_initial_schema {2}\S+ {2}ok\napplied {2}002_add_indexes {2}\S+ {2}ok\napplied {2}003_seed_plan_schema {2}\S+ {2}ok\napplied {2}004_plan_schema_migrations {2}\S+ {2}ok\n4 applied, 0 pending \(history: migration_runner\.history\)\n$/,
        );
    });

    it("exits 1 on a failing migration, naming file and position on stderr and in the JSON error", async () => {
        const url = await pg.createDatabase("cli_fail");
        const dir = migrationsDir({
            "001_ok.sql": "CREATE TABLE ok (id INTEGER);\n",
            "002_bad.sql": "CREATE TABLE bad (id INTEGER);\nSELECT * FROM nope;\n",
            "003_later.sql": "CREATE TABLE later (id INTEGER);\n",
        });
        const r = await migrate(["up", "--json", "--migrations-dir", dir], { DATABASE_URL: url });
        expect(r.code).toBe(1);
        const report = JSON.parse(r.stdout);
        expect(report.applied.map((m: { name: string }) => m.name)).toEqual(["001_ok"]);
        expect(report.pending).toEqual(["002_bad", "003_later"]);
        expect(report.error).toEqual({
            message:
                '002_bad.sql failed at line 2, column 15: relation "nope" does not exist (SQLSTATE 42P01); rolled back: the database is as it was before this file, later migrations were not attempted; fix the file and run again',
            file: "002_bad.sql",
            line: 2,
            column: 15,
            sqlState: "42P01",
        });
        expect(r.stderr).toContain(`migrate up: ${report.error.message}\n`);
    });

    it("a badly named file (005-add-region.sql): one line naming the file and its rename, exit 1, the file in the JSON error", async () => {
        const url = await pg.createDatabase("cli_badname");
        const dir = migrationsDir({
            "001_ok.sql": "CREATE TABLE ok (id INTEGER);\n",
            "005-add-region.sql": "ALTER TABLE ok ADD COLUMN region TEXT;\n",
        });
        for (const command of ["up", "status"]) {
            const r = await migrate([command, "--migrations-dir", dir], { DATABASE_URL: url });
            expect(r.code, command).toBe(1);
            expect(r.stdout, command).toBe("");
            expect(r.stderr, command).toBe(
                `migrate ${command}: 005-add-region.sql in ${dir} is not named NNN_name.sql or NNN_name.down.sql (three or more digits, _, then lower-case letters, digits and _, ending in lower-case .sql), so it would never run; rename it to 005_add_region.sql, or move it out of the migrations directory\n`,
            );
        }
        const after = await migrate(["status", "--json", "--migrations-dir", dir], { DATABASE_URL: url });
        expect(JSON.parse(after.stdout).error.file).toBe("005-add-region.sql");
    });

    it("two processes at once: one applies, the other reports nothing pending", async () => {
        const url = await pg.createDatabase("cli_race");
        const dir = migrationsDir({ "001_slow.sql": "CREATE TABLE t (id INTEGER);\nSELECT pg_sleep(0.5);\n" });
        const runs = await Promise.all(
            [0, 1].map(() => migrate(["up", "--json", "--migrations-dir", dir], { DATABASE_URL: url })),
        );
        expect(runs.map((r) => r.code)).toEqual([0, 0]);
        const applied = runs.map((r) => JSON.parse(r.stdout).applied.length).sort();
        expect(applied).toEqual([0, 1]);
        for (const r of runs) expect(JSON.parse(r.stdout).pending).toEqual([]);
    });

    it("fails without DATABASE_URL, and never prints the password when the server is unreachable", async () => {
        const none = await migrate(["up"], { DATABASE_URL: undefined, MIGRATIONS_DIR: SEED_DIR });
        expect(none.code).toBe(1);
        expect(none.stderr).toBe(
            "migrate up: DATABASE_URL is not set; set it to postgres://USER:PASSWORD@HOST:PORT/DATABASE (in the environment, not on the command line)\n",
        );

        const port = await freePort();
        const password = "hunter2-Very-Secret";
        const down = await migrate(["up", "--json", "--wait", "0.5"], {
            DATABASE_URL: `postgres://stats:${password}@127.0.0.1:${port}/stats`,
            MIGRATIONS_DIR: SEED_DIR,
        });
        expect(down.code).toBe(1);
        expect(down.stderr).toMatch(
            new RegExp(
                `^migrate up: cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port} \\(database "stats", user "stats"\\) within 0\\.5 s`,
            ),
        );
        expect(JSON.parse(down.stdout).error.message).toMatch(/ECONNREFUSED/);
        expect(down.stdout + down.stderr).not.toContain(password);
    });

    it("exits 2 on bad usage, with the usage text", async () => {
        const r = await migrate(["sideways"], { DATABASE_URL: "postgres://x@127.0.0.1:1/x", MIGRATIONS_DIR: SEED_DIR });
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/^migrate: unknown command "sideways"\nusage: migrate <command> \[options\]\n/);
        const flag = await migrate(["up", "--wait", "soon"], {
            DATABASE_URL: "postgres://x@127.0.0.1:1/x",
            MIGRATIONS_DIR: SEED_DIR,
        });
        expect(flag.code).toBe(2);
        expect(flag.stderr).toMatch(/^migrate: --wait must be a non-negative number, got "soon"\n/);
    });

    it("refuses --lock-timeout below 1 ms or not whole (PostgreSQL reads 0 as wait forever) with exit 2", async () => {
        const url = await pg.createDatabase("cli_lt");
        for (const value of ["0", "-1", "0.5", "2.5", ""]) {
            const r = await migrate(["up", `--lock-timeout=${value}`, "--json"], {
                DATABASE_URL: url,
                MIGRATIONS_DIR: SEED_DIR,
            });
            const message = `--lock-timeout must be a whole number of milliseconds >= 1 (0 would mean wait forever), got "${value}"`;
            expect(r.code).toBe(2);
            expect(r.stderr.startsWith(`migrate: ${message}\nusage: migrate <command> [options]\n`)).toBe(true);
            expect(JSON.parse(r.stdout)).toEqual({ command: "up", error: { message } });
        }
        const ok = await migrate(["up", "--lock-timeout", "1"], { DATABASE_URL: url, MIGRATIONS_DIR: SEED_DIR });
        expect(ok.code).toBe(0);
    });

    it("create NAME writes the next numbered pair", async () => {
        const dir = migrationsDir({ "001_a.sql": "SELECT 1;\n", "002_b.sql": "SELECT 1;\n" });
        const r = await migrate(["create", "add_player_region", "--json"], {
            MIGRATIONS_DIR: dir,
            DATABASE_URL: undefined,
        });
        expect(r.code).toBe(0);
        expect(JSON.parse(r.stdout)).toEqual({
            command: "create",
            created: [join(dir, "003_add_player_region.sql"), join(dir, "003_add_player_region.down.sql")],
        });
        expect(existsSync(join(dir, "003_add_player_region.down.sql"))).toBe(true);
    });
});
