// The dump before pending migrations is the backup agent's (issue 22, item 7): the migration step's own
// script, as the program builds it for odin, run by sh against a stand-in `docker` that records its calls
// and answers as the runner and the agent would. On main the step passes MIGRATE_BACKUP_DIR to the runner
// (its plain-SQL pg_dump) and never calls the agent: every test below fails there.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

let create: string;
let environment: Record<string, string>;
const dir = mkdtempSync(path.join(tmpdir(), "mrs-premigration-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
    const { runProgram } = await import("../../support/mockProgram");
    const run = await runProgram("odin");
    const step = run.byName("migrations-up");
    create = step.inputs.create as string;
    environment = step.inputs.environment as Record<string, string>;
    const docker = path.join(dir, "docker");
    writeFileSync(
        docker,
        [
            "#!/bin/sh",
            'echo "$*" >> "$CALLS"',
            'case "$*" in',
            '  *"migrate status --json"*) printf "%s\\n" "$STATUS_JSON" ;;',
            '  exec*) printf "%s\\n" "$AGENT_OUT" ;;',
            '  *"migrate up --json"*) echo \'{"migrations":[]}\' ;;',
            "esac",
            "",
        ].join("\n"),
    );
    chmodSync(docker, 0o755);
});

function step(status: string, agentOut: string): { code: number | null; stderr: string; calls: string[] } {
    const calls = path.join(dir, `calls-${Math.random()}`);
    writeFileSync(calls, "");
    const r = spawnSync("sh", ["-c", create], {
        encoding: "utf8",
        env: {
            ...environment,
            PATH: `${dir}:${process.env.PATH}`,
            CALLS: calls,
            STATUS_JSON: status,
            AGENT_OUT: agentOut,
        },
    });
    return { code: r.status, stderr: r.stderr, calls: readFileSync(calls, "utf8").split("\n").filter(Boolean) };
}

const status = (pending: string[]) => JSON.stringify({ command: "status", pending, migrations: [] });
const PASSED =
    "2026-12-05T03:00:00Z backup: x written and checked\nresult=passed 20261205T030000Z-before-003-seed-plan-schema.dump";

describe("the migration step's dump before pending migrations", () => {
    test("asks the backup agent for a checked dump labelled after the first pending file, then migrates", () => {
        const r = step(status(["003_seed_plan_schema", "004_plan_schema_migrations"]), PASSED);
        expect(r.code, r.stderr).toBe(0);
        expect(r.calls).toHaveLength(3);
        expect(r.calls[0]).toMatch(/^run --rm .* migrate status --json$/);
        expect(r.calls[1]).toBe("exec marvel-rivals-backup backup-agent once before-003-seed-plan-schema");
        expect(r.calls[2]).toMatch(/^run --rm .* migrate up --json$/);
        // The runner's own plain-SQL dump is not asked for.
        expect(r.calls[2]).not.toContain("MIGRATE_BACKUP_DIR");
        expect(r.stderr).toContain("written and checked");
    });

    test("takes no dump when nothing is pending", () => {
        const r = step(status([]), PASSED);
        expect(r.code, r.stderr).toBe(0);
        expect(r.calls.some((c) => c.startsWith("exec "))).toBe(false);
        expect(r.calls.at(-1)).toMatch(/migrate up --json$/);
    });

    test("takes a dump all the same when the status cannot be read", () => {
        const r = step("not json", PASSED);
        expect(r.code, r.stderr).toBe(0);
        expect(r.calls[1]).toBe("exec marvel-rivals-backup backup-agent once before-migrations");
    });

    test("migrates nothing when the dump does not pass, and says why", () => {
        const r = step(
            status(["003_seed_plan_schema"]),
            "2026-12-05T03:00:00Z backup: ERROR backup x FAILED ITS CHECK\nresult=failed x.dump",
        );
        expect(r.code).toBe(1);
        expect(r.calls.some((c) => c.includes("migrate up"))).toBe(false);
        expect(r.stderr).toContain("FAILED ITS CHECK");
        expect(r.stderr).toContain("nothing was migrated");
    });

    test("trusts only the agent's result line, not the exit of docker exec", () => {
        const r = step(status(["003_seed_plan_schema"]), "connection reset");
        expect(r.code).toBe(1);
        expect(r.calls.some((c) => c.includes("migrate up"))).toBe(false);
    });
});
