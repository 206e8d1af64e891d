// The deploy lock (issue 20, item 5) on the real engine: one change at a time per server. Holders are real
// processes running `scripts/deployLock.ts run` in a copy of the project, with a stack file of the test's
// own (its own container prefix, so no lock of a real dev stack on this engine is touched); they are
// killed the ways runs die (SIGKILL, SIGSTOP, SIGTERM). `scripts/pulumi.sh` runs against a stand-in `pulumi`
// on PATH that reports whether the lock is held while it runs (the real CLI is not on this machine), and
// `npm run restore`'s script refuses under a held lock. Last, the same over SSH (DOCKER_HOST=ssh://...),
// as a laptop reaches odin.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lockStatus, whoAmI } from "../../scripts/deployLock";
import { stackTarget, type StackTarget } from "../../scripts/target";
import { copyProject } from "./harness/run";
import { sshHostAvailable, startSshDockerHost, type SshDockerHost } from "./sshHost";
import { processAlive, removeTempDir, requireEngine, tempDir } from "./support";
import { takeTurnsOnEngine } from "./hooks";

const run$ = promisify(execFile);
const STACK = "locktest";
const PREFIX = "mrs-e2e-lock";
const LOCK = `${PREFIX}-deploy-lock`;

const engine = requireEngine();
/** Who the holders are, as a pattern (in GitHub Actions it carries the run's address: dots, slashes, brackets). */
const WHO = whoAmI().replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const sshProblem = engine ? sshHostAvailable() : undefined;
if (sshProblem && process.env.CI) throw new Error(`CI is set but ${sshProblem}: .ci/setup must provide it`);
if (sshProblem)
    process.stderr.write(`\n!!! THE DEPLOY LOCK OVER SSH IS NOT TESTED: ${sshProblem}. In CI this fails. !!!\n\n`);

interface Holder {
    child: ChildProcess;
    pid: number;
    stderr(): string;
    /** The holder's exit code (128 + signal number when a signal ended it). */
    exit: Promise<number>;
    /** The pid of the command it holds the lock for (a shell that wrote it, then became `sleep`). */
    commandPid(): number;
}

takeTurnsOnEngine(engine);

