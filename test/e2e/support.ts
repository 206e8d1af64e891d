// Shared by the end-to-end tests (issue 5): engine detection with the CI rule, temp dirs, small clients.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { DockerApi, socketPathOf } from "./harness/dockerApi";
import { freePort } from "../../app/test/support/ports";
import { copyProject, type StackRun } from "./harness/run";
import { HARNESS_LABEL } from "./harness/realEngineMocks";

/**
 * Whether to run the end-to-end tests. In CI (env `CI` set) a missing engine is a failure, never a skip:
 * `.ci/provision.sh` must have provided one. Elsewhere the tests skip, loudly.
 */
export function requireEngine(): boolean {
    if (engineAnswersSync()) return true;
    if (process.env.CI) {
        // Another e2e file may be restarting the engine (odin): give it time before calling it missing.
        const deadline = Date.now() + 180_000;
        while (Date.now() < deadline) {
            spawnSync("sleep", ["2"]);
            if (engineAnswersSync()) return true;
        }
        throw new Error("CI is set but no Docker engine answers on the local socket: .ci/provision.sh must start one");
    }
    process.stderr.write(
        "\n!!! END-TO-END TESTS SKIPPED: no Docker engine answers (run .ci/provision.sh as root). In CI this fails. !!!\n\n",
    );
    return false;
}

/** Synchronous (describe.skipIf needs the answer at collection time): GET /_ping on the engine's socket. */
function engineAnswersSync(): boolean {
    let socketPath: string;
    try {
        socketPath = socketPathOf(undefined);
    } catch {
        return false;
    }
    const probe = `require("node:http").get({ socketPath: ${JSON.stringify(socketPath)}, path: "/_ping", timeout: 5000 },
        (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on("error", () => process.exit(1)).on("timeout", () => process.exit(1));`;
    return spawnSync(process.execPath, ["-e", probe], { stdio: "ignore", timeout: 10_000 }).status === 0;
}

export function tempDir(prefix: string): string {
    return mkdtempSync(path.join(tmpdir(), `mrs-e2e-${prefix}-`));
}

/** Best-effort removal of a test's temp dir (data written by containers may belong to other uids). */
export function removeTempDir(dir: string | undefined): void {
    if (!dir || process.env.MRS_E2E_KEEP) return;
    try {
        rmSync(dir, { recursive: true, force: true });
    } catch (err) {
        process.stderr.write(`e2e: could not remove ${dir}: ${(err as Error).message}\n`);
    }
}

export function docker(): DockerApi {
    return new DockerApi(socketPathOf(undefined));
}

/**
 * Removes containers named `names` left behind by a crashed harness run (they carry the harness label).
 * A container with one of these names that the harness did not create belongs to someone: refuse.
 */
export async function clearLeftovers(names: string[], networks: string[] = []): Promise<void> {
    const api = docker();
    for (const name of names) {
        const c = await api.inspect("containers", name);
        if (!c) continue;
        if (c.Config?.Labels?.[HARNESS_LABEL] === undefined) {
            throw new Error(
                `a container named ${name} exists and was not created by the e2e harness: remove it or stop your dev stack`,
            );
        }
        await api.removeContainer(c.Id, 1);
    }
    for (const n of networks) {
        const net = await api.inspect("networks", n);
        if (net && Object.keys(net.Containers ?? {}).length === 0)
            await api.call("DELETE", `/networks/${net.Id}`, undefined, [404]);
    }
}

/** One Redis exchange over RESP on 127.0.0.1: AUTH then the command; returns the raw replies. */
export function redisExchange(port: number, password: string, commandLine: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const sock = connect(port, "127.0.0.1");
        let data = "";
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`no Redis reply on 127.0.0.1:${port}: ${JSON.stringify(data)}`));
        }, 5000);
        sock.on("data", (c) => {
            data += c.toString("utf8");
            if (data.split("\r\n").length > 2) {
                clearTimeout(timer);
                sock.end();
                resolve(data);
            }
        });
        sock.on("error", (err) => {
            clearTimeout(timer);
            reject(err);
        });
        const args = commandLine.split(" ");
        const resp = (parts: string[]) =>
            `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join("")}`;
        sock.write(resp(["AUTH", password]) + resp(args));
    });
}

/**
 * One e2e file at a time on the engine: the stacks use fixed container names, and the odin file restarts
 * the engine. A lock directory held from a file's beforeAll to its afterAll (other files wait for it).
 */
export async function lockEngine(): Promise<() => void> {
    const lock = path.join(tmpdir(), "mrs-e2e-engine.lock");
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
        try {
            mkdirSync(lock);
            writeFileSync(path.join(lock, "pid"), String(process.pid));
            return () => rmSync(lock, { recursive: true, force: true });
        } catch {
            // Held: by a live process, wait; by a dead one (a crashed run), take it over.
            const holder = Number(readFileSyncSafe(path.join(lock, "pid")));
            if (holder && !processAlive(holder)) rmSync(lock, { recursive: true, force: true });
            else if (Date.now() > deadline) throw new Error(`the e2e engine lock ${lock} is still held by ${holder}`);
            else await new Promise((r) => setTimeout(r, 500));
        }
    }
}

function readFileSyncSafe(file: string): string {
    try {
        return readFileSync(file, "utf8");
    } catch {
        return "";
    }
}

export function processAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

/**
 * The dev stack in a private copy of the project under `work` (tests may edit it), with its own data
 * directory and Postgres, Redis and the app published on free ports of 127.0.0.1; `overrides` on top.
 */
export async function devStack(
    work: string,
    overrides: Record<string, string | null> = {},
): Promise<StackRun & { dataDir: string }> {
    const dataDir = path.join(work, "data");
    const [postgresPort, redisPort, appPort] = [await freePort(), await freePort(), await freePort()];
    return {
        projectDir: copyProject(path.join(work, "project")),
        stack: "dev",
        workDir: path.join(work, "harness"),
        dataDir,
        overrides: {
            dataDir,
            postgresPort: String(postgresPort),
            redisPort: String(redisPort),
            appPort: String(appPort),
            ...overrides,
        },
    };
}
