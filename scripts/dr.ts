// Disaster recovery (issue 22, item 6): `npm run dr -- --stack S [--dump NAME|latest]` brings the database
// back from the off-site copy alone, on a new machine whose stack was brought up with an empty dataDir.
// What it needs is what the docs tell the user to keep off the server: the Pulumi state (the stack's config
// and secrets: the target, its password, the SSH key) and the repository password itself (in the state as a
// secret, and in the user's password manager should the state be lost with the server).
//
// The dump is restored with `pg_restore --create`: only then does pg_restore apply the dump's DATABASE
// PROPERTIES entry (ALTER DATABASE ... SET) and the database's ACL (GRANT ... ON DATABASE), which a restore
// into an existing database silently leaves out (PostgreSQL docs, pg_dump: "use --create ... to restore
// database-level properties"). So the empty database the `up` made is dropped first, and only when it holds
// no row outside the migration history: this script never removes data.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { OffsiteError, restoreOffsite, type OffsiteTarget } from "../agent/offsite";
import { configCommand } from "../config";
import {
    PROJECT_DIR,
    Refusal,
    UsageError,
    docker,
    eachArg,
    engineName,
    refusalExit,
    runAsProgram,
    stackName,
    stackTarget,
} from "./target";

/** The cluster the drill restores into, as the drill needs it. */
export interface DrDatabase {
    /** Runs one SQL statement on `database` (default `postgres`); rows as arrays of text. */
    query(sql: string, database?: string): Promise<string[][]>;
    /** `pg_restore --create --exit-on-error -d postgres` with the dump on stdin. */
    restoreCreate(dumpFile: string): Promise<void>;
}

export interface DrOptions {
    target: OffsiteTarget;
    /** A dump's file name on the target, or `latest`. */
    dump: string;
    /** The database the dump holds (the stack's dbName). */
    dbName: string;
    db: DrDatabase;
    /** Where the dump is fetched to (a private temporary directory is made in it and removed after). */
    workDir?: string;
    say?: (line: string) => void;
}

