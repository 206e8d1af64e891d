// TEST HARNESS (issue 5): a minimal client of the Docker Engine API over its Unix socket. Requests carry
// their payload in the body, so that environment values (passwords) never appear on a command line.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { Agent, request } from "node:http";
import * as nodePath from "node:path";
import { Duplex } from "node:stream";

export class DockerApiError extends Error {
    constructor(
        readonly status: number,
        readonly method: string,
        readonly path: string,
        message: string,
    ) {
        super(`Docker API ${method} ${path.split("?")[0]}: ${status} ${message}`);
    }
}

/** The socket path of a `unix://` Docker host (DOCKER_HOST or the default socket when unset). */
export function socketPathOf(host: string | undefined): string {
    const h = host && host !== "" ? host : (process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock");
    if (!h.startsWith("unix://")) {
        throw new Error(`the e2e harness only drives a local engine through a unix:// socket, not ${h}`);
    }
    return h.slice("unix://".length);
}

/**
 * The newest API version the provider's Docker client speaks: github.com/docker/docker v28.5.2 (pulumi-docker
 * v5.0.0 provider/go.mod), api/common.go DefaultVersion.
 */
export const CLIENT_API_VERSION = "1.51";

/**
 * A socket-like stream over one `ssh -T [-p port] [user@]host docker system dial-stdio` process: one SSH
 * session per HTTP connection, as the provider's client dials an ssh:// host. pulumi-docker v5.0.0,
 * provider/image.go, configureDockerClientInner, and kreuzwerker v4.2.0 (its `upstream` submodule),
 * internal/provider/config.go, MakeClient, both take connhelper.GetConnectionHelperWithSSHOpts; docker/cli
 * cli/connhelper/connhelper.go, getConnectionHelper: its Dialer runs commandconn.New(ctx, "ssh", "-o
 * ConnectTimeout=30", "-T", [-l user] [-p port], "--", host, "docker", "system", "dial-stdio") for EVERY
 * dial. Closing sends SIGTERM, then SIGKILL after 10 s (cli/connhelper/commandconn/commandconn.go, kill).
 */
class CommandConn extends Duplex {
    private readonly child: ChildProcess;
    private idle?: NodeJS.Timeout;
    private idleMs = 0;
    private stderr = "";

    constructor(sshArgs: string[], onExit: () => void) {
        super({ allowHalfOpen: false });
        this.child = spawn("ssh", sshArgs, { stdio: ["pipe", "pipe", "pipe"] });
        this.child.stdout!.on("data", (c: Buffer) => {
            this.touch();
            if (!this.push(c)) this.child.stdout!.pause();
        });
        this.child.stdout!.on("end", () => this.push(null));
        this.child.stderr!.on("data", (c: Buffer) => (this.stderr += c.toString("utf8")));
        this.child.stdin!.on("error", () => {});
        this.child.on("error", (err) => this.destroy(err));
        this.child.on("exit", (code) => {
            onExit();
            if (code !== 0 && code !== null && !this.destroyed)
                this.destroy(new Error(`ssh ${sshArgs.join(" ")} exited ${code}: ${this.stderr.trim()}`));
        });
    }

    override _read(): void {
        this.child.stdout!.resume();
    }

    override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
        this.touch();
        this.child.stdin!.write(chunk, cb);
    }

    override _final(cb: (err?: Error | null) => void): void {
        this.child.stdin!.end(cb);
    }

    override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
        clearTimeout(this.idle);
        this.child.stdin!.destroy();
        if (this.child.exitCode === null && this.child.signalCode === null) {
            this.child.kill("SIGTERM");
            const hard = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
            hard.unref();
            this.child.once("exit", () => clearTimeout(hard));
        }
        cb(err);
    }

    private touch(): void {
        if (this.idleMs > 0) this.idle?.refresh();
    }

    // What http.Agent calls on the sockets it pools (net.Socket's API).
    setTimeout(ms: number, cb?: () => void): this {
        clearTimeout(this.idle);
        this.idleMs = ms;
        if (cb) this.once("timeout", cb);
        if (ms > 0) {
            this.idle = setTimeout(() => this.emit("timeout"), ms);
            this.idle.unref();
        }
        return this;
    }
    setKeepAlive(): this {
        return this;
    }
    setNoDelay(): this {
        return this;
    }
    ref(): this {
        this.child.ref();
        for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as any)?.ref?.();
        return this;
    }
    unref(): this {
        this.child.unref();
        for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as any)?.unref?.();
        return this;
    }
}

/**
 * ssh's arguments for an ssh:// Docker host, in the order docker/cli builds them (cli/connhelper/ssh/ssh.go,
 * Spec.args and Spec.Command; connhelper.go, addSSHTimeout and disablePseudoTerminalAllocation): `-l user`,
 * `-p port`, the flags (`-o ConnectTimeout=30` as one argument, `-T`), `--`, the host, then the remote
 * command as one string.
 */
