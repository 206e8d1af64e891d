// The harness reaches an ssh:// engine as the docker provider does (issue 26): every HTTP connection is its
// own `ssh ... docker system dial-stdio` session (docker/cli cli/connhelper), requests in parallel open
// sessions in parallel, and at most 2 idle ones are kept for reuse (the docker client's default transport).
// Against the test sshd with its defaults. On a main that reached the engine through one `ssh -L` socket
// forward, the server saw one connection and no `docker` session command: the counts below fail there.
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerApi, closeForwards, dialStdioArgs, engineEndpoint } from "./harness/dockerApi";
import { sshHostAvailable, startSshDockerHost, type SshDockerHost } from "./sshHost";
import { removeTempDir, requireEngine, tempDir } from "./support";
import { takeTurnsOnEngine } from "./hooks";

const engine = requireEngine();
const sshProblem = sshHostAvailable();

it("ssh's arguments are docker/cli's, in its order", () => {
    expect(dialStdioArgs("ssh://deploy@odin:2222")).toEqual([
        "-l",
        "deploy",
        "-p",
        "2222",
        "-o ConnectTimeout=30",
        "-T",
        "--",
        "odin",
        "docker system dial-stdio",
    ]);
    expect(dialStdioArgs("ssh://odin/run/user/1000/docker.sock").slice(-3)).toEqual([
        "--",
        "odin",
        "docker --host=unix:///run/user/1000/docker.sock system dial-stdio",
    ]);
});

describe.skipIf(!engine || !!sshProblem)("dialing an ssh:// engine", () => {
    takeTurnsOnEngine(engine);
    let work: string;
    let ssh: SshDockerHost;
    const saved: Record<string, string | undefined> = {};
    beforeAll(async () => {
        work = tempDir("ssh-dial");
        // One connection per session (no sharing), so that sshd's own count shows every session.
        ssh = await startSshDockerHost(path.join(work, "ssh"), { share: false });
        for (const [k, v] of Object.entries(ssh.env)) {
            saved[k] = process.env[k];
            process.env[k] = v;
        }
    }, 120_000);
    afterAll(async () => {
        closeForwards();
        for (const [k, v] of Object.entries(saved)) {
            if (v === undefined) delete process.env[k];
            else process.env[k] = v;
        }
        await ssh?.stop();
        removeTempDir(work);
    });

    it("one session per connection, in parallel; two kept idle and reused", async () => {
        const api = new DockerApi(engineEndpoint(ssh.dockerHost));
        const count = ssh.countSessions();
        const answers = await Promise.all(
            Array.from({ length: 6 }, () => api.call<{ ApiVersion: string }>("GET", "/version")),
        );
        for (const a of answers) expect(a.ApiVersion).toMatch(/^\d+\.\d+$/);
        const burst = count();
        // The version negotiation's /_ping, then 6 parallel requests: 6 or 7 connections (the first request
        // reuses the ping's connection if it is back in the pool in time).
        expect(burst.total).toBeGreaterThanOrEqual(6);
        expect(burst.total).toBeLessThanOrEqual(7);
        expect(burst.peakSessions).toBeGreaterThanOrEqual(2);
        // Two idle connections are kept (the rest closed): two more requests, one after the other, reuse them.
        await new Promise((r) => setTimeout(r, 1000));
        const again = ssh.countSessions();
        await api.raw("GET", "/_ping");
        await api.call("GET", "/version");
        const reused = again();
        expect(reused.total).toBe(2);
        expect(reused.peak).toBe(2);
    }, 120_000);
});
