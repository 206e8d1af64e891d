// Backups before migrating: pg_dump of the database into <dir>/<UTC stamp>-before-<first pending>.sql.gz,
// only when something is pending, failing closed, and restorable with `gunzip -c FILE | psql`.
//
// Needs a pg_dump >= 16 (the server is 16): env PG_DUMP, else `pg_dump` on PATH. Debian bookworm only has
// 15; `.ci/pg-dump.sh` provides a 17 and prints its path (CI exports PG_DUMP from it). Without one these
// tests FAIL: backups are a safety feature, a skipped test would hide that it is untested.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { down, up } from "../../src/migrate";
import { SEED_DIR, historyNames, migrationsDir, rejection, removeMigrationDirs, withClient } from "./helpers";

const PG_DUMP = process.env.PG_DUMP || "pg_dump";
const PSQL = process.env.PSQL || "psql";

function majorOf(bin: string): number | null {
    const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
    const m = /\(PostgreSQL\) (\d+)/.exec(r.stdout ?? "");
    return m ? Number(m[1]) : null;
}

let pg: TestPostgres;
let work: string;

beforeAll(async () => {
    const major = majorOf(PG_DUMP);
    if (major === null || major < 16) {
        throw new Error(
            `backup tests need pg_dump >= 16 (the test server is PostgreSQL 16); ${PG_DUMP} ${major === null ? "cannot be run" : `is version ${major}`}. ` +
                `Run \`export PG_DUMP="$(.ci/pg-dump.sh)"\` (as root: installs pg_dump 17 from Debian trixie) or point PG_DUMP at a pg_dump >= 16.`,
        );
    }
    if (majorOf(PSQL) === null) {
        throw new Error(
            `backup restore tests need psql: ${PSQL} cannot be run; install postgresql-client or set PSQL to a psql binary`,
        );
    }
    pg = await startPostgres();
    work = mkdtempSync(join(tmpdir(), "mrs-backup-"));
});

afterAll(async () => {
    removeMigrationDirs();
    if (work) rmSync(work, { recursive: true, force: true });
    await pg?.cleanup();
});

/** The credentials go through PG* variables, as docs/operations.md says, never on the command line. */
function pgEnv(url: string): NodeJS.ProcessEnv {
    const u = new URL(url);
    return {
        ...process.env,
        PGHOST: u.hostname,
        PGPORT: u.port,
        PGUSER: decodeURIComponent(u.username),
        PGPASSWORD: decodeURIComponent(u.password),
        PGDATABASE: u.pathname.slice(1),
    };
}

const STAMPED = /^\d{8}T\d{6}Z-before-(.+)\.sql\.gz$/;

