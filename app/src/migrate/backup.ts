import { spawn } from "node:child_process";
import { accessSync, constants, createWriteStream, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import type { Target } from "./connect";
import { MigrateError, redact } from "./errors";

/** `20250102T030405Z`: sorts in time order, no characters that need quoting. */
export function utcStamp(date = new Date()): string {
    return date
        .toISOString()
        .replace(/[-:]/g, "")
        .replace(/\.\d{3}Z$/, "Z");
}

/**
 * pg_dump 17 (the only one that dumps a 16 server on Debian bookworm and trixie) writes
 * `SET transaction_timeout = 0;`, which a server older than 17 rejects on restore ("unrecognized
 * configuration parameter"). Drop that line, which only appears in the header, when the server is older.
 */
class DropTransactionTimeout extends Transform {
    private head = "";
    private done: boolean;
    constructor(enabled: boolean) {
        super();
        this.done = !enabled;
    }
    _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
        if (this.done) return cb(null, chunk);
        this.head += chunk.toString("utf8");
        if (this.head.length < 64 * 1024) return cb();
        this.flushHead();
        cb();
    }
    _flush(cb: TransformCallback): void {
        if (!this.done) this.flushHead();
        cb();
    }
    private flushHead(): void {
        this.done = true;
        this.push(Buffer.from(this.head.replace(/^SET transaction_timeout = 0;\n/m, ""), "utf8"));
        this.head = "";
    }
}

export interface BackupOptions {
    target: Target;
    dir: string;
    /** Name of the file part after `-before-`, e.g. `003_add_region` or `down-002_add_indexes`. */
    label: string;
    /** server_version_num of the target server. */
    serverVersionNum: number;
    /** pg_dump to run: env PG_DUMP, else `pg_dump` on PATH. */
    pgDump?: string;
    /**
     * pg_dump's `--lock-wait-timeout`, in ms: how long it may wait for each table's ACCESS SHARE lock.
     * Without it a table held in ACCESS EXCLUSIVE elsewhere makes the deploy hang, lock held, forever.
     */
    lockWaitTimeoutMs: number;
}

/**
 * Writes `<dir>/<UTC stamp>-before-<label>.sql.gz` with pg_dump (plain SQL, gzipped in node) and returns
 * its path. Credentials reach pg_dump through PG* variables, never its arguments. Fails closed: any error
 * removes the partial file and throws, and the caller applies nothing.
 */
export async function backupDatabase(opts: BackupOptions): Promise<string> {
    const pgDump = opts.pgDump ?? (process.env.PG_DUMP || "pg_dump");
    const { target } = opts;
    try {
        mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
        throw new MigrateError(
            `cannot create the backup directory ${opts.dir}: ${(err as Error).message}; fix its permissions or point --backup-dir elsewhere; nothing was changed`,
            { cause: err },
        );
    }
    try {
        accessSync(opts.dir, constants.W_OK | constants.X_OK);
    } catch (err) {
        const uid = typeof process.getuid === "function" ? ` by uid ${process.getuid()}` : "";
        throw new MigrateError(
            `the backup directory ${opts.dir} is not writable${uid} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); fix its owner or permissions, or point --backup-dir elsewhere; nothing was changed`,
            { cause: err },
        );
    }
    const file = join(opts.dir, `${utcStamp()}-before-${opts.label}.sql.gz`);
    const partial = `${file}.partial`;
    const env: NodeJS.ProcessEnv = {
        ...process.env,
        PGHOST: target.host,
        PGPORT: String(target.port),
        PGUSER: target.user,
        PGDATABASE: target.database,
        PGAPPNAME: "marvel-rivals-stats-backup",
    };
    if (target.password !== undefined) env.PGPASSWORD = target.password;
    else delete env.PGPASSWORD;
    if (target.sslmode !== undefined) env.PGSSLMODE = target.sslmode;
    // The URL must not leak to pg_dump through an inherited variable that it does not read anyway.
    delete env.DATABASE_URL;

    const args = ["--no-password", "--format=plain", "--no-owner", `--lock-wait-timeout=${opts.lockWaitTimeoutMs}`];
    const child = spawn(pgDump, args, {
        env,
        stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
        if (stderr.length < 8192) stderr += d.toString("utf8");
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((res) => {
        child.on("error", (error) => res({ code: null, signal: null, error }));
        child.on("close", (code, signal) => res({ code, signal }));
    });
    const filter = new DropTransactionTimeout(opts.serverVersionNum < 170000);
    try {
        const written = pipeline(child.stdout, filter, createGzip(), createWriteStream(partial, { mode: 0o600 })).then(
            () => null,
            (e: Error) => e,
        );
        const [result, writeError] = await Promise.all([exited, written]);
        // A failed write stops pg_dump too (a broken pipe): the write is the cause, not pg_dump.
        if (writeError) throw writeError;
        if (result.error) {
            throw new MigrateError(
                `backup failed: cannot run ${pgDump}: ${result.error.message}; install a pg_dump >= 16 (Debian: postgresql-client-17 from trixie, or .ci/pg-dump.sh) and set PG_DUMP to its path, or turn backups off; nothing was changed`,
                { cause: result.error },
            );
        }
        if (result.code !== 0) {
            const msg = redact(stderr.trim(), target.password) || "no error output";
            const how = result.code === null ? `was killed by ${result.signal}` : `exited ${result.code}`;
            // pg_dump reports --lock-wait-timeout as a statement timeout on its LOCK TABLE.
            const lockWait = /LOCK TABLE|statement timeout|could not obtain lock/i.test(stderr);
            throw new MigrateError(
                lockWait
                    ? `backup failed: ${pgDump} ${how}: ${msg}; another session held a lock on a table pg_dump must read for longer than ${opts.lockWaitTimeoutMs} ms (--lock-timeout); run again when the database is quieter, find the holder in pg_locks / pg_stat_activity, or raise --lock-timeout; nothing was changed`
                    : `backup failed: ${pgDump} ${how}: ${msg}; fix pg_dump (it must be >= the server's major version) and run again; nothing was changed`,
            );
        }
        renameSync(partial, file);
        supersede(opts.dir, file, opts.label);
        return file;
    } catch (err) {
        rmSync(partial, { force: true });
        if (err instanceof MigrateError) throw err;
        throw new MigrateError(`backup failed writing ${partial}: ${(err as Error).message}; nothing was changed`, {
            cause: err,
        });
    }
}

/**
 * One dump per pending set (issue 20): older dumps taken before the same first pending migration are
 * removed once the new one is complete. That migration is pending again, so each of them was taken before
 * an attempt that did not stay applied (a failed deploy, retried); the new dump holds the same schema with
 * newer data. Dumps before other migrations, and the scheduled ones, are never touched.
 */
function supersede(dir: string, kept: string, label: string): void {
    const suffix = `-before-${label}.sql.gz`;
    for (const name of readdirSync(dir)) {
        if (!name.endsWith(suffix) || !/^\d{8}T\d{6}Z-before-/.test(name) || join(dir, name) === kept) continue;
        rmSync(join(dir, name), { force: true });
    }
}
