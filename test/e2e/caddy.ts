// TEST SUPPORT (issue 20): the server's reverse proxy in front of the odin stack, and a steady load through
// it. On odin, lucaslorentz/caddy-docker-proxy writes a Caddyfile from the `caddy*` labels of the running
// containers on the `caddy` network and runs Caddy with it. Here the Caddy stand-in (.ci/images/caddy:
// Debian's caddy 2.6.2) runs with the Caddyfile that generator writes from the app's labels, as
// `caddyfileFromLabels` writes it, on the `caddy` network, published on 127.0.0.1 only.
import { readFileSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import * as path from "node:path";
import { docker } from "./support";
import { HARNESS_LABEL } from "./harness/realEngineMocks";

/** The Caddy stand-in's tag, from its one home (.ci/provision.sh builds it under the same). */
export const CADDY_IMAGE = readFileSync(path.join(__dirname, "../../.ci/images/caddy/tag"), "utf8").trim();

/**
 * The Caddyfile caddy-docker-proxy writes from one container's labels (v2.13.1): caddyfile/fromlabels.go,
 * FromLabels (a label `caddy.a.b` is block `b` inside block `a` inside the site block `caddy`; a value is
 * split on whitespace into the block's keys) and caddyfile/marshal.go, write and compareBlocks (children
 * sorted by their keys, a tab per level). Only what the app's labels use is followed: no `_N` order
 * prefixes, snippets, matchers or templates (a label with `{{` fails here rather than being misread).
 * `scheme` prefixes the site address: the tests serve plain HTTP (`http://<domain>`), since TLS is not
 * what they test, and a bare domain would make Caddy serve HTTPS only.
 */
export function caddyfileFromLabels(labels: Record<string, string>, scheme = ""): string {
    interface Block {
        keys: string[];
        children: Map<string, Block>;
    }
    const site: Block = { keys: [], children: new Map() };
    for (const [label, value] of Object.entries(labels)) {
        if (label !== "caddy" && !label.startsWith("caddy.")) continue;
        if (value.includes("{{") || /(^|\.)\d+_|_\d+($|\.)/.test(label))
            throw new Error(`caddyfileFromLabels does not follow templates or ordered labels: ${label}=${value}`);
        let block = site;
        for (const name of label.split(".").slice(1)) {
            let child = block.children.get(name);
            if (!child) block.children.set(name, (child = { keys: [name], children: new Map() }));
            block = child;
        }
        block.keys.push(...value.trim().split(/\s+/).filter(Boolean));
    }
    if (site.keys.length === 0) throw new Error("no `caddy` label: caddy-docker-proxy would write no site");
    site.keys = site.keys.map((k) => `${scheme}${k}`);
    const write = (b: Block, level: number): string => {
        const children = [...b.children.values()].sort((x, y) => x.keys.join(" ").localeCompare(y.keys.join(" ")));
        const head = "\t".repeat(level) + b.keys.join(" ");
        if (children.length === 0) return `${head}\n`;
        return `${head} {\n${children.map((c) => write(c, level + 1)).join("")}${"\t".repeat(level)}}\n`;
    };
    return write(site, 0);
}

/** Caddy on `network`, published on 127.0.0.1:`port`, with `caddyfile`; returns its container ID. */
export async function startCaddy(opts: {
    name: string;
    network: string;
    port: number;
    caddyfile: string;
    dir: string;
}) {
    const file = path.join(opts.dir, "Caddyfile");
    writeFileSync(file, opts.caddyfile);
    const api = docker();
    const { Id } = await api.call("POST", `/containers/create?name=${encodeURIComponent(opts.name)}`, {
        Image: CADDY_IMAGE,
        Labels: { [HARNESS_LABEL]: "1" },
        ExposedPorts: { "80/tcp": {} },
        HostConfig: {
            Binds: [`${file}:/etc/caddy/Caddyfile:ro`],
            PortBindings: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: String(opts.port) }] },
            NetworkMode: opts.network,
        },
    });
    await api.call("POST", `/containers/${Id}/start`, undefined, [304]);
    return Id as string;
}

/** One request's outcome under load. */
export interface Outcome {
    at: number;
    path: string;
    keepAlive: boolean;
    status: number;
    error?: string;
}

export interface Load {
    /** Stops sending, waits for the requests in flight, returns every outcome. */
    stop(): Promise<Outcome[]>;
}

/**
 * A steady load through the proxy: `perSecond` requests a second, alternating between `/health` and a
 * route that queries the database, and between a kept-alive connection pool and a new connection each.
 * A request fails on any status but 200, or on a connection error or a 10 s timeout.
 */
export function startLoad(opts: { port: number; host: string; perSecond: number; dbPath?: string }): Load {
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 8 });
    const paths = ["/health", opts.dbPath ?? "/api/stats/summary"];
    const outcomes: Outcome[] = [];
    const inflight = new Set<Promise<void>>();
    let n = 0;
    const once = (p: string, kept: boolean) =>
        new Promise<void>((resolve) => {
            const at = Date.now();
            const done = (status: number, error?: string) => {
                outcomes.push({ at, path: p, keepAlive: kept, status, error });
                resolve();
            };
            const req = request(
                {
                    host: "127.0.0.1",
                    port: opts.port,
                    path: p,
                    headers: { Host: opts.host },
                    agent: kept ? keepAlive : false,
                    timeout: 10_000,
                },
                (res) => {
                    res.resume();
                    res.on("end", () => done(res.statusCode ?? 0));
                    res.on("error", (err) => done(0, err.message));
                },
            );
            req.on("timeout", () => req.destroy(new Error("timed out after 10 s")));
            req.on("error", (err) => done(0, err.message));
            req.end();
        });
    const timer = setInterval(() => {
        const i = n++;
        const p = once(paths[i % 2], Math.floor(i / 2) % 2 === 0);
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
    }, 1000 / opts.perSecond);
    return {
        async stop() {
            clearInterval(timer);
            await Promise.all([...inflight]);
            keepAlive.destroy();
            return outcomes;
        },
    };
}

/** The failed outcomes, one line each (for assertion messages). */
export function failures(outcomes: Outcome[]): string[] {
    return outcomes
        .filter((o) => o.status !== 200)
        .map(
            (o) =>
                `${new Date(o.at).toISOString()} ${o.path} ${o.keepAlive ? "kept-alive" : "new"}: ${o.error ?? o.status}`,
        );
}
