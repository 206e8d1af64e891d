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
//   postgres_accepting_s, app_answering_s (Postgres answers an SSLRequest; the app /health)
//                               the physical critical path of the same cold up, from outside, polled every
//                               50 ms: Postgres answers on its published port, the app answers /health
//   postgres_healthy_s, app_healthy_s
//                               the same moments as the stack sees them, gated by the health probes
//   probe_gated_over_physical   app_healthy_s / app_answering_s: what the probes' intervals cost
//   app_own_start_s             the app container's StartedAt to its first answer (polled every 50 ms)
//   physical_critical_path_s    postgres_accepting_s + migrations_s + app_own_start_s: the machine's time
//   cold_up_over_physical       cold_up_wall_s / physical_critical_path_s (goal <= 1.5)
//   noop_rerun_s                the warm re-run (nothing changes) inside the run (goal < 1 s), and its wall
//   idle_cpu_*, idle_probes_per_s, idle_cpu_per_probe_ms
//                               the stack idle for 20 s after the cold up: CPU of the engine's processes and
//                               of the containers, the probes per second their healthchecks make
//   odin_cold_up_ssh_s, odin_warm_rerun_ssh_s, odin_cold_up_local_s, odin_warm_rerun_local_s
//                               the odin stack (runtime image) over SSH (test/e2e/sshHost.ts, the harness
//                               dialing `ssh ... docker system dial-stdio` per connection as the provider
//                               does, with OpenSSH connection sharing) and on the local socket: the median
//                               of BENCH_RUNS (5) runs each, interleaved (needs root and sshd)
//   odin_ssh_over_local_cold, odin_ssh_over_local_warm
//                               the SSH overhead as a ratio of the medians (goals <= 1.15, <= 1.3)
//   odin_*_unshared_*           the same over SSH without connection sharing
//   ssh_peak_connections_*, ssh_peak_sessions_*, ssh_connections_*
//                               during each cold up over SSH: the most TCP connections to sshd at once
//                               (MaxStartups counts the unauthenticated ones), the most session commands at
//                               once (MaxSessions counts them per shared connection), connections in all
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
//   backup_offsite_s, offsite_pass_s, dr_restore_s, offsite_rows
//                               the dev stack with an off-site SFTP target on its network (test/e2e/offsiteTarget.ts),
//                               seeded: the push of one scheduled dump and its record to the target (restic
//                               backup and the retention, as the agent logs it), the whole pass (`backup-agent
//                               now`: dump, check in a temporary cluster, push); then with every local dump
//                               deleted, the restore from the off-site copy alone (`backup-agent fetch-offsite
//                               latest` + `npm run restore -- --from` it: app stopped, safety dump, restore,
//                               migrations, app ready); counted only when every row came back
//
// Needs what the e2e tests need: a Docker engine and the images (.ci/provision.sh). Not a test: it fails
// only when a run fails.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { AGENT_ENTRYPOINT } from "../components/backups";
import { resultOf } from "../scripts/backups";
import { freePort } from "../app/test/support/ports";
import { copyProject, opsByName, pulumiDestroy, pulumiUp, type HarnessResult } from "../test/e2e/harness/run";
import { clearLeftovers, lockEngine, removeTempDir, tempDir } from "../test/e2e/support";
import { hotReloadLatency, httpGet, withDb } from "../test/e2e/clients";
import { offsiteTarget, SFTP_CONTAINER } from "../test/e2e/offsiteTarget";
import { connect } from "node:net";
import { docker } from "../test/e2e/support";
import { sshHostAvailable, startSshDockerHost, type SessionCount } from "../test/e2e/sshHost";
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
        // The app container's own start, on the engine's clock (this machine's): the physical path's last leg
        // runs from there to the app's first answer.
        const appStartedAt = Date.parse((await docker().inspect("containers", "marvel-rivals-app"))?.State?.StartedAt);
        const idle = await idleProbeCpu(IDLE_WINDOW_MS);
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
        // The machine's own time: Postgres accepting (from the run's start), the migrations' step, the app's
        // own start (its container's StartedAt) to its first answer.
        const appOwnStart = physical.app - (appStartedAt - started);
        if (!(appOwnStart > 0)) throw new Error(`the app's start (${appStartedAt}) is not before its first answer`);
        const physicalPath = physical.postgres + migrations + appOwnStart;
        lines.push(
            ["app_own_start_s", s(appOwnStart), "s"],
            ["physical_critical_path_s", s(physicalPath), "s"],
            ["cold_up_over_physical", (cold.wallMs / physicalPath).toFixed(3), "ratio (goal <= 1.5)"],
            ["noop_rerun_s", s(warm.durationMs), "s (goal < 1)"],
            ["noop_rerun_wall_s", s(warm.wallMs), "s (with process start and program load)"],
            ["idle_cpu_engine_pct", idle.enginePct.toFixed(2), "% of one core (dockerd, containerd, the shims)"],
            ["idle_cpu_containers_pct", idle.containersPct.toFixed(2), "% of one core (the containers' cgroups)"],
            ["idle_probes_per_s", idle.probesPerSecond.toFixed(2), "probes/s"],
            ["idle_cpu_per_probe_ms", idle.perProbeMs.toFixed(1), "ms of CPU (engine + containers) per probe"],
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

const IDLE_WINDOW_MS = 20_000;

/** utime + stime + cutime + cstime of a process, in ms (proc(5): fields 14-17, clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
    } catch {
        return 0;
    }
}

/**
 * The idle cost of the health probes: the stack up and untouched for `ms`, the CPU time spent by the engine
 * (dockerd, containerd and the containers' shims, which run each probe's exec through runc) and inside the
 * containers (the probe commands themselves, and whatever else idles there). Other users of the engine on
 * the machine add to the engine's share: an upper bound.
 */
async function idleProbeCpu(ms: number) {
    const ids: string[] = [];
    let probesPerSecond = 0;
    for (const name of ALL_CONTAINERS) {
        const c = await docker().inspect("containers", name);
        if (!c) continue;
        ids.push(c.Id);
        const interval = c.Config?.Healthcheck?.Interval;
        if (interval) probesPerSecond += 1e9 / interval;
    }
    const pids = () => {
        const out = spawnSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" }).stdout.split("\n");
        return out
            .map((l) => l.trim().split(/\s+/))
            .filter(
                ([, cmd, ...rest]) =>
                    cmd !== undefined &&
                    (/(^|\/)(dockerd|containerd)$/.test(cmd) ||
                        (/containerd-shim/.test(cmd) && ids.some((id) => rest.includes(id)))),
            )
            .map(([pid]) => Number(pid));
    };
    const containerCpu = async () => {
        let total = 0;
        for (const id of ids) {
            const st = await docker().call("GET", `/containers/${id}/stats?stream=false`);
            total += Number(st?.cpu_stats?.cpu_usage?.total_usage ?? 0) / 1e6;
        }
        return total;
    };
    const procs = pids();
    const e0 = procs.reduce((a, p) => a + cpuMsOf(p), 0);
    const c0 = await containerCpu();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, ms));
    const e1 = procs.reduce((a, p) => a + cpuMsOf(p), 0);
    const c1 = await containerCpu();
    const elapsed = Date.now() - t0;
    const probes = (probesPerSecond * elapsed) / 1000;
    return {
        enginePct: ((e1 - e0) / elapsed) * 100,
        containersPct: ((c1 - c0) / elapsed) * 100,
        probesPerSecond,
        perProbeMs: probes > 0 ? (e1 - e0 + (c1 - c0)) / probes : 0,
    };
}

