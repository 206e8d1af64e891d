// `npm run bench:app`: the app's start-up, memory and /health latency against a real PostgreSQL 16 and
// Redis on loopback, beside an anchor: a bare Fastify app of the same version with the same server settings
// and Node flags, run in the same process tree in the same run, so that the ratios cancel the machine's
// noise. Prints one line per figure, `<name>: <value> <unit>`.
// Goals (issue 4): ready under 1 s, idle RSS under 50 MB, /health p99 under 5 ms at 500 requests/s.
// Goals (issue 12): health_throughput_ratio >= 0.9, health_p99_ratio <= 1.2, idle_rss_ratio <= 1.1 (ours
// over the anchor's; steady_rss_ratio is the same after both served the same load), stampede_queries = 1
// (50 clients on a cold key).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startPostgres } from "../app/test/support/postgres";
import { startRedis } from "../app/test/support/redis";
import { freePort } from "../app/test/support/ports";
import { up } from "../app/src/migrate";
import { seed } from "../app/src/seed";
import pg from "pg";

const APP = resolve(__dirname, "../app");
const RUNS = 5;
const RATE = 500; // requests per second
const DURATION_S = 5; // per round, so 2500 requests
const WARMUP_S = 2;
// Node flags of the server process: the same as app/package.json `start` and the Dockerfile CMD.
// BENCH_APP_NODE_FLAGS overrides them (space-separated) to compare settings.
const NODE_FLAGS = (process.env.BENCH_APP_NODE_FLAGS ?? "").split(" ").filter(Boolean);
/** Closed-loop throughput: this many keep-alive connections, each sending its next request on the answer. */
const CONNECTIONS = 16;
const THROUGHPUT_S = 3;
/** Alternating rounds per server for latency (open loop) and throughput (closed loop, twice as many). */
const ROUNDS = 3;

// The anchor: Fastify alone, with the server options of app/src/app.ts (JSON logger at info, the /health
// route at warn, requestTimeout, forceCloseConnections) and the same /health answer.
const ANCHOR = `
const Fastify = require(process.argv[1]);
const app = Fastify({ logger: { level: "info" }, requestTimeout: 15000, forceCloseConnections: "idle" });
app.get("/health", { logLevel: "warn" }, async () => ({ status: "ok" }));
app.get("/health/ready", { logLevel: "warn" }, async () => ({ status: "ready" }));
app.listen({ port: Number(process.env.PORT), host: "127.0.0.1" });
process.on("SIGTERM", () => app.close().then(() => process.exit(0)));
`;

// Closed loop from a second process: CONNECTIONS keep-alive connections for THROUGHPUT_S seconds after a
// 1 s warm-up, 127.0.0.1 only. Prints the answered requests per second as JSON.
const THROUGHPUT = `
const http = require("node:http");
const [port, connections, seconds, path] = [Number(process.argv[1]), Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
let counting = false, answered = 0, errors = 0, stop = false;
function loop() {
    if (stop) return;
    http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
        res.resume();
        res.on("end", () => { if (counting) { if (res.statusCode === 200) answered++; else errors++; } loop(); });
    }).on("error", () => { errors++; setTimeout(loop, 10); });
}
for (let i = 0; i < connections; i++) loop();
setTimeout(() => {
    counting = true;
    const t0 = process.hrtime.bigint();
    setTimeout(() => {
        stop = true;
        const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
        process.stdout.write(JSON.stringify({ rate: answered / elapsed, errors }));
        process.exit(0);
    }, seconds * 1000);
}, 1000);
`;

function print(name: string, value: number, unit: string): void {
    process.stdout.write(`${name}: ${Math.round(value * 100) / 100} ${unit}\n`);
}

function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)]!;
}

async function status(url: string): Promise<number> {
    try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return res.status;
    } catch {
        return 0;
    }
}

function rssMb(pid: number): number {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
        .split("\n")
        .find((l) => l.startsWith("VmRSS:"))!;
    return Number(line.replace(/\D+/g, "")) / 1024;
}

function stop(child: ChildProcess): Promise<void> {
    return new Promise((r) => {
        if (child.exitCode !== null) return r();
        child.once("exit", () => r());
        child.kill("SIGTERM");
    });
}

// The load generator, run in a second process: open loop at RATE req/s over keep-alive connections,
// a fixed number of requests, a hard time limit, 127.0.0.1 only. Prints its latencies as JSON.
const LOAD = `
const http = require("node:http");
const [port, rate, seconds, warmup] = process.argv.slice(1).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const total = rate * (seconds + warmup);
const latencies = [];
let errors = 0, done = 0, sent = 0;
const start = process.hrtime.bigint();
const hardStop = setTimeout(() => finish(), (seconds + warmup + 10) * 1000);
function finish() {
    clearTimeout(hardStop);
    const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    process.stdout.write(JSON.stringify({ latencies: latencies.slice(rate * warmup), errors, done, elapsed }));
    process.exit(0);
}
function fire() {
    const t0 = process.hrtime.bigint();
    const req = http.get({ host: "127.0.0.1", port, path: "/health", agent }, (res) => {
        res.resume();
        res.on("end", () => {
            if (res.statusCode === 200) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6); else errors++;
            if (++done === total) finish();
        });
    });
    req.setTimeout(2000, () => req.destroy(new Error("timeout")));
    req.on("error", () => { errors++; if (++done === total) finish(); });
}
// Schedule against the clock, not with a fixed setInterval, so a late tick catches up instead of drifting.
const tick = setInterval(() => {
    const due = Math.min(total, Math.floor((Number(process.hrtime.bigint() - start) / 1e9) * rate));
    while (sent < due) { sent++; fire(); }
    if (sent >= total) clearInterval(tick);
}, 1);
`;

