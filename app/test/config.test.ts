import { describe, expect, it } from "vitest";
import { ConfigError, describeConfig, loadConfig, loadDatabaseUrl } from "../src/config";
import { parseDatabaseUrl } from "../src/migrate/connect";

const valid = {
    DATABASE_URL: "postgres://app:s3cret-db@db.internal:5432/marvel",
    REDIS_URL: "redis://:s3cret-redis@cache:6379",
};

function problemsOf(env: Record<string, string>): string {
    try {
        loadConfig(env);
    } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
    }
    throw new Error("loadConfig accepted an invalid environment");
}

describe("loadConfig", () => {
    it("applies the documented defaults", () => {
        expect(loadConfig(valid)).toEqual({
            databaseUrl: valid.DATABASE_URL,
            redisUrl: valid.REDIS_URL,
            port: 8000,
            host: "0.0.0.0",
            logLevel: "info",
            appEnv: "development",
            marvelRivalsApiKey: undefined,
            rateLimitRequestsPerMinute: 7,
            currentSeason: "1",
            heroesCacheTtlSeconds: 60,
        });
    });

    it("reads every variable when set, and treats empty strings as unset", () => {
        const config = loadConfig({
            ...valid,
            PORT: "9001",
            HOST: "127.0.0.1",
            LOG_LEVEL: "DEBUG",
            APP_ENV: "odin",
            MARVEL_RIVALS_API_KEY: "key-123",
            RATE_LIMIT_REQUESTS_PER_MINUTE: "30",
            CURRENT_SEASON: "2.5",
            HEROES_CACHE_TTL_SECONDS: "",
        });
        expect(config).toMatchObject({
            port: 9001,
            host: "127.0.0.1",
            logLevel: "debug",
            appEnv: "odin",
            marvelRivalsApiKey: "key-123",
            rateLimitRequestsPerMinute: 30,
            currentSeason: "2.5",
            heroesCacheTtlSeconds: 60,
        });
    });

    it("names both required URLs when they are missing", () => {
        expect(problemsOf({})).toBe(
            [
                "Invalid configuration: 2 problems",
                "  - DATABASE_URL is required: set it to a URL like postgres://USER:PASSWORD@HOST:5432/DATABASE",
                "  - REDIS_URL is required: set it to a URL like redis://:PASSWORD@HOST:6379",
                "Fix the environment variables above and start again.",
            ].join("\n"),
        );
    });

    it("lists every bad variable in one message", () => {
        expect(
            problemsOf({
                DATABASE_URL: "mysql://root:hunter2@db/x",
                REDIS_URL: "not a url :hunter3",
                PORT: "80000",
                LOG_LEVEL: "loud",
                APP_ENV: "Prod X",
                MARVEL_RIVALS_API_KEY: "abc def",
                RATE_LIMIT_REQUESTS_PER_MINUTE: "-1",
                CURRENT_SEASON: "spring",
                HEROES_CACHE_TTL_SECONDS: "1.5",
            }),
        ).toBe(
            [
                "Invalid configuration: 9 problems",
                "  - DATABASE_URL must start with postgres:// or postgresql:// (got mysql://...): expected postgres://USER:PASSWORD@HOST:5432/DATABASE",
                "  - REDIS_URL is not a valid URL: expected redis://:PASSWORD@HOST:6379",
                '  - PORT must be an integer from 1 to 65535 (got "80000")',
                '  - LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
                '  - APP_ENV must be a short lower-case name like "dev" or "production" (got "Prod X")',
                "  - MARVEL_RIVALS_API_KEY contains whitespace: paste the key without spaces or line breaks",
                '  - RATE_LIMIT_REQUESTS_PER_MINUTE must be an integer from 1 to 10000 (got "-1")',
                '  - CURRENT_SEASON must be a season number like 2 or 2.5 (got "spring")',
                '  - HEROES_CACHE_TTL_SECONDS must be an integer from 1 to 86400 (got "1.5")',
                "Fix the environment variables above and start again.",
            ].join("\n"),
        );
    });

    it("never puts a secret into the message", () => {
        const message = problemsOf({
            DATABASE_URL: "postgres://app:hunter2@",
            REDIS_URL: "http://:hunter3@cache",
            MARVEL_RIVALS_API_KEY: "hunter4 x",
        });
        expect(message).not.toMatch(/hunter/);
        expect(message).toContain("  - DATABASE_URL");
        expect(message).toContain("  - REDIS_URL");
        expect(message).toContain("  - MARVEL_RIVALS_API_KEY");
    });

    it("accepts a Unix-socket DATABASE_URL, whose host is a `host` parameter, and refuses one without it", () => {
        const socket = "postgres:///marvel?host=/run/postgresql&user=app&password=s3cret-db";
        expect(loadConfig({ ...valid, DATABASE_URL: "postgres:///marvel?host=/run/postgresql" }).databaseUrl).toBe(
            "postgres:///marvel?host=/run/postgresql",
        );
        expect(loadConfig({ ...valid, DATABASE_URL: socket }).databaseUrl).toBe(socket);
        const text = JSON.stringify(describeConfig(loadConfig({ ...valid, DATABASE_URL: socket })));
        expect(text).toContain('"database":"postgres:///marvel?host=/run/postgresql"');
        expect(text).not.toContain("s3cret");
        for (const url of ["postgres:///marvel", "postgres:///marvel?host="]) {
            expect(problemsOf({ ...valid, DATABASE_URL: url })).toBe(
                [
                    "Invalid configuration: 1 problem",
                    "  - DATABASE_URL has no host: expected postgres://USER:PASSWORD@HOST:5432/DATABASE",
                    "Fix the environment variables above and start again.",
                ].join("\n"),
            );
        }
        // Redis has no such form: an empty host stays an error there.
        expect(problemsOf({ ...valid, REDIS_URL: "redis:///0?host=/run/redis" })).toContain(
            "  - REDIS_URL has no host",
        );
    });

    it("refuses a raw % in a URL with the migration runner's words, never the value", () => {
        const message = problemsOf({ ...valid, DATABASE_URL: "postgres://stats:50%off@db:5432/stats" });
        expect(message).toContain(
            "  - DATABASE_URL: the password holds a % that does not start a %XX escape; percent-encode it (write % as %25, @ as %40, : as %3A, / as %2F)",
        );
        expect(message).not.toContain("50%off");
        expect(loadConfig({ ...valid, DATABASE_URL: "postgres://stats:50%25off@db:5432/stats" }).databaseUrl).toContain(
            "50%25off",
        );
        // One rule for both: the runner refuses what the app refuses.
        expect(() => parseDatabaseUrl("postgres:///stats")).toThrow(
            "DATABASE_URL has no host: expected postgres://USER:PASSWORD@HOST:5432/DATABASE",
        );
    });

    it("describes the configuration without user names, passwords or the API key", () => {
        const text = JSON.stringify(describeConfig(loadConfig({ ...valid, MARVEL_RIVALS_API_KEY: "key-123" })));
        expect(text).toContain("postgres://db.internal:5432/marvel");
        expect(text).toContain("redis://cache:6379");
        expect(text).not.toMatch(/s3cret|key-123|app@/);
    });
});

describe("loadDatabaseUrl (seed CLI)", () => {
    it("needs only DATABASE_URL", () => {
        expect(loadDatabaseUrl({ DATABASE_URL: valid.DATABASE_URL })).toBe(valid.DATABASE_URL);
        expect(() => loadDatabaseUrl({ REDIS_URL: valid.REDIS_URL })).toThrow(
            "Invalid configuration: 1 problem\n  - DATABASE_URL is required: set it to a URL like postgres://USER:PASSWORD@HOST:5432/DATABASE\n",
        );
    });
});
