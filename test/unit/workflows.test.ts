// The GitHub Actions workflows (.github/workflows): valid for GitHub's schema (action-validator, the
// linter `npm run lint` runs, which must refuse a broken file), and each invariant of issue 23 kept:
// - no job of a `pull_request` workflow runs on the self-hosted runner; every self-hosted job is bound to
//   an environment, checks out without the token, gets its secrets per step and cleans up after itself;
// - the deploy waits for ci.yml's success on the same commit, plans (`preview --save-plan`) and applies
//   exactly that plan (`up --plan`) after the approval, exports the state first (kept N deep), is never
//   cancelled part-way; a rollback path by `workflow_dispatch`;
// - a daily drift check (refresh preview expecting no changes);
// - the previews comment on the pull request also when they fail, editing their own comment;
// - every action pinned by a commit SHA with its tag in a comment, and given only inputs it declares.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";

const REPO = resolve(__dirname, "../..");
const DIR = join(REPO, ".github", "workflows");
const validator = join(REPO, "node_modules", ".bin", "action-validator");
const FILES = readdirSync(DIR)
    .filter((f) => f.endsWith(".yml"))
    .sort();
const text = (name: string) => readFileSync(join(DIR, name), "utf8");
const workflow = (name: string) => parse(text(name));

interface Step {
    name?: string;
    uses?: string;
    run?: string;
    if?: string;
    with?: Record<string, unknown>;
    env?: Record<string, string>;
}
interface Job {
    "runs-on": string | string[];
    environment?: string | { name: string };
    if?: string;
    needs?: string | string[];
    env?: Record<string, string>;
    permissions?: Record<string, string>;
    steps: Step[];
}

/** `on` as a map of event name to its settings (a string or a list is normalised). */
function events(wf: any): Record<string, any> {
    const on = wf.on;
    if (typeof on === "string") return { [on]: null };
    if (Array.isArray(on)) return Object.fromEntries(on.map((e: string) => [e, null]));
    return on;
}
const jobsOf = (wf: any) => Object.entries<Job>(wf.jobs);
const selfHosted = (job: Job) => [job["runs-on"]].flat().includes("self-hosted");
const envName = (job: Job) => (typeof job.environment === "string" ? job.environment : job.environment?.name);
const oneLine = (s: string | undefined) => (s ?? "").replace(/\s+/g, " ");
const stepsRunning = (job: Job, re: RegExp) => job.steps.filter((s) => re.test(oneLine(s.run)));

/**
 * The actions the workflows may use, by commit: the tag the SHA is (read with `git rev-parse TAG^{commit}`
 * in a clone of each repository: docs/github.md, "Updating an action") and the inputs its action.yml at that
 * commit declares (required: declared `required: true` without a default).
 */
const ACTIONS: Record<string, { tag: string; inputs: string[]; required?: string[] }> = {
    "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1": {
        tag: "v7.0.1",
        inputs: [
            "allow-unsafe-pr-checkout",
            "clean",
            "fetch-depth",
            "fetch-tags",
            "filter",
            "github-server-url",
            "lfs",
            "path",
            "persist-credentials",
            "ref",
            "repository",
            "set-safe-directory",
            "show-progress",
            "sparse-checkout",
            "sparse-checkout-cone-mode",
            "ssh-key",
            "ssh-known-hosts",
            "ssh-strict",
            "ssh-user",
            "submodules",
            "token",
        ],
    },
    "pulumi/actions@8e5e406f4007fca908480587cb9893c07090f58d": {
        tag: "v7.0.0",
        inputs: [
            "always-include-summary",
            "cloud-url",
            "color",
            "command",
            "comment-on-pr",
            "comment-on-pr-number",
            "comment-on-summary",
            "config-map",
            "continue-on-error",
            "debug",
            "diff",
            "edit-pr-comment",
            "exclude",
            "exclude-dependents",
            "exclude-protected",
            "expect-no-changes",
            "github-token",
            "log-flow",
            "log-verbosity",
            "message",
            "parallel",
            "plan",
            "policyPackConfigs",
            "policyPacks",
            "pulumi-version",
            "pulumi-version-file",
            "refresh",
            "remove",
            "replace",
            "secrets-provider",
            "stack-name",
            "suppress-outputs",
            "suppress-progress",
            "target",
            "target-dependents",
            "upsert",
            "work-dir",
        ],
    },
    "actions/setup-node@820762786026740c76f36085b0efc47a31fe5020": {
        tag: "v7.0.0",
        inputs: [
            "architecture",
            "cache",
            "cache-dependency-path",
            "check-latest",
            "mirror",
            "mirror-token",
            "node-version",
            "node-version-file",
            "package-manager-cache",
            "registry-url",
            "scope",
            "token",
        ],
    },
    "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f": {
        tag: "v7.0.0",
        inputs: [
            "archive",
            "compression-level",
            "if-no-files-found",
            "include-hidden-files",
            "name",
            "overwrite",
            "path",
            "retention-days",
        ],
        required: ["path"],
    },
    "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c": {
        tag: "v8.0.1",
        inputs: [
            "artifact-ids",
            "digest-mismatch",
            "github-token",
            "merge-multiple",
            "name",
            "path",
            "pattern",
            "repository",
            "run-id",
            "skip-decompress",
        ],
    },
    "actions/github-script@ed597411d8f924073f98dfc5c65a23a2325f34cd": {
        tag: "v8.0.0",
        inputs: [
            "base-url",
            "debug",
            "github-token",
            "previews",
            "result-encoding",
            "retries",
            "retry-exempt-status-codes",
            "script",
            "user-agent",
        ],
        required: ["script"],
    },
};

