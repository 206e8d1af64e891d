// Issue 11: migrations a DBA can trust, on a real PostgreSQL 16. Each file starts from a clean session;
// transaction control in a file is handled or refused before anything runs; a no-transaction file that
// fails half-way is recorded as failed until someone resolves it; near-miss names are refused; the history
// lives where it cannot clash with a user's table; errors name the fix; the splitter reads what psql reads.
import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { down, listPending, MigrateError, problemsOf, resolve, status, up } from "../../src/migrate";
import { historyDdl } from "../../src/migrate/history";
import { redact } from "../../src/migrate/errors";
import { parseDatabaseUrl } from "../../src/migrate/connect";
import { splitStatements } from "../../src/migrate/sql";
import type { Client } from "pg";
import { historyNames, migrationsDir, rejection, useTestPostgres, withClient } from "./helpers";

const pg = useTestPostgres();
const REPO = resolvePath(__dirname, "../../..");

const one = async (url: string, sql: string, params: unknown[] = []) =>
    withClient(url, async (c) => (await c.query(sql, params)).rows[0]);

/**
 * A database as an earlier version of the runner left it: `before` ran, 001_a of `dir` recorded in the old
 * public.schema_migrations (name, checksum, applied_at, duration_ms); then `more` (a DBA's own steps).
 */
async function legacyHistory(url: string, dir: string, before: string, more?: (c: Client) => Promise<void>) {
    const checksum = createHash("sha256")
        .update(readFileSync(join(dir, "001_a.sql")))
        .digest("hex");
    await withClient(url, async (c) => {
        await c.query(before);
        await c.query(
            "CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), duration_ms INTEGER NOT NULL)",
        );
        await c.query("INSERT INTO schema_migrations (name, checksum, duration_ms) VALUES ('001_a', $1, 3)", [
            checksum,
        ]);
        await more?.(c);
    });
}

function asUser(url: string, user: string, password: string): string {
    const u = new URL(url);
    u.username = user;
    u.password = password;
    return u.toString();
}

describe("isolation: every file starts from the connection's own session", () => {
    it("a file's search_path, session_replication_role, statement_timeout and SET ROLE reach neither the next file nor the history", async () => {
        const url = await pg.createDatabase("iso");
        const role = `limited_${Date.now()}`;
        const dir = migrationsDir({
            "001_settings.sql": [
                "CREATE SCHEMA other;",
                "SET search_path = other;",
                "CREATE TABLE in_other (id INTEGER);",
                "SET session_replication_role = replica;",
                `CREATE ROLE ${role};`,
                `SET ROLE ${role};`,
                "SET statement_timeout = 1;",
                "",
            ].join("\n"),
            // Under the first file's settings this would land in `other`, time out, and be owned by the role.
            "002_tables.sql": [
                "CREATE TABLE parent (id INTEGER PRIMARY KEY);",
                "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id));",
                "SELECT pg_sleep(0.05);",
                "",
            ].join("\n"),
            // With session_replication_role = replica the foreign key would not be checked.
            "003_orphan.sql": "INSERT INTO child VALUES (42);\n",
        });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toMatch(/^003_orphan\.sql failed: insert or update on table "child" violates foreign key/);
        expect(await historyNames(url)).toEqual(["001_settings", "002_tables"]);
        expect(
            await one(url, "SELECT to_regclass('public.parent')::text AS p, to_regclass('other.parent') AS o"),
        ).toEqual({
            p: "parent",
            o: null,
        });
        const owner = await one(url, "SELECT tableowner, current_user AS me FROM pg_tables WHERE tablename = 'parent'");
        expect(owner.tableowner).toBe(owner.me);
        // The table the first file made under its own search_path is where it asked.
        expect((await one(url, "SELECT to_regclass('other.in_other')::text AS t")).t).toBe("other.in_other");
    });
});

