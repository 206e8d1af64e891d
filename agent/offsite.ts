// The off-site copy (issue 22, item 1): after each passed dump the agent pushes the dump and its JSON record
// to a second machine with restic (https://restic.readthedocs.io, Debian package `restic`). restic, not code
// of ours, because it already is what the issue asks for: every file is encrypted and authenticated
// (AES-256-CTR + Poly1305, the key derived from the repository password by scrypt) so a copy of the target
// alone reveals nothing; storage is content-addressed (SHA-256 blob IDs) so each copy is checksummed and a
// second push of the same bytes stores nothing; `forget --keep-daily/--keep-weekly/--keep-monthly` is the
// tiered pruning; `check --read-data` re-reads and re-hashes every byte on the target; and one tool speaks
// SFTP and S3 alike. age + rclone would give encryption and transport but leave pruning, checksums and
// verification to us.
//
// Self-contained (node built-ins only): the agent imports it, the tests and the disaster-recovery script
// drive it directly. Secrets never pass through argv or a log: restic reads the repository password from a
// file (RESTIC_PASSWORD_FILE), SSH its key from a file in a private directory made for the call, S3 its
// credentials from a file (AWS_SHARED_CREDENTIALS_FILE). Every failure is an OffsiteError whose message is
// one line naming the target and the fix.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import * as path from "node:path";

/** The restic `--host` of every snapshot: a container's hostname changes with each container. */
export const OFFSITE_HOST = "marvel-rivals-stats";

export interface OffsiteTarget {
    /** The restic repository: `sftp:user@host:/path`, `sftp://user@host:port//path` or `s3:https://host/bucket/path`. */
    repository: string;
    /** A file holding the repository password (first line). */
    passwordFile: string;
    /** SFTP: the private key that logs in to the target. */
    sshKeyFile?: string;
    /** SFTP: the target's host key(s), in known_hosts form (`[host]:port` when the port is not 22). */
    knownHostsFile?: string;
    /** S3: an AWS shared credentials file (`[default]` with aws_access_key_id and aws_secret_access_key). */
    s3CredentialsFile?: string;
    /** The restic binary; `restic` on PATH by default. */
    restic?: string;
    /** A directory restic may keep its cache in; none (`--no-cache`) by default. */
    cacheDir?: string;
}

/** Snapshots kept: the newest one of each of the last N days, weeks and months (restic forget's rule). */
export interface OffsitePolicy {
    daily: number;
    weekly: number;
    monthly: number;
}

export interface OffsiteSnapshot {
    id: string;
    time: string;
    tags: string[];
    /** The file names it holds (the dump and its record). */
    files: string[];
}

/** A failure, in one line naming the target and the fix. */
export class OffsiteError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "OffsiteError";
    }
}

interface SftpParts {
    user?: string;
    host: string;
    port?: number;
    path: string;
}

/** The user, host, port and path of an sftp: repository (both of restic's forms), else undefined. */
export function parseSftp(repository: string): SftpParts | undefined {
    // sftp://user@host:port//path (restic's URL form: the path after the first slash)
    let m = /^sftp:\/\/(?:([^@/]+)@)?([^:/]+)(?::(\d+))?\/(.+)$/.exec(repository);
    if (m) return { user: m[1], host: m[2], port: m[3] ? Number(m[3]) : undefined, path: m[4] };
    // sftp:user@host:/path (scp-like)
    m = /^sftp:(?:([^@/:]+)@)?([^:/]+):(.+)$/.exec(repository);
    if (m) return { user: m[1], host: m[2], path: m[3] };
    return undefined;
}

/** What is wrong with a repository URL for an off-site copy, or undefined. */
export function repositoryProblem(repository: string): string | undefined {
    if (repository.startsWith("sftp:")) {
        const p = parseSftp(repository);
        if (!p || !p.path) return "must be sftp:user@host:/path or sftp://user@host:port//path";
        if (/\s/.test(repository)) return "must not contain spaces";
        return undefined;
    }
    if (repository.startsWith("s3:")) {
        if (!/^s3:https?:\/\/[^/\s]+\/[^\s]+$/.test(repository))
            return "must be s3:https://host/bucket[/path] (s3:http:// only for a server on a private network)";
        return undefined;
    }
    return "must be an SFTP or S3 restic repository on another machine: sftp:user@host:/path or s3:https://host/bucket/path";
}

