// Every stack config validation error, with its exact message (config.ts is pure: no engine needed).
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { parse as parseYaml } from "yaml";
import {
    ConfigError,
    OPTIONAL_KEYS,
    checkSecret,
    cliContextHost,
    parseStackConfig,
    projectDefaults,
    type ParseContext,
} from "../../config";
import { PROJECT_ROOT, loadStackConfig } from "../../support/stackConfig";

const ctx: ParseContext = {
    projectDir: "/home/dev/marvel-rivals-stats",
    defaultOwner: "1000:1000",
    defaults: projectDefaults(PROJECT_ROOT),
    env: {},
};

/** The config the program sees for `stack` (through the CLI's loader), parsed as index.ts parses it. */
function parse(stack: string, overrides: Record<string, string | undefined> = {}, extra: Partial<ParseContext> = {}) {
    const { config } = loadStackConfig(stack, overrides);
    const setKeys = Object.keys(config).map((k) => k.split(":")[1]);
    return parseStackConfig((key) => config[`marvel-rivals-stats:${key}`], { ...ctx, stack, setKeys, ...extra });
}

function problems(
    stack: string,
    overrides: Record<string, string | undefined>,
    extra: Partial<ParseContext> = {},
): string[] {
    try {
        parse(stack, overrides, extra);
    } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems;
    }
    throw new Error("expected the config to be refused");
}

describe("the committed stack files", () => {
    test("dev: local engine, ./data inside the project, ports on 127.0.0.1, hot reload", () => {
        const cfg = parse("dev");
        expect(cfg).toMatchObject({
            dataDir: "/home/dev/marvel-rivals-stats/data",
            dockerHost: "unix:///var/run/docker.sock",
            remote: false,
            postgresImage: "postgres:16-alpine",
            redisImage: "redis:7-alpine",
            dbName: "marvel_rivals",
            dbUser: "marvel_stats",
            postgresPublish: { port: 5432, bindAddress: "127.0.0.1" },
            redisPublish: { port: 6379, bindAddress: "127.0.0.1" },
            appPublish: { port: 8000, bindAddress: "127.0.0.1" },
            networkName: "marvel-rivals-network",
            externalNetworks: [],
            hotReload: true,
            redisPersistence: false,
            backups: false,
            pgadmin: false,
            hostOwner: "1000:1000",
        });
    });

    test("odin: ssh engine, absolute appdata path, caddy, no database ports, backups on", () => {
        const cfg = parse("odin");
        expect(cfg).toMatchObject({
            dataDir: "/mnt/user/appdata/marvel-rivals-stats",
            dockerHost: "ssh://root@odin",
            // On the server's loopback only: the end of the laptop's SSH tunnel (databaseTunnel).
            postgresPublish: { port: 5432, bindAddress: "127.0.0.1" },
            redisPublish: undefined,
            externalNetworks: ["caddy"],
            hotReload: false,
            redisPersistence: false,
            backups: true,
            hostOwner: "1000:1000",
            platform: "linux/amd64",
        });
    });
});

