// The GitHub Actions workflows (.github/workflows): valid for GitHub's schema (action-validator, the
// linter `npm run lint` runs, which must refuse a broken file), and shaped as the README promises: tests
// on every pull request and push, previews only for pull requests of this repository, the odin jobs on the
// self-hosted runner, the deploy behind the `odin` environment's approval, the policy pack everywhere.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";

const REPO = resolve(__dirname, "../..");
const DIR = join(REPO, ".github", "workflows");
const validator = join(REPO, "node_modules", ".bin", "action-validator");
const workflow = (name: string) => parse(readFileSync(join(DIR, name), "utf8"));
const FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository";

describe("the workflow linter", () => {
    it("passes every workflow and refuses a broken one", () => {
        expect(readdirSync(DIR).sort()).toEqual(["ci.yml", "deploy.yml", "preview.yml"]);
        for (const f of readdirSync(DIR)) {
            const r = spawnSync(validator, [join(DIR, f)], { encoding: "utf8" });
            expect(r.status, `${f}: ${r.stdout}${r.stderr}`).toBe(0);
        }
        const tmp = mkdtempSync(join(tmpdir(), "mrs-workflow-"));
        try {
            const broken = join(tmp, "broken.yml");
            writeFileSync(broken, "name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    stepz: []\n");
            const r = spawnSync(validator, [broken], { encoding: "utf8" });
            expect(r.status).not.toBe(0);
            expect(r.stdout + r.stderr).toContain("Additional property 'stepz' is not allowed");
        } finally {
            rmSync(tmp, { recursive: true, force: true });
        }
    });
});

describe("the workflows", () => {
    it("ci: bash .ci/run on every pull request and push to main, with CI set", () => {
        const ci = workflow("ci.yml");
        expect(Object.keys(ci.on).sort()).toEqual(["pull_request", "push"]);
        expect(ci.on.push.branches).toEqual(["main"]);
        const step = ci.jobs.test.steps.find((s: { run?: string }) => s.run?.includes("bash .ci/run"));
        expect(step.env.CI).toBe("true");
        // The e2e scenarios through the real CLI: installed before the run, required by it, and its PATH kept
        // across sudo.
        const steps = ci.jobs.test.steps as { uses?: string; run?: string; with?: Record<string, unknown> }[];
        const install = steps.findIndex((s) => s.uses?.startsWith("pulumi/actions@"));
        expect(install).toBeGreaterThanOrEqual(0);
        expect(steps[install].with).toEqual({ "pulumi-version": "3.270.0" });
        expect(install).toBeLessThan(steps.indexOf(step));
        expect(step.env.MRS_E2E_DRIVER).toBe("cli");
        expect(step.run).toContain('env "PATH=$PATH" bash .ci/run');
        expect(step.run).toMatch(/--preserve-env=[^ ]*MRS_E2E_DRIVER/);
    });

    it("preview: both stacks, pull requests of this repository only, with the policy pack, as a PR comment", () => {
        const preview = workflow("preview.yml");
        expect(Object.keys(preview.on)).toEqual(["pull_request"]);
        expect(preview.jobs.odin["runs-on"]).toEqual(["self-hosted", "odin"]);
        for (const [name, job] of Object.entries<any>(preview.jobs)) {
            expect(job.if, name).toBe(FORK_GUARD);
            const pulumi = job.steps.find((s: { uses?: string }) => s.uses?.startsWith("pulumi/actions@"));
            expect(pulumi.with, name).toMatchObject({
                command: "preview",
                "stack-name": name,
                diff: true,
                policyPacks: "policy",
                "comment-on-pr": true,
            });
            expect(
                job.steps.some((s: { run?: string }) => s.run === `npm run -s policy -- ${name}`),
                name,
            ).toBe(true);
        }
        expect(preview.jobs.odin.steps.at(-1).env.PULUMI_CONFIG_PASSPHRASE).toBe(
            "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
        );
    });

    it("deploy: pulumi up -s odin on push to main, behind the odin environment, one at a time, under the deploy lock", () => {
        const deploy = workflow("deploy.yml");
        expect(deploy.on).toEqual({ push: { branches: ["main"] } });
        expect(deploy.concurrency).toEqual({ group: "deploy-odin", "cancel-in-progress": false });
        expect(deploy.jobs.odin.environment).toBe("odin");
        expect(deploy.jobs.odin["runs-on"]).toEqual(["self-hosted", "odin"]);
        const steps = deploy.jobs.odin.steps as { uses?: string; run?: string; with?: any; env?: any }[];
        // The action installs the CLI only; the up runs through the lock, which a laptop's changes take too.
        const install = steps.findIndex((s) => s.uses?.startsWith("pulumi/actions@"));
        expect(steps[install].with).toEqual({ "pulumi-version": "3.270.0" });
        const up = steps.findIndex((s) => s.run?.includes("pulumi up"));
        expect(up).toBeGreaterThan(install);
        const run = steps[up].run!.replace(/\s+/g, " ");
        expect(run).toMatch(
            /^node --import tsx scripts\/deployLock\.ts run --stack odin --what up --lock-wait \d+ -- pulumi up --stack odin --yes /,
        );
        expect(run).toContain("--policy-pack policy");
        // Nothing from the event is pasted into the script (a commit message is text anyone can write).
        expect(run).not.toContain("${{");
        expect(steps[up].env).toEqual({
            PULUMI_BACKEND_URL: "${{ vars.ODIN_PULUMI_BACKEND_URL }}",
            PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
            COMMIT_MESSAGE: "${{ github.event.head_commit.message }}",
        });
    });
});
