// `npm run bench:e2e` (issue 5): the dev stack on the real Docker engine, through the e2e harness, on a
// private copy of the project with a fresh dataDir and free ports on 127.0.0.1. Prints one line per figure:
//
//   cold_up_s                   a fresh stack (empty state and dataDir) up to every container healthy; the
//                               app image build included (with whatever build cache the engine holds)
//   cold_up_wall_s              the same, plus starting the process and loading the program
//   warm_rerun_s                the program run again with nothing changed
//   hot_reload_ms               an edit under app/src to the running dev container serving it
//   teardown_s                  destroy (containers and network; data stays)
//   postgres_ready_s, app_image_built_s, migrations_s, app_ready_s
//                               the pieces of the critical path, measured in the cold run
//   critical_path_s             max(Postgres ready, app image built) + migrations + app ready
//   cold_up_over_critical_path  how close the cold up comes to its critical path (goal <= 1.15)
//   postgres_accepting_s, app_answering_s
//                               the physical critical path of the same cold up, from outside, polled every
//                               50 ms: Postgres accepts TCP on its published port, the app answers /health
//   postgres_healthy_s, app_healthy_s
//                               the same moments as the stack sees them, gated by the health probes
//   probe_gated_over_physical   app_healthy_s / app_answering_s: what the probes' intervals cost
//   odin_cold_up_ssh_s, odin_warm_rerun_ssh_s, odin_cold_up_local_s, odin_warm_rerun_local_s
//                               the odin stack (runtime image) over SSH (test/e2e/sshHost.ts) and on the
//                               local socket, one after the other (needs root and sshd, as the e2e tier)
//   odin_ssh_over_local_cold, odin_ssh_over_local_warm
//                               the SSH overhead as a ratio
//   seeded_rows                 rows in the database after `seed` (what the backup figures are for)
//   backup_s, backup_dump_s, backup_check_s
//                               one on-demand backup of the seeded database (the agent's `once`, through
//                               `docker exec`): all of it, pg_dump at the snapshot, the restore into a
//                               scratch database with its row counts
//   restore_s                   `npm run restore -- --from <that dump>`: app stopped, safety dump, restore,
//                               migrations, app ready
//   app_update_s, app_update_failed_requests, app_update_requests
//                               the odin stack over SSH behind Caddy (as test/e2e/deploys.test.ts runs it),
//                               an app change deployed under 50 req/s through Caddy (half /health, half
//                               /api/stats/summary, which queries the database; new and kept-alive
//                               connections): the `up` from start to end (build, new version started,
//                               readiness gate, old version drained and removed), and the requests of the
//                               whole run that did not answer 200 (goal: 0)
//   rollback_s, rollback_failed_requests
//                               then `npm run rollback`'s up (appImage pinned to the previous release) under the
//                               same load (goal: under 30 s, 0 failed)
//   password_rotation_s, password_rotation_failed_requests
//                               then `npm run rotate -- db` (a new generated password, the app's other login role,
//                               the old one retired) under the same load (goal: 0 failed, no database restart)
//   postgres_in_place_change_s, postgres_in_place_change_downtime_s
//                               then a Postgres memory limit set (none -> 512 MB) under the same load: the up,
//                               and the span from the first to the last failed database request (0: none
//                               failed; the container is updated in place)
//
// Needs what the e2e tests need: a Docker engine and the images (.ci/provision.sh). Not a test: it fails
// only when a run fails.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { AGENT_ENTRYPOINT } from "../components/backups";
import { resultOf } from "../scripts/backups";
import { freePort } from "../app/test/support/ports";
import { copyProject, opsByName, pulumiDestroy, pulumiUp, type HarnessResult } from "../test/e2e/harness/run";
import { clearLeftovers, removeTempDir, tempDir } from "../test/e2e/support";
import { hotReloadLatency, httpGet } from "../test/e2e/clients";
import { connect } from "node:net";
import { docker } from "../test/e2e/support";
import { sshHostAvailable, startSshDockerHost } from "../test/e2e/sshHost";
import { caddyfileFromLabels, failures, startCaddy, startLoad } from "../test/e2e/caddy";
import { retireLoginRole } from "../scripts/rotate";
import { stackTarget } from "../scripts/target";

const CONTAINERS = ["marvel-rivals-postgres", "marvel-rivals-redis", "marvel-rivals-app"];
// With the backup container, which has no healthcheck: what a leftover run may hold.
const ALL_CONTAINERS = [...CONTAINERS, "marvel-rivals-backup"];

function ensureOk(what: string, r: HarnessResult): void {
    if (!r.ok) throw new Error(`${what} failed:\n${r.error}`);
}

