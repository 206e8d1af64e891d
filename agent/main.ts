// The backup agent (issues 14 and 22): runs in the stack's backup container, an image built FROM the
// stack's Postgres image (agent/Dockerfile), so pg_dump and pg_restore are the server's own version.
//
//   run                     the schedule loop (BACKUP_MODE off | every | cron, lists from backupSchedule.ts)
//   now                     one scheduled pass now (dump, check, prune, status, notification)
//   once LABEL              one dump now, checked, named <UTC stamp>-LABEL.dump (restore's safety dump: `safety`)
//   verify-all              re-hash every dump (a changed one is marked failed) and test-restore the newest
//                           that passes into a temporary cluster (initdb in a scratch directory)
//   fetch-offsite NAME      bring a dump (or `latest`) and its record back from the off-site target
//   health                  the container's healthcheck: exit 1 after a failed or overdue scheduled pass
//   verify FILE             check an existing dump again, rewriting its record
//   list                    one JSON record per dump, oldest first
//   list-offsite            `repository=URL`, then one JSON line per snapshot there (none configured: nothing)
//   preflight               what a restore needs to know first: result=exists:yes|no replaced:yes|no
//   restore FILE [SAFETY]   load FILE into the database (the app must be stopped; see scripts/backups.ts);
//                           the replaced database is dropped only when SAFETY names a dump of it that passed
//
// `once`, `preflight` and `restore` end with one `result=...` line on stdout: the caller trusts that line,
// never the exit code of a `docker exec` client (a dropped SSH connection or a Ctrl-C says nothing of how
// the agent ended).
//
// Credentials come from PG* variables (PGHOST, PGUSER, PGDATABASE) and the password from the file named by
// BACKUP_PGPASSWORD_FILE (or PGPASSWORD), never from arguments. A scheduled pass that passed is copied
// off-site (agent/offsite.ts) when BACKUP_OFFSITE_REPOSITORY is set.
// Files: <dir>/<stamp>-<label>.dump (pg_dump custom format) and <file>.json beside it, each written under
// a temporary name and renamed, so a reader never sees half of one; readable by the owner only. Nothing
// here deletes anything but scheduled dumps past the retention (never the newest that passed its check),
// its own temporary files, and its own scratch databases.

import { createHash } from "node:crypto";
import {
    createReadStream,
    existsSync,
    mkdtempSync,
    readdirSync,
    readFileSync,
    renameSync,
    rmSync,
    statSync,
    writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { acquire, type Lock } from "./lock";
import {
    listOffsite,
    offsiteFromEnv,
    restoreOffsite,
    syncOffsite,
    verifyOffsite,
    type OffsiteSnapshot,
} from "./offsite";
import { mountProblem } from "./mount";
import { ident, literal, run, Session, stopChildren } from "./proc";
import {
    countDifferences,
    LABEL,
    oneLine,
    parseCounts,
    parseRecord,
    stamp,
    unrecorded,
    type Check,
    type DumpRecord,
} from "./records";
import { otherToPrune, toPrune } from "./retention";
import { afterPass, health, notification, type PassStatus } from "./status";
import { due, minuteKey, scheduleFromEnv } from "./schedule";

const DIR = process.env.BACKUP_DIR || "/backups";
const SCRATCH_PREFIX = "backup_check_";
/** How long a command waits for another one's lock. */
const LOCK_WAIT_SECONDS = 3600;

process.umask(0o077);
// Every session of the agent says whose it is: the migration runner finds a running pass by it
// (app/src/migrate/lock.ts, waitForBackupPass).
process.env.PGAPPNAME = "backup-agent";

/**
 * The database identity: PGUSER from the environment, the password from a file (BACKUP_PGPASSWORD_FILE, an
 * upload in the container: components/backups.ts), read into this process only, so `docker inspect` shows
 * no password. libpq's own PGPASSFILE is not used: it ignores a file others may read, and the provider
 * writes uploads as root's (the agent runs as the stack's owner).
 */
function passwordFromFile(env: NodeJS.ProcessEnv): string | undefined {
    const file = env.BACKUP_PGPASSWORD_FILE;
    if (!file) return undefined;
    let text: string;
    try {
        text = readFileSync(file, "utf8");
    } catch (err) {
        throw new Error(
            `cannot read the database password file ${file} (BACKUP_PGPASSWORD_FILE): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; run \`npm run up\` so the backup container gets it`,
        );
    }
    const password = text.split("\n")[0];
    if (!password)
        throw new Error(`the database password file ${file} (BACKUP_PGPASSWORD_FILE) is empty; run \`npm run up\``);
    return password;
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
export const log = (msg: string): void => void process.stdout.write(`${now()} backup: ${msg}\n`);
export const loud = (msg: string): void => void process.stderr.write(`${now()} backup: ERROR ${msg}\n`);

// One query per table pg_dump dumps (not other sessions' temporary tables); psql's \gexec runs them, each
// printing `schema.table|rows` and taking the table's ACCESS SHARE lock.
const TABLES_WHERE = `c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'`;
const COUNT_SQL = `SELECT format('SELECT %L, count(*) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE ${TABLES_WHERE}
ORDER BY 1`;
// One LOCK statement for every table COUNT_SQL counts (nothing when there is none).
const LOCK_SQL = `SELECT 'LOCK TABLE ' || string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY 1) || ' IN ACCESS SHARE MODE'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE ${TABLES_WHERE}
HAVING count(*) > 0`;

/** The flags of a real restore (`restore` below); the check restores with exactly these. */
const RESTORE_FLAGS = ["--exit-on-error", "--single-transaction"];

const admin = (...sql: string[]) =>
    run("psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres", ...sql.flatMap((s) => ["-c", s])]);
const tail = (s: string, n: number) => oneLine(s.trim().split("\n").slice(-n).join(" "));

let stopping = false;

/** Whether the backup directory must be a mounted share (backupRequireMount), and what is wrong if so. */
function mountCheck(): string | undefined {
    if (process.env.BACKUP_REQUIRE_MOUNT !== "1") return undefined;
    let info = "";
    try {
        info = readFileSync("/proc/self/mountinfo", "utf8");
    } catch (err) {
        return `cannot read /proc/self/mountinfo to check the backup directory is mounted: ${(err as Error).message}`;
    }
    return mountProblem(info, DIR, process.env.BACKUP_HOST_DIR || DIR);
}

// ---- files

function writeAtomic(file: string, body: string): void {
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
    writeFileSync(tmp, body, { mode: 0o600 });
    renameSync(tmp, file);
}

export function sha256(file: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const h = createHash("sha256");
        createReadStream(file)
            .on("data", (d) => h.update(d))
            .on("error", reject)
            .on("end", () => resolve(h.digest("hex")));
    });
}

