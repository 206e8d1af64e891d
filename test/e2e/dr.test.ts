// The disaster drill (issue 22, item 6) on the real engine, through the path `npm run dr` takes: the dump is
// made inside a Postgres container of the stack's image, pushed to a real off-site SFTP target (a second
// sshd on 127.0.0.1), the container and its data directory are removed, and a NEW container on an EMPTY data
// directory (as `npm run up` leaves it: the owner role, an empty database) gets every row, the database's
// settings and its grants back through scripts/dr.ts's containerDatabase (psql and pg_restore in the
// container, over its local socket) from the off-site copy alone.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pushOffsite, type OffsiteTarget } from "../../agent/offsite";
import { containerDatabase, disasterRestore, type DrDatabase } from "../../scripts/dr";
import { startSftpTarget, type SftpTarget } from "../integration/support/sftpTarget";
import { HARNESS_LABEL } from "./harness/models";
import { clearLeftovers, removeTempDir, requireEngine, tempDir } from "./support";
import { takeTurnsOnEngine } from "./hooks";

const engine = requireEngine();
const NAME = "mrs-e2e-dr-postgres";
const DB = "marvel_rivals";
const OWNER = "marvel_stats";

takeTurnsOnEngine(engine);

function docker(args: string[], env: Record<string, string> = {}): string {
    const r = spawnSync("docker", args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: 180_000 });
    if (r.status !== 0) throw new Error(`docker ${args.slice(0, 2).join(" ")} failed: ${r.stderr}`);
    return r.stdout;
}

/** A Postgres container of the stack's image on `dataDir`, as the stack starts one; ready when it answers. */
async function startServer(dataDir: string): Promise<void> {
    docker(
        [
            "run",
            "-d",
            "--name",
            NAME,
            "--network",
            "none",
            // The harness's mark: clearLeftovers removes what a failed run left, and nothing else.
            "--label",
            `${HARNESS_LABEL}=1`,
            "-e",
            `POSTGRES_USER=${OWNER}`,
            "-e",
            `POSTGRES_DB=${DB}`,
            "-e",
            "POSTGRES_PASSWORD",
            "-v",
            `${dataDir}:/var/lib/postgresql/data`,
            "postgres:16-alpine",
        ],
        { POSTGRES_PASSWORD: "initdb-only-password-e2e" },
    );
    for (let i = 0; i < 240; i++) {
        const r = spawnSync("docker", ["exec", NAME, "pg_isready", "-h", "127.0.0.1", "-U", OWNER, "-d", DB]);
        if (r.status === 0) return;
        await new Promise((res) => setTimeout(res, 500));
    }
    throw new Error(`${NAME} did not become ready: ${docker(["logs", "--tail", "30", NAME])}`);
}

async function exec(db: DrDatabase, database: string, statements: string[]): Promise<void> {
    for (const s of statements) await db.query(s, database);
}

async function fingerprint(db: DrDatabase): Promise<unknown> {
    const tables = await db.query(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) FROM pg_stat_user_tables ORDER BY 1",
        DB,
    );
    const rows: Record<string, string[]> = {};
    for (const [t] of tables)
        [rows[t]] = await db.query(`SELECT count(*), md5(string_agg(x::text, '|' ORDER BY x::text)) FROM ${t} x`, DB);
    const settings = await db.query(
        `SELECT coalesce(r.rolname, '*'), array_to_string(s.setconfig, ',') FROM pg_db_role_setting s
         JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole
         WHERE d.datname = '${DB}' ORDER BY 1`,
    );
    const acl = await db.query(`SELECT datacl::text, pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${DB}'`);
    return { rows, settings, acl };
}

describe.skipIf(!engine)("the disaster drill on the real engine", () => {
    let work: string;
    let sftp: SftpTarget;
    let target: OffsiteTarget;

    beforeAll(async () => {
        await clearLeftovers([NAME]);
        work = tempDir("dr");
        sftp = await startSftpTarget();
        writeFileSync(path.join(work, "password"), "e2e-drill-password-0123456789\n", { mode: 0o600 });
        target = {
            repository: sftp.repository,
            passwordFile: path.join(work, "password"),
            sshKeyFile: sftp.keyFile,
            knownHostsFile: sftp.knownHostsFile,
        };
    });
    afterAll(async () => {
        await clearLeftovers([NAME]).catch(() => undefined);
        await sftp?.stop();
        // The data directories belong to the container's postgres user: removed as root.
        removeTempDir(work);
    });

    it("a new container on an empty data directory gets every row, setting and grant from the off-site copy alone", async () => {
        const db = containerDatabase(undefined, NAME, OWNER);
        const oldData = mkdtempSync(path.join(work, "old-data-"));
        chmodSync(oldData, 0o777);
        await startServer(oldData);
        await exec(db, "postgres", [
            "CREATE ROLE marvel_stats_a LOGIN IN ROLE marvel_stats",
            `ALTER DATABASE ${DB} SET work_mem = '12MB'`,
            `ALTER ROLE marvel_stats_a IN DATABASE ${DB} SET statement_timeout = '20s'`,
            `REVOKE CONNECT, TEMPORARY ON DATABASE ${DB} FROM PUBLIC`,
            `GRANT CONNECT ON DATABASE ${DB} TO marvel_stats_a`,
        ]);
        await exec(db, DB, [
            "CREATE TABLE players (player_id BIGINT PRIMARY KEY, username TEXT NOT NULL)",
            "INSERT INTO players SELECT g, 'player-' || g FROM generate_series(1, 30000) g",
            "CREATE TABLE matches (match_id TEXT PRIMARY KEY, payload JSONB NOT NULL)",
            "INSERT INTO matches SELECT 'm' || g, jsonb_build_object('hero', 'Jeff', 'n', g) FROM generate_series(1, 3000) g",
        ]);
        const before = await fingerprint(db);

        // The nightly dump, made by the server's own pg_dump in its container, with its record.
        const backups = mkdtempSync(path.join(work, "backups-"));
        const dump = path.join(backups, "mrs-20260204T030000Z.dump");
        const r = spawnSync("docker", ["exec", NAME, "pg_dump", "-Fc", "-U", OWNER, "-d", DB], {
            maxBuffer: 512 * 1024 * 1024,
        });
        expect(r.status, r.stderr?.toString()).toBe(0);
        writeFileSync(dump, r.stdout, { mode: 0o600 });
        const sha256 = createHash("sha256").update(readFileSync(dump)).digest("hex");
        writeFileSync(`${dump}.json`, JSON.stringify({ status: "passed", sha256 }), { mode: 0o600 });
        await pushOffsite(target, [dump, `${dump}.json`], ["kind=scheduled"]);

        // The server is lost: container, data directory and backup directory.
        docker(["rm", "-f", NAME]);
        rmSync(oldData, { recursive: true, force: true });
        rmSync(backups, { recursive: true, force: true });

        // A new machine: `npm run up` on an empty dataDir (owner role, empty database), the login role.
        const newData = mkdtempSync(path.join(work, "new-data-"));
        chmodSync(newData, 0o777);
        await startServer(newData);
        await exec(db, "postgres", ["CREATE ROLE marvel_stats_a LOGIN IN ROLE marvel_stats"]);
        expect((await fingerprint(db)) as object).not.toEqual(before);

        const result = await disasterRestore({ target, dump: "latest", dbName: DB, db, workDir: work });
        expect(result).toMatchObject({ dump: "mrs-20260204T030000Z.dump", sha256 });
        expect(await fingerprint(db)).toEqual(before);
    }, 600_000);
});
