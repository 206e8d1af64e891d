// Issue 25, item 4: errors that name the fix. A mistyped config key gets the nearest real one (by edit
// distance, not only case) and the wrapper command the README uses; an unknown stack lists the stacks;
// `npm run backups --stack odin` (npm takes `--stack` for itself) says to put `--` before the flags.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { ConfigError, editDistance, nearestKey, parseStackConfig, projectDefaults } from "../../config";
import { npmAteFlags, stackName, stackNames, UsageError } from "../../scripts/target";
import { PROJECT_ROOT, loadStackConfig } from "../../support/stackConfig";
import { sshDestination, tunnelCommand } from "../../components/databaseTunnel";

/** The problems of `stack`'s config with `overrides`, as index.ts would report them. */
function problems(stack: string, overrides: Record<string, string>): string[] {
    const { config } = loadStackConfig(stack, overrides);
    try {
        parseStackConfig((key) => config[`marvel-rivals-stats:${key}`], {
            projectDir: PROJECT_ROOT,
            defaultOwner: "1000:1000",
            defaults: projectDefaults(PROJECT_ROOT),
            env: {},
            setKeys: Object.keys(config).map((k) => k.split(":")[1]!),
            stack,
        });
    } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems;
    }
    throw new Error("expected the config to be refused");
}

describe("a mistyped config key", () => {
    test("apPort: one letter missing, the nearest key and the wrapper's command", () => {
        expect(problems("dev", { apPort: "8001" })).toEqual([
            "`marvel-rivals-stats:apPort` is not a setting of this project; did you mean appPort? Remove it with `npm run config -- rm apPort --stack dev` and set appPort instead (docs/configuration.md lists every key).",
        ]);
    });
    test("backupScheduel: two letters swapped", () => {
        expect(problems("odin", { backupScheduel: "0 4 * * *" })).toEqual([
            "`marvel-rivals-stats:backupScheduel` is not a setting of this project; did you mean backupSchedule? Remove it with `npm run config -- rm backupScheduel --stack odin` and set backupSchedule instead (docs/configuration.md lists every key).",
        ]);
    });
    test("a key near nothing gets no guess", () => {
        expect(problems("dev", { colour: "blue" })).toEqual([
            "`marvel-rivals-stats:colour` is not a setting of this project. Remove it with `npm run config -- rm colour --stack dev` (docs/configuration.md lists every key).",
        ]);
    });
    test("the footer of every config error names the wrapper and the stack file", () => {
        const { config } = loadStackConfig("odin", { logLevel: "loud" });
        expect(() =>
            parseStackConfig((key) => config[`marvel-rivals-stats:${key}`], {
                projectDir: PROJECT_ROOT,
                defaultOwner: "1000:1000",
                defaults: projectDefaults(PROJECT_ROOT),
                env: {},
                stack: "odin",
            }),
        ).toThrow(
            "\nFix with `npm run config -- set <key> <value> --stack odin` (or edit Pulumi.odin.yaml) and run again.",
        );
    });
    test("edit distance counts a swap of neighbours as one edit, case aside", () => {
        expect(editDistance("backupscheduel", "backupschedule")).toBe(1);
        expect(editDistance("approt", "appport")).toBe(2);
        expect(nearestKey("POSTGRESPORT", ["postgresPort", "redisPort"])).toBe("postgresPort");
        expect(nearestKey("dbname", ["dbName", "dbUser"])).toBe("dbName");
        expect(nearestKey("xyz", ["dbName", "dbUser"])).toBeUndefined();
    });
});

describe("choosing the stack", () => {
    test("the stacks are the Pulumi.<name>.yaml files", () => {
        expect(stackNames()).toEqual(["dev", "odin"]);
    });
    test("an unknown stack lists the stacks", () => {
        expect(() => stackName("prod")).toThrow(
            new UsageError(
                'unknown stack "prod": the stacks are dev, odin (one per Pulumi.<name>.yaml file); choose one with --stack <name>',
            ),
        );
        expect(stackName("odin")).toBe("odin");
    });
    test("`npm run backups --stack odin`: npm took the flag, the stack came as an argument", () => {
        const env = { npm_config_stack: "true", npm_lifecycle_event: "backups" };
        expect(() => npmAteFlags(["odin"], env)).toThrow(
            new UsageError("npm took --stack for itself: put `--` before the flags: npm run backups -- --stack odin"),
        );
    });
    test("`npm run logs app --stack=odin --follow`: every flag npm took, with its value", () => {
        const env = { npm_config_stack: "odin", npm_config_follow: "true", npm_lifecycle_event: "logs" };
        expect(() => npmAteFlags(["app"], env)).toThrow(
            new UsageError(
                "npm took --stack, --follow for itself: put `--` before the flags: npm run logs -- app --stack odin --follow",
            ),
        );
    });
    test("flags after `--` reach the script: nothing to say", () => {
        expect(() => npmAteFlags(["--stack", "odin"], { npm_lifecycle_event: "backups" })).not.toThrow();
    });
});

