// The deploy lock (issue 20, item 5): one change at a time per server. `up`, `destroy`, restore, rollback,
// rotate and reset take it, from a laptop or from CI alike, so it lives where they all meet: on the stack's
// Docker engine, as a container named `<containerPrefix>-deploy-lock`. Creating a container under a fixed
// name is atomic on the engine (a second create gets 409 Conflict), and its labels say who holds it, for
// what, since when and until when. Kamal's deploy lock (`kamal lock status/acquire/release`) is the bar;
// unlike Kamal's, this one ends by itself when its holder dies.
//
// The lease: the container runs `read -t LEASE` in a loop on its stdin, which the holder keeps open through
// an attached `docker start -ai` and writes a heartbeat to every LEASE/3 s. When the holder dies (even
// `kill -9`) its end of the pipe closes, the container reads EOF and exits at once; when the holder is
// stopped (SIGSTOP, a laptop asleep) or its SSH connection is cut half-open, the heartbeats stop and the
// container exits after LEASE s (exit code 3). A lock whose container has exited is stale: the next taker
// removes it and says whose it was. A clean release removes the container, leaving no trace. Backstop: a
// lock still running past its `expires` label (the holder's TTL: a holder alive whose command is stuck)
// is stale too.
//
//   npm run lock -- status [--stack dev|odin] [--json]
//   npm run lock -- release [--stack dev|odin]
//   npm run lock -- run [--stack S] --what up [--lock-wait SECONDS] [--lock-ttl 60m] -- COMMAND...
//
// `run` holds the lock while COMMAND runs and exits with its code. It runs as one process (`node --import
// tsx`, in package.json and scripts/pulumi.sh, not the `tsx` launcher, which would put a second process
// between the lock and a signal).
// Other scripts call `withDeployLock(stackTarget(stack), "rollback", async () => ...)`.
//
// Exit status: 0 done (for `status`, whatever the lock's state); 1 refused or failed (the message names the
// holder and what to do); 2 bad arguments; `run`: the command's own.
import { spawn, type ChildProcess } from "node:child_process";
import * as os from "node:os";
import {
    docker,
    engineName,
    Refusal,
    refusalExit,
    runAsProgram,
    npmAteFlags,
    stackName,
    stackTarget,
    UsageError,
    type StackTarget,
} from "./target";

export { UsageError };

/** Marks a container as a deploy lock; the holder's facts are in labels under this prefix. */
export const LOCK_LABEL = "marvel-rivals-stats.deploy-lock";

/** Seconds a second taker waits for the lock before refusing: none, as a person at a terminal wants to know at once. */
export const DEFAULT_WAIT_SECONDS = 0;
/**
 * How long a lock may be held before another taker may break it. A live holder keeps its lease by
 * heartbeats, so this only frees a lock whose holder is alive but stuck; 60 minutes is the longest the
 * deploy workflow lets a deploy run (deploy.yml, timeout-minutes), so no deploy that is still allowed to
 * run loses its lock to it.
 */
export const DEFAULT_TTL_SECONDS = 60 * 60;
/** Seconds without a heartbeat after which the lock's container ends itself (a holder stopped, asleep, cut off). */
export const DEFAULT_LEASE_SECONDS = 60;
/** A lock container created but not yet started is being taken, for this long; longer, its taker died. */
export const START_GRACE_SECONDS = 60;

/** How often a waiting taker tries again: each try is two docker calls, over SSH two connections. */
const POLL_MS = 2000;

/** Who holds a lock, for what, since when: the labels of its container. */
export interface LockHolder {
    who: string;
    what: string;
    pid: number;
    since: string;
    expires: string;
    leaseSeconds: number;
}

/** The lock's container as the engine reports it. */
export interface ObservedLock {
    id: string;
    /** Docker's state: created, running, exited, dead, paused, restarting, removing. */
    status: string;
    exitCode: number;
    /** When the container ended (Docker's FinishedAt), for an exited one. */
    finishedAt?: string;
    /** When the container was created. */
    created: string;
    labels: Record<string, string>;
}

