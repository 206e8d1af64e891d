import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import { dockerEnvironment } from "./common";

export interface HostDirectoriesArgs {
    /** Absolute path on the Docker host. */
    dataDir: string;
    /** Sub-directories to create under dataDir. */
    subdirectories: string[];
    /** `uid:gid` given to directories this step creates. */
    owner: string;
    /** An image with /bin/sh, mkdir and chown (the stack's Postgres image: no extra download). */
    toolImage: string;
    platform?: string;
    /** Docker endpoint for the `docker` CLI; undefined means the local engine. */
    dockerHost?: string;
}

/**
 * Creates `<dataDir>/<sub>` on the host that runs Docker (the server, not the laptop, for a remote
 * engine) before any container mounts them: a throwaway container bind-mounts dataDir and runs
 * mkdir/chown there. Directories that already exist are left exactly as they are (a running database
 * owns its directory; re-owning it would break it). There is no delete step: `pulumi destroy` never
 * removes the directories or what they hold.
 */
export class HostDirectories extends pulumi.ComponentResource {
    /**
     * Host paths by sub-directory name. Plain strings, known even in a preview (a path that is unknown at
     * preview time would show every mounting container as a replacement); the directories exist once this
     * component is done, so mounting containers also take it in `dependsOn`.
     */
    public readonly paths: Record<string, string>;

    constructor(name: string, args: HostDirectoriesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:storage:HostDirectories", name, {}, opts);
        if (!args.dataDir.startsWith("/"))
            throw new Error(`\`dataDir\` must be absolute, got ${JSON.stringify(args.dataDir)}`);
        if (!/^\d+:\d+$/.test(args.owner))
            throw new Error(`\`owner\` must be uid:gid, got ${JSON.stringify(args.owner)}`);
        for (const sub of args.subdirectories) {
            if (!/^[a-z0-9_-]+$/.test(sub))
                throw new Error(`\`subdirectories\` entry ${JSON.stringify(sub)} must be a plain name`);
        }

        const tool = new docker.RemoteImage(
            `${name}-tool-image`,
            { name: args.toolImage, keepLocally: true, platform: args.platform },
            { parent: this },
        );

        // Values travel in the environment, never spliced into the script: no quoting bugs, no injection.
        new command.local.Command(
            `${name}-mkdir`,
            {
                create: `set -eu
exec docker run --rm --network none --user 0:0 -e SUBDIRS -e OWNER --entrypoint /bin/sh -v "$DATA_DIR:/target" "$TOOL_IMAGE" -c 'set -eu; for d in $SUBDIRS; do if [ -d "/target/$d" ]; then echo "kept $d"; else mkdir -p "/target/$d" && chown "$OWNER" "/target/$d" && echo "created $d"; fi; done'`,
                environment: {
                    ...dockerEnvironment(args.dockerHost),
                    DATA_DIR: args.dataDir,
                    TOOL_IMAGE: tool.imageId,
                    SUBDIRS: args.subdirectories.join(" "),
                    OWNER: args.owner,
                },
            },
            { parent: this },
        );

        this.paths = Object.fromEntries(args.subdirectories.map((sub) => [sub, `${args.dataDir}/${sub}`]));
        this.registerOutputs({ paths: this.paths });
    }
}
