// Stack configuration: read once, validated in one place, before any resource is declared.
//
// `parseStackConfig` is a pure function over a key -> raw string lookup, so that every validation
// error can be tested with its exact message without a Pulumi engine. `index.ts` feeds it from the
// program's config (`pulumi.runtime.getConfig`). Every error names the key, the bad value and what is
// allowed; all errors are reported at once so a broken stack file is fixed in one pass.
import * as path from "node:path";
import type { Publish } from "./components/common";

export type { Publish };

export const PROJECT = "marvel-rivals-stats";

export interface StackConfig {
    /** Absolute path on the Docker host under which every persistent directory lives. */
    dataDir: string;
    /** Docker endpoint; undefined means the local engine (DOCKER_HOST or the default socket). */
    dockerHost?: string;
    sshOpts: string[];
    postgresImage: string;
    redisImage: string;
    platform?: string;
    dbName: string;
    dbUser: string;
    /** Publishing is off unless both a port and a bind address are configured. */
    postgresPublish?: Publish;
    redisPublish?: Publish;
    appPublish?: Publish;
    networkName: string;
    externalNetworks: string[];
    domain?: string;
    hotReload: boolean;
    redisPersistence: boolean;
    backups: boolean;
    pgadmin: boolean;
    pgadminPort: number;
    /** `uid:gid` that owns the host directories (and that the app and migration containers run as). */
    hostOwner: string;
    memoryLimitMb: { postgres: number; redis: number; app: number };
    appEnv: string;
    logLevel: string;
    rateLimitRequestsPerMinute: number;
    currentSeason?: string;
}

/** Raised with every problem found in the stack config; the message lists them one per line. */
export class ConfigError extends Error {
    constructor(public readonly problems: string[]) {
        super(
            `Invalid stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
                problems.map((p) => `  - ${p}`).join("\n") +
                `\nFix with \`pulumi config set <key> <value>\` (or edit the stack file) and run again.`,
        );
        this.name = "ConfigError";
    }
}