function runThroughput(port: number, path: string): Promise<{ rate: number; errors: number }> {
    return new Promise((resolvePromise, reject) => {
        const child = spawn(
            process.execPath,
            ["-e", THROUGHPUT, String(port), String(CONNECTIONS), String(THROUGHPUT_S), path],
            { stdio: ["ignore", "pipe", "inherit"] },
        );
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.on("exit", (code) =>
            code === 0 ? resolvePromise(JSON.parse(out)) : reject(new Error(`throughput generator exited ${code}`)),
        );
    });
}

function runLoad(port: number): Promise<{ latencies: number[]; errors: number; done: number; elapsed: number }> {
    return new Promise((resolvePromise, reject) => {
        const child = spawn(
            process.execPath,
            ["-e", LOAD, String(port), String(RATE), String(DURATION_S), String(WARMUP_S)],
            {
                stdio: ["ignore", "pipe", "inherit"],
            },
        );
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.on("exit", (code) =>
            code === 0 ? resolvePromise(JSON.parse(out)) : reject(new Error(`load generator exited ${code}`)),
        );
    });
}

/** The default of app/Dockerfile's `ARG NODE_IMAGE=`: the base image its stages build on. */
function dockerfileNodeImage(): string {
    const match = /^ARG NODE_IMAGE=(\S+)\s*$/m.exec(readFileSync(join(APP, "Dockerfile"), "utf8"));
    if (!match) throw new Error("app/Dockerfile has no `ARG NODE_IMAGE=<image>` line; set BENCH_APP_BASE_IMAGE");
    return match[1];
}

/**
 * Image figures, when BENCH_APP_IMAGE names a locally built app image (e.g. after
 * `docker build -f app/Dockerfile --target runtime -t marvel-rivals-stats-app:bench .`): its size and the
 * size of what app/Dockerfile adds to the Node base (BENCH_APP_BASE_IMAGE, default the Dockerfile's own
 * NODE_IMAGE, read from its `ARG NODE_IMAGE=` line, the one home of that tag).
 */
function imageFigures(): void {
    const image = process.env.BENCH_APP_IMAGE;
    if (!image) {
        process.stderr.write("bench:app: set BENCH_APP_IMAGE to a built app image for image_mb and app_layers_mb\n");
        return;
    }
    const base = process.env.BENCH_APP_BASE_IMAGE ?? dockerfileNodeImage();
    const size = (ref: string) =>
        Number(execFileSync("docker", ["image", "inspect", "-f", "{{.Size}}", ref], { encoding: "utf8" }).trim());
    const total = size(image);
    print("image_mb", total / 1e6, "MB");
    print("app_layers_mb", (total - size(base)) / 1e6, "MB");
}

interface Server {
    child: ChildProcess;
    port: number;
}

/** Spawns `args` with the bench's Node flags on a free port and waits for its /health/ready. */
async function serve(args: string[], env: Record<string, string>, children: ChildProcess[]): Promise<Server> {
    const port = await freePort();
    const child = spawn(process.execPath, [...NODE_FLAGS, ...args], {
        env: { ...env, PORT: String(port) },
        stdio: "ignore",
    });
    children.push(child);
    const deadline = performance.now() + 10_000;
    while ((await status(`http://127.0.0.1:${port}/health/ready`)) !== 200) {
        if (performance.now() > deadline) throw new Error(`${args.join(" ")} did not become ready within 10 s`);
        await new Promise((r) => setTimeout(r, 5));
    }
    return { child, port };
}