const s = (ms: number) => (ms / 1000).toFixed(2);

async function main(): Promise<void> {
    await clearLeftovers(ALL_CONTAINERS, ["marvel-rivals-network"]);
    const work = tempDir("bench");
    const project = copyProject(path.join(work, "project"));
    const run = {
        projectDir: project,
        stack: "dev",
        workDir: path.join(work, "harness"),
        overrides: {
            dataDir: path.join(work, "data"),
            postgresPort: String(await freePort()),
            redisPort: String(await freePort()),
            appPort: String(await freePort()),
        },
    };
    try {
        const started = Date.now();
        const physical = watchPhysical(Number(run.overrides.postgresPort), Number(run.overrides.appPort), started);
        const cold = await pulumiUp(run);
        physical.stop();
        ensureOk("cold up", cold);
        const warm = await pulumiUp(run);
        ensureOk("warm re-run", warm);
        const changed = warm.operations.filter((o) => o.op !== "same");
        if (changed.length > 0)
            throw new Error(`the warm re-run changed ${changed.map((o) => `${o.name} (${o.op})`).join(", ")}`);
        const hotReload = await hotReloadLatency(project, `http://127.0.0.1:${run.overrides.appPort}`);
        if (hotReload < 0) throw new Error("the hot reload edit was not served within 10 s");
        const backup = await backupAndRestore(project, run.overrides.dataDir);
        const down = await pulumiDestroy(run);
        ensureOk("teardown", down);

        const ops = opsByName(cold);
        const need = (name: string) => {
            const op = ops[name];
            if (!op) throw new Error(`the cold run has no ${name} operation: did the program's resource names change?`);
            return op;
        };
        const pgReady = need("postgres-container").end;
        const imageBuilt = need("app-image").end;
        const migrations = need("migrations-up").end - need("migrations-up").start;
        // From the container's create to the readiness gate's pass (the provider does not wait: the gate does).
        const appReady = need("app-ready").end - need("app-container").start;
        const critical = Math.max(pgReady, imageBuilt) + migrations + appReady;

        const lines: [string, string, string][] = [
            ["cold_up_s", s(cold.durationMs), "s"],
            ["cold_up_wall_s", s(cold.wallMs), "s"],
            ["warm_rerun_s", s(warm.durationMs), "s"],
            ["warm_rerun_wall_s", s(warm.wallMs), "s"],
            ["hot_reload_ms", String(hotReload), "ms"],
            ["teardown_s", s(down.durationMs), "s"],
            ["postgres_ready_s", s(pgReady), "s"],
            ["app_image_built_s", s(imageBuilt), "s"],
            ["migrations_s", s(migrations), "s"],
            ["app_ready_s", s(appReady), "s"],
            ["critical_path_s", s(critical), "s"],
            ["cold_up_over_critical_path", (cold.durationMs / critical).toFixed(3), "ratio"],
            ["seeded_rows", String(backup.rows), "rows"],
            ["backup_s", s(backup.backupMs), "s"],
            ["backup_dump_s", s(backup.dumpMs), "s"],
            ["backup_check_s", s(backup.checkMs), "s"],
            ["restore_s", s(backup.restoreMs), "s"],
        ];
        // The stack's view, on the same clock as the outside poller (the harness's times start after the
        // process has started: add the difference).
        const offset = cold.wallMs - cold.durationMs;
        const pgHealthy = pgReady + offset;
        const appHealthy = need("app-ready").end + offset;
        if (physical.postgres === undefined || physical.app === undefined)
            throw new Error("the poller never saw Postgres accept a connection or the app answer");
        lines.push(
            ["postgres_accepting_s", s(physical.postgres), "s"],
            ["postgres_healthy_s", s(pgHealthy), "s"],
            ["app_answering_s", s(physical.app), "s"],
            ["app_healthy_s", s(appHealthy), "s"],
            ["probe_gated_over_physical", (appHealthy / physical.app).toFixed(3), "ratio"],
        );
        for (const [name, value, unit] of lines) process.stdout.write(`${name}: ${value} ${unit}\n`);
    } finally {
        await pulumiDestroy(run).catch(() => undefined);
        removeTempDir(work);
    }
    await odinOverSsh();
    await odinDeploys();
}

