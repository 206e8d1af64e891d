// The e2e driver choice and the CLI driver's translation of engine events (issue 10, item 4). The CLI
// driver cannot run here (no Pulumi CLI): these tests check what it decides and how it reads the CLI's
// events, on events shaped like pulumi/pulumi v3.260.0 pkg/backend/display/events.go emits them.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { afterAll, describe, expect, it } from "vitest";
import { errorsOf, operationOf, operationsOf, previewOutputsOf, upOutputsOf } from "../e2e/harness/cliDriver";
import { chooseDriver, pulumiOnPath } from "../e2e/harness/driver";

const found = () => "/usr/local/bin/pulumi";
const missing = () => undefined;

describe("chooseDriver", () => {
    it("takes the CLI when `pulumi` is on PATH and nothing is forced", () => {
        expect(chooseDriver({}, undefined, found)).toBe("cli");
    });

    it("takes the harness when `pulumi` is not on PATH", () => {
        expect(chooseDriver({}, undefined, missing)).toBe("harness");
    });

    it("takes the harness when forced, even with the CLI installed", () => {
        expect(chooseDriver({ MRS_E2E_DRIVER: "harness" }, undefined, found)).toBe("harness");
    });

    it("keeps the harness for a run pinned to it (the harness's own tests)", () => {
        expect(chooseDriver({ MRS_E2E_DRIVER: "cli" }, "harness", found)).toBe("harness");
    });

    it("takes the CLI when forced and installed", () => {
        expect(chooseDriver({ MRS_E2E_DRIVER: "cli" }, undefined, found)).toBe("cli");
    });

    it("refuses a forced CLI that is not installed, saying what to do, instead of falling back", () => {
        expect(() => chooseDriver({ MRS_E2E_DRIVER: "cli" }, undefined, missing)).toThrow(
            /MRS_E2E_DRIVER=cli but no `pulumi` is on PATH: install the Pulumi CLI/,
        );
    });

    it("refuses an unknown driver name", () => {
        expect(() => chooseDriver({ MRS_E2E_DRIVER: "automation" }, undefined, found)).toThrow(
            'MRS_E2E_DRIVER=automation is not a driver: use "harness", "cli", or leave it unset',
        );
    });

    it("treats an empty MRS_E2E_DRIVER as unset", () => {
        expect(chooseDriver({ MRS_E2E_DRIVER: " " }, undefined, missing)).toBe("harness");
    });
});

describe("pulumiOnPath", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "mrs-driver-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("finds an executable `pulumi` on PATH and ignores a non-executable one", () => {
        const plainDir = path.join(dir, "plain");
        const execDir = path.join(dir, "exec");
        mkdirSync(plainDir);
        mkdirSync(execDir);
        writeFileSync(path.join(plainDir, "pulumi"), "not executable");
        chmodSync(path.join(plainDir, "pulumi"), 0o644);
        writeFileSync(path.join(execDir, "pulumi"), "#!/bin/sh\n");
        chmodSync(path.join(execDir, "pulumi"), 0o755);
        expect(pulumiOnPath({ PATH: [plainDir, execDir].join(path.delimiter) })).toBe(path.join(execDir, "pulumi"));
        expect(pulumiOnPath({ PATH: plainDir })).toBeUndefined();
        expect(pulumiOnPath({ PATH: "" })).toBeUndefined();
    });
});

const URN = (type: string, name: string) => `urn:pulumi:dev::marvel-rivals-stats::${type}::${name}`;
const step = (
    kind: "resourcePreEvent" | "resOutputsEvent",
    op: string,
    type: string,
    name: string,
    extra: Record<string, unknown> = {},
    custom = true,
): EngineEvent =>
    ({
        sequence: 1,
        timestamp: 0,
        [kind]: {
            metadata: {
                op,
                urn: URN(type, name),
                type,
                provider: "",
                new: { type, urn: URN(type, name), custom, inputs: {}, outputs: extra.outputs ?? {}, parent: "" },
                ...extra,
            },
        },
    }) as unknown as EngineEvent;

