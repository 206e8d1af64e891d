// `npm run bench:app`: the app's start-up, memory and /health latency against a real PostgreSQL 16 and
// Redis on loopback. Prints one line per figure, `<name>: <value> <unit>`. Goals (issue 4): ready under
// 1 s, idle RSS under 50 MB, /health p99 under 5 ms at 500 requests/s.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startPostgres } from "../test/support/postgres";
import { startRedis } from "../test/support/redis";
import { freePort } from "../test/support/ports";
import { up } from "../app/src/migrate";

const APP = resolve(__dirname, "../app");
const RUNS = 5;
const RATE = 500; // requests per second
const DURATION_S = 10; // so 5000 requests at most
const WARMUP_S = 2;
// Node flags of the server process: the same as app/package.json `start` and the Dockerfile CMD.
// BENCH_APP_NODE_FLAGS overrides them (space-separated) to compare settings.
const NODE_FLAGS = (process.env.BENCH_APP_NODE_FLAGS ?? "--max-semi-space-size=1").split(" ").filter(Boolean);

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

/**
 * Image figures, when BENCH_APP_IMAGE names a locally built app image (e.g. after
 * `docker build -f app/Dockerfile --target runtime -t marvel-rivals-stats-app:bench .`): its size and the
 * size of what app/Dockerfile adds to the Node base (BENCH_APP_BASE_IMAGE, default node:22.23.3-trixie-slim).
 */
function imageFigures(): void {
    const image = process.env.BENCH_APP_IMAGE;
    if (!image) {
        process.stderr.write("bench:app: set BENCH_APP_IMAGE to a built app image for image_mb and app_layers_mb\n");
        return;
    }
    const base = process.env.BENCH_APP_BASE_IMAGE ?? "node:22.23.3-trixie-slim";
    const size = (ref: string) =>
        Number(execFileSync("docker", ["image", "inspect", "-f", "{{.Size}}", ref], { encoding: "utf8" }).trim());
    const total = size(image);
    print("image_mb", total / 1e6, "MB");
    print("app_layers_mb", (total - size(base)) / 1e6, "MB");
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
        const env = {
            PATH: process.env.PATH ?? "",
            DATABASE_URL: databaseUrl,
            REDIS_URL: redis.url,
            HOST: "127.0.0.1",
            NODE_ENV: "production",
        };

        // ready_ms: spawn to the first 200 of /health/ready, polled every 5 ms. Median of RUNS starts.
        const readyTimes: number[] = [];
        let server: ChildProcess | undefined;
        let port = 0;
        for (let i = 0; i < RUNS; i++) {
            port = await freePort();
            const t0 = performance.now();
            server = spawn(process.execPath, [...NODE_FLAGS, join(APP, "dist/server.js")], {
                env: { ...env, PORT: String(port) },
                stdio: "ignore",
            });
            children.push(server);
            const deadline = t0 + 10_000;
            while ((await status(`http://127.0.0.1:${port}/health/ready`)) !== 200) {
                if (performance.now() > deadline) throw new Error("the app did not become ready within 10 s");
                await new Promise((r) => setTimeout(r, 5));
            }
            readyTimes.push(performance.now() - t0);
            if (i < RUNS - 1) await stop(server);
        }
        print("ready_ms", median(readyTimes), "ms");

        // idle_rss_mb: the last server, after a few requests of every kind, then 3 s of nothing.
        for (const path of [
            "/health",
            "/health/db",
            "/health/redis",
            "/health/ready",
            "/api/heroes",
            "/api/heroes",
            "/api/stats/summary",
        ]) {
            await status(`http://127.0.0.1:${port}${path}`);
        }
        await new Promise((r) => setTimeout(r, 3000));
        print("idle_rss_mb", rssMb(server!.pid!), "MB");

        // health_p99_ms: open-loop load from a second process.
        const load = await runLoad(port);
        const sorted = [...load.latencies].sort((a, b) => a - b);
        const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
        print("health_p50_ms", pct(50), "ms");
        print("health_p99_ms", pct(99), "ms");
        print("health_max_ms", sorted[sorted.length - 1] ?? NaN, "ms");
        print("health_requests", sorted.length, "requests");
        print("health_errors", load.errors, "requests");
        print("health_rate", load.done / load.elapsed, "req/s");
        print("loaded_rss_mb", rssMb(server!.pid!), "MB");
    } finally {
        await Promise.all(children.map(stop));
        await Promise.allSettled([redis.stop(), postgres.cleanup()]);
    }
}

main().catch((err: unknown) => {
    process.stderr.write(`bench:app failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
});