function readRecord(file: string): DumpRecord | undefined {
    try {
        return parseRecord(readFileSync(`${file}.json`, "utf8"));
    } catch {
        return undefined;
    }
}

const passed = (file: string) => readRecord(file)?.check === "passed";

async function writeRecord(
    file: string,
    fields: {
        check: Check;
        reason: string;
        createdAt: string;
        dumpMs: number;
        checkMs: number;
        tables: Record<string, number>;
    },
): Promise<DumpRecord> {
    const record: DumpRecord = {
        file: path.basename(file),
        createdAt: fields.createdAt,
        sizeBytes: statSync(file).size,
        check: fields.check,
        reason: oneLine(fields.reason),
        checkedAt: now(),
        dumpMs: fields.dumpMs,
        checkMs: fields.checkMs,
        sha256: await sha256(file),
        tables: fields.tables,
    };
    writeAtomic(`${file}.json`, `${JSON.stringify(record)}\n`);
    return record;
}

export function listRecords(dir = DIR): DumpRecord[] {
    return readdirSync(dir)
        .filter((f) => f.endsWith(".dump") && !f.startsWith("."))
        .sort()
        .flatMap((f) => {
            const full = path.join(dir, f);
            let st;
            try {
                st = statSync(full);
            } catch {
                return [];
            }
            if (!st.isFile()) return [];
            return [readRecord(full) ?? unrecorded(f, st.size)];
        });
}

// ---- the lock, and what a killed holder left

async function lock(): Promise<Lock> {
    const problem = mountCheck();
    if (problem) throw new Error(problem);
    const held = await acquire(LOCK_WAIT_SECONDS);
    // Whatever a killed holder left: its temporary files and its scratch database.
    for (const f of readdirSync(DIR))
        if (f.startsWith(".") && (f.endsWith(".partial") || f.endsWith(".tmp")))
            rmSync(path.join(DIR, f), { force: true });
    const dbs = await admin(`SELECT datname FROM pg_database WHERE datname ~ '^${SCRATCH_PREFIX}[0-9]+_[0-9]+$'`);
    for (const db of dbs.stdout.split("\n").filter(Boolean)) {
        if ((await run("dropdb", ["--if-exists", db])).code === 0)
            log(`dropped ${db}, a scratch database left by an interrupted check`);
    }
    return held;
}

async function withLock<T>(f: () => Promise<T>): Promise<T> {
    const held = await lock();
    try {
        return await f();
    } finally {
        await held.release();
    }
}

// ---- the check

interface CheckResult {
    check: Check;
    reason: string;
}

/**
 * The check of every new dump: restored with the flags of a real restore into a temporary cluster inside
 * this container (clusterCheck, as the periodic verify does), its per-table rows compared with `expected`.
 * Never a database on the server: the agent needs no CREATE DATABASE there, only pg_read_all_data, and
 * the check costs the server neither a second copy's disk nor its WAL (issue 22, item 4).
 * `unchecked`: the check itself could not run.
 */
function check(file: string, expected: Record<string, number>): Promise<CheckResult> {
    return clusterCheck(file, expected);
}

// ---- one dump

export interface BackupOutcome {
    ok: boolean;
    name?: string;
}

/**
 * One snapshot for everything. A session exports its snapshot and at once locks every table (ACCESS
 * SHARE, one statement), so no DROP, TRUNCATE or rewrite lands from then on; pg_dump starts right away on
 * that snapshot, and while it dumps, the session counts every table's rows in the same snapshot. Nothing
 * waits on pg_dump while holding a lock pg_dump needs.
 */
