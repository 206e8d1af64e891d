// Stack configuration: read once, validated in one place, before any resource is declared.
//
// Two kinds of keys (docs/configuration.md's table lists both):
// - declared keys have their one default in Pulumi.yaml (read by `projectDefaults`), so the Pulumi CLI
//   always has a value for them (pulumi/pulumi v3.259.0, pkg/workspace/config.go, mergeConfig, refuses a
//   declared key without one);
// - optional keys are not declared: unset means what their entry in `FIELDS` says (`unset`).
// Each key is read by its entry in `FIELDS` (its type and shape); rules then check what spans keys.
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
import { DEFAULT_CONTAINER_PREFIX } from "./components/names";
import { SETTING_NAME, type PostgresSettings } from "./components/postgresChanges";
import { dockerClientProblems } from "./preflight";
import { parseSftp, repositoryProblem, type OffsitePolicy } from "./agent/offsite";

export type { Publish };

export const PROJECT = "marvel-rivals-stats";

/** The engine the provider uses when no host is configured and DOCKER_HOST is unset (kreuzwerker v4.2.0, internal/provider/provider.go, New: `host` DefaultFunc). */
export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

/** Keys this program no longer reads, with what to do instead. */
const RETIRED_KEYS: Record<string, string> = {
    sshOpts:
        "is no longer read: the docker CLI steps of the stack cannot take ssh options, so they would reach the server differently from the provider; put the options in ~/.ssh/config under a Host entry (e.g. `Host odin` with `ConnectTimeout 10`) and remove the key with `npm run config -- rm sshOpts --stack <stack>`",
};

/**
 * The command the README gives for the stack config: the wrapper (scripts/pulumi.sh, with its local
 * backend and passphrase), not a bare `pulumi config`, which would look for a Pulumi Cloud login.
 */
export function configCommand(args: string, stack: string | undefined): string {
    return `npm run config -- ${args} --stack ${stack ?? "<stack>"}`;
}

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
    /** The start of every container name (`<prefix>-postgres`, ...). */
    containerPrefix: string;
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
        /** Tiered retention (issue 22): the newest passed dump of each of the last N days, weeks, months. */
        keepDaily: number;
        keepWeekly: number;
        keepMonthly: number;
        /** Safety, manual and pre-migration dumps: kept N days (and the newest 3 of each label). */
        keepOtherDays: number;
        /** The backup directory must be a mounted share (backupRequireMount; docs/backups.md). */
        requireMount: boolean;
        /** The periodic verify (backupVerifySchedule): re-hash and test-restore; undefined: none. */
        verifyScheduleText?: string;
        verifySchedule?: Schedule;
    };
    /** The off-site copy (issue 22): a restic repository on another machine; undefined: none. */
    offsite?: { repository: string; kind: "sftp" | "s3"; keep: OffsitePolicy };
    pgadmin: boolean;
    pgadminPort: number;
    /** `uid:gid` that owns the host directories (and that the app and migration containers run as). */
    hostOwner: string;
    memoryLimitMb: { postgres: number; redis: number; app: number };
    /** The app's deploys (issue 20): a pinned image (a rollback), the readiness bound, the releases kept. */
    app: { image?: string; readyTimeoutSeconds: number; releasesKept: number };
    /** How many times `npm run rotate` made a new generated password (0: the first one). */
    rotation: { db: number; redis: number };
    appEnv: string;
    logLevel: string;
    rateLimitRequestsPerMinute: number;
    currentSeason?: string;
    /** PostgreSQL server settings applied with ALTER SYSTEM (issue 21), values as text. */
    postgresSettings: PostgresSettings;
}