describe("refuses bad values, naming the key, the value and what is allowed", () => {
    const cases: [string, string, Record<string, string | undefined>, string][] = [
        [
            "a relative dataDir on odin",
            "odin",
            { dataDir: "appdata/mrs" },
            '`marvel-rivals-stats:dataDir` is "appdata/mrs": must be an absolute path on the Docker host ssh://root@odin, e.g. /mnt/user/appdata/marvel-rivals-stats.',
        ],
        [
            "a relative dataDir that leaves the project",
            "dev",
            { dataDir: "../elsewhere" },
            '`marvel-rivals-stats:dataDir` is "../elsewhere": a relative path must stay inside the project directory (e.g. ./data); use an absolute path for anything else.',
        ],
        [
            "the root directory as dataDir",
            "odin",
            { dataDir: "/" },
            '`marvel-rivals-stats:dataDir` is "/": must not be the root directory; use a directory of its own such as /mnt/user/appdata/marvel-rivals-stats.',
        ],
        [
            "a dataDir Docker cannot mount",
            "dev",
            { dataDir: "/data:/etc" },
            "`marvel-rivals-stats:dataDir` is \"/data:/etc\": must be a plain directory path without ':' ',' or control characters (Docker bind mounts split on them).",
        ],
        [
            "a dockerHost that is not an endpoint",
            "odin",
            { dockerHost: "odin" },
            '`marvel-rivals-stats:dockerHost` is "odin": must be a Docker endpoint such as ssh://root@odin, tcp://host:2376 or unix:///var/run/docker.sock; leave it unset for the local engine.',
        ],
        [
            "sshOpts, which the docker CLI steps could not use",
            "odin",
            { sshOpts: '["-o","ConnectTimeout=5"]' },
            "`marvel-rivals-stats:sshOpts` is no longer read: the docker CLI steps of the stack cannot take ssh options, so they would reach the server differently from the provider; put the options in ~/.ssh/config under a Host entry (e.g. `Host odin` with `ConnectTimeout 10`) and remove the key with `npm run config -- rm sshOpts --stack odin`.",
        ],
        [
            "a misspelt key",
            "dev",
            { postgresport: "5433" },
            "`marvel-rivals-stats:postgresport` is not a setting of this project; did you mean postgresPort? Remove it with `npm run config -- rm postgresport --stack dev` and set postgresPort instead (docs/configuration.md lists every key).",
        ],
        [
            "an image reference with spaces",
            "dev",
            { postgresImage: "postgres 16" },
            '`marvel-rivals-stats:postgresImage` is "postgres 16": must be an image reference such as postgres:16-alpine.',
        ],
        [
            "a bad redis image",
            "dev",
            { redisImage: "Redis:7" },
            '`marvel-rivals-stats:redisImage` is "Redis:7": must be an image reference such as redis:7-alpine.',
        ],
        [
            "a bad platform",
            "odin",
            { platform: "amd64" },
            '`marvel-rivals-stats:platform` is "amd64": must be an OS/architecture pair such as linux/amd64 or linux/arm64.',
        ],
        [
            "a database name PostgreSQL would need quoted",
            "dev",
            { dbName: "Marvel-Rivals" },
            '`marvel-rivals-stats:dbName` is "Marvel-Rivals": must be a lower-case PostgreSQL identifier: letters, digits and _, not starting with a digit, at most 63 characters.',
        ],
        [
            "a bad database user",
            "dev",
            { dbUser: "1user" },
            '`marvel-rivals-stats:dbUser` is "1user": must be a lower-case PostgreSQL identifier: letters, digits and _, not starting with a digit, at most 61 characters (the app logs in as <dbUser>_a or _b).',
        ],
        [
            "a database user too long for its login roles",
            "dev",
            { dbUser: "u".repeat(62) },
            `\`marvel-rivals-stats:dbUser\` is "${"u".repeat(62)}": must be a lower-case PostgreSQL identifier: letters, digits and _, not starting with a digit, at most 61 characters (the app logs in as <dbUser>_a or _b).`,
        ],
        [
            "an invalid port",
            "dev",
            { postgresPort: "0" },
            '`marvel-rivals-stats:postgresPort` is "0": must be a whole number from 1 to 65535.',
        ],
        [
            "a port that is not a number",
            "dev",
            { redisPort: "six" },
            '`marvel-rivals-stats:redisPort` is "six": must be a whole number from 1 to 65535.',
        ],
        [
            "a database port on odin without a bind address",
            "odin",
            { postgresBindAddress: undefined },
            "`marvel-rivals-stats:postgresBindAddress` is null: must be set when `marvel-rivals-stats:postgresPort` is set: the address on the Docker host to publish postgres on, e.g. 127.0.0.1; or unset postgresPort to keep postgres private.",
        ],
        [
            "a bind address without a port",
            "odin",
            { redisBindAddress: "127.0.0.1" },
            "`marvel-rivals-stats:redisPort` is null: must be set when `marvel-rivals-stats:redisBindAddress` is set; or unset redisBindAddress to keep redis private.",
        ],
        [
            "a bind address that is not an address",
            "dev",
            { appBindAddress: "my-laptop" },
            '`marvel-rivals-stats:appBindAddress` is "my-laptop": must be an IPv4 address such as 127.0.0.1 (this host only) or 0.0.0.0 (every interface), without a port.',
        ],
        [
            "a bind address with a port",
            "dev",
            { postgresBindAddress: "127.0.0.1:5432" },
            '`marvel-rivals-stats:postgresBindAddress` is "127.0.0.1:5432": must be an IPv4 address such as 127.0.0.1 (this host only) or 0.0.0.0 (every interface), without a port.',
        ],
        [
            "a bind address with trailing text",
            "dev",
            { redisBindAddress: "127.0.0.1 # laptop" },
            '`marvel-rivals-stats:redisBindAddress` is "127.0.0.1 # laptop": must be an IPv4 address such as 127.0.0.1 (this host only) or 0.0.0.0 (every interface), without a port.',
        ],
        [
            "two services on one port",
            "dev",
            { redisPort: "5432" },
            '`marvel-rivals-stats:redisPort` is "5432": is already used by postgresPort; give each service its own port.',
        ],
        [
            "a bad network name",
            "dev",
            { networkName: "-net" },
            '`marvel-rivals-stats:networkName` is "-net": must be a Docker network name: letters, digits, _ . -.',
        ],
        [
            "the stack network listed as external",
            "odin",
            { externalNetworks: '["caddy","marvel-rivals-network"]' },
            '`marvel-rivals-stats:externalNetworks` is "[\\"caddy\\",\\"marvel-rivals-network\\"]": must not contain the stack\'s own network marvel-rivals-network.',
        ],
        [
            "a domain without the proxy's network",
            "dev",
            { domain: "stats.example.com" },
            '`marvel-rivals-stats:domain` is "stats.example.com": needs the reverse proxy\'s network in externalNetworks (e.g. ["caddy"]) so Caddy can reach the app.',
        ],
        [
            "a bad domain",
            "odin",
            { domain: "not a domain" },
            '`marvel-rivals-stats:domain` is "not a domain": must be a host name such as stats.example.com.',
        ],
        [
            "hot reload on a remote engine",
            "odin",
            { hotReload: "true" },
            '`marvel-rivals-stats:hotReload` is "true": needs a local Docker engine (it bind-mounts app/src from this machine), but dockerHost is ssh://root@odin.',
        ],
        [
            "pgAdmin on the server",
            "odin",
            { pgadmin: "true" },
            '`marvel-rivals-stats:pgadmin` is "true": is a development tool for a local Docker engine; leave it off on a remote dockerHost.',
        ],
        [
            "an owner that is not uid:gid",
            "odin",
            { hostOwner: "nobody:users" },
            '`marvel-rivals-stats:hostOwner` is "nobody:users": must be uid:gid in numbers, e.g. 99:100 (Unraid\'s nobody:users) or 1000:1000.',
        ],
        [
            "a memory limit Docker refuses",
            "dev",
            { appMemoryMb: "4" },
            '`marvel-rivals-stats:appMemoryMb` is "4": must be 0 (no limit) or at least 6.',
        ],
        [
            "an unknown app environment",
            "dev",
            { appEnv: "staging" },
            '`marvel-rivals-stats:appEnv` is "staging": must be development, production or test.',
        ],
        [
            "an unknown log level",
            "dev",
            { logLevel: "verbose" },
            '`marvel-rivals-stats:logLevel` is "verbose": must be one of fatal, error, warn, info, debug, trace.',
        ],
        [
            "a zero rate limit",
            "dev",
            { rateLimitRequestsPerMinute: "0" },
            '`marvel-rivals-stats:rateLimitRequestsPerMinute` is "0": must be a whole number from 1 to 10000.',
        ],
        [
            "a bad season",
            "dev",
            { currentSeason: "season five" },
            '`marvel-rivals-stats:currentSeason` is "season five": must be a season number such as 5 or 5.5.',
        ],
    ];
    test.each(cases)("%s", (_title, stack, overrides, message) => {
        expect(problems(stack, overrides)).toEqual([message]);
    });

    test("reports every problem at once, in one error that says how to fix it", () => {
        let error: ConfigError | undefined;
        try {
            parse("odin", { dataDir: "relative", appPort: "99999", appBindAddress: "0.0.0.0", logLevel: "loud" });
        } catch (err) {
            error = err as ConfigError;
        }
        expect(error?.problems).toHaveLength(3);
        expect(error?.message.split("\n")[0]).toBe("Invalid stack configuration (3 problems):");
        expect(error?.message.split("\n").at(-1)).toBe(
            "Fix with `npm run config -- set <key> <value> --stack odin` (or edit Pulumi.odin.yaml) and run again.",
        );
    });

    test("a database port on odin is published once a port and a bind address are both set", () => {
        expect(parse("odin", { postgresPort: "5433", postgresBindAddress: "192.168.1.10" }).postgresPublish).toEqual({
            port: 5433,
            bindAddress: "192.168.1.10",
        });
    });
});