describe("transaction control inside a file", () => {
    it("a file wrapped whole in BEGIN; ... COMMIT; (golang-migrate's style) applies once and is recorded with it", async () => {
        const url = await pg.createDatabase("wrapped");
        const dir = migrationsDir({
            "001_wrapped.sql":
                "-- golang-migrate style\nBEGIN;\nCREATE TABLE g (id INTEGER);\nINSERT INTO g VALUES (1);\nCOMMIT;\n",
            "002_start.sql": "START TRANSACTION;\nCREATE TABLE h (id INTEGER);\nEND;\n",
        });
        const r = await up({ databaseUrl: url, migrationsDir: dir });
        expect(r.applied.map((m) => m.name)).toEqual(["001_wrapped", "002_start"]);
        expect(await historyNames(url)).toEqual(["001_wrapped", "002_start"]);
        expect(await one(url, "SELECT count(*)::int AS n FROM g")).toEqual({ n: 1 });
        // A failure inside it rolls back all of it, as the message says.
        const failing = migrationsDir({
            "001_wrapped.sql": readFileSync(join(dir, "001_wrapped.sql"), "utf8"),
            "002_start.sql": readFileSync(join(dir, "002_start.sql"), "utf8"),
            "003_x.sql": "BEGIN;\nCREATE TABLE x (id INTEGER);\nINSERT INTO nope VALUES (1);\nCOMMIT;\n",
        });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: failing }));
        expect(err.message).toMatch(
            /^003_x\.sql failed at line 3, column 13: relation "nope" does not exist .*; rolled back: /,
        );
        expect((await one(url, "SELECT to_regclass('x') AS t")).t).toBeNull();
    });

    it("in a no-transaction file, a BEGIN block that fails is rolled back and the message says which statements stay", async () => {
        const url = await pg.createDatabase("ntblock");
        const dir = migrationsDir({
            "001_nt.sql": [
                "-- migrate:no-transaction",
                "CREATE TABLE kept (id INTEGER);",
                "BEGIN;",
                "CREATE TABLE undone (id INTEGER);",
                "INSERT INTO nope VALUES (1);",
                "COMMIT;",
                "",
            ].join("\n"),
        });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toContain(
            "statement 4 of 5; it ran without a transaction (-- migrate:no-transaction): statements 1 to 1 stay applied; statements 2 to 3 (the BEGIN block at line 3) were rolled back with it;",
        );
        expect(await one(url, "SELECT to_regclass('kept')::text AS k, to_regclass('undone') AS u")).toEqual({
            k: "kept",
            u: null,
        });
    });

    it("refuses a BEGIN left open in a no-transaction file, and two-phase commit, before anything runs", async () => {
        const url = await pg.createDatabase("ntopen");
        const open = migrationsDir({
            "001_open.sql":
                "-- migrate:no-transaction\nCREATE TABLE a (id INTEGER);\nBEGIN;\nCREATE TABLE b (id INTEGER);\n",
        });
        expect((await rejection(up({ databaseUrl: url, migrationsDir: open }))).message).toBe(
            "001_open.sql line 3: this transaction is never committed or rolled back; end it in the file; nothing was run",
        );
        expect((await one(url, "SELECT to_regclass('a') AS t")).t).toBeNull();
        const twoPhase = migrationsDir({
            "001_2pc.sql": "-- migrate:no-transaction\nBEGIN;\nPREPARE TRANSACTION 'x';\n",
        });
        expect((await rejection(up({ databaseUrl: url, migrationsDir: twoPhase }))).message).toMatch(
            /^001_2pc\.sql line 3: PREPARE TRANSACTION \(two-phase commit\) is not supported/,
        );
    });
});