async function backup(label: string): Promise<BackupOutcome> {
    const started = new Date();
    const name = `${stamp(started)}-${label}.dump`;
    const file = path.join(DIR, name);
    const partial = path.join(DIR, `.${name}.partial`);
    const t0 = Date.now();
    // Never wait forever behind another session's exclusive lock (pg_dump has --lock-wait-timeout).
    const session = new Session([], {
        ...process.env,
        PGOPTIONS: `${process.env.PGOPTIONS ?? ""} -c lock_timeout=60000`,
    });
    let expected: Record<string, number> | undefined;
    let dumpMs = 0;
    try {
        session.send(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;",
            "SELECT 'snapshot=' || pg_export_snapshot();",
            LOCK_SQL,
            "\\gexec",
            "\\echo __locked__",
        );
        if (!(await session.waitFor("__locked__"))) {
            loud(
                `backup ${name} failed before any dump, previous backups untouched: the snapshot and its locks: ${oneLine(session.stderr)}`,
            );
            return { ok: false };
        }
        const snapshot = /^snapshot=(.*)$/m.exec(session.stdout)![1];
        const dump = run("pg_dump", [
            "--format=custom",
            `--snapshot=${snapshot}`,
            "--lock-wait-timeout=60000",
            "-f",
            partial,
        ]);
        session.send(COUNT_SQL, "\\gexec", "\\echo __counted__");
        const counted = await session.waitFor("__counted__");
        const dumped = await dump;
        dumpMs = Date.now() - t0;
        if (stopping) {
            loud(`backup ${name} stopped (SIGTERM) before it ended, previous backups untouched`);
            return { ok: false };
        }
        if (dumped.code !== 0) {
            loud(`backup ${name} failed, previous backups untouched: pg_dump: ${oneLine(dumped.stderr)}`);
            return { ok: false };
        }
        if (!counted) {
            loud(
                `backup ${name} failed, previous backups untouched: counting the rows at its snapshot: ${oneLine(session.stderr)}`,
            );
            return { ok: false };
        }
        expected = parseCounts(session.stdout);
        writeAtomic(
            `${file}.counts`,
            Object.entries(expected)
                .map(([t, n]) => `${t}|${n}\n`)
                .join(""),
        );
        renameSync(partial, file);
    } finally {
        await session.end();
        rmSync(partial, { force: true });
    }
    if (!expected) return { ok: false };
    const t1 = Date.now();
    let result: CheckResult;
    try {
        result = stopping ? { check: "unchecked", reason: "" } : await check(file, expected);
    } catch (err) {
        result = { check: "unchecked", reason: (err as Error).message };
    }
    if (stopping)
        result = {
            check: "unchecked",
            reason: `the agent was stopped (SIGTERM) before the check ended; check it with \`backup-agent verify ${name}\``,
        };
    await writeRecord(file, {
        ...result,
        createdAt: started.toISOString().replace(/\.\d+Z$/, "Z"),
        dumpMs,
        checkMs: Date.now() - t1,
        tables: expected,
    });
    if (result.check === "passed") {
        log(`${name} written and checked: ${Object.keys(expected).length} tables restored with the same row counts`);
        return { ok: true, name };
    }
    loud(`backup ${name} FAILED ITS CHECK (kept, marked ${result.check}): ${result.reason}`);
    return { ok: false, name };
}

// ---- retention

function prune(): void {
    const n = (k: string) => Number(process.env[k] ?? 0) || 0;
    const rule = {
        keepLast: n("BACKUP_KEEP_LAST"),
        keepDays: n("BACKUP_KEEP_DAYS"),
        daily: n("BACKUP_KEEP_DAILY"),
        weekly: n("BACKUP_KEEP_WEEKLY"),
        monthly: n("BACKUP_KEEP_MONTHLY"),
    };
    const records = listRecords();
    const say = `last ${rule.keepLast}, ${rule.keepDays} days, ${rule.daily} daily, ${rule.weekly} weekly, ${rule.monthly} monthly`;
    for (const f of toPrune(records, rule, new Date())) remove(f, `retention: ${say}`);
    const otherDays = n("BACKUP_KEEP_OTHER_DAYS");
    for (const f of otherToPrune(records, otherDays, new Date()))
        remove(f, `retention of safety, manual and pre-migration dumps: ${otherDays} days, the newest 3 of each kept`);
}

function remove(f: string, why: string): void {
    const full = path.join(DIR, f);
    for (const x of [full, `${full}.json`, `${full}.counts`]) rmSync(x, { force: true });
    log(`pruned ${f} (${why})`);
}

const STATUS_FILE = process.env.BACKUP_STATUS_FILE || "/tmp/backup-agent-status.json";

function readStatus(): PassStatus | undefined {
    try {
        return JSON.parse(readFileSync(STATUS_FILE, "utf8")) as PassStatus;
    } catch {
        return undefined;
    }
}

function writeStatus(s: PassStatus): void {
    writeAtomic(STATUS_FILE, `${JSON.stringify(s)}\n`);
}