function percentile(sorted: number[], p: number): number {
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function main(): Promise<void> {
    imageFigures();
    process.stderr.write("bench:app: building app/dist, starting PostgreSQL 16 and Redis...\n");
    execFileSync(
        process.execPath,
        [join(APP, "node_modules/typescript/bin/tsc"), "-p", join(APP, "tsconfig.build.json")],
        { stdio: "inherit" },
    );
    const [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
    const children: ChildProcess[] = [];
    try {
        const databaseUrl = await postgres.createDatabase("bench");
        await up({ databaseUrl, migrationsDir: resolve(__dirname, "../migrations") });
        const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
        await seed(pool).finally(() => pool.end());
        const env = {
            PATH: process.env.PATH ?? "",
            DATABASE_URL: databaseUrl,
            REDIS_URL: redis.url,
            HOST: "127.0.0.1",
            NODE_ENV: "production",
        };
        const fastify = require.resolve("fastify", { paths: [APP] });
        process.stderr.write(`bench:app: node flags [${NODE_FLAGS.join(" ")}], anchor ${fastify}\n`);

        // ready_ms: spawn to the first 200 of /health/ready, polled every 5 ms. Median of RUNS starts.
        const readyTimes: number[] = [];
        let ours: Server | undefined;
        for (let i = 0; i < RUNS; i++) {
            const t0 = performance.now();
            ours = await serve([join(APP, "dist/server.js")], env, children);
            readyTimes.push(performance.now() - t0);
            if (i < RUNS - 1) await stop(ours.child);
        }
        print("ready_ms", median(readyTimes), "ms");
        const app = ours!;
        const anchor = await serve(["-e", ANCHOR, fastify], { PATH: env.PATH, NODE_ENV: "production" }, children);

        // Idle RSS: after a few requests of every kind (the anchor: its two routes), then 3 s of nothing.
        for (const path of ["/health", "/health/db", "/health/redis", "/health/ready", "/api/heroes", "/api/heroes"]) {
            await status(`http://127.0.0.1:${app.port}${path}`);
        }
        await status(`http://127.0.0.1:${app.port}/api/stats/summary`);
        for (let i = 0; i < 7; i++) await status(`http://127.0.0.1:${anchor.port}/health`);
        await new Promise((r) => setTimeout(r, 3000));
        const rss = rssMb(app.child.pid!);
        const anchorRss = rssMb(anchor.child.pid!);
        print("idle_rss_mb", rss, "MB");
        print("anchor_idle_rss_mb", anchorRss, "MB");
        print("idle_rss_ratio", rss / anchorRss, "x");

        // /health latency: open loop at RATE req/s from a second process, in alternating rounds (ours first,
        // then the anchor first, ...); the p99 of each server is the median of its rounds' p99s.
        const p99s: number[] = [];
        const anchorP99s: number[] = [];
        const all: number[] = [];
        let errors = 0;
        for (let round = 0; round < ROUNDS; round++) {
            for (const server of round % 2 === 0 ? [app, anchor] : [anchor, app]) {
                const load = await runLoad(server.port);
                const sorted = [...load.latencies].sort((a, b) => a - b);
                errors += load.errors;
                (server === app ? p99s : anchorP99s).push(percentile(sorted, 99));
                if (server === app) all.push(...load.latencies);
            }
        }
        all.sort((a, b) => a - b);
        print("health_p50_ms", percentile(all, 50), "ms");
        print("health_p99_ms", median(p99s), "ms");
        print("health_max_ms", all[all.length - 1] ?? NaN, "ms");
        print("health_requests", all.length, "requests");
        print("health_errors", errors, "requests");
        print("anchor_health_p99_ms", median(anchorP99s), "ms");
        print("health_p99_ratio", median(p99s) / median(anchorP99s), "x");
        print("loaded_rss_mb", rssMb(app.child.pid!), "MB");

        // /health throughput, closed loop, in alternating rounds (ours first, then the anchor first, ...).
        const rates: number[] = [];
        const anchorRates: number[] = [];
        for (let round = 0; round < 2 * ROUNDS; round++) {
            const pair = round % 2 === 0 ? [app, anchor] : [anchor, app];
            for (const server of pair) {
                const { rate } = await runThroughput(server.port, "/health");
                (server === app ? rates : anchorRates).push(rate);
            }
        }
        print("health_throughput", median(rates), "req/s");
        print("anchor_health_throughput", median(anchorRates), "req/s");
        print("health_throughput_ratio", median(rates) / median(anchorRates), "x");
        // Steady-state RSS: both servers have now served the same /health load (and collected its garbage);
        // 3 s of nothing. The idle figure above, right after start-up, holds whatever start-up allocated
        // until V8 next collects, which an idle process never does.
        await new Promise((r) => setTimeout(r, 3000));
        const steady = rssMb(app.child.pid!);
        const anchorSteady = rssMb(anchor.child.pid!);
        print("steady_rss_mb", steady, "MB");
        print("anchor_steady_rss_mb", anchorSteady, "MB");
        print("steady_rss_ratio", steady / anchorSteady, "x");
        print("heroes_cached_throughput", (await runThroughput(app.port, "/api/heroes")).rate, "req/s");

        // Stampede: 50 clients at once on a key nobody asked for yet. Each computation stamps its own
        // generatedAt, so the distinct stamps among the answers are the database queries that made them.
        const answers = await Promise.all(
            Array.from({ length: 50 }, () =>
                fetch(`http://127.0.0.1:${app.port}/api/heroes?rank=Gold`).then((r) => r.json()),
            ),
        );
        print("stampede_queries", new Set(answers.map((a: { generatedAt: string }) => a.generatedAt)).size, "queries");
    } finally {
        await Promise.all(children.map(stop));
        await Promise.allSettled([redis.stop(), postgres.cleanup()]);
    }
}

main().catch((err: unknown) => {
    process.stderr.write(`bench:app failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
});