export interface DrResult {
    dump: string;
    sha256: string;
    /** Seconds spent fetching from the target, and restoring. */
    fetchSeconds: number;
    restoreSeconds: number;
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** Rows in every table of `dbName` outside the catalogs and the migration history, largest first. */
async function userRows(db: DrDatabase, dbName: string): Promise<{ table: string; rows: number }[]> {
    const tables = await db.query(
        `SELECT quote_ident(schemaname) || '.' || quote_ident(relname) FROM pg_stat_user_tables
         WHERE relname NOT LIKE '%migrations%' ORDER BY 1`,
        dbName,
    );
    const out: { table: string; rows: number }[] = [];
    for (const [table] of tables) {
        const [[n]] = await db.query(`SELECT count(*) FROM ${table}`, dbName);
        if (Number(n) > 0) out.push({ table, rows: Number(n) });
    }
    return out.sort((a, b) => b.rows - a.rows);
}

const sha256File = (file: string) =>
    new Promise<string>((resolve, reject) => {
        const h = createHash("sha256");
        createReadStream(file)
            .on("data", (c) => h.update(c))
            .on("end", () => resolve(h.digest("hex")))
            .on("error", reject);
    });

/**
 * Fetches `dump` (and its record) from the off-site target, checks its SHA-256 against the record, and
 * restores it with its database-level settings and grants into a cluster whose `dbName` is absent or empty.
 */
export async function disasterRestore(opts: DrOptions): Promise<DrResult> {
    const say = opts.say ?? (() => undefined);
    const exists = await opts.db.query(`SELECT 1 FROM pg_database WHERE datname = ${literal(opts.dbName)}`);
    if (exists.length > 0) {
        const data = await userRows(opts.db, opts.dbName);
        if (data.length > 0)
            throw new Refusal(
                `the database ${opts.dbName} already holds data (${data[0].rows} rows in ${data[0].table}${data.length > 1 ? ` and ${data.length - 1} more tables` : ""}): the drill restores only into a new, empty one; for a running stack use \`npm run restore\``,
            );
    }
    const work = mkdtempSync(path.join(opts.workDir ?? tmpdir(), "mrs-dr-"));
    try {
        let started = Date.now();
        say(`fetching ${opts.dump} from ${opts.target.repository}`);
        const files = await restoreOffsite(opts.target, opts.dump, work);
        const dump = files.find((f) => !f.endsWith(".json"));
        if (!dump) throw new Refusal(`the copy of ${opts.dump} on ${opts.target.repository} holds no dump file`);
        const recordFile = files.find((f) => f === `${dump}.json`);
        const sha256 = await sha256File(dump);
        if (recordFile) {
            const record = JSON.parse(readFileSync(recordFile, "utf8")) as { sha256?: string; status?: string };
            if (record.sha256 && record.sha256 !== sha256)
                throw new Refusal(
                    `${path.basename(dump)} from ${opts.target.repository} does not match its record's SHA-256: pick another with --dump (restic snapshots lists them) and run \`restic check --read-data\` on the target`,
                );
            if (record.status && record.status !== "passed")
                say(`warning: ${path.basename(dump)} is recorded as ${record.status}, not passed`);
        }
        const fetchSeconds = (Date.now() - started) / 1000;
        started = Date.now();
        if (exists.length > 0) {
            say(`dropping the empty database ${opts.dbName} the up created, to restore it with its settings`);
            await opts.db.query(`DROP DATABASE ${ident(opts.dbName)} WITH (FORCE)`);
        }
        say(`restoring ${path.basename(dump)} (pg_restore --create: the database's settings and grants too)`);
        await opts.db.restoreCreate(dump);
        const restoreSeconds = (Date.now() - started) / 1000;
        return { dump: path.basename(dump), sha256, fetchSeconds, restoreSeconds };
    } finally {
        rmSync(work, { recursive: true, force: true });
    }
}

/**
 * The drill's view of a stack's Postgres container: psql and pg_restore of the server's own version run in
 * it through its local socket as `user` (the image's superuser, dbUser), no password, no port.
 */
export function containerDatabase(host: string | undefined, pg: string, user: string): DrDatabase {
    const where = host ?? "the local engine";
    return {
        async query(sql, database = "postgres") {
            const r = await docker(host, [
                "exec",
                pg,
                "psql",
                "-X",
                "-tA",
                "-F",
                "\t",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                user,
                "-d",
                database,
                "-c",
                sql,
            ]);
            if (r.code !== 0)
                throw new Refusal(
                    `psql in ${pg} on ${where} failed: ${r.stderr.trim().split("\n")[0]}; is the stack up? (npm run status -- --stack <name>)`,
                );
            return r.stdout
                .split("\n")
                .filter((l) => l !== "")
                .map((l) => l.split("\t"));
        },
        restoreCreate: (dumpFile) =>
            new Promise((resolve, reject) => {
                const child = spawn(
                    "docker",
                    // PGUSER as well as -U: the offline stand-in's pg_restore (.ci/images/postgres/pg_restore) hands
                    // its script to psql without -U; the official image's pg_restore takes either.
                    [
                        "exec",
                        "-i",
                        "-e",
                        `PGUSER=${user}`,
                        pg,
                        "pg_restore",
                        "--create",
                        "--exit-on-error",
                        "-U",
                        user,
                        "-d",
                        "postgres",
                    ],
                    {
                        env: { ...process.env, ...(host ? { DOCKER_HOST: host } : {}) },
                        stdio: ["pipe", "ignore", "pipe"],
                    },
                );
                let err = "";
                child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
                // An early exit closes stdin: the close handler reports it, not an EPIPE.
                child.stdin.on("error", () => undefined);
                createReadStream(dumpFile).pipe(child.stdin);
                child.on("error", reject);
                child.on("close", (code) =>
                    code === 0
                        ? resolve()
                        : reject(new Refusal(`pg_restore in ${pg} failed: ${err.trim().split("\n")[0]}`)),
                );
            }),
    };
}

// ---- the command line

const USAGE = "usage: npm run dr -- --stack <dev|odin> [--dump <file name>|latest]";

/**
 * The environment the Pulumi CLI gets: the project's defaults as scripts/pulumi.sh sets them (state in
 * ./.pulumi-state, secrets under its passphrase file) unless the user's environment says otherwise; unlike
 * pulumi.sh, nothing is created: a machine without the state must be given it, not a new empty one.
 */
function pulumiEnv(): NodeJS.ProcessEnv {
    const state = path.join(PROJECT_DIR, ".pulumi-state");
    const env = { ...process.env };
    env.PULUMI_BACKEND_URL ??= `file://${state}`;
    const passphrase = path.join(state, "passphrase");
    if (!env.PULUMI_CONFIG_PASSPHRASE && !env.PULUMI_CONFIG_PASSPHRASE_FILE && existsSync(passphrase))
        env.PULUMI_CONFIG_PASSPHRASE_FILE = passphrase;
    return env;
}

/**
 * A stack's config value as the Pulumi CLI decrypts it, undefined when unset. `pulumi config get` prints a
 * secret's plain value and a newline on stdout (pulumi/pulumi pkg/cmd/pulumi/config/config.go, getConfig:
 * `v.Value(decrypter)`, `fmt.Fprintf(out, "%v\n", raw)`), captured here and never printed; an unset key is
 * its error "configuration key '...' not found".
 */
function pulumiConfigGet(stack: string, key: string): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
        const child = spawn("pulumi", ["config", "get", `marvel-rivals-stats:${key}`, "--stack", stack], {
            env: pulumiEnv(),
            stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
        child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
        child.on("error", (e) =>
            reject(
                new Refusal(
                    `cannot run the Pulumi CLI (${e.message}): install it, and put the stack's state (.pulumi-state with its passphrase, or your backend's login) on this machine`,
                ),
            ),
        );
        child.on("close", (code) => {
            if (code === 0) resolve(out.replace(/\n$/, ""));
            else if (/configuration key .* not found/.test(err)) resolve(undefined);
            else
                reject(
                    new Refusal(
                        `pulumi config get ${key} --stack ${stack} failed (${err.trim().split("\n")[0]}): the drill needs the stack's Pulumi state and its passphrase on this machine (docs/offsite-backups.md)`,
                    ),
                );
        });
    });
}

