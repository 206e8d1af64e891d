// Clients the end-to-end tests use to look at the running stack from the host, only through ports the
// stack publishes on 127.0.0.1.
import { request } from "node:http";
import * as path from "node:path";
import { REPO_ROOT } from "./harness/run";

/** The slice of node-postgres the tests use (the app's own `pg`; the root has no @types/pg). */
export interface PgClient {
    connect(): Promise<unknown>;
    query<R = any>(sql: string, params?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
    end(): Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pg = require(path.join(REPO_ROOT, "app", "node_modules", "pg")) as {
    Client: new (config: { connectionString: string; connectionTimeoutMillis?: number }) => PgClient;
};

/** Runs `fn` with a connected client to `url`, always closing it. */
export async function withDb<T>(url: string, fn: (db: PgClient) => Promise<T>): Promise<T> {
    const db = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
    await db.connect();
    try {
        return await fn(db);
    } finally {
        await db.end();
    }
}

export interface HttpAnswer {
    status: number;
    body: string;
    json<T = any>(): T;
}

/** GET on a loopback URL (the app's published port), with a timeout. */
export function httpGet(url: string, timeoutMs = 5000): Promise<HttpAnswer> {
    const u = new URL(url);
    if (u.hostname !== "127.0.0.1" && u.hostname !== "localhost")
        throw new Error(`tests only talk to loopback, not ${u.hostname}`);
    return new Promise((resolve, reject) => {
        const req = request(
            { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, timeout: timeoutMs },
            (res) => {
                let body = "";
                res.on("data", (c: Buffer) => (body += c.toString("utf8")));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body, json: () => JSON.parse(body) }));
                res.on("error", reject);
            },
        );
        req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
        req.on("error", reject);
        req.end();
    });
}

/** Row counts of `tables`, to show that data did or did not change. */
export async function rowCounts(url: string, tables: string[]): Promise<Record<string, number>> {
    return withDb(url, async (db) => {
        const out: Record<string, number> = {};
        for (const t of tables) out[t] = Number((await db.query(`SELECT count(*)::int AS n FROM ${t}`)).rows[0].n);
        return out;
    });
}
