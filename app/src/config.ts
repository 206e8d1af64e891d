// The service's configuration: read from the environment once, at start, against one schema (the table
// SCHEMA below). Every bad variable is reported in one message (issue 4: "one message listing every bad
// variable"), and no value of a secret variable ever appears in that message or in a log.
//
// A hand-written schema rather than zod or env-schema: the goals of issue 4 (ready under 1 s, idle RSS
// under 50 MB) leave no room for a validator library, which costs ~200 ms and ~8 MB at start for the nine
// variables below.

import { readSecretFiles } from "./secretFiles";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export interface Config {
    databaseUrl: string;
    redisUrl: string;
    port: number;
    host: string;
    logLevel: (typeof LOG_LEVELS)[number];
    appEnv: string;
    /** Secret: never log it. Optional until the collector (a later issue) needs it. */
    marvelRivalsApiKey: string | undefined;
    rateLimitRequestsPerMinute: number;
    currentSeason: string;
    /** How long `/api/heroes` answers stay in Redis. */
    heroesCacheTtlSeconds: number;
}

/** Thrown by `loadConfig`; its message is meant for an operator, as is, without a stack trace. */
export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(
            `Invalid configuration: ${problems.length} problem${problems.length === 1 ? "" : "s"}\n` +
                problems.map((p) => `  - ${p}`).join("\n") +
                "\nFix the environment variables above and start again.",
        );
        this.name = "ConfigError";
    }
}

/** Parses one variable's raw value (never undefined: defaults are applied first); throws a message. */
type Parser<T> = (value: string, name: string) => T;

interface Variable<T> {
    parse: Parser<T>;
    /** Used when the variable is unset or empty (compose files and `docker run -e X=` produce ""). */
    fallback?: string;
}

class Invalid extends Error {}

function url(protocols: string[], example: string, options: { socketHostParam?: boolean } = {}): Parser<string> {
    return (value, name) => {
        let parsed: URL;
        try {
            parsed = new URL(value);
        } catch {
            // Never echo the value: a URL carries the password.
            throw new Invalid(`${name} is not a valid URL: expected ${example}`);
        }
        if (!protocols.includes(parsed.protocol)) {
            throw new Invalid(
                `${name} must start with ${protocols.map((p) => `${p}//`).join(" or ")} (got ${parsed.protocol}//...): expected ${example}`,
            );
        }
        // libpq's Unix-socket form names the socket directory in a `host` parameter and leaves the URL's
        // host empty: postgres:///DATABASE?host=/run/postgresql (pg's connection-string parser reads it).
        const socketHost = options.socketHostParam === true && (parsed.searchParams.get("host") ?? "") !== "";
        if (parsed.hostname === "" && !socketHost) throw new Invalid(`${name} has no host: expected ${example}`);
        // A raw % (a password like "50%off"): the clients' decodeURIComponent would throw a URIError later.
        for (const [part, text] of [
            ["user name", parsed.username],
            ["password", parsed.password],
            ["host", parsed.hostname],
            ["database name", parsed.pathname],
        ]) {
            try {
                decodeURIComponent(text);
            } catch {
                throw new Invalid(
                    `${name}: the ${part} holds a % that does not start a %XX escape; percent-encode it (write % as %25, @ as %40, : as %3A, / as %2F)`,
                );
            }
        }
        return value;
    };
}

