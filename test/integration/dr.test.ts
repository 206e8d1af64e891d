// The disaster drill (issue 22, item 6) end to end on this machine: a database with rows, its own settings
// (ALTER DATABASE ... SET) and grants is dumped and pushed to a real off-site SFTP target (a second sshd),
// the server is destroyed, and a NEW, EMPTY cluster gets it back from the off-site copy alone. Real
// PostgreSQL 16, real pg_dump/pg_restore, real restic.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { pushOffsite, type OffsiteTarget } from "../../agent/offsite";
import { disasterRestore } from "../../scripts/dr";
import { Refusal } from "../../scripts/target";
import { startPostgres, type TestPostgres } from "../../app/test/support/postgres";
import { startSftpTarget, type SftpTarget } from "./support/sftpTarget";
import { drDatabase, dumpDatabase, fingerprint } from "./support/drill";

const DB = "marvel_rivals";
let sftp: SftpTarget;
let work: string;
let target: OffsiteTarget;
const servers: TestPostgres[] = [];

beforeAll(async () => {
    sftp = await startSftpTarget();
    work = mkdtempSync(path.join(tmpdir(), "mrs-dr-test-"));
    writeFileSync(path.join(work, "password"), "drill-password-kept-in-a-password-manager\n", { mode: 0o600 });
    target = {
        repository: sftp.repository,
        passwordFile: path.join(work, "password"),
        sshKeyFile: sftp.keyFile,
        knownHostsFile: sftp.knownHostsFile,
    };
});
afterAll(async () => {
    for (const s of servers) await s.cleanup();
    await sftp?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
});

async function sql(server: TestPostgres, database: string, statements: string[]): Promise<void> {
    const c = new pg.Client({
        host: "127.0.0.1",
        port: server.port,
        user: server.user,
        password: server.password,
        database,
    });
    await c.connect();
    try {
        for (const s of statements) await c.query(s);
    } finally {
        await c.end();
    }
}

/** The stack's roles, as `npm run up` makes them on any new cluster (components/postgres.ts). */
const STACK_ROLES = [
    "CREATE ROLE marvel_stats LOGIN",
    "CREATE ROLE marvel_stats_a LOGIN IN ROLE marvel_stats",
    "CREATE ROLE marvel_stats_b NOLOGIN IN ROLE marvel_stats",
];

test("from the off-site copy alone, a new empty cluster gets every row, the database's settings and its grants back", async () => {
    // The old server: the stack's database with data, settings and grants.
    const old = await startPostgres();
    servers.push(old);
    await sql(old, "postgres", [
        ...STACK_ROLES,
        `CREATE DATABASE ${DB} OWNER marvel_stats`,
        `ALTER DATABASE ${DB} SET work_mem = '12MB'`,
        `ALTER DATABASE ${DB} SET statement_timeout = '45s'`,
        `ALTER ROLE marvel_stats_a IN DATABASE ${DB} SET search_path = public, stats`,
        `REVOKE CONNECT, TEMPORARY ON DATABASE ${DB} FROM PUBLIC`,
        `GRANT CONNECT ON DATABASE ${DB} TO marvel_stats_a`,
    ]);
    await sql(old, DB, [
        "SET ROLE marvel_stats",
        "CREATE TABLE players (player_id BIGINT PRIMARY KEY, username TEXT NOT NULL, rank_tier TEXT, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        "CREATE TABLE matches (match_id TEXT PRIMARY KEY, season TEXT NOT NULL, payload JSONB NOT NULL, raw BYTEA)",
        "INSERT INTO players SELECT g, 'player-' || g, (ARRAY['Bronze','Gold','Grandmaster'])[1 + g % 3], '2026-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 20000) g",
        "INSERT INTO matches SELECT 'm' || g, '5.5', jsonb_build_object('kills', g % 17, 'hero', 'Jeff'), decode(md5(g::text), 'hex') FROM generate_series(1, 5000) g",
        "GRANT SELECT ON players TO marvel_stats_a",
    ]);
    const before = await fingerprint(old, DB);
    expect(before.settings).toEqual([
        ["*", "work_mem=12MB,statement_timeout=45s"],
        ["marvel_stats_a", "search_path=public, stats"],
    ]);
    expect(before.datacl).toContain("marvel_stats_a=c/marvel_stats");

    // The nightly pass: a dump, its record, pushed off-site.
    const local = mkdtempSync(path.join(work, "backups-"));
    const dumpFile = path.join(local, "mrs-20260204T030000Z.dump");
    const sha256 = await dumpDatabase(old, DB, dumpFile);
    writeFileSync(`${dumpFile}.json`, JSON.stringify({ status: "passed", sha256 }), { mode: 0o600 });
    await pushOffsite(target, [dumpFile, `${dumpFile}.json`], ["kind=scheduled"]);

    // The server dies with its disks: cluster and backup directory gone.
    await old.cleanup();
    servers.splice(servers.indexOf(old), 1);
    rmSync(local, { recursive: true, force: true });

    // A new machine: an empty data directory, the stack's roles and its empty database (what `npm run up`
    // makes), with the migration history the up's migration step writes.
    const fresh = await startPostgres();
    servers.push(fresh);
    await sql(fresh, "postgres", [...STACK_ROLES, `CREATE DATABASE ${DB} OWNER marvel_stats`]);
    await sql(fresh, DB, [
        "CREATE TABLE schema_migrations (name TEXT PRIMARY KEY)",
        "INSERT INTO schema_migrations VALUES ('0001_initial.sql')",
    ]);

    const result = await disasterRestore({ target, dump: "latest", dbName: DB, db: drDatabase(fresh), workDir: work });
    expect(result).toMatchObject({ dump: "mrs-20260204T030000Z.dump", sha256 });

    expect(await fingerprint(fresh, DB)).toEqual(before);
}, 300_000);

test("the drill refuses a database that holds rows, and leaves it as it was", async () => {
    const live = await startPostgres();
    servers.push(live);
    await sql(live, "postgres", [...STACK_ROLES, `CREATE DATABASE ${DB} OWNER marvel_stats`]);
    await sql(live, DB, ["CREATE TABLE players (player_id BIGINT PRIMARY KEY)", "INSERT INTO players VALUES (1), (2)"]);
    const err = await disasterRestore({
        target,
        dump: "latest",
        dbName: DB,
        db: drDatabase(live),
        workDir: work,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Refusal);
    expect((err as Error).message).toBe(
        `the database ${DB} already holds data (2 rows in public.players): the drill restores only into a new, empty one; for a running stack use \`npm run restore\``,
    );
    expect((await drDatabase(live).query("SELECT count(*) FROM players", DB))[0][0]).toBe("2");
});