/** POSTs the notification to BACKUP_NOTIFY_URL (never logged: it may hold a token); never throws. */
async function notify(event: "failure" | "recovery", status: PassStatus): Promise<void> {
    const url = process.env.BACKUP_NOTIFY_URL;
    if (!url) return;
    try {
        const res = await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(notification(event, process.env.BACKUP_STACK || "?", status)),
            signal: AbortSignal.timeout(10_000),
        });
        if (res.ok) log(`notified the ${event} (backupNotifyUrl answered ${res.status})`);
        else loud(`the ${event} notification was refused: backupNotifyUrl answered ${res.status}`);
    } catch (err) {
        loud(`the ${event} notification could not be sent to backupNotifyUrl: ${(err as Error).message}`);
    }
}

// ---- the off-site copy (agent/offsite.ts: restic, encrypted, content-addressed)

/** The stack's off-site target from the environment (components/offsite.ts), or undefined: none set. */
const offsite = () => offsiteFromEnv(process.env);

/**
 * Pushes a passed dump and its record off-site and applies the target's retention; "" when done or when no
 * target is configured, else the one-line reason it failed (the local dump stays, marked passed).
 */
async function pushPassed(name: string, kind: string): Promise<string> {
    try {
        const o = offsite();
        if (!o) return "";
        const file = path.join(DIR, name);
        const t0 = Date.now();
        const { line } = await syncOffsite(o.target, o.policy, [file, `${file}.json`], [`kind=${kind}`]);
        log(`${line}; ${Date.now() - t0} ms`);
        return "";
    } catch (err) {
        const reason = oneLine((err as Error).message);
        loud(`off-site copy of ${name} FAILED: ${reason}`);
        return reason;
    }
}

/** `list-offsite`: one JSON line per snapshot on the target, oldest first; nothing when none is configured. */
async function listOffsiteCommand(): Promise<number> {
    let o;
    try {
        o = offsite();
    } catch (err) {
        loud((err as Error).message);
        return 1;
    }
    if (!o) return 0;
    let snapshots: OffsiteSnapshot[];
    try {
        snapshots = await listOffsite(o.target);
    } catch (err) {
        loud(oneLine((err as Error).message));
        return 1;
    }
    process.stdout.write(`repository=${o.target.repository}\n`);
    for (const s of snapshots) process.stdout.write(`${JSON.stringify(s)}\n`);
    return 0;
}

/**
 * `fetch-offsite NAME|latest`: brings a dump and its record back from the off-site target into the backup
 * directory (a new disk, a lost share), so `npm run restore -- --from NAME` can load it. Its SHA-256 must
 * match its record's; it never replaces a file already there.
 */
async function fetchOffsite(name: string): Promise<number> {
    let fetched = "";
    try {
        const o = offsite();
        if (!o) throw new Error("no off-site target is configured (backupOffsite)");
        fetched = await withLock(async () => {
            const tmp = mkdtempSync(path.join(DIR, ".offsite-fetch-"));
            try {
                const files = await restoreOffsite(o.target, path.basename(name), tmp);
                const dump = files.find((f) => f.endsWith(".dump"));
                if (!dump) throw new Error(`the off-site copy of ${name} holds no .dump file`);
                const base = path.basename(dump);
                const record = parseRecord(readFileSync(`${dump}.json`, "utf8"));
                const hash = await sha256(dump);
                if (!record?.sha256 || record.sha256 !== hash)
                    throw new Error(
                        `the off-site copy of ${base} does not match its record's SHA-256; run \`backup-agent verify-all\` and fetch another`,
                    );
                for (const f of [base, `${base}.json`])
                    if (existsSync(path.join(DIR, f)))
                        throw new Error(`${f} is already in the backup directory: nothing fetched, nothing replaced`);
                for (const f of [`${base}.json`, base]) renameSync(path.join(tmp, f), path.join(DIR, f));
                return base;
            } finally {
                rmSync(tmp, { recursive: true, force: true });
            }
        });
        log(`fetched ${fetched} from the off-site copy (SHA-256 matches its record)`);
    } catch (err) {
        loud(`fetch from the off-site copy failed: ${oneLine((err as Error).message)}`);
    }
    process.stdout.write(fetched ? `result=fetched ${fetched}\n` : "result=failed\n");
    return fetched ? 0 : 1;
}

/** A scheduled pass: dump, check, prune; its outcome goes to the status file and, when it changes, out. */
async function scheduled(): Promise<BackupOutcome> {
    const at = now();
    let outcome: BackupOutcome = { ok: false };
    let error = "";
    try {
        let offsiteError = "";
        outcome = await withLock(async () => {
            const o = await backup("scheduled");
            prune();
            // The off-site copy of a passed dump (issue 22, item 1): a push that fails fails the pass.
            if (o.ok && o.name) offsiteError = await pushPassed(o.name, "scheduled");
            return offsiteError ? { ...o, ok: false } : o;
        });
        if (offsiteError) error = `${outcome.name} passed its check but its off-site copy failed: ${offsiteError}`;
        else if (!outcome.ok)
            error = outcome.name
                ? `${outcome.name} failed its check: ${readRecord(path.join(DIR, outcome.name))?.reason ?? "?"}`
                : "the dump failed (see the container's log)";
    } catch (err) {
        error = (err as Error).message;
        loud(`scheduled backup not taken: ${error}`);
    }
    const before = readStatus() ?? { startedAt: at };
    const { status, event } = afterPass(before, { at, ok: outcome.ok, file: outcome.name, error: oneLine(error) });
    writeStatus(status);
    if (event) await notify(event, status);
    return outcome;
}

