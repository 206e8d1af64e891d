// TEST SUPPORT (issue 22): an off-site SFTP target, as a second machine would be. Debian's OpenSSH server
// runs on 127.0.0.1 on a free port with its own config, host key and one authorized client key, all in a
// temporary directory; the user it lets in (mrs-offsite) owns only the directory the repository goes to.
// The client side gets the key and a known_hosts pinning this server's host key, exactly the two files the
// stack's secrets become in the backup container.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { freePort } from "../../../app/test/support/ports";

export const OFFSITE_USER = "mrs-offsite";

export interface SftpTarget {
    port: number;
    /** Directory on the "other machine" holding the repository (its files are what a thief would get). */
    repoDir: string;
    /** The restic repository URL of it. */
    repository: string;
    /** Client files: the private key and known_hosts. */
    keyFile: string;
    knownHostsFile: string;
    /** A known_hosts that pins another key (a man in the middle). */
    wrongKnownHostsFile: string;
    /** The client key's text (what `backupOffsiteSshKey` holds). */
    keyText: string;
    knownHostsText: string;
    stop(): Promise<void>;
}

function must(cmd: string, args: string[]): string {
    const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`);
    return r.stdout;
}

export async function startSftpTarget(): Promise<SftpTarget> {
    if (process.getuid?.() !== 0) throw new Error("the SFTP target needs root (it runs sshd and adds a user)");
    if (spawnSync("/usr/sbin/sshd", ["-V"]).error)
        throw new Error("sshd is not installed: run .ci/setup (apt-get install openssh-server)");
    const dir = mkdtempSync(path.join(tmpdir(), "mrs-offsite-target-"));
    if (spawnSync("id", [OFFSITE_USER]).status !== 0)
        must("useradd", ["--create-home", "--shell", "/bin/sh", OFFSITE_USER]);
    // No password login, but not a locked account ("!"), which sshd refuses without PAM.
    must("usermod", ["-p", "*", OFFSITE_USER]);
    const hostKey = path.join(dir, "host_ed25519");
    const otherHostKey = path.join(dir, "other_host_ed25519");
    const clientKey = path.join(dir, "client_ed25519");
    for (const k of [hostKey, otherHostKey, clientKey]) must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", k]);
    const authorizedKeys = path.join(dir, "authorized_keys");
    writeFileSync(authorizedKeys, readFileSync(`${clientKey}.pub`), { mode: 0o644 });
    const repoDir = path.join(dir, "remote", "repo-parent");
    mkdirSync(repoDir, { recursive: true });
    const uid = Number(must("id", ["-u", OFFSITE_USER]).trim());
    const gid = Number(must("id", ["-g", OFFSITE_USER]).trim());
    chownSync(repoDir, uid, gid);
    for (let d = repoDir; d !== path.dirname(d) && d !== "/tmp"; d = path.dirname(d))
        chmodSync(d, statSync(d).mode | 0o011);
    const port = await freePort();
    const config = path.join(dir, "sshd_config");
    writeFileSync(
        config,
        [
            `Port ${port}`,
            "ListenAddress 127.0.0.1",
            `HostKey ${hostKey}`,
            `PidFile ${path.join(dir, "sshd.pid")}`,
            `AuthorizedKeysFile ${authorizedKeys}`,
            "StrictModes no",
            `AllowUsers ${OFFSITE_USER}`,
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "Subsystem sftp internal-sftp",
            "LogLevel ERROR",
            "",
        ].join("\n"),
    );
    mkdirSync("/run/sshd", { recursive: true });
    const sshd: ChildProcess = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config], {
        stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    sshd.stderr?.on("data", (c: Buffer) => (log += c.toString("utf8")));
    const stop = async () => {
        if (sshd.exitCode === null && sshd.signalCode === null) {
            const exited = new Promise((r) => sshd.once("exit", r));
            sshd.kill("SIGTERM");
            await exited;
        }
        rmSync(dir, { recursive: true, force: true });
    };
    try {
        await waitForPort(port, () => log);
        const pub = (f: string) => readFileSync(`${f}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
        const knownHostsText = `[127.0.0.1]:${port} ${pub(hostKey)}\n`;
        const knownHostsFile = path.join(dir, "known_hosts");
        writeFileSync(knownHostsFile, knownHostsText, { mode: 0o600 });
        const wrongKnownHostsFile = path.join(dir, "wrong_known_hosts");
        writeFileSync(wrongKnownHostsFile, `[127.0.0.1]:${port} ${pub(otherHostKey)}\n`, { mode: 0o600 });
        return {
            port,
            repoDir: path.join(repoDir, "restic"),
            repository: `sftp://${OFFSITE_USER}@127.0.0.1:${port}/${path.join(repoDir, "restic")}`,
            keyFile: clientKey,
            knownHostsFile,
            wrongKnownHostsFile,
            keyText: readFileSync(clientKey, "utf8"),
            knownHostsText,
            stop,
        };
    } catch (err) {
        await stop();
        throw err;
    }
}

async function waitForPort(port: number, log: () => string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
        const ok = await new Promise<boolean>((resolve) => {
            const s = connect(port, "127.0.0.1", () => {
                s.end();
                resolve(true);
            });
            s.on("error", () => resolve(false));
        });
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`sshd did not listen on 127.0.0.1:${port}: ${log()}`);
}
