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