describe("a no-transaction file that fails half-way", () => {
    it("is recorded as failed; status says so and exits non-zero; up refuses to re-run it until it is resolved", async () => {
        const url = await pg.createDatabase("half");
        const base = {
            "001_accounts.sql":
                "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER);\nINSERT INTO accounts VALUES (1, 100);\n",
        };
        const dir = migrationsDir({
            ...base,
            "002_double.sql":
                "-- migrate:no-transaction\nUPDATE accounts SET balance = balance * 2;\nINSERT INTO missing_table VALUES (1);\n",
        });
        const first = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(first.message).toContain("002_double is recorded as failed (statement 2)");
        expect(await one(url, "SELECT balance FROM accounts")).toEqual({ balance: 200 });

        const st = await status({ databaseUrl: url, migrationsDir: dir });
        expect(st.migrations.find((m) => m.name === "002_double")).toMatchObject({
            status: "failed",
            failedStatement: 2,
            error: 'relation "missing_table" does not exist',
        });
        expect(st.pending).toEqual([]);
        expect(problemsOf(st)).toHaveLength(1);
        // The app's readiness counts it as not applied.
        expect(await withClient(url, (c) => listPending(c, dir))).toEqual(["002_double"]);

        // The next up refuses: the balance is not doubled twice.
        const again = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(again.message).toMatch(
            /^002_double\.sql failed at statement 2 on \S+ \(relation "missing_table" does not exist\) and ran without a transaction/,
        );
        expect(await one(url, "SELECT balance FROM accounts")).toEqual({ balance: 200 });

        // After a manual fix, recorded as applied without running it.
        await resolve({ databaseUrl: url, migrationsDir: dir, name: "002_double", as: "applied" });
        expect((await up({ databaseUrl: url, migrationsDir: dir })).applied).toEqual([]);
        expect(await one(url, "SELECT balance FROM accounts")).toEqual({ balance: 200 });
        expect(problemsOf(await status({ databaseUrl: url, migrationsDir: dir }))).toEqual([]);
        expect(
            (await rejection(resolve({ databaseUrl: url, migrationsDir: dir, name: "002_double", as: "retry" })))
                .message,
        ).toBe("002_double is not marked failed (it is applied); nothing was changed; failed: none");
    });

    it("--retry clears the mark, and the next up runs the whole file again", async () => {
        const url = await pg.createDatabase("retry");
        const broken = migrationsDir({
            "001_nt.sql": "-- migrate:no-transaction\nCREATE TABLE IF NOT EXISTS r (id INTEGER);\nSELECT 1/0;\n",
        });
        await rejection(up({ databaseUrl: url, migrationsDir: broken }));
        await resolve({ databaseUrl: url, migrationsDir: broken, name: "001_nt", as: "retry" });
        expect((await status({ databaseUrl: url, migrationsDir: broken })).pending).toEqual(["001_nt"]);
        const fixed = migrationsDir({
            "001_nt.sql": "-- migrate:no-transaction\nCREATE TABLE IF NOT EXISTS r (id INTEGER);\nSELECT 1;\n",
        });
        expect((await up({ databaseUrl: url, migrationsDir: fixed })).applied.map((m) => m.name)).toEqual(["001_nt"]);
    });

    it("a failed CREATE INDEX CONCURRENTLY: the INVALID index it left is named, in the error and in status", async () => {
        const url = await pg.createDatabase("invalid");
        const dir = migrationsDir({
            "001_dups.sql": "CREATE TABLE dups (x INTEGER);\nINSERT INTO dups VALUES (1), (1);\n",
            "002_unique.sql": "-- migrate:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY dups_x ON dups (x);\n",
        });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toContain(
            "INVALID index(es) now in the database (a failed CREATE INDEX CONCURRENTLY leaves one): public.dups_x; drop each with DROP INDEX CONCURRENTLY before retrying",
        );
        const st = await status({ databaseUrl: url, migrationsDir: dir });
        expect(st.invalidIndexes).toEqual(["public.dups_x"]);
        expect(problemsOf(st)).toContain(
            "index public.dups_x is INVALID (a failed CREATE INDEX CONCURRENTLY); drop it (DROP INDEX CONCURRENTLY public.dups_x) and build it again",
        );
    });
});

