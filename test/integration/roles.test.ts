// Least privilege in the database (issue 24, item 1), against a real PostgreSQL 16: the credentials step's
// SQL (components/postgres.ts, credentialsSql) leaves the app's login roles with the rights of the app's own
// queries and nothing more, gives the backup role read access to everything, and moves a database set up by
// the previous version (login roles that were members of the owner, acting as it) without losing a row.
import { afterAll, beforeAll, expect, test } from "vitest";
import * as path from "node:path";
import pg from "pg";
import { backupRole, credentialsSql, loginRoles, readerRole, scramVerifier } from "../../components/postgres";
import { retireSql } from "../../scripts/rotate";
import { up } from "../../app/src/migrate";
import { queryHeroes, querySummary } from "../../app/src/stats";
import { seed } from "../../app/src/seed";
import { listPending } from "../../app/src/migrate/history";
import { startPostgres, type TestPostgres } from "../../app/test/support/postgres";

const MIGRATIONS = path.resolve(__dirname, "../../migrations");
const PASSWORD = "first-password-0123456789";
const SALT = "00112233445566778899aabbccddeeff";

let server: TestPostgres;

beforeAll(async () => {
    server = await startPostgres();
});
afterAll(async () => {
    await server?.cleanup();
});

/**
 * The previous version's credentials SQL (main at 87ec0be, components/postgres.ts, credentialsSql), kept
 * verbatim: login roles members of the owner with `SET role` to it. The upgrade test starts from it.
 */
function previousCredentialsSql(owner: string, roles: { active: string; inactive: string }, password: string) {
    const verifier = scramVerifier(password);
    const make = (r: string) =>
        `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${r}') THEN CREATE ROLE "${r}" NOLOGIN INHERIT IN ROLE "${owner}"; END IF; END $$;`;
    return [
        `ALTER ROLE "${owner}" PASSWORD '${verifier}';`,
        make(roles.active),
        make(roles.inactive),
        `ALTER ROLE "${roles.active}" SET role = '${owner}';`,
        `ALTER ROLE "${roles.inactive}" SET role = '${owner}';`,
        `ALTER ROLE "${roles.active}" WITH LOGIN PASSWORD '${verifier}';`,
    ].join("\n");
}

/**
 * A database as the official image makes it: `owner` is initdb's superuser (POSTGRES_USER) and owns the
 * database. The SQL steps run as the owner, as the credentials step does through the container's socket.
 */
async function stackDatabase(owner: string) {
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    await admin.query(`CREATE ROLE "${owner}" SUPERUSER LOGIN PASSWORD '${PASSWORD}'`);
    await admin.query(`CREATE DATABASE "${owner}" OWNER "${owner}"`);
    await admin.end();
    const url = (user: string, password = PASSWORD) =>
        `postgres://${user}:${password}@127.0.0.1:${server.port}/${owner}`;
    const runAsOwner = async (sql: string, password = PASSWORD) => {
        const c = new pg.Client({ connectionString: url(owner, password) });
        await c.connect();
        try {
            for (const statement of sql.split("\n")) await c.query(statement);
        } finally {
            await c.end();
        }
    };
    const withPool = async <T>(user: string, work: (p: pg.Pool) => Promise<T>, password = PASSWORD) => {
        const pool = new pg.Pool({ connectionString: url(user, password), max: 2 });
        try {
            return await work(pool);
        } finally {
            await pool.end();
        }
    };
    return { url, runAsOwner, withPool };
}

