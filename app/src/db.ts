// The PostgreSQL pool. The `error` listener goes on before anything uses the pool: an idle client whose
// server goes away emits `error`, and without a listener that event would crash the process
// (https://node-postgres.com/apis/pool#error).
import pg from "pg";
import type { FastifyBaseLogger } from "fastify";
import type { Outage } from "./outage";

export interface PoolOptions {
    /** Time to get a connection from the pool (or open one) before giving up. */
    connectTimeoutMs?: number;
    /** Time a single query may take before the client gives up on it. */
    queryTimeoutMs?: number;
    max?: number;
}

/** A transaction left open on a connection is ended by the server after this long (the app holds none). */
const IDLE_IN_TRANSACTION_MS = 10_000;
/** The client gives up this long after the server should have: only a dead network gets that far. */
const CLIENT_MARGIN_MS = 1000;

export function createPool(databaseUrl: string, logger: FastifyBaseLogger, options: PoolOptions = {}): pg.Pool {
    const queryTimeoutMs = options.queryTimeoutMs ?? 5000;
    const pool = new pg.Pool({
        connectionString: databaseUrl,
        max: options.max ?? 10,
        connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
        // The server bounds each statement, and its wait for locks, to the request's query time: a client-side
        // timeout alone gives up on a query that PostgreSQL goes on running (or waiting for a lock), so timed-out
        // requests would pile up backends beyond the pool's size. The client's own timeout is the backstop.
        statement_timeout: queryTimeoutMs,
        lock_timeout: queryTimeoutMs,
        idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
        query_timeout: queryTimeoutMs + CLIENT_MARGIN_MS,
        idleTimeoutMillis: 30_000,
        application_name: "marvel-rivals-stats-app",
    });
    pool.on("error", (err) => {
        // The pool has already dropped the broken client; the next query opens a new connection, which is how
        // the service recovers by itself when the database comes back.
        logger.warn({ err }, "an idle PostgreSQL connection failed; the pool replaced it");
    });
    return pool;
}

/** A short description of a failure for an operator's terminal (no stack, no connection string); not for HTTP bodies. */
export function shortReason(err: unknown): string {
    const e = err as { code?: unknown; message?: unknown };
    const message = typeof e?.message === "string" && e.message !== "" ? e.message : String(err);
    const firstLine = message.split("\n")[0]!;
    const code = typeof e?.code === "string" && !firstLine.includes(e.code) ? ` (${e.code})` : "";
    return (firstLine.length > 200 ? `${firstLine.slice(0, 200)}...` : firstLine) + code;
}

export type ReasonCategory =
    "timeout" | "authentication failed" | "database does not exist" | "too many connections" | "unreachable" | "error";

const NETWORK_CODES = new Set([
    "ECONNREFUSED",
    "ECONNRESET",
    "ENOTFOUND",
    "EAI_AGAIN",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "EPIPE",
]);

/**
 * A fixed category of a PostgreSQL or Redis failure, for bodies anyone who reaches the port can read: pg's
 * own messages name roles, databases and internal hosts. The full error goes to the log, never the body.
 */
export function reasonCategory(err: unknown): ReasonCategory {
    const e = err as { code?: unknown; message?: unknown };
    const code = typeof e?.code === "string" ? e.code : "";
    const message = typeof e?.message === "string" ? e.message : "";
    if (
        code === "ETIMEDOUT" ||
        code === "57014" ||
        code === "55P03" ||
        /timeout|timed out|did not answer within/i.test(message)
    ) {
        return "timeout";
    }
    if (code === "28P01" || code === "28000" || /WRONGPASS|NOAUTH|authentication failed/i.test(message)) {
        return "authentication failed";
    }
    if (code === "3D000") return "database does not exist";
    if (code === "53300" || /max ?clients|too many (connections|clients)/i.test(message)) return "too many connections";
    if (
        NETWORK_CODES.has(code) ||
        code.startsWith("08") ||
        code.startsWith("57P") ||
        /connection (terminated|is closed)|connect E[A-Z]+/i.test(message)
    ) {
        return "unreachable";
    }
    return "error";
}

/**
 * True when a pg error means "the database is not usable right now" rather than "this query is wrong":
 * anything without an SQLSTATE (ECONNREFUSED, timeouts, "Connection terminated"), or SQLSTATE classes
 * 08 (connection exception), 28 (invalid authorization: a wrong password or a role that may not log in),
 * 53 (insufficient resources: 53300 too many connections), 57 (operator intervention, e.g. shutdown, and
 * 57014, a statement cancelled by statement_timeout), 3D000 (the database does not exist) and 55P03 (a lock
 * not granted within lock_timeout). Every one of them is an operator's problem that the client cannot fix.
 */
export function isUnavailable(err: unknown): boolean {
    const code = (err as { code?: unknown })?.code;
    if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code)) return true;
    return (
        code.startsWith("08") ||
        code.startsWith("28") ||
        code.startsWith("53") ||
        code.startsWith("57") ||
        code === "3D000" ||
        code === "55P03"
    );
}

/** SQLSTATE 42P01: the table is not there, so the migrations have not been applied. */
export function isMissingTable(err: unknown): boolean {
    return (err as { code?: unknown })?.code === "42P01";
}

/** Reports a database that is not usable to its outage log (one line per outage); returns the reason category. */
export function databaseUnavailable(outage: Outage, err: unknown): ReasonCategory {
    const reason = reasonCategory(err);
    outage.failed(err, `the database is unavailable: ${reason}`);
    return reason;
}
