// Stack configuration: read once, validated in one place, before any resource is declared.
//
// Two kinds of keys (the README's configuration table lists both):
// - declared keys have their one default in Pulumi.yaml (read by `projectDefaults`), so the Pulumi CLI
//   always has a value for them (pulumi/pulumi v3.259.0, pkg/workspace/config.go, mergeConfig, refuses a
//   declared key without one);
// - optional keys are not declared: unset means what their entry in `OPTIONAL_KEYS` says.
// `parseStackConfig` is a pure function over a key -> raw string lookup, so every validation error can be
// tested with its exact message without a Pulumi engine. Every error names the key, the bad value and what
// is allowed; all errors are reported at once so a broken stack file is fixed in one pass.
import * as pulumi from "@pulumi/pulumi";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { UID_GID, type Publish } from "./components/common";
import { parseSchedule, ScheduleError, type Schedule } from "./components/backupSchedule";

export type { Publish };

export const PROJECT = "marvel-rivals-stats";

/** The engine the provider uses when no host is configured and DOCKER_HOST is unset (kreuzwerker v4.2.0, internal/provider/provider.go, New: `host` DefaultFunc). */
export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

/** Keys that Pulumi.yaml does not declare (no project-wide default): what leaving each unset means. */
export const OPTIONAL_KEYS: Record<string, string> = {
    dockerHost: "the local engine: DOCKER_HOST, else the docker CLI's current context, else /var/run/docker.sock",
    platform: "the engine's own platform",
    dbPassword: "generated once (32 characters) and kept in the stack's encrypted state",
    redisPassword: "generated once, as dbPassword",
    marvelRivalsApiKey: "empty",
    postgresPort: "PostgreSQL not published on the Docker host",
    postgresBindAddress: "PostgreSQL not published on the Docker host",
    redisPort: "Redis not published",
    redisBindAddress: "Redis not published",
    appPort: "the app reachable only on its networks",
    appBindAddress: "the app reachable only on its networks",
    domain: "no caddy labels",
    hostOwner: "the user running Pulumi",
    currentSeason: "the app's default",
    backupSchedule: "no scheduled backups (the backup container idles; `npm run restore` still works)",
    backupDir: "<dataDir>/backups",
};

/** Keys this program no longer reads, with what to do instead. */
const RETIRED_KEYS: Record<string, string> = {
    sshOpts:
        "is no longer read: the docker CLI steps of the stack cannot take ssh options, so they would reach the server differently from the provider; put the options in ~/.ssh/config under a Host entry (e.g. `Host odin` with `ConnectTimeout 10`) and remove the key with `pulumi config rm sshOpts`",
};

export interface StackConfig {
    /** Absolute path on the Docker host under which every persistent directory lives. */
    dataDir: string;
    /**
     * The Docker endpoint, always explicit: the provider, the image builds and the `docker` CLI steps all
     * get this one value, so they cannot talk to different engines.
     */
    dockerHost: string;
    /** Whether the engine is on another machine (ssh:// or tcp://): no bind mounts of this machine's files. */
    remote: boolean;
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
    /** Scheduled, checked backups (issue 14). */
    backup: {
        /** The schedule as written (for logs and labels), and parsed; undefined: none. */
        scheduleText?: string;
        schedule?: Schedule;
        /** Absolute path on the Docker host: backupDir, else <dataDir>/backups. */
        dir: string;
        keepLast: number;
        keepDays: number;
    };
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
    /** Defaults of the declared keys, as `projectDefaults` reads them from Pulumi.yaml. */
    defaults: Record<string, string>;
    /** The environment the provider reads its own defaults from (DOCKER_HOST, DOCKER_CONTEXT, DOCKER_SSH_OPTS). */
    env: Record<string, string | undefined>;
    /** The docker CLI's current context endpoint, when it is not the default one (`cliContextHost`). */
    cliContextHost?: string;
    /** Every key set in the project's namespace (without the namespace), to catch typos; omit to skip. */
    setKeys?: string[];
    /** Whether a key's value is a secret (`pulumi config set --secret`); omit to skip the check. */
    isSecret?: (key: string) => boolean;
}

/**
 * Whether a config value is a secret: the SDK keeps the CLI's PULUMI_CONFIG_SECRET_KEYS behind this
 * function, exported but marked internal (sdk/nodejs/runtime/config.ts, isConfigSecret); should a later
 * SDK drop it, the plain-text check is skipped rather than the program broken.
 */
const configIsSecret = (pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean }).isConfigSecret;

/**
 * The program's stack configuration, as the Pulumi CLI hands it over, validated. Every problem is reported
 * at once in a RunError, which Pulumi prints alone, without a stack trace.
 */