describe("the SSH tunnel into a server's database", () => {
    test("the ssh destination and port come from the stack's dockerHost", () => {
        expect(sshDestination("ssh://root@odin")).toEqual({ destination: "root@odin" });
        expect(sshDestination("ssh://deploy@odin.lan:2222")).toEqual({ destination: "deploy@odin.lan", port: "2222" });
        expect(sshDestination("tcp://odin:2376")).toBeUndefined();
        expect(tunnelCommand("ssh://deploy@odin.lan:2222", 5432)).toBe(
            "ssh -N -L 15432:127.0.0.1:5432 -p 2222 deploy@odin.lan",
        );
        expect(tunnelCommand("unix:///var/run/docker.sock", 5432)).toBeUndefined();
    });
});

describe("scripts/pulumi.sh: up, preview, destroy, outputs and config take --stack too", () => {
    /** Runs scripts/pulumi.sh with a stand-in `pulumi` that prints the arguments it was given. */
    function pulumiSh(args: string[], env: Record<string, string> = {}) {
        const bin = mkdtempSync(path.join(tmpdir(), "mrs-pulumi-"));
        writeFileSync(path.join(bin, "pulumi"), '#!/bin/sh\necho "pulumi $*"\n', { mode: 0o755 });
        try {
            return spawnSync("bash", [path.join(PROJECT_ROOT, "scripts", "pulumi.sh"), ...args], {
                cwd: PROJECT_ROOT,
                encoding: "utf8",
                env: {
                    PATH: `${bin}:${process.env.PATH}`,
                    HOME: process.env.HOME ?? "/root",
                    PULUMI_CONFIG_PASSPHRASE: "not-a-real-passphrase",
                    ...env,
                },
            });
        } finally {
            rmSync(bin, { recursive: true, force: true });
        }
    }
    test("--stack odin anywhere among the arguments reaches pulumi as its --stack", () => {
        // odin's state is refused on a file:// backend (docs/github.md): after --stack is read, not before.
        const refused = pulumiSh(["preview", "--diff", "--stack", "odin"]);
        expect(refused.status).toBe(1);
        expect(refused.stderr).toContain("error: odin's state would be file://");
        const allow = { MRS_ALLOW_LOCAL_STATE: "1" };
        const r = pulumiSh(["preview", "--diff", "--stack", "odin"], allow);
        expect(r.stderr).toBe("");
        expect(r.stdout.trim().split("\n").at(-1)).toBe("pulumi preview --diff --stack odin");
        expect(
            pulumiSh(["stack", "output", "--stack=odin", "databaseTunnel"], allow).stdout.trim().split("\n").at(-1),
        ).toBe("pulumi stack output databaseTunnel --stack odin");
        expect(pulumiSh(["config", "get", "dataDir"]).stdout.trim().split("\n").at(-1)).toBe(
            "pulumi config get dataDir --stack dev",
        );
    });
    test("an unknown stack lists the stacks; a --stack npm took says where `--` goes", () => {
        const unknown = pulumiSh(["up", "--stack", "prod"]);
        expect(unknown.status).toBe(1);
        expect(unknown.stderr).toBe(
            'error: unknown stack "prod": the stacks are dev, odin (one per Pulumi.<name>.yaml file); choose one with --stack <name>\n',
        );
        const eaten = pulumiSh(["up", "odin"], { npm_config_stack: "true", npm_lifecycle_event: "up" });
        expect(eaten.status).toBe(1);
        expect(eaten.stderr).toBe(
            "error: npm took --stack for itself: put `--` before the flags: npm run up -- --stack odin\n",
        );
    });
});