test("a value the CLI's type check lets through only with --skip-config-validation is still refused", () => {
    expect(() => parseStackConfig((key) => (key === "backups" ? "yes" : undefined), ctx)).toThrow(
        '`marvel-rivals-stats:backups` is "yes": must be true or false.',
    );
});

describe("secrets", () => {
    test("a secret set without --secret is refused, its value never printed", () => {
        const { config, secretKeys } = loadStackConfig("dev", { dbPassword: "plain-text-password" });
        let error: ConfigError | undefined;
        try {
            parseStackConfig((key) => config[`marvel-rivals-stats:${key}`], {
                ...ctx,
                stack: "dev",
                isSecret: (key) => secretKeys.includes(`marvel-rivals-stats:${key}`),
            });
        } catch (err) {
            error = err as ConfigError;
        }
        expect(error?.problems).toEqual([
            "`marvel-rivals-stats:dbPassword` (value hidden) is stored in plain text in the stack file: remove it with `npm run config -- rm dbPassword --stack dev` and set it again with `npm run config -- set --secret dbPassword <value> --stack dev`.",
        ]);
        expect(error?.message).not.toContain("plain-text-password");
        const secret = loadStackConfig("dev", { dbPassword: "secret-password-1" }, { secretOverrides: ["dbPassword"] });
        expect(() =>
            parseStackConfig((key) => secret.config[`marvel-rivals-stats:${key}`], {
                ...ctx,
                isSecret: (key) => secret.secretKeys.includes(`marvel-rivals-stats:${key}`),
            }),
        ).not.toThrow();
    });

    test("a short or spaced secret is refused without printing it", () => {
        expect(checkSecret("dbPassword", "hunter2", 12)).toBe(
            "`marvel-rivals-stats:dbPassword` (value hidden) must be at least 12 characters without spaces; set it with `npm run config -- set --secret dbPassword <value> --stack <stack>` or unset it to have one generated.",
        );
        expect(checkSecret("dbPassword", "a long pass phrase", 12)).toContain("(value hidden)");
        expect(checkSecret("dbPassword", "a long pass phrase", 12)).not.toContain("pass phrase");
    });
    test("an API key pasted with a line break is refused without printing it", () => {
        expect(checkSecret("marvelRivalsApiKey", "abc123\n", 1)).toBe(
            "`marvel-rivals-stats:marvelRivalsApiKey` (value hidden) must not contain spaces or line breaks; set it with `npm run config -- set --secret marvelRivalsApiKey <value> --stack <stack>`.",
        );
        expect(checkSecret("marvelRivalsApiKey", "abc123", 1)).toBeUndefined();
    });
    test("an unset or good secret passes", () => {
        expect(checkSecret("dbPassword", undefined, 12)).toBeUndefined();
        expect(checkSecret("dbPassword", "correct-horse-battery", 12)).toBeUndefined();
    });
});

