// One agent command at a time, across every process and container that reaches the database: a
// PostgreSQL session-level advisory lock held by a psql session for as long as the command runs. The
// server releases it when the session ends, however the holder ends (a killed `docker exec`, a stopped
// container): no stale lock to break, and no race between two breakers (the shell agent's symlink lock
// had one). The migration step sees the same lock (pg_locks, objid = BACKUP_LOCK_KEY).

import { Session } from "./proc";

/** The advisory lock's key: "mrs_bk" in ASCII, one bigint. */
export const BACKUP_LOCK_KEY = 0x6d72735f626bn;
/** The lock session's application_name, so that pg_stat_activity says whose it is. */
export const LOCK_APPLICATION = "backup-agent lock";

export interface Lock {
    release(): Promise<void>;
}

export class LockTimeout extends Error {}

/**
 * Takes the lock, trying once a second for up to `waitSeconds`; throws LockTimeout after that, or an
 * Error when the server cannot be reached.
 */
export async function acquire(
    waitSeconds: number,
    sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<Lock> {
    const session = new Session(["-d", "postgres"], { ...process.env, PGAPPNAME: LOCK_APPLICATION });
    for (let i = 0; ; i++) {
        session.send(`SELECT 'lock=' || pg_try_advisory_lock(${BACKUP_LOCK_KEY});`, `\\echo __tried_${i}__`);
        if (!(await session.waitFor(`__tried_${i}__`))) {
            await session.end(false);
            throw new Error(`cannot take the backup lock: ${session.stderr || "psql ended"}`);
        }
        const answers = session.stdout.split("\n").filter((l) => l.startsWith("lock="));
        if (answers[answers.length - 1] === "lock=true") break;
        if (i >= waitSeconds) {
            await session.end(false);
            throw new LockTimeout(`another backup still holds the backup lock after ${waitSeconds} s`);
        }
        await sleep(1000);
    }
    return {
        release: async () => {
            await session.end(false);
        },
    };
}