export type Judgement =
    | { state: "held"; holder: LockHolder }
    | { state: "stale"; holder: LockHolder; reason: string }
    | { state: "foreign" };

export interface LockOptions {
    /** Wait up to this long for a held lock, polling, before refusing. */
    waitSeconds: number;
    ttlSeconds: number;
    leaseSeconds: number;
    /** Progress and reports (waiting, a stale lock removed, the lock lost): stderr by default. */
    out: (line: string) => void;
}

export interface HeldLock {
    name: string;
    id: string;
    holder: LockHolder;
    /** Removes the lock (by its ID: a lock another taker broke and took is left to its new holder). */
    release(): Promise<void>;
}

const toStderr = (line: string) => process.stderr.write(`${line}\n`);

/** `--lock-wait 90`, `--lock-ttl 45m`: seconds, or a number with s, m or h. */
export function parseDuration(flag: string, text: string): number {
    const m = /^(\d+)(s|m|h)?$/.exec(text);
    if (!m) throw new UsageError(`${flag} ${text} is not a duration: write seconds (90) or 90s, 45m, 2h`);
    return Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? "s") as "s" | "m" | "h"];
}

/** Who is taking the lock, as the next person to find it needs to read it. */
export function whoAmI(env: NodeJS.ProcessEnv = process.env, user = safeUser(), host = os.hostname()): string {
    if (env.GITHUB_ACTIONS === "true" && env.GITHUB_ACTOR) {
        const run =
            env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID
                ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
                : `run ${env.GITHUB_RUN_ID ?? "?"}`;
        return `${env.GITHUB_ACTOR}@${host} (GitHub Actions ${run})`;
    }
    return `${user}@${host}`;
}

function safeUser(): string {
    try {
        return os.userInfo().username;
    } catch {
        return process.env.USER ?? `uid ${process.getuid?.() ?? "?"}`;
    }
}

export function lockLabels(h: LockHolder): Record<string, string> {
    return {
        [LOCK_LABEL]: "1",
        [`${LOCK_LABEL}.who`]: h.who,
        [`${LOCK_LABEL}.what`]: h.what,
        [`${LOCK_LABEL}.pid`]: String(h.pid),
        [`${LOCK_LABEL}.since`]: h.since,
        [`${LOCK_LABEL}.expires`]: h.expires,
        [`${LOCK_LABEL}.lease`]: String(h.leaseSeconds),
    };
}

export function holderOf(labels: Record<string, string>): LockHolder | undefined {
    if (labels[LOCK_LABEL] === undefined) return undefined;
    const l = (k: string) => labels[`${LOCK_LABEL}.${k}`] ?? "?";
    return {
        who: l("who"),
        what: l("what"),
        pid: Number(l("pid")),
        since: l("since"),
        expires: l("expires"),
        leaseSeconds: Number(l("lease")),
    };
}

/** Whether a lock found on the engine still holds, or is stale and may be removed (and why). */
export function judge(lock: ObservedLock, now: Date): Judgement {
    const holder = holderOf(lock.labels);
    if (!holder) return { state: "foreign" };
    if (lock.status === "running" || lock.status === "paused" || lock.status === "restarting") {
        const expires = Date.parse(holder.expires);
        // An unreadable expiry never expires: a lock is broken only on a date it states.
        if (!Number.isNaN(expires) && now.getTime() > expires)
            return { state: "stale", holder, reason: `expired at ${holder.expires}` };
        return { state: "held", holder };
    }
    if (lock.status === "created") {
        // Between `docker create` and `docker start` the lock is being taken; a taker that died there
        // leaves it created for good.
        const age = (now.getTime() - Date.parse(lock.created)) / 1000;
        if (age <= START_GRACE_SECONDS) return { state: "held", holder };
        return { state: "stale", holder, reason: `its holder never started it (created ${lock.created})` };
    }
    const ended = lock.finishedAt && !lock.finishedAt.startsWith("0001-") ? ` at ${lock.finishedAt}` : "";
    return {
        state: "stale",
        holder,
        reason:
            lock.exitCode === 3
                ? `its holder fell silent (no heartbeat for ${holder.leaseSeconds} s) and its lease ended${ended}`
                : `its holder went away without releasing it${ended}`,
    };
}