export interface ParseContext {
    /** Directory that relative paths are resolved against (the project root). */
    projectDir: string;
    /** Owner used when `hostOwner` is unset: the user running Pulumi, so a laptop's ./data stays theirs. */
    defaultOwner: string;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"];
// Docker's own rule for container and network names.
const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const PG_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const IMAGE_REF =
    /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;
const OWNER = /^\d{1,10}:\d{1,10}$/;
const DOMAIN = /^(?=.{1,253}$)(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;

/**
 * Validates raw config values. `get(key)` returns the value as the Pulumi CLI hands it to the program
 * (strings, arrays as JSON, secrets decrypted), or undefined when unset. Secrets are only checked here;
 * the program reads them as secret Outputs.
 */
export function parseStackConfig(get: (key: string) => string | undefined, ctx: ParseContext): StackConfig {
    const problems: string[] = [];
    const bad = (key: string, value: unknown, allowed: string) =>
        problems.push(`\`${PROJECT}:${key}\` is ${JSON.stringify(value)}: ${allowed}.`);
    const raw = (key: string): string | undefined => {
        const v = get(key);
        return v === undefined || v === "" ? undefined : v;
    };

    const str = (key: string, fallback: string, re: RegExp, allowed: string): string => {
        const v = raw(key) ?? fallback;
        if (!re.test(v)) bad(key, v, allowed);
        return v;
    };
    const optStr = (key: string, re: RegExp, allowed: string): string | undefined => {
        const v = raw(key);
        if (v !== undefined && !re.test(v)) bad(key, v, allowed);
        return v;
    };
    const int = (key: string, fallback: number | undefined, min: number, max: number): number | undefined => {
        const v = raw(key);
        if (v === undefined) return fallback;
        if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
            bad(key, v, `must be a whole number from ${min} to ${max}`);
            return fallback;
        }
        return Number(v);
    };
    const bool = (key: string, fallback: boolean): boolean => {
        const v = raw(key);
        if (v === undefined) return fallback;
        if (v !== "true" && v !== "false") {
            bad(key, v, "must be true or false");
            return fallback;
        }
        return v === "true";
    };
    const list = (key: string, re: RegExp, allowed: string): string[] => {
        const v = raw(key);
        if (v === undefined) return [];
        let parsed: unknown;
        try {
            parsed = JSON.parse(v);
        } catch {
            parsed = undefined;
        }
        if (!Array.isArray(parsed) || parsed.some((x) => typeof x !== "string" || !re.test(x))) {
            bad(key, v, `must be a list of strings (${allowed})`);
            return [];
        }
        return parsed as string[];
    };

    // --- where: Docker host and data directory
    const dockerHost = optStr(
        "dockerHost",
        /^(unix|tcp|ssh|npipe):\/\/\S+$/,
        "must be a Docker endpoint such as ssh://root@odin, tcp://host:2376 or unix:///var/run/docker.sock; leave it unset for the local engine",
    );
    const sshOpts = list("sshOpts", /^\S+$/, 'each an ssh option without spaces, e.g. ["-o", "ConnectTimeout=10"]');
    if (sshOpts.length > 0 && !dockerHost?.startsWith("ssh://")) {
        bad("sshOpts", raw("sshOpts"), "only applies to an ssh:// dockerHost; set dockerHost or remove sshOpts");
    }
    const remote = dockerHost !== undefined && !dockerHost.startsWith("unix://") && !dockerHost.startsWith("npipe://");

    let dataDir = raw("dataDir") ?? "./data";
    if (/[\n\r\0:,]/.test(dataDir)) {
        bad(
            "dataDir",
            dataDir,
            "must be a plain directory path without ':' ',' or control characters (Docker bind mounts split on them)",
        );
    } else if (path.isAbsolute(dataDir)) {
        dataDir = path.normalize(dataDir);
        if (dataDir === "/")
            bad(
                "dataDir",
                dataDir,
                "must not be the root directory; use a directory of its own such as /mnt/user/appdata/marvel-rivals-stats",
            );
    } else if (remote) {
        bad(
            "dataDir",
            dataDir,
            `must be an absolute path on the Docker host ${dockerHost}, e.g. /mnt/user/appdata/marvel-rivals-stats`,
        );
    } else {
        const resolved = path.resolve(ctx.projectDir, dataDir);
        if (path.relative(ctx.projectDir, resolved).startsWith("..")) {
            bad(
                "dataDir",
                dataDir,
                "a relative path must stay inside the project directory (e.g. ./data); use an absolute path for anything else",
            );
        }
        dataDir = resolved;
    }

    // --- images
    const imageAllowed = "must be an image reference such as postgres:16-alpine";
    const postgresImage = str("postgresImage", "postgres:16-alpine", IMAGE_REF, imageAllowed);
    const redisImage = str(
        "redisImage",
        "redis:7-alpine",
        IMAGE_REF,
        imageAllowed.replace("postgres:16-alpine", "redis:7-alpine"),
    );
    const platform = optStr("platform", PLATFORM, "must be an OS/architecture pair such as linux/amd64 or linux/arm64");

    // --- database identity
    const identAllowed =
        "must be a lower-case PostgreSQL identifier: letters, digits and _, not starting with a digit, at most 63 characters";
    const dbName = str("dbName", "marvel_rivals", PG_IDENTIFIER, identAllowed);
    const dbUser = str("dbUser", "marvel_stats", PG_IDENTIFIER, identAllowed);

    // --- ports: published only when a port and a bind address are both configured
    const address = (key: string) =>
        optStr(
            key,
            new RegExp(`${IPV4.source.slice(0, -1)}|^localhost$`),
            "must be an IPv4 address such as 127.0.0.1 (this host only) or 0.0.0.0 (every interface)",
        );
    const publish = (service: string): Publish | undefined => {
        const port = int(`${service}Port`, undefined, 1, 65535);
        const bindAddress = address(`${service}BindAddress`);
        // Pair checks look at what was configured, so a bad value is reported once, as itself.
        const portSet = raw(`${service}Port`) !== undefined;
        const bindSet = raw(`${service}BindAddress`) !== undefined;
        if (portSet && !bindSet) {
            bad(
                `${service}BindAddress`,
                null,
                `must be set when \`${PROJECT}:${service}Port\` is set: the address on the Docker host to publish ${service} on, e.g. 127.0.0.1; or unset ${service}Port to keep ${service} private`,
            );
        }
        if (!portSet && bindSet) {
            bad(
                `${service}Port`,
                null,
                `must be set when \`${PROJECT}:${service}BindAddress\` is set; or unset ${service}BindAddress to keep ${service} private`,
            );
        }
        return port !== undefined && bindAddress !== undefined ? { port, bindAddress } : undefined;
    };
    const postgresPublish = publish("postgres");
    const redisPublish = publish("redis");
    const appPublish = publish("app");
    const taken = new Map<string, string>();
    for (const [service, p] of [
        ["postgres", postgresPublish],
        ["redis", redisPublish],
        ["app", appPublish],
    ] as const) {
        if (!p) continue;
        const other = taken.get(String(p.port));
        if (other)
            bad(`${service}Port`, String(p.port), `is already used by ${other}Port; give each service its own port`);
        taken.set(String(p.port), service);
    }

    // --- networks
    const networkName = str(
        "networkName",
        "marvel-rivals-network",
        DOCKER_NAME,
        "must be a Docker network name: letters, digits, _ . -",
    );
    const externalNetworks = list("externalNetworks", DOCKER_NAME, 'existing Docker network names, e.g. ["caddy"]');
    if (externalNetworks.includes(networkName)) {
        bad("externalNetworks", raw("externalNetworks"), `must not contain the stack's own network ${networkName}`);
    }
    const domain = optStr("domain", DOMAIN, "must be a host name such as stats.example.com");
    if (domain !== undefined && externalNetworks.length === 0) {
        bad(
            "domain",
            domain,
            'needs the reverse proxy\'s network in externalNetworks (e.g. ["caddy"]) so Caddy can reach the app',
        );
    }

    // --- behaviour
    const hotReload = bool("hotReload", false);
    if (hotReload && remote)
        bad(
            "hotReload",
            "true",
            `needs a local Docker engine (it bind-mounts app/src from this machine), but dockerHost is ${dockerHost}`,
        );
    const redisPersistence = bool("redisPersistence", true);
    const backups = bool("backups", false);
    const pgadmin = bool("pgadmin", false);
    if (pgadmin && remote)
        bad("pgadmin", "true", "is a development tool for a local Docker engine; leave it off on a remote dockerHost");
    const pgadminPort = int("pgadminPort", 5050, 1, 65535) ?? 5050;
    const hostOwner = str(
        "hostOwner",
        ctx.defaultOwner,
        OWNER,
        "must be uid:gid in numbers, e.g. 99:100 (Unraid's nobody:users) or 1000:1000",
    );
    const memoryLimitMb = {
        postgres: int("postgresMemoryMb", 0, 0, 1_048_576) ?? 0,
        redis: int("redisMemoryMb", 0, 0, 1_048_576) ?? 0,
        app: int("appMemoryMb", 0, 0, 1_048_576) ?? 0,
    };
    for (const [service, mb] of Object.entries(memoryLimitMb)) {
        // Docker refuses limits under 6 MB; 0 means no limit.
        if (mb > 0 && mb < 6) bad(`${service}MemoryMb`, String(mb), "must be 0 (no limit) or at least 6");
    }

    // --- app environment
    const appEnv = str(
        "appEnv",
        "production",
        /^(development|production|test)$/,
        "must be development, production or test",
    );
    const logLevel = str(
        "logLevel",
        "info",
        new RegExp(`^(${LOG_LEVELS.join("|")})$`),
        `must be one of ${LOG_LEVELS.join(", ")}`,
    );
    const rateLimitRequestsPerMinute = int("rateLimitRequestsPerMinute", 7, 1, 10_000) ?? 7;
    // Same rule as the app's own check (app/src/config.ts): a value it refuses would crash-loop the container.
    const currentSeason = optStr("currentSeason", /^\d+(\.\d+)?$/, "must be a season number such as 5 or 5.5");

    // Secrets last; their values never appear in a message.
    for (const problem of [
        checkSecret("dbPassword", raw("dbPassword"), 12),
        checkSecret("redisPassword", raw("redisPassword"), 12),
        checkSecret("marvelRivalsApiKey", raw("marvelRivalsApiKey"), 1),
    ]) {
        if (problem) problems.push(problem);
    }
    if (/["'\\]/.test(raw("redisPassword") ?? "")) {
        problems.push(
            `\`${PROJECT}:redisPassword\` (value hidden) must not contain quotes or backslashes (Redis' config syntax); set another with \`pulumi config set --secret redisPassword <value>\`.`,
        );
    }

    if (problems.length > 0) throw new ConfigError(problems);
    return {
        dataDir,
        dockerHost,
        sshOpts,
        postgresImage,
        redisImage,
        platform,
        dbName,
        dbUser,
        postgresPublish,
        redisPublish,
        appPublish,
        networkName,
        externalNetworks,
        domain,
        hotReload,
        redisPersistence,
        backups,
        pgadmin,
        pgadminPort,
        hostOwner,
        memoryLimitMb,
        appEnv,
        logLevel,
        rateLimitRequestsPerMinute,
        currentSeason,
    };
}

/** A secret's problem, if any, in words that never include its value. */
export function checkSecret(key: string, value: string | undefined, minLength: number): string | undefined {
    if (value === undefined || value === "") return undefined;
    const fix = `set it with \`pulumi config set --secret ${key} <value>\``;
    if (/\s/.test(value) && minLength <= 1) {
        return `\`${PROJECT}:${key}\` (value hidden) must not contain spaces or line breaks; ${fix}.`;
    }
    if (value.length < minLength || /\s/.test(value)) {
        return `\`${PROJECT}:${key}\` (value hidden) must be at least ${minLength} characters without spaces; ${fix} or unset it to have one generated.`;
    }
    return undefined;
}