/** Raised with every problem found in the stack config; the message lists them one per line. */
export class ConfigError extends Error {
    constructor(
        public readonly problems: string[],
        stack?: string,
    ) {
        super(
            `Invalid stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
                problems.map((p) => `  - ${p}`).join("\n") +
                `\nFix with \`${configCommand("set <key> <value>", stack)}\` (or edit ${stack ? `Pulumi.${stack}.yaml` : "the stack file"}) and run again.`,
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
    /** The stack's name, for the commands the messages give; omit: `<stack>`. */
    stack?: string;
}

/**
 * Whether a config value is a secret: the SDK keeps the CLI's PULUMI_CONFIG_SECRET_KEYS behind this
 * function, exported but marked internal (sdk/nodejs/runtime/config.ts, isConfigSecret); should a later
 * SDK drop it, the plain-text check is skipped rather than the program broken.
 */
const configIsSecret = (pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean }).isConfigSecret;

/**
 * `hostOwner` when unset: the user running Pulumi, so a laptop's ./data stays theirs; but never root (issue
 * 24: the app, the migration step and the backup agent run as this user): 1000:1000 when Pulumi runs as root
 * (the plan's consistent uid, the node image's `node` user).
 */
export function defaultOwnerOf(user: { uid: number; gid: number }): string {
    return user.uid === 0 ? "1000:1000" : `${user.uid}:${user.gid}`;
}

/**
 * The program's stack configuration, as the Pulumi CLI hands it over, validated. Every problem is reported
 * at once in a RunError, which Pulumi prints alone, without a stack trace.
 */
export function readStackConfig(projectDir: string): StackConfig {
    const namespace = `${PROJECT}:`;
    // The image build's preflight (preflight.ts): this machine's Docker client settings, before any resource.
    const client = dockerClientProblems(process.env, os.homedir());
    if (client.length > 0) throw new pulumi.RunError(client.join("\n"));
    try {
        return parseStackConfig((key) => pulumi.runtime.getConfig(`${namespace}${key}`), {
            projectDir,
            defaultOwner: defaultOwnerOf(os.userInfo()),
            defaults: projectDefaults(projectDir),
            env: process.env,
            cliContextHost: cliContextHost(process.env, os.homedir()),
            setKeys: Object.keys(pulumi.runtime.allConfig())
                .filter((k) => k.startsWith(namespace))
                .map((k) => k.slice(namespace.length)),
            isSecret: configIsSecret ? (key) => configIsSecret(`${namespace}${key}`) : undefined,
            stack: pulumi.getStack(),
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
const APP_IMAGE = new RegExp(`^sha256:[a-f0-9]{64}$|${IMAGE_REF.source}`);
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;
const DOMAIN = /^(?=.{1,253}$)(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;
const BIND_ADDRESS = new RegExp(`(?:${IPV4.source})|^localhost$`);
const DOCKER_ENDPOINT = /^(unix|tcp|ssh|npipe):\/\/\S+$/;
const ANY = /^[\s\S]*$/;

// ---- readers: one key's raw text to its type, reporting a value of the wrong shape

/** What a reader gets: the key's raw value (undefined when unset or empty), its Pulumi.yaml default, a report. */
interface ReadContext {
    key: string;
    raw: string | undefined;
    /** The key's default in Pulumi.yaml (declared keys only). */
    fallback: string | undefined;
    bad(value: unknown, allowed: string): void;
}

/**
 * How one key is read. A declared key has its default in Pulumi.yaml, so it always has a value; an optional
 * key is not declared, and `unset` says what leaving it unset means (docs/configuration.md's table says the same).
 */
interface Field<T> {
    read(c: ReadContext): T;
    unset?: string;
}

/** The value of a declared key: Pulumi.yaml gives it a default, so the CLI always hands one over. */
function declaredValue(c: ReadContext): string {
    const v = c.raw ?? c.fallback;
    if (v === undefined) throw new Error(`Pulumi.yaml declares no default for \`${PROJECT}:${c.key}\``);
    return v;
}

const text = (re: RegExp, allowed: string): Field<string> => ({
    read(c) {
        const v = declaredValue(c);
        if (!re.test(v)) c.bad(v, allowed);
        return v;
    },
});
const optionalText = (re: RegExp, allowed: string, unset: string): Field<string | undefined> => ({
    unset,
    read(c) {
        if (c.raw !== undefined && !re.test(c.raw)) c.bad(c.raw, allowed);
        return c.raw;
    },
});
function wholeNumber(c: ReadContext, v: string, min: number, max: number): number | undefined {
    if (/^\d+$/.test(v) && Number(v) >= min && Number(v) <= max) return Number(v);
    c.bad(v, `must be a whole number from ${min} to ${max}`);
    return undefined;
}
const optionalInt = (min: number, max: number, unset: string): Field<number | undefined> => ({
    unset,
    read: (c) => (c.raw === undefined ? undefined : wholeNumber(c, c.raw, min, max)),
});
/** A declared integer; a bad value is reported and the default stands in, so later rules still run. */
const int = (min: number, max: number): Field<number> => ({
    read: (c) => wholeNumber(c, declaredValue(c), min, max) ?? Number(c.fallback),
});
/** An optional true/false; unset means what `unset` says. */
const optionalBool = (unset: string): Field<boolean | undefined> => ({
    unset,
    read(c) {
        if (c.raw === undefined) return undefined;
        if (c.raw === "true" || c.raw === "false") return c.raw === "true";
        c.bad(c.raw, "must be true or false");
        return undefined;
    },
});
const bool: Field<boolean> = {
    read(c) {
        const v = declaredValue(c);
        if (v === "true" || v === "false") return v === "true";
        c.bad(v, "must be true or false");
        return c.fallback === "true";
    },
};
const list = (re: RegExp, allowed: string): Field<string[]> => ({
    read(c) {
        const v = c.raw ?? c.fallback;
        if (v === undefined) return [];
        let parsed: unknown;
        try {
            parsed = JSON.parse(v);
        } catch {
            parsed = undefined;
        }
        if (!Array.isArray(parsed) || parsed.some((x) => typeof x !== "string" || !re.test(x))) {
            c.bad(v, `must be a list of strings (${allowed})`);
            return [];
        }
        return parsed as string[];
    },
});
/**
 * A map of PostgreSQL settings, as the CLI hands an object over (JSON: `pulumi config set --path
 * 'postgresSettings.work_mem' 8MB`, or a map in the stack file). Whether the server knows a name is for the
 * server to say (components/postgresChanges.ts); here only the shape.
 */
const settingsMap = (unset: string): Field<PostgresSettings> => ({
    unset,
    read(c) {
        if (c.raw === undefined) return {};
        let parsed: unknown;
        try {
            parsed = JSON.parse(c.raw);
        } catch {
            parsed = undefined;
        }
        if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
            c.bad(
                c.raw,
                "must be a map of PostgreSQL settings to values, e.g. `npm run config -- set --path 'postgresSettings.work_mem' 8MB --stack <stack>`",
            );
            return {};
        }
        const out: PostgresSettings = {};
        for (const [name, value] of Object.entries(parsed)) {
            if (!SETTING_NAME.test(name))
                c.bad(
                    c.raw,
                    `has the key ${JSON.stringify(name)}, which is no PostgreSQL setting name (lower-case letters, digits and _, e.g. work_mem)`,
                );
            else if (!["string", "number", "boolean"].includes(typeof value) || /[\0\n\r]/.test(String(value)))
                c.bad(
                    c.raw,
                    `has ${JSON.stringify(name)} set to ${JSON.stringify(value)}: a setting's value is one text, number or boolean on one line`,
                );
            else out[name] = String(value);
        }
        return out;
    },
});

/** A secret: read here only to be checked (secretProblems); the program reads it as a secret Output. */
const secret = (unset: string): Field<string | undefined> => ({ unset, read: (c) => c.raw });

const imageAllowed = (example: string) => `must be an image reference such as ${example}`;
const identAllowed =
    "must be a lower-case PostgreSQL identifier: letters, digits and _, not starting with a digit, at most 63 characters";
const bindAllowed =
    "must be an IPv4 address such as 127.0.0.1 (this host only) or 0.0.0.0 (every interface), without a port";
const MB = 1_048_576;

/** Retention of the off-site copies when backupOffsiteKeep is unset (the issue's defaults). */
export const OFFSITE_KEEP_DEFAULT = "7/4/6";

/** Every key of the project, in the order problems are reported. */
const FIELDS = {
    dockerHost: optionalText(
        DOCKER_ENDPOINT,
        "must be a Docker endpoint such as ssh://root@odin, tcp://host:2376 or unix:///var/run/docker.sock; leave it unset for the local engine",
        "the local engine: DOCKER_HOST, else the docker CLI's current context, else /var/run/docker.sock",
    ),
    // Its shape depends on the engine: checked by the dataDir rule.
    dataDir: text(ANY, ""),
    postgresImage: text(IMAGE_REF, imageAllowed("postgres:16-alpine")),
    redisImage: text(IMAGE_REF, imageAllowed("redis:7-alpine")),
    platform: optionalText(
        PLATFORM,
        "must be an OS/architecture pair such as linux/amd64 or linux/arm64",
        "the engine's own platform",
    ),
    dbName: text(PG_IDENTIFIER, identAllowed),
    // Two characters shorter than an identifier: the app's login roles are <dbUser>_a and <dbUser>_b.
    dbUser: text(
        /^[a-z_][a-z0-9_]{0,60}$/,
        "must be a lower-case PostgreSQL identifier: letters, digits and _, not starting with a digit, at most 61 characters (the app logs in as <dbUser>_a or _b)",
    ),
    postgresPort: optionalInt(1, 65535, "PostgreSQL not published on the Docker host"),
    postgresBindAddress: optionalText(BIND_ADDRESS, bindAllowed, "PostgreSQL not published on the Docker host"),
    redisPort: optionalInt(1, 65535, "Redis not published"),
    redisBindAddress: optionalText(BIND_ADDRESS, bindAllowed, "Redis not published"),
    appPort: optionalInt(1, 65535, "the app reachable only on its networks"),
    appBindAddress: optionalText(BIND_ADDRESS, bindAllowed, "the app reachable only on its networks"),
    containerPrefix: optionalText(
        /^[a-z0-9][a-z0-9_.-]{0,39}$/,
        "must start the container names: lower-case letters, digits, _ . -, at most 40 characters, e.g. mrs-staging",
        `${DEFAULT_CONTAINER_PREFIX}: containers named ${DEFAULT_CONTAINER_PREFIX}-postgres, -redis, -app, -backup`,
    ),
    networkName: text(DOCKER_NAME, "must be a Docker network name: letters, digits, _ . -"),
    externalNetworks: list(DOCKER_NAME, 'existing Docker network names, e.g. ["caddy"]'),
    domain: optionalText(DOMAIN, "must be a host name such as stats.example.com", "no caddy labels"),
    hotReload: bool,
    redisPersistence: bool,
    backups: bool,
    // Parsed by the backup rule (components/backupSchedule.ts), which names the wrong part.
    backupSchedule: optionalText(
        ANY,
        "",
        "no scheduled backups (the backup container idles; `npm run restore` still works)",
    ),
    backupDir: optionalText(ANY, "", "<dataDir>/backups"),
    backupKeepLast: int(0, 10_000),
    backupKeepDays: int(0, 36_500),
    backupKeepDaily: optionalInt(0, 10_000, "7: the newest passed dump of each of the last 7 days"),
    backupKeepWeekly: optionalInt(0, 10_000, "4: the newest of each of the last 4 ISO weeks"),
    backupKeepMonthly: optionalInt(0, 10_000, "6: the newest of each of the last 6 months"),
    backupKeepOtherDays: optionalInt(
        0,
        36_500,
        "30: safety, manual and pre-migration dumps older than 30 days go (the newest 3 of each kind stay); 0 keeps them all",
    ),
    backupVerifySchedule: optionalText(
        ANY,
        "",
        "weekly (0 4 * * 0, Sunday 04:00 UTC) when backupSchedule is set, else none; `off` for none",
    ),
    backupRequireMount: optionalBool(
        "true on a remote dockerHost when backupDir is outside dataDir (a share), else false",
    ),
    pgadmin: bool,
    pgadminPort: int(1, 65535),
    hostOwner: optionalText(
        UID_GID,
        "must be uid:gid in numbers, e.g. 99:100 (Unraid's nobody:users) or 1000:1000",
        "the user running Pulumi",
    ),
    postgresMemoryMb: int(0, MB),
    redisMemoryMb: int(0, MB),
    appMemoryMb: int(0, MB),
    // Set by `npm run rollback` (a kept release's image ID), removed by `npm run up`.
    appImage: optionalText(
        APP_IMAGE,
        "must be an image ID (sha256:<64 hex>) or reference on the Docker host, as `npm run rollback` sets it",
        "the image built from app/",
    ),
    appReadyTimeoutSeconds: int(5, 3600),
    // Bumped by `npm run rotate`: a new generated password (scripts/rotate.ts).
    dbPasswordRotation: int(0, 1_000_000),
    redisPasswordRotation: int(0, 1_000_000),
    appReleasesKept: int(1, 100),
    appEnv: text(/^(development|production|test)$/, "must be development, production or test"),
    logLevel: text(new RegExp(`^(${LOG_LEVELS.join("|")})$`), `must be one of ${LOG_LEVELS.join(", ")}`),
    rateLimitRequestsPerMinute: int(1, 10_000),
    // Same rule as the app's own check (app/src/config.ts): a value it refuses would crash-loop the container.
    currentSeason: optionalText(/^\d+(\.\d+)?$/, "must be a season number such as 5 or 5.5", "the app's default"),
    // Optional: unset is the server's own configuration, nothing for the program to hold.
    postgresSettings: settingsMap("none: the server's defaults (and whatever ALTER SYSTEM set by hand)"),
    // Not declared in Pulumi.yaml: a declared secret cannot have a default.
    dbPassword: secret("generated once (32 characters) and kept in the stack's encrypted state"),
    redisPassword: secret("generated once, as dbPassword"),
    marvelRivalsApiKey: secret("empty"),
    backupNotifyUrl: secret("no notification (the healthcheck and `npm run backups` still report a failed pass)"),
    // The off-site copy (issue 22, docs/offsite-backups.md); checked together by the offsite rule.
    backupOffsite: optionalText(ANY, "", "no off-site copy: the dumps stay on the server only"),
    backupOffsitePassword: secret("none; required with backupOffsite (set by you and kept in your password manager)"),
    backupOffsiteSshKey: secret("none; required with an sftp: backupOffsite"),
    backupOffsiteKnownHosts: optionalText(ANY, "", "none; required with an sftp: backupOffsite"),
    backupOffsiteS3Credentials: secret("none; required with an s3: backupOffsite"),
    backupOffsiteKeep: optionalText(
        /^\d{1,4}\/\d{1,4}\/\d{1,4}$/,
        "must be daily/weekly/monthly counts such as 7/4/6",
        `${OFFSITE_KEEP_DEFAULT}: the newest copy of each of the last 7 days, 4 weeks and 6 months`,
    ),
};

type Values = { [K in keyof typeof FIELDS]: ReturnType<(typeof FIELDS)[K]["read"]> };

/** Keys that Pulumi.yaml does not declare (no project-wide default): what leaving each unset means. */
export const OPTIONAL_KEYS: Record<string, string> = Object.fromEntries(
    Object.entries(FIELDS).flatMap(([key, field]: [string, Field<unknown>]) =>
        field.unset === undefined ? [] : [[key, field.unset]],
    ),
);

/**
 * Validates raw config values. `get(key)` returns the value as the Pulumi CLI hands it to the program
 * (strings, arrays as JSON, secrets decrypted), or undefined when unset. Each key is read by its entry in
 * FIELDS; the rules below then check what depends on more than one key. Secrets are only checked here;
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

    problems.push(...unknownKeys(ctx));
    const v = Object.fromEntries(
        Object.entries(FIELDS).map(([key, field]: [string, Field<unknown>]) => [
            key,
            field.read({
                key,
                raw: raw(key),
                fallback: ctx.defaults[key],
                bad: (value, allowed) => bad(key, value, allowed),
            }),
        ]),
    ) as Values;

    const { dockerHost, remote } = engine(v, ctx, problems);
    const dataDir = dataDirRule(v.dataDir, dockerHost, remote, ctx, bad);
    const postgresPublish = publishRule("postgres", v.postgresPort, v.postgresBindAddress, raw, bad);
    const redisPublish = publishRule("redis", v.redisPort, v.redisBindAddress, raw, bad);
    const appPublish = publishRule("app", v.appPort, v.appBindAddress, raw, bad);
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

    if (v.externalNetworks.includes(v.networkName))
        bad("externalNetworks", raw("externalNetworks"), `must not contain the stack's own network ${v.networkName}`);
    if (v.domain !== undefined && v.externalNetworks.length === 0)
        bad(
            "domain",
            v.domain,
            'needs the reverse proxy\'s network in externalNetworks (e.g. ["caddy"]) so Caddy can reach the app',
        );
    if (v.hotReload && remote)
        bad(
            "hotReload",
            "true",
            `needs a local Docker engine (it bind-mounts app/src from this machine), but dockerHost is ${dockerHost}`,
        );
    if (v.pgadmin && remote)
        bad("pgadmin", "true", "is a development tool for a local Docker engine; leave it off on a remote dockerHost");
    const backup = backupRule(v, dataDir, remote, bad);
    const memoryLimitMb = { postgres: v.postgresMemoryMb, redis: v.redisMemoryMb, app: v.appMemoryMb };
    for (const [service, mb] of Object.entries(memoryLimitMb)) {
        // Docker refuses limits under 6 MB; 0 means no limit.
        if (mb > 0 && mb < 6) bad(`${service}MemoryMb`, String(mb), "must be 0 (no limit) or at least 6");
    }
    if (v.hostOwner !== undefined && /^0:/.test(v.hostOwner))
        bad(
            "hostOwner",
            v.hostOwner,
            "must not be root (uid 0): the app, the migration step and the backup agent run as it; use your own uid:gid, e.g. 1000:1000",
        );
    problems.push(...secretProblems(v, ctx));
    const offsite = offsiteRule(v, ctx, bad, problems);

    if (problems.length > 0) throw new ConfigError(problems, ctx.stack);
    return {
        dataDir,
        dockerHost,
        remote,
        postgresImage: v.postgresImage,
        redisImage: v.redisImage,
        platform: v.platform,
        dbName: v.dbName,
        dbUser: v.dbUser,
        postgresPublish,
        redisPublish,
        appPublish,
        containerPrefix: v.containerPrefix ?? DEFAULT_CONTAINER_PREFIX,
        networkName: v.networkName,
        externalNetworks: v.externalNetworks,
        domain: v.domain,
        hotReload: v.hotReload,
        redisPersistence: v.redisPersistence,
        backups: v.backups,
        backup,
        offsite,
        pgadmin: v.pgadmin,
        pgadminPort: v.pgadminPort,
        hostOwner: v.hostOwner ?? ctx.defaultOwner,
        memoryLimitMb,
        app: { image: v.appImage, readyTimeoutSeconds: v.appReadyTimeoutSeconds, releasesKept: v.appReleasesKept },
        rotation: { db: v.dbPasswordRotation, redis: v.redisPasswordRotation },
        appEnv: v.appEnv,
        logLevel: v.logLevel,
        rateLimitRequestsPerMinute: v.rateLimitRequestsPerMinute,
        currentSeason: v.currentSeason,
        postgresSettings: v.postgresSettings,
    };
}

type Bad = (key: string, value: unknown, allowed: string) => void;

/** Keys this program does not know: a typo would otherwise be ignored without a word. */
function unknownKeys(ctx: ParseContext): string[] {
    const known = new Set([...Object.keys(ctx.defaults), ...Object.keys(FIELDS)]);
    const problems: string[] = [];
    for (const key of ctx.setKeys ?? []) {
        if (key in RETIRED_KEYS) {
            problems.push(`\`${PROJECT}:${key}\` ${RETIRED_KEYS[key]!.replace("<stack>", ctx.stack ?? "<stack>")}.`);
        } else if (!known.has(key)) {
            const like = nearestKey(key, [...known]);
            problems.push(
                `\`${PROJECT}:${key}\` is not a setting of this project${like ? `; did you mean ${like}?` : "."} Remove it with \`${configCommand(`rm ${key}`, ctx.stack)}\`${like ? ` and set ${like} instead` : ""} (docs/configuration.md lists every key).`,
            );
        }
    }
    return problems;
}

/**
 * The known key nearest to a mistyped one: the fewest edits (insert, delete, substitute, swap two
 * neighbours: optimal string alignment distance), case ignored; none when every key is more than a
 * quarter of the key's length (at least 2) away. Ties go to the first in `known`.
 */
export function nearestKey(key: string, known: string[]): string | undefined {
    const a = key.toLowerCase();
    let best: { k: string; d: number } | undefined;
    for (const k of known) {
        const d = editDistance(a, k.toLowerCase());
        if (best === undefined || d < best.d) best = { k, d };
    }
    return best && best.d <= Math.max(2, Math.floor(key.length / 4)) ? best.k : undefined;
}

/** Optimal string alignment distance between `a` and `b`. */
export function editDistance(a: string, b: string): number {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++) {
        for (let j = 1; j <= b.length; j++) {
            const cost = a[i - 1] === b[j - 1] ? 0 : 1;
            d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
            if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
                d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
            }
        }
    }
    return d[a.length]![b.length]!;
}

/** The one Docker endpoint of the stack, and whether it is another machine. */
function engine(v: Values, ctx: ParseContext, problems: string[]): { dockerHost: string; remote: boolean } {
    // The provider would let DOCKER_CONTEXT override the configured host for containers only (kreuzwerker
    // v4.2.0, internal/provider/provider.go, configure), and take DOCKER_SSH_OPTS where the docker CLI
    // steps cannot: both would split the stack across engines or connections.
    if (ctx.env.DOCKER_CONTEXT) {
        problems.push(
            `the environment variable DOCKER_CONTEXT is ${JSON.stringify(ctx.env.DOCKER_CONTEXT)}: the docker provider would send the containers to that context while the image build and the stack's docker CLI steps go to ${v.dockerHost ?? "the local engine"}. Unset DOCKER_CONTEXT; to use that engine, set \`${PROJECT}:dockerHost\` to its endpoint (\`docker context inspect ${ctx.env.DOCKER_CONTEXT} --format '{{.Endpoints.docker.Host}}'\`).`,
        );
    }
    if (ctx.env.DOCKER_SSH_OPTS) {
        problems.push(
            "the environment variable DOCKER_SSH_OPTS is set: the docker provider would use those ssh options but the stack's docker CLI steps cannot. Unset it and put the options in ~/.ssh/config under a Host entry.",
        );
    }
    let envHost = ctx.env.DOCKER_HOST || undefined;
    if (v.dockerHost === undefined && envHost !== undefined && !DOCKER_ENDPOINT.test(envHost)) {
        envHost = undefined; // reported once, as itself
        problems.push(
            `the environment variable DOCKER_HOST is ${JSON.stringify(ctx.env.DOCKER_HOST)}: it must be a Docker endpoint such as unix:///var/run/docker.sock or ssh://user@host; fix or unset it, or set \`${PROJECT}:dockerHost\`.`,
        );
    }
    const dockerHost = v.dockerHost ?? envHost ?? ctx.cliContextHost ?? DEFAULT_DOCKER_HOST;
    return { dockerHost, remote: !dockerHost.startsWith("unix://") && !dockerHost.startsWith("npipe://") };
}

/** The data directory as an absolute path on the Docker host. */
function dataDirRule(value: string, dockerHost: string, remote: boolean, ctx: ParseContext, bad: Bad): string {
    if (/[\n\r\0:,]/.test(value)) {
        bad(
            "dataDir",
            value,
            "must be a plain directory path without ':' ',' or control characters (Docker bind mounts split on them)",
        );
        return value;
    }
    if (path.isAbsolute(value)) {
        const dataDir = path.normalize(value);
        if (dataDir === "/")
            bad(
                "dataDir",
                dataDir,
                "must not be the root directory; use a directory of its own such as /mnt/user/appdata/marvel-rivals-stats",
            );
        return dataDir;
    }
    if (remote) {
        bad(
            "dataDir",
            value,
            `must be an absolute path on the Docker host ${dockerHost}, e.g. /mnt/user/appdata/marvel-rivals-stats`,
        );
        return value;
    }
    const resolved = path.resolve(ctx.projectDir, value);
    if (path.relative(ctx.projectDir, resolved).startsWith("..")) {
        bad(
            "dataDir",
            value,
            "a relative path must stay inside the project directory (e.g. ./data); use an absolute path for anything else",
        );
    }
    return resolved;
}

/** A service is published only when a port and a bind address are both configured. */
function publishRule(
    service: string,
    port: number | undefined,
    bindAddress: string | undefined,
    raw: (key: string) => string | undefined,
    bad: Bad,
): Publish | undefined {
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
}

/** The schedule, parsed (it names the wrong part), and the backup directory. */
function backupRule(v: Values, dataDir: string, remote: boolean, bad: Bad): StackConfig["backup"] {
    let schedule: Schedule | undefined;
    if (v.backupSchedule !== undefined) {
        try {
            schedule = parseSchedule(v.backupSchedule);
        } catch (err) {
            if (!(err instanceof ScheduleError)) throw err;
            bad(
                "backupSchedule",
                v.backupSchedule,
                `${err.message}; use cron's 5 fields in UTC such as "0 3 * * *" (03:00 every night), @daily, or @every 6h`,
            );
        }
    }
    let dir = `${dataDir}/backups`;
    const configured = v.backupDir;
    if (configured !== undefined) {
        const normal = path.posix.normalize(configured).replace(/(.)\/+$/, "$1");
        const under = (d: string) => normal === d || normal.startsWith(`${d}/`);
        if (/[\s:,\0]/.test(configured) || !path.posix.isAbsolute(configured)) {
            bad(
                "backupDir",
                configured,
                "must be an absolute directory path on the Docker host without spaces, ':' or ',', e.g. /mnt/remotes/NAS_backups/marvel-rivals-stats",
            );
        } else if (
            normal === "/" ||
            dataDir === normal ||
            dataDir.startsWith(`${normal}/`) ||
            ["postgres", "redis", "output", "logs"].some((sub) => under(`${dataDir}/${sub}`))
        ) {
            bad(
                "backupDir",
                configured,
                `must be a directory of its own: not /, the data directory or one that holds it, nor inside what the containers write (postgres/, redis/, output/, logs/); leave it unset for ${dataDir}/backups`,
            );
        } else dir = normal;
    }
    // The periodic verify: weekly by default when backups are scheduled.
    const verifyText =
        v.backupVerifySchedule === "off" ? undefined : (v.backupVerifySchedule ?? (schedule ? "0 4 * * 0" : undefined));
    let verifySchedule: Schedule | undefined;
    if (verifyText !== undefined) {
        try {
            verifySchedule = parseSchedule(verifyText);
        } catch (err) {
            if (!(err instanceof ScheduleError)) throw err;
            bad(
                "backupVerifySchedule",
                verifyText,
                `${err.message}; use cron's 5 fields in UTC such as "0 4 * * 0" (Sundays 04:00), @weekly, or off`,
            );
        }
    }
    return {
        verifyScheduleText: verifySchedule ? verifyText : undefined,
        verifySchedule,
        scheduleText: v.backupSchedule,
        schedule,
        dir,
        keepLast: v.backupKeepLast,
        keepDays: v.backupKeepDays,
        keepDaily: v.backupKeepDaily ?? 7,
        keepWeekly: v.backupKeepWeekly ?? 4,
        keepMonthly: v.backupKeepMonthly ?? 6,
        keepOtherDays: v.backupKeepOtherDays ?? 30,
        // A share by default on the server: an unmounted one must stop the run and the passes.
        requireMount: v.backupRequireMount ?? (remote && dir !== `${dataDir}/backups`),
    };
}

/**
 * The off-site target (issue 22, item 1): a restic repository URL of another machine, with what opens it.
 * The password is yours to set (no generated one): a key that exists only in the state would die with the
 * state, and the off-site copy with it; set by you, it is in your password manager before the first push.
 */
function offsiteRule(v: Values, ctx: ParseContext, bad: Bad, problems: string[]): StackConfig["offsite"] {
    const related = [
        "backupOffsitePassword",
        "backupOffsiteSshKey",
        "backupOffsiteKnownHosts",
        "backupOffsiteS3Credentials",
        "backupOffsiteKeep",
    ] as const;
    const secrets = ["backupOffsitePassword", "backupOffsiteSshKey", "backupOffsiteS3Credentials"] as const;
    const hidden = (key: string, what: string) => problems.push(`\`${PROJECT}:${key}\` (value hidden) ${what}.`);
    for (const key of secrets) {
        if (v[key] !== undefined && ctx.isSecret && !ctx.isSecret(key))
            hidden(
                key,
                `is stored in plain text in the stack file: remove it with \`pulumi config rm ${key}\` and set it again with \`pulumi config set --secret ${key}\` (it asks for the value)`,
            );
    }
    const repository = v.backupOffsite;
    if (repository === undefined) {
        for (const key of related) {
            if (v[key] !== undefined)
                problems.push(
                    `\`${PROJECT}:${key}\` is set but backupOffsite is not: set backupOffsite to the target (e.g. sftp:backup@nas:/srv/restic/marvel-rivals-stats), or remove it with \`pulumi config rm ${key}\`.`,
                );
        }
        return undefined;
    }
    const wrong = repositoryProblem(repository);
    if (wrong) {
        bad("backupOffsite", repository, wrong);
        return undefined;
    }
    const kind = repository.startsWith("sftp:") ? "sftp" : "s3";
    const password = v.backupOffsitePassword;
    if (password === undefined)
        hidden(
            "backupOffsitePassword",
            "is unset, and backupOffsite needs it: make one (e.g. `openssl rand -base64 32`), keep it in your password manager off this server, and set it with `pulumi config set --secret backupOffsitePassword` (it asks for the value)",
        );
    else if (password.length < 20 || /[\r\n]/.test(password))
        hidden(
            "backupOffsitePassword",
            "must be at least 20 characters on one line (it is the only key to the off-site copies); set another with `pulumi config set --secret backupOffsitePassword` before the first push",
        );
    if (kind === "sftp") {
        const key = v.backupOffsiteSshKey;
        if (key === undefined)
            hidden(
                "backupOffsiteSshKey",
                "is unset, and an sftp: backupOffsite needs it: make a key for the backups alone (`ssh-keygen -t ed25519 -N '' -f offsite_key`), add offsite_key.pub to the target user's authorized_keys, and set it with `pulumi config set --secret backupOffsiteSshKey < offsite_key`",
            );
        else if (
            !/^-----BEGIN (OPENSSH|RSA|EC) PRIVATE KEY-----[\s\S]+-----END \1 PRIVATE KEY-----\s*$/.test(key.trim())
        )
            hidden(
                "backupOffsiteSshKey",
                "is not an SSH private key (-----BEGIN OPENSSH PRIVATE KEY----- ... -----END ...); set the private half, not the .pub, with `pulumi config set --secret backupOffsiteSshKey < offsite_key`",
            );
        else if (sshKeyHasPassphrase(key))
            hidden(
                "backupOffsiteSshKey",
                "is protected by a passphrase, which the agent cannot type; make a key without one for the backups alone (`ssh-keygen -t ed25519 -N '' -f offsite_key`)",
            );
        const sftp = parseSftp(repository);
        const known = v.backupOffsiteKnownHosts;
        const hostName = sftp && sftp.port && sftp.port !== 22 ? `[${sftp.host}]:${sftp.port}` : sftp?.host;
        if (known === undefined)
            problems.push(
                `\`${PROJECT}:backupOffsiteKnownHosts\` is unset, and an sftp: backupOffsite needs the target's host key: \`ssh-keyscan${sftp?.port ? ` -p ${sftp.port}` : ""} ${sftp?.host} > known_hosts\`, compare it with the target's own /etc/ssh/ssh_host_*.pub, then \`pulumi config set backupOffsiteKnownHosts < known_hosts\`.`,
            );
        else if (
            !known.split("\n").some(
                (line) =>
                    line
                        .trim()
                        .split(/\s+/)[0]
                        ?.split(",")
                        .includes(hostName ?? "") && /\s(ssh-|ecdsa-)/.test(line),
            )
        )
            bad(
                "backupOffsiteKnownHosts",
                known.length > 80 ? `${known.slice(0, 77)}...` : known,
                `has no key for ${hostName}, the host of backupOffsite; add the line \`ssh-keyscan${sftp?.port ? ` -p ${sftp.port}` : ""} ${sftp?.host}\` prints (unhashed), checked against the target's /etc/ssh/ssh_host_*.pub`,
            );
    } else if (v.backupOffsiteS3Credentials === undefined) {
        hidden(
            "backupOffsiteS3Credentials",
            "is unset, and an s3: backupOffsite needs it: an AWS credentials file's text ([default], aws_access_key_id = ..., aws_secret_access_key = ...), set with `pulumi config set --secret backupOffsiteS3Credentials < credentials`",
        );
    } else if (
        !/aws_access_key_id\s*=/.test(v.backupOffsiteS3Credentials) ||
        !/aws_secret_access_key\s*=/.test(v.backupOffsiteS3Credentials)
    ) {
        hidden(
            "backupOffsiteS3Credentials",
            "must be an AWS credentials file's text with aws_access_key_id and aws_secret_access_key under [default]",
        );
    }
    const [daily, weekly, monthly] = (v.backupOffsiteKeep ?? OFFSITE_KEEP_DEFAULT).split("/").map(Number);
    if (v.backupOffsiteKeep !== undefined && daily < 1)
        bad("backupOffsiteKeep", v.backupOffsiteKeep, "must keep at least 1 daily copy (the newest is always kept)");
    return { repository, kind, keep: { daily, weekly, monthly } };
}

/**
 * Whether a private key needs a passphrase: PEM keys say `Proc-Type: 4,ENCRYPTED`; OpenSSH's own format
 * names its cipher and KDF right after the magic (openssh-portable PROTOCOL.key: "openssh-key-v1\0",
 * ciphername, kdfname; "none" for both when unprotected).
 */
function sshKeyHasPassphrase(key: string): boolean {
    if (/Proc-Type: 4,ENCRYPTED/.test(key)) return true;
    const head = Buffer.from(key.replace(/-----[^-]+-----|\s/g, ""), "base64")
        .subarray(0, 64)
        .toString("latin1");
    return head.startsWith("openssh-key-v1") && /aes|chacha|bcrypt/.test(head);
}

/** Secrets: set with --secret, long enough, and Redis-safe; their values never appear in a message. */
function secretProblems(v: Values, ctx: ParseContext): string[] {
    const problems: string[] = [];
    // Not declared in Pulumi.yaml, so the CLI does not insist on `secure:`: the program does.
    for (const key of ["dbPassword", "redisPassword", "marvelRivalsApiKey", "backupNotifyUrl"] as const) {
        if (v[key] !== undefined && ctx.isSecret && !ctx.isSecret(key)) {
            problems.push(
                `\`${PROJECT}:${key}\` (value hidden) is stored in plain text in the stack file: remove it with \`${configCommand(`rm ${key}`, ctx.stack)}\` and set it again with \`${configCommand(`set --secret ${key} <value>`, ctx.stack)}\`.`,
            );
        }
    }
    for (const problem of [
        checkSecret("dbPassword", v.dbPassword, 12, ctx.stack),
        checkSecret("redisPassword", v.redisPassword, 12, ctx.stack),
        checkSecret("marvelRivalsApiKey", v.marvelRivalsApiKey, 1, ctx.stack),
    ]) {
        if (problem) problems.push(problem);
    }
    if (
        v.backupNotifyUrl !== undefined &&
        v.backupNotifyUrl !== "" &&
        !/^https?:\/\/[^\s/]+\S*$/.test(v.backupNotifyUrl)
    )
        problems.push(
            `\`${PROJECT}:backupNotifyUrl\` (value hidden) must be an http:// or https:// URL (an ntfy topic, a Gotify /message?token=..., a Discord webhook); set it with \`pulumi config set --secret backupNotifyUrl <url>\`.`,
        );
    if (/["'\\]/.test(v.redisPassword ?? "")) {
        problems.push(
            `\`${PROJECT}:redisPassword\` (value hidden) must not contain quotes or backslashes (Redis' config syntax); set another with \`${configCommand("set --secret redisPassword <value>", ctx.stack)}\`.`,
        );
    }
    return problems;
}

/** A secret's problem, if any, in words that never include its value. */
export function checkSecret(
    key: string,
    value: string | undefined,
    minLength: number,
    stack?: string,
): string | undefined {
    if (value === undefined || value === "") return undefined;
    const fix = `set it with \`${configCommand(`set --secret ${key} <value>`, stack)}\``;
    if (/\s/.test(value) && minLength <= 1) {
        return `\`${PROJECT}:${key}\` (value hidden) must not contain spaces or line breaks; ${fix}.`;
    }
    if (value.length < minLength || /\s/.test(value)) {
        return `\`${PROJECT}:${key}\` (value hidden) must be at least ${minLength} characters without spaces; ${fix} or unset it to have one generated.`;
    }
    return undefined;
}