const holderText = (h: LockHolder) => `${h.who} for \`${h.what}\` (pid ${h.pid}) since ${h.since}`;

/** The refusal a second taker gets. */
export function heldMessage(t: StackTarget, h: LockHolder, waitedSeconds: number): string {
    return (
        `the deploy lock of stack ${t.stack} (${t.deployLock} on ${engineName(t)}) is held by ${holderText(h)}` +
        ` (expires ${h.expires})${waitedSeconds > 0 ? `, still after waiting ${waitedSeconds} s` : ""}: ` +
        `one change at a time. Try again when it is done, or wait for it with --lock-wait SECONDS; ` +
        `if you know that run is gone, release it: npm run lock -- release --stack ${t.stack}`
    );
}

/** What a taker says when it removes a stale lock. */
export function staleMessage(t: StackTarget, h: LockHolder, reason: string): string {
    return `lock: removed a stale deploy lock of stack ${t.stack} held by ${holderText(h)}: ${reason}`;
}

/** The lock's container, or undefined when there is none. */
export async function observe(t: StackTarget): Promise<ObservedLock | undefined> {
    const r = await docker(t.host, ["container", "inspect", t.deployLock], 60_000);
    if (r.code !== 0) {
        if (/no such (container|object)/i.test(r.stderr)) return undefined;
        throw new Refusal(
            `cannot read the deploy lock ${t.deployLock} on ${engineName(t)}: ${r.stderr.trim() || `docker exited ${r.code}`}`,
        );
    }
    const [c] = JSON.parse(r.stdout);
    return {
        id: c.Id,
        status: c.State?.Status ?? "unknown",
        exitCode: c.State?.ExitCode ?? 0,
        finishedAt: c.State?.FinishedAt,
        created: c.Created,
        labels: c.Config?.Labels ?? {},
    };
}

const foreign = (t: StackTarget) =>
    new Refusal(
        `a container named ${t.deployLock} on ${engineName(t)} is not a deploy lock (it has no ${LOCK_LABEL} label): rename or remove it`,
    );

/**
 * The container's loop: ends on EOF (exit 0, the holder went away) or after a lease without a heartbeat
 * (exit 3). bash for `read -t` (dash, the Debian images' sh, has none): every official postgres image has it
 * for its entrypoint (docker-library/postgres, 16/alpine3.22/Dockerfile installs `bash` among its run-time
 * packages; the Debian ones have it), and so does the CI stand-in (.ci/images/postgres, Debian).
 */
const leaseScript = (leaseSeconds: number) =>
    `while :; do read -r -t ${leaseSeconds} _; s=$?; [ "$s" -eq 0 ] && continue; [ "$s" -gt 128 ] && exit 3; exit 0; done`;

/**
 * Takes the stack's deploy lock for `what`, waiting up to `waitSeconds` for a holder to finish; removes a
 * stale one, saying whose it was. Refuses (Refusal) naming the holder when it is still held.
 */