describe("names and the history table", () => {
    // The rename each error names (none for a backup copy: moving it out is the fix).
    const RENAME: Record<string, string> = {
        "003_add.SQL": "rename it to 003_add.sql",
        "003-add.sql": "rename it to 003_add.sql",
        "003_add.sql.bak": "rename it",
        "3_add.Sql": "rename it to 003_add.sql",
    };
    for (const name of Object.keys(RENAME)) {
        it(`refuses ${name} by name instead of skipping it`, async () => {
            const url = await pg.createDatabase("names");
            const dir = migrationsDir({
                "001_a.sql": "CREATE TABLE a (id INTEGER);\n",
                [name]: "CREATE TABLE b (id INTEGER);\n",
            });
            const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
            expect(err.message).toBe(
                `${name} in ${dir} is not named NNN_name.sql or NNN_name.down.sql (three or more digits, _, then lower-case letters, digits and _, ending in lower-case .sql), so it would never run; ${RENAME[name]}, or move it out of the migrations directory`,
            );
            expect(await historyNames(url)).toEqual([]);
        });
    }

    it("keeps its history out of public: a user's own public.schema_migrations (the seed plan's) is left alone", async () => {
        const url = await pg.createDatabase("plantable");
        await withClient(url, async (c) => {
            await c.query("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL)");
            await c.query("INSERT INTO schema_migrations VALUES (1, 'the plan''s own row')");
        });
        const dir = migrationsDir({ "001_a.sql": "CREATE TABLE a (id INTEGER);\n" });
        expect((await up({ databaseUrl: url, migrationsDir: dir })).applied.map((m) => m.name)).toEqual(["001_a"]);
        expect(
            await withClient(url, async (c) => (await c.query("SELECT * FROM public.schema_migrations")).rows),
        ).toEqual([{ version: 1, description: "the plan's own row" }]);
        expect(await historyNames(url)).toEqual(["001_a"]);
    });

    it("works for a role without CREATE on public or on the database, once a DBA made the history table", async () => {
        const url = await pg.createDatabase("nocreate");
        const role = `deployer_${Date.now()}`;
        await withClient(url, async (c) => {
            await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'deployer-pw'`);
            await c.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
            await c.query(`CREATE SCHEMA app AUTHORIZATION ${role}`);
            for (const statement of historyDdl("migration_runner.history").split("; ")) await c.query(statement);
            await c.query(`GRANT USAGE ON SCHEMA migration_runner TO ${role}`);
            await c.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON migration_runner.history TO ${role}`);
        });
        const dir = migrationsDir({ "001_a.sql": "CREATE TABLE app.a (id INTEGER);\n" });
        const deployer = asUser(url, role, "deployer-pw");
        expect((await up({ databaseUrl: deployer, migrationsDir: dir })).applied.map((m) => m.name)).toEqual(["001_a"]);
        expect(await historyNames(url)).toEqual(["001_a"]);
        // Without the table, the error says what a DBA has to run.
        const bare = await pg.createDatabase("nocreate2");
        await withClient(bare, async (c) => {
            await c.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
            await c.query(`CREATE SCHEMA app AUTHORIZATION ${role}`);
        });
        const err = await rejection(up({ databaseUrl: asUser(bare, role, "deployer-pw"), migrationsDir: dir }));
        expect(err.message).toContain(
            `cannot prepare the history table migration_runner.history: permission denied for database ${new URL(bare).pathname.slice(1)}; nothing was applied; either let this role create it`,
        );
        expect(err.message).toContain(historyDdl("migration_runner.history"));
    });

    it("takes another place for the history, and refuses a table of another shape there without touching it", async () => {
        const url = await pg.createDatabase("custom");
        const dir = migrationsDir({ "001_a.sql": "CREATE TABLE a (id INTEGER);\n" });
        await up({ databaseUrl: url, migrationsDir: dir, historyTable: "ops.migrations" });
        expect(await one(url, "SELECT name, status FROM ops.migrations")).toEqual({ name: "001_a", status: "applied" });

        const other = await pg.createDatabase("othershape");
        await withClient(other, (c) =>
            c.query("CREATE SCHEMA ops; CREATE TABLE ops.migrations (id INTEGER, note TEXT)"),
        );
        const err = await rejection(up({ databaseUrl: other, migrationsDir: dir, historyTable: "ops.migrations" }));
        expect(err.message).toBe(
            "ops.migrations exists but is not this runner's history (its columns: id, note; the runner's are applied_at, checksum, duration_ms, name, error, failed_statement, status, of which applied_at, checksum, duration_ms, name at least); nothing was changed; point MIGRATIONS_HISTORY_TABLE (or --history-table) at another schema.table, or rename that table",
        );
        expect(await one(other, "SELECT to_regclass('public.a') AS t")).toEqual({ t: null });
        expect(
            (await rejection(up({ databaseUrl: other, migrationsDir: dir, historyTable: "Ops.Bad-Name" }))).message,
        ).toMatch(/^the history table must be written schema\.table in lower-case letters/);
    });

    it("moves the history of an earlier version (public.schema_migrations of the runner's shape) and applies nothing twice", async () => {
        const url = await pg.createDatabase("legacy");
        const dir = migrationsDir({
            "001_a.sql": "CREATE TABLE a (id INTEGER);\n",
            "002_b.sql": "CREATE TABLE b (id INTEGER);\n",
        });
        await legacyHistory(url, dir, "CREATE TABLE a (id INTEGER)");
        // Read before the move (status, readiness) ...
        expect((await status({ databaseUrl: url, migrationsDir: dir })).pending).toEqual(["002_b"]);
        const lines: string[] = [];
        const r = await up({ databaseUrl: url, migrationsDir: dir, log: (l) => lines.push(l) });
        expect(r.applied.map((m) => m.name)).toEqual(["002_b"]);
        expect(lines).toContain(
            "moved the migration history from public.schema_migrations to migration_runner.history",
        );
        expect(await historyNames(url)).toEqual(["001_a", "002_b"]);
        expect(await one(url, "SELECT to_regclass('public.schema_migrations') AS t")).toEqual({ t: null });
    });
});

