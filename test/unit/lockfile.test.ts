// The Pulumi engine installs a resource provider's plugin by the version its npm package names
// (package.json `pulumi.version`, else the package version) and downloads it from that provider's GitHub
// release: an npm version without a provider release fails `pulumi up` at plugin install, before anything
// runs. (@pulumi/command 4.5.0, npm's `latest` in 2026, is such a version: pulumi-command's releases end
// at v1.2.1.) So every provider package is pinned to a version checked against its repository's release
// tags, and the e2e harness emulates exactly those versions (test/e2e/harness/models.ts).
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { expect, test } from "vitest";
import { PROJECT_ROOT } from "../../support/stackConfig";

/** Checked against the repositories' release tags (snapshots read on 2026-11-23). */
const KNOWN_GOOD: Record<string, Record<string, string>> = {
    "@pulumi/docker": {
        "5.0.0": "pulumi/pulumi-docker tag v5.0.0 (bridges kreuzwerker/terraform-provider-docker v4.2.0)",
    },
    "@pulumi/command": { "1.2.1": "pulumi/pulumi-command tag v1.2.1" },
    "@pulumi/random": { "4.21.1": "pulumi/pulumi-random tag v4.21.1" },
};

const readJson = (file: string) => JSON.parse(readFileSync(path.join(PROJECT_ROOT, file), "utf8"));

test("every Pulumi provider package is pinned exactly to a version with a provider release", () => {
    const pkg = readJson("package.json");
    const lock = readJson("package-lock.json");
    const providers = Object.entries<any>(lock.packages)
        .filter(([p]) => /^node_modules\/@pulumi\/[^/]+$/.test(p))
        .map(([p, entry]) => ({ name: p.slice("node_modules/".length), version: entry.version as string }))
        .filter(({ name }) => readJson(`node_modules/${name}/package.json`).pulumi?.resource === true);
    expect(providers.map((p) => p.name).sort()).toEqual(Object.keys(KNOWN_GOOD).sort());
    for (const { name, version } of providers) {
        expect(KNOWN_GOOD[name][version], `${name}@${version} has no known provider release`).toBeDefined();
        expect(pkg.dependencies[name], `${name} must be pinned exactly in package.json`).toBe(version);
        // The plugin version the engine will ask for: the installed package's own statement.
        const installed = readJson(`node_modules/${name}/package.json`);
        expect(installed.pulumi.version ?? installed.version, name).toBe(version);
    }
});