function integer(min: number, max: number): Parser<number> {
    return (value, name) => {
        const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
        if (!Number.isSafeInteger(n) || n < min || n > max) {
            throw new Invalid(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`);
        }
        return n;
    };
}

function matching(pattern: RegExp, message: (value: string, name: string) => string): Parser<string> {
    return (value, name) => {
        if (!pattern.test(value)) throw new Invalid(message(value, name));
        return value;
    };
}

const DATABASE_EXAMPLE = "postgres://USER:PASSWORD@HOST:5432/DATABASE";
const REDIS_EXAMPLE = "redis://:PASSWORD@HOST:6379";

const SCHEMA = {
    DATABASE_URL: {
        parse: url(["postgres:", "postgresql:"], DATABASE_EXAMPLE, { socketHostParam: true }),
    } as Variable<string>,
    REDIS_URL: { parse: url(["redis:", "rediss:"], REDIS_EXAMPLE) } as Variable<string>,
    PORT: { parse: integer(1, 65535), fallback: "8000" },
    HOST: { parse: (v: string) => v, fallback: "0.0.0.0" },
    LOG_LEVEL: {
        parse: (value: string, name: string) => {
            const level = value.trim().toLowerCase() as Config["logLevel"];
            if (!LOG_LEVELS.includes(level))
                throw new Invalid(`${name} must be one of ${LOG_LEVELS.join(", ")} (got ${JSON.stringify(value)})`);
            return level;
        },
        fallback: "info",
    },
    APP_ENV: {
        parse: matching(
            /^[a-z][a-z0-9_-]{0,31}$/,
            (v, n) => `${n} must be a short lower-case name like "dev" or "production" (got ${JSON.stringify(v)})`,
        ),
        fallback: "development",
    },
    // A secret: checked for shape only, and the message never contains it.
    MARVEL_RIVALS_API_KEY: {
        parse: matching(/^\S+$/, (_v, n) => `${n} contains whitespace: paste the key without spaces or line breaks`),
    } as Variable<string>,
    RATE_LIMIT_REQUESTS_PER_MINUTE: { parse: integer(1, 10_000), fallback: "7" },
    CURRENT_SEASON: {
        parse: matching(
            /^\d+(\.\d+)?$/,
            (v, n) => `${n} must be a season number like 2 or 2.5 (got ${JSON.stringify(v)})`,
        ),
        fallback: "1",
    },
    HEROES_CACHE_TTL_SECONDS: { parse: integer(1, 86_400), fallback: "60" },
} satisfies Record<string, Variable<unknown>>;

const REQUIRED_HINTS: Partial<Record<keyof typeof SCHEMA, string>> = {
    DATABASE_URL: `set it to a URL like ${DATABASE_EXAMPLE}`,
    REDIS_URL: `set it to a URL like ${REDIS_EXAMPLE}`,
};

type Parsed<K extends keyof typeof SCHEMA> = ReturnType<(typeof SCHEMA)[K]["parse"]>;

/** Validates `names` of SCHEMA in `env`; required = no fallback and not optional. Collects every problem. */
function validate<K extends keyof typeof SCHEMA>(
    given: NodeJS.ProcessEnv,
    names: readonly K[],
    optional: readonly K[] = [],
): { [N in K]: Parsed<N> | undefined } {
    // DATABASE_URL_FILE, REDIS_URL_FILE, MARVEL_RIVALS_API_KEY_FILE: the value from a file (secretFiles.ts).
    const { env, problems } = readSecretFiles(given);
    const out = {} as { [N in K]: Parsed<N> | undefined };
    for (const name of names) {
        const spec = SCHEMA[name] as Variable<Parsed<K>>;
        const raw = env[name];
        const value = raw === undefined || raw.trim() === "" ? spec.fallback : raw;
        if (value === undefined) {
            if (!optional.includes(name)) problems.push(`${name} is required: ${REQUIRED_HINTS[name] ?? "set it"}`);
            continue;
        }
        try {
            out[name] = spec.parse(value, name);
        } catch (err) {
            if (!(err instanceof Invalid)) throw err;
            problems.push(err.message);
        }
    }
    if (problems.length > 0) throw new ConfigError(problems);
    return out;
}

const ALL = Object.keys(SCHEMA) as (keyof typeof SCHEMA)[];

/** Reads and validates the configuration; throws `ConfigError` listing every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
    const e = validate(env, ALL, ["MARVEL_RIVALS_API_KEY"]);
    return {
        databaseUrl: e.DATABASE_URL!,
        redisUrl: e.REDIS_URL!,
        port: e.PORT!,
        host: e.HOST!,
        logLevel: e.LOG_LEVEL!,
        appEnv: e.APP_ENV!,
        marvelRivalsApiKey: e.MARVEL_RIVALS_API_KEY,
        rateLimitRequestsPerMinute: e.RATE_LIMIT_REQUESTS_PER_MINUTE!,
        currentSeason: e.CURRENT_SEASON!,
        heroesCacheTtlSeconds: e.HEROES_CACHE_TTL_SECONDS!,
    };
}

/** For the CLIs that only talk to PostgreSQL (seed): validates DATABASE_URL alone, same messages. */
export function loadDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string {
    return validate(env, ["DATABASE_URL"]).DATABASE_URL!;
}

/**
 * Checks a DATABASE_URL as the app does (the migration runner's one check too): an Error whose message
 * names the problem and never the value, or nothing.
 */
export function checkDatabaseUrl(value: string): Error | undefined {
    try {
        SCHEMA.DATABASE_URL.parse(value, "DATABASE_URL");
        return undefined;
    } catch (err) {
        if (err instanceof Invalid) return new Error(err.message);
        throw err;
    }
}

/** Where a (checked) connection URL points, without its user name or password: for logs and messages. */
export function whereOf(raw: string): string {
    const u = new URL(raw);
    // A Unix-socket URL (empty host) is named by its socket directory; no other parameter is shown.
    const socket = u.hostname === "" && u.searchParams.get("host") ? `?host=${u.searchParams.get("host")}` : "";
    return `${u.protocol}//${u.hostname}${u.port ? `:${u.port}` : ""}${u.pathname === "/" ? "" : u.pathname}${socket}`;
}

/** What may be logged about the configuration: no password, no key, no user name. */
export function describeConfig(config: Config): Record<string, unknown> {
    const where = whereOf;
    return {
        database: where(config.databaseUrl),
        redis: where(config.redisUrl),
        port: config.port,
        host: config.host,
        logLevel: config.logLevel,
        appEnv: config.appEnv,
        marvelRivalsApiKey: config.marvelRivalsApiKey ? "set" : "unset",
        rateLimitRequestsPerMinute: config.rateLimitRequestsPerMinute,
        currentSeason: config.currentSeason,
        heroesCacheTtlSeconds: config.heroesCacheTtlSeconds,
    };
}