/** First moments, from outside, when Postgres accepts TCP and the app answers /health (polled every 50 ms). */
function watchPhysical(pgPort: number, appPort: number, t0: number) {
    const seen: { postgres?: number; app?: number; stop: () => void } = { stop: () => clearInterval(timer) };
    let busy = false;
    const timer = setInterval(async () => {
        if (busy) return;
        busy = true;
        if (seen.postgres === undefined && (await postgresAnswers(pgPort))) seen.postgres = Date.now() - t0;
        if (seen.app === undefined) {
            const res = await httpGet(`http://127.0.0.1:${appPort}/health`, 500).catch(() => undefined);
            if (res?.status === 200) seen.app = Date.now() - t0;
        }
        busy = false;
    }, 50);
    return seen;
}

/**
 * Whether PostgreSQL itself answers on the published port: an SSLRequest (protocol.html, "SSL Session
 * Encryption": length 8, code 80877103) gets its one-byte answer, S or N. A bare TCP connect is not enough:
 * Docker's userland proxy accepts on the host port as soon as the container starts, before the server
 * listens (and the image's first-start server listens on its socket only).
 */
function postgresAnswers(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const done = (ok: boolean) => {
            sock.destroy();
            resolve(ok);
        };
        const sock = connect(port, "127.0.0.1", () => {
            const req = Buffer.alloc(8);
            req.writeUInt32BE(8, 0);
            req.writeUInt32BE(80877103, 4);
            sock.write(req);
        });
        sock.once("data", (b: Buffer) => done(b[0] === 0x53 || b[0] === 0x4e));
        sock.on("error", () => done(false));
        sock.on("close", () => done(false));
        sock.setTimeout(500, () => done(false));
    });
}

const median = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/**
 * The odin stack's cold up and warm re-run over SSH (the harness dials as the provider does: one
 * `ssh ... docker system dial-stdio` per connection) and on the local socket, RUNS times each, interleaved;
 * over SSH with OpenSSH connection sharing (what docs/performance.md recommends) and without it.
 */
