// Issue 24's checks over one stack's resource graph (the program under mocks, the real Pulumi.<stack>.yaml),
// shared by least-privilege-dev.test.ts and least-privilege-odin.test.ts: runProgram may run once per file.
import { beforeAll, describe, expect, it } from "vitest";
import type { ProgramRun } from "../../support/mockProgram";
import { PROCESS_LIMIT, ROOT_ENTRYPOINT_CAPS, hardeningFlags } from "../../components/common";
import { CONTAINER } from "../../policy/rules";
import { PIDS_LIMITS_STEP } from "../../components/pidsLimits";
import { evaluate } from "../../policy/evaluate";

/** What each container may add back, and why (components/common.ts, ROOT_ENTRYPOINT_CAPS). */
const CAPS: Record<string, string[]> = {
    "postgres-container": ROOT_ENTRYPOINT_CAPS,
    "redis-container": ROOT_ENTRYPOINT_CAPS,
    "app-container": [],
    "backups-container": [],
};

export function graphChecks(stack: string): void {
    let run: ProgramRun;
    beforeAll(async () => {
        const { runProgram } = await import("../../support/mockProgram");
        run = await runProgram(stack);
    });
    describe(`the ${stack} stack`, () => {
        it("every container drops all capabilities, adds back only its image's, has no-new-privileges, a process and a memory limit", () => {
            const containers = run.ofType(CONTAINER);
            expect(containers.map((c) => c.name).sort()).toEqual(Object.keys(CAPS).sort());
            for (const c of containers) {
                expect(c.inputs.capabilities, c.name).toEqual({ drops: ["ALL"], adds: [...CAPS[c.name]!].sort() });
                expect(c.inputs.securityOpts, c.name).toEqual(["no-new-privileges:true"]);
                expect(c.inputs.ulimits, c.name).toBeUndefined();
                expect(c.inputs.memory, c.name).toBeGreaterThan(0);
            }
            // The process limit: one step over every container's name, again for a new container (its ID).
            const pids = run.byName(PIDS_LIMITS_STEP).inputs;
            expect(pids.environment.PIDS_LIMIT).toBe(String(PROCESS_LIMIT));
            expect(pids.environment.PIDS_CONTAINERS.split(" ").sort()).toEqual(
                containers.map((c) => c.inputs.name).sort(),
            );
            expect(pids.triggers).toHaveLength(containers.length);
            expect(pids.create).toContain('docker update --pids-limit "$PIDS_LIMIT" "$c"');
        });

        it("the app runs read-only with a tmpfs for /tmp, as a uid:gid that is not root", () => {
            const app = run.byName("app-container").inputs;
            expect(app.readOnly).toBe(true);
            expect(Object.keys(app.tmpfs)).toEqual(["/tmp"]);
            expect(app.tmpfs["/tmp"]).toMatch(/noexec/);
            expect(app.user).toMatch(/^[1-9]\d*:\d+$/);
            // The stores keep a writable root (their entrypoints write /var/run/postgresql, /etc/redis).
            expect(run.byName("postgres-container").inputs.readOnly).toBeUndefined();
        });

        it("the throwaway containers of the migration and host-directory steps are hardened too", () => {
            const up = run.byName("migrations-up").inputs;
            expect(up.environment.MIGRATE_HARDENING).toBe(hardeningFlags());
            expect(up.create).toContain("$MIGRATE_HARDENING");
            const dirs = run.ofType("command:local:Command").find((c) => c.inputs.environment?.DATA_DIR);
            expect(dirs!.inputs.environment.TOOL_HARDENING).toContain("--cap-drop ALL");
            expect(dirs!.inputs.create.match(/\$TOOL_HARDENING/g)).toHaveLength(3);
        });

        it("the policy pack finds no violation, mandatory or advisory", () => {
            const resources = run.resources.map((r) => ({
                type: r.type,
                name: r.name,
                urn: r.urn,
                props: r.inputs,
                opts: { additionalSecretOutputs: r.additionalSecretOutputs },
            }));
            expect(evaluate(resources)).toEqual([]);
        });

        if (stack === "odin")
            it("publishes nothing beyond loopback", () => {
                for (const c of run.ofType(CONTAINER))
                    for (const p of (c.inputs.ports ?? []) as { ip?: string }[])
                        expect(p.ip, c.name).toMatch(/^127\.|^::1$|^localhost$/);
            });
    });
}
