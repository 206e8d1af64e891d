// TEST SUPPORT (issue 9): a Docker host reached over SSH, as the odin stack reaches the server. Debian's
// OpenSSH server runs on 127.0.0.1 on a free port with a host key and a client key made for the run; a test
// user in the `docker` group may use the engine (its socket), exactly as a server's deploy user would.
// Clients get an ssh config of their own (the key, the pinned host key) through an `ssh` first on their PATH
// that passes it with -F: OpenSSH reads ~/.ssh from the passwd entry, not $HOME, and the machine's own
// config stays untouched. `ssh`, the docker CLI's ssh transport (`DOCKER_HOST=ssh://...`, which runs the
// `ssh` on PATH) and the harness's dial-stdio sessions (harness/dockerApi.ts, as the provider dials) all
// connect the way a user's machine does, through the deploy user. Nothing here reaches the engine except
// through that SSH server, which keeps sshd's defaults (MaxStartups 10:30:100, MaxSessions 10).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import * as path from "node:path";
import { freePort } from "../../app/test/support/ports";

export const SSH_USER = "mrs-e2e";

export interface SshDockerHost {
    /** The stack's `dockerHost`: ssh://mrs-e2e@127.0.0.1:PORT. */
    dockerHost: string;
    /** Environment for every client (the harness and the program's CLI steps): PATH with the ssh wrapper, HOME. */
    env: Record<string, string>;
    /** Samples the TCP connections open to this sshd (every 10 ms) until the returned function is called. */
    countSessions(): () => SessionCount;
    stop(): Promise<void>;
}

export interface SessionCount {
    /** The most TCP connections open to the server at once (each one a handshake; MaxStartups counts these). */
    peak: number;
    /** Distinct connections seen (client ports). */
    total: number;
    /**
     * The most sessions running a command at once (`docker system dial-stdio`, `docker ...`: processes of the
     * deploy user): with connection sharing several run over one connection (sshd's MaxSessions counts them).
     */
    peakSessions: number;
}

/** Processes of `uid` running `docker` (one per SSH session's command). */
function dockerProcessesOf(uid: number): number {
    let n = 0;
    for (const pid of readdirSync("/proc")) {
        if (!/^\d+$/.test(pid)) continue;
        try {
            if (statSync(`/proc/${pid}`).uid !== uid) continue;
            if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "docker") n++;
        } catch {
            // gone meanwhile
        }
    }
    return n;
}

/**
 * The TCP connections to 127.0.0.1:port in ESTABLISHED or SYN_RECV state (/proc/net/tcp, proc(5)): every SSH
 * session, authenticated or not (sshd's MaxStartups counts the unauthenticated ones among them).
 */
function connectionsTo(port: number): string[] {
    const hex = port.toString(16).toUpperCase().padStart(4, "0");
    const out: string[] = [];
    for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length < 4) continue;
        if (f[1].endsWith(`:${hex}`) && (f[3] === "01" || f[3] === "03")) out.push(f[2]);
    }
    return out;
}