async function odinOverSsh(): Promise<void> {
    const problem = sshHostAvailable();
    if (problem) {
        process.stderr.write(`bench:e2e: odin over SSH not measured: ${problem}\n`);
        return;
    }
    const runs = Number(process.env.BENCH_RUNS ?? 5);
    const work = tempDir("bench-odin");
    const hosts = {
        shared: await startSshDockerHost(path.join(work, "ssh-shared"), { share: true }),
        unshared: await startSshDockerHost(path.join(work, "ssh-unshared"), { share: false }),
    };
    const createdProxy = !(await docker().inspect("networks", "caddy"));
    if (createdProxy) await docker().call("POST", "/networks/create", { Name: "caddy" });
    const times: Record<string, number[]> = {};
    const sessions: Record<string, SessionCount[]> = {};
    const add = (key: string, ms: number) => (times[key] ??= []).push(ms);
    try {
        for (let i = 0; i < runs; i++) {
            for (const via of ["shared", "local", "unshared"] as const) {
                const ssh = via === "local" ? undefined : hosts[via];
                await clearLeftovers(ALL_CONTAINERS, ["marvel-rivals-network"]);
                const run = {
                    projectDir: path.join(__dirname, ".."),
                    stack: "odin",
                    workDir: path.join(work, `harness-${via}-${i}`),
                    env: ssh?.env ?? {},
                    overrides: {
                        dockerHost: ssh?.dockerHost ?? "unix:///var/run/docker.sock",
                        dataDir: path.join(work, `appdata-${via}-${i}`),
                        appPort: String(await freePort()),
                        appBindAddress: "127.0.0.1",
                    },
                };
                try {
                    const count = ssh?.countSessions();
                    const cold = await pulumiUp(run);
                    if (count) (sessions[via] ??= []).push(count());
                    ensureOk(`odin cold up (${via})`, cold);
                    const warm = await pulumiUp(run);
                    ensureOk(`odin warm re-run (${via})`, warm);
                    add(`cold_${via}`, cold.wallMs);
                    add(`warm_${via}`, warm.wallMs);
                } finally {
                    await pulumiDestroy(run).catch(() => undefined);
                }
            }
        }
        const m = (k: string) => median(times[k]);
        const peak = (via: string, f: keyof SessionCount) => Math.max(...sessions[via].map((c) => c[f]));
        const lines: [string, string, string][] = [
            ["odin_runs", String(runs), "each"],
            ["odin_cold_up_ssh_s", s(m("cold_shared")), "s (median, connection sharing)"],
            ["odin_warm_rerun_ssh_s", s(m("warm_shared")), "s (median, connection sharing)"],
            ["odin_cold_up_local_s", s(m("cold_local")), "s (median)"],
            ["odin_warm_rerun_local_s", s(m("warm_local")), "s (median)"],
            ["odin_ssh_over_local_cold", (m("cold_shared") / m("cold_local")).toFixed(3), "ratio (goal <= 1.15)"],
            ["odin_ssh_over_local_warm", (m("warm_shared") / m("warm_local")).toFixed(3), "ratio (goal <= 1.3)"],
            ["odin_cold_up_ssh_unshared_s", s(m("cold_unshared")), "s (median, one connection per session)"],
            ["odin_warm_rerun_ssh_unshared_s", s(m("warm_unshared")), "s (median, one connection per session)"],
            ["odin_ssh_unshared_over_local_cold", (m("cold_unshared") / m("cold_local")).toFixed(3), "ratio"],
            ["odin_ssh_unshared_over_local_warm", (m("warm_unshared") / m("warm_local")).toFixed(3), "ratio"],
            ["ssh_peak_connections_unshared", String(peak("unshared", "peak")), "at once (cold up; MaxStartups 10)"],
            ["ssh_peak_sessions_unshared", String(peak("unshared", "peakSessions")), "at once (cold up)"],
            ["ssh_connections_unshared", String(peak("unshared", "total")), "per cold up (the most of the runs)"],
            ["ssh_peak_connections_shared", String(peak("shared", "peak")), "at once (cold up)"],
            ["ssh_peak_sessions_shared", String(peak("shared", "peakSessions")), "at once (cold up; MaxSessions 10)"],
            ["ssh_connections_shared", String(peak("shared", "total")), "per cold up (the most of the runs)"],
        ];
        for (const [name, value, unit] of lines) process.stdout.write(`${name}: ${value} ${unit}\n`);
        process.stdout.write(`odin_raw_ms: ${JSON.stringify(times)}\n`);
    } finally {
        if (createdProxy) {
            const net = await docker().inspect("networks", "caddy");
            if (net) await docker().call("DELETE", `/networks/${net.Id}`, undefined, [404]);
        }
        await hosts.shared.stop();
        await hosts.unshared.stop();
        removeTempDir(work);
    }
}