/** An app update and a rollback on the odin stack over SSH, behind Caddy, under load (see the header). */
async function odinDeploys(): Promise<void> {
    const problem = sshHostAvailable();
    if (problem) {
        process.stderr.write(`bench:e2e: odin deploys not measured: ${problem}\n`);
        return;
    }
    const work = tempDir("bench-deploys");
    const ssh = await startSshDockerHost(path.join(work, "ssh"));
    const createdProxy = !(await docker().inspect("networks", "caddy"));
    if (createdProxy) await docker().call("POST", "/networks/create", { Name: "caddy" });
    const project = copyProject(path.join(work, "project"));
    const run = {
        projectDir: project,
        stack: "odin",
        workDir: path.join(work, "harness"),
        env: ssh.env,
        overrides: { dockerHost: ssh.dockerHost, dataDir: path.join(work, "appdata") } as Record<string, string>,
    };
    const caddyPort = await freePort();
    const domain = "stats.odin.home.arpa";
    try {
        await clearLeftovers([...ALL_CONTAINERS, "mrs-bench-caddy"], ["marvel-rivals-network"]);
        const cold = await pulumiUp(run);
        ensureOk("odin cold up behind Caddy", cold);
        const app = await docker().inspect("containers", cold.outputs.appContainer);
        await startCaddy({
            name: "mrs-bench-caddy",
            network: "caddy",
            port: caddyPort,
            caddyfile: caddyfileFromLabels(app.Config.Labels, "http://"),
            dir: work,
        });
        spawnSync("docker", ["exec", cold.outputs.appContainer, "seed"], { timeout: 120_000 });
        const timed = async (what: string, overrides: Record<string, string>) => {
            const load = startLoad({ port: caddyPort, host: domain, perSecond: 50 });
            await new Promise((r) => setTimeout(r, 1000));
            const r = await pulumiUp({ ...run, overrides: { ...run.overrides, ...overrides } });
            await new Promise((r) => setTimeout(r, 1000));
            const outcomes = await load.stop();
            ensureOk(what, r);
            const failedDb = outcomes.filter((o) => o.status !== 200 && o.path !== "/health").map((o) => o.at);
            const downMs = failedDb.length > 0 ? Math.max(...failedDb) - Math.min(...failedDb) : 0;
            return { ms: r.wallMs, failed: failures(outcomes).length, requests: outcomes.length, downMs };
        };
        const file = path.join(project, "app", "src", "routes", "health.ts");
        writeFileSync(file, `${readFileSync(file, "utf8")}\n// bench: a new version\n`);
        const before = (await docker().inspect("containers", cold.outputs.appContainer)).Image as string;
        const update = await timed("app update", {});
        const back = await timed("rollback", { appImage: before });
        const memory = await timed("postgres memory limit", { appImage: before, postgresMemoryMb: "512" });
        // What `npm run rotate -- db` does: the counter up, an up, the old login role retired.
        const rotation = await timed("password rotation", {
            appImage: before,
            postgresMemoryMb: "512",
            dbPasswordRotation: "1",
        });
        const saved = { ...process.env };
        Object.assign(process.env, ssh.env);
        await retireLoginRole({ ...stackTarget("odin", project), host: ssh.dockerHost }, "marvel_stats_a").finally(
            () => {
                for (const k of Object.keys(ssh.env)) process.env[k] = saved[k];
            },
        );
        for (const [name, value, unit] of [
            ["app_update_s", s(update.ms), "s"],
            ["app_update_failed_requests", String(update.failed), "requests"],
            ["app_update_requests", String(update.requests), "requests"],
            ["rollback_s", s(back.ms), "s"],
            ["rollback_failed_requests", String(back.failed), "requests"],
            ["password_rotation_s", s(rotation.ms), "s"],
            ["password_rotation_failed_requests", String(rotation.failed), "requests"],
            ["postgres_in_place_change_s", s(memory.ms), "s"],
            ["postgres_in_place_change_downtime_s", s(memory.downMs), "s"],
        ])
            process.stdout.write(`${name}: ${value} ${unit}\n`);
    } finally {
        await pulumiDestroy(run).catch(() => undefined);
        await clearLeftovers(["mrs-bench-caddy"]).catch(() => undefined);
        if (createdProxy) {
            const net = await docker().inspect("networks", "caddy");
            if (net) await docker().call("DELETE", `/networks/${net.Id}`, undefined, [404]);
        }
        await ssh.stop();
        removeTempDir(work);
    }
}

