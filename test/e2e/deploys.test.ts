// App deploys on the odin stack (issue 20), over a real SSH connection, with the server's reverse proxy in
// front: Pulumi.odin.yaml as committed (the app behind Caddy on its domain, no host port), with only the
// Docker host, the data directory and a shorter readiness bound overridden. Caddy (the stand-in, Debian's
// caddy) runs on the `caddy` network with the Caddyfile caddy-docker-proxy writes from the app's labels.
// Every change runs under a steady load through Caddy: half /health, half a route that queries the
// database, on new and on kept-alive connections. A zero-downtime update; a version that never becomes
// ready; a failed migration; a rollback and the deploy after it.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../app/test/support/ports";
import { lockStatus, withDeployLock } from "../../scripts/deployLock";
import { planRollback } from "../../scripts/rollback";
import { retireLoginRole } from "../../scripts/rotate";
import { stackTarget } from "../../scripts/target";
import { caddyfileFromLabels, failures, startCaddy, startLoad, type Outcome } from "./caddy";
import { httpGet } from "./clients";
import { copyProject, opsByName, pulumiDestroy, pulumiPreview, pulumiUp, type StackRun } from "./harness/run";
import { HARNESS_LABEL } from "./harness/realEngineMocks";
import { sshHostAvailable, startSshDockerHost, type SshDockerHost } from "./sshHost";
import { clearLeftovers, docker, removeTempDir, requireEngine, tempDir } from "./support";
import { expectOk, takeTurnsOnEngine } from "./hooks";

const FIXED = ["marvel-rivals-postgres", "marvel-rivals-redis", "marvel-rivals-backup", "marvel-rivals-app"];
const NETWORK = "marvel-rivals-network";
const PROXY_NETWORK = "caddy";
const CADDY = "mrs-e2e-caddy";
const DOMAIN = "stats.odin.home.arpa"; // Pulumi.odin.yaml's
const READY_TIMEOUT = 20;
const LONG = 20 * 60_000;
/** The load: at least 50 requests a second for the whole change. */
const RATE = 50;

const engine = requireEngine();
const sshProblem = engine ? sshHostAvailable() : undefined;
if (sshProblem && process.env.CI) throw new Error(`CI is set but ${sshProblem}: .ci/setup must provide it`);

