// The image build's preflight (issue 26): what the docker provider's client and its build read from this
// machine before they reach any engine, checked at program start so that a broken setting stops `pulumi up`
// before the first resource changes, with the fix in one line.
import { accessSync, constants, existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";

/** The newest Engine API version the provider's client speaks (github.com/docker/docker v28.5.2, api/common.go). */
const CLIENT_API_VERSION = "1.51";

/** Whether `name` is an executable file in one of PATH's directories (as Go's exec.LookPath finds it). */
function onPath(name: string, env: Record<string, string | undefined>): boolean {
    for (const dir of (env.PATH ?? "").split(path.delimiter)) {
        if (!dir) continue;
        try {
            accessSync(path.join(dir, name), constants.X_OK);
            if (statSync(path.join(dir, name)).isFile()) return true;
        } catch {
            // not there
        }
    }
    return false;
}

/**
 * The problems, one line each, of the Docker client settings on this machine:
 * - config.json (under DOCKER_CONFIG, else ~/.docker): the provider's build loads it and calls
 *   GetAllCredentials before it sends the context (pulumi-docker v5.0.0, provider/image.go, dockerBuild and
 *   getDefaultDockerConfig: config.Load(config.Dir()), then cfg.GetAllCredentials(), whose error aborts the
 *   build). That runs `docker-credential-<credsStore> list` and each `credHelpers` helper: a helper that is
 *   not on PATH (Docker Desktop's `desktop` left behind on a Linux laptop) fails every build (docker/cli
 *   cli/config/configfile/file.go, GetAllCredentials: the credsStore's GetAll error is returned). A broken
 *   `credHelpers` entry only logs a warning there and fails the pulls and pushes of its registry: refused
 *   here too (stricter). A config.json that is not JSON fails config.Load, and is refused.
 * - DOCKER_CERT_PATH: the client loads ca.pem, cert.pem and key.pem from it (github.com/docker/docker
 *   v28.5.2, client/options.go, WithTLSClientConfigFromEnv, taken by client.FromEnv in pulumi-docker v5.0.0
 *   provider/image.go, configureDockerClientInner); a missing file fails the client.
 * - DOCKER_TLS_VERIFY: verification with certificates from DOCKER_CERT_PATH; the docker CLI (the stack's
 *   CLI steps) falls back to the config directory when DOCKER_CERT_PATH is unset. Stricter: the three files
 *   must be where the CLI would look.
 * - DOCKER_API_VERSION: pins the API version and turns negotiation off (client/options.go,
 *   WithVersionFromEnv); it must be MAJOR.MINOR and not newer than the client speaks.
 */
export function dockerClientProblems(env: Record<string, string | undefined>, homeDir: string): string[] {
    const problems: string[] = [];
    const configDir = env.DOCKER_CONFIG || path.join(homeDir, ".docker");
    const configFile = path.join(configDir, "config.json");
    if (existsSync(configFile)) {
        let config: any;
        try {
            config = JSON.parse(readFileSync(configFile, "utf8") || "{}");
        } catch (err) {
            problems.push(
                `${configFile} is not valid JSON (${(err as Error).message}): the image build reads it first. Fix the file, or move it away to start from an empty one.`,
            );
        }
        if (config && typeof config === "object") {
            const helpers: [string, string][] = [];
            if (typeof config.credsStore === "string" && config.credsStore !== "")
                helpers.push(["credsStore", config.credsStore]);
            for (const [registry, helper] of Object.entries(config.credHelpers ?? {}))
                if (typeof helper === "string" && helper !== "") helpers.push([`credHelpers["${registry}"]`, helper]);
            for (const [key, helper] of helpers) {
                const bin = `docker-credential-${helper}`;
                if (!onPath(bin, env))
                    problems.push(
                        `${configFile} has ${key} "${helper}" but ${bin} is not on PATH, so every image build fails reading credentials: remove "${key.split("[")[0]}" from ${configFile} (or install ${bin}).`,
                    );
            }
        }
    }
    const certFiles = (dir: string) => ["ca.pem", "cert.pem", "key.pem"].filter((f) => !existsSync(path.join(dir, f)));
    if (env.DOCKER_CERT_PATH) {
        const missing = certFiles(env.DOCKER_CERT_PATH);
        if (missing.length > 0)
            problems.push(
                `the environment variable DOCKER_CERT_PATH is ${JSON.stringify(env.DOCKER_CERT_PATH)} but ${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} not there: point it at the directory with ca.pem, cert.pem and key.pem, or unset it (ssh:// and unix:// hosts need no certificates).`,
            );
    } else if (env.DOCKER_TLS_VERIFY) {
        const missing = certFiles(configDir);
        if (missing.length > 0)
            problems.push(
                `the environment variable DOCKER_TLS_VERIFY is set but DOCKER_CERT_PATH is not and ${configDir} lacks ${missing.join(", ")}: set DOCKER_CERT_PATH to the directory with the certificates, or unset DOCKER_TLS_VERIFY.`,
            );
    }
    const version = env.DOCKER_API_VERSION;
    if (version) {
        const m = /^(\d+)\.(\d+)$/.exec(version);
        const [maxMajor, maxMinor] = CLIENT_API_VERSION.split(".").map(Number);
        if (!m)
            problems.push(
                `the environment variable DOCKER_API_VERSION is ${JSON.stringify(version)}: it must be an API version such as 1.43 (\`docker version --format '{{.Server.APIVersion}}'\` on the server), or unset it to negotiate.`,
            );
        else if (Number(m[1]) > maxMajor || (Number(m[1]) === maxMajor && Number(m[2]) > maxMinor))
            problems.push(
                `the environment variable DOCKER_API_VERSION is ${version}, newer than the docker provider's client speaks (${CLIENT_API_VERSION}): unset it to negotiate, or set the server's API version.`,
            );
    }
    return problems;
}
