// Issue 25, item 2: a one-liner for each daily task. What each decides, without an engine: status's view
// and what needs attention, the logs' service, psql's docker exec, reset's refusals and its confirmation.
// (That each README command answers --help without a server: readme.test.ts.)
import { existsSync, mkdirSync, mkdtempSync, copyFileSync, readdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { statusLines, urlsOf, type Facts } from "../../scripts/status";
import { parseArgs as logsArgs } from "../../scripts/logs";
import { execArgs, parseArgs as psqlArgs } from "../../scripts/psql";
import { asideName, localDataDir, main as reset } from "../../scripts/reset";
import { PROJECT_DIR } from "../../scripts/target";

const well: Facts = {
    stack: "odin",
    engine: "ssh://root@odin",
    containers: [
        { name: "marvel-rivals-app-1a2b3c4d", state: "running", status: "Up 2 hours (healthy)" },
        { name: "marvel-rivals-postgres", state: "running", status: "Up 3 days (healthy)" },
    ],
    app: { name: "marvel-rivals-app-1a2b3c4d", ready: true, answer: '200 {"status":"ready"}' },
    backups: {
        schedule: "0 3 * * *",
        stale: false,
        message: "last verified backup: 20261205T030000Z-scheduled.dump, 2h ago (schedule 0 3 * * * UTC)",
    },
    migrations: {
        database: "read",
        pending: [],
        drifted: [],
        missing: [],
        failed: [],
        summary: ["migrations: nothing pending on marvel-rivals-postgres (database marvel_rivals)"],
    },
    urls: ["app: https://stats.odin.home.arpa"],
};

describe("npm run status", () => {
    test("a well stack: every part on its line, nothing needs attention", () => {
        expect(statusLines(well)).toEqual({
            lines: [
                "stack odin on ssh://root@odin",
                "containers:",
                "  marvel-rivals-app-1a2b3c4d  running    Up 2 hours (healthy)",
                "  marvel-rivals-postgres      running    Up 3 days (healthy)",
                'app: marvel-rivals-app-1a2b3c4d: ready: 200 {"status":"ready"}',
                "backups: last verified backup: 20261205T030000Z-scheduled.dump, 2h ago (schedule 0 3 * * * UTC)",
                "migrations: nothing pending on marvel-rivals-postgres (database marvel_rivals)",
                "app: https://stats.odin.home.arpa",
            ],
            attention: [],
        });
    });
    test("an unhealthy container, an app not ready, a late backup and a pending migration each need attention", () => {
        const { attention } = statusLines({
            ...well,
            containers: [
                { name: "marvel-rivals-postgres", state: "running", status: "Up 3 days (unhealthy)" },
                { name: "marvel-rivals-redis", state: "exited", status: "Exited (1) 2 hours ago" },
                // A version drained by the last deploy is stopped on purpose: no attention.
                { name: "marvel-rivals-app-0a0a0a0a", state: "exited", status: "Exited (0) 1 hour ago" },
            ],
            app: { name: "marvel-rivals-app-1a2b3c4d", ready: false, answer: "503 database unavailable" },
            backups: { schedule: "0 3 * * *", stale: true, message: "WARNING: the last verified backup is old" },
            migrations: { ...well.migrations, pending: [{ file: "005_add_region.sql", firstLine: "--" }] },
        });
        expect(attention).toEqual([
            "marvel-rivals-postgres is unhealthy (docker logs marvel-rivals-postgres)",
            "marvel-rivals-redis is exited (docker logs marvel-rivals-redis)",
            "the app is not ready: 503 database unavailable",
            "backups: WARNING: the last verified backup is old",
            "1 migration(s) pending: the next up applies them",
        ]);
    });
    test("where to reach each stack, from its stack file: odin's database through the tunnel", () => {
        expect(urlsOf("odin")).toEqual([
            "app: https://stats.odin.home.arpa",
            "database from this machine: npm run outputs -- databaseTunnel --stack odin (ssh tunnel to 127.0.0.1:15432), or npm run psql -- --stack odin",
        ]);
        expect(urlsOf("dev")).toEqual([
            "app: http://127.0.0.1:8000",
            "database: 127.0.0.1:5432 (npm run outputs -- databaseUrl --stack dev), or npm run psql",
        ]);
    });
});

describe("npm run logs and npm run psql", () => {
    test("logs: the app by default, a named service, --follow, --tail; an unknown service named with the list", () => {
        expect(logsArgs([], {})).toEqual({ stack: "dev", service: "app", follow: false, tail: "200" });
        expect(logsArgs(["postgres", "--follow", "--tail", "50", "--stack", "odin"], {})).toEqual({
            stack: "odin",
            service: "postgres",
            follow: true,
            tail: "50",
        });
        expect(() => logsArgs(["nginx"], {})).toThrow(
            'unknown service "nginx": one of app, postgres, redis, backup, pgadmin',
        );
    });
    test("psql: the stack's options taken, the rest handed to psql; -it only on a terminal", () => {
        expect(psqlArgs(["--stack", "odin", "-c", "SELECT 1"], {})).toEqual({
            stack: "odin",
            psqlArgs: ["-c", "SELECT 1"],
        });
        expect(execArgs("marvel-rivals-postgres", "marvel_stats", "marvel_rivals", [], true)).toEqual([
            "exec",
            "-it",
            "marvel-rivals-postgres",
            "psql",
            "-U",
            "marvel_stats",
            "-d",
            "marvel_rivals",
        ]);
        expect(execArgs("p", "u", "d", ["-c", "SELECT 1"], false)).toEqual([
            "exec",
            "-i",
            "p",
            "psql",
            "-U",
            "u",
            "-d",
            "d",
            "-c",
            "SELECT 1",
        ]);
    });
});

describe("npm run reset", () => {
    const dirs: string[] = [];
    afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
    /** A project directory with the real Pulumi.yaml and stack files, and a dev data directory. */
    function project(): string {
        const dir = mkdtempSync(path.join(tmpdir(), "mrs-reset-"));
        dirs.push(dir);
        for (const f of readdirSync(PROJECT_DIR).filter((f) => /^Pulumi\..*yaml$/.test(f)))
            copyFileSync(path.join(PROJECT_DIR, f), path.join(dir, f));
        mkdirSync(path.join(dir, "data", "postgres", "pgdata"), { recursive: true });
        writeFileSync(path.join(dir, "data", "postgres", "pgdata", "PG_VERSION"), "16\n");
        return dir;
    }
    const now = new Date("2026-12-05T05:00:00.000Z");
    const lines: string[] = [];
    const run = (dir: string, answer: string, destroyStatus: number, argv = ["--stack", "dev"]) => {
        const destroyed: string[] = [];
        const code = reset(argv, {
            projectDir: dir,
            destroy: (stack) => (destroyed.push(stack), destroyStatus),
            ask: async () => answer,
            now: () => now,
            out: (l) => lines.push(l),
        });
        return { code, destroyed };
    };

    test("refuses odin (a server's data) before asking anything", () => {
        expect(() => localDataDir("odin")).toThrow(
            "only the dev stack on this machine is reset; stack odin (on ssh://root@odin) keeps its data (to go back to a backup there: npm run restore -- --stack odin)",
        );
    });
    test("a wrong answer changes nothing", async () => {
        const dir = project();
        const r = run(dir, "yes", 0);
        expect(await r.code).toBe(1);
        expect(r.destroyed).toEqual([]);
        expect(existsSync(path.join(dir, "data", "postgres", "pgdata", "PG_VERSION"))).toBe(true);
    });
    test("a failed destroy leaves the data where it is", async () => {
        const dir = project();
        const r = run(dir, "dev", 1);
        expect(await r.code).toBe(1);
        expect(r.destroyed).toEqual(["dev"]);
        expect(existsSync(path.join(dir, "data", "postgres", "pgdata", "PG_VERSION"))).toBe(true);
    });
    test("the stack's name typed: destroyed, and the data moved aside, never deleted", async () => {
        const dir = project();
        const r = run(dir, "dev", 0);
        expect(await r.code).toBe(0);
        expect(r.destroyed).toEqual(["dev"]);
        const aside = asideName(path.join(dir, "data"), now);
        expect(aside).toBe(path.join(dir, "data-removed-20261205T050000Z"));
        expect(existsSync(path.join(dir, "data"))).toBe(false);
        expect(existsSync(path.join(aside, "postgres", "pgdata", "PG_VERSION"))).toBe(true);
    });
});
