// scripts/pulumi.sh (npm run up/preview/destroy/outputs), where the state and the passphrase live (issue 23,
// item 3): for odin it refuses any local file:// state unless MRS_ALLOW_LOCAL_STATE=1
// (one home for odin's state, shared with the GitHub deploy); the passphrase it generates is a 0600 file
// outside the state directory, one generated beside the state by an earlier version is moved out, never
// lost. The script runs for real, in a copy of the repository's layout, with a `pulumi` on PATH that
// records how it was called (the CLI cannot be installed here) and a `docker` that only has to exist.
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import {
    chmodSync,
    copyFileSync,
    existsSync,
    mkdirSync,
    mkdtempSync,
    readFileSync,
    rmSync,
    statSync,
    symlinkSync,
    writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const REPO = resolve(__dirname, "../..");
const made: string[] = [];
afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
});

interface World {
    repo: string;
    home: string;
    log: string;
    run(args: string[], env?: Record<string, string>): { status: number | null; stdout: string; stderr: string };
    calls(): string[];
}

function world(): World {
    const root = mkdtempSync(join(tmpdir(), "mrs-pulumi-sh-"));
    made.push(root);
    const repo = join(root, "repo");
    const home = join(root, "home");
    const bin = join(root, "bin");
    const log = join(root, "pulumi.log");
    for (const d of [join(repo, "scripts"), join(repo, "node_modules", "@pulumi", "pulumi"), home, bin])
        mkdirSync(d, { recursive: true });
    copyFileSync(join(REPO, "scripts", "pulumi.sh"), join(repo, "scripts", "pulumi.sh"));
    for (const s of ["dev", "odin"]) writeFileSync(join(repo, `Pulumi.${s}.yaml`), "config: {}\n");
    // Records each call with the backend and passphrase file it saw; `config get` finds nothing.
    writeFileSync(
        join(bin, "pulumi"),
        `#!/bin/sh\nprintf '%s|%s|%s\\n' "$*" "$PULUMI_BACKEND_URL" "\${PULUMI_CONFIG_PASSPHRASE_FILE:-}" >> "${log}"\n[ "$1 $2" = "config get" ] && exit 1\nexit 0\n`,
    );
    writeFileSync(join(bin, "docker"), "#!/bin/sh\nexit 0\n");
    chmodSync(join(bin, "pulumi"), 0o755);
    chmodSync(join(bin, "docker"), 0o755);
    return {
        repo,
        home,
        log,
        run(args, env = {}) {
            const base: NodeJS.ProcessEnv = { PATH: `${bin}:${process.env.PATH}`, HOME: home, ...env };
            const r = spawnSync("bash", [join(repo, "scripts", "pulumi.sh"), ...args], {
                cwd: repo,
                env: base,
                encoding: "utf8",
            });
            return { status: r.status, stdout: r.stdout, stderr: r.stderr };
        },
        calls() {
            return existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [];
        },
    };
}

const REFUSAL = (url: string) =>
    `error: odin's state would be ${url}, a local file backend on this machine: odin has one state, shared with the GitHub deploy. Set PULUMI_BACKEND_URL to it (docs/github.md, "Where odin's state lives"), or set MRS_ALLOW_LOCAL_STATE=1 to use this local state anyway.\n`;

