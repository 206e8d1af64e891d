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
