// Compiles the app with its real build config (tsconfig.build.json) into a directory of this test process,
// so that test files running in parallel never read each other's half-written dist/. It lives under app/
// so that the compiled files resolve app/node_modules and find migrations/ like app/dist does.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

const APP_DIR = resolve(__dirname, "../..");

export interface Build {
    dir: string;
    cleanup(): void;
}

export function buildApp(): Build {
    const dir = join(APP_DIR, ".test-build", `${process.pid}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    execFileSync(
        process.execPath,
        [join(APP_DIR, "node_modules/typescript/bin/tsc"), "-p", join(APP_DIR, "tsconfig.build.json"), "--outDir", dir],
        {
            stdio: "inherit",
        },
    );
    return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface RunResult {
    code: number | null;
    stdout: string;
    stderr: string;
}

/** Runs a compiled entry file to completion with exactly `env` (plus PATH). */
export function runNode(file: string, env: Record<string, string>, timeoutMs = 30_000): Promise<RunResult> {
    return new Promise((resolvePromise, reject) => {
        const child = spawn(process.execPath, [file], {
            env: { PATH: process.env.PATH ?? "", ...env },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => {
            child.kill("SIGKILL");
            reject(new Error(`${file} did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
        }, timeoutMs);
        child.on("exit", (code) => {
            clearTimeout(timer);
            resolvePromise({ code, stdout, stderr });
        });
    });
}

export interface ServerProcess {
    child: ChildProcess;
    url: string;
    output(): string;
    exited: Promise<number | null>;
}

/** Starts a compiled server.js; the caller waits for readiness itself. */
export function startServer(file: string, env: Record<string, string>, port: number): ServerProcess {
    const child = spawn(process.execPath, [file], {
        env: { PATH: process.env.PATH ?? "", ...env, PORT: String(port) },
        stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    return { child, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}
