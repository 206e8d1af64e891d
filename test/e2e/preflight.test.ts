// The image build's preflight (issue 26): a laptop with Docker Desktop's config left behind (`credsStore`
// "desktop" and no docker-credential-desktop on PATH) fails every real image build (pulumi-docker v5.0.0,
// provider/image.go, dockerBuild: cfg.GetAllCredentials()). `up` of the dev stack stops at program start,
// before any resource changes, with the fix named; and the same with DOCKER_CERT_PATH pointing nowhere.
// On a main without the preflight, the run creates the network and the containers before the build fails
// (or, with a CLI that tolerates the helper, succeeds): both fail the assertions below.
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulumiUp } from "./harness/run";
import { clearLeftovers, devStack, docker, removeTempDir, requireEngine, tempDir } from "./support";
import { takeTurnsOnEngine } from "./hooks";

const CONTAINERS = ["marvel-rivals-postgres", "marvel-rivals-redis", "marvel-rivals-app", "marvel-rivals-backup"];
const NETWORK = "marvel-rivals-network";
const engine = requireEngine();

describe.skipIf(!engine)("the image build's preflight", () => {
    takeTurnsOnEngine(engine);
    let work: string;
    beforeAll(async () => {
        await clearLeftovers(CONTAINERS, [NETWORK]);
        work = tempDir("preflight");
    });
    afterAll(async () => {
        await clearLeftovers(CONTAINERS, [NETWORK]);
        removeTempDir(work);
    });

    async function nothingOnTheEngine(): Promise<void> {
        for (const name of CONTAINERS) expect(await docker().inspect("containers", name)).toBeUndefined();
        expect(await docker().inspect("networks", NETWORK)).toBeUndefined();
    }

    it("a credsStore whose helper is missing stops `up` before any resource, naming the fix", async () => {
        const dockerConfig = path.join(work, "docker-config");
        mkdirSync(dockerConfig, { recursive: true });
        const configFile = path.join(dockerConfig, "config.json");
        writeFileSync(configFile, JSON.stringify({ auths: {}, credsStore: "desktop" }));
        const dev = await devStack(path.join(work, "creds"));
        const result = await pulumiUp({ ...dev, env: { DOCKER_CONFIG: dockerConfig } });
        expect(result.ok).toBe(false);
        expect(result.error).toContain(
            `${configFile} has credsStore "desktop" but docker-credential-desktop is not on PATH, so every image build fails reading credentials: remove "credsStore" from ${configFile} (or install docker-credential-desktop).`,
        );
        expect(result.operations).toEqual([]);
        await nothingOnTheEngine();
    }, 300_000);

    it("DOCKER_CERT_PATH that points nowhere stops `up` before any resource, naming the fix", async () => {
        const dev = await devStack(path.join(work, "certs"));
        const nowhere = path.join(work, "no-such-certs");
        const result = await pulumiUp({ ...dev, env: { DOCKER_CERT_PATH: nowhere } });
        expect(result.ok).toBe(false);
        expect(result.error).toContain(
            `the environment variable DOCKER_CERT_PATH is ${JSON.stringify(nowhere)} but ca.pem, cert.pem, key.pem are not there: point it at the directory with ca.pem, cert.pem and key.pem, or unset it`,
        );
        expect(result.operations).toEqual([]);
        await nothingOnTheEngine();
    }, 300_000);
});
