// TEST HARNESS (issue 5): a minimal client of the Docker Engine API over its Unix socket. Requests carry
// their payload in the body, so that environment values (passwords) never appear on a command line.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import * as nodePath from "node:path";

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

const forwards = new Map<string, { socket: Promise<string>; child?: ChildProcess; dir: string }>();
// However the process ends, its forwards end with it.
process.on("exit", () => closeForwards());

/**
 * A local socket for a Docker host: a unix:// host's own; for an ssh:// host, OpenSSH's forward of the remote
 * engine's socket (`ssh -L local.sock:/var/run/docker.sock`), through the user's ssh and its ~/.ssh/config,
 * as the provider's connection helper also goes through `ssh` (kreuzwerker v4.2.0, internal/provider/
 * config.go, MakeClient: connhelper.GetConnectionHelperWithSSHOpts). One forward per host and process.
 */
export function engineSocket(host: string | undefined): Promise<string> {
    const h = host && host !== "" ? host : (process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock");
    if (h.startsWith("unix://")) return Promise.resolve(h.slice("unix://".length));
    if (!h.startsWith("ssh://")) throw new Error(`the e2e harness drives unix:// and ssh:// Docker hosts, not ${h}`);
    let entry = forwards.get(h);
    if (!entry) {
        const url = new URL(h);
        const dir = mkdtempSync(nodePath.join(tmpdir(), "mrs-ssh-fwd-"));
        const local = nodePath.join(dir, "docker.sock");
        const args = ["-nNT", "-o", "ExitOnForwardFailure=yes", "-L", `${local}:/var/run/docker.sock`];
        if (url.port) args.push("-p", url.port);
        args.push(url.username ? `${url.username}@${url.hostname}` : url.hostname);
        const child = spawn("ssh", args, { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
        const socket = new Promise<string>((resolve, reject) => {
            const deadline = Date.now() + 15_000;
            const poll = () => {
                if (existsSync(local)) return resolve(local);
                if (child.exitCode !== null || Date.now() > deadline)
                    return reject(new Error(`ssh could not forward the engine's socket of ${h}: ${stderr.trim()}`));
                setTimeout(poll, 50);
            };
            poll();
        });
        entry = { socket, child, dir };
        forwards.set(h, entry);
    }
    return entry.socket;
}

/** Ends the ssh forwards this process opened. */
export function closeForwards(): void {
    for (const { child, dir } of forwards.values()) {
        child?.kill();
        rmSync(dir, { recursive: true, force: true });
    }
    forwards.clear();
}

export class DockerApi {
    private version?: Promise<string>;

    constructor(readonly socketPath: string) {}

    /**
     * The API version requests use, negotiated as the provider's client does (it is built with
     * client.WithAPIVersionNegotiation: kreuzwerker v4.2.0, internal/provider/config.go, MakeClient): the
     * daemon's version from an unversioned /_ping (header API-Version), capped at the client's own.
     */
    apiVersion(): Promise<string> {
        this.version ??= this.request("GET", "/_ping", undefined, 10_000).then((res) => {
            const server = String(res.headers["api-version"] ?? "");
            if (!/^\d+\.\d+$/.test(server))
                throw new Error(`the Docker engine did not say its API version: ${JSON.stringify(server)}`);
            const [a, b] = server.split(".").map(Number);
            const [c, d] = CLIENT_API_VERSION.split(".").map(Number);
            return a < c || (a === c && b < d) ? server : CLIENT_API_VERSION;
        });
        return this.version;
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
                    socketPath: this.socketPath,
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
