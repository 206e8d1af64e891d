// Secrets as files (issue 24): DATABASE_URL_FILE, REDIS_URL_FILE and MARVEL_RIVALS_API_KEY_FILE name files
// whose content the configuration reads; process.env never gets the value.
import { mkdtempSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { ConfigError, loadConfig } from "../src/config";
import { readSecretFiles } from "../src/secretFiles";

const dir = mkdtempSync(join(tmpdir(), "mrs-secrets-"));
const file = (name: string, content: string) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    chmodSync(p, 0o400);
    return p;
};

test("the configuration reads each credential from its file, one trailing newline dropped", () => {
    const env = {
        DATABASE_URL_FILE: file("db", "postgres://app_a:s3cret@postgres:5432/stats\n"),
        REDIS_URL_FILE: file("redis", "redis://app:r3dis@redis:6379"),
        MARVEL_RIVALS_API_KEY_FILE: file("key", "key-123\n"),
    };
    const config = loadConfig(env);
    expect(config.databaseUrl).toBe("postgres://app_a:s3cret@postgres:5432/stats");
    expect(config.redisUrl).toBe("redis://app:r3dis@redis:6379");
    expect(config.marvelRivalsApiKey).toBe("key-123");
    // The given environment is not changed.
    expect(env).not.toHaveProperty("DATABASE_URL");
});

test("both a variable and its file, or a file that cannot be read: one line each, naming the fix and never the value", () => {
    const env = {
        DATABASE_URL: "postgres://a:inline-secret@h/d",
        DATABASE_URL_FILE: file("db2", "postgres://a:file-secret@h/d"),
        REDIS_URL_FILE: join(dir, "missing"),
    };
    const { problems } = readSecretFiles(env);
    expect(problems).toEqual([
        "DATABASE_URL and DATABASE_URL_FILE are both set: unset one (DATABASE_URL_FILE keeps it out of the environment)",
        `REDIS_URL_FILE names ${join(dir, "missing")}, which cannot be read (ENOENT): mount the file read-only for this user, or unset REDIS_URL_FILE`,
    ]);
    let err: ConfigError | undefined;
    try {
        loadConfig(env);
    } catch (e) {
        err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.message).not.toMatch(/inline-secret|file-secret/);
});