describe("odin's state", () => {
    it("refuses the default state (.pulumi-state in the repository) for odin, naming the override, before any pulumi call", () => {
        const w = world();
        // MRS_DEPLOY_LOCK_HELD: the up's lock is someone else's business here (scripts/deployLock.ts).
        for (const args of [["preview", "--diff"], ["up"]]) {
            const r = w.run(args, {
                PULUMI_STACK: "odin",
                PULUMI_CONFIG_PASSPHRASE: "x",
                MRS_DEPLOY_LOCK_HELD: "up",
            });
            expect(r.status, args[0]).toBe(1);
            expect(r.stderr, args[0]).toBe(REFUSAL(`file://${join(w.repo, ".pulumi-state")}`));
        }
        expect(w.calls()).toEqual([]);
    });

    // A path check (inside the repository or not) was walked round by file://~ (Pulumi's own ~/.pulumi),
    // by a directory outside the repository and by a symlink to the state: any file:// is a second home.
    it("refuses every file:// state: relative, with a query, file://~, outside the repository, a symlink", () => {
        const w = world();
        const env = { PULUMI_STACK: "odin", PULUMI_CONFIG_PASSPHRASE: "x" };
        mkdirSync(join(w.repo, "state"));
        const outside = join(w.home, "mrs-state");
        mkdirSync(outside);
        const link = join(w.home, "link");
        symlinkSync(join(w.repo, "state"), link);
        for (const url of [
            "file://./state",
            `file://${w.repo}/state?x=1`,
            `file://${w.repo}`,
            "file://~",
            `file://${outside}`,
            `file://${link}`,
        ]) {
            const r = w.run(["preview"], { ...env, PULUMI_BACKEND_URL: url });
            expect(r.status, url).toBe(1);
            expect(r.stderr, url).toBe(REFUSAL(url));
        }
        expect(w.calls()).toEqual([]);
    });

    it("uses the shared backend (s3://) and, when told, the local state; dev keeps its local state", () => {
        const w = world();
        const s3 = "s3://mrs-pulumi-state?endpoint=s3.example.invalid&region=auto";
        expect(
            w.run(["preview"], { PULUMI_STACK: "odin", PULUMI_CONFIG_PASSPHRASE: "x", PULUMI_BACKEND_URL: s3 }).status,
        ).toBe(0);
        expect(w.calls().at(-1)).toBe(`preview --stack odin|${s3}|`);
        const told = w.run(["preview"], {
            PULUMI_STACK: "odin",
            PULUMI_CONFIG_PASSPHRASE: "x",
            MRS_ALLOW_LOCAL_STATE: "1",
        });
        expect(told.status, told.stderr).toBe(0);
        expect(w.calls().at(-1)).toBe(`preview --stack odin|file://${w.repo}/.pulumi-state|`);
        const dev = w.run(["preview"], { PULUMI_CONFIG_PASSPHRASE: "x" });
        expect(dev.status, dev.stderr).toBe(0);
        expect(w.calls().at(-1)).toBe(`preview --stack dev|file://${w.repo}/.pulumi-state|`);
    });
});