describe("errors and output", () => {
    it("a raw % in the password is a message naming the fix, not a stack trace", () => {
        expect(() => parseDatabaseUrl("postgres://stats:50%off@127.0.0.1:5432/stats")).toThrow(
            new MigrateError(
                "DATABASE_URL: the password holds a % that does not start a %XX escape; percent-encode it (write % as %25, @ as %40, : as %3A, / as %2F)",
            ),
        );
        expect(parseDatabaseUrl("postgres://stats:50%25off@127.0.0.1:5432/stats").password).toBe("50%off");
    });

    it("redaction removes the password where it is a password, not inside ordinary words", () => {
        expect(redact("permission denied for table players, role p", "p")).toBe(
            "permission denied for table players, role p",
        );
        expect(redact("could not connect: postgres://stats:p@db:5432/stats refused", "p")).toBe(
            "could not connect: postgres://stats:***@db:5432/stats refused",
        );
        expect(redact("host=db password=s3cret user=stats", undefined)).toBe("host=db password=*** user=stats");
        expect(redact("PGPASSWORD='a b' pg_dump", undefined)).toBe("PGPASSWORD=*** pg_dump");
        expect(redact("set it to postgres://USER:PASSWORD@HOST:5432/DB", "x")).toBe(
            "set it to postgres://USER:PASSWORD@HOST:5432/DB",
        );
    });

    it("a read-only backup directory is reported as such, and nothing is applied", async () => {
        const url = await pg.createDatabase("robackup");
        const dir = migrationsDir({ "001_a.sql": "CREATE TABLE a (id INTEGER);\n" });
        const backups = mkdtempSync(join(tmpdir(), "mrs-ro-backups-"));
        // root writes anywhere it may; an immutable directory stops root too.
        const root = process.getuid?.() === 0;
        if (root) spawnSync("chattr", ["+i", backups]);
        else chmodSync(backups, 0o555);
        try {
            const err = await rejection(up({ databaseUrl: url, migrationsDir: dir, backupDir: backups }));
            expect(err.message).toMatch(
                new RegExp(
                    `^the backup directory ${backups} is not writable by uid \\d+ \\((EPERM|EACCES)\\); fix its owner or permissions, or point --backup-dir elsewhere; nothing was changed$`,
                ),
            );
            expect(await historyNames(url)).toEqual([]);
        } finally {
            if (root) spawnSync("chattr", ["-i", backups]);
            rmSync(backups, { recursive: true, force: true });
        }
    });

    it("`status` exits non-zero on drift; the documented `npm run -s migrate -- status --json` prints clean JSON", async () => {
        const url = await pg.createDatabase("drift");
        const dir = migrationsDir({ "001_a.sql": "CREATE TABLE a (id INTEGER);\n" });
        await up({ databaseUrl: url, migrationsDir: dir });
        const drifted = migrationsDir({ "001_a.sql": "CREATE TABLE a (id BIGINT);\n" });
        // The command as the README writes it.
        const readme = readFileSync(join(REPO, "README.md"), "utf8");
        expect(readme).toContain("DATABASE_URL=postgres://... npm run -s migrate -- status --json");
        const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
            const child = spawn("npm", ["run", "-s", "migrate", "--", "status", "--json"], {
                cwd: REPO,
                env: { ...process.env, DATABASE_URL: url, MIGRATIONS_DIR: drifted, MIGRATE_BACKUP_DIR: "" },
            });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
            child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            child.on("exit", (code) => done({ code, stdout, stderr }));
        });
        expect(run.code, run.stderr).toBe(1);
        const report = JSON.parse(run.stdout);
        expect(report.problems).toEqual(["001_a.sql was changed after it was applied"]);
        expect(run.stderr).toContain("attention: 001_a.sql was changed after it was applied");
    }, 60_000);
});