/** Everything an app's login role must not be able to do, each expected to fail with its own error. */
async function expectNoMoreThanTheApp(pool: pg.Pool, owner: string) {
    const denied = async (sql: string) => {
        const err = await pool.query(sql).then(
            () => undefined,
            (e: Error) => e,
        );
        expect(err, `${sql} was allowed`).toBeInstanceOf(Error);
        return err!.message;
    };
    expect((await pool.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).rows).toEqual([
        { rolsuper: false },
    ]);
    expect(await denied("COPY (SELECT 1) TO PROGRAM 'id'")).toMatch(/permission denied|must be superuser/);
    expect(await denied("CREATE TABLE public.planted (id int)")).toMatch(/permission denied for schema public/);
    expect(await denied("CREATE SCHEMA planted")).toMatch(/permission denied for database/);
    expect(await denied("DROP TABLE players")).toMatch(/must be owner/);
    expect(await denied("TRUNCATE players")).toMatch(/permission denied/);
    expect(await denied("ALTER TABLE players ADD COLUMN x int")).toMatch(/must be owner/);
    expect(await denied("DELETE FROM migration_runner.history")).toMatch(/permission denied/);
    expect(await denied("SELECT pg_read_file('/etc/passwd')")).toMatch(/permission denied/);
    expect(await denied(`SET role "${owner}"`)).toMatch(/permission denied/);
    const { rows } = await pool.query<{ m: boolean }>(
        "SELECT pg_has_role(current_user, 'pg_execute_server_program', 'USAGE') AS m",
    );
    expect(rows).toEqual([{ m: false }]);
}

/** The app's queries (app/src/stats.ts, seed.ts, its readiness check's history read) as `user`. */
async function appQueriesWork(pool: pg.Pool) {
    const report = await seed(pool);
    expect(report.players.total).toBeGreaterThan(0);
    const summary = await querySummary(pool);
    expect(summary.players).toBeGreaterThan(0);
    expect((await queryHeroes(pool, null)).heroes.length).toBeGreaterThan(0);
    expect((await queryHeroes(pool, "Gold")).rank).toBe("Gold");
    expect(await listPending(pool, MIGRATIONS)).toEqual([]);
    // What the seed plan's collector will write (an UPDATE and a DELETE on its own tables).
    await pool.query("UPDATE players SET last_updated = now() WHERE username = (SELECT min(username) FROM players)");
    await pool.query("DELETE FROM collection_metadata WHERE false");
}