/** The app's containers of the stack (every version), newest first. */
async function appContainers(): Promise<{ name: string; id: string; image: string; running: boolean }[]> {
    const list = await docker().call(
        "GET",
        `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: ["marvel-rivals-stats.role=app", "marvel-rivals-stats.stack=odin"] }))}`,
    );
    return (list as any[]).map((c) => ({
        name: String(c.Names[0]).replace(/^\//, ""),
        id: c.Id,
        image: c.ImageID,
        running: c.State === "running",
    }));
}

/** Removes what a crashed earlier run of this file left: its app versions and Caddy. */
async function clearVersions(): Promise<void> {
    for (const c of await appContainers()) {
        const info = await docker().inspect("containers", c.id);
        if (info?.Config?.Labels?.[HARNESS_LABEL] !== undefined) await docker().removeContainer(c.id, 1);
    }
    await clearLeftovers([CADDY]);
}

/** Edits a file of the project copy: the next up builds a new app image. */
function edit(run: StackRun, file: string, change: (text: string) => string): () => void {
    const full = path.join(run.projectDir, file);
    const before = readFileSync(full, "utf8");
    writeFileSync(full, change(before));
    return () => writeFileSync(full, before);
}

takeTurnsOnEngine(engine && !sshProblem);

describe.skipIf(!engine || !!sshProblem)("app deploys on the odin stack, behind Caddy, over SSH", () => {
    let work: string;
    let ssh: SshDockerHost;
    let run: StackRun;
    let caddyPort: number;
    let createdProxy = false;
    let firstRelease: string;
    const through = (p: string) => httpGetHost(caddyPort, p);

    /** `fn` with the SSH host's client settings in this process's environment, as a user's shell has them. */
    async function asUser<T>(fn: () => Promise<T>): Promise<T> {
        const saved = Object.fromEntries(Object.keys(ssh.env).map((k) => [k, process.env[k]]));
        Object.assign(process.env, ssh.env);
        try {
            return await fn();
        } finally {
            for (const [k, v] of Object.entries(saved)) {
                if (v === undefined) delete process.env[k];
                else process.env[k] = v;
            }
        }
    }

    /** `fn` under the load; returns its result with every request's outcome. */
    async function underLoad<T>(fn: () => Promise<T>): Promise<{ result: T; outcomes: Outcome[] }> {
        const load = startLoad({ port: caddyPort, host: DOMAIN, perSecond: RATE });
        try {
            // A second of load before and after the change: the steady state on both sides is measured too.
            await new Promise((r) => setTimeout(r, 1000));
            const result = await fn();
            await new Promise((r) => setTimeout(r, 1000));
            return { result, outcomes: await load.stop() };
        } catch (err) {
            await load.stop();
            throw err;
        }
    }

    beforeAll(async () => {
        await clearLeftovers(FIXED, [NETWORK]);
        await clearVersions();
        work = tempDir("deploys");
        ssh = await startSshDockerHost(path.join(work, "ssh"));
        const project = copyProject(path.join(work, "project"));
        caddyPort = await freePort();
        if (!(await docker().inspect("networks", PROXY_NETWORK))) {
            await docker().call("POST", "/networks/create", { Name: PROXY_NETWORK });
            createdProxy = true;
        }
        run = {
            projectDir: project,
            stack: "odin",
            workDir: path.join(work, "harness"),
            env: ssh.env,
            overrides: {
                dockerHost: ssh.dockerHost,
                dataDir: path.join(work, "appdata"),
                appReadyTimeoutSeconds: String(READY_TIMEOUT),
                // Two kept releases: f's deploy is the third distinct image, and prunes the first.
                appReleasesKept: "2",
            },
        };
        // npm run rollback reads the stack file's dockerHost: the test's SSH host, as a user points it at theirs.
        const stackFile = path.join(project, "Pulumi.odin.yaml");
        writeFileSync(
            stackFile,
            readFileSync(stackFile, "utf8").replace(
                "marvel-rivals-stats:dockerHost: ssh://root@odin",
                `marvel-rivals-stats:dockerHost: ${ssh.dockerHost}`,
            ),
        );
    }, LONG);

    afterAll(async () => {
        const steps: (() => Promise<unknown>)[] = [
            async () => run && (await pulumiDestroy(run)),
            () => clearLeftovers([...FIXED, CADDY], [NETWORK]),
            clearVersions,
            async () => {
                const net = createdProxy ? await docker().inspect("networks", PROXY_NETWORK) : undefined;
                if (net) await docker().call("DELETE", `/networks/${net.Id}`, undefined, [404]);
            },
            async () => ssh?.stop(),
            async () => removeTempDir(work),
        ];
        for (const step of steps)
            await step().catch((err: Error) => process.stderr.write(`deploys clean-up: ${err.message}\n`));
    }, LONG);

    it(
        "a. cold up: one app version behind Caddy on the stack's domain, no host port, its release recorded",
        async () => {
            const up = await pulumiUp(run);
            expectOk(up);
            const apps = await appContainers();
            expect(apps).toHaveLength(1);
            expect(apps[0].name).toMatch(/^marvel-rivals-app-[0-9a-f]{8}$/);
            expect(up.outputs.appContainer).toBe(apps[0].name);
            const info = await docker().inspect("containers", apps[0].id);
            expect(Object.values(info.HostConfig.PortBindings ?? {}).flat()).toEqual([]);
            expect(up.outputs.appRelease).toMatch(/^marvel-rivals-stats-app:odin-release-\d{8}T\d{6}Z$/);
            expect((await docker().inspect("images", up.outputs.appRelease)).Id).toBe(apps[0].image);
            firstRelease = apps[0].image;
            // The proxy as the server's caddy-docker-proxy runs it: the Caddyfile from the app's labels.
            const caddyfile = caddyfileFromLabels(info.Config.Labels, "http://");
            expect(caddyfile).toBe(
                `http://${DOMAIN} {\n\treverse_proxy marvel-rivals-app:8000 {\n\t\tlb_try_duration 10s\n\t\tlb_try_interval 250ms\n\t}\n}\n`,
            );
            await startCaddy({ name: CADDY, network: PROXY_NETWORK, port: caddyPort, caddyfile, dir: work });
            await eventually(async () => (await through("/health/ready")).status === 200);
            // Rows for the route the load queries.
            const seeded = spawnSync("docker", ["exec", apps[0].name, "seed"], { encoding: "utf8", timeout: 120_000 });
            expect(seeded.status, seeded.stderr).toBe(0);
            expect((await through("/api/stats/summary")).status).toBe(200);
        },
        LONG,
    );

    it(
        "b. an app update under load: no failed request; the new version starts beside the old, takes traffic once ready, and the old one is drained and removed at the end",
        async () => {
            const [old] = await appContainers();
            // Version b stays in the project copy: c's fix and e's rollback count from it.
            edit(run, "app/src/routes/health.ts", (t) => `${t}\n// e2e: version b\n`);
            const { result: up, outcomes } = await underLoad(() => pulumiUp(run));
            expectOk(up);
            expect(failures(outcomes)).toEqual([]);
            expect(outcomes.length).toBeGreaterThanOrEqual(Math.floor((up.wallMs / 1000) * RATE * 0.9));
            expect(new Set(outcomes.map((o) => `${o.path} ${o.keepAlive}`)).size).toBe(4);
            const ops = up.operations.filter((o) => o.name === "app-container");
            // Created first, deleted (the old version) only after the gate passed, at the end of the update.
            expect(ops.map((o) => o.op)).toEqual(["replace", "delete-replaced"]);
            expect(ops[1].start).toBeGreaterThanOrEqual(opsByName(up)["app-ready"].end);
            const apps = await appContainers();
            expect(apps.map((a) => a.name)).toEqual([up.outputs.appContainer]);
            expect(apps[0].name).not.toBe(old.name);
            expect(apps[0].image).not.toBe(old.image);
            process.stderr.write(`app update: ${up.wallMs} ms, ${outcomes.length} requests, 0 failed\n`);
        },
        LONG,
    );

    it(
        "c. a version that never becomes ready never takes traffic: the up fails within the bound naming it and why, the old version serves throughout, and the up after the fix works",
        async () => {
            const [serving] = await appContainers();
            // A version that starts and answers liveness but never reaches its database (a wrong port): were it
            // to take traffic, the database route would answer 503.
            const undo = edit(run, "app/src/db.ts", (t) =>
                t.replace("connectionString: databaseUrl,", 'connectionString: databaseUrl.replace(":5432/", ":1/"),'),
            );
            let failed: Awaited<ReturnType<typeof pulumiUp>>;
            let outcomes: Outcome[];
            // Meanwhile, from the proxy's network: whether the new version accepts a connection at all. Its
            // port stays closed, so no proxy, whatever order it tries the alias's addresses in, reaches it.
            const accepted: boolean[] = [];
            let probing = true;
            const prober = (async () => {
                while (probing) {
                    const fresh = (await appContainers()).find((a) => a.name !== serving.name && a.running);
                    if (fresh) accepted.push(await acceptsConnections(fresh.name));
                    await new Promise((r) => setTimeout(r, 500));
                }
            })();
            try {
                ({ result: failed, outcomes } = await underLoad(() => pulumiUp(run)));
            } finally {
                probing = false;
                await prober;
                undo();
            }
            expect(accepted.length).toBeGreaterThanOrEqual(5);
            expect(accepted.filter(Boolean)).toEqual([]);
            expect(failed.ok).toBe(false);
            expect(failures(outcomes)).toEqual([]);
            const bad = (await appContainers()).find((a) => a.name !== serving.name)!;
            expect(failed.error).toContain(
                `app: ${bad.name} did not answer /health/ready with 200 within ${READY_TIMEOUT} s (appReadyTimeoutSeconds): it is stopped and takes no traffic`,
            );
            // Its last readiness answer and log name the cause.
            expect(failed.error).toMatch(/last readiness answer: .*connect ECONNREFUSED/);
            expect(failed.error).toMatch(/not ready yet: the port stays closed/);
            // Bounded: the build, the gate's bound, a little more; never the provider's minutes.
            const gate = failed.operations.find((o) => o.name === "app-ready")!;
            expect(gate.end - gate.start).toBeLessThan((READY_TIMEOUT + 15) * 1000);
            expect((await appContainers()).find((a) => a.name === bad.name)?.running).toBe(false);
            expect((await appContainers()).find((a) => a.name === serving.name)?.running).toBe(true);
            expect((await through("/health/ready")).status).toBe(200);
            // Nothing was recorded as a release: "previous" still means what it meant.
            expect(failed.outputs.appRelease).toBeUndefined();

            const { result: fixed, outcomes: during } = await underLoad(() => pulumiUp(run));
            expectOk(fixed);
            expect(failures(during)).toEqual([]);
            // The stopped version and the one that served are both gone; one version serves.
            const apps = await appContainers();
            expect(apps.map((a) => a.name)).toEqual([fixed.outputs.appContainer]);
            expect(apps[0].image).toBe(serving.image);
        },
        LONG,
    );

    it(
        "d. a failed migration changes nothing that serves: the old version keeps serving and stays 'previous', and a retry takes no second dump",
        async () => {
            const [serving] = await appContainers();
            const file = path.join(run.projectDir, "migrations", "901_e2e_broken.sql");
            writeFileSync(file, "SELECT * FROM e2e_no_such_table;\n");
            const backups = path.join(run.overrides!.dataDir!, "backups");
            try {
                for (const attempt of [1, 2]) {
                    const { result: up, outcomes } = await underLoad(() => pulumiUp(run));
                    expect(up.ok, `attempt ${attempt}`).toBe(false);
                    expect(up.error).toContain("901_e2e_broken");
                    expect(failures(outcomes)).toEqual([]);
                    expect(opsByName(up)["app-container"]).toBeUndefined();
                    expect((await appContainers()).map((a) => a.id)).toEqual([serving.id]);
                    expect(readdirSync(backups).filter((f) => f.endsWith("-before-901-e2e-broken.dump"))).toHaveLength(
                        1,
                    );
                }
            } finally {
                rmSync(file);
            }
        },
        LONG,
    );

    it(
        "e. rollback: back to the previous release within 30 s with no failed request, by an up the drift check agrees with; the next deploy returns to the code",
        async () => {
            const [serving] = await appContainers();
            const plan = await asUser(() => planRollback(stackTarget("odin", run.projectDir)));
            expect(plan.serving).toBe(serving.image);
            expect(plan.release.image).not.toBe(serving.image);
            // The version before the update in b (c's broken one was never released).
            const { result: back, outcomes } = await underLoad(() =>
                pulumiUp({ ...run, overrides: { ...run.overrides, appImage: plan.release.image } }),
            );
            expectOk(back);
            expect(failures(outcomes)).toEqual([]);
            expect(back.wallMs).toBeLessThan(30_000);
            const apps = await appContainers();
            expect(apps).toHaveLength(1);
            expect(apps[0].image).toBe(plan.release.image);
            expect(back.outputs.appRelease).toBe(`pinned to ${plan.release.image}`);
            expect(opsByName(back)["migrations-up"].op).toBe("same");
            // The state agrees with what runs: the drift check finds nothing to change.
            const drift = await pulumiPreview(
                { ...run, overrides: { ...run.overrides, appImage: plan.release.image } },
                { expectNoChanges: true },
            );
            expectOk(drift);
            process.stderr.write(`rollback: ${back.wallMs} ms, ${outcomes.length} requests, 0 failed\n`);

            // The next deploy (the pin removed, as `npm run up` does): the code's version again.
            const again = await pulumiUp(run);
            expectOk(again);
            expect((await appContainers()).map((a) => a.image)).toEqual([serving.image]);
        },
        LONG,
    );

    it(
        "f. two deploys at once: the second refuses at once, naming who holds the server's lock and since when; the first deploys",
        async () => {
            const t = stackTarget("odin", run.projectDir);
            edit(run, "app/src/routes/health.ts", (text) => `${text}\n// e2e: version f\n`);
            const [first, second] = await asUser(async () => {
                let started!: () => void;
                const holding = new Promise<void>((r) => (started = r));
                const one = withDeployLock(t, "up", () => {
                    started();
                    return pulumiUp(run);
                });
                await holding;
                const two = withDeployLock(t, "up", () => pulumiUp(run)).then(
                    () => "the second deploy ran",
                    (err: Error) => err.message,
                );
                return Promise.all([one, two]);
            });
            expectOk(first);
            expect(second).toMatch(
                /^the deploy lock of stack odin \(marvel-rivals-deploy-lock on ssh:\/\/[^)]+\) is held by .+ for `up` .*since \d{4}-\d\d-\d\dT.* one change at a time/,
            );
            expect((await appContainers()).map((a) => a.name)).toEqual([first.outputs.appContainer]);
            // A third distinct image released with two kept: the oldest release's tags are removed.
            const tags = ((await docker().call("GET", "/images/json")) as any[])
                .flatMap((i) => (i.RepoTags ?? []).map((tag: string) => [tag, i.Id]))
                .filter(([tag]) => tag.startsWith("marvel-rivals-stats-app:odin-release-"));
            expect(new Set(tags.map(([, id]) => id)).size).toBe(2);
            expect(tags.map(([, id]) => id)).not.toContain(firstRelease);
            // Released with the first deploy: the next change may go.
            expect((await asUser(() => lockStatus(t))).state).toBe("free");
        },
        LONG,
    );

    it(
        "g. npm run rotate -- db under load: no failed request, the database not restarted, the old password logs in nowhere, the state holds only the new one",
        async () => {
            const stateFile = path.join(run.workDir, "harness-state.json");
            const oldPassword = generatedDbPassword(stateFile);
            const oldAppPassword = generatedDbPassword(stateFile, "app-db-password");
            const pgBefore = (await docker().inspect("containers", "marvel-rivals-postgres")).Id;
            const startedBefore = psql("SELECT pg_postmaster_start_time()");
            const t = stackTarget("odin", run.projectDir);
            // What `npm run rotate -- db` does: the counter up, an up, then the old login role retired.
            run.overrides = { ...run.overrides, dbPasswordRotation: "1" };
            const { result: up, outcomes } = await underLoad(async () => {
                const r = await pulumiUp(run);
                if (r.ok) await asUser(() => retireLoginRole(t, "marvel_stats_a"));
                return r;
            });
            expectOk(up);
            expect(failures(outcomes)).toEqual([]);
            expect((await docker().inspect("containers", "marvel-rivals-postgres")).Id).toBe(pgBefore);
            expect(psql("SELECT pg_postmaster_start_time()")).toBe(startedBefore);
            const newPassword = generatedDbPassword(stateFile);
            const newAppPassword = generatedDbPassword(stateFile, "app-db-password");
            expect(newPassword).not.toBe(oldPassword);
            expect(newAppPassword).not.toBe(oldAppPassword);
            expect(newAppPassword).not.toBe(newPassword);
            const state = readFileSync(stateFile, "utf8");
            expect(state).not.toContain(oldPassword);
            expect(state).not.toContain(oldAppPassword);
            const [app] = await appContainers();
            const logsIn = (user: string, password: string) => canLogIn(app.name, user, password);
            // The app's new login role with the app's own new password; the owner with its own; neither
            // password opens the other's role (issue 24: the app's password never opens the owner).
            expect(logsIn("marvel_stats_b", newAppPassword)).toBe(true);
            expect(logsIn("marvel_stats", newPassword)).toBe(true);
            expect(logsIn("marvel_stats", newAppPassword)).toBe(false);
            expect(logsIn("marvel_stats_b", newPassword)).toBe(false);
            for (const user of ["marvel_stats_a", "marvel_stats_b", "marvel_stats"])
                for (const old of [oldPassword, oldAppPassword]) expect(logsIn(user, old), user).toBe(false);
            process.stderr.write(`password rotation: ${up.wallMs} ms, ${outcomes.length} requests, 0 failed\n`);
        },
        LONG,
    );

    it(
        "h. npm run rotate -- redis under load: no failed request (the app answers from PostgreSQL while the cache is replaced), and the new version reaches the cache with the new password",
        async () => {
            const [serving] = await appContainers();
            const redisBefore = (await docker().inspect("containers", "marvel-rivals-redis")).Id;
            run.overrides = { ...run.overrides, redisPasswordRotation: "1" };
            const { result: up, outcomes } = await underLoad(() => pulumiUp(run));
            expectOk(up);
            expect(failures(outcomes)).toEqual([]);
            expect((await docker().inspect("containers", "marvel-rivals-redis")).Id).not.toBe(redisBefore);
            const [app] = await appContainers();
            expect(app.name).not.toBe(serving.name);
            // Ready, not degraded: the cache answers the new version.
            expect((await through("/health/ready")).json().status).toBe("ready");
        },
        LONG,
    );
});