describe("the splitter reads what psql reads", () => {
    const tricky = [
        "-- migrate:no-transaction",
        "CREATE TABLE log (msg TEXT);",
        "CREATE TABLE src (id INTEGER);",
        "/* a /* nested */ comment; still a comment */",
        "CREATE FUNCTION add_one(i INTEGER) RETURNS INTEGER LANGUAGE SQL",
        "BEGIN ATOMIC",
        "    SELECT CASE WHEN i IS NULL THEN 0 ELSE i + 1 END;",
        "END;",
        "CREATE RULE log_insert AS ON INSERT TO src DO ALSO (INSERT INTO log VALUES ('one'); INSERT INTO log VALUES ('two'));",
        "INSERT INTO log VALUES (E'it\\'s; fine'), ($$dollar; quoted$$), ($tag$ tagged; $tag$);",
        "INSERT INTO src VALUES (add_one(1));",
        "",
    ].join("\n");

    it("splits BEGIN ATOMIC bodies, rule actions, E'' strings, dollar quotes and nested comments as psql does", () => {
        expect(splitStatements(tricky).map((s) => s.text.trim().split("\n")[0])).toEqual([
            "-- migrate:no-transaction",
            "CREATE TABLE src (id INTEGER)",
            "/* a /* nested */ comment; still a comment */",
            "CREATE RULE log_insert AS ON INSERT TO src DO ALSO (INSERT INTO log VALUES ('one'); INSERT INTO log VALUES ('two'))",
            "INSERT INTO log VALUES (E'it\\'s; fine'), ($$dollar; quoted$$), ($tag$ tagged; $tag$)",
            "INSERT INTO src VALUES (add_one(1))",
        ]);
        expect(splitStatements(tricky)).toHaveLength(6);
    });

    it("applies such a no-transaction file on PostgreSQL", async () => {
        const url = await pg.createDatabase("splitter");
        await up({ databaseUrl: url, migrationsDir: migrationsDir({ "001_tricky.sql": tricky }) });
        expect(
            await withClient(url, async (c) =>
                (await c.query("SELECT msg FROM log ORDER BY msg")).rows.map((r) => r.msg),
            ),
        ).toEqual([" tagged; ", "dollar; quoted", "it's; fine", "one", "two"]);
        expect(await one(url, "SELECT id FROM src")).toEqual({ id: 2 });
    });

    it("refuses COPY ... FROM STDIN before anything runs, with what to do instead", async () => {
        const url = await pg.createDatabase("copy");
        const dir = migrationsDir({
            "001_copy.sql": "CREATE TABLE c (id INTEGER);\nCOPY c (id) FROM stdin;\n1\n2\n\\.\n",
        });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toMatch(
            /^001_copy\.sql line 2: COPY \.\.\. FROM STDIN needs its rows sent through the copy protocol, which a migration file cannot do; write the rows as INSERT \.\.\. VALUES/,
        );
        expect(await one(url, "SELECT to_regclass('c') AS t")).toEqual({ t: null });
    });
});

describe("down keeps the same guarantees", () => {
    it("refuses transaction control in a down file before reverting anything", async () => {
        const url = await pg.createDatabase("downtx");
        const dir = migrationsDir({
            "001_a.sql": "CREATE TABLE a (id INTEGER);\n",
            "001_a.down.sql": "DROP TABLE a;\nCOMMIT;\nSELECT 1;\n",
        });
        await up({ databaseUrl: url, migrationsDir: dir });
        expect((await rejection(down({ databaseUrl: url, migrationsDir: dir }))).message).toMatch(
            /^001_a\.down\.sql line 2: COMMIT inside/,
        );
        expect(await one(url, "SELECT to_regclass('a')::text AS t")).toEqual({ t: "a" });
    });
});