export async function acquireDeployLock(
    t: StackTarget,
    what: string,
    options: Partial<LockOptions> = {},
): Promise<HeldLock> {
    const opts: LockOptions = {
        waitSeconds: DEFAULT_WAIT_SECONDS,
        ttlSeconds: DEFAULT_TTL_SECONDS,
        leaseSeconds: DEFAULT_LEASE_SECONDS,
        out: toStderr,
        ...options,
    };
    const started = Date.now();
    let announced = false;
    for (;;) {
        const now = new Date();
        const holder: LockHolder = {
            who: whoAmI(),
            what,
            pid: process.pid,
            since: now.toISOString(),
            expires: new Date(now.getTime() + opts.ttlSeconds * 1000).toISOString(),
            leaseSeconds: opts.leaseSeconds,
        };
        const labels = Object.entries(lockLabels(holder)).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
        // The image may have to be pulled on a server that never ran the stack: no client timeout.
        const created = await docker(
            t.host,
            [
                "create",
                "--interactive",
                "--name",
                t.deployLock,
                ...labels,
                "--network",
                "none",
                "--entrypoint",
                "bash",
                t.postgresImage,
                "-c",
                leaseScript(opts.leaseSeconds),
            ],
            0,
        );
        if (created.code === 0) return start(t, created.stdout.trim(), holder, opts);
        if (!/conflict|already in use/i.test(created.stderr))
            throw new Refusal(
                `could not create the deploy lock ${t.deployLock} on ${engineName(t)}: ${created.stderr.trim() || `docker exited ${created.code}`}`,
            );

        const found = await observe(t);
        if (!found) continue; // released in between: take it
        const verdict = judge(found, new Date());
        if (verdict.state === "foreign") throw foreign(t);
        if (verdict.state === "stale") {
            // By ID: if another taker removed it first and took the lock, its new lock stays.
            const rm = await docker(t.host, ["rm", "--force", found.id], 60_000);
            if (rm.code !== 0 && !gone(rm.stderr))
                throw new Refusal(
                    `could not remove the stale deploy lock ${found.id.slice(0, 12)}: ${rm.stderr.trim()}`,
                );
            if (rm.code === 0) opts.out(staleMessage(t, verdict.holder, verdict.reason));
            continue;
        }
        const waited = Math.round((Date.now() - started) / 1000);
        if (Date.now() - started >= opts.waitSeconds * 1000) throw new Refusal(heldMessage(t, verdict.holder, waited));
        if (!announced)
            opts.out(
                `lock: waiting up to ${opts.waitSeconds} s for the deploy lock of stack ${t.stack}, held by ${holderText(verdict.holder)}`,
            );
        announced = true;
        await sleep(Math.min(POLL_MS, opts.waitSeconds * 1000 - (Date.now() - started)));
    }
}

/** A removal that found the container gone, or already going (another taker removing the same stale lock). */
const gone = (stderr: string) => /no such container|already in progress/i.test(stderr);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Starts the created lock with the holder's stdin attached, and waits until it runs. */
async function start(t: StackTarget, id: string, holder: LockHolder, opts: LockOptions): Promise<HeldLock> {
    // Its own process group: a Ctrl-C at the terminal must not end the lease under a command that is
    // still finishing. No timeout: it lives as long as the lock.
    const client: ChildProcess = spawn("docker", ["start", "--attach", "--interactive", id], {
        env: t.host ? { ...process.env, DOCKER_HOST: t.host } : process.env,
        detached: true,
        stdio: ["pipe", "ignore", "pipe"],
    });
    let stderr = "";
    client.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    client.stdin?.on("error", () => undefined); // EPIPE once the client is gone: reported by `exit` below
    // Held once the engine shows it running; released once release() began.
    let held = false;
    let released = false;
    let exited = false;
    const clientExit = new Promise<void>((resolve) => {
        const done = () => {
            exited = true;
            resolve();
        };
        client.once("exit", done);
        client.once("error", (err) => {
            stderr += err.message;
            done();
        });
    });
    void clientExit.then(() => {
        if (held && !released)
            opts.out(
                `lock: WARNING: the deploy lock of stack ${t.stack} ended while \`${holder.what}\` still held it (${stderr.trim() || "the docker client exited"}): another change may start; see \`npm run lock -- status --stack ${t.stack}\``,
            );
    });
    // Neither the client nor the heartbeat keeps this process alive: when it exits, the lease ends with it.
    client.unref();
    const heartbeat = setInterval(
        () => client.stdin?.write("\n"),
        Math.max(1000, Math.floor((holder.leaseSeconds * 1000) / 3)),
    );
    heartbeat.unref();
    (client.stdin as unknown as { unref?: () => void })?.unref?.();
    (client.stderr as unknown as { unref?: () => void })?.unref?.();

    const release = async () => {
        if (released) return;
        released = true;
        clearInterval(heartbeat);
        // Removed before its stdin closes, so that it never shows as a lock left behind.
        const rm = await docker(t.host, ["rm", "--force", id], 60_000);
        if (rm.code !== 0 && !gone(rm.stderr))
            opts.out(
                `lock: could not remove the deploy lock ${id.slice(0, 12)} (${rm.stderr.trim()}); its lease ends with this process, and the next taker removes it`,
            );
        client.stdin?.end();
        if (!exited) {
            const timer = setTimeout(() => client.kill("SIGKILL"), 10_000);
            await clientExit;
            clearTimeout(timer);
        }
    };

    const deadline = Date.now() + 60_000;
    for (;;) {
        const seen = await observe(t);
        if (seen?.id === id && seen.status === "running" && !exited) {
            held = true;
            return { name: t.deployLock, id, holder, release };
        }
        if (exited || Date.now() > deadline || (seen && seen.id !== id) || (seen && seen.status === "exited")) {
            await release();
            throw new Refusal(
                `could not start the deploy lock ${t.deployLock} on ${engineName(t)} (it runs bash from the stack's postgresImage, ${t.postgresImage}): ${stderr.trim() || `its container is ${seen?.status ?? "gone"}`}`,
            );
        }
        await sleep(100);
    }
}