export function dialStdioArgs(host: string): string[] {
    const url = new URL(host);
    if (url.protocol !== "ssh:") throw new Error(`not an ssh:// Docker host: ${host}`);
    const args: string[] = [];
    if (url.username) args.push("-l", decodeURIComponent(url.username));
    if (url.port) args.push("-p", url.port);
    args.push("-o ConnectTimeout=30", "-T", "--", url.hostname);
    // connhelper.go: a path in the URL names the remote socket (`docker --host=unix://PATH system dial-stdio`).
    const socket = url.pathname.replace(/^\/+|\/+$/g, "");
    args.push(socket !== "" ? `docker --host=unix:///${socket} system dial-stdio` : "docker system dial-stdio");
    return args;
}

/** The SSH sessions this process has open to the engine (and the most it had at once), for bench:e2e. */
export const sshSessions = { open: 0, peak: 0 };

/**
 * An http.Agent whose every new connection is a fresh `ssh ... docker system dial-stdio` session. The pool
 * behaves like the provider's: the docker client's default transport (github.com/docker/docker v28
 * client/client.go, defaultHTTPClient: `&http.Transport{}` with MaxIdleConns 6 and IdleConnTimeout 30 s)
 * leaves MaxIdleConnsPerHost at Go's DefaultMaxIdleConnsPerHost (2) and MaxConnsPerHost unlimited: requests
 * in parallel open sessions in parallel, at most 2 idle ones are kept for reuse, for 30 s.
 */
function dialStdioAgent(host: string): Agent {
    const args = dialStdioArgs(host);
    const agent = new Agent({ keepAlive: true, maxFreeSockets: 2, timeout: 30_000 });
    (agent as any).createConnection = () => {
        sshSessions.open++;
        sshSessions.peak = Math.max(sshSessions.peak, sshSessions.open);
        return new CommandConn(args, () => sshSessions.open--);
    };
    return agent;
}

/**
 * What the provider's client takes from the environment before it dials (pulumi-docker v5.0.0,
 * provider/image.go, configureDockerClientInner: client.FromEnv; github.com/docker/docker v28.5.2,
 * client/options.go, WithTLSClientConfigFromEnv): with DOCKER_CERT_PATH set, ca.pem, cert.pem and key.pem
 * must load from it, or the client (and every resource of the provider) fails. The harness speaks plain
 * HTTP to unix:// and ssh:// hosts, so it only refuses what the real client would refuse.
 */
function clientFromEnv(env: NodeJS.ProcessEnv): void {
    const dir = env.DOCKER_CERT_PATH;
    if (!dir) return;
    for (const f of ["ca.pem", "cert.pem", "key.pem"])
        if (!existsSync(nodePath.join(dir, f)))
            throw new Error(
                `Could not read ${f === "ca.pem" ? "CA certificate" : "certificate"} "${nodePath.join(dir, f)}": no such file`,
            );
}

const agents = new Map<string, Agent>();
// However the process ends, its sessions end with it.
process.on("exit", () => closeForwards());

/**
 * The endpoint of a Docker host: a unix:// host's socket; an ssh:// host's per-connection dial-stdio agent.
 */
