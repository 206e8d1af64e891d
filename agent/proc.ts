// Child processes of the agent (psql, pg_dump, pg_restore, createdb, dropdb): the credentials travel in
// the inherited PG* environment, never in arguments. Every child is tracked, so that a stop (SIGTERM)
// can end them before the agent cleans up.

import { spawn, type ChildProcess } from "node:child_process";

export interface Result {
    code: number;
    stdout: string;
    stderr: string;
}

const children = new Set<ChildProcess>();

/** Ends every running child (SIGTERM); used when the agent itself is stopped. */
export function stopChildren(): void {
    for (const c of children) c.kill("SIGTERM");
}

/** Runs a command to its end; `input` goes to its stdin. Never throws: a missing binary is code 127. */
export function run(
    cmd: string,
    args: string[],
    opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Result> {
    return new Promise((resolve) => {
        const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
        children.add(child);
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        child.stdin.on("error", () => undefined);
        child.stdin.end(opts.input ?? "");
        child.on("error", (err) => {
            children.delete(child);
            resolve({ code: 127, stdout, stderr: `${stderr}${err.message}` });
        });
        child.on("close", (code, signal) => {
            children.delete(child);
            resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
        });
    });
}

/**
 * A psql session fed statement by statement (the dump's snapshot session): `send` writes, `waitFor` waits
 * for a line psql prints (an `\echo` marker) while the session lives.
 */
export class Session {
    private readonly child: ChildProcess;
    private out = "";
    private err = "";
    private closed = false;
    private readonly waiters: (() => void)[] = [];
    readonly done: Promise<number>;

    constructor(args: string[], env: NodeJS.ProcessEnv = process.env) {
        this.child = spawn("psql", ["-X", "-At", "-v", "ON_ERROR_STOP=1", ...args], {
            env,
            stdio: ["pipe", "pipe", "pipe"],
        });
        children.add(this.child);
        const wake = () => this.waiters.splice(0).forEach((w) => w());
        this.child.stdout!.setEncoding("utf8").on("data", (d: string) => {
            this.out += d;
            wake();
        });
        this.child.stderr!.setEncoding("utf8").on("data", (d: string) => (this.err += d));
        this.child.stdin!.on("error", () => undefined);
        this.done = new Promise((resolve) => {
            const end = (code: number) => {
                children.delete(this.child);
                this.closed = true;
                wake();
                resolve(code);
            };
            this.child.on("error", (e) => {
                this.err += e.message;
                end(127);
            });
            this.child.on("close", (code) => end(code ?? 1));
        });
    }

    get stdout(): string {
        return this.out;
    }
    get stderr(): string {
        return this.err.trim();
    }

    send(...lines: string[]): void {
        if (!this.closed) this.child.stdin!.write(`${lines.join("\n")}\n`);
    }

    /** Resolves true once a line equal to `marker` was printed, false if the session ended first. */
    async waitFor(marker: string): Promise<boolean> {
        for (;;) {
            if (this.out.split("\n").includes(marker)) return true;
            if (this.closed) return false;
            await new Promise<void>((r) => this.waiters.push(r));
        }
    }

    /** Ends the session (its transaction, if any, ends with it) and waits for psql to exit. */
    async end(commit = true): Promise<number> {
        if (!this.closed) {
            if (commit) this.send("COMMIT;");
            this.child.stdin!.end();
        }
        return this.done;
    }

    kill(): void {
        this.child.kill("SIGTERM");
    }
}

/** SQL literal and identifier quoting. */
export const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;
export const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