// Found by a review that tried to break the runner (each of these failed before its fix).
describe("what a review found", () => {
    it("a legacy history beside an empty table a DBA made: its rows move there, nothing is applied twice", async () => {
        const url = await pg.createDatabase("legacybeside");
        const dir = migrationsDir({
            "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id INTEGER);\nINSERT INTO a VALUES (1);\n",
            "002_b.sql": "CREATE TABLE b (id INTEGER);\n",
        });
        await legacyHistory(url, dir, "CREATE TABLE a (id INTEGER); INSERT INTO a VALUES (1)", async (c) => {
            for (const statement of historyDdl("migration_runner.history").split("; ")) await c.query(statement);
        });
        expect((await status({ databaseUrl: url, migrationsDir: dir })).pending).toEqual(["002_b"]);
        expect((await up({ databaseUrl: url, migrationsDir: dir })).applied.map((m) => m.name)).toEqual(["002_b"]);
        expect(await one(url, "SELECT count(*)::int AS n FROM a")).toEqual({ n: 1 });
        expect(await historyNames(url)).toEqual(["001_a", "002_b"]);
        expect(await one(url, "SELECT to_regclass('public.schema_migrations') AS t")).toEqual({ t: null });
    });

    for (const [name, body, line] of [
        [
            "COMMIT AND CHAIN",
            "BEGIN;\nCREATE TABLE a (id INTEGER);\nCOMMIT AND CHAIN;\nCREATE TABLE b (id INTEGER);\n",
            4,
        ],
        ["ROLLBACK TO SAVEPOINT", "BEGIN;\nCREATE TABLE t (id INTEGER);\nSAVEPOINT s;\nROLLBACK TO SAVEPOINT s;\n", 2],
    ] as const) {
        it(`refuses a no-transaction file whose ${name} leaves a transaction open, before anything runs`, async () => {
            const url = await pg.createDatabase("chain");
            const dir = migrationsDir({ "001_chain.sql": `-- migrate:no-transaction\n${body}` });
            expect((await rejection(up({ databaseUrl: url, migrationsDir: dir }))).message).toBe(
                `001_chain.sql line ${line}: this transaction is never committed or rolled back; end it in the file; nothing was run`,
            );
            expect(await one(url, "SELECT to_regclass('a') AS a, to_regclass('t') AS t")).toEqual({ a: null, t: null });
        });
    }

    it("a failure after ROLLBACK TO inside a block: the block is rolled back, the file recorded as failed, the message exact", async () => {
        const url = await pg.createDatabase("rollbackto");
        const dir = migrationsDir({
            "001_sp.sql": [
                "-- migrate:no-transaction",
                "CREATE TABLE keep (id INTEGER);",
                "BEGIN;",
                "CREATE TABLE t (id INTEGER);",
                "SAVEPOINT s;",
                "ROLLBACK TO SAVEPOINT s;",
                "SELECT 1/0;",
                "COMMIT;",
                "",
            ].join("\n"),
        });
        const err = await rejection(up({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toContain(
            "statement 6 of 7; it ran without a transaction (-- migrate:no-transaction): statements 1 to 1 stay applied; statements 2 to 5 (the BEGIN block at line 3) were rolled back with it; 001_sp is recorded as failed (statement 6)",
        );
        expect(await one(url, "SELECT to_regclass('keep')::text AS k, to_regclass('t') AS t")).toEqual({
            k: "keep",
            t: null,
        });
        expect((await status({ databaseUrl: url, migrationsDir: dir })).migrations[0]).toMatchObject({
            status: "failed",
            failedStatement: 6,
        });
    });

    it("refuses DISCARD ALL and pg_advisory_unlock_all, which would release the migration lock", async () => {
        const url = await pg.createDatabase("unlock");
        for (const body of ["-- migrate:no-transaction\nDISCARD ALL;\n", "SELECT pg_advisory_unlock_all();\n"]) {
            const dir = migrationsDir({ "001_x.sql": "CREATE TABLE x (id INTEGER);\n", "002_unlock.sql": body });
            expect((await rejection(up({ databaseUrl: url, migrationsDir: dir }))).message).toMatch(
                /^002_unlock\.sql line \d+: DISCARD ALL and pg_advisory_unlock\(_all\) release the runner's migration lock/,
            );
            expect(await historyNames(url)).toEqual([]);
        }
    });

    it("refuses a history table that has the runner's first columns and others, untouched", async () => {
        const url = await pg.createDatabase("partial");
        await withClient(url, (c) =>
            c.query(
                "CREATE SCHEMA ops; CREATE TABLE ops.migrations (id SERIAL PRIMARY KEY, name TEXT, checksum TEXT, applied_at TIMESTAMPTZ, tool TEXT)",
            ),
        );
        const dir = migrationsDir({ "001_a.sql": "-- migrate:no-transaction\nCREATE TABLE a (id INTEGER);\n" });
        expect(
            (await rejection(up({ databaseUrl: url, migrationsDir: dir, historyTable: "ops.migrations" }))).message,
        ).toMatch(
            /^ops\.migrations exists but is not this runner's history \(its columns: applied_at, checksum, id, name, tool;/,
        );
        expect(
            await one(
                url,
                "SELECT to_regclass('public.a') AS a, (SELECT count(*)::int FROM information_schema.columns WHERE table_name = 'migrations') AS n",
            ),
        ).toEqual({ a: null, n: 5 });
    });

    it("a failed down file says what each way out does", async () => {
        const url = await pg.createDatabase("downfail");
        const dir = migrationsDir({
            "001_t.sql": "-- migrate:no-transaction\nCREATE TABLE t1 (id INTEGER);\nCREATE TABLE t2 (id INTEGER);\n",
            "001_t.down.sql": "-- migrate:no-transaction\nDROP TABLE t1;\nDROP TABLE nope;\nDROP TABLE t2;\n",
        });
        await up({ databaseUrl: url, migrationsDir: dir });
        const err = await rejection(down({ databaseUrl: url, migrationsDir: dir }));
        expect(err.message).toContain(
            "001_t is recorded as failed (while reverting, statement 2), and `up` refuses it until you resolve it: finish the revert by hand, then `migrate resolve 001_t --retry` (records it as not applied: the next up runs its up file), or undo what the down file did and `migrate resolve 001_t --applied`",
        );
        expect((await status({ databaseUrl: url, migrationsDir: dir })).migrations[0]?.error).toBe(
            'while reverting: table "nope" does not exist',
        );
    });

    it("reads backslashes as the server does (standard_conforming_strings off), and identifiers in any script", async () => {
        const url = await pg.createDatabase("scs");
        const dbName = new URL(url).pathname.slice(1);
        await withClient(url, (c) => c.query(`ALTER DATABASE "${dbName}" SET standard_conforming_strings = off`));
        const dir = migrationsDir({
            "001_scs.sql":
                "CREATE TABLE t1 (v TEXT);\nINSERT INTO t1 VALUES ('a\\'');\nCOMMIT;\nINSERT INTO t1 VALUES ('b');\n",
        });
        expect((await rejection(up({ databaseUrl: url, migrationsDir: dir }))).message).toMatch(
            /^001_scs\.sql line 3: COMMIT inside/,
        );
        expect(await one(url, "SELECT to_regclass('t1') AS t")).toEqual({ t: null });
        expect(splitStatements("CREATE FUNCTION ébegin() RETURNS int LANGUAGE sql RETURN 1;\nCOMMIT;\n")).toHaveLength(
            2,
        );
        expect(
            splitStatements(
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS éend; SELECT 2; END;\nSELECT 3;\n",
            ),
        ).toHaveLength(2);
    });

    it("refuses a wrapping BEGIN with options it could not honour", async () => {
        const url = await pg.createDatabase("beginopts");
        const dir = migrationsDir({
            "001_iso.sql": "BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE iso (id INTEGER);\nCOMMIT;\n",
        });
        expect((await rejection(up({ databaseUrl: url, migrationsDir: dir }))).message).toMatch(
            /^001_iso\.sql line 1: a wrapping BEGIN with options \(an isolation level, READ ONLY, DEFERRABLE\) cannot be honoured/,
        );
        // A SAVEPOINT inside a wrapper is blamed on its own line.
        const sp = migrationsDir({ "001_sp.sql": "BEGIN;\nCREATE TABLE a (id INTEGER);\nSAVEPOINT s1;\nCOMMIT;\n" });
        expect((await rejection(up({ databaseUrl: url, migrationsDir: sp }))).message).toMatch(
            /^001_sp\.sql line 3: SAVEPOINT inside/,
        );
    });

    it("status names an out-of-order pending file as a problem (up refuses it)", async () => {
        const url = await pg.createDatabase("order");
        await up({
            databaseUrl: url,
            migrationsDir: migrationsDir({ "001_a.sql": "SELECT 1;\n", "003_c.sql": "SELECT 3;\n" }),
        });
        const late = migrationsDir({
            "001_a.sql": "SELECT 1;\n",
            "002_b.sql": "SELECT 2;\n",
            "003_c.sql": "SELECT 3;\n",
        });
        expect(problemsOf(await status({ databaseUrl: url, migrationsDir: late }))).toEqual([
            "002_b.sql is pending but sorts before an applied migration; up refuses it; renumber it after the last one",
        ]);
    });

    it("a deferred constraint that fails at COMMIT names the file; a directory named like a migration is refused by name", async () => {
        const url = await pg.createDatabase("deferred");
        const dir = migrationsDir({
            "001_fk.sql":
                "CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED);\nINSERT INTO c VALUES (1);\n",
        });
        expect((await rejection(up({ databaseUrl: url, migrationsDir: dir }))).message).toMatch(
            /^001_fk\.sql failed at COMMIT: insert or update on table "c" violates foreign key constraint .*; rolled back: the database is as it was before this file/,
        );
        expect(await historyNames(url)).toEqual([]);
        const withDir = migrationsDir({ "001_a.sql": "SELECT 1;\n" });
        (await import("node:fs")).mkdirSync(join(withDir, "005_dir.sql"));
        expect((await rejection(up({ databaseUrl: url, migrationsDir: withDir }))).message).toBe(
            `005_dir.sql in ${withDir} is not a file; a migration is a NNN_name.sql file: move it out of the migrations directory`,
        );
    });
});
