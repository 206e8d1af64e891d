import type { ClientBase } from "pg";
import { sleep } from "./connect";
import { MigrateError } from "./errors";

/**
 * The migration lock: a session-level advisory lock in the two-int4 key space, ("MRS\0", 3) after the
 * issue that asked for it. Advisory locks are per database, so runners on different databases never wait
 * for each other. Session level (not xact) because it must outlive each migration's transaction.
 */
export const LOCK_CLASS_ID = 0x4d525300;
export const LOCK_OBJ_ID = 3;

async function holder(client: ClientBase): Promise<string> {
    const r = await client.query<{ pid: number; application_name: string | null; client_addr: string | null }>(
        `SELECT l.pid, a.application_name, host(a.client_addr) AS client_addr
           FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 2`,
        [LOCK_CLASS_ID, LOCK_OBJ_ID],
    );
    const row = r.rows[0];
    if (!row) return "another session (it let go just now)";
    return `backend pid ${row.pid} (application "${row.application_name ?? ""}"${row.client_addr ? `, from ${row.client_addr}` : ""})`;
}

/** Polls pg_try_advisory_lock until it is granted or `timeoutSeconds` pass. */
export async function acquireLock(
    client: ClientBase,
    timeoutSeconds: number,
    log: (line: string) => void,
): Promise<void> {
    const start = Date.now();
    const deadline = start + timeoutSeconds * 1000;
    let nextNotice = start + 5000;
    for (;;) {
        const r = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS ok", [
            LOCK_CLASS_ID,
            LOCK_OBJ_ID,
        ]);
        if (r.rows[0]?.ok) return;
        const now = Date.now();
        if (now >= deadline) {
            throw new MigrateError(
                `another migration runner still holds the migration lock after ${timeoutSeconds} s: ${await holder(client)}; let it finish (or end that session if it is stuck) and run again, or raise --advisory-lock-timeout`,
            );
        }
        if (now >= nextNotice) {
            log(`waiting for the migration lock, held by ${await holder(client)}`);
            nextNotice = now + 5000;
        }
        await sleep(Math.min(100, deadline - now));
    }
}

export async function releaseLock(client: ClientBase): Promise<void> {
    await client.query("SELECT pg_advisory_unlock($1, $2)", [LOCK_CLASS_ID, LOCK_OBJ_ID]);
}

/**
 * The backup agent's lock (agent/lock.ts, BACKUP_LOCK_KEY 0x6d72735f626b, one bigint: classid holds the
 * high 32 bits, objid the low, objsubid 1), held in the `postgres` database for as long as a backup pass,
 * check or restore runs. A pass holds ACCESS SHARE on every table while it dumps, so a migration's ALTER
 * would time out behind it (lock_timeout): the runner waits for the pass first, and after
 * `timeoutSeconds` ends it (the agent's sessions: application_name `backup-agent...`) and says so.
 */
export const BACKUP_LOCK_CLASS_ID = 0x6d72;
export const BACKUP_LOCK_OBJ_ID = 0x735f626b;

async function backupHolder(client: ClientBase): Promise<number | undefined> {
    const r = await client.query<{ pid: number }>(
        `SELECT pid FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1`,
        [BACKUP_LOCK_CLASS_ID, BACKUP_LOCK_OBJ_ID],
    );
    return r.rows[0]?.pid;
}

/** Waits for a running backup pass to end; after `timeoutSeconds`, ends it. Says what it did. */
export async function waitForBackupPass(
    client: ClientBase,
    timeoutSeconds: number,
    log: (line: string) => void,
): Promise<"none" | "waited" | "cancelled"> {
    const first = await backupHolder(client);
    if (first === undefined) return "none";
    const start = Date.now();
    log(
        `a backup pass is running (backend pid ${first}): waiting up to ${timeoutSeconds} s for it to end before migrating`,
    );
    for (;;) {
        await sleep(250);
        if ((await backupHolder(client)) === undefined) {
            log(`the backup pass ended after ${((Date.now() - start) / 1000).toFixed(1)} s: migrating`);
            return "waited";
        }
        if (Date.now() - start >= timeoutSeconds * 1000) break;
    }
    const ended = await client.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE application_name LIKE 'backup-agent%' AND pid <> pg_backend_pid() AND pg_terminate_backend(pid)`,
    );
    log(
        `the backup pass still ran after ${timeoutSeconds} s: ended it (${ended.rows.length} sessions) so that the migration does not time out behind its locks; the next scheduled pass runs as usual (\`npm run backups -- now\` for one at once)`,
    );
    // Its locks go with its sessions.
    const deadline = Date.now() + 10_000;
    while ((await backupHolder(client)) !== undefined && Date.now() < deadline) await sleep(100);
    return "cancelled";
}