describe("the workflow linter", () => {
    it("passes every workflow and refuses a broken one", () => {
        expect(FILES).toEqual(["ci.yml", "deploy.yml", "drift.yml", "preview-odin.yml", "preview.yml"]);
        for (const f of FILES) {
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

describe("actions", () => {
    it("are pinned by a 40-hex commit SHA with the tag in a comment, both from the table", () => {
        for (const f of FILES) {
            const lines = text(f)
                .split("\n")
                .filter((l) => /^\s*(-\s+)?uses:/.test(l));
            expect(lines.length, f).toBeGreaterThan(0);
            for (const l of lines) {
                const m = /^\s*(?:-\s+)?uses:\s+([\w.-]+\/[\w.-]+@[0-9a-f]{40}) # (v\d+\.\d+\.\d+)\s*$/.exec(l);
                expect(m, `${f}: ${l.trim()}`).not.toBeNull();
                expect(ACTIONS[m![1]!]?.tag, `${f}: ${l.trim()}: not in the table`).toBe(m![2]);
            }
        }
    });

    it("get only the inputs their action.yml declares, and the ones it requires", () => {
        for (const f of FILES) {
            for (const [name, job] of jobsOf(workflow(f))) {
                for (const s of job.steps.filter((s) => s.uses)) {
                    const known = ACTIONS[s.uses!];
                    expect(known, `${f} ${name}: ${s.uses}`).toBeDefined();
                    for (const k of Object.keys(s.with ?? {}))
                        expect(known!.inputs, `${f} ${name}: ${s.uses} has no input ${k}`).toContain(k);
                    for (const k of known!.required ?? [])
                        expect(Object.keys(s.with ?? {}), `${f} ${name}: ${s.uses} needs ${k}`).toContain(k);
                }
            }
        }
    });

    it("the input check catches a misspelt input (the table is not a pass-through)", () => {
        const declared = ACTIONS["actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"]!.inputs;
        expect(declared).not.toContain("persist-credential");
        expect(declared).toContain("persist-credentials");
    });
});

describe("the self-hosted runner", () => {
    it("never runs a job of a workflow that a pull_request triggers", () => {
        let checked = 0;
        for (const f of FILES) {
            const wf = workflow(f);
            if (!("pull_request" in events(wf))) continue;
            for (const [name, job] of jobsOf(wf)) {
                checked++;
                expect(selfHosted(job), `${f} ${name} runs on the self-hosted runner`).toBe(false);
            }
        }
        expect(checked).toBeGreaterThan(0);
    });

    it("runs only jobs bound to an environment, without the token in the checkout, cleaning up after", () => {
        let checked = 0;
        for (const f of FILES) {
            for (const [name, job] of jobsOf(workflow(f))) {
                if (!selfHosted(job)) continue;
                checked++;
                const where = `${f} ${name}`;
                expect(job["runs-on"], where).toEqual(["self-hosted", "odin-deploy"]);
                expect(envName(job), where).toMatch(/^odin(-plan|-preview)?$/);
                // Secrets per step, never for the whole job (npm ci's packages run their scripts).
                expect(JSON.stringify(job.env ?? {}), where).not.toContain("secrets.");
                const install = job.steps.find((s) => s.run?.startsWith("npm ci"));
                expect(install?.env, where).toBeUndefined();
                const checkouts = job.steps.filter((s) => s.uses?.startsWith("actions/checkout@"));
                expect(checkouts.length, where).toBeGreaterThan(0);
                for (const c of checkouts) {
                    expect(c.with?.["persist-credentials"], where).toBe(false);
                    expect(c.with?.["allow-unsafe-pr-checkout"], where).toBeUndefined();
                }
                // The SSH key only in an agent of the job, from the environment's secret; ended at the end.
                const agent = stepsRunning(job, /ssh-agent -a "\$RUNNER_TEMP/);
                expect(agent, where).toHaveLength(1);
                expect(agent[0]!.run, where).toContain("ssh-add -");
                expect(agent[0]!.env, where).toEqual({ ODIN_SSH_KEY: "${{ secrets.ODIN_SSH_KEY }}" });
                const last = job.steps.at(-1)!;
                expect(last.if, where).toBe("always()");
                expect(last.run, where).toContain("ssh-agent -k");
                expect(last.run, where).toContain('rm -rf "${RUNNER_TEMP:?}"/*');
            }
        }
        expect(checked).toBe(5);
    });

    it("previews a pull request on odin only through pull_request_target, behind odin-preview, at the PR's head", () => {
        const wf = workflow("preview-odin.yml");
        expect(Object.keys(events(wf))).toEqual(["pull_request_target"]);
        expect(wf.permissions).toEqual({});
        const job = wf.jobs.odin as Job;
        expect(envName(job)).toBe("odin-preview");
        expect(job.if).toBe("github.event.pull_request.head.repo.full_name == github.repository");
        expect(job.steps[0]!.with).toMatchObject({
            ref: "${{ github.event.pull_request.head.sha }}",
            "persist-credentials": false,
        });
        const preview = stepsRunning(job, /pulumi preview/);
        expect(preview).toHaveLength(1);
        expect(oneLine(preview[0]!.run)).toContain("pulumi preview --stack odin --diff --policy-pack policy");
        expect(oneLine(preview[0]!.run)).not.toMatch(/pulumi (up|update|destroy)|--save-plan/);
    });
});

describe("the deploy", () => {
    const wf = workflow("deploy.yml");
    const plan = wf.jobs.plan as Job;
    const apply = wf.jobs.apply as Job;

    it("starts after ci.yml succeeded on a push to main, for that commit", () => {
        expect(events(wf).workflow_run).toEqual({ workflows: ["ci"], types: ["completed"], branches: ["main"] });
        expect(workflow("ci.yml").name).toBe("ci");
        expect(Object.keys(events(wf)).sort()).toEqual(["workflow_dispatch", "workflow_run"]);
        expect(oneLine(plan.if)).toContain("github.event.workflow_run.conclusion == 'success'");
        expect(oneLine(plan.if)).toContain("github.event.workflow_run.event == 'push'");
        expect(apply.needs).toBe("plan");
        for (const job of [plan, apply]) {
            const checkout = job.steps.find((s) => s.uses?.startsWith("actions/checkout@"))!;
            expect(checkout.with?.ref).toBe("${{ github.event.workflow_run.head_sha }}");
        }
    });

    it("plans with preview --save-plan, summarised (preview, policy, pending migrations), and keeps the plan", () => {
        expect(envName(plan)).toBe("odin-plan");
        const save = stepsRunning(plan, /pulumi preview .*--save-plan/);
        expect(save).toHaveLength(1);
        const file = /--save-plan "([^"]+)"/.exec(oneLine(save[0]!.run))![1];
        expect(file).toBe("$RUNNER_TEMP/odin.plan.json");
        expect(oneLine(save[0]!.run)).toContain("--policy-pack policy");
        expect(stepsRunning(plan, /npm run -s policy -- odin/)).toHaveLength(1);
        const summary = plan.steps.find((s) => s.run?.includes("$GITHUB_STEP_SUMMARY"))!;
        expect(summary.if).toBe("always()");
        for (const part of ["Pending migrations", "migrations: ", "policy.txt", "preview.txt"])
            expect(summary.run).toContain(part);
        const upload = plan.steps.find((s) => s.uses?.startsWith("actions/upload-artifact@"))!;
        expect(upload.with).toMatchObject({
            name: "odin-plan-${{ github.run_id }}",
            path: "${{ runner.temp }}/odin.plan.json",
            "if-no-files-found": "error",
        });
    });

    it("applies exactly that plan (up --plan) after the odin approval, the state exported first, under the lock", () => {
        expect(envName(apply)).toBe("odin");
        const download = apply.steps.find((s) => s.uses?.startsWith("actions/download-artifact@"))!;
        expect(download.with).toEqual({ name: "odin-plan-${{ github.run_id }}", path: "${{ runner.temp }}/plan" });
        const ups = stepsRunning(apply, /pulumi up/);
        expect(ups).toHaveLength(1);
        const run = oneLine(ups[0]!.run);
        expect(run).toMatch(
            /^node --import tsx scripts\/deployLock\.ts run --stack odin --what up --lock-wait \d+ -- bash -c '/,
        );
        expect(run).toContain('--plan "$RUNNER_TEMP/plan/odin.plan.json"');
        expect(run).toContain("--policy-pack policy");
        const exportAt = run.indexOf("pulumi stack export --stack odin --file");
        expect(exportAt).toBeGreaterThan(0);
        expect(exportAt).toBeLessThan(run.indexOf("pulumi up"));
        expect(ups[0]!.env).toMatchObject({
            PULUMI_BACKEND_URL: "${{ vars.ODIN_PULUMI_BACKEND_URL }}",
            PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
            COMMIT_MESSAGE: "${{ github.event.workflow_run.head_commit.message }}",
        });
        // The export leaves the runner (also after a failed up) and the last N are kept.
        const i = apply.steps.indexOf(ups[0]!);
        const upload = apply.steps.slice(i).find((s) => s.uses?.startsWith("actions/upload-artifact@"))!;
        expect(upload.if).toBe("always()");
        expect(upload.with).toMatchObject({
            name: "odin-state-${{ github.run_id }}",
            path: "${{ runner.temp }}/export/",
        });
        const prune = apply.steps.find((s) => String(s.with?.script ?? "").includes("deleteArtifact"))!;
        expect(String(prune.with!.script)).toContain('startsWith("odin-state-")');
        expect(Number(wf.env.STATE_EXPORTS_KEPT)).toBeGreaterThanOrEqual(10);
        expect(apply.permissions).toMatchObject({ actions: "write" });
    });

    it("every pulumi up in every workflow applies a plan", () => {
        let ups = 0;
        for (const f of FILES)
            for (const [, job] of jobsOf(workflow(f)))
                for (const s of stepsRunning(job, /pulumi (up|update)\b/)) {
                    ups++;
                    expect(oneLine(s.run), f).toMatch(/pulumi up [^']*--plan "\$RUNNER_TEMP\/plan\/odin\.plan\.json"/);
                }
        expect(ups).toBe(1);
    });

    it("rolls back by workflow_dispatch, behind the approval, the state exported first", () => {
        expect(events(wf).workflow_dispatch.inputs.action.options).toEqual(["rollback"]);
        const job = wf.jobs.rollback as Job;
        expect(oneLine(job.if)).toContain("github.event_name == 'workflow_dispatch'");
        expect(envName(job)).toBe("odin");
        const step = stepsRunning(job, /npm run rollback/)[0]!;
        const run = oneLine(step.run);
        expect(run).toContain('npm run rollback -- --stack odin ${ROLLBACK_TO:+--to "$ROLLBACK_TO"}');
        expect(run.indexOf("pulumi stack export --stack odin")).toBeLessThan(run.indexOf("npm run rollback"));
        expect(step.env?.ROLLBACK_TO).toBe("${{ inputs.to }}");
    });

    it("is never cancelled part-way, and neither is a run of main's tests", () => {
        expect(wf.concurrency).toEqual({ group: "deploy-odin", "cancel-in-progress": false });
        expect(workflow("drift.yml").concurrency["cancel-in-progress"]).toBe(false);
        // ci.yml cancels only a pull request's older run (the expression is false for a push).
        expect(workflow("ci.yml").concurrency["cancel-in-progress"]).toBe("${{ github.event_name == 'pull_request' }}");
    });
});

describe("the drift check", () => {
    it("runs daily: a refresh preview of odin that fails on any change, the diff in the summary", () => {
        const wf = workflow("drift.yml");
        expect(events(wf).schedule).toHaveLength(1);
        expect(events(wf).schedule[0].cron).toMatch(/^\d+ \d+ \* \* \*$/);
        const job = wf.jobs.odin as Job;
        expect(envName(job)).toBe("odin-plan");
        const step = stepsRunning(job, /pulumi preview/);
        expect(step).toHaveLength(1);
        const run = oneLine(step[0]!.run);
        for (const flag of ["--stack odin", "--refresh", "--expect-no-changes", "--diff"]) expect(run).toContain(flag);
        expect(run).toContain('tee "$RUNNER_TEMP/drift.txt"');
        const summary = job.steps.find((s) => s.run?.includes("$GITHUB_STEP_SUMMARY"))!;
        expect(summary.if).toBe("always()");
        expect(summary.run).toContain("drift.txt");
        // `shell: bash` runs with pipefail: the tee does not hide the preview's failure.
        expect(wf.defaults.run.shell).toBe("bash");
    });
});

describe("the previews", () => {
    it("dev: on pull requests, a hosted runner, policy and preview, no secret", () => {
        const wf = workflow("preview.yml");
        expect(Object.keys(events(wf))).toEqual(["pull_request"]);
        const job = wf.jobs.dev as Job;
        expect(job["runs-on"]).toBe("ubuntu-24.04");
        expect(text("preview.yml")).not.toContain("secrets.");
        const run = oneLine(stepsRunning(job, /pulumi preview/)[0]!.run);
        expect(run).toContain("npm run -s policy -- dev");
        expect(run).toContain("pulumi preview --stack dev --diff --policy-pack policy");
    });

    it("comment on the pull request also when they fail, editing their own comment", () => {
        for (const [f, stack] of [
            ["preview.yml", "dev"],
            ["preview-odin.yml", "odin"],
        ] as const) {
            const job = workflow(f).jobs[stack] as Job;
            expect(job.permissions?.["pull-requests"], f).toBe("write");
            const comment = job.steps.find((s) => s.uses?.startsWith("actions/github-script@"))!;
            expect(comment.if, f).toBe("always()");
            expect(comment.env, f).toMatchObject({ STACK: stack, OUTCOME: "${{ job.status }}" });
            const script = String(comment.with!.script);
            expect(script).toContain("<!-- mrs-preview:${process.env.STACK} -->");
            expect(script).toContain("updateComment");
            expect(script).toContain("createComment");
            expect(script).toContain("preview.txt");
            // The comment step comes after the preview, which writes preview.txt.
            const preview = stepsRunning(job, /pulumi preview/)[0]!;
            expect(oneLine(preview.run)).toContain('tee -a "$RUNNER_TEMP/preview.txt"');
            expect(job.steps.indexOf(comment)).toBeGreaterThan(job.steps.indexOf(preview));
        }
    });
});

describe("every run step", () => {
    it("is valid bash (the shell every workflow sets)", () => {
        for (const f of FILES)
            for (const [name, job] of jobsOf(workflow(f)))
                for (const s of job.steps) {
                    if (!s.run) continue;
                    const r = spawnSync("bash", ["-n", "-c", s.run], { encoding: "utf8" });
                    expect(r.status, `${f} ${name}: ${s.name ?? s.run}: ${r.stderr}`).toBe(0);
                }
    });

    it("gets values from events through the environment, never pasted into the script", () => {
        for (const f of FILES)
            for (const [name, job] of jobsOf(workflow(f)))
                for (const s of job.steps) if (s.run) expect(s.run, `${f} ${name}`).not.toContain("${{");
    });
});