/** The off-site copy's figures on the dev stack (see the header): backup_offsite_s and dr_restore_s. */
async function offsiteFigures(): Promise<void> {
    const work = tempDir("bench-offsite");
    const target = offsiteTarget(work, "bench-offsite-repository-password-0123456789");
    const project = copyProject(path.join(work, "project"));
    const dataDir = path.join(work, "data");
    const run = {
        projectDir: project,
        stack: "dev",
        workDir: path.join(work, "harness"),
        secrets: target.secrets,
        overrides: {
            dataDir,
            postgresPort: String(await freePort()),
            redisPort: String(await freePort()),
            appPort: String(await freePort()),
            hostOwner: "1000:1000",
            ...target.overrides,
        },
    };
    await clearLeftovers([...ALL_CONTAINERS, SFTP_CONTAINER], ["marvel-rivals-network"]);
    try {
        const up = await pulumiUp(run);
        ensureOk("the dev stack with an off-site target", up);
        target.start("marvel-rivals-network");
        const seeded = spawnSync("docker", ["exec", "marvel-rivals-app", "seed"], { encoding: "utf8" });
        if (seeded.status !== 0) throw new Error(`seed failed: ${seeded.stderr}`);
        const url = up.outputs.databaseUrl as string;
        const total = async () =>
            withDb(url, async (db) => {
                const tables = (
                    await db.query(
                        "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) AS t FROM pg_stat_user_tables",
                    )
                ).rows;
                let n = 0;
                for (const { t } of tables) n += Number((await db.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
                return n;
            });
        const rows = await total();
        const t0 = performance.now();
        const pass = spawnSync("docker", ["exec", "marvel-rivals-backup", ...AGENT_ENTRYPOINT, "now"], {
            encoding: "utf8",
        });
        const passMs = performance.now() - t0;
        const pushed = / off-site: .* pushed to .*; (\d+) ms$/m.exec(pass.stdout);
        if (pass.status !== 0 || !pushed)
            throw new Error(`the pass did not push off-site:\n${pass.stdout}${pass.stderr}`);
        const backups = path.join(dataDir, "backups");
        for (const f of readdirSync(backups)) rmSync(path.join(backups, f), { force: true });
        await withDb(url, (db) => db.query("DELETE FROM match_participants"));
        const t1 = performance.now();
        const fetched = spawnSync(
            "docker",
            ["exec", "marvel-rivals-backup", ...AGENT_ENTRYPOINT, "fetch-offsite", "latest"],
            {
                encoding: "utf8",
            },
        );
        const name = /^result=fetched (\S+)$/m.exec(fetched.stdout)?.[1];
        if (!name) throw new Error(`fetch-offsite failed: ${fetched.stderr}`);
        const restored = spawnSync("npm", ["run", "-s", "restore", "--", "--from", name], {
            cwd: project,
            encoding: "utf8",
        });
        const drMs = performance.now() - t1;
        if (restored.status !== 0) throw new Error(`the restore failed: ${restored.stdout}${restored.stderr}`);
        const after = await total();
        if (after !== rows) throw new Error(`the restore from the off-site copy gave ${after} rows, not ${rows}`);
        for (const [k, v, unit] of [
            ["offsite_rows", String(rows), "rows"],
            ["backup_offsite_s", s(Number(pushed[1])), "s"],
            ["offsite_pass_s", s(passMs), "s"],
            ["dr_restore_s", s(drMs), "s"],
        ])
            process.stdout.write(`${k}: ${v} ${unit}\n`);
    } finally {
        await pulumiDestroy(run).catch(() => undefined);
        await clearLeftovers([SFTP_CONTAINER]).catch(() => undefined);
        removeTempDir(work);
    }
}

/**
 * One e2e user of the engine at a time (the e2e files' lock: the stacks share container names). BENCH_ONLY
 * picks parts: dev (the dev stack, probes, backups), odin (SSH vs local), deploys (under load), offsite (the
 * off-site copy and the restore from it).
 */
async function benchmark(): Promise<void> {
    const only = new Set((process.env.BENCH_ONLY ?? "dev,odin,deploys,offsite").split(","));
    const unlock = await lockEngine();
    try {
        if (only.has("dev")) await main();
        if (only.has("odin")) await odinOverSsh();
        if (only.has("deploys")) await odinDeploys();
        if (only.has("offsite")) await offsiteFigures();
    } finally {
        unlock();
    }
}

benchmark().catch((err) => {
    process.stderr.write(`bench:e2e: ${(err as Error).message}\n`);
    process.exit(1);
});