function describe(target: OffsiteTarget): string {
    return `off-site target ${target.repository}`;
}

/** The first line of restic's stderr that says something (not its progress or a blank). */
function firstProblem(stderr: string): string {
    const lines = stderr
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !/^(ssh command line|subprocess ssh:)/.test(l));
    const fatal = lines.find((l) => l.startsWith("Fatal:")) ?? lines.find((l) => /error/i.test(l)) ?? lines[0];
    return (fatal ?? "no message").replace(/^Fatal:\s*/, "");
}

/** restic's complaint turned into the one-line error the user acts on. */
export function explain(target: OffsiteTarget, op: string, stderr: string, code: number | null): OffsiteError {
    const where = describe(target);
    const s = stderr;
    if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/.test(s))
        return new OffsiteError(
            `${where}: its SSH host key is not the one in backupOffsiteKnownHosts; add the target's key (\`ssh-keyscan -p PORT HOST\`, checked against the target's own /etc/ssh/*.pub) with \`pulumi config set backupOffsiteKnownHosts\``,
        );
    if (/Permission denied \(publickey/.test(s))
        return new OffsiteError(
            `${where}: the target refused the SSH key; add the public half of backupOffsiteSshKey to the target user's ~/.ssh/authorized_keys`,
        );
    if (
        /Connection refused|Could not resolve hostname|No route to host|Connection timed out|Network is unreachable/.test(
            s,
        )
    )
        return new OffsiteError(
            `${where}: cannot be reached (${firstProblem(s)}); check that the host is up and its SSH/S3 port is open from the server`,
        );
    if (/wrong password or no key found/.test(s))
        return new OffsiteError(
            `${where}: the password does not open the repository; set backupOffsitePassword to the one the repository was created with (from your password manager)`,
        );
    if (/Is there a repository at the following location|unable to open config file|repository does not exist/.test(s))
        return new OffsiteError(
            `${where}: holds no restic repository yet; the agent creates it on its first push (or run \`restic init\` against it)`,
        );
    if (/repository is already locked|unable to create lock/.test(s))
        return new OffsiteError(
            `${where}: is locked by another restic run; wait for it, or if none is running, remove a stale lock with \`restic unlock\``,
        );
    if (op === "check")
        return new OffsiteError(
            `${where}: restic check --read-data found damaged data (${firstProblem(s)}); the copies there cannot be trusted: run \`restic repair\` or push to a fresh repository, and keep the local dumps until it passes`,
        );
    return new OffsiteError(`${where}: restic ${op} failed (exit ${code}): ${firstProblem(s)}`);
}

interface Run {
    stdout: string;
    stderr: string;
}

/**
 * Runs restic with the target's secrets in files. An SFTP target gets an ssh config of its own in a private
 * temporary directory (the key copied there 0600, since OpenSSH refuses a key others may read and the
 * container's copy is root's), host keys checked strictly against the given known_hosts, removed after.
 */