export async function main(argv: string[]): Promise<number> {
    let stack: string | undefined;
    let dump = "latest";
    try {
        eachArg(argv, (arg, value) => {
            if (arg === "--stack") stack = stackName(value());
            else if (arg === "--dump") dump = value();
            else throw new UsageError(`unknown argument ${arg}`);
        });
        if (!stack) throw new UsageError("--stack is required");
    } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`dr: ${err.message}\n${USAGE}\n`);
        return 2;
    }
    const secrets = mkdtempSync(path.join(tmpdir(), "mrs-dr-secrets-"));
    try {
        const t = stackTarget(stack);
        const repository = await pulumiConfigGet(stack, "backupOffsite");
        if (!repository)
            throw new Refusal(
                `the stack ${stack} has no backupOffsite: the drill needs the stack's Pulumi state with its off-site target`,
            );
        const file = async (key: string, name: string) => {
            const v = await pulumiConfigGet(stack!, key);
            if (v === undefined) return undefined;
            const f = path.join(secrets, name);
            writeFileSync(f, `${v}\n`, { mode: 0o600 });
            return f;
        };
        const passwordFile = await file("backupOffsitePassword", "password");
        if (!passwordFile)
            throw new Refusal(
                `the stack ${stack} has no backupOffsitePassword: set it from your password manager (\`${configCommand("set --secret backupOffsitePassword", stack)}\`, which asks for it) and run again`,
            );
        const target: OffsiteTarget = {
            repository,
            passwordFile,
            sshKeyFile: await file("backupOffsiteSshKey", "ssh_key"),
            knownHostsFile: await file("backupOffsiteKnownHosts", "known_hosts"),
            s3CredentialsFile: await file("backupOffsiteS3Credentials", "s3_credentials"),
        };
        const db = containerDatabase(t.host, t.names.postgres, t.dbUser);
        const result = await disasterRestore({
            target,
            dump,
            dbName: t.dbName,
            db,
            say: (l) => process.stdout.write(`dr: ${l}\n`),
        });
        process.stdout.write(
            `dr: ${result.dump} (sha256 ${result.sha256.slice(0, 12)}...) restored into ${t.dbName} on ${engineName(t)}: fetched in ${result.fetchSeconds.toFixed(1)} s, restored in ${result.restoreSeconds.toFixed(1)} s\n`,
        );
        return 0;
    } catch (err) {
        if (err instanceof OffsiteError) return refusalExit("dr", new Refusal(err.message));
        return refusalExit("dr", err);
    } finally {
        rmSync(secrets, { recursive: true, force: true });
    }
}

runAsProgram(module, main);