/** Exit 0 when healthy, 1 when not: the container's healthcheck. */
function healthCommand(): number {
    const problem = mountCheck();
    const h = problem
        ? { healthy: false, message: problem }
        : health(readStatus(), new Date(), Number(process.env.BACKUP_OVERDUE_SECONDS ?? 0));
    process.stdout.write(`${h.healthy ? "healthy" : "UNHEALTHY"}: ${h.message}\n`);
    return h.healthy ? 0 : 1;
}

// ---- the loop

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function runLoop(): Promise<never> {
    let pass: Promise<unknown> | undefined;
    const stop = (signal: string) => {
        log(`stopping (${signal})`);
        stopping = true;
        // A pass in progress ends its children and writes what it knows; then the agent exits.
        stopChildren();
        void (pass ?? Promise.resolve()).finally(() => process.exit(0));
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    const schedule = scheduleFromEnv(process.env);
    writeStatus({ startedAt: now() });
    void verifyLoop();
    if (schedule.mode === "off") {
        log("no schedule (backupSchedule unset): idle; dumps on demand with `npm run restore`");
        for (;;) await sleep(3_600_000);
    }
    if (schedule.mode === "every") {
        log(`schedule: every ${schedule.seconds}s (${process.env.BACKUP_SCHEDULE ?? ""}), into ${DIR}`);
        for (;;) {
            await sleep(schedule.seconds * 1000);
            if (stopping) await sleep(3_600_000);
            pass = scheduled();
            await pass;
            pass = undefined;
        }
    }
    log(`schedule: ${process.env.BACKUP_SCHEDULE ?? ""} (UTC), into ${DIR}`);
    let last = "";
    for (;;) {
        const t = new Date();
        if (minuteKey(t) !== last && due(schedule, t) && !stopping) {
            last = minuteKey(t);
            pass = scheduled();
            await pass;
            pass = undefined;
        }
        await sleep(60_000 - (Date.now() % 60_000) + 50);
    }
}

// ---- the periodic verify: every stored dump re-hashed, the newest test-restored in a cluster of its own

/**
 * Re-hashes every dump that has a SHA-256 in its record: one that no longer matches is marked failed (so
 * `latest` skips it). Returns the names of the dumps found changed.
 */
async function rehash(): Promise<string[]> {
    const changed: string[] = [];
    for (const r of listRecords()) {
        if (!r.sha256) continue;
        const file = path.join(DIR, r.file);
        const now_ = await sha256(file);
        if (now_ === r.sha256) continue;
        changed.push(r.file);
        const reason = `SHA-256 ${now_.slice(0, 12)}... differs from the recorded ${r.sha256.slice(0, 12)}...: the file changed after it was written`;
        writeAtomic(`${file}.json`, `${JSON.stringify({ ...r, check: "failed", reason, checkedAt: now() })}\n`);
        loud(`${r.file} FAILED ITS VERIFY: ${reason}`);
    }
    return changed;
}

/**
 * Restores a dump exactly as a real restore does (the server's roles first, without their passwords, then
 * pg_restore with RESTORE_FLAGS into a database of the real name) into a temporary cluster made by initdb
 * in a scratch directory of the container, counts its rows, and removes the cluster. Never the server.
 */
async function clusterCheck(file: string, expected: Record<string, number>): Promise<CheckResult> {
    const scratch = mkdtempSync(path.join(process.env.BACKUP_SCRATCH_DIR || tmpdir(), "backup-verify-"));
    const data = path.join(scratch, "data");
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    // initdb and postgres look their user up: a passwd entry for the agent's uid through nss_wrapper.
    writeFileSync(path.join(scratch, "passwd"), `backup:x:${uid}:${gid}:backup agent:${scratch}:/bin/sh\n`);
    writeFileSync(path.join(scratch, "group"), `backup:x:${gid}:\n`);
    const local: NodeJS.ProcessEnv = {
        ...process.env,
        LD_PRELOAD: "libnss_wrapper.so",
        NSS_WRAPPER_PASSWD: path.join(scratch, "passwd"),
        NSS_WRAPPER_GROUP: path.join(scratch, "group"),
        PGHOST: scratch,
        PGPORT: "5432",
        PGUSER: "backup_verify",
        PGPASSWORD: "",
        PGDATABASE: "postgres",
    };
    const server = { ...process.env };
    let started = false;
    try {
        const init = await run("initdb", ["-D", data, "-U", "backup_verify", "-A", "trust", "--no-sync"], {
            env: local,
        });
        if (init.code !== 0) return { check: "unchecked", reason: `initdb failed: ${tail(init.stderr, 3)}` };
        const start = await run(
            "pg_ctl",
            [
                "-D",
                data,
                "-w",
                "-l",
                path.join(scratch, "log"),
                "-o",
                `-c listen_addresses='' -k ${scratch} -c fsync=off`,
                "start",
            ],
            { env: local },
        );
        if (start.code !== 0)
            return {
                check: "unchecked",
                reason: `the temporary cluster did not start: ${tail(start.stderr + start.stdout, 3)}`,
            };
        started = true;
        // The server's roles (no passwords: pg_read_all_data may not read them), as a new machine would
        // have them before a restore.
        const roles = await run("pg_dumpall", ["--roles-only", "--no-role-passwords", "-d", `dbname=postgres`], {
            env: server,
        });
        if (roles.code !== 0)
            return { check: "unchecked", reason: `reading the server's roles failed: ${tail(roles.stderr, 3)}` };
        const made = await run("psql", ["-X", "-q", "-d", "postgres"], { env: local, input: roles.stdout });
        if (made.code !== 0)
            return { check: "unchecked", reason: `creating the roles failed: ${tail(made.stderr, 3)}` };
        const db = database();
        const created = await run("createdb", ["-T", "template0", db], { env: local });
        if (created.code !== 0) return { check: "unchecked", reason: `createdb failed: ${tail(created.stderr, 3)}` };
        const restored = await run("pg_restore", [...RESTORE_FLAGS, "-d", db, file], { env: local });
        if (restored.code !== 0)
            return { check: "failed", reason: `pg_restore into a new cluster failed: ${tail(restored.stderr, 3)}` };
        const counted = await run("psql", ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db], {
            env: local,
            input: `${COUNT_SQL}\n\\gexec\n`,
        });
        if (counted.code !== 0)
            return { check: "failed", reason: `counting the restored rows failed: ${oneLine(counted.stderr)}` };
        const diff = countDifferences(expected, parseCounts(counted.stdout));
        return diff.length === 0
            ? { check: "passed", reason: "" }
            : { check: "failed", reason: `row counts in a new cluster differ from the source: ${diff.join("; ")}` };
    } finally {
        if (started) await run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"], { env: local });
        rmSync(scratch, { recursive: true, force: true });
    }
}