/**
 * Runs `fn` holding the stack's deploy lock for `what` (`up`, `restore`, `rollback`, ...), and releases it
 * however `fn` ends. Throws a Refusal naming the holder when another change holds it.
 */
export async function withDeployLock<T>(
    target: StackTarget,
    what: string,
    fn: () => Promise<T>,
    options: Partial<LockOptions> = {},
): Promise<T> {
    const lock = await acquireDeployLock(target, what, options);
    try {
        return await fn();
    } finally {
        await lock.release();
    }
}

/** The lock's state for `status`: free, held or stale, with its holder. */
export async function lockStatus(
    t: StackTarget,
    now = new Date(),
): Promise<{ state: "free" } | (Judgement & { id: string })> {
    const found = await observe(t);
    if (!found) return { state: "free" };
    const verdict = judge(found, now);
    if (verdict.state === "foreign") throw foreign(t);
    return { ...verdict, id: found.id };
}

/** `release`: removes the lock whoever holds it, and says whose it was. */
export async function releaseDeployLock(t: StackTarget): Promise<string> {
    const found = await observe(t);
    if (!found)
        return `the deploy lock of stack ${t.stack} is free (no ${t.deployLock} on ${engineName(t)}): nothing to release`;
    const verdict = judge(found, new Date());
    if (verdict.state === "foreign") throw foreign(t);
    const rm = await docker(t.host, ["rm", "--force", found.id], 60_000);
    if (rm.code !== 0 && !gone(rm.stderr))
        throw new Refusal(`could not remove the deploy lock ${t.deployLock}: ${rm.stderr.trim()}`);
    return `released the deploy lock of stack ${t.stack} held by ${holderText(verdict.holder)}${
        verdict.state === "held"
            ? ": it was live; if that run is still going, it now runs without the lock"
            : ` (stale: ${verdict.reason})`
    }`;
}

export interface Options {
    command: "status" | "release" | "run";
    stack: string;
    json: boolean;
    what: string;
    waitSeconds: number;
    ttlSeconds: number;
    leaseSeconds: number;
    /** `run`: the command to hold the lock for. */
    argv: string[];
}