function must(cmd: string, args: string[]): string {
    const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`);
    return r.stdout;
}

/** Whether this machine can run the SSH host (root, Debian's sshd, a docker group). */
export function sshHostAvailable(): string | undefined {
    if (process.getuid?.() !== 0) return "the SSH test host needs root (it runs sshd and adds a user)";
    if (spawnSync("/usr/sbin/sshd", ["-V"]).error) return "sshd is not installed (apt-get install openssh-server)";
    if (spawnSync("getent", ["group", "docker"]).status !== 0) return "there is no docker group (docker.io makes it)";
    return undefined;
}

export interface SshClientOptions {
    /**
     * OpenSSH connection sharing, as docs/performance.md recommends for the odin host: `ControlMaster auto`,
     * `ControlPersist 60` (one handshake, then every `ssh` of the provider's dial-stdio and of the docker CLI
     * is a session over it). Default: on, as the docs recommend; bench:e2e measures both.
     */
    share?: boolean;
}

export async function startSshDockerHost(dir: string, opts: SshClientOptions = {}): Promise<SshDockerHost> {
    const share = opts.share ?? true;
    mkdirSync(dir, { recursive: true });
    // The deploy user: a login shell, in the docker group, nothing else.
    if (spawnSync("id", [SSH_USER]).status !== 0) must("useradd", ["--create-home", "--shell", "/bin/sh", SSH_USER]);
    // In the docker group; password "*": no password login, but not a locked account ("!"), which sshd
    // refuses for every method when it does not use PAM.
    must("usermod", ["-aG", "docker", "-p", "*", SSH_USER]);
    const hostKey = path.join(dir, "host_ed25519");
    const clientKey = path.join(dir, "client_ed25519");
    must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
    must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", clientKey]);
    // This run's key only, in the run's own directory (never under the user's home): sshd reads it as the
    // deploy user, so the directories on the way are made traversable and the file readable.
    const authorizedKeys = path.join(dir, "authorized_keys");
    writeFileSync(authorizedKeys, readFileSync(`${clientKey}.pub`), { mode: 0o644 });
    for (let d = dir; d !== path.dirname(d) && d !== "/tmp"; d = path.dirname(d))
        chmodSync(d, statSync(d).mode | 0o011);
    const port = await freePort();
    const config = path.join(dir, "sshd_config");
    writeFileSync(
        config,
        [
            `Port ${port}`,
            "ListenAddress 127.0.0.1",
            `HostKey ${hostKey}`,
            `PidFile ${path.join(dir, "sshd.pid")}`,
            `AuthorizedKeysFile ${authorizedKeys}`,
            // The run's files live in a temp directory that sshd's ownership checks would refuse.
            "StrictModes no",
            `AllowUsers ${SSH_USER}`,
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "AllowStreamLocalForwarding yes",
            "LogLevel ERROR",
            "",
        ].join("\n"),
    );
    mkdirSync("/run/sshd", { recursive: true });
    const sshd: ChildProcess = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config], {
        stdio: ["ignore", "ignore", "pipe"],
    });
    let sshdLog = "";
    sshd.stderr?.on("data", (c: Buffer) => (sshdLog += c.toString("utf8")));
    let controlDir: string | undefined;
    const stop = async () => {
        // The shared connection's master (ControlPersist keeps it in the background) ends first.
        if (controlDir) {
            spawnSync(
                "/usr/bin/ssh",
                [
                    "-F",
                    path.join(dir, "home", ".ssh", "config"),
                    "-O",
                    "exit",
                    "-p",
                    String(port),
                    `${SSH_USER}@127.0.0.1`,
                ],
                { timeout: 10_000, stdio: "ignore" },
            );
            rmSync(controlDir, { recursive: true, force: true });
        }
        // The deploy user's sessions (the provider's and the CLI's dial-stdio) end with it.
        spawnSync("pkill", ["-u", SSH_USER], { timeout: 10_000 });
        if (sshd.exitCode === null && sshd.signalCode === null) {
            const exited = new Promise((r) => sshd.once("exit", r));
            sshd.kill("SIGTERM");
            await exited;
        }
    };
    try {
        await waitForPort(port, () => sshdLog);
        const home = path.join(dir, "home");
        // Short: a control socket's path must fit a sockaddr_un (108 bytes), %C adds 40.
        controlDir = mkdtempSync("/tmp/mrs-cm-");
        mkdirSync(path.join(home, ".ssh"), { recursive: true, mode: 0o700 });
        const hostPub = readFileSync(`${hostKey}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
        writeFileSync(path.join(home, ".ssh", "known_hosts"), `[127.0.0.1]:${port} ${hostPub}\n`, { mode: 0o600 });
        writeFileSync(
            path.join(home, ".ssh", "config"),
            [
                "Host 127.0.0.1",
                `  IdentityFile ${clientKey}`,
                "  IdentitiesOnly yes",
                "  StrictHostKeyChecking yes",
                `  UserKnownHostsFile ${path.join(home, ".ssh", "known_hosts")}`,
                "  BatchMode yes",
                ...(share
                    ? ["  ControlMaster auto", `  ControlPath ${path.join(controlDir, "%C")}`, "  ControlPersist 60"]
                    : []),
                "",
            ].join("\n"),
            { mode: 0o600 },
        );
        const bin = path.join(dir, "bin");
        mkdirSync(bin, { recursive: true });
        writeFileSync(
            path.join(bin, "ssh"),
            `#!/bin/sh\nexec /usr/bin/ssh -F "${path.join(home, ".ssh", "config")}" "$@"\n`,
            {
                mode: 0o755,
            },
        );
        const env = { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, HOME: home };
        // The same check a user makes before deploying (README): `ssh user@host docker version` answers.
        const check = spawnSync(
            path.join(bin, "ssh"),
            ["-p", String(port), `${SSH_USER}@127.0.0.1`, "docker", "version", "--format", "{{.Server.Version}}"],
            { env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 },
        );
        if (check.status !== 0)
            throw new Error(`the SSH test host does not reach the engine: ${check.stderr}\n${sshdLog}`);
        const uid = Number(must("id", ["-u", SSH_USER]).trim());
        const countSessions = () => {
            const seen = new Set<string>();
            let peak = 0;
            let peakSessions = 0;
            let tick = 0;
            const sample = () => {
                const now = connectionsTo(port);
                for (const c of now) seen.add(c);
                peak = Math.max(peak, now.length);
                // The process scan costs more: every other tick (20 ms); a session's command lives longer.
                if (tick++ % 2 === 0) peakSessions = Math.max(peakSessions, dockerProcessesOf(uid));
            };
            sample();
            const timer = setInterval(sample, 10);
            return () => {
                clearInterval(timer);
                sample();
                return { peak, total: seen.size, peakSessions };
            };
        };
        return { dockerHost: `ssh://${SSH_USER}@127.0.0.1:${port}`, env, countSessions, stop };
    } catch (err) {
        await stop();
        throw err;
    }
}

async function waitForPort(port: number, log: () => string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
        const ok = await new Promise<boolean>((resolve) => {
            const s = connect(port, "127.0.0.1", () => {
                s.destroy();
                resolve(true);
            });
            s.on("error", () => resolve(false));
        });
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`sshd did not listen on 127.0.0.1:${port}: ${log()}`);
}
