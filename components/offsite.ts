import * as pulumi from "@pulumi/pulumi";
import type * as docker from "@pulumi/docker";
import { OFFSITE_ENV, type OffsitePolicy } from "../agent/offsite";

/** Where the off-site secrets are in the backup container (its own filesystem, not a bind mount). */
export const OFFSITE_SECRETS_DIR = "/run/secrets/offsite";

export interface OffsiteArgs {
    /** The restic repository (config `backupOffsite`). */
    repository: string;
    keep: OffsitePolicy;
    /** The repository password, a secret Output (config `backupOffsitePassword`). */
    password: pulumi.Input<string>;
    /** SFTP: the private key (secret) and the target's known_hosts lines. */
    sshKey?: pulumi.Input<string>;
    knownHosts?: pulumi.Input<string>;
    /** S3: an AWS shared credentials file's text (secret). */
    s3Credentials?: pulumi.Input<string>;
}

/** What the backup container gets for the off-site copy: spread into its `envs` and `uploads`. */
export interface OffsiteContainerInputs {
    envs: string[];
    uploads: docker.types.input.ContainerUpload[];
}

/**
 * The backup container's inputs for the off-site copy (issue 22, item 1): every secret as a file, no
 * credential in the environment (the least-privilege issue), so neither `docker inspect` nor a process
 * listing shows one. The files are the provider's `uploads`, copied into the container before it starts,
 * and stay secrets in the state: the caller adds "uploads" to the container's additionalSecretOutputs.
 *
 * Mode 0444, not 0400: the provider writes each upload as a tar entry with no owner, so it belongs to root
 * (kreuzwerker/terraform-provider-docker v4.5.0, internal/provider/resource_docker_container_funcs.go,
 * resourceDockerContainerCreate: `tar.Header{Name, Mode, Size, ModTime}`, then CopyToContainer), and the
 * agent runs as the stack's uid:gid. Nothing else runs in that container; the files are not on any bind
 * mount, so they never reach the backup directory or the target. The agent copies the SSH key to a 0600
 * file of its own before use (agent/offsite.ts), which OpenSSH requires.
 */
export function offsiteContainerInputs(args: OffsiteArgs): OffsiteContainerInputs {
    const file = (name: string) => `${OFFSITE_SECRETS_DIR}/${name}`;
    const { daily, weekly, monthly } = args.keep;
    const envs = [
        `${OFFSITE_ENV.repository}=${args.repository}`,
        `${OFFSITE_ENV.keep}=${daily}/${weekly}/${monthly}`,
        `${OFFSITE_ENV.passwordFile}=${file("password")}`,
    ];
    const upload = (name: string, content: pulumi.Input<string>): docker.types.input.ContainerUpload => ({
        file: file(name),
        content: pulumi.secret(content),
        permissions: "0444",
    });
    const uploads = [upload("password", args.password)];
    if (args.repository.startsWith("sftp:")) {
        if (args.sshKey === undefined || args.knownHosts === undefined)
            throw new Error("an sftp: `repository` needs `sshKey` and `knownHosts`");
        envs.push(
            `${OFFSITE_ENV.sshKeyFile}=${file("ssh_key")}`,
            `${OFFSITE_ENV.knownHostsFile}=${file("known_hosts")}`,
        );
        // A key file without its final newline is refused by OpenSSH ("invalid format").
        uploads.push(
            upload(
                "ssh_key",
                pulumi.output(args.sshKey).apply((k) => `${k.trim()}\n`),
            ),
            upload(
                "known_hosts",
                pulumi.output(args.knownHosts).apply((k) => `${k.trim()}\n`),
            ),
        );
    } else {
        if (args.s3Credentials === undefined) throw new Error("an s3: `repository` needs `s3Credentials`");
        envs.push(`${OFFSITE_ENV.s3CredentialsFile}=${file("s3_credentials")}`);
        uploads.push(upload("s3_credentials", args.s3Credentials));
    }
    return { envs, uploads };
}

/**
 * offsiteContainerInputs for the stack's config (config.ts checked the keys): the secrets read as secret
 * Outputs, never as plain values. Undefined when the stack has no off-site target.
 */
export function stackOffsiteInputs(
    offsite: { repository: string; keep: OffsitePolicy } | undefined,
    config: pulumi.Config,
): OffsiteContainerInputs | undefined {
    if (!offsite) return undefined;
    const sftp = offsite.repository.startsWith("sftp:");
    return offsiteContainerInputs({
        repository: offsite.repository,
        keep: offsite.keep,
        password: config.requireSecret("backupOffsitePassword"),
        sshKey: sftp ? config.requireSecret("backupOffsiteSshKey") : undefined,
        knownHosts: sftp ? config.require("backupOffsiteKnownHosts") : undefined,
        s3Credentials: sftp ? undefined : config.requireSecret("backupOffsiteS3Credentials"),
    });
}
