// A real Redis for integration tests: Debian's `redis-server` (installed by .ci/run), started on a
// free loopback port with a password and no persistence, stopped by the test.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createConnection } from "node:net";
import { freePort } from "./ports";

export interface TestRedis {
    port: number;
    password: string;
    url: string;
    stop(): Promise<void>;
    start(): Promise<void>;
    /** SIGSTOP: the process stops answering while its sockets stay open (a hung Redis). */
    freeze(): void;
    /** SIGCONT after freeze(). */
    thaw(): void;
}

function redisBinary(): string {
    const found = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).stdout.trim();
    if (!found) {
        throw new Error("redis-server is not installed: run `apt-get install -y redis-server` (bash .ci/run does it)");
    }
    return found;
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
        const attempt = () => {
            const socket = createConnection({ host: "127.0.0.1", port });
            socket.once("connect", () => {
                socket.destroy();
                resolve();
            });
            socket.once("error", () => {
                socket.destroy();
                if (Date.now() > deadline) reject(new Error(`redis-server did not listen on 127.0.0.1:${port}`));
                else setTimeout(attempt, 25);
            });
        };
        attempt();
    });
}

export async function startRedis(): Promise<TestRedis> {
    const bin = redisBinary();
    const port = await freePort();
    const password = "test-redis-password";
    let child: ChildProcess | undefined;
    const start = async () => {
        // The password goes in through stdin as a config file, not on the command line.
        child = spawn(bin, ["-"], { stdio: ["pipe", "ignore", "inherit"] });
        child.stdin!.end(
            [
                `port ${port}`,
                "bind 127.0.0.1",
                `requirepass ${password}`,
                'save ""',
                "appendonly no",
                "daemonize no",
            ].join("\n") + "\n",
        );
        await waitForPort(port, 5000);
    };
    const stop = async () => {
        const c = child;
        child = undefined;
        if (!c || c.exitCode !== null) return;
        await new Promise<void>((resolve) => {
            c.once("exit", () => resolve());
            c.kill("SIGTERM");
            // A frozen process only acts on the SIGTERM once it runs again.
            c.kill("SIGCONT");
        });
    };
    const signal = (name: NodeJS.Signals) => {
        if (!child || child.exitCode !== null) throw new Error("redis-server is not running");
        child.kill(name);
    };
    await start();
    return {
        port,
        password,
        url: `redis://:${password}@127.0.0.1:${port}`,
        stop,
        start,
        freeze: () => signal("SIGSTOP"),
        thaw: () => signal("SIGCONT"),
    };
}
