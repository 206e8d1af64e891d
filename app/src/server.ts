// The only entry point that listens and handles signals.
import "./compile-cache";
import { ConfigError, describeConfig, loadConfig, type Config } from "./config";
import { announceClose, buildApp } from "./app";

/** Bound on shutdown (issue 4: close the pool and Redis within 10 s); Docker's default stop timeout is 10 s too. */
const SHUTDOWN_GRACE_MS = 9_000;
/**
 * Time between SIGTERM and close(), during which everything is served as usual but with `Connection: close`.
 * A request that a client had already written on an idle keep-alive connection when SIGTERM came is read
 * and answered in that time; close() would otherwise destroy the idle connection under it (Node's
 * server.close() closes idle connections) and the client would see a reset.
 */
const DRAIN_MS = 500;

async function main(): Promise<void> {
    let config: Config;
    try {
        config = loadConfig();
    } catch (err) {
        if (err instanceof ConfigError) {
            // One message, no stack trace: this is an operator's mistake, not a bug.
            process.stderr.write(`${err.message}\n`);
            process.exit(1);
        }
        throw err;
    }

    const app = buildApp(config);
    app.log.info(
        { config: describeConfig(config), migrationsDir: process.env.MIGRATIONS_DIR ?? "(nearest migrations/)" },
        "starting",
    );

    let stopping = false;
    const shutdown = (signal: NodeJS.Signals) => {
        if (stopping) return;
        stopping = true;
        app.log.info(
            { signal },
            "stopping: answering with Connection: close, then no new connections, draining requests, closing PostgreSQL and Redis",
        );
        const timer = setTimeout(() => {
            app.log.error(`shutdown took longer than ${SHUTDOWN_GRACE_MS} ms; exiting anyway`);
            process.exit(1);
        }, SHUTDOWN_GRACE_MS);
        timer.unref();
        announceClose(app);
        const drained = new Promise((resolve) => setTimeout(resolve, DRAIN_MS));
        drained
            .then(() => app.close())
            .then(
                () => {
                    app.log.info("stopped cleanly");
                    process.exit(0);
                },
                (err: unknown) => {
                    app.log.error({ err }, "shutdown failed");
                    process.exit(1);
                },
            );
    };
    process.on("SIGTERM", shutdown);
    process.on("SIGINT", shutdown);

    // The port opens only once the app is ready (issue 20): a new version that starts beside the old one,
    // behind the same network alias, refuses connections until then, so the reverse proxy's dial fails over
    // to the old version (Go's dialer tries the alias's next address; Caddy retries for lb_try_duration)
    // instead of sending it requests it would answer with 503s. Liveness waits with it.
    if (!(await untilReady(app, () => stopping))) return;
    try {
        await app.listen({ port: config.port, host: config.host });
    } catch (err) {
        const code = (err as { code?: string }).code;
        const hint =
            code === "EADDRINUSE"
                ? `: port ${config.port} is already in use; stop the other process or set PORT`
                : code === "EACCES"
                  ? `: not allowed to listen on port ${config.port}; use a port above 1023`
                  : "";
        app.log.fatal({ err }, `cannot listen on ${config.host}:${config.port}${hint}`);
        await app.close().catch(() => undefined);
        process.exit(1);
    }
}

/** Between two readiness checks before the port opens. */
const READY_POLL_MS = 250;
/** How often the reason for not opening the port is logged again. */
const READY_LOG_EVERY_MS = 10_000;

/**
 * Resolves true once /health/ready answers 200 (ready, or degraded without Redis), asked in-process before
 * listening; false when the process is stopping first. Never gives up: the deploy's readiness gate bounds
 * the wait and names the reason (components/app.ts), and the log says what is missing meanwhile.
 */
async function untilReady(app: ReturnType<typeof buildApp>, stopping: () => boolean): Promise<boolean> {
    let lastLog = 0;
    for (;;) {
        if (stopping()) return false;
        const res = await app.inject({ method: "GET", url: "/health/ready" });
        if (res.statusCode === 200) return true;
        if (Date.now() - lastLog >= READY_LOG_EVERY_MS) {
            lastLog = Date.now();
            app.log.warn(
                { readiness: res.json() },
                "not ready yet: the port stays closed until the database answers with the migrations applied",
            );
        }
        await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    }
}

void main();
