import { Client } from "pg";
import { checkDatabaseUrl } from "../config";
import { MigrateError, redact } from "./errors";

/** What DATABASE_URL points at, for messages and for pg_dump's environment. Holds the password: never print it. */
export interface Target {
    url: string;
    host: string;
    port: number;
    user: string;
    password: string | undefined;
    database: string;
    sslmode: string | undefined;
}

export function parseDatabaseUrl(url: string | undefined): Target {
    if (url === undefined || url === "") {
        throw new MigrateError(
            "DATABASE_URL is not set; set it to postgres://USER:PASSWORD@HOST:PORT/DATABASE (in the environment, not on the command line)",
        );
    }
    // What a DATABASE_URL must be has one home, the app's configuration check: same rules, same messages.
    const problem = checkDatabaseUrl(url);
    if (problem) throw new MigrateError(problem.message);
    const u = new URL(url);
    // Checked above: every part decodes.
    const decode = (s: string) => decodeURIComponent(s);
    return {
        url,
        host: u.searchParams.get("host") ?? (decode(u.hostname) || "localhost"),
        port: Number(u.port || "5432"),
        user: decode(u.username) || process.env.USER || "postgres",
        password: u.password ? decode(u.password) : undefined,
        database: decode(u.pathname.replace(/^\//, "")) || decode(u.username) || "postgres",
        sslmode: u.searchParams.get("sslmode") ?? undefined,
    };
}

/** Errors that mean "not accepting connections yet": worth waiting for. */
const RETRYABLE_CODES = new Set([
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "EAI_AGAIN",
    // A container name resolves only once its container exists.
    "ENOTFOUND",
    // cannot_connect_now: the server is starting up or shutting down.
    "57P03",
]);

function retryable(err: unknown): boolean {
    const e = err as { code?: string; message?: string };
    if (e.code !== undefined && RETRYABLE_CODES.has(e.code)) return true;
    const msg = e.message ?? "";
    return /Connection terminated|timeout expired|the database system is (starting up|shutting down)/i.test(msg);
}

export const APPLICATION_NAME = "marvel-rivals-stats-migrate";

/** How long one connection attempt may take before it counts as failed (and is retried, time permitting). */
export const CONNECT_TIMEOUT_MS = 5000;

/**
 * Connects one dedicated client, retrying while the server is not accepting connections, for up to
 * `waitSeconds` (0: one attempt). Authentication errors and a missing database fail at once: waiting would not fix them.
 */
export async function connectWithRetry(target: Target, waitSeconds: number): Promise<Client> {
    const deadline = Date.now() + waitSeconds * 1000;
    let attempts = 0;
    for (;;) {
        attempts++;
        // A fixed timeout per attempt: the deadline only decides whether to try again. Cutting the last
        // attempt (or every attempt, with --wait 0) to what is left of the deadline failed healthy servers.
        const client = new Client({
            connectionString: target.url,
            connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
            application_name: APPLICATION_NAME,
        });
        // A dropped connection emits `error`; without a listener it would crash the process. The failing
        // query reports it to the caller anyway.
        client.on("error", () => undefined);
        try {
            await client.connect();
            return client;
        } catch (err) {
            await client.end().catch(() => undefined);
            if (retryable(err) && Date.now() + 250 < deadline) {
                await sleep(Math.min(500, 100 * attempts));
                continue;
            }
            const reason = redact((err as Error).message || String(err), target.password);
            const where = `PostgreSQL at ${target.host}:${target.port} (database "${target.database}", user "${target.user}")`;
            if (retryable(err)) {
                throw new MigrateError(
                    `cannot connect to ${where} within ${waitSeconds} s (${attempts} attempt${attempts === 1 ? "" : "s"}): ${reason}; check that the server is running and that DATABASE_URL points at it, or raise --wait`,
                    { cause: err },
                );
            }
            throw new MigrateError(
                `cannot connect to ${where}: ${reason}; check the credentials and database name in DATABASE_URL`,
                {
                    sqlState: (err as { code?: string }).code,
                    cause: err,
                },
            );
        }
    }
}

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}