/** Whether `container`:8000 accepts a TCP connection, tried from the Caddy container (bash's /dev/tcp). */
function acceptsConnections(container: string): Promise<boolean> {
    return new Promise((resolve) => {
        const child = spawn("docker", ["exec", CADDY, "bash", "-c", 'exec 3<>"/dev/tcp/$0/8000"', container], {
            stdio: "ignore",
        });
        child.on("close", (code) => resolve(code === 0));
        child.on("error", () => resolve(false));
    });
}

/** psql in the Postgres container, through its local socket (the database publishes no port on odin). */
function psql(sql: string): string {
    const r = spawnSync(
        "docker",
        ["exec", "marvel-rivals-postgres", "psql", "-X", "-tA", "-U", "marvel_stats", "-d", "marvel_rivals", "-c", sql],
        { encoding: "utf8", timeout: 60_000 },
    );
    if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
    return r.stdout.trim();
}

/** The generated database password in the harness's state (the test's own file). */
function generatedDbPassword(stateFile: string, name = "db-password"): string {
    const state = JSON.parse(readFileSync(stateFile, "utf8"));
    const result = state.resources[`random:index/randomPassword:RandomPassword::${name}`]?.outputs?.result;
    const password = typeof result === "object" ? result?.value : result;
    if (!password) throw new Error("no generated database password in the state");
    return password;
}

/** Whether `user` logs in with `password` over the stack's network (from the app's container, with pg). */
function canLogIn(appContainer: string, user: string, password: string): boolean {
    const probe =
        "new (require('pg').Client)({ host: 'postgres', database: 'marvel_rivals' }).connect().then(() => process.exit(0), () => process.exit(1))";
    const r = spawnSync(
        "docker",
        ["exec", "-w", "/app", "-e", "PGUSER", "-e", "PGPASSWORD", appContainer, "node", "-e", probe],
        {
            env: { ...process.env, PGUSER: user, PGPASSWORD: password },
            timeout: 60_000,
        },
    );
    return r.status === 0;
}

/** GET through the proxy on 127.0.0.1 with the site's Host header. */
function httpGetHost(port: number, p: string) {
    return httpGet(`http://127.0.0.1:${port}${p}`, 5000, { Host: DOMAIN });
}

async function eventually(probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        if (await probe().catch(() => false)) return;
        if (Date.now() > deadline) throw new Error("timed out");
        await new Promise((r) => setTimeout(r, 250));
    }
}