describe("the CLI driver's reading of engine events", () => {
    it("maps engine steps to the harness's operations: the replacement's steps are one replace", () => {
        expect(operationOf("same")).toBe("same");
        expect(operationOf("create-replacement")).toBe("replace");
        expect(operationOf("replace")).toBe("replace");
        expect(operationOf("delete-replaced")).toBeUndefined();
        expect(operationOf("refresh")).toBeUndefined();
    });

    it("records one operation per custom resource, without providers, components or the stack", () => {
        const events = [
            {
                event: step("resourcePreEvent", "create", "pulumi:pulumi:Stack", "marvel-rivals-stats-dev", {}, false),
                at: 100,
            },
            { event: step("resourcePreEvent", "create", "pulumi:providers:docker", "engine"), at: 101 },
            { event: step("resourcePreEvent", "create", "marvel:stack:Postgres", "postgres", {}, false), at: 102 },
            { event: step("resourcePreEvent", "same", "docker:index/network:Network", "net"), at: 103 },
            {
                event: step("resourcePreEvent", "create-replacement", "docker:index/container:Container", "pg", {
                    diffs: ["image"],
                }),
                at: 110,
            },
            {
                event: step("resourcePreEvent", "replace", "docker:index/container:Container", "pg", {
                    diffs: ["image"],
                }),
                at: 111,
            },
            { event: step("resourcePreEvent", "delete-replaced", "docker:index/container:Container", "pg"), at: 112 },
            { event: step("resOutputsEvent", "replace", "docker:index/container:Container", "pg"), at: 150 },
        ];
        expect(operationsOf(events, 100)).toEqual([
            {
                key: "docker:index/network:Network::net",
                type: "docker:index/network:Network",
                name: "net",
                op: "same",
                start: 3,
                end: 3,
            },
            {
                key: "docker:index/container:Container::pg",
                type: "docker:index/container:Container",
                name: "pg",
                op: "replace",
                changed: ["image"],
                start: 10,
                end: 50,
            },
        ]);
    });

    it("marks a resource whose step failed", () => {
        const failed = {
            sequence: 2,
            timestamp: 0,
            resOpFailedEvent: {
                metadata: (step("resourcePreEvent", "create", "docker:index/container:Container", "app") as any)
                    .resourcePreEvent.metadata,
                status: 1,
                steps: 0,
            },
        } as unknown as EngineEvent;
        const ops = operationsOf([{ event: failed, at: 5 }], 0);
        expect(ops).toMatchObject([{ name: "app", op: "create", error: "failed (status 1)" }]);
    });

    it("reads a preview's outputs from the stack's last event: unknowns as <unknown>, secrets flagged and masked", () => {
        const outputs = {
            dataDir: "/tmp/data",
            migrationsApplied: "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
            databaseUrl: {
                "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                ciphertext: "[secret]",
            },
            pendingMigrations: { database: "read", pending: [{ file: "001.sql", firstLine: "-- x" }] },
        };
        const events = [
            { event: step("resourcePreEvent", "same", "pulumi:pulumi:Stack", "s", { outputs: {} }, false) },
            { event: step("resOutputsEvent", "same", "pulumi:pulumi:Stack", "s", { outputs }, false) },
        ];
        expect(previewOutputsOf(events)).toEqual({
            outputs: {
                dataDir: "/tmp/data",
                migrationsApplied: "<unknown>",
                databaseUrl: "[secret]",
                pendingMigrations: outputs.pendingMigrations,
            },
            secretOutputs: ["databaseUrl"],
        });
    });

    it("reads an up's outputs with their secret flags", () => {
        expect(
            upOutputsOf({
                appUrl: { value: "http://127.0.0.1:8000", secret: false },
                redisUrl: { value: "redis://x", secret: true },
            }),
        ).toEqual({ outputs: { appUrl: "http://127.0.0.1:8000", redisUrl: "redis://x" }, secretOutputs: ["redisUrl"] });
    });

    it("reports the engine's error diagnostics, once each, else the CLI's message", () => {
        const diag = (severity: string, message: string) =>
            ({
                event: {
                    sequence: 0,
                    timestamp: 0,
                    diagnosticEvent: { severity, message: `${message}\n`, color: "never" },
                },
            }) as { event: EngineEvent };
        expect(
            errorsOf(
                [diag("info", "noise"), diag("error", "postgres unhealthy"), diag("error", "postgres unhealthy")],
                "exit 255",
            ),
        ).toBe("postgres unhealthy");
        expect(errorsOf([diag("warning", "w")], "exit 255")).toBe("exit 255");
    });
});