describe("backups", () => {
    it("dump before the first pending migration only, restore with gunzip | psql to the state before it", async () => {
        const url = await pg.createDatabase("bk");
        const backups = join(work, "restore");
        // A pg_dump that records how it was called, then runs the real one.
        const calls = join(work, "calls.txt");
        const spy = join(work, "pg_dump-spy.sh");
        writeFileSync(
            spy,
            `#!/bin/sh\nprintf 'argv=%s pgpassword_set=%s\\n' "$*" "\${PGPASSWORD:+yes}" >> "${calls}"\nexec "${PG_DUMP}" "$@"\n`,
        );
        chmodSync(spy, 0o755);

        const first = await up({ databaseUrl: url, migrationsDir: SEED_DIR, backupDir: backups, pgDump: spy });
        expect(first.applied).toHaveLength(4);
        expect(first.backup).not.toBeNull();
        expect(readdirSync(backups).map((f) => STAMPED.exec(f)?.[1])).toEqual(["001_initial_schema"]);
        expect(first.backup).toBe(join(backups, readdirSync(backups)[0]!));
        const password = decodeURIComponent(new URL(url).password);
        expect(readFileSync(calls, "utf8")).toBe(
            "argv=--no-password --format=plain --no-owner --lock-wait-timeout=5000 pgpassword_set=yes\n",
        );
        expect(readFileSync(calls, "utf8")).not.toContain(password);

        // Nothing pending: no dump.
        const noop = await up({ databaseUrl: url, migrationsDir: SEED_DIR, backupDir: backups, pgDump: spy });
        expect(noop.backup).toBeNull();
        expect(readdirSync(backups)).toHaveLength(1);

        // Data, then a migration that destroys some of it.
        await withClient(url, async (c) => {
            await c.query(`INSERT INTO players (username, rank_tier) VALUES ('alice', 'gold'), ('bob', NULL)`);
            await c.query(
                `INSERT INTO matches (match_id, mode, season, match_timestamp, duration_seconds) VALUES ('m1', 'quick', 1, now(), 600)`,
            );
            await c.query(
                `INSERT INTO match_participants (match_id, username, hero_name, role, team, won) VALUES ('m1', 'alice', 'Hulk', 'vanguard', 0, TRUE)`,
            );
        });
        const dir = migrationsDir({ "900_purge_players.sql": "DELETE FROM players;\n" }, SEED_DIR);
        const purge = await up({ databaseUrl: url, migrationsDir: dir, backupDir: backups, pgDump: spy });
        expect(purge.applied.map((m) => m.name)).toEqual(["900_purge_players"]);
        expect(STAMPED.exec(purge.backup!.split("/").at(-1)!)?.[1]).toBe("900_purge_players");
        expect(readdirSync(backups)).toHaveLength(2);
        const sql = gunzipSync(readFileSync(purge.backup!)).toString("utf8");
        expect(sql).toContain("PostgreSQL database dump");
        // A pg_dump 17 header line that a 16 server rejects on restore is dropped.
        expect(sql).not.toMatch(/^SET transaction_timeout/m);

        // Restore, exactly as docs/operations.md documents it, into a fresh database.
        const restored = await pg.createDatabase("bk_restored");
        execFileSync(
            "sh",
            ["-c", 'gunzip -c "$1" | "$2" -X -q -v ON_ERROR_STOP=1 --single-transaction', "sh", purge.backup!, PSQL],
            {
                env: pgEnv(restored),
                stdio: ["ignore", "ignore", "pipe"],
            },
        );
        await withClient(restored, async (c) => {
            expect((await c.query(`SELECT username, rank_tier FROM players ORDER BY 1`)).rows).toEqual([
                { username: "alice", rank_tier: "gold" },
                { username: "bob", rank_tier: null },
            ]);
            expect((await c.query(`SELECT match_id, username, hero_name FROM match_participants`)).rows).toEqual([
                { match_id: "m1", username: "alice", hero_name: "Hulk" },
            ]);
        });
        expect(await historyNames(restored)).toEqual([
            "001_initial_schema",
            "002_add_indexes",
            "003_seed_plan_schema",
            "004_plan_schema_migrations",
        ]);
        // The restored history matches the files: only the purge is pending there.
        expect((await up({ databaseUrl: restored, migrationsDir: dir })).applied.map((m) => m.name)).toEqual([
            "900_purge_players",
        ]);
    });

    it("a failed migration retried keeps one dump before it (the newest); dumps before other migrations stay", async () => {
        const url = await pg.createDatabase("bk_retry");
        const backups = join(work, "retry");
        await up({ databaseUrl: url, migrationsDir: SEED_DIR, backupDir: backups });
        const first = readdirSync(backups);
        expect(first.map((f) => STAMPED.exec(f)?.[1])).toEqual(["001_initial_schema"]);
        const dir = migrationsDir({ "901_broken.sql": "SELECT * FROM no_such_table;\n" }, SEED_DIR);
        const dumpsAfterAttempt = async () => {
            await expect(up({ databaseUrl: url, migrationsDir: dir, backupDir: backups })).rejects.toThrow(
                /901_broken/,
            );
            // The stamp has one-second resolution: the next attempt's dump gets a later name.
            await new Promise((r) => setTimeout(r, 1100));
            return readdirSync(backups).sort();
        };
        const once = await dumpsAfterAttempt();
        const twice = await dumpsAfterAttempt();
        expect(once.map((f) => STAMPED.exec(f)?.[1])).toEqual(["001_initial_schema", "901_broken"]);
        expect(twice.map((f) => STAMPED.exec(f)?.[1])).toEqual(["001_initial_schema", "901_broken"]);
        // The newest attempt's dump is the one kept; the first one's is gone.
        expect(twice[1]).not.toBe(once[1]);
        expect(twice[0]).toBe(first[0]);
    });

    it("dumps before reverting too: down can drop data", async () => {
        const url = await pg.createDatabase("bk_down");
        const backups = join(work, "down");
        await up({ databaseUrl: url, migrationsDir: SEED_DIR });
        expect(readdirSync(work)).not.toContain("down");
        const r = await down({ databaseUrl: url, migrationsDir: SEED_DIR, backupDir: backups });
        expect(r.reverted.map((m) => m.name)).toEqual(["004_plan_schema_migrations"]);
        expect(readdirSync(backups).map((f) => STAMPED.exec(f)?.[1])).toEqual(["down-004_plan_schema_migrations"]);
        expect(r.backup).toBe(join(backups, readdirSync(backups)[0]!));
    });

    it("does not hang behind a table locked in another session: pg_dump gives up after --lock-timeout", async () => {
        const url = await pg.createDatabase("bk_locked");
        const backups = join(work, "locked");
        const dir = migrationsDir({ "001_a.sql": "CREATE TABLE a (id INTEGER);\n" });
        await up({ databaseUrl: url, migrationsDir: dir });
        writeFileSync(join(dir, "002_b.sql"), "CREATE TABLE b (id INTEGER);\n");
        await withClient(url, async (holder) => {
            // What a long ALTER TABLE or VACUUM FULL of the running app looks like to pg_dump.
            await holder.query("BEGIN");
            await holder.query("LOCK TABLE a IN ACCESS EXCLUSIVE MODE");
            const started = Date.now();
            const run = up({ databaseUrl: url, migrationsDir: dir, backupDir: backups, lockTimeoutMs: 300 });
            // Without --lock-wait-timeout pg_dump would wait for the lock forever: give up well before that.
            const err = await Promise.race([
                rejection(run),
                new Promise<Error>((r) => setTimeout(() => r(new Error("still waiting after 15 s")), 15_000)),
            ]);
            await holder.query("ROLLBACK");
            await run.catch(() => undefined);
            expect(Date.now() - started).toBeLessThan(15_000);
            expect(err.message).toMatch(
                new RegExp(
                    `^backup failed: ${PG_DUMP.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} exited 1: [^]*LOCK TABLE [^;]*public\\.a IN ACCESS SHARE MODE; another session held a lock on a table pg_dump must read for longer than 300 ms \\(--lock-timeout\\); run again when the database is quieter, find the holder in pg_locks / pg_stat_activity, or raise --lock-timeout; nothing was changed$`,
                ),
            );
        });
        expect(readdirSync(backups)).toEqual([]);
        expect(await historyNames(url)).toEqual(["001_a"]);
    }, 30_000);

    it("fails closed: when pg_dump cannot run, nothing is applied and no file is left", async () => {
        const url = await pg.createDatabase("bk_fail");
        const backups = join(work, "fail");
        const err = await rejection(
            up({ databaseUrl: url, migrationsDir: SEED_DIR, backupDir: backups, pgDump: "/nonexistent/pg_dump" }),
        );
        expect(err.message).toBe(
            "backup failed: cannot run /nonexistent/pg_dump: spawn /nonexistent/pg_dump ENOENT; install a pg_dump >= 16 (Debian: postgresql-client-17 from trixie, or .ci/pg-dump.sh) and set PG_DUMP to its path, or turn backups off; nothing was changed",
        );
        expect(readdirSync(backups)).toEqual([]);
        expect(
            await withClient(
                url,
                async (c) => (await c.query(`SELECT to_regclass('migration_runner.history') AS t`)).rows[0].t,
            ),
        ).toBeNull();
    });

    it("fails closed: when pg_dump exits non-zero, its message is shown and nothing is applied", async () => {
        const url = await pg.createDatabase("bk_fail2");
        const backups = join(work, "fail2");
        const failing = join(work, "pg_dump-fails.sh");
        writeFileSync(failing, `#!/bin/sh\necho "pg_dump: error: connection to server failed" >&2\nexit 1\n`);
        chmodSync(failing, 0o755);
        const err = await rejection(
            up({ databaseUrl: url, migrationsDir: SEED_DIR, backupDir: backups, pgDump: failing }),
        );
        expect(err.message).toBe(
            `backup failed: ${failing} exited 1: pg_dump: error: connection to server failed; fix pg_dump (it must be >= the server's major version) and run again; nothing was changed`,
        );
        expect(readdirSync(backups)).toEqual([]);
        expect(existsSync(join(backups, "x"))).toBe(false);
        expect(
            await withClient(url, async (c) => (await c.query(`SELECT to_regclass('players') AS t`)).rows[0].t),
        ).toBeNull();
    });
});
