// TEST SUPPORT (issue 22, item 1): an off-site SFTP target on the stack's own network, for the e2e test of
// the off-site copy and bench:e2e. An OpenSSH server in a container of its own (a second machine as far as
// the agent can tell), from an image built here FROM the stack's Node base (a Debian image, present
// offline) with Debian's openssh-server, kept by the engine's build cache. Its host key, the client key
// and the repository directory are files of the test's directory; the stack's config gets the client key
// and a known_hosts pinning that host key, as a user sets them.
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { nodeImage } from "../../components/backupImage";
import { HARNESS_LABEL } from "./harness/models";

export const SFTP_CONTAINER = "mrs-e2e-offsite-sftp";
const SFTP_IMAGE = "marvel-rivals-stats-e2e/sftp:1";
/** The target's user's uid: it owns the repository directory on the "other machine". */
const SFTP_UID = 2345;

function must(cmd: string, args: string[], input?: string): string {
    const r = spawnSync(cmd, args, { encoding: "utf8", input, timeout: 15 * 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(" ")} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
}

export interface OffsiteTarget {
    /** The host directory the target keeps the restic repository in (`<repoDir>/repo`). */
    repoDir: string;
    /** The stack's config for it: backupOffsite, its password, key and known_hosts. */
    overrides: Record<string, string>;
    /** Which of `overrides` are secrets. */
    secrets: string[];
    /** Starts the server on `network` (the stack's, once `up` made it). */
    start(network: string): void;
}

export function offsiteTarget(work: string, password: string): OffsiteTarget {
    const dockerfile = [
        `FROM ${nodeImage()}`,
        "RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server && rm -rf /var/lib/apt/lists/*",
        `RUN useradd --uid ${SFTP_UID} --no-create-home --home-dir /srv --shell /bin/sh offsite && usermod -p '*' offsite && mkdir -p /run/sshd`,
        `RUN printf '%s\\n' 'Port 22' 'HostKey /keys/host_ed25519' 'AuthorizedKeysFile /keys/authorized_keys' 'StrictModes no' 'AllowUsers offsite' 'PasswordAuthentication no' 'KbdInteractiveAuthentication no' 'UsePAM no' 'Subsystem sftp internal-sftp' 'PidFile /run/sshd.pid' > /etc/ssh/sshd_config`,
        `ENTRYPOINT ["/usr/sbin/sshd", "-D", "-e"]`,
        "",
    ].join("\n");
    must("docker", ["build", "-q", "--label", `${HARNESS_LABEL}=1`, "-t", SFTP_IMAGE, "-"], dockerfile);
    const keys = path.join(work, "offsite-keys");
    const repoDir = path.join(work, "offsite-target");
    mkdirSync(keys);
    mkdirSync(repoDir);
    chownSync(repoDir, SFTP_UID, SFTP_UID);
    must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(keys, "host_ed25519")]);
    must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(keys, "client_ed25519")]);
    copyFileSync(path.join(keys, "client_ed25519.pub"), path.join(keys, "authorized_keys"));
    chmodSync(path.join(keys, "authorized_keys"), 0o644);
    const hostPub = readFileSync(path.join(keys, "host_ed25519.pub"), "utf8").trim().split(/\s+/);
    return {
        repoDir,
        overrides: {
            backupOffsite: `sftp:offsite@${SFTP_CONTAINER}:/srv/repo`,
            backupOffsitePassword: password,
            backupOffsiteSshKey: readFileSync(path.join(keys, "client_ed25519"), "utf8"),
            backupOffsiteKnownHosts: `${SFTP_CONTAINER} ${hostPub[0]} ${hostPub[1]}`,
        },
        secrets: ["backupOffsitePassword", "backupOffsiteSshKey"],
        start(network: string) {
            must("docker", [
                "run",
                "-d",
                "--name",
                SFTP_CONTAINER,
                "--label",
                `${HARNESS_LABEL}=1`,
                "--network",
                network,
                "-v",
                `${keys}:/keys:ro`,
                "-v",
                `${repoDir}:/srv`,
                SFTP_IMAGE,
            ]);
        },
    };
}
