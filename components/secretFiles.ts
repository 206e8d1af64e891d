import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { createHash } from "node:crypto";
import { dockerEnvironment, hardeningFlags, requireUidGid } from "./common";

export interface SecretFilesArgs {
    /** The stack's data directory on the Docker host: the files go to <dataDir>/secrets/<name>. */
    dataDir: string;
    /** `uid:gid` that owns the files (mode 0400) and their directory (0500): the app's and the runner's user. */
    owner: string;
    /** An image with /bin/sh and base64 (the stack's Postgres image). */
    toolImage: pulumi.Input<string>;
    /** Docker endpoint for the `docker` CLI: the stack's provider's. */
    dockerHost: string;
    /** Content by file name (lower-case letters, digits, _); secret. */
    files: Record<string, pulumi.Input<string>>;
    waitFor?: pulumi.Input<pulumi.Resource>[];
}

/** Where the containers see a secret file (read-only bind mounts of single files). */
export const SECRETS_IN_CONTAINER = "/run/secrets";

/**
 * Writes each credential to a file of its own under <dataDir>/secrets on the Docker host (issue 24, item 2),
 * owned by `owner`, mode 0400, for containers to bind-mount read-only: so no container's environment and
 * no command line holds one. The values travel from this step's environment (secret in the state) through
 * stdin into a throwaway container (base64, one line per file), never through argv. A changed value is
 * written anew (a temporary file, then `mv`): a container that mounts the file keeps the old inode, so the
 * version serving keeps its credentials until it is replaced, as the rotation needs; a bind mount, not an
 * `upload`, which would make every change a new container input (issue 24).
 */
export class SecretFiles extends pulumi.ComponentResource {
    /** Host path of each file. */
    public readonly paths: Record<string, string>;
    /** Eight hex digits of a hash over every file's content: a new one whenever one changes (not secret). */
    public readonly version: pulumi.Output<string>;
    public readonly step: command.local.Command;

    constructor(name: string, args: SecretFilesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:storage:SecretFiles", name, {}, opts);
        requireUidGid("owner", args.owner);
        const names = Object.keys(args.files);
        for (const n of names) if (!/^[a-z0-9_]+$/.test(n)) throw new Error(`secret file name ${n} must be [a-z0-9_]`);
        const environment: Record<string, pulumi.Input<string>> = {
            ...dockerEnvironment(args.dockerHost),
            DATA_DIR: args.dataDir,
            TOOL_IMAGE: args.toolImage,
            OWNER: args.owner,
            TOOL_HARDENING: hardeningFlags({ capAdd: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"] }),
            SECRET_NAMES: names.join(" "),
        };
        for (const [n, value] of Object.entries(args.files)) environment[`SECRET_${n}`] = pulumi.secret(value);
        this.step = new command.local.Command(
            `${name}-write`,
            { create: WRITE_SECRET_FILES, environment, logging: command.types.enums.local.Logging.Stdout },
            { parent: this, dependsOn: args.waitFor },
        );
        this.paths = Object.fromEntries(names.map((n) => [n, `${args.dataDir}/secrets/${n}`]));
        this.version = pulumi.unsecret(
            pulumi
                .all(names.map((n) => pulumi.output(args.files[n]!)))
                .apply((values) => createHash("sha256").update(JSON.stringify(values)).digest("hex").slice(0, 8)),
        );
        this.registerOutputs({ paths: this.paths, version: this.version });
    }
}

/** The step's script: values from the environment through stdin (printf is a shell builtin: no argv). */
export const WRITE_SECRET_FILES = `set -eu
for n in $SECRET_NAMES; do
  eval "v=\\\${SECRET_$n}"
  printf '%s %s\\n' "$n" "$(printf '%s' "$v" | base64 | tr -d '\\n')"
done | docker run -i --rm --network none --user 0:0 $TOOL_HARDENING -e OWNER --entrypoint /bin/sh -v "$DATA_DIR:/target" "$TOOL_IMAGE" -c '
set -eu
umask 077
mkdir -p /target/secrets
chown "$OWNER" /target/secrets
chmod 0500 /target/secrets
while read -r n b; do
  printf "%s" "$b" | base64 -d > "/target/secrets/.$n.tmp"
  chown "$OWNER" "/target/secrets/.$n.tmp"
  chmod 0400 "/target/secrets/.$n.tmp"
  mv -f "/target/secrets/.$n.tmp" "/target/secrets/$n"
  echo "wrote secrets/$n"
done'`;