export function engineEndpoint(host: string | undefined): DockerEndpoint {
    clientFromEnv(process.env);
    const h = host && host !== "" ? host : (process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock");
    if (h.startsWith("unix://")) return { dockerHost: h, socketPath: h.slice("unix://".length) };
    if (!h.startsWith("ssh://")) throw new Error(`the e2e harness drives unix:// and ssh:// Docker hosts, not ${h}`);
    let agent = agents.get(h);
    if (!agent) {
        agent = dialStdioAgent(h);
        agents.set(h, agent);
    }
    return { dockerHost: h, agent };
}

/** Ends the SSH sessions this process opened (idle pooled connections). */
export function closeForwards(): void {
    for (const agent of agents.values()) agent.destroy();
    agents.clear();
}

export interface DockerEndpoint {
    /** The Docker host as the provider and the CLI get it (unix:// or ssh://). */
    dockerHost: string;
    socketPath?: string;
    agent?: Agent;
    /** The negotiated API version. */
    version?: Promise<string>;
}

export class DockerApi {
    readonly endpoint: DockerEndpoint;

    /** A unix socket path, or an endpoint from engineEndpoint. */
    constructor(target: string | DockerEndpoint) {
        this.endpoint = typeof target === "string" ? { dockerHost: `unix://${target}`, socketPath: target } : target;
    }

    /** The Docker host for a docker CLI run against the same engine (DOCKER_HOST). */
    get dockerHost(): string {
        return this.endpoint.dockerHost;
    }

    /**
     * The API version requests use, negotiated as the provider's client does (it is built with
     * client.WithAPIVersionNegotiation: kreuzwerker v4.2.0, internal/provider/config.go, MakeClient): the
     * daemon's version from an unversioned /_ping (header API-Version), capped at the client's own.
     */
    apiVersion(): Promise<string> {
        // DOCKER_API_VERSION pins the version and turns negotiation off (client.FromEnv: WithVersionFromEnv).
        const pinned = process.env.DOCKER_API_VERSION;
        if (pinned) return Promise.resolve(pinned);
        // Once per client, as the Go client negotiates once (client/client.go, checkVersion): the endpoint is
        // the provider's client.
        this.endpoint.version ??= this.request("GET", "/_ping", undefined, 10_000).then((res) => {
            const server = String(res.headers["api-version"] ?? "");
            if (!/^\d+\.\d+$/.test(server))
                throw new Error(`the Docker engine did not say its API version: ${JSON.stringify(server)}`);
            const [a, b] = server.split(".").map(Number);
            const [c, d] = CLIENT_API_VERSION.split(".").map(Number);
            return a < c || (a === c && b < d) ? server : CLIENT_API_VERSION;
        });
        return this.endpoint.version;
    }

    async raw(
        method: string,
        path: string,
        body?: unknown,
        timeoutMs = 120_000,
    ): Promise<{ status: number; body: Buffer }> {
        const res = await this.request(method, `/v${await this.apiVersion()}${path}`, body, timeoutMs);
        return { status: res.status, body: res.body };
    }

    private request(
        method: string,
        path: string,
        body: unknown,
        timeoutMs: number,
    ): Promise<{ status: number; body: Buffer; headers: Record<string, string | string[] | undefined> }> {
        // A Buffer is a tar archive (PUT /containers/{id}/archive); anything else is JSON.
        const payload = Buffer.isBuffer(body)
            ? body
            : body === undefined
              ? undefined
              : Buffer.from(JSON.stringify(body));
        const contentType = Buffer.isBuffer(body) ? "application/x-tar" : "application/json";
        return new Promise((resolve, reject) => {
            const req = request(
                {
                    ...(this.endpoint.agent
                        ? { agent: this.endpoint.agent, host: "docker.example.com" }
                        : { socketPath: this.endpoint.socketPath }),
                    method,
                    path,
                    headers: payload ? { "Content-Type": contentType, "Content-Length": String(payload.length) } : {},
                    timeout: timeoutMs,
                },
                (res) => {
                    const chunks: Buffer[] = [];
                    res.on("data", (c: Buffer) => chunks.push(c));
                    res.on("end", () =>
                        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }),
                    );
                    res.on("error", reject);
                },
            );
            req.on("timeout", () => req.destroy(new Error(`Docker API ${method} ${path} timed out`)));
            req.on("error", reject);
            if (payload) req.write(payload);
            req.end();
        });
    }

    async call<T = any>(method: string, path: string, body?: unknown, okStatuses: number[] = []): Promise<T> {
        const res = await this.raw(method, path, body);
        const text = res.body.toString("utf8");
        if (res.status >= 300 && !okStatuses.includes(res.status)) {
            let message = text;
            try {
                message = JSON.parse(text).message ?? text;
            } catch {
                // not JSON: keep the text
            }
            throw new DockerApiError(res.status, method, path, message.trim());
        }
        return (text ? JSON.parse(text) : undefined) as T;
    }

    /** Inspect, or undefined when the object does not exist. */
    async inspect<T = any>(kind: "containers" | "networks" | "images", idOrName: string): Promise<T | undefined> {
        const path =
            kind === "containers"
                ? `/containers/${encodeURIComponent(idOrName)}/json`
                : `/${kind}/${encodeURIComponent(idOrName)}${kind === "images" ? "/json" : ""}`;
        const res = await this.raw("GET", path);
        if (res.status === 404) return undefined;
        if (res.status >= 300) throw new DockerApiError(res.status, "GET", path, res.body.toString("utf8"));
        return JSON.parse(res.body.toString("utf8")) as T;
    }

    /** The last `tail` lines of a container's stdout and stderr, demultiplexed. */
    async logs(id: string, tail = 60): Promise<string> {
        const res = await this.raw("GET", `/containers/${encodeURIComponent(id)}/logs?stdout=1&stderr=1&tail=${tail}`);
        const buf = res.body;
        // Without a TTY the stream is framed: 1 byte stream type, 3 zero bytes, 4 bytes big-endian length.
        let out = "";
        let i = 0;
        while (i + 8 <= buf.length && buf[i + 1] === 0 && buf[i + 2] === 0 && buf[i + 3] === 0) {
            const len = buf.readUInt32BE(i + 4);
            out += buf.subarray(i + 8, i + 8 + len).toString("utf8");
            i += 8 + len;
        }
        return i === 0 ? buf.toString("utf8") : out;
    }

    /** Test clean-up (not the provider's delete, which models.ts emulates): stop with a grace, then remove. */
    async removeContainer(id: string, graceSeconds: number): Promise<void> {
        await this.call("POST", `/containers/${encodeURIComponent(id)}/stop?t=${graceSeconds}`, undefined, [304, 404]);
        await this.call("DELETE", `/containers/${encodeURIComponent(id)}?force=1&v=0`, undefined, [404]);
    }

    async listContainers(filters: Record<string, string[]>): Promise<any[]> {
        return this.call("GET", `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify(filters))}`);
    }
}
