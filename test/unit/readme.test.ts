// Issue 25, "done when": a newcomer's check of the README. At most 200 lines; the first runnable command in
// the first 30; a daily-tasks table whose every command is an npm script that answers --help without a
// server (run here, with DOCKER_HOST pointing nowhere); every relative link, in the README and in docs/,
// resolving to a file and, with an anchor, to a heading there; at least 4 docs pages; and the README's test
// command the one CI runs.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, test } from "vitest";

const REPO = path.resolve(__dirname, "../..");
const readme = readFileSync(path.join(REPO, "README.md"), "utf8");
const lines = readme.split("\n");

/** GitHub's heading anchors: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
export const slug = (heading: string) =>
    heading
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, "")
        .replace(/ /g, "-");

function anchorsOf(file: string): Set<string> {
    let fenced = false;
    const out = new Set<string>();
    for (const l of readFileSync(file, "utf8").split("\n")) {
        if (l.startsWith("```")) fenced = !fenced;
        const m = !fenced && /^#{1,6} (.*)$/.exec(l);
        if (m) out.add(slug(m[1]!));
    }
    return out;
}

/** The daily-tasks table's rows: the task and the npm scripts its command cell names. */
function dailyTasks(): { task: string; scripts: string[] }[] {
    const start = lines.indexOf("## Daily tasks");
    const end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
    return lines
        .slice(start, end)
        .filter((l) => l.startsWith("| ") && !l.startsWith("| task |") && !l.startsWith("| --- "))
        .map((row) => {
            const [task = "", command = ""] = row.replace(/^\| /, "").replace(/ \|$/, "").split(" | ");
            return { task, scripts: [...command.matchAll(/npm run (?:-s )?([a-z:]+)/g)].map((m) => m[1]!) };
        });
}

describe("the README as the front door", () => {
    test("at most 200 lines", () => {
        expect(lines.length).toBeLessThanOrEqual(200);
    });

    test("the first runnable command is within the first 30 lines, in the Quick start", () => {
        let fenced = false;
        const first = lines.findIndex((l) => {
            if (l.startsWith("```")) {
                fenced = !fenced;
                return false;
            }
            return fenced && l.trim() !== "" && !l.trim().startsWith("#");
        });
        expect(first).toBeGreaterThanOrEqual(0);
        expect(first + 1).toBeLessThanOrEqual(30);
        expect(lines.slice(0, first).some((l) => l === "## Quick start")).toBe(true);
        // The Quick start installs the Pulumi CLI (the CI set-up does not) and ends with up and status.
        const quick = lines.slice(first, lines.indexOf("```", first)).join("\n");
        expect(quick).toContain("get.pulumi.com");
        expect(quick).toContain("npm ci");
        expect(quick).toContain("npm run up -- --stack dev");
        expect(quick).toContain("npm run status");
    });

    test("at least 4 docs pages, each linked from the README", () => {
        const pages = readdirSync(path.join(REPO, "docs")).filter((f) => f.endsWith(".md"));
        expect(pages.length).toBeGreaterThanOrEqual(4);
        for (const p of pages) expect(readme, p).toContain(`](docs/${p}`);
    });

    test("every relative link of the README and of docs/ resolves, anchors included", () => {
        const files = ["README.md", ...readdirSync(path.join(REPO, "docs")).map((f) => `docs/${f}`)];
        const broken: string[] = [];
        let checked = 0;
        for (const file of files) {
            const text = readFileSync(path.join(REPO, file), "utf8");
            for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
                const link = m[1]!;
                if (/^[a-z]+:/.test(link)) continue; // https:, mailto:
                const [target, anchor] = link.split("#");
                const resolved = target ? path.normalize(path.join(path.dirname(file), target)) : file;
                checked++;
                if (!existsSync(path.join(REPO, resolved))) {
                    broken.push(`${file}: ${link} (no file ${resolved})`);
                    continue;
                }
                if (anchor && !anchorsOf(path.join(REPO, resolved)).has(anchor))
                    broken.push(`${file}: ${link} (no heading #${anchor} in ${resolved})`);
            }
        }
        expect(broken).toEqual([]);
        expect(checked).toBeGreaterThan(30);
    });

    test("the README's test command is the one CI runs", () => {
        const ci = readFileSync(path.join(REPO, ".ci", "run"), "utf8");
        expect(ci).toMatch(/^npm test\b/m);
        const tests = lines.slice(lines.indexOf("## Tests"));
        expect(
            tests
                .slice(
                    0,
                    tests.findIndex((l, i) => i > 0 && l.startsWith("## ")),
                )
                .join("\n"),
        ).toContain("```sh\nbash .ci/setup\nnpm ci\nnpm test\n```");
    });
});

/** `npm run -s <script> -- --help`, with no Docker engine anywhere. */
function help(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        const child = spawn("npm", ["run", "-s", script, "--", "--help"], {
            cwd: REPO,
            env: { ...process.env, DOCKER_HOST: "unix:///nonexistent/docker.sock", PULUMI_STACK: "" },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
}

describe("the daily-tasks table", () => {
    const tasks = dailyTasks();
    const scripts = [...new Set(tasks.flatMap((t) => t.scripts))].sort();
    const pkg = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as {
        scripts: Record<string, string>;
    };

    test("has a command for each of SPEC-004's daily tasks, each an npm script of package.json", () => {
        expect(tasks.length).toBeGreaterThanOrEqual(15);
        for (const t of tasks) expect(t.scripts.length, t.task).toBeGreaterThan(0);
        expect(scripts).toEqual(
            expect.arrayContaining([
                "status",
                "logs",
                "psql",
                "backups",
                "restore",
                "rollback",
                "rotate",
                "reset",
                "up",
            ]),
        );
        for (const s of scripts) expect(pkg.scripts[s], `npm run ${s}`).toBeDefined();
    });

    test("every command answers --help without a server", async () => {
        const answers = await Promise.all(scripts.map(async (s) => ({ s, ...(await help(s)) })));
        for (const a of answers) {
            expect(a.code, `npm run ${a.s} -- --help: ${a.stderr}`).toBe(0);
            // (migrate, the app's CLI, prints its usage on stderr.)
            expect(a.stdout + a.stderr, `npm run ${a.s} -- --help`).toMatch(/usage/);
        }
    }, 120_000);
});