export const USAGE = `usage: npm run lock -- status [--stack dev|odin] [--json]
       npm run lock -- release [--stack dev|odin]
       npm run lock -- run [--stack dev|odin] --what WHAT [--lock-wait SECONDS] [--lock-ttl 60m] [--lease-seconds 60] -- COMMAND...`;

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
    npmAteFlags(argv, env);
    const [command, ...rest] = argv;
    if (command !== "status" && command !== "release" && command !== "run")
        throw new UsageError(`unknown command ${command ?? "(none)"}`);
    const opts: Options = {
        command,
        stack: env.PULUMI_STACK || "dev",
        json: false,
        what: "",
        waitSeconds: DEFAULT_WAIT_SECONDS,
        ttlSeconds: DEFAULT_TTL_SECONDS,
        leaseSeconds: DEFAULT_LEASE_SECONDS,
        argv: [],
    };
    for (let i = 0; i < rest.length; i++) {
        const arg = rest[i];
        const value = () => {
            const v = rest[++i];
            if (v === undefined || v.startsWith("--")) throw new UsageError(`${arg} needs a value`);
            return v;
        };
        if (arg === "--stack") opts.stack = value();
        else if (arg === "--json" && command === "status") opts.json = true;
        else if (command === "run" && arg === "--what") opts.what = value();
        else if (command === "run" && arg === "--lock-wait") opts.waitSeconds = parseDuration(arg, value());
        else if (command === "run" && arg === "--lock-ttl") opts.ttlSeconds = parseDuration(arg, value());
        else if (command === "run" && arg === "--lease-seconds") opts.leaseSeconds = parseDuration(arg, value());
        else if (command === "run" && arg === "--") {
            opts.argv = rest.slice(i + 1);
            break;
        } else throw new UsageError(`unexpected argument ${arg}`);
    }
    stackName(opts.stack);
    if (command === "run") {
        if (!/^[a-z][a-z0-9-]*$/.test(opts.what)) throw new UsageError("run needs --what, a command name such as up");
        if (opts.argv.length === 0) throw new UsageError("run needs the command after --");
        if (opts.ttlSeconds < 1) throw new UsageError("--lock-ttl must be at least 1s");
        if (opts.leaseSeconds < 3) throw new UsageError("--lease-seconds must be at least 3");
    }
    return opts;
}

/** `run`: the command under the lock, its exit code passed through (128 + signal when a signal ended it). */
async function runLocked(t: StackTarget, opts: Options): Promise<number> {
    const lock = await acquireDeployLock(t, opts.what, opts);
    toStderr(`lock: holding the deploy lock of stack ${t.stack} for \`${opts.what}\``);
    try {
        const child = spawn(opts.argv[0], opts.argv.slice(1), { stdio: "inherit" });
        // A Ctrl-C at the terminal reaches the command itself (same process group): the lock is released
        // once it has finished, never under it. Passing SIGINT on as well would be a second Ctrl-C, which
        // makes `pulumi up` abandon its operations at once. SIGTERM and SIGHUP, usually sent to this
        // process alone, are passed on; the lock goes when the command has ended.
        const onInt = () => undefined;
        const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
        const onTerm = forward("SIGTERM");
        const onHup = forward("SIGHUP");
        process.on("SIGINT", onInt);
        process.on("SIGTERM", onTerm);
        process.on("SIGHUP", onHup);
        try {
            return await new Promise<number>((resolve) => {
                child.once("error", (err) => {
                    toStderr(`lock: could not run ${opts.argv[0]}: ${err.message}`);
                    resolve(127);
                });
                child.once("exit", (code, signal) =>
                    resolve(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0)),
                );
            });
        } finally {
            process.off("SIGINT", onInt);
            process.off("SIGTERM", onTerm);
            process.off("SIGHUP", onHup);
        }
    } finally {
        await lock.release();
    }
}

export async function main(argv: string[], out = (l: string) => process.stdout.write(`${l}\n`)): Promise<number> {
    let opts: Options;
    try {
        opts = parseArgs(argv);
    } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`lock: ${err.message}\n${USAGE}\n`);
        return 2;
    }
    try {
        const t = stackTarget(opts.stack);
        if (opts.command === "run") return await runLocked(t, opts);
        if (opts.command === "release") {
            out(await releaseDeployLock(t));
            return 0;
        }
        const s = await lockStatus(t);
        if (opts.json) out(JSON.stringify({ stack: t.stack, engine: engineName(t), name: t.deployLock, ...s }));
        else if (s.state === "free") out(`the deploy lock of stack ${t.stack} is free`);
        else if (s.state === "held")
            out(`the deploy lock of stack ${t.stack} is held by ${holderText(s.holder)}, expires ${s.holder.expires}`);
        else if (s.state === "stale")
            out(
                `the deploy lock of stack ${t.stack} is stale, held by ${holderText(s.holder)}: ${s.reason}; the next taker removes it (or: npm run lock -- release --stack ${t.stack})`,
            );
        return 0;
    } catch (err) {
        return refusalExit("lock", err);
    }
}

runAsProgram(module, main);
