// The service's configuration: read from the environment once, at start, against one schema.
// Every bad variable is reported in one message (issue 4: "one message listing every bad variable"),
// and no value of a secret variable ever appears in that message or in a log.
import { z } from "zod";

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

/** An unset or empty variable counts as unset: compose files and `docker run -e X=` produce "". */
const optional = (v: unknown) => (typeof v === "string" && v.trim() === "" ? undefined : v);

function urlWithProtocols(name: string, protocols: string[], example: string) {
    return z.preprocess(
        optional,
        z
            .string({ error: `${name} is required: set it to a URL like ${example}` })
            .superRefine((value, ctx) => {
                let url: URL;
                try {
                    url = new URL(value);
                } catch {
                    // Never echo the value: a URL carries the password.
                    ctx.addIssue({ code: "custom", message: `${name} is not a valid URL: expected ${example}` });
                    return;
                }
                if (!protocols.includes(url.protocol)) {
                    ctx.addIssue({
                        code: "custom",
                        message: `${name} must start with ${protocols.map((p) => `${p}//`).join(" or ")} (got ${url.protocol}//...): expected ${example}`,
                    });
                } else if (url.hostname === "") {
                    ctx.addIssue({ code: "custom", message: `${name} has no host: expected ${example}` });
                }
            }),
    );
}

function integer(name: string, min: number, max: number, fallback: number) {
    return z.preprocess(
        optional,
        z
            .string()
            .default(String(fallback))
            .transform((value, ctx) => {
                const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
                if (!Number.isSafeInteger(n) || n < min || n > max) {
                    ctx.addIssue({
                        code: "custom",
                        message: `${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`,
                    });
                    return z.NEVER;
                }
                return n;
            }),
    );
}

const schema = z.object({
    DATABASE_URL: urlWithProtocols("DATABASE_URL", ["postgres:", "postgresql:"], "postgres://USER:PASSWORD@HOST:5432/DATABASE"),
    REDIS_URL: urlWithProtocols("REDIS_URL", ["redis:", "rediss:"], "redis://:PASSWORD@HOST:6379"),
    PORT: integer("PORT", 1, 65535, 8000),
    HOST: z.preprocess(optional, z.string().default("0.0.0.0")),
    LOG_LEVEL: z.preprocess(
        (v) => (typeof optional(v) === "string" ? String(v).trim().toLowerCase() : undefined),
        z.enum(LOG_LEVELS, { error: (i) => `LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")} (got ${JSON.stringify(i.input)})` }).default("info"),
    ),
    APP_ENV: z.preprocess(
        optional,
        z
            .string()
            .regex(/^[a-z][a-z0-9_-]{0,31}$/, { error: (i) => `APP_ENV must be a short lower-case name like "dev" or "production" (got ${JSON.stringify(i.input)})` })
            .default("development"),
    ),
    // A secret: it is checked for shape only, and the message never contains it.
    MARVEL_RIVALS_API_KEY: z.preprocess(
        optional,
        z
            .string()
            .regex(/^\S+$/, { error: "MARVEL_RIVALS_API_KEY contains whitespace: paste the key without spaces or line breaks" })
            .optional(),
    ),
    RATE_LIMIT_REQUESTS_PER_MINUTE: integer("RATE_LIMIT_REQUESTS_PER_MINUTE", 1, 10_000, 7),
    CURRENT_SEASON: z.preprocess(
        optional,
        z
            .string()
            .regex(/^\d+(\.\d+)?$/, { error: (i) => `CURRENT_SEASON must be a season number like 2 or 2.5 (got ${JSON.stringify(i.input)})` })
            .default("1"),
    ),
    HEROES_CACHE_TTL_SECONDS: integer("HEROES_CACHE_TTL_SECONDS", 1, 86_400, 60),
});

/** Reads and validates the configuration; throws `ConfigError` listing every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
    const result = schema.safeParse(env);
    if (!result.success) {
        const problems = result.error.issues.map((issue) => {
            // Our own messages already name the variable; zod's fallback ones do not.
            const name = String(issue.path[0] ?? "");
            return issue.message.startsWith(name) ? issue.message : `${name}: ${issue.message}`;
        });
        throw new ConfigError(problems);
    }
    const e = result.data;
    return {
        databaseUrl: e.DATABASE_URL as string,
        redisUrl: e.REDIS_URL as string,
        port: e.PORT,
        host: e.HOST,
        logLevel: e.LOG_LEVEL,
        appEnv: e.APP_ENV,
        marvelRivalsApiKey: e.MARVEL_RIVALS_API_KEY,
        rateLimitRequestsPerMinute: e.RATE_LIMIT_REQUESTS_PER_MINUTE,
        currentSeason: e.CURRENT_SEASON,
        heroesCacheTtlSeconds: e.HEROES_CACHE_TTL_SECONDS,
    };
}

const databaseOnly = schema.pick({ DATABASE_URL: true });

/** For the CLIs that only talk to PostgreSQL (seed): validates DATABASE_URL alone, same messages. */
export function loadDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string {
    const result = databaseOnly.safeParse(env);
    if (!result.success) throw new ConfigError(result.error.issues.map((issue) => issue.message));
    return result.data.DATABASE_URL as string;
}

/** What may be logged about the configuration: no password, no key, no user name. */
export function describeConfig(config: Config): Record<string, unknown> {
    const where = (raw: string) => {
        const u = new URL(raw);
        return `${u.protocol}//${u.hostname}${u.port ? `:${u.port}` : ""}${u.pathname === "/" ? "" : u.pathname}`;
    };
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
