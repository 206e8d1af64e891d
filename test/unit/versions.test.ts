// .ci/versions: the CI scripts' reader of the Node image (home: app/Dockerfile) and of the Postgres and Redis
// tags (home: Pulumi.yaml's defaults). It reads them with sed and awk, since .ci/setup sources it before Node
// and the npm dependencies exist; these tests hold it to what Docker and the program's own YAML reader
// (config.ts, projectDefaults) see, and make it fail loudly when a home no longer holds its fact.
import { describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectDefaults } from "../../config";
import { PROJECT_ROOT } from "../../support/stackConfig";

/** Sources ROOT/.ci/versions under `set -euo pipefail`, as .ci/setup and .ci/provision.sh do. */
function source(root: string) {
    const r = spawnSync(
        "bash",
        [
            "-c",
            'set -euo pipefail; source "$1/.ci/versions"; printf "%s\\n" "$NODE_IMAGE" "$NODE_VERSION" "$POSTGRES_TAG" "$REDIS_TAG"',
            "versions",
            root,
        ],
        { encoding: "utf8" },
    );
    const [nodeImage, nodeVersion, postgresTag, redisTag] = r.stdout.split("\n");
    return { status: r.status, stderr: r.stderr, nodeImage, nodeVersion, postgresTag, redisTag };
}

/** A copy of .ci/versions in a scratch repository with the given app/Dockerfile and Pulumi.yaml. */
function scratch(dockerfile: string, pulumiYaml: string): string {
    const root = mkdtempSync(join(tmpdir(), "mrs-versions-"));
    mkdirSync(join(root, ".ci"));
    mkdirSync(join(root, "app"));
    copyFileSync(join(PROJECT_ROOT, ".ci", "versions"), join(root, ".ci", "versions"));
    writeFileSync(join(root, "app", "Dockerfile"), dockerfile);
    writeFileSync(join(root, "Pulumi.yaml"), pulumiYaml);
    return root;
}

const DOCKERFILE = "# base\nARG NODE_IMAGE=node:24.1.0-trixie-slim\nFROM ${NODE_IMAGE} AS base\n";

describe(".ci/versions", () => {
    test("reads the base image every Node stage of app/Dockerfile builds on, and the defaults config.ts reads", () => {
        const dockerfile = readFileSync(join(PROJECT_ROOT, "app", "Dockerfile"), "utf8");
        const arg = [...dockerfile.matchAll(/^ARG NODE_IMAGE=(.*)$/gm)].map((m) => m[1]);
        expect(arg).toHaveLength(1);
        // The ARG is the home only if no stage names a Node image of its own.
        const stages: string[] = [];
        for (const [, from, stage] of dockerfile.matchAll(/^FROM (\S+) AS (\S+)$/gm)) {
            expect(["${NODE_IMAGE}", ...stages]).toContain(from);
            stages.push(stage);
        }
        expect(dockerfile.match(/^FROM /gm)).toHaveLength(stages.length);

        const read = source(PROJECT_ROOT);
        expect(read.stderr).toBe("");
        expect(read.status).toBe(0);
        expect(read.nodeImage).toBe(arg[0]);
        expect(read.nodeVersion).toMatch(/^\d+\.\d+\.\d+$/);
        expect(read.nodeImage.startsWith(`node:${read.nodeVersion}-`)).toBe(true);
        const defaults = projectDefaults(PROJECT_ROOT);
        expect(read.postgresTag).toBe(defaults.postgresImage);
        expect(read.redisTag).toBe(defaults.redisImage);
    });

    test("reads Pulumi.yaml's other layouts as the YAML parser does: the short form, quotes, comments", () => {
        const root = scratch(
            DOCKERFILE,
            [
                "name: p",
                "runtime: nodejs",
                "config:",
                '  postgresImage: "postgres:17-alpine" # pinned',
                "  redisImageOld:",
                "    default: redis:6",
                "  redisImage:",
                "    type: string",
                "    default: 'redis:8-alpine' # the cache",
                "template:",
                "  redisImage:",
                "    default: not-this",
                "",
            ].join("\n"),
        );
        try {
            const read = source(root);
            expect(read.stderr).toBe("");
            expect(read).toMatchObject({
                status: 0,
                nodeImage: "node:24.1.0-trixie-slim",
                nodeVersion: "24.1.0",
                postgresTag: "postgres:17-alpine",
                redisTag: "redis:8-alpine",
            });
            const defaults = projectDefaults(root);
            expect([read.postgresTag, read.redisTag]).toEqual([defaults.postgresImage, defaults.redisImage]);
        } finally {
            rmSync(root, { recursive: true, force: true });
        }
    });

    test("fails, naming the home, when Pulumi.yaml has no default for a tag", () => {
        const root = scratch(
            DOCKERFILE,
            "name: p\nconfig:\n  postgresImage:\n    default: postgres:16-alpine\n  redisImage:\n    type: string\n",
        );
        try {
            expect(source(root)).toMatchObject({
                status: 1,
                stderr: ".ci/versions: no default of redisImage found in Pulumi.yaml (expected `  redisImage:` under `config:` with `    default: <image>`)\n",
            });
        } finally {
            rmSync(root, { recursive: true, force: true });
        }
    });

    test("refuses a Node image that does not pin a full Node version", () => {
        const root = scratch(
            "ARG NODE_IMAGE=node:22-trixie-slim\nFROM ${NODE_IMAGE}\n",
            "name: p\nconfig:\n  postgresImage: postgres:16-alpine\n  redisImage: redis:7-alpine\n",
        );
        try {
            expect(source(root)).toMatchObject({
                status: 1,
                stderr: '.ci/versions: app/Dockerfile\'s `ARG NODE_IMAGE=` must name node:X.Y.Z-<variant> (a full Node version, which .ci/setup and the Node stand-in install); found "node:22-trixie-slim"\n',
            });
        } finally {
            rmSync(root, { recursive: true, force: true });
        }
    });
});

test("the app's port: app/Dockerfile's PORT and EXPOSE are components/names.ts's APP_PORT", async () => {
    const { APP_PORT } = await import("../../components/names");
    const dockerfile = readFileSync(join(PROJECT_ROOT, "app", "Dockerfile"), "utf8");
    expect(dockerfile.match(/\bPORT=(\d+)/g)).toEqual([`PORT=${APP_PORT}`]);
    expect(dockerfile.match(/^EXPOSE (\d+)$/gm)).toEqual([`EXPOSE ${APP_PORT}`]);
});