test("a new stack: the app's login role has the rights of the app's queries only; the backup role reads everything", async () => {
    const owner = "fresh_stats";
    const db = await stackDatabase(owner);
    const roles = loginRoles(owner, 0);
    // As the program orders it: the credentials step, then the migration step (as the owner), then the app.
    await db.runAsOwner(credentialsSql(owner, roles, PASSWORD, SALT));
    await up({ databaseUrl: db.url(owner), migrationsDir: MIGRATIONS });

    await db.withPool(roles.active, async (pool) => {
        await appQueriesWork(pool);
        await expectNoMoreThanTheApp(pool, owner);
        expect((await pool.query("SELECT current_user AS u")).rows).toEqual([{ u: roles.active }]);
    });
    // The inactive role cannot log in on a new database.
    await expect(db.withPool(roles.inactive, (p) => p.query("SELECT 1"))).rejects.toThrow(/password|not permitted/);

    // The backup role: every table readable, nothing writable, not a superuser.
    await db.withPool(backupRole(owner), async (pool) => {
        const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM match_participants");
        expect(rows[0]!.n).toBeGreaterThan(0);
        expect((await pool.query("SELECT count(*)::int AS n FROM migration_runner.history")).rows[0].n).toBe(4);
        await expect(pool.query("DELETE FROM players")).rejects.toThrow(/permission denied/);
        await expect(pool.query("COPY (SELECT 1) TO PROGRAM 'id'")).rejects.toThrow(/permission denied|superuser/);
        expect((await pool.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).rows).toEqual([
            { rolsuper: false },
        ]);
    });
    // The stored verifier carries the kept salt, not one derived from the password.
    const stored = await db.withPool(owner, (p) =>
        p.query("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [roles.active]),
    );
    expect(stored.rows[0].rolpassword).toBe(scramVerifier(PASSWORD, SALT));
    expect(stored.rows[0].rolpassword).not.toBe(scramVerifier(PASSWORD));
});

test("each login has its own password: the app's opens no other role, the owner's above all", async () => {
    const owner = "split_stats";
    const db = await stackDatabase(owner);
    const roles = loginRoles(owner, 0);
    const passwords = {
        owner: "owner-password-0123456789",
        app: "app-password-0123456789",
        backup: "backup-password-0123456789",
        reader: "reader-password-0123456789",
    };
    await db.runAsOwner(credentialsSql(owner, roles, passwords, SALT));
    const logins = { owner, app: roles.active, backup: backupRole(owner), reader: readerRole(owner) };
    const opens = async (user: string, password: string) =>
        db
            .withPool(user, (p) => p.query("SELECT 1"), password)
            .then(
                () => true,
                (e: Error) => {
                    expect(e.message).toMatch(/password authentication failed/);
                    return false;
                },
            );
    for (const [who, user] of Object.entries(logins))
        for (const [whose, password] of Object.entries(passwords))
            expect(await opens(user, password), `${whose}'s password as ${who} (${user})`).toBe(who === whose);
    // The reader reads everything and changes nothing, as the backup role.
    await up({ databaseUrl: db.url(owner, passwords.owner), migrationsDir: MIGRATIONS });
    await db.withPool(
        readerRole(owner),
        async (pool) => {
            expect((await pool.query("SELECT count(*)::int AS n FROM migration_runner.history")).rows[0].n).toBe(4);
            await expect(pool.query("DELETE FROM players")).rejects.toThrow(/permission denied/);
            await expect(pool.query("CREATE TABLE public.planted (id int)")).rejects.toThrow(/permission denied/);
        },
        passwords.reader,
    );
});

test("a stack of the previous version moves on its next credentials step: every row kept, the login roles lose the owner's rights, the rotation still works", async () => {
    const owner = "old_stats";
    const db = await stackDatabase(owner);
    const first = loginRoles(owner, 0);
    await db.runAsOwner(previousCredentialsSql(owner, first, PASSWORD));
    await up({ databaseUrl: db.url(owner), migrationsDir: MIGRATIONS });
    // The old app: acts as the owner, can do anything the owner can.
    const before = await db.withPool(first.active, async (pool) => {
        await seed(pool);
        expect((await pool.query("SELECT current_user AS u")).rows).toEqual([{ u: owner }]);
        return querySummary(pool);
    });

    // The next `up`: the same password, now with this version's SQL.
    await db.runAsOwner(credentialsSql(owner, first, PASSWORD, SALT));
    await db.withPool(first.active, async (pool) => {
        expect(await querySummary(pool)).toEqual(before);
        expect((await pool.query("SELECT current_user AS u")).rows).toEqual([{ u: first.active }]);
        await appQueriesWork(pool);
        await expectNoMoreThanTheApp(pool, owner);
    });
    // A second run of the step is the same (the step runs on every new container and password).
    await db.runAsOwner(credentialsSql(owner, first, PASSWORD, SALT));

    // A rotation: the new password goes to the other login role; the serving one still logs in until retired.
    const second = loginRoles(owner, 1);
    const newPassword = "second-password-0123456789";
    await db.runAsOwner(credentialsSql(owner, second, newPassword, SALT));
    await db.withPool(second.active, (pool) => expectNoMoreThanTheApp(pool, owner), newPassword);
    await db.withPool(first.active, async (pool) => expect(await querySummary(pool)).toEqual(before));
    await db.runAsOwner(retireSql(first.active), newPassword);
    await expect(db.withPool(first.active, (p) => p.query("SELECT 1"))).rejects.toThrow(/password|not permitted/);
    await db.withPool(second.active, async (pool) => expect(await querySummary(pool)).toEqual(before), newPassword);
    // The owner (migrations, backups' restores) kept every right, and the backup role the new password.
    await db.withPool(owner, (p) => p.query("CREATE TABLE owner_can (id int)"), newPassword);
    await db.withPool(backupRole(owner), (p) => p.query("SELECT * FROM owner_can"), newPassword);
});