/** The periodic verify: rehash everything, then test-restore the newest dump that still passes. */
async function verifyAll(): Promise<{ ok: boolean; problem?: string }> {
    return withLock(async () => {
        const changed = await rehash();
        const newest = [...listRecords()].reverse().find((r) => r.check === "passed");
        if (!newest) {
            const problem = "no dump passes to test-restore";
            loud(`verify: ${problem}`);
            return { ok: false, problem };
        }
        const file = path.join(DIR, newest.file);
        const t0 = Date.now();
        const result = await clusterCheck(file, expectedCounts(file) ?? {});
        if (result.check === "unchecked") {
            loud(`verify: ${newest.file} could not be test-restored: ${result.reason}`);
            return { ok: false, problem: `${newest.file} could not be test-restored: ${result.reason}` };
        }
        if (result.check === "failed") {
            writeAtomic(
                `${file}.json`,
                `${JSON.stringify({ ...newest, check: "failed", reason: oneLine(result.reason), checkedAt: now() })}\n`,
            );
            loud(`${newest.file} FAILED ITS VERIFY: ${result.reason}`);
            return { ok: false, problem: `${newest.file} failed its test restore: ${oneLine(result.reason)}` };
        }
        log(
            `verify: ${listRecords().length} dumps re-hashed (${changed.length} changed); ${newest.file} restored into a new cluster in ${Date.now() - t0} ms with the same row counts`,
        );
        // The off-site copies: every byte on the target re-read and checked against its hash.
        const o = offsite();
        if (o) {
            try {
                await verifyOffsite(o.target);
                log(`verify: off-site ${o.target.repository}: restic check --read-data passed`);
            } catch (err) {
                const problem = `off-site: ${oneLine((err as Error).message)}`;
                loud(`verify: ${problem}`);
                return { ok: false, problem };
            }
        }
        return changed.length === 0
            ? { ok: true }
            : { ok: false, problem: `changed since written, marked failed: ${changed.join(", ")}` };
    });
}

/** A verify with its outcome in the status file (the healthcheck) and, on a new failure, a notification. */
async function verifyAndRecord(): Promise<boolean> {
    const at = now();
    let outcome: { ok: boolean; problem?: string };
    try {
        outcome = await verifyAll();
    } catch (err) {
        outcome = { ok: false, problem: (err as Error).message };
        loud(`verify not run: ${outcome.problem}`);
    }
    const before = readStatus() ?? { startedAt: at };
    const status: PassStatus = {
        ...before,
        lastVerifyAt: at,
        lastVerifyOk: outcome.ok,
        lastVerifyError: outcome.ok ? undefined : oneLine(outcome.problem ?? "?"),
    };
    writeStatus(status);
    if (!outcome.ok && before.lastVerifyOk !== false)
        await notify("failure", {
            ...status,
            lastPassAt: at,
            lastError: `the verify failed: ${status.lastVerifyError}`,
        });
    return outcome.ok;
}

