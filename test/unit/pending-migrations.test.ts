// The pending-migrations report (components/pendingMigrations.ts) from what the read of the database
// prints, against real migration directories: first deploy, nothing pending, pending with a backup first,
// drifted, missing and failed files, a stopped or unreadable database. And the stack output of the dev
// stack under mocks (no Postgres container yet): every file pending, not secret.
import { beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { reportPending, type PendingMigrationsArgs } from "../../components/pendingMigrations";
import { runProgram, type ProgramRun } from "../../support/mockProgram";

const REPO_MIGRATIONS = resolve(__dirname, "../../migrations");

function dir(files: Record<string, string>): string {
    const d = mkdtempSync(join(tmpdir(), "mrs-pending-"));
    for (const [name, sql] of Object.entries(files)) writeFileSync(join(d, name), sql);
    return d;
}
const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const args = (migrationsDir: string, backups = true): PendingMigrationsArgs => ({
    containerName: "marvel-rivals-postgres",
    dbUser: "marvel_stats",
    dbName: "marvel_rivals",
    dockerHost: "unix:///var/run/docker.sock",
    migrationsDir,
    backups,
});

describe("the report", () => {
    const files = {
        "001_a.sql": "-- 001_a: players\nCREATE TABLE a (id INTEGER);\n",
        "002_b.sql": "\n-- 002_b: an index\nCREATE INDEX b ON a (id);\n",
        "003_c.sql": "CREATE TABLE c (id INTEGER);\n",
    };
    it("on a first deploy: every file pending, no backup (nothing to back up)", () => {
        const r = reportPending("none", args(dir(files)));
        expect(r).toMatchObject({
            database: "not created yet",
            drifted: [],
            missing: [],
            failed: [],
            backupFirst: false,
        });
        expect(r.pending).toEqual([
            { file: "001_a.sql", firstLine: "-- 001_a: players" },
            { file: "002_b.sql", firstLine: "-- 002_b: an index" },
            { file: "003_c.sql", firstLine: "CREATE TABLE c (id INTEGER);" },
        ]);
        expect(r.summary[0]).toBe(
            "migrations: marvel-rivals-postgres (database marvel_rivals) does not exist yet: a first deploy, every file is pending (3)",
        );
    });

    it("against a history: pending with a backup first, drifted, missing and failed, each named", () => {
        const history = JSON.stringify([
            { name: "001_a", checksum: sha(files["001_a.sql"]), status: "applied" },
            { name: "002_b", checksum: sha("something else"), status: "applied" },
            { name: "000_gone", checksum: "x", status: "applied" },
        ]);
        const r = reportPending(history, args(dir(files)));
        expect(r).toMatchObject({
            database: "read",
            pending: [{ file: "003_c.sql", firstLine: "CREATE TABLE c (id INTEGER);" }],
            drifted: ["002_b.sql"],
            missing: ["000_gone.sql"],
            failed: [],
            backupFirst: true,
        });
        expect(r.summary).toEqual([
            "migrations: 1 pending on marvel-rivals-postgres (database marvel_rivals), a pg_dump into backups/ is taken first",
            "  pending  003_c.sql  CREATE TABLE c (id INTEGER);",
            "  DRIFTED  002_b.sql: changed after it was applied; the up will refuse it",
            "  MISSING  000_gone.sql: applied, but its file is gone; the up will refuse it",
        ]);
        const failed = reportPending(
            JSON.stringify([{ name: "001_a", checksum: sha(files["001_a.sql"]), status: "failed" }]),
            args(dir(files), false),
        );
        expect(failed.failed).toEqual(["001_a.sql"]);
        expect(failed.backupFirst).toBe(false);
        // The legacy history (no status column) reads as applied.
        const legacy = reportPending(
            JSON.stringify([{ name: "001_a", checksum: sha(files["001_a.sql"]) }]),
            args(dir(files)),
        );
        expect(legacy.pending.map((p) => p.file)).toEqual(["002_b.sql", "003_c.sql"]);
    });

    it("says when the history could not be read, and nothing pending when all is applied", () => {
        expect(reportPending("stopped", args(dir(files))).summary).toEqual([
            "migrations: marvel-rivals-postgres (database marvel_rivals) is stopped: its history was not read; the up starts it, then applies what is pending",
        ]);
        expect(
            reportPending('unreadable psql: error: FATAL: database "marvel_rivals" does not exist', args(dir(files)))
                .summary,
        ).toEqual([
            'migrations: the history of marvel-rivals-postgres (database marvel_rivals) could not be read (psql: error: FATAL: database "marvel_rivals" does not exist)',
        ]);
        const all = JSON.stringify(
            Object.entries(files).map(([f, sql]) => ({ name: f.slice(0, -4), checksum: sha(sql), status: "applied" })),
        );
        expect(reportPending(all, args(dir(files))).summary).toEqual([
            "migrations: nothing pending on marvel-rivals-postgres (database marvel_rivals)",
        ]);
    });
});

describe("the dev stack's output", () => {
    let run: ProgramRun;
    beforeAll(async () => {
        run = await runProgram("dev");
    });
    it("is pendingMigrations, not secret: every file of migrations/ pending before a first deploy", () => {
        const out = run.outputs.pendingMigrations!;
        expect(out.secret).toBe(false);
        const repoFiles = readdirSync(REPO_MIGRATIONS)
            .filter((f) => /^\d+_[a-z0-9_]+\.sql$/.test(f))
            .sort();
        expect((out.value as any).database).toBe("not created yet");
        expect((out.value as any).pending.map((p: { file: string }) => p.file)).toEqual(repoFiles);
        expect((out.value as any).pending[0].firstLine).toBe(
            readFileSync(join(REPO_MIGRATIONS, repoFiles[0]!), "utf8").split("\n")[0],
        );
    });
});
