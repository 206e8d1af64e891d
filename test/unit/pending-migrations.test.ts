// The pending-migrations report (components/pendingMigrations.ts) from what the read of the database
// prints, against real migration directories: first deploy, nothing pending, pending with a backup first,
// drifted, missing and failed files, a stopped or unreadable database, a badly named file. The read itself
// (READ_HISTORY) run as pulumi-command runs it (the e2e harness's runFunction) against engines that cannot
// be reached: a unix socket that does not exist (dev) and an ssh:// engine on a closed port of 127.0.0.1
// (odin); against a docker CLI that never answers (the time limit) and one whose psql prints a WARNING on
// stderr (a fake `docker` on PATH: the streams are what is tested, not Postgres). And the stack output of
// the dev stack under mocks (no Postgres container yet): every file pending, not secret.
import { beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
    HISTORY_READ_SECONDS,
    readHistoryInputs,
    reportPending,
    type PendingMigrationsArgs,
} from "../../components/pendingMigrations";
import { runFunction } from "../e2e/harness/models";
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
        const unreadable = reportPending(
            'unreadable psql: error: FATAL: database "marvel_rivals" does not exist',
            args(dir(files)),
        );
        expect(unreadable).toMatchObject({
            database: "unreadable",
            reason: 'psql: error: FATAL: database "marvel_rivals" does not exist',
            pending: [],
            backupFirst: false,
        });
        expect(unreadable.summary).toEqual([
            'migrations: could not read the history: psql: error: FATAL: database "marvel_rivals" does not exist; what the up applies to marvel-rivals-postgres (database marvel_rivals) is not known',
        ]);
        // Anything that is not one of the words nor a JSON array is not read as a history.
        expect(reportPending("WARNING: x\n[]", args(dir(files)))).toMatchObject({
            database: "unreadable",
            reason: "the history is not JSON: WARNING: x\n[]",
            pending: [],
        });
        const all = JSON.stringify(
            Object.entries(files).map(([f, sql]) => ({ name: f.slice(0, -4), checksum: sha(sql), status: "applied" })),
        );
        expect(reportPending(all, args(dir(files))).summary).toEqual([
            "migrations: nothing pending on marvel-rivals-postgres (database marvel_rivals)",
        ]);
    });
});

describe("a badly named migration file", () => {
    it("is one line naming the file and its rename, not a stack trace; nothing is reported pending", () => {
        const d = dir({ "001_a.sql": "SELECT 1;\n", "005-add-region.sql": "SELECT 2;\n" });
        const r = reportPending("none", args(d));
        expect(r.filesError).toBe(
            `005-add-region.sql in ${d} is not named NNN_name.sql or NNN_name.down.sql (three or more digits, _, then lower-case letters, digits and _, ending in lower-case .sql), so it would never run; rename it to 005_add_region.sql, or move it out of the migrations directory`,
        );
        expect(r.summary).toEqual([`migrations: ${r.filesError}`]);
        expect(r.pending).toEqual([]);
    });
});

/** The read as pulumi-command's Run.Invoke runs it (sh -c, the inputs' environment over ours). */
async function readHistory(a: PendingMigrationsArgs, limitSeconds?: number, path?: string): Promise<string> {
    const inputs = readHistoryInputs(a, limitSeconds);
    const saved = process.env.PATH;
    if (path) process.env.PATH = `${path}:${saved}`;
    try {
        return (await runFunction(inputs, tmpdir())).stdout as string;
    } finally {
        process.env.PATH = saved;
    }
}