/** Seeds the running dev stack, then times one on-demand backup and a `npm run restore` of it. */
async function backupAndRestore(project: string, dataDir: string) {
    const sh = (cmd: string, args: string[], cwd?: string) => {
        const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 600_000 });
        if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr || r.stdout}`);
        return r.stdout;
    };
    sh("docker", ["exec", "marvel-rivals-app", "seed"]);
    let t = Date.now();
    const out = sh("docker", ["exec", "marvel-rivals-backup", ...AGENT_ENTRYPOINT, "once", "bench"]);
    const backupMs = Date.now() - t;
    const [result, file] = resultOf(out) ?? [];
    if (result !== "passed") throw new Error(`the on-demand dump did not pass: ${out}`);
    const record = JSON.parse(readFileSync(path.join(dataDir, "backups", `${file}.json`), "utf8"));
    if (record.check !== "passed") throw new Error(`the bench backup failed its check: ${record.reason}`);
    t = Date.now();
    sh("npm", ["run", "-s", "restore", "--", "--from", file], project);
    const restoreMs = Date.now() - t;
    const rows = Object.values<number>(record.tables).reduce((a, b) => a + b, 0);
    return { rows, backupMs, dumpMs: record.dumpMs as number, checkMs: record.checkMs as number, restoreMs };
}

/** First moments, from outside, when Postgres accepts TCP and the app answers /health (polled every 50 ms). */
function watchPhysical(pgPort: number, appPort: number, t0: number) {
    const seen: { postgres?: number; app?: number; stop: () => void } = { stop: () => clearInterval(timer) };
    let busy = false;
    const timer = setInterval(async () => {
        if (busy) return;
        busy = true;
        if (seen.postgres === undefined && (await tcpAccepts(pgPort))) seen.postgres = Date.now() - t0;
        if (seen.app === undefined) {
            const res = await httpGet(`http://127.0.0.1:${appPort}/health`, 500).catch(() => undefined);
            if (res?.status === 200) seen.app = Date.now() - t0;
        }
        busy = false;
    }, 50);
    return seen;
}

function tcpAccepts(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const sock = connect(port, "127.0.0.1", () => {
            sock.destroy();
            resolve(true);
        });
        sock.on("error", () => resolve(false));
        sock.setTimeout(500, () => {
            sock.destroy();
            resolve(false);
        });
    });
}

/** The odin stack's cold up and warm re-run over SSH and on the local socket. */
async function odinOverSsh(): Promise<void> {
    const problem = sshHostAvailable();
    if (problem) {
        process.stderr.write(`bench:e2e: odin over SSH not measured: ${problem}\n`);
        return;
    }
    const work = tempDir("bench-odin");
    const ssh = await startSshDockerHost(path.join(work, "ssh"));
    const createdProxy = !(await docker().inspect("networks", "caddy"));
    if (createdProxy) await docker().call("POST", "/networks/create", { Name: "caddy" });
    const figures: Record<string, number> = {};
    try {
        for (const [via, dockerHost, env] of [
            ["ssh", ssh.dockerHost, ssh.env],
            ["local", "unix:///var/run/docker.sock", {}],
        ] as const) {
            await clearLeftovers(ALL_CONTAINERS, ["marvel-rivals-network"]);
            const run = {
                projectDir: path.join(__dirname, ".."),
                stack: "odin",
                workDir: path.join(work, `harness-${via}`),
                env,
                overrides: {
                    dockerHost,
                    dataDir: path.join(work, `appdata-${via}`),
                    appPort: String(await freePort()),
                    appBindAddress: "127.0.0.1",
                },
            };
            try {
                const cold = await pulumiUp(run);
                ensureOk(`odin cold up (${via})`, cold);
                const warm = await pulumiUp(run);
                ensureOk(`odin warm re-run (${via})`, warm);
                figures[`cold_${via}`] = cold.wallMs;
                figures[`warm_${via}`] = warm.wallMs;
            } finally {
                await pulumiDestroy(run).catch(() => undefined);
            }
        }
        for (const [name, value, unit] of [
            ["odin_cold_up_ssh_s", s(figures.cold_ssh), "s"],
            ["odin_warm_rerun_ssh_s", s(figures.warm_ssh), "s"],
            ["odin_cold_up_local_s", s(figures.cold_local), "s"],
            ["odin_warm_rerun_local_s", s(figures.warm_local), "s"],
            ["odin_ssh_over_local_cold", (figures.cold_ssh / figures.cold_local).toFixed(3), "ratio"],
            ["odin_ssh_over_local_warm", (figures.warm_ssh / figures.warm_local).toFixed(3), "ratio"],
        ])
            process.stdout.write(`${name}: ${value} ${unit}\n`);
    } finally {
        if (createdProxy) {
            const net = await docker().inspect("networks", "caddy");
            if (net) await docker().call("DELETE", `/networks/${net.Id}`, undefined, [404]);
        }
        await ssh.stop();
        removeTempDir(work);
    }
}

main().catch((err) => {
    process.stderr.write(`bench:e2e: ${(err as Error).message}\n`);
    process.exit(1);
});