describe("the passphrase", () => {
    const keyFile = (w: World) => join(w.home, ".config", "marvel-rivals-stats", "passphrase");

    it("is generated outside the state directory, 0600, and used from there", () => {
        const w = world();
        const r = w.run(["preview"]);
        expect(r.status, r.stderr).toBe(0);
        expect(statSync(keyFile(w)).mode & 0o777).toBe(0o600);
        expect(readFileSync(keyFile(w), "utf8").trim().length).toBeGreaterThanOrEqual(40);
        expect(existsSync(join(w.repo, ".pulumi-state", "passphrase"))).toBe(false);
        expect(w.calls().at(-1)).toBe(`preview --stack dev|file://${w.repo}/.pulumi-state|${keyFile(w)}`);
        expect(r.stderr).toContain(`Generated a passphrase for the stack secrets in ${keyFile(w)} (0600)`);
    });

    it("an old one beside the state is moved out once, never lost; two different ones are refused", () => {
        const w = world();
        mkdirSync(join(w.repo, ".pulumi-state"));
        writeFileSync(join(w.repo, ".pulumi-state", "passphrase"), "the-old-one\n");
        const r = w.run(["preview"]);
        expect(r.status, r.stderr).toBe(0);
        expect(readFileSync(keyFile(w), "utf8")).toBe("the-old-one\n");
        expect(statSync(keyFile(w)).mode & 0o777).toBe(0o600);
        expect(existsSync(join(w.repo, ".pulumi-state", "passphrase"))).toBe(false);
        expect(r.stderr).toContain(`Moved the stack passphrase out of the state directory, to ${keyFile(w)}`);

        writeFileSync(join(w.repo, ".pulumi-state", "passphrase"), "another\n");
        const two = w.run(["preview"]);
        expect(two.status).toBe(1);
        expect(two.stderr).toMatch(/^error: two different passphrases: .*delete .*\.pulumi-state\/passphrase/);
        expect(readFileSync(join(w.repo, ".pulumi-state", "passphrase"), "utf8")).toBe("another\n");
        expect(readFileSync(keyFile(w), "utf8")).toBe("the-old-one\n");
    });

    it("is not generated anew for a state that has stacks already (they were encrypted with another one)", () => {
        const w = world();
        mkdirSync(join(w.repo, ".pulumi-state", ".pulumi", "stacks", "marvel-rivals-stats"), { recursive: true });
        writeFileSync(join(w.repo, ".pulumi-state", ".pulumi", "stacks", "marvel-rivals-stats", "dev.json"), "{}\n");
        const r = w.run(["preview"]);
        expect(r.status).toBe(1);
        expect(r.stderr).toBe(
            `error: the stacks in ${w.repo}/.pulumi-state were encrypted with a passphrase that is not in ${keyFile(w)}: put it there (0600), or set PULUMI_CONFIG_PASSPHRASE_FILE to the file that holds it; a new one would not open them.\n`,
        );
        expect(existsSync(keyFile(w))).toBe(false);
        expect(w.calls()).toEqual([]);
    });

    it("is not generated for a shared backend (s3://): odin's stack there opens only with the GitHub secret's", () => {
        const w = world();
        const s3 = "s3://mrs-pulumi-state?endpoint=s3.example.invalid&region=auto";
        const r = w.run(["preview", "--stack", "odin"], { PULUMI_BACKEND_URL: s3 });
        expect(r.status).toBe(1);
        expect(r.stderr).toBe(
            `error: no passphrase for the s3:// backend: put the stack's passphrase (the GitHub secret PULUMI_CONFIG_PASSPHRASE) in ${keyFile(w)} (0600), or set PULUMI_CONFIG_PASSPHRASE_FILE to the file that holds it; a new one would not open its stacks.\n`,
        );
        expect(existsSync(keyFile(w))).toBe(false);
        expect(w.calls()).toEqual([]);
        // With the passphrase in its place, it goes on and uses it.
        mkdirSync(join(w.home, ".config", "marvel-rivals-stats"), { recursive: true });
        writeFileSync(keyFile(w), "the-github-secret\n", { mode: 0o600 });
        const ok = w.run(["preview", "--stack", "odin"], { PULUMI_BACKEND_URL: s3 });
        expect(ok.status, ok.stderr).toBe(0);
        expect(w.calls().at(-1)).toBe(`preview --stack odin|${s3}|${keyFile(w)}`);
    });

    it("refuses a PULUMI_CONFIG_PASSPHRASE_FILE inside the state directory", () => {
        const w = world();
        mkdirSync(join(w.repo, ".pulumi-state"));
        const inside = join(w.repo, ".pulumi-state", "mine");
        writeFileSync(inside, "x\n");
        const r = w.run(["preview"], { PULUMI_CONFIG_PASSPHRASE_FILE: inside });
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/^error: PULUMI_CONFIG_PASSPHRASE_FILE is .*inside the state directory/);
        // Relative (pulumi opens it from the repository) or through a symlink: the same file, refused too.
        symlinkSync(join(w.repo, ".pulumi-state"), join(w.home, "st"));
        for (const f of [".pulumi-state/mine", "./.pulumi-state/../.pulumi-state/mine", join(w.home, "st", "mine")]) {
            const again = w.run(["preview"], { PULUMI_CONFIG_PASSPHRASE_FILE: f });
            expect(again.status, f).toBe(1);
            expect(again.stderr, f).toMatch(/^error: PULUMI_CONFIG_PASSPHRASE_FILE is .*inside the state directory/);
        }
        expect(w.calls()).toEqual([]);
    });
});
