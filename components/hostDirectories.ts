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
    /** Docker endpoint for the `docker` CLI: the stack's provider's. */
    dockerHost: string;
    /** The stack's fixed container and network names, freed on the first run after a lost state. */
    stackNames: { containers: string[]; network: string; stopGraceSeconds: number };
}

/**
 * Creates `<dataDir>/<sub>` on the host that runs Docker (the server, not the laptop, for a remote
 * engine) before any container mounts them: a throwaway container bind-mounts dataDir and runs
 * mkdir/chown there. Directories that already exist are left exactly as they are (a running database
 * owns its directory; re-owning it would break it). There is no delete step: `pulumi destroy` never
 * removes the directories or what they hold. On the first run after a lost state it also frees the
 * stack's fixed names (see `free` below), so the network and containers wait for this component.
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

        // Values travel in the environment, never spliced into the scripts: no quoting bugs, no injection.
        const mkdir = `docker run --rm --network none --user 0:0 -e SUBDIRS -e OWNER --entrypoint /bin/sh -v "$DATA_DIR:/target" "$TOOL_IMAGE" -c 'set -eu; for d in $SUBDIRS; do if [ -d "/target/$d" ]; then echo "kept $d"; else mkdir -p "/target/$d" && chown "$OWNER" "/target/$d" && echo "created $d"; fi; done'`;
        // `create` runs exactly when this state has no record of the step: a new stack, after `destroy`, or
        // after the state was lost. Only in the last case can the stack's fixed names still be taken, by its
        // own containers that no state tracks any more: the provider would fail on "name already in use".
        // A container of that name that mounts a path under dataDir is this stack's: it is stopped with the
        // stack's grace period and removed (never its volumes; the data is on the host). Anything else of
        // that name is someone else's: the step stops and says so. An emptied network of the stack's name
        // goes too. `update` (any later input change; only `triggers` would replace, and there are none:
        // pulumi-command v1.2.1, provider/pkg/provider/common/inputs.go) only creates directories.
        const free = `for name in $STACK_CONTAINERS; do
  docker container inspect "$name" >/dev/null 2>&1 || continue
  mounts=$(docker container inspect --format '{{range .Mounts}} {{.Source}}{{end}}' "$name")
  case "$mounts " in
    *" $DATA_DIR/"*) ;;
    *) echo "a container named $name exists but is not this stack's (it mounts nothing under $DATA_DIR): rename or remove it (docker rm -f $name), then run again" >&2; exit 1 ;;
  esac
  echo "removing $name, left running by an earlier state of this stack (its data stays under $DATA_DIR)"
  docker stop --time "$STOP_GRACE" "$name" >/dev/null
  docker rm "$name" >/dev/null
done
if docker network inspect "$STACK_NETWORK" >/dev/null 2>&1; then
  attached=$(docker network inspect --format '{{range .Containers}}{{.Name}} {{end}}' "$STACK_NETWORK")
  if [ -n "$attached" ]; then
    echo "the network $STACK_NETWORK exists with containers attached ($attached) that this stack does not know: disconnect or remove them, then run again" >&2
    exit 1
  fi
  echo "removing the empty network $STACK_NETWORK, left by an earlier state of this stack"
  docker network rm "$STACK_NETWORK" >/dev/null
fi`;
        new command.local.Command(
            `${name}-mkdir`,
            {
                create: `set -eu\n${free}\n${mkdir}`,
                update: `set -eu\n${mkdir}`,
                environment: {
                    ...dockerEnvironment(args.dockerHost),
                    DATA_DIR: args.dataDir,
                    TOOL_IMAGE: tool.imageId,
                    SUBDIRS: args.subdirectories.join(" "),
                    OWNER: args.owner,
                    STACK_CONTAINERS: args.stackNames.containers.join(" "),
                    STACK_NETWORK: args.stackNames.network,
                    STOP_GRACE: String(args.stackNames.stopGraceSeconds),
                },
            },
            { parent: this },
        );

        this.paths = Object.fromEntries(args.subdirectories.map((sub) => [sub, `${args.dataDir}/${sub}`]));
        this.registerOutputs({ paths: this.paths });
    }
}