describe("one Docker engine for the provider, the image build and the CLI steps", () => {
    test("unset dockerHost: DOCKER_HOST, else the CLI's current context, else the default socket", () => {
        expect(parse("dev").dockerHost).toBe("unix:///var/run/docker.sock");
        expect(parse("dev", {}, { cliContextHost: "unix:///home/dev/.colima/docker.sock" }).dockerHost).toBe(
            "unix:///home/dev/.colima/docker.sock",
        );
        expect(
            parse("dev", {}, { env: { DOCKER_HOST: "unix:///run/user/1000/docker.sock" }, cliContextHost: "unix:///x" })
                .dockerHost,
        ).toBe("unix:///run/user/1000/docker.sock");
        expect(parse("odin", {}, { env: { DOCKER_HOST: "unix:///other" } }).dockerHost).toBe("ssh://root@odin");
    });

    test("a remote engine from DOCKER_HOST counts as remote: the dev stack's ./data and hot reload are refused", () => {
        expect(problems("dev", {}, { env: { DOCKER_HOST: "ssh://me@server" } })).toEqual([
            '`marvel-rivals-stats:dataDir` is "./data": must be an absolute path on the Docker host ssh://me@server, e.g. /mnt/user/appdata/marvel-rivals-stats.',
            '`marvel-rivals-stats:hotReload` is "true": needs a local Docker engine (it bind-mounts app/src from this machine), but dockerHost is ssh://me@server.',
        ]);
    });

    test("DOCKER_CONTEXT and DOCKER_SSH_OPTS, which the provider alone would follow, are refused with the fix", () => {
        expect(problems("odin", {}, { env: { DOCKER_CONTEXT: "colima", DOCKER_SSH_OPTS: "-p 2222" } })).toEqual([
            "the environment variable DOCKER_CONTEXT is \"colima\": the docker provider would send the containers to that context while the image build and the stack's docker CLI steps go to ssh://root@odin. Unset DOCKER_CONTEXT; to use that engine, set `marvel-rivals-stats:dockerHost` to its endpoint (`docker context inspect colima --format '{{.Endpoints.docker.Host}}'`).",
            "the environment variable DOCKER_SSH_OPTS is set: the docker provider would use those ssh options but the stack's docker CLI steps cannot. Unset it and put the options in ~/.ssh/config under a Host entry.",
        ]);
    });

    test("a DOCKER_HOST that is not an endpoint is refused", () => {
        expect(problems("dev", {}, { env: { DOCKER_HOST: "localhost:2375" } })).toEqual([
            'the environment variable DOCKER_HOST is "localhost:2375": it must be a Docker endpoint such as unix:///var/run/docker.sock or ssh://user@host; fix or unset it, or set `marvel-rivals-stats:dockerHost`.',
        ]);
    });

    test("the CLI's current context is read from its config files as the provider reads a context", () => {
        const dir = mkdtempSync(path.join(tmpdir(), "docker-config-"));
        try {
            expect(cliContextHost({ DOCKER_CONFIG: dir }, "/nowhere")).toBeUndefined();
            writeFileSync(path.join(dir, "config.json"), JSON.stringify({ currentContext: "colima" }));
            const meta = path.join(dir, "contexts", "meta", "0123abcd");
            mkdirSync(meta, { recursive: true });
            writeFileSync(
                path.join(meta, "meta.json"),
                JSON.stringify({
                    Name: "colima",
                    Endpoints: { docker: { Host: "unix:///home/dev/.colima/docker.sock" } },
                }),
            );
            expect(cliContextHost({ DOCKER_CONFIG: dir }, "/nowhere")).toBe("unix:///home/dev/.colima/docker.sock");
            writeFileSync(path.join(dir, "config.json"), JSON.stringify({ currentContext: "default" }));
            expect(cliContextHost({ DOCKER_CONFIG: dir }, "/nowhere")).toBeUndefined();
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("Pulumi.yaml holds every default, and the two kinds of keys are complete", () => {
    test("every declared key has a default, and no key is both declared and optional", () => {
        const project = parseYaml(readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8"));
        const declared = Object.keys(project.config);
        expect(declared.filter((k) => project.config[k].default === undefined)).toEqual([]);
        expect(declared.filter((k) => k in OPTIONAL_KEYS)).toEqual([]);
        expect(Object.keys(projectDefaults(PROJECT_ROOT)).sort()).toEqual([...declared].sort());
    });

    test("the configuration page's table (with the feature pages' own tables) lists exactly the keys the program reads", () => {
        const page = readFileSync(path.join(PROJECT_ROOT, "docs", "configuration.md"), "utf8");
        const tables = [page.slice(page.indexOf("## Setting a key, and every key"), page.indexOf("## Stack outputs"))];
        // A feature's page in docs/ may carry the keys of that feature in a "## Configuration" section of its
        // own (docs/offsite-backups.md), which docs/configuration.md links.
        const docs = path.join(PROJECT_ROOT, "docs");
        for (const file of readdirSync(docs).filter((f) => f.endsWith(".md") && f !== "configuration.md")) {
            const text = readFileSync(path.join(docs, file), "utf8");
            const at = text.indexOf("\n## Configuration");
            if (at < 0) continue;
            const end = text.indexOf("\n## ", at + 1);
            tables.push(text.slice(at, end < 0 ? undefined : end));
        }
        const listed = tables.flatMap((table) =>
            [...table.matchAll(/^\| `(\w+)`(?: \/ `(\w+)`)?(?:, `(\w+)`, `(\w+)`)?/gm)].flatMap((m) =>
                m.slice(1).filter(Boolean),
            ),
        );
        expect(listed.sort()).toEqual(
            [...Object.keys(projectDefaults(PROJECT_ROOT)), ...Object.keys(OPTIONAL_KEYS)].sort(),
        );
    });
});

test("healthcheck timings must be written as the provider reads them back", async () => {
    const { healthTiming } = await import("../../components/common");
    expect(() => healthTiming({ interval: "3s", timeout: "5s", retries: 5, startPeriod: "1m0s" })).not.toThrow();
    expect(() => healthTiming({ interval: "3s", timeout: "5s", retries: 5, startPeriod: "60s" })).toThrow(
        'healthcheck `startPeriod` "60s" must be whole seconds written as Go writes them (1m0s)',
    );
    expect(() => healthTiming({ interval: "1h", timeout: "5s", retries: 5, startPeriod: "0s" })).toThrow(
        'healthcheck `interval` "1h" must be whole seconds written as Go writes them (e.g. 1m0s)',
    );
});

describe("postgresSettings (issue 21)", () => {
    test("a map of setting names to values, every value as the text ALTER SYSTEM takes", () => {
        expect(
            parse("odin", { postgresSettings: JSON.stringify({ work_mem: "8MB", max_connections: 150, jit: false }) })
                .postgresSettings,
        ).toEqual({ work_mem: "8MB", max_connections: "150", jit: "false" });
        expect(parse("odin").postgresSettings).toEqual({});
    });

    test("refuses what is not a map of setting names to one-line values, naming the key", () => {
        expect(problems("odin", { postgresSettings: '["work_mem"]' })).toEqual([
            '`marvel-rivals-stats:postgresSettings` is "[\\"work_mem\\"]": must be a map of PostgreSQL settings to values, e.g. `npm run config -- set --path \'postgresSettings.work_mem\' 8MB --stack <stack>`.',
        ]);
        const raw = JSON.stringify({ "Work-Mem": "8MB", work_mem: ["8MB"] });
        expect(problems("odin", { postgresSettings: raw })).toEqual([
            `\`marvel-rivals-stats:postgresSettings\` is ${JSON.stringify(raw)}: has the key "Work-Mem", which is no PostgreSQL setting name (lower-case letters, digits and _, e.g. work_mem).`,
            `\`marvel-rivals-stats:postgresSettings\` is ${JSON.stringify(raw)}: has "work_mem" set to ["8MB"]: a setting's value is one text, number or boolean on one line.`,
        ]);
    });
});
