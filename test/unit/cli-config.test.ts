// The Pulumi CLI's own checks of Pulumi.yaml against a stack file, as the shared loader applies them
// (support/stackConfig.ts, which cites pulumi/pulumi v3.259.0): the committed stack files must pass
// them, because the real CLI refuses to run the program otherwise.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { CliConfigError, loadStackConfig } from "../../support/stackConfig";

describe("the committed stack files pass the CLI's checks", () => {
    test.each(["dev", "odin"])("%s", (stack) => {
        const { config } = loadStackConfig(stack);
        // Every declared key reaches the program with a value.
        expect(config["marvel-rivals-stats:dataDir"]).toBeDefined();
        expect(config["marvel-rivals-stats:externalNetworks"]).toMatch(/^\[/);
    });
});

test("a declared boolean written as yes in a stack file is refused by the CLI itself", () => {
    expect(() => loadStackConfig("dev", { backups: "yes" })).toThrow(
        "Stack 'dev' with configuration key 'backups' must be of type 'boolean'",
    );
});

describe("the CLI's refusals, with its own messages", () => {
    const dirs: string[] = [];
    afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    function project(config: string, stackFile: string): string {
        const dir = mkdtempSync(path.join(tmpdir(), "cli-config-"));
        dirs.push(dir);
        writeFileSync(path.join(dir, "Pulumi.yaml"), `name: p\nruntime: nodejs\nconfig:\n${config}`);
        writeFileSync(path.join(dir, "Pulumi.dev.yaml"), `config:\n${stackFile}`);
        return dir;
    }
    const refusal = (dir: string) => {
        try {
            loadStackConfig("dev", {}, { projectDir: dir });
        } catch (err) {
            expect(err).toBeInstanceOf(CliConfigError);
            return (err as Error).message;
        }
        return "accepted";
    };

    test("a declared key without a default that the stack does not set", () => {
        const dir = project(
            "  b:\n    type: string\n  a:\n    type: integer\n  c:\n    type: string\n    default: x\n  d:\n    type: boolean\n",
            "  p:d: true\n",
        );
        expect(refusal(dir)).toBe("Stack 'dev' is missing configuration values 'a' and 'b'");
        expect(refusal(project("  a:\n    type: string\n", "  p:z: 1\n"))).toBe(
            "Stack 'dev' is missing configuration value 'a'",
        );
    });

    test("a secret key whose value is not encrypted, and one with a plain default", () => {
        expect(refusal(project("  s:\n    type: string\n    secret: true\n", "  p:s: plain\n"))).toBe(
            "Stack 'dev' with configuration key 's' must be encrypted as it's secret",
        );
        expect(refusal(project("  s:\n    type: string\n    secret: true\n    default: x\n", "  p:z: 1\n"))).toBe(
            "Stack 'dev' with configuration key 's' must be encrypted as it's secret",
        );
        expect(refusal(project("  s:\n    type: string\n    secret: true\n", "  p:s:\n    secure: AAAB\n"))).toBe(
            "accepted",
        );
    });

    test("values of the wrong declared type; text that parses is accepted as the CLI accepts it", () => {
        expect(refusal(project("  n:\n    type: integer\n    default: 1\n", "  p:n: five\n"))).toBe(
            "Stack 'dev' with configuration key 'n' must be of type 'integer'",
        );
        expect(refusal(project("  n:\n    type: integer\n    default: 1\n", '  p:n: "5432"\n'))).toBe("accepted");
        expect(refusal(project("  b:\n    type: boolean\n    default: false\n", "  p:b: yes\n"))).toBe(
            "Stack 'dev' with configuration key 'b' must be of type 'boolean'",
        );
        expect(
            refusal(
                project("  l:\n    type: array\n    items:\n      type: string\n    default: []\n", "  p:l: [1, 2]\n"),
            ),
        ).toBe("Stack 'dev' with configuration key 'l' must be of type 'array<string>'");
        expect(
            refusal(
                project("  l:\n    type: array\n    items:\n      type: string\n    default: []\n", "  p:l: caddy\n"),
            ),
        ).toBe("Stack 'dev' with configuration key 'l' must be of type 'array<string>'");
    });

    test("a Pulumi.yaml the CLI refuses before it looks at the stack", () => {
        expect(refusal(project("  l:\n    type: array\n    default: []\n", "  p:z: 1\n"))).toBe(
            "The configuration key 'l' declares an array but does not specify the underlying type via the 'items' attribute",
        );
        expect(refusal(project("  n:\n    type: integer\n    default: x\n", "  p:z: 1\n"))).toBe(
            "The default value specified for configuration key 'n' is not of the expected type 'integer'",
        );
    });

    test("keys the project does not declare pass through untouched", () => {
        const { config } = loadStackConfig(
            "dev",
            {},
            { projectDir: project("  a:\n    default: 1\n", "  p:extra: [x]\n") },
        );
        expect(config).toEqual({ "p:a": "1", "p:extra": '["x"]' });
    });
});