/** The verify's own loop beside the passes' (the lock keeps them apart). */
async function verifyLoop(): Promise<void> {
    const s = scheduleFromEnv(process.env, "BACKUP_VERIFY_");
    if (s.mode === "off") return;
    log(`verify schedule: ${s.mode === "every" ? `every ${s.seconds}s` : "cron"} (UTC)`);
    let last = "";
    for (;;) {
        if (s.mode === "every") await sleep(s.seconds * 1000);
        else {
            await sleep(60_000 - (Date.now() % 60_000) + 50);
            const t = new Date();
            if (minuteKey(t) === last || !due(s, t)) continue;
            last = minuteKey(t);
        }
        if (stopping) return;
        await verifyAndRecord();
    }
}

// ---- verify, list, preflight, restore

function expectedCounts(file: string): Record<string, number> | undefined {
    if (existsSync(`${file}.counts`)) return parseCounts(readFileSync(`${file}.counts`, "utf8"));
    return readRecord(file)?.tables;
}

async function verify(name: string): Promise<number> {
    const file = path.join(DIR, path.basename(name));
    if (!existsSync(file)) {
        loud(`no dump ${file}`);
        return 2;
    }
    return withLock(async () => {
        const expected = expectedCounts(file);
        const result: CheckResult = expected
            ? await check(file, expected)
            : { check: "failed", reason: "no row counts of the source recorded for this dump" };
        if (result.check === "unchecked") {
            // The check could not run: the dump's record stays as it was.
            loud(`${path.basename(file)} could not be checked: ${result.reason}`);
            return 1;
        }
        const before = readRecord(file);
        await writeRecord(file, {
            ...result,
            createdAt: before?.createdAt ?? "unknown",
            dumpMs: 0,
            checkMs: 0,
            tables: expected ?? {},
        });
        if (result.check === "passed") {
            log(`${path.basename(file)} checked again: passed`);
            return 0;
        }
        loud(`${path.basename(file)} FAILED ITS CHECK: ${result.reason}`);
        return 1;
    });
}

/** Exit 3: listed, but the backup directory is not the mounted share it must be, or the last pass failed. */
function list(): number {
    for (const r of listRecords()) process.stdout.write(`${JSON.stringify(r)}\n`);
    // A failed pass or verify (the staleness is for `npm run backups` to judge, from the records).
    const h = health(readStatus(), new Date(), 0);
    const problem = mountCheck() ?? (h.healthy ? undefined : h.message);
    if (problem) {
        loud(problem);
        return 3;
    }
    return 0;
}

const database = () => process.env.PGDATABASE ?? "";
const dropHint = () =>
    `docker exec ${process.env.BACKUP_POSTGRES_CONTAINER || "<the Postgres container>"} dropdb -U ${process.env.PGUSER} ${database()}_replaced`;

/** "yes" or "no" for a database; undefined when the server cannot say. */
async function exists(db: string): Promise<"yes" | "no" | undefined> {
    const r = await admin(`SELECT count(*) FROM pg_database WHERE datname = ${literal(db)}`);
    if (r.code !== 0) return undefined;
    return r.stdout.trim() === "1" ? "yes" : r.stdout.trim() === "0" ? "no" : undefined;
}

async function preflight(): Promise<number> {
    const db = database();
    const e = await exists(db);
    const replaced = await exists(`${db}_replaced`);
    if (!e || !replaced) {
        loud(`the server cannot say whether ${db} exists`);
        return 2;
    }
    if (replaced === "yes")
        log(
            `${db}_replaced, the database an earlier restore replaced, still exists; look at it, then drop it (${dropHint()}) and run again`,
        );
    process.stdout.write(`result=exists:${e} replaced:${replaced}\n`);
    return 0;
}

/**
 * Into a new database first, then swapped in by renaming, so a dump that does not load leaves the current
 * database as it was. The replaced database is dropped only when SAFETY names a dump of it that passed its
 * check; otherwise it stays, renamed, and the log says where.
 */
