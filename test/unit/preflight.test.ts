// The image build's preflight (issue 26, preflight.ts): this machine's Docker client settings that would
// fail the provider's build or client, each refused with the fix in one line.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { dockerClientProblems } from "../../preflight";

describe("dockerClientProblems", () => {
    const root = mkdtempSync(path.join(tmpdir(), "preflight-"));
    afterAll(() => rmSync(root, { recursive: true, force: true }));
    let n = 0;
    /** A DOCKER_CONFIG directory with `config` as config.json (undefined: no file), and an empty PATH dir. */
    function machine(config?: string, helpers: string[] = []) {
        const dir = path.join(root, String(n++));
        const bin = path.join(dir, "bin");
        mkdirSync(bin, { recursive: true });
        if (config !== undefined) writeFileSync(path.join(dir, "config.json"), config);
        for (const h of helpers) {
            writeFileSync(path.join(bin, `docker-credential-${h}`), "#!/bin/sh\necho '{}'\n");
            chmodSync(path.join(bin, `docker-credential-${h}`), 0o755);
        }
        return { dir, env: { DOCKER_CONFIG: dir, PATH: bin } as Record<string, string | undefined> };
    }

    test("a machine without config.json, or with a plain one, passes", () => {
        expect(dockerClientProblems(machine().env, "/nonexistent")).toEqual([]);
        expect(dockerClientProblems(machine('{"auths":{}}').env, "/nonexistent")).toEqual([]);
    });

    test("Docker Desktop's credsStore left behind (no helper on PATH) is refused, naming the fix", () => {
        const m = machine('{"credsStore":"desktop"}');
        const problems = dockerClientProblems(m.env, "/nonexistent");
        expect(problems).toEqual([
            `${path.join(m.dir, "config.json")} has credsStore "desktop" but docker-credential-desktop is not on PATH, so every image build fails reading credentials: remove "credsStore" from ${path.join(m.dir, "config.json")} (or install docker-credential-desktop).`,
        ]);
    });

    test("a credsStore whose helper is installed passes; a credHelpers entry without its helper does not", () => {
        expect(dockerClientProblems(machine('{"credsStore":"pass"}', ["pass"]).env, "/x")).toEqual([]);
        const problems = dockerClientProblems(machine('{"credHelpers":{"ghcr.io":"gcloud"}}').env, "/x");
        expect(problems).toHaveLength(1);
        expect(problems[0]).toContain('credHelpers["ghcr.io"] "gcloud" but docker-credential-gcloud is not on PATH');
        expect(problems[0]).toContain('remove "credHelpers"');
    });

    test("config.json is found under HOME/.docker when DOCKER_CONFIG is unset", () => {
        const home = path.join(root, "home");
        mkdirSync(path.join(home, ".docker"), { recursive: true });
        writeFileSync(path.join(home, ".docker", "config.json"), '{"credsStore":"osxkeychain"}');
        expect(dockerClientProblems({ PATH: "/nonexistent" }, home)[0]).toContain(
            'has credsStore "osxkeychain" but docker-credential-osxkeychain is not on PATH',
        );
    });

    test("a config.json that is not JSON is refused", () => {
        expect(dockerClientProblems(machine("{credsStore:").env, "/x")[0]).toMatch(
            /config\.json is not valid JSON .*Fix the file, or move it away/,
        );
    });

    test("DOCKER_CERT_PATH without the three files, DOCKER_TLS_VERIFY without certificates", () => {
        const m = machine();
        const certs = path.join(m.dir, "certs");
        mkdirSync(certs);
        writeFileSync(path.join(certs, "ca.pem"), "x");
        expect(dockerClientProblems({ ...m.env, DOCKER_CERT_PATH: certs }, "/x")).toEqual([
            `the environment variable DOCKER_CERT_PATH is ${JSON.stringify(certs)} but cert.pem, key.pem are not there: point it at the directory with ca.pem, cert.pem and key.pem, or unset it (ssh:// and unix:// hosts need no certificates).`,
        ]);
        expect(dockerClientProblems({ ...m.env, DOCKER_CERT_PATH: "/nowhere" }, "/x")[0]).toContain(
            "ca.pem, cert.pem, key.pem are not there",
        );
        expect(dockerClientProblems({ ...m.env, DOCKER_TLS_VERIFY: "1" }, "/x")[0]).toContain(
            "DOCKER_TLS_VERIFY is set but DOCKER_CERT_PATH is not",
        );
        writeFileSync(path.join(certs, "cert.pem"), "x");
        writeFileSync(path.join(certs, "key.pem"), "x");
        expect(dockerClientProblems({ ...m.env, DOCKER_CERT_PATH: certs, DOCKER_TLS_VERIFY: "1" }, "/x")).toEqual([]);
    });

    test("DOCKER_API_VERSION must be MAJOR.MINOR and not newer than the client's 1.51", () => {
        const { env } = machine();
        expect(dockerClientProblems({ ...env, DOCKER_API_VERSION: "1.43" }, "/x")).toEqual([]);
        expect(dockerClientProblems({ ...env, DOCKER_API_VERSION: "v1.43" }, "/x")[0]).toContain(
            "must be an API version such as 1.43",
        );
        expect(dockerClientProblems({ ...env, DOCKER_API_VERSION: "1.52" }, "/x")[0]).toContain(
            "newer than the docker provider's client speaks (1.51)",
        );
    });
});