describe.skipIf(!engine)("the deploy lock on the engine", () => {
    let work: string;
    let project: string;
    let target: StackTarget;
    let ssh: SshDockerHost | undefined;
    const holders: Holder[] = [];
    let counter = 0;

    /** `scripts/deployLock.ts` as pulumi.sh runs it: one node process. */
    async function cli(
        args: string[],
        env: Record<string, string> = {},
    ): Promise<{ code: number; stdout: string; stderr: string }> {
        try {
            const { stdout, stderr } = await run$(
                process.execPath,
                ["--import", "tsx", "scripts/deployLock.ts", ...args],
                { cwd: project, env: { ...process.env, ...env }, timeout: 60_000 },
            );
            return { code: 0, stdout, stderr };
        } catch (err) {
            const e = err as { code?: number; stdout?: string; stderr?: string };
            return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
        }
    }

    /** A holder of the lock for `what`, running a long sleep; resolves once the engine shows its lock. */
    async function hold(
        what: string,
        extra: string[] = [],
        stack = STACK,
        env: Record<string, string> = {},
    ): Promise<Holder> {
        const pidFile = path.join(work, `command-${++counter}.pid`);
        const child = spawn(
            process.execPath,
            [
                "--import",
                "tsx",
                "scripts/deployLock.ts",
                "run",
                "--stack",
                stack,
                "--what",
                what,
                ...extra,
                "--",
                "sh",
                "-c",
                `echo $$ > ${pidFile}; exec sleep 120`,
            ],
            { cwd: project, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] },
        );
        let stderr = "";
        child.stderr!.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
        const exit = new Promise<number>((resolve) =>
            child.once("exit", (code, signal) => resolve(code ?? (signal === "SIGKILL" ? 137 : 128))),
        );
        const h: Holder = {
            child,
            pid: child.pid!,
            stderr: () => stderr,
            exit,
            commandPid: () => Number(readFileSync(pidFile, "utf8")),
        };
        holders.push(h);
        const deadline = Date.now() + 30_000;
        while (!existsSync(pidFile)) {
            if (child.exitCode !== null || Date.now() > deadline)
                throw new Error(`the holder did not take the lock: ${stderr}`);
            await new Promise((r) => setTimeout(r, 100));
        }
        return h;
    }

    /** Ends a holder's command (as the command finishing would), then waits for the holder to exit. */
    async function finish(h: Holder): Promise<number> {
        process.kill(h.commandPid(), "SIGTERM");
        return h.exit;
    }

    const state = async () => lockStatus(target);

    beforeAll(async () => {
        work = tempDir("lock");
        project = copyProject(path.join(work, "project"));
        writeFileSync(
            path.join(project, `Pulumi.${STACK}.yaml`),
            `config:\n  marvel-rivals-stats:containerPrefix: ${PREFIX}\n`,
        );
        target = stackTarget(STACK, project);
        // A lock left by a crashed run of this file: it is this file's own name.
        await run$("docker", ["rm", "--force", LOCK]).catch(() => undefined);
    });

    afterAll(async () => {
        for (const h of holders) {
            for (const pid of [
                h.pid,
                (() => {
                    try {
                        return h.commandPid();
                    } catch {
                        return 0;
                    }
                })(),
            ])
                if (pid && processAlive(pid)) {
                    process.kill(pid, "SIGCONT");
                    process.kill(pid, "SIGKILL");
                }
        }
        await run$("docker", ["rm", "--force", LOCK]).catch(() => undefined);
        await ssh?.stop();
        removeTempDir(work);
    });

    it("a second taker refuses at once, naming the holder, its command and since when; the first's exit code passes through", async () => {
        const first = await hold("up");
        const held = await state();
        expect(held).toMatchObject({ state: "held", holder: { what: "up", pid: first.pid, who: whoAmI() } });
        const since = held.state === "held" ? held.holder.since : "";

        const marker = path.join(work, "second-ran");
        const second = await cli(["run", "--stack", STACK, "--what", "restore", "--", "touch", marker]);
        expect(second.code).toBe(1);
        expect(second.stderr).toContain(
            `lock: the deploy lock of stack ${STACK} (${LOCK} on the local engine) is held by ${whoAmI()} for \`up\` (pid ${first.pid}) since ${since}`,
        );
        expect(second.stderr).toContain(
            `if you know that run is gone, release it: npm run lock -- release --stack ${STACK}`,
        );
        expect(existsSync(marker)).toBe(false);

        // SIGTERM to the command: the holder passes its exit code on (143) and releases the lock.
        expect(await finish(first)).toBe(143);
        expect(await state()).toEqual({ state: "free" });
    });

    it("a second taker with --lock-wait gets the lock once the first ends, and runs its command then", async () => {
        const first = await hold("up");
        const waiter = spawn(
            process.execPath,
            ["--import", "tsx", "scripts/deployLock.ts", "run", "--stack", STACK, "--what", "destroy"].concat([
                "--lock-wait",
                "30",
                "--",
                "sh",
                "-c",
                "exit 5",
            ]),
            { cwd: project, stdio: ["ignore", "ignore", "pipe"] },
        );
        let stderr = "";
        waiter.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
        const code = new Promise<number | null>((resolve) => waiter.once("exit", resolve));
        await expect
            .poll(() => stderr, { timeout: 20_000 })
            .toContain(
                `lock: waiting up to 30 s for the deploy lock of stack ${STACK}, held by ${whoAmI()} for \`up\` (pid ${first.pid})`,
            );
        expect(processAlive(first.pid)).toBe(true);
        await finish(first);
        expect(await code).toBe(5);
        expect(stderr).toContain(`lock: holding the deploy lock of stack ${STACK} for \`destroy\``);
        expect(await state()).toEqual({ state: "free" });
    });

    it("a holder killed with SIGKILL frees the lock at once; the next taker says whose lock it removed", async () => {
        const first = await hold("up");
        first.child.kill("SIGKILL");
        await first.exit;
        // The lease ends with the holder's end of the pipe, not with any timeout.
        const deadline = Date.now() + 5000;
        while ((await state()).state === "held" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
        expect(await state()).toMatchObject({
            state: "stale",
            reason: expect.stringMatching(/^its holder went away without releasing it at /),
        });
        const next = await cli(["run", "--stack", STACK, "--what", "restore", "--", "true"]);
        expect(next.code).toBe(0);
        expect(next.stderr).toMatch(
            new RegExp(
                `lock: removed a stale deploy lock of stack ${STACK} held by ${WHO} for \`up\` \\(pid ${first.pid}\\) since \\S+: its holder went away without releasing it at `,
            ),
        );
        expect(await state()).toEqual({ state: "free" });
    });

    it("a live holder keeps its lock past its lease by heartbeats; one that falls silent (stopped, or cut off) loses it, and the next taker reports it", async () => {
        const first = await hold("up", ["--lease-seconds", "3"]);
        await new Promise((r) => setTimeout(r, 4500));
        expect(await state()).toMatchObject({ state: "held", holder: { pid: first.pid } });
        process.kill(first.pid, "SIGSTOP");
        const next = await cli(["run", "--stack", STACK, "--what", "rollback", "--lock-wait", "20", "--", "true"]);
        expect(next.code).toBe(0);
        expect(next.stderr).toContain(`held by ${whoAmI()} for \`up\` (pid ${first.pid}) since`);
        expect(next.stderr).toMatch(/: its holder fell silent \(no heartbeat for 3 s\) and its lease ended at /);
        process.kill(first.pid, "SIGCONT");
        await finish(first);
    });

    it("a lock past its TTL is taken over and reported; its old holder is warned and leaves the new lock alone", async () => {
        const first = await hold("up", ["--lock-ttl", "1s"]);
        const old = await state();
        const expires = old.state === "held" ? old.holder.expires : "";
        await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expires) + 200 - Date.now())));
        const second = await hold("rotate");
        expect(second.stderr()).toContain(
            `lock: removed a stale deploy lock of stack ${STACK} held by ${whoAmI()} for \`up\` (pid ${first.pid}) since`,
        );
        expect(second.stderr()).toContain(`: expired at ${expires}`);
        // The old holder learns it lost the lock; when it ends, it removes only its own lock.
        await expect
            .poll(() => first.stderr(), { timeout: 10_000 })
            .toContain(`lock: WARNING: the deploy lock of stack ${STACK} ended while \`up\` still held it`);
        await finish(first);
        expect(await state()).toMatchObject({ state: "held", holder: { what: "rotate", pid: second.pid } });
        await finish(second);
        expect(await state()).toEqual({ state: "free" });
    });

    it("npm run lock -- status says who holds it; release removes it and says whose it was", async () => {
        expect((await cli(["status", "--stack", STACK])).stdout).toBe(`the deploy lock of stack ${STACK} is free\n`);
        const first = await hold("restore");
        const status = await cli(["status", "--stack", STACK]);
        expect(status.stdout).toMatch(
            new RegExp(
                `^the deploy lock of stack ${STACK} is held by ${WHO} for \`restore\` \\(pid ${first.pid}\\) since \\S+, expires \\S+\\n$`,
            ),
        );
        const json = JSON.parse((await cli(["status", "--stack", STACK, "--json"])).stdout);
        expect(json).toMatchObject({
            stack: STACK,
            name: LOCK,
            state: "held",
            holder: { what: "restore", pid: first.pid },
        });

        const released = await cli(["release", "--stack", STACK]);
        expect(released.code).toBe(0);
        expect(released.stdout).toContain(
            `released the deploy lock of stack ${STACK} held by ${whoAmI()} for \`restore\` (pid ${first.pid}) since`,
        );
        expect(released.stdout).toContain("it was live; if that run is still going, it now runs without the lock");
        expect(await state()).toEqual({ state: "free" });
        await finish(first);
        expect((await cli(["release", "--stack", STACK])).stdout).toContain("is free");
    });

    it("a lock that cannot start (an image without bash) refuses, saying why, and leaves no container behind", async () => {
        const image = "mrs-e2e-lock/no-bash:1";
        // An image with no files at all: the engine creates the container, and starting it fails.
        const empty = path.join(work, "empty.tar");
        await run$("tar", ["cf", empty, "--files-from", "/dev/null"]);
        await run$("docker", ["import", empty, image]);
        try {
            writeFileSync(
                path.join(project, "Pulumi.nobash.yaml"),
                `config:\n  marvel-rivals-stats:containerPrefix: ${PREFIX}\n  marvel-rivals-stats:postgresImage: ${image}\n`,
            );
            const marker = path.join(work, "nobash-ran");
            const r = await cli(["run", "--stack", "nobash", "--what", "up", "--", "touch", marker]);
            expect(r.code).toBe(1);
            expect(r.stderr).toContain(
                `lock: could not start the deploy lock ${LOCK} on the local engine (it runs bash from the stack's postgresImage, ${image}): `,
            );
            expect(r.stderr).toContain('"bash": executable file not found');
            expect(r.stderr).not.toContain("WARNING");
            expect(existsSync(marker)).toBe(false);
            expect(await state()).toEqual({ state: "free" });
        } finally {
            await run$("docker", ["rmi", "--force", image]).catch(() => undefined);
        }
    });

    it("scripts/pulumi.sh runs up and destroy under the lock, preview without it, and refuses up while another change holds it", async () => {
        // A stand-in `pulumi`: says what it was asked and what the engine shows under the lock's name.
        const bin = path.join(work, "bin");
        mkdirSync(bin, { recursive: true });
        writeFileSync(
            path.join(bin, "pulumi"),
            [
                "#!/bin/sh",
                '[ "$1" = stack ] && exit 0',
                'echo "pulumi $*"',
                `l=$(docker inspect --format 'lock={{index .Config.Labels "marvel-rivals-stats.deploy-lock.what"}}' ${LOCK} 2>/dev/null) || l=lock=none`,
                'echo "$l"',
                "exit 4",
                "",
            ].join("\n"),
        );
        chmodSync(path.join(bin, "pulumi"), 0o755);
        const env = {
            ...process.env,
            PATH: `${bin}:${path.dirname(process.execPath)}:${process.env.PATH}`,
            PULUMI_STACK: STACK,
            PULUMI_CONFIG_PASSPHRASE: "not-a-secret-e2e",
        };
        const sh = async (...args: string[]) => {
            try {
                const r = await run$("bash", ["scripts/pulumi.sh", ...args], { cwd: project, env, timeout: 60_000 });
                return { code: 0, ...r };
            } catch (err) {
                const e = err as { code: number; stdout: string; stderr: string };
                return { code: e.code, stdout: e.stdout, stderr: e.stderr };
            }
        };
        const up = await sh("up", "--yes", "--lock-wait", "5");
        expect(up.stdout).toBe(`pulumi up --yes --stack ${STACK}\nlock=up\n`);
        expect(up.code).toBe(4);
        // The lock's options, in either form, never reach pulumi.
        expect((await sh("destroy", "--lock-wait=5", "--yes")).stdout).toBe(
            `pulumi destroy --yes --stack ${STACK}\nlock=destroy\n`,
        );
        expect((await sh("preview", "--diff")).stdout).toBe(`pulumi preview --diff --stack ${STACK}\nlock=none\n`);
        expect(await state()).toEqual({ state: "free" });

        const first = await hold("restore");
        const refused = await sh("up", "--yes");
        expect(refused.code).toBe(1);
        expect(refused.stdout).toBe("");
        expect(refused.stderr).toContain(`is held by ${whoAmI()} for \`restore\` (pid ${first.pid})`);
        await finish(first);
    });

    it("npm run restore refuses while another change holds the lock, and releases it however it ends", async () => {
        const first = await hold("up");
        const restore = async () => {
            try {
                await run$(process.execPath, ["--import", "tsx", "scripts/backups.ts", "restore", "--stack", STACK], {
                    cwd: project,
                    timeout: 60_000,
                });
                return { code: 0, stderr: "" };
            } catch (err) {
                return err as { code: number; stderr: string };
            }
        };
        const refused = await restore();
        expect(refused.code).toBe(1);
        expect(refused.stderr).toContain(
            `restore: the deploy lock of stack ${STACK} (${LOCK} on the local engine) is held by ${whoAmI()} for \`up\` (pid ${first.pid})`,
        );
        await finish(first);
        // Free, it takes the lock, fails for want of a backup container, and lets the lock go.
        const failed = await restore();
        expect(failed.code).toBe(1);
        expect(failed.stderr).toContain(`restore: no backup container ${PREFIX}-backup`);
        expect(await state()).toEqual({ state: "free" });
    });

    it.skipIf(!!sshProblem)(
        "over SSH (DOCKER_HOST=ssh://...): a second taker sees the first's lock, and a SIGKILLed holder's lease ends",
        async () => {
            ssh = await startSshDockerHost(path.join(work, "ssh"));
            writeFileSync(
                path.join(project, "Pulumi.lockssh.yaml"),
                `config:\n  marvel-rivals-stats:dockerHost: ${ssh.dockerHost}\n  marvel-rivals-stats:containerPrefix: ${PREFIX}\n`,
            );
            const first = await hold("up", [], "lockssh", ssh.env);
            // The same lock, seen from the local engine and from another client over SSH.
            expect(await state()).toMatchObject({ state: "held", holder: { pid: first.pid } });
            const second = await cli(["run", "--stack", "lockssh", "--what", "up", "--", "true"], ssh.env);
            expect(second.code).toBe(1);
            expect(second.stderr).toContain(
                `(${LOCK} on ${ssh.dockerHost}) is held by ${whoAmI()} for \`up\` (pid ${first.pid})`,
            );

            first.child.kill("SIGKILL");
            await first.exit;
            const deadline = Date.now() + 10_000;
            while ((await state()).state === "held" && Date.now() < deadline)
                await new Promise((r) => setTimeout(r, 200));
            expect(await state()).toMatchObject({ state: "stale" });
            const third = await cli(["run", "--stack", "lockssh", "--what", "up", "--", "true"], ssh.env);
            expect(third.code).toBe(0);
            expect(third.stderr).toContain("its holder went away without releasing it");
            expect(await state()).toEqual({ state: "free" });
        },
        120_000,
    );
});