async function restoreLocked(file: string, safety: string): Promise<boolean> {
    const name = path.basename(file);
    const db = database();
    const incoming = `${db}_restoring`;
    const old = `${db}_replaced`;
    const e = await exists(db);
    if (!e) {
        loud(`restore of ${name} refused, nothing changed: the server cannot say whether ${db} exists`);
        return false;
    }
    if ((await exists(old)) !== "no") {
        loud(
            `restore of ${name} refused, nothing changed: ${old}, the database an earlier restore replaced, still exists; look at it, then drop it (${dropHint()}) and run again`,
        );
        return false;
    }
    const made = await admin(
        `DROP DATABASE IF EXISTS ${ident(incoming)}`,
        `CREATE DATABASE ${ident(incoming)} TEMPLATE template0`,
    );
    if (made.code !== 0) {
        loud(`restore of ${name} failed, nothing changed: ${oneLine(made.stderr)}`);
        return false;
    }
    const loaded = await run("pg_restore", [...RESTORE_FLAGS, "-d", incoming, file]);
    if (loaded.code !== 0) {
        loud(`restore of ${name} failed, nothing changed: pg_restore: ${tail(loaded.stderr, 5)}`);
        await admin(`DROP DATABASE IF EXISTS ${ident(incoming)}`);
        return false;
    }
    if (e === "no") {
        const renamed = await admin(`ALTER DATABASE ${ident(incoming)} RENAME TO ${ident(db)}`);
        if (renamed.code !== 0) {
            loud(
                `restore of ${name}: renaming ${incoming} to ${db} failed: ${oneLine(renamed.stderr)}; the dump is loaded in ${incoming}`,
            );
            return false;
        }
        log(`restored ${name} into ${db} (it did not exist)`);
        return true;
    }
    // One -c with both renames is one transaction: the database is never missing under its name.
    const swapped = await admin(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${literal(db)} AND pid <> pg_backend_pid()`,
        `ALTER DATABASE ${ident(db)} RENAME TO ${ident(old)}; ALTER DATABASE ${ident(incoming)} RENAME TO ${ident(db)};`,
    );
    if (swapped.code !== 0) {
        loud(
            `restore of ${name}: swapping the databases failed, ${db} unchanged: ${oneLine(swapped.stderr)}; the dump is loaded in ${incoming}`,
        );
        return false;
    }
    log(`restored ${name} into ${db}`);
    if (safety && passed(path.join(DIR, path.basename(safety)))) {
        const dropped = await admin(`DROP DATABASE ${ident(old)}`);
        if (dropped.code === 0) log(`dropped the replaced database (its checked dump: ${path.basename(safety)})`);
        else loud(`the replaced database ${old} could not be dropped: ${oneLine(dropped.stderr)}`);
    } else log(`the replaced database is kept as ${old} (no checked dump of it): drop it once you no longer need it`);
    return true;
}

async function restore(name: string, safety: string): Promise<number> {
    const file = path.join(DIR, path.basename(name));
    if (!existsSync(file)) {
        loud(`no dump ${file}`);
        return 2;
    }
    let ok = false;
    try {
        ok = await withLock(() => restoreLocked(file, safety));
    } catch (err) {
        loud(`restore of ${path.basename(file)} refused, nothing changed: ${(err as Error).message}`);
    }
    process.stdout.write(ok ? "result=restored\n" : "result=unchanged\n");
    return ok ? 0 : 1;
}

/** The label of a dump before pending migrations: `before-<first pending file>` (components/migrations.ts). */
const PENDING_SET = /^before-\d/;

/**
 * One dump per pending set (issue 20, as the runner's own dumps were): once a dump before the same first
 * pending migration has passed, the older ones of that label go. That migration is pending again, so each
 * of them was taken before an attempt that did not stay applied; the new one holds the same schema with
 * newer data. Dumps of other labels are never touched here.
 */
function supersede(kept: string, label: string): void {
    for (const r of listRecords())
        if (r.file !== kept && r.file.endsWith(`-${label}.dump`) && /^\d{8}T\d{6}Z-/.test(r.file))
            remove(r.file, `superseded by ${kept}, a newer checked dump before the same pending migration`);
}

async function once(label: string): Promise<number> {
    if (!LABEL.test(label)) {
        loud("a label is lower-case letters, digits and -");
        return 2;
    }
    // A stopped `docker exec` (SIGTERM, SIGINT) ends the dump's children; the lock goes with the session.
    const stop = () => {
        stopping = true;
        stopChildren();
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    let outcome: BackupOutcome = { ok: false };
    try {
        outcome = await withLock(async () => {
            const o = await backup(label);
            if (o.ok && o.name && PENDING_SET.test(label)) supersede(o.name, label);
            return o;
        });
    } catch (err) {
        loud(`backup not taken: ${(err as Error).message}`);
    }
    process.stdout.write(`result=${outcome.ok ? "passed" : "failed"} ${outcome.name ?? ""}\n`);
    return outcome.ok ? 0 : 1;
}

const USAGE =
    "usage: backup-agent run | now | once LABEL | verify FILE | verify-all | list | list-offsite | fetch-offsite NAME|latest | health | preflight | restore FILE [SAFETY]";

export async function main(argv: string[]): Promise<number> {
    const [command, a, b] = argv;
    if (command !== "health") {
        try {
            const password = passwordFromFile(process.env);
            if (password !== undefined) process.env.PGPASSWORD = password;
        } catch (err) {
            loud((err as Error).message);
            if (command === "once" || command === "now") process.stdout.write("result=failed \n");
            return 1;
        }
    }
    switch (command) {
        case "list-offsite":
            return listOffsiteCommand();
        case "fetch-offsite":
            return fetchOffsite(a ?? "latest");
        case "run":
            return runLoop();
        case "once":
            return once(a ?? "manual");
        case "verify":
            if (!a) break;
            return verify(a);
        case "list":
            return list();
        case "now": {
            const outcome = await scheduled();
            process.stdout.write(`result=${outcome.ok ? "passed" : "failed"} ${outcome.name ?? ""}\n`);
            return outcome.ok ? 0 : 1;
        }
        case "health":
            return healthCommand();
        case "verify-all":
            return (await verifyAndRecord()) ? 0 : 1;
        case "preflight":
            return preflight();
        case "restore":
            if (!a) break;
            return restore(a, b ?? "");
    }
    process.stderr.write(`${USAGE}\n`);
    return 2;
}

// A write to a pipe whose reader died must not kill the agent.
process.stdout.on("error", () => undefined);
main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
        loud(err.stack ?? err.message);
        process.exit(1);
    },
);