async function restic(
    target: OffsiteTarget,
    op: string,
    args: string[],
    opts: { cwd?: string; okCodes?: number[] } = {},
): Promise<Run> {
    const env: Record<string, string> = {
        PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
        HOME: process.env.HOME ?? tmpdir(),
        // restic's buckets for daily/weekly/monthly follow the local time zone: one zone wherever it runs.
        TZ: "UTC",
        RESTIC_PASSWORD_FILE: target.passwordFile,
    };
    const extra: string[] = [];
    let scratch: string | undefined;
    try {
        if (target.repository.startsWith("sftp:")) {
            const sftp = parseSftp(target.repository);
            if (!sftp) throw new OffsiteError(`${describe(target)}: ${repositoryProblem(target.repository)}`);
            if (!target.sshKeyFile || !target.knownHostsFile)
                throw new OffsiteError(
                    `${describe(target)}: an SFTP target needs backupOffsiteSshKey and backupOffsiteKnownHosts; set both`,
                );
            scratch = mkdtempSync(path.join(tmpdir(), "mrs-offsite-"));
            // OpenSSH's client looks its user up and stops ("No user exists for uid ...") when the uid has
            // no passwd entry, as the backup container's stack owner has not: one through nss_wrapper (the
            // backup image's libnss-wrapper), as the verify's temporary cluster does.
            if (!hasPasswdEntry()) {
                const uid = process.getuid?.() ?? 0;
                const gid = process.getgid?.() ?? 0;
                writeFileSync(path.join(scratch, "passwd"), `backup:x:${uid}:${gid}:backup agent:${scratch}:/bin/sh\n`);
                writeFileSync(path.join(scratch, "group"), `backup:x:${gid}:\n`);
                env.LD_PRELOAD = "libnss_wrapper.so";
                env.NSS_WRAPPER_PASSWD = path.join(scratch, "passwd");
                env.NSS_WRAPPER_GROUP = path.join(scratch, "group");
                env.HOME = scratch;
            }
            const key = path.join(scratch, "key");
            writeFileSync(key, readFileSync(target.sshKeyFile), { mode: 0o600 });
            const config = path.join(scratch, "ssh_config");
            writeFileSync(
                config,
                [
                    "Host *",
                    `  IdentityFile ${key}`,
                    "  IdentitiesOnly yes",
                    `  UserKnownHostsFile ${target.knownHostsFile}`,
                    "  GlobalKnownHostsFile /dev/null",
                    "  StrictHostKeyChecking yes",
                    "  BatchMode yes",
                    "  ConnectTimeout 20",
                    "  ServerAliveInterval 15",
                    "  ServerAliveCountMax 4",
                    "",
                ].join("\n"),
                { mode: 0o600 },
            );
            const ssh = ["ssh", "-F", config];
            if (sftp.port) ssh.push("-p", String(sftp.port));
            if (sftp.user) ssh.push("-l", sftp.user);
            ssh.push(sftp.host, "-s", "sftp");
            extra.push("-o", `sftp.command=${ssh.join(" ")}`);
        } else if (target.repository.startsWith("s3:")) {
            // restic's S3 back end takes minio-go's credential chain (restic v0.14.0,
            // internal/backend/s3/s3.go, open: EnvAWS, EnvMinio, FileAWSCredentials, ...), and
            // FileAWSCredentials reads AWS_SHARED_CREDENTIALS_FILE: the keys stay in a file.
            if (!target.s3CredentialsFile)
                throw new OffsiteError(
                    `${describe(target)}: an S3 target needs backupOffsiteS3Credentials (an AWS credentials file's text); set it with --secret`,
                );
            env.AWS_SHARED_CREDENTIALS_FILE = target.s3CredentialsFile;
        } else {
            throw new OffsiteError(`${describe(target)}: ${repositoryProblem(target.repository)}`);
        }
        const cache = target.cacheDir ? ["--cache-dir", target.cacheDir] : ["--no-cache"];
        const argv = ["-r", target.repository, ...cache, ...extra, ...args];
        const bin = target.restic ?? "restic";
        return await new Promise<Run>((resolve, reject) => {
            const child = spawn(bin, argv, { cwd: opts.cwd, env, stdio: ["ignore", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
            child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
            child.on("error", (err: NodeJS.ErrnoException) =>
                reject(
                    new OffsiteError(
                        err.code === "ENOENT"
                            ? `${describe(target)}: restic is not installed where the agent runs (${bin}); the backup image installs it (apt-get install restic)`
                            : `${describe(target)}: restic could not start: ${err.message}`,
                    ),
                ),
            );
            child.on("close", (code) => {
                if (code === 0 || (code !== null && (opts.okCodes ?? []).includes(code))) resolve({ stdout, stderr });
                else reject(explain(target, op, stderr, code));
            });
        });
    } finally {
        if (scratch) rmSync(scratch, { recursive: true, force: true });
    }
}

/** Whether this process's uid has a passwd entry (os.userInfo throws when it has none). */
function hasPasswdEntry(): boolean {
    try {
        userInfo();
        return true;
    } catch {
        return false;
    }
}

/** Creates the repository when there is none; a repository already there must open with the password. */
export async function initOffsite(target: OffsiteTarget): Promise<"created" | "exists"> {
    try {
        await restic(target, "cat config", ["cat", "config"]);
        return "exists";
    } catch (err) {
        if (!(err instanceof OffsiteError) || !/holds no restic repository/.test(err.message)) throw err;
    }
    await restic(target, "init", ["init"]);
    return "created";
}

/**
 * Pushes one dump and its record (files in one directory) as one snapshot, tagged `dump=<name of the first
 * file>` plus the tags given. `time` backdates the snapshot (tests and imports of older dumps). Returns the
 * snapshot's ID.
 */
export async function pushOffsite(
    target: OffsiteTarget,
    files: string[],
    tags: string[] = [],
    opts: { time?: Date } = {},
): Promise<string> {
    if (files.length === 0) throw new OffsiteError(`${describe(target)}: nothing to push (no files given)`);
    const dir = path.dirname(path.resolve(files[0]));
    for (const f of files) {
        if (path.dirname(path.resolve(f)) !== dir)
            throw new OffsiteError(`${describe(target)}: the files of one push must share a directory (${f})`);
    }
    for (const t of tags) {
        if (/[,\s]/.test(t) || t === "")
            throw new OffsiteError(`${describe(target)}: the tag ${JSON.stringify(t)} has a comma or space`);
    }
    await initOffsite(target);
    const args = ["backup", "--json", "--host", OFFSITE_HOST, "--tag", `dump=${path.basename(files[0])}`];
    for (const t of tags) args.push("--tag", t);
    if (opts.time) args.push("--time", opts.time.toISOString().slice(0, 19).replace("T", " "));
    args.push(...files.map((f) => path.basename(f)));
    const { stdout } = await restic(target, "backup", args, { cwd: dir });
    for (const line of stdout.split("\n").reverse()) {
        try {
            const msg = JSON.parse(line) as { message_type?: string; snapshot_id?: string };
            if (msg.message_type === "summary" && msg.snapshot_id) return msg.snapshot_id;
        } catch {
            // progress lines: skip
        }
    }
    throw new OffsiteError(`${describe(target)}: restic backup printed no snapshot ID; run it by hand to see why`);
}

/** Every snapshot of this stack's host on the target, oldest first, with the files each holds. */
export async function listOffsite(target: OffsiteTarget): Promise<OffsiteSnapshot[]> {
    const { stdout } = await restic(target, "snapshots", ["snapshots", "--json", "--host", OFFSITE_HOST]);
    const raw = JSON.parse(stdout || "[]") as { id: string; time: string; tags?: string[]; paths?: string[] }[];
    return raw
        .map((s) => ({
            id: s.id,
            time: s.time,
            tags: s.tags ?? [],
            files: (s.paths ?? []).map((p) => path.posix.basename(p)),
        }))
        .sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
}

/**
 * Restores the newest snapshot holding `name` (a dump's file name, or `latest`) into `dir`, which must not
 * hold those files yet. Returns the restored files' paths.
 */
export async function restoreOffsite(target: OffsiteTarget, name: string, dir: string): Promise<string[]> {
    const snapshots = await listOffsite(target);
    const chosen = name === "latest" ? snapshots.at(-1) : [...snapshots].reverse().find((s) => s.files.includes(name));
    if (!chosen)
        throw new OffsiteError(
            `${describe(target)}: has no copy of ${name}; list what it has with \`restic snapshots\` (or listOffsite) and pick one of those`,
        );
    await restic(target, "restore", ["restore", chosen.id, "--target", dir]);
    return chosen.files.map((f) => path.join(dir, f));
}

/**
 * Forgets the snapshots the policy does not keep and prunes their data. The newest snapshot is always kept
 * (daily is at least 1). Returns the IDs kept and removed.
 */
export async function pruneOffsite(
    target: OffsiteTarget,
    policy: OffsitePolicy,
): Promise<{ kept: string[]; removed: string[] }> {
    for (const [k, v] of Object.entries(policy)) {
        if (!Number.isInteger(v) || v < 0 || (k === "daily" && v < 1))
            throw new OffsiteError(
                `${describe(target)}: the retention ${k}=${v} is not allowed; daily must be at least 1 (the newest copy is always kept), weekly and monthly 0 or more`,
            );
    }
    // Grouped by host only: each snapshot's paths name its own dump, so restic's default grouping (host and
    // paths) would make every snapshot a group of one and keep them all.
    const { stdout } = await restic(target, "forget", [
        "forget",
        "--json",
        "--host",
        OFFSITE_HOST,
        "--group-by",
        "host",
        "--keep-daily",
        String(policy.daily),
        "--keep-weekly",
        String(policy.weekly),
        "--keep-monthly",
        String(policy.monthly),
    ]);
    const groups = JSON.parse(stdout || "[]") as { keep?: { id: string }[] | null; remove?: { id: string }[] | null }[];
    const kept = groups.flatMap((g) => (g.keep ?? []).map((s) => s.id));
    const removed = groups.flatMap((g) => (g.remove ?? []).map((s) => s.id));
    // forget --prune would mix prune's text into the JSON (restic 0.14): prune on its own.
    if (removed.length > 0) await restic(target, "prune", ["prune"]);
    return { kept, removed };
}

/** Re-reads every byte on the target and checks it against its hash (`restic check --read-data`). */
export async function verifyOffsite(target: OffsiteTarget): Promise<void> {
    await restic(target, "check", ["check", "--read-data"]);
}

/**
 * How the backup container is told about its target (components/offsite.ts writes them): the repository and
 * the retention as values, every secret as the path of a file. None of these variables holds a secret.
 */
export const OFFSITE_ENV = {
    repository: "BACKUP_OFFSITE_REPOSITORY",
    keep: "BACKUP_OFFSITE_KEEP",
    passwordFile: "BACKUP_OFFSITE_PASSWORD_FILE",
    sshKeyFile: "BACKUP_OFFSITE_SSH_KEY_FILE",
    knownHostsFile: "BACKUP_OFFSITE_KNOWN_HOSTS_FILE",
    s3CredentialsFile: "BACKUP_OFFSITE_S3_CREDENTIALS_FILE",
} as const;

/** The agent's target and retention from its environment; undefined when no off-site copy is configured. */
export function offsiteFromEnv(
    env: Record<string, string | undefined>,
): { target: OffsiteTarget; policy: OffsitePolicy } | undefined {
    const repository = env[OFFSITE_ENV.repository];
    if (!repository) return undefined;
    const passwordFile = env[OFFSITE_ENV.passwordFile];
    if (!passwordFile)
        throw new OffsiteError(
            `off-site target ${repository}: ${OFFSITE_ENV.passwordFile} is unset; run \`npm run up\` so the container gets backupOffsitePassword`,
        );
    const keep = env[OFFSITE_ENV.keep] ?? "7/4/6";
    const m = /^(\d+)\/(\d+)\/(\d+)$/.exec(keep);
    if (!m)
        throw new OffsiteError(
            `off-site target ${repository}: ${OFFSITE_ENV.keep} is ${JSON.stringify(keep)}, not daily/weekly/monthly counts such as 7/4/6; set backupOffsiteKeep and run \`npm run up\``,
        );
    return {
        target: {
            repository,
            passwordFile,
            sshKeyFile: env[OFFSITE_ENV.sshKeyFile] || undefined,
            knownHostsFile: env[OFFSITE_ENV.knownHostsFile] || undefined,
            s3CredentialsFile: env[OFFSITE_ENV.s3CredentialsFile] || undefined,
        },
        policy: { daily: Number(m[1]), weekly: Number(m[2]), monthly: Number(m[3]) },
    };
}

/**
 * What the agent runs after a dump passed its check: push the dump and its record, then apply the
 * retention. One call, one line to log: the snapshot and how many copies the target keeps.
 */
export async function syncOffsite(
    target: OffsiteTarget,
    policy: OffsitePolicy,
    files: string[],
    tags: string[] = [],
): Promise<{ snapshot: string; kept: number; removed: number; line: string }> {
    const snapshot = await pushOffsite(target, files, tags);
    const { kept, removed } = await pruneOffsite(target, policy);
    return {
        snapshot,
        kept: kept.length,
        removed: removed.length,
        line: `off-site: ${path.basename(files[0])} pushed to ${target.repository} (snapshot ${snapshot.slice(0, 8)}); ${kept.length} kept there, ${removed.length} pruned (keep ${policy.daily}/${policy.weekly}/${policy.monthly})`,
    };
}