/** A port of 127.0.0.1 that nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    await new Promise((r) => server.close(r));
    return port;
}

describe("the read of the history, against an engine that cannot be reached", () => {
    const files = { "001_a.sql": "SELECT 1;\n", "002_b.sql": "SELECT 2;\n" };

    it("limits the read to less than 30 s", () => {
        expect(HISTORY_READ_SECONDS).toBeLessThan(30);
        expect(readHistoryInputs(args(dir(files))).environment.LIMIT).toBe(String(HISTORY_READ_SECONDS));
    });

    it("dev: a unix socket that does not exist is 'could not read the history', not a first deploy", async () => {
        const sock = join(mkdtempSync(join(tmpdir(), "mrs-nosock-")), "docker.sock");
        const a = { ...args(dir(files)), dockerHost: `unix://${sock}` };
        const r = reportPending(await readHistory(a), a);
        expect(r.database).toBe("unreachable");
        expect(r.pending).toEqual([]);
        expect(r.backupFirst).toBe(false);
        expect(r.reason).toContain(`Cannot connect to the Docker daemon at unix://${sock}`);
        expect(r.summary).toHaveLength(1);
        expect(r.summary[0]).toMatch(/^migrations: could not read the history: Cannot connect to the Docker daemon/);
        expect(r.summary[0]).toContain(`check that the Docker engine at unix://${sock} answers`);
    });

    it("odin: an ssh:// engine that does not answer (a closed port of 127.0.0.1) is 'could not read the history'", async () => {
        const host = `ssh://root@127.0.0.1:${await closedPort()}`;
        const a = { ...args(dir(files)), dockerHost: host };
        const r = reportPending(await readHistory(a), a);
        expect(r.database).toBe("unreachable");
        expect(r.pending).toEqual([]);
        expect(r.reason).toMatch(/Connection refused/);
        expect(r.summary[0]).toMatch(/^migrations: could not read the history: .*Connection refused/);
        expect(r.summary[0]).not.toContain("\r");
    });

    // A fake docker CLI on PATH: what is tested is the script's handling of the CLI's exits and streams.
    function fakeDocker(body: string): string {
        const bin = mkdtempSync(join(tmpdir(), "mrs-fake-docker-"));
        writeFileSync(join(bin, "docker"), `#!/bin/sh\n${body}\n`);
        chmodSync(join(bin, "docker"), 0o755);
        return bin;
    }

    it("a docker CLI that never answers is stopped at the limit and reported as such", async () => {
        const bin = fakeDocker("exec sleep 600");
        const a = args(dir(files));
        const r = reportPending(await readHistory(a, 1, bin), a);
        expect(r).toMatchObject({
            database: "unreachable",
            reason: "no answer within 1 s from the Docker engine at unix:///var/run/docker.sock",
            pending: [],
        });
    });

    // A CLI that ignores TERM (or handles it and goes on) is KILLed after the grace: without it the read,
    // and the preview, would wait for ever (this test then fails at its own time-out).
    it("a docker CLI that ignores TERM is killed after the grace and reported as not answering", async () => {
        const bin = fakeDocker("trap '' TERM\nwhile :; do sleep 1; done");
        const a = args(dir(files));
        const r = reportPending(await readHistory(a, 1, bin), a);
        expect(r).toMatchObject({
            database: "unreachable",
            reason: "no answer within 1 s from the Docker engine at unix:///var/run/docker.sock",
        });
    }, 20_000);

    it("a server WARNING on psql's stderr stays out of the history; a failing psql gives its stderr", async () => {
        const history = JSON.stringify([{ name: "001_a", checksum: sha(files["001_a.sql"]), status: "applied" }]);
        const bin = fakeDocker(
            [
                'case "$1 $2" in',
                '  "container inspect") echo true ;;',
                "  exec*)",
                "    echo 'WARNING:  database \"marvel_rivals\" has a collation version mismatch' >&2",
                '    case "$*" in',
                `      *json_agg*) echo '${history}' ;;`,
                "      *) echo migration_runner.history ;;",
                "    esac ;;",
                "esac",
            ].join("\n"),
        );
        const a = args(dir(files));
        const r = reportPending(await readHistory(a, undefined, bin), a);
        expect(r.database).toBe("read");
        expect(r.pending.map((p) => p.file)).toEqual(["002_b.sql"]);

        const failing = fakeDocker(
            [
                'case "$1 $2" in',
                '  "container inspect") echo true ;;',
                "  exec*) echo 'psql: error: FATAL:  the database system is starting up' >&2; exit 2 ;;",
                "esac",
            ].join("\n"),
        );
        const f = reportPending(await readHistory(a, undefined, failing), a);
        expect(f).toMatchObject({
            database: "unreadable",
            reason: "psql: error: FATAL: the database system is starting up",
        });
    });

    it("the engine's own 'No such container' is a first deploy, and a stopped container is stopped", async () => {
        const a = args(dir(files));
        const none = fakeDocker("echo 'Error response from daemon: No such container: x' >&2; exit 1");
        expect(reportPending(await readHistory(a, undefined, none), a).database).toBe("not created yet");
        const stopped = fakeDocker("echo false");
        expect(reportPending(await readHistory(a, undefined, stopped), a).database).toBe("stopped");
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