export function readStackConfig(projectDir: string): StackConfig {
    const namespace = `${PROJECT}:`;
    try {
        return parseStackConfig((key) => pulumi.runtime.getConfig(`${namespace}${key}`), {
            projectDir,
            defaultOwner: `${os.userInfo().uid}:${os.userInfo().gid}`,
            defaults: projectDefaults(projectDir),
            env: process.env,
            cliContextHost: cliContextHost(process.env, os.homedir()),
            setKeys: Object.keys(pulumi.runtime.allConfig())
                .filter((k) => k.startsWith(namespace))
                .map((k) => k.slice(namespace.length)),
            isSecret: configIsSecret ? (key) => configIsSecret(`${namespace}${key}`) : undefined,
        });
    } catch (err) {
        throw err instanceof ConfigError ? new pulumi.RunError(err.message) : err;
    }
}

/**
 * The defaults of the keys declared in Pulumi.yaml, in the form the CLI hands them to a program
 * (pulumi/pulumi v3.259.0, pkg/workspace/config.go, createConfigValue: scalars as text, lists as JSON).
 */
export function projectDefaults(projectDir: string): Record<string, string> {
    const project = parseYaml(readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) ?? {};
    const defaults: Record<string, string> = {};
    for (const [key, decl] of Object.entries<any>(project.config ?? {})) {
        const value = decl !== null && typeof decl === "object" && !Array.isArray(decl) ? decl.default : decl;
        if (value !== undefined) defaults[key] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return defaults;
}

/**
 * The endpoint of the docker CLI's current context (`docker context use`), or undefined for the default
 * context, read from the files the CLI keeps as the CLI resolves it (docker/cli v28.5.2,
 * cli/command/cli.go, resolveContextName: config.json's currentContext under DOCKER_CONFIG or ~/.docker;
 * then the context's meta.json, found by name as kreuzwerker v4.2.0 provider.go, getContextHost, finds it).
 */
export function cliContextHost(env: Record<string, string | undefined>, homeDir: string): string | undefined {
    const configDir = env.DOCKER_CONFIG || path.join(homeDir, ".docker");
    let current: string | undefined;
    try {
        current = JSON.parse(readFileSync(path.join(configDir, "config.json"), "utf8")).currentContext;
    } catch {
        return undefined;
    }
    if (!current || current === "default") return undefined;
    const metaDir = path.join(configDir, "contexts", "meta");
    if (!existsSync(metaDir)) return undefined;
    for (const entry of readdirSync(metaDir)) {
        try {
            const meta = JSON.parse(readFileSync(path.join(metaDir, entry, "meta.json"), "utf8"));
            if (meta.Name === current) return meta.Endpoints?.docker?.Host;
        } catch {
            // not a context: skip, as the provider does
        }
    }
    return undefined;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"];
// Docker's own rule for container and network names.
const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const PG_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const IMAGE_REF =
    /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;
const DOMAIN = /^(?=.{1,253}$)(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;
const BIND_ADDRESS = new RegExp(`(?:${IPV4.source})|^localhost$`);
const DOCKER_ENDPOINT = /^(unix|tcp|ssh|npipe):\/\/\S+$/;

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
        const v = get(key) ?? ctx.defaults[key];
        return v === undefined || v === "" ? undefined : v;
    };
    /** A declared key: Pulumi.yaml gives it a default, so it always has a value. */
    const declared = (key: string): string => {
        const v = raw(key);
        if (v === undefined) throw new Error(`Pulumi.yaml declares no default for \`${PROJECT}:${key}\``);
        return v;
    };

    const str = (key: string, re: RegExp, allowed: string): string => {
        const v = declared(key);
        if (!re.test(v)) bad(key, v, allowed);
        return v;
    };
    const optStr = (key: string, re: RegExp, allowed: string): string | undefined => {
        const v = raw(key);
        if (v !== undefined && !re.test(v)) bad(key, v, allowed);
        return v;
    };
    const optInt = (key: string, min: number, max: number): number | undefined => {
        const v = raw(key);
        if (v === undefined) return undefined;
        if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
            bad(key, v, `must be a whole number from ${min} to ${max}`);
            return undefined;
        }
        return Number(v);
    };
    const int = (key: string, min: number, max: number): number =>
        optInt(key, min, max) ?? Number(ctx.defaults[key] ?? declared(key));
    const bool = (key: string): boolean => {
        const v = declared(key);
        if (v !== "true" && v !== "false") {
            bad(key, v, "must be true or false");
            return ctx.defaults[key] === "true";
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

    // --- keys this program does not know: a typo would otherwise be ignored without a word
    const known = new Set([...Object.keys(ctx.defaults), ...Object.keys(OPTIONAL_KEYS)]);
    for (const key of ctx.setKeys ?? []) {
        if (key in RETIRED_KEYS) {
            problems.push(`\`${PROJECT}:${key}\` ${RETIRED_KEYS[key]}.`);
        } else if (!known.has(key)) {
            const like = [...known].find((k) => k.toLowerCase() === key.toLowerCase());
            problems.push(
                `\`${PROJECT}:${key}\` is not a setting of this project${like ? `; did you mean ${like}?` : ""} Remove it with \`pulumi config rm ${key}\` (the README lists every key).`,
            );
        }
    }

    // --- where: Docker host and data directory
    const configuredHost = optStr(
        "dockerHost",
        DOCKER_ENDPOINT,
        "must be a Docker endpoint such as ssh://root@odin, tcp://host:2376 or unix:///var/run/docker.sock; leave it unset for the local engine",
    );
    // The provider would let DOCKER_CONTEXT override the configured host for containers only (kreuzwerker
    // v4.2.0, internal/provider/provider.go, configure), and take DOCKER_SSH_OPTS where the docker CLI
    // steps cannot: both would split the stack across engines or connections.
    if (ctx.env.DOCKER_CONTEXT) {
        problems.push(
            `the environment variable DOCKER_CONTEXT is ${JSON.stringify(ctx.env.DOCKER_CONTEXT)}: the docker provider would send the containers to that context while the image build and the stack's docker CLI steps go to ${configuredHost ?? "the local engine"}. Unset DOCKER_CONTEXT; to use that engine, set \`${PROJECT}:dockerHost\` to its endpoint (\`docker context inspect ${ctx.env.DOCKER_CONTEXT} --format '{{.Endpoints.docker.Host}}'\`).`,
        );
    }
    if (ctx.env.DOCKER_SSH_OPTS) {
        problems.push(
            "the environment variable DOCKER_SSH_OPTS is set: the docker provider would use those ssh options but the stack's docker CLI steps cannot. Unset it and put the options in ~/.ssh/config under a Host entry.",
        );
    }
    let envHost = ctx.env.DOCKER_HOST || undefined;
    if (configuredHost === undefined && envHost !== undefined && !DOCKER_ENDPOINT.test(envHost)) {
        envHost = undefined; // reported once, as itself
        problems.push(
            `the environment variable DOCKER_HOST is ${JSON.stringify(ctx.env.DOCKER_HOST)}: it must be a Docker endpoint such as unix:///var/run/docker.sock or ssh://user@host; fix or unset it, or set \`${PROJECT}:dockerHost\`.`,
        );
    }
    const dockerHost = configuredHost ?? envHost ?? ctx.cliContextHost ?? DEFAULT_DOCKER_HOST;
    const remote = !dockerHost.startsWith("unix://") && !dockerHost.startsWith("npipe://");

    let dataDir = declared("dataDir");
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
    const imageAllowed = (example: string) => `must be an image reference such as ${example}`;
    const postgresImage = str("postgresImage", IMAGE_REF, imageAllowed("postgres:16-alpine"));
    const redisImage = str("redisImage", IMAGE_REF, imageAllowed("redis:7-alpine"));
    const platform = optStr("platform", PLATFORM, "must be an OS/architecture pair such as linux/amd64 or linux/arm64");

    // --- database identity
    const identAllowed =
        "must be a lower-case PostgreSQL identifier: letters, digits and _, not starting with a digit, at most 63 characters";
    const dbName = str("dbName", PG_IDENTIFIER, identAllowed);
    const dbUser = str("dbUser", PG_IDENTIFIER, identAllowed);

    // --- ports: published only when a port and a bind address are both configured
    const publish = (service: string): Publish | undefined => {
        const port = optInt(`${service}Port`, 1, 65535);
        const bindAddress = optStr(
            `${service}BindAddress`,
            BIND_ADDRESS,
            "must be an IPv4 address such as 127.0.0.1 (this host only) or 0.0.0.0 (every interface), without a port",
        );
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
        return port !== undefined && bindAddress !== undefined && BIND_ADDRESS.test(bindAddress)
            ? { port, bindAddress }
            : undefined;
    };
    const postgresPublish = publish("postgres");
    const redisPublish = publish("redis");
    const appPublish = publish("app");
    const taken = new Map<number, string>();
    for (const [service, p] of [
        ["postgres", postgresPublish],
        ["redis", redisPublish],
        ["app", appPublish],
    ] as const) {
        if (!p) continue;
        const other = taken.get(p.port);
        if (other)
            bad(`${service}Port`, String(p.port), `is already used by ${other}Port; give each service its own port`);
        taken.set(p.port, service);
    }

    // --- networks
    const networkName = str("networkName", DOCKER_NAME, "must be a Docker network name: letters, digits, _ . -");
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
    const hotReload = bool("hotReload");
    if (hotReload && remote)
        bad(
            "hotReload",
            "true",
            `needs a local Docker engine (it bind-mounts app/src from this machine), but dockerHost is ${dockerHost}`,
        );
    const redisPersistence = bool("redisPersistence");
    const backups = bool("backups");
    const scheduleText = raw("backupSchedule");
    let schedule: Schedule | undefined;
    if (scheduleText !== undefined) {
        try {
            schedule = parseSchedule(scheduleText);
        } catch (err) {
            if (!(err instanceof ScheduleError)) throw err;
            bad(
                "backupSchedule",
                scheduleText,
                `${err.message}; use cron's 5 fields in UTC such as "0 3 * * *" (03:00 every night), @daily, or @every 6h`,
            );
        }
    }
    let backupDir = `${dataDir}/backups`;
    const configuredBackupDir = raw("backupDir");
    if (configuredBackupDir !== undefined) {
        const normal = path.posix.normalize(configuredBackupDir).replace(/(.)\/+$/, "$1");
        const under = (dir: string) => normal === dir || normal.startsWith(`${dir}/`);
        if (/[\s:,\0]/.test(configuredBackupDir) || !path.posix.isAbsolute(configuredBackupDir)) {
            bad(
                "backupDir",
                configuredBackupDir,
                "must be an absolute directory path on the Docker host without spaces, ':' or ',', e.g. /mnt/remotes/NAS_backups/marvel-rivals-stats",
            );
        } else if (normal === "/" || normal === dataDir || under(`${dataDir}/postgres`) || under(`${dataDir}/redis`)) {
            bad(
                "backupDir",
                configuredBackupDir,
                `must be a directory of its own, not / , the data directory or inside the database's files; leave it unset for ${dataDir}/backups`,
            );
        } else backupDir = normal;
    }
    const backupKeepLast = int("backupKeepLast", 0, 10_000);
    const backupKeepDays = int("backupKeepDays", 0, 36_500);
    const pgadmin = bool("pgadmin");
    if (pgadmin && remote)
        bad("pgadmin", "true", "is a development tool for a local Docker engine; leave it off on a remote dockerHost");
    const pgadminPort = int("pgadminPort", 1, 65535);
    const hostOwner =
        optStr("hostOwner", UID_GID, "must be uid:gid in numbers, e.g. 99:100 (Unraid's nobody:users) or 1000:1000") ??
        ctx.defaultOwner;
    const memoryLimitMb = {
        postgres: int("postgresMemoryMb", 0, 1_048_576),
        redis: int("redisMemoryMb", 0, 1_048_576),
        app: int("appMemoryMb", 0, 1_048_576),
    };
    for (const [service, mb] of Object.entries(memoryLimitMb)) {
        // Docker refuses limits under 6 MB; 0 means no limit.
        if (mb > 0 && mb < 6) bad(`${service}MemoryMb`, String(mb), "must be 0 (no limit) or at least 6");
    }

    // --- app environment
    const appEnv = str("appEnv", /^(development|production|test)$/, "must be development, production or test");
    const logLevel = str(
        "logLevel",
        new RegExp(`^(${LOG_LEVELS.join("|")})$`),
        `must be one of ${LOG_LEVELS.join(", ")}`,
    );
    const rateLimitRequestsPerMinute = int("rateLimitRequestsPerMinute", 1, 10_000);
    // Same rule as the app's own check (app/src/config.ts): a value it refuses would crash-loop the container.
    const currentSeason = optStr("currentSeason", /^\d+(\.\d+)?$/, "must be a season number such as 5 or 5.5");

    // Secrets last; their values never appear in a message. They are not declared in Pulumi.yaml (a
    // declared secret cannot have a default), so the CLI does not insist on `secure:`: the program does.
    for (const key of ["dbPassword", "redisPassword", "marvelRivalsApiKey"]) {
        if (raw(key) !== undefined && ctx.isSecret && !ctx.isSecret(key)) {
            problems.push(
                `\`${PROJECT}:${key}\` (value hidden) is stored in plain text in the stack file: remove it with \`pulumi config rm ${key}\` and set it again with \`pulumi config set --secret ${key} <value>\`.`,
            );
        }
    }
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
        remote,
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
        backup: { scheduleText, schedule, dir: backupDir, keepLast: backupKeepLast, keepDays: backupKeepDays },
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
