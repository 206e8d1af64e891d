// `npm run policy -- <stack>` as a reviewer runs it: exit 0 on the stacks as they are, exit 1 naming the
// rule and the resource when a change breaks a mandatory rule.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";

const REPO = resolve(__dirname, "../..");
const policy = (...args: string[]) =>
    spawnSync("npm", ["run", "-s", "policy", "--", ...args], { cwd: REPO, encoding: "utf8", timeout: 120_000 });

describe("npm run policy", () => {
    it("passes the dev stack as it is", () => {
        const r = policy("dev");
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        // (The program's own info lines, such as the pending migrations, come first.)
        expect(r.stdout).toMatch(/\npolicy: 7 policies over 39 resources of stack dev: no mandatory violation\n$/);
        expect(r.stdout).not.toContain("violation of");
    }, 120_000);

    it("fails a Postgres port published on the LAN, naming the rule and the resource", () => {
        const r = policy("dev", "--set", "postgresBindAddress=0.0.0.0");
        expect(r.status).toBe(1);
        expect(r.stdout.split("\n").slice(-3)).toEqual([
            "mandatory violation of no-database-port-on-lan (postgres-container): postgres-container publishes PostgreSQL's port 5432 on 0.0.0.0, reachable from the network; bind it to 127.0.0.1 (postgresBindAddress/redisBindAddress)",
            "policy: 7 policies over 39 resources of stack dev: 1 mandatory violation(s)",
            "",
        ]);
    }, 120_000);

    it("exits 2 on bad usage", () => {
        const r = policy("dev", "--frobnicate");
        expect(r.status).toBe(2);
        expect(r.stderr).toContain("usage: npm run policy -- [--stack <name>] [--set key=value ...]");
    }, 120_000);

    it("takes a mistyped --set key as the command's typo, naming the nearest key with the value", () => {
        const r = policy("--stack", "odin", "--set", "apPort=8000");
        expect(r.status).toBe(2);
        expect(r.stderr).toBe("policy: --set apPort: did you mean --set appPort=8000?\n");
        expect(r.stdout).toBe("");
    }, 120_000);

    it("refuses a --set key that is nothing like a setting", () => {
        const r = policy("dev", "--set", "frobnicate=1");
        expect(r.status).toBe(2);
        expect(r.stderr).toBe(
            "policy: --set frobnicate: not a setting of this project (docs/configuration.md lists every key)\n",
        );
    }, 120_000);

    it("refuses --set without key=value, with an example", () => {
        for (const args of [["--set", "appPort"], ["--set"]]) {
            const r = policy("dev", ...args);
            expect(r.status).toBe(2);
            expect(r.stderr).toBe("policy: --set needs key=value, e.g. --set appPort=8000\n");
        }
    }, 120_000);

    it("refuses an unknown stack, listing the stacks, before running anything", () => {
        const r = policy("prod");
        expect(r.status).toBe(2);
        expect(r.stderr).toBe(
            'policy: unknown stack "prod": the stacks are dev, odin (one per Pulumi.<name>.yaml file); choose one with --stack <name>\n',
        );
    }, 120_000);
});
