// Clients the end-to-end tests use to look at the running stack from the host, only through ports the
// stack publishes on 127.0.0.1.
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import * as path from "node:path";
import pg from "pg";

/** Runs `fn` with a connected client to `url`, always closing it. */
export async function withDb<T>(url: string, fn: (db: pg.Client) => Promise<T>): Promise<T> {
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

/**
 * GET on a loopback URL (the app's published port), with a timeout, on a connection of its own as curl
 * would: Node 22's global agent keeps connections alive, and one pooled before the app restarted is dead.
 */
export function httpGet(url: string, timeoutMs = 5000, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    const u = new URL(url);
    if (u.hostname !== "127.0.0.1" && u.hostname !== "localhost")
        throw new Error(`tests only talk to loopback, not ${u.hostname}`);
    return new Promise((resolve, reject) => {
        const req = request(
            {
                host: u.hostname,
                port: u.port,
                path: `${u.pathname}${u.search}`,
                headers,
                timeout: timeoutMs,
                agent: false,
            },
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

/**
 * Hot reload probe: edits app/src/routes/health.ts under `projectDir` so that /health carries a marker,
 * polls `${appUrl}/health` until the marker is served, then restores the file. Returns the milliseconds
 * from the write to the first answer with the marker, or -1 when it was not served within `timeoutMs`.
 */
export async function hotReloadLatency(projectDir: string, appUrl: string, timeoutMs = 10_000): Promise<number> {
    const file = path.join(projectDir, "app", "src", "routes", "health.ts");
    const source = readFileSync(file, "utf8");
    const original = 'async () => ({ status: "ok" })';
    if (!source.includes(original)) throw new Error(`${file} no longer holds ${original}: update the hot reload probe`);
    const marker = `e2e-${Date.now()}`;
    const written = Date.now();
    writeFileSync(file, source.replace(original, `async () => ({ status: "ok", probe: "${marker}" })`));
    try {
        while (Date.now() - written < timeoutMs) {
            const res = await httpGet(`${appUrl}/health`, 1000).catch(() => undefined);
            if (res?.status === 200 && res.body.includes(marker)) return Date.now() - written;
            await new Promise((r) => setTimeout(r, 50));
        }
        return -1;
    } finally {
        writeFileSync(file, source);
    }
}
