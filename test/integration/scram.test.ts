// The Postgres component resets the role's password with a SCRAM verifier computed by the program. A real
// PostgreSQL 16 must accept that verifier and the password must log in with it (and a wrong one must not).
import { afterAll, beforeAll, expect, test } from "vitest";
import pg from "pg";
import { scramVerifier } from "../../components/postgres";
import { startPostgres, type TestPostgres } from "../../app/test/support/postgres";

let server: TestPostgres;

beforeAll(async () => {
    server = await startPostgres();
});
afterAll(async () => {
    await server?.cleanup();
});

async function canLogIn(user: string, password: string): Promise<boolean> {
    const client = new pg.Client({ host: "127.0.0.1", port: server.port, user, password, database: "postgres" });
    try {
        await client.connect();
        await client.query("SELECT 1");
        return true;
    } catch {
        return false;
    } finally {
        await client.end().catch(() => undefined);
    }
}

test("a role given the program's SCRAM verifier logs in with the password, and only with it", async () => {
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    try {
        await admin.query("CREATE ROLE marvel_stats LOGIN PASSWORD 'the-old-password'");
        expect(await canLogIn("marvel_stats", "the-old-password")).toBe(true);

        const sql = `ALTER ROLE "marvel_stats" PASSWORD '${scramVerifier("new-generated-password-0123")}'`;
        await admin.query(sql);
        const stored = await admin.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'marvel_stats'");
        expect(stored.rows[0].rolpassword).toBe(scramVerifier("new-generated-password-0123"));
    } finally {
        await admin.end();
    }
    expect(await canLogIn("marvel_stats", "new-generated-password-0123")).toBe(true);
    expect(await canLogIn("marvel_stats", "the-old-password")).toBe(false);
    expect(await canLogIn("marvel_stats", "new-generated-password-0124")).toBe(false);
});

test("the verifier is stable for one password and differs between passwords", () => {
    expect(scramVerifier("p1-long-enough")).toBe(scramVerifier("p1-long-enough"));
    expect(scramVerifier("p1-long-enough")).not.toBe(scramVerifier("p2-long-enough"));
    expect(scramVerifier("p1-long-enough")).toMatch(
        /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/,
    );
});

test("a rotation: the app's login roles (members of the app's group), the serving one keeps its password until it is retired, then only the new one logs in", async () => {
    const { credentialsSql, loginRoles } = await import("../../components/postgres");
    const { retireSql } = await import("../../scripts/rotate");
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    // In the app's database, as the credentials step runs it (grants and default privileges are per database).
    const asAdmin = async (sql: string) => {
        const inRot = new pg.Client({ connectionString: server.adminUrl.replace(/\/postgres$/, "/rot") });
        await inRot.connect();
        try {
            for (const statement of sql.split("\n")) await inRot.query(statement);
        } finally {
            await inRot.end();
        }
    };
    try {
        await admin.query("CREATE ROLE owner_x LOGIN");
        await admin.query("CREATE DATABASE rot OWNER owner_x");
        // Rotation 0: the app logs in as owner_x_a.
        await asAdmin(credentialsSql("owner_x", loginRoles("owner_x", 0), "first-password-0123456789"));
        // Applied twice (a re-run of the step): the same.
        await asAdmin(credentialsSql("owner_x", loginRoles("owner_x", 0), "first-password-0123456789"));
        const as = async (user: string, password: string, sql: string) => {
            const c = new pg.Client({ host: "127.0.0.1", port: server.port, user, password, database: "rot" });
            await c.connect();
            try {
                return (await c.query(sql)).rows;
            } finally {
                await c.end();
            }
        };
        // The login role acts as itself with the app's rights (issue 24): the owner makes the tables
        // (the migration step), the app reads them and cannot make its own.
        expect(await as("owner_x_a", "first-password-0123456789", "SELECT current_user AS u")).toEqual([
            { u: "owner_x_a" },
        ]);
        await as("owner_x", "first-password-0123456789", "CREATE TABLE t (id int)");
        await expect(as("owner_x_a", "first-password-0123456789", "CREATE TABLE u (id int)")).rejects.toThrow(
            /permission denied/,
        );
        expect(await canLogIn("owner_x_b", "first-password-0123456789")).toBe(false);

        // Rotation 1: the new password goes to owner_x_b and the owner; owner_x_a (the serving version's) still logs in.
        await asAdmin(credentialsSql("owner_x", loginRoles("owner_x", 1), "second-password-0123456789"));
        expect(await as("owner_x_b", "second-password-0123456789", "SELECT count(*)::int AS n FROM t")).toEqual([
            { n: 0 },
        ]);
        expect(await as("owner_x_a", "first-password-0123456789", "SELECT 1 AS one")).toEqual([{ one: 1 }]);
        expect(await canLogIn("owner_x", "first-password-0123456789")).toBe(false);

        // Retired once the serving version is gone: the old password logs in nowhere.
        for (const statement of retireSql("owner_x_a").split("\n")) await admin.query(statement);
        expect(await canLogIn("owner_x_a", "first-password-0123456789")).toBe(false);
        expect(await canLogIn("owner_x_b", "first-password-0123456789")).toBe(false);
        expect(await as("owner_x_b", "second-password-0123456789", "SELECT 1 AS one")).toEqual([{ one: 1 }]);
    } finally {
        await admin.end();
    }
});
