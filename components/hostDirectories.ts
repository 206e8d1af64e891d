import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import { dockerEnvironment, hardeningFlags, requireUidGid, type Labels } from "./common";
import { APP_ROLE, ROLE_LABEL } from "./names";

/** Label keys that say which stack, and which state of it, a container or network belongs to. */
export const STACK_LABEL = "marvel-rivals-stats.stack";
export const STATE_LABEL = "marvel-rivals-stats.state";

/** The labels every container and the network of the stack carry (see the host step). */
export function identityLabels(stack: string, stateId: pulumi.Input<string>): Labels {
    return { [STACK_LABEL]: stack, [STATE_LABEL]: stateId };
}

export interface HostDirectoriesArgs {
    /** Absolute path on the Docker host. */
    dataDir: string;
    /** Sub-directories to create under dataDir. */
    subdirectories: string[];
    /**
     * Directories outside dataDir by name (absolute paths on the Docker host, e.g. a backup directory on an
     * NFS share), created the same way inside their parent directory, which must exist.
     */
    directories?: Record<string, string>;
    /**
     * Directories (absolute paths on the host) that must be on a mounted share: the step stops,
     * naming one, when neither it nor its parent is a mount point (backupRequireMount).
     */
    mountRequired?: string[];
    /** `uid:gid` given to directories this step creates. */
    owner: string;
    /** An image with /bin/sh, mkdir and chown (the stack's Postgres image: no extra download). */
    toolImage: string;
    platform?: string;
    /** Docker endpoint for the `docker` CLI: the stack's provider's. */
    dockerHost: string;
    /**
     * The stack's fixed container and network names and its identity labels (`identityLabels`): a name
     * held by this stack's containers from another state is freed before anything is created.
     */
    identity: {
        containers: string[];
        /** The app's name: its versions' containers are `<app>-<version>`. */
        app: string;
        network: string;
        stack: string;
        stateId: pulumi.Input<string>;
        stopGraceSeconds: number;
    };
}

/**
 * Creates `<dataDir>/<sub>` on the host that runs Docker (the server, not the laptop, for a remote
 * engine) before any container mounts them: a throwaway container bind-mounts dataDir and runs
 * mkdir/chown there. Directories that already exist are left exactly as they are (a running database
 * owns its directory; re-owning it would break it). There is no delete step: `pulumi destroy` never
 * removes the directories or what they hold. It also frees the stack's fixed names from its own orphans
 * (see `free` below), so the network and containers wait for this component. Its name and type must not
 * change without `aliases`: a new URN means a new create.
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
        requireUidGid("owner", args.owner);
        for (const sub of args.subdirectories) {
            if (!/^[a-z0-9_-]+$/.test(sub))
                throw new Error(`\`subdirectories\` entry ${JSON.stringify(sub)} must be a plain name`);
        }
        const outside = args.directories ?? {};
        for (const [key, dir] of Object.entries(outside)) {
            if (args.subdirectories.includes(key)) throw new Error(`\`directories\` repeats the subdirectory ${key}`);
            if (!/^\/[^\s:,]*[^/\s:,]$/.test(dir))
                throw new Error(`\`directories\` entry ${key} must be an absolute path without spaces, got ${dir}`);
        }

        for (const dir of args.mountRequired ?? [])
            if (!/^\/[^\s:,]*[^/\s:,]$/.test(dir))
                throw new Error(`\`mountRequired\` entry must be an absolute path without spaces, got ${dir}`);

        const tool = new docker.RemoteImage(
            `${name}-tool-image`,
            { name: args.toolImage, keepLocally: true, platform: args.platform },
            { parent: this },
        );

        // Values travel in the environment, never spliced into the scripts: no quoting bugs, no injection.
        const mkdir = `docker run --rm --network none --user 0:0 $TOOL_HARDENING -e SUBDIRS -e OWNER --entrypoint /bin/sh -v "$DATA_DIR:/target" "$TOOL_IMAGE" -c 'set -eu; for d in $SUBDIRS; do if [ -d "/target/$d" ]; then echo "kept $d"; else mkdir -p "/target/$d" && chown "$OWNER" "/target/$d" && echo "created $d"; fi; done'`;
        // Outside dataDir: each directory is made inside its parent, which must exist: --mount fails on a
        // missing source where -v would create it (as root, on the server's own disk: an NFS share that is
        // not mounted must stop the run, not quietly take the backups).
        const mkdirOutside = `for d in $EXTRA_DIRS; do docker run --rm --network none --user 0:0 $TOOL_HARDENING -e OWNER -e BASE="$(basename "$d")" --entrypoint /bin/sh --mount "type=bind,source=$(dirname "$d"),target=/target" "$TOOL_IMAGE" -c 'set -eu; if [ -d "/target/$BASE" ]; then echo "kept $BASE"; else mkdir -p "/target/$BASE" && chown "$OWNER" "/target/$BASE" && echo "created $BASE"; fi'; done`;
        // The mount guard, before anything is created: a share that is not mounted is an empty directory on
        // the server's own disk. The parent is bind-mounted (recursively, Docker's default for binds, so a
        // mount at the directory itself shows as its own entry): in the container's mountinfo, the parent's
        // entry has root "/" when the parent is a mount point, and the directory has an entry of its own when
        // it is one (the same rule as agent/mount.ts).
        const mountGuard = `for d in $MOUNT_REQUIRED; do docker run --rm --network none --user 0:0 $TOOL_HARDENING -e BASE="$(basename "$d")" --entrypoint /bin/sh --mount "type=bind,source=$(dirname "$d"),target=/target,readonly" "$TOOL_IMAGE" -c 'awk -v b="/target/$BASE" '"'"'($5 == "/target" && $4 == "/") || $5 == b { ok = 1 } END { exit !ok }'"'"' /proc/self/mountinfo' || { echo "backupDir $d is not on a mounted share: neither it nor $(dirname "$d") is a mount point on the Docker host (is the share mounted?). Mount it and run again, or set backupRequireMount to false if the backups are meant to be on this disk" >&2; exit 1; }; done`;
        // The stack's names (fixed: people type them) can be taken by its own containers that no state
        // tracks any more: after a lost state, the provider would fail on "name already in use". Every
        // container and the network of the stack carry two labels: the stack's name, and an ID kept in the
        // state (a random value made once per state). Before anything is created, a container or network of
        // one of the stack's names that carries this stack's label with another state's ID is an orphan: it
        // is stopped with the stack's grace period and removed (never its volumes; the data is on the host);
        // one with this state's ID is tracked and left alone, whatever happens to this step (renamed,
        // deleted from the state); one without the stack's label is someone else's, and the step stops
        // and says so.
        const free = `label() { v=$(docker "$1" inspect --format "{{index .Config.Labels \\"$2\\"}}" "$3" 2>/dev/null || true); [ "$v" = "<no value>" ] && v=; printf '%s' "$v"; }
netlabel() { v=$(docker network inspect --format "{{index .Labels \\"$1\\"}}" "$2" 2>/dev/null || true); [ "$v" = "<no value>" ] && v=; printf '%s' "$v"; }
versions=$(docker ps -a --filter "label=$STACK_LABEL=$STACK" --filter "label=$ROLE_LABEL=$APP_ROLE" --format '{{.Names}}' | grep "^$STACK_APP-[0-9a-f]\\{8\\}$" || true)
for name in $STACK_CONTAINERS $versions; do
  docker container inspect "$name" >/dev/null 2>&1 || continue
  if [ "$(label container "$STACK_LABEL" "$name")" != "$STACK" ]; then
    echo "a container named $name exists but is not this stack's (no label $STACK_LABEL=$STACK): rename or remove it (docker rm -f $name), then run again" >&2
    exit 1
  fi
  [ "$(label container "$STATE_LABEL" "$name")" = "$STATE_ID" ] && continue
  echo "removing $name, left running by an earlier state of this stack (its data stays under $DATA_DIR)"
  docker stop -t "$STOP_GRACE" "$name" >/dev/null
  docker rm "$name" >/dev/null
done
if docker network inspect "$STACK_NETWORK" >/dev/null 2>&1; then
  if [ "$(netlabel "$STACK_LABEL" "$STACK_NETWORK")" != "$STACK" ]; then
    echo "a network named $STACK_NETWORK exists but is not this stack's (no label $STACK_LABEL=$STACK): rename or remove it, or set networkName, then run again" >&2
    exit 1
  fi
  if [ "$(netlabel "$STATE_LABEL" "$STACK_NETWORK")" != "$STATE_ID" ]; then
    attached=$(docker network inspect --format '{{range .Containers}}{{.Name}} {{end}}' "$STACK_NETWORK")
    if [ -n "$attached" ]; then
      echo "the network $STACK_NETWORK, left by an earlier state of this stack, still has containers attached ($attached): disconnect or remove them, then run again" >&2
      exit 1
    fi
    echo "removing the network $STACK_NETWORK, left by an earlier state of this stack"
    docker network rm "$STACK_NETWORK" >/dev/null
  fi
fi`;
        new command.local.Command(
            `${name}-mkdir`,
            {
                // Both run before anything of the stack is created or changed (containers and the network
                // wait for this component); only `triggers` would replace the step, and it has none
                // (pulumi-command v1.2.1, provider/pkg/provider/common/inputs.go).
                create: `set -eu\n${mountGuard}\n${free}\n${mkdir}\n${mkdirOutside}`,
                update: `set -eu\n${mountGuard}\n${free}\n${mkdir}\n${mkdirOutside}`,
                environment: {
                    ...dockerEnvironment(args.dockerHost),
                    DATA_DIR: args.dataDir,
                    TOOL_IMAGE: tool.imageId,
                    // mkdir and chown as root in a directory someone else may own: CHOWN, DAC_OVERRIDE, FOWNER only.
                    TOOL_HARDENING: hardeningFlags({ capAdd: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"] }),
                    SUBDIRS: args.subdirectories.join(" "),
                    // Also where the policy pack finds the directories data may live in (policy/rules.ts).
                    EXTRA_DIRS: Object.values(outside).join(" "),
                    MOUNT_REQUIRED: (args.mountRequired ?? []).join(" "),
                    OWNER: args.owner,
                    STACK_CONTAINERS: args.identity.containers.join(" "),
                    // The app's versions (`<app>-<version>`, components/app.ts) are found by label and name.
                    STACK_APP: args.identity.app,
                    ROLE_LABEL,
                    APP_ROLE,
                    STACK_NETWORK: args.identity.network,
                    STACK_LABEL: STACK_LABEL,
                    STACK: args.identity.stack,
                    STATE_LABEL: STATE_LABEL,
                    STATE_ID: args.identity.stateId,
                    STOP_GRACE: String(args.identity.stopGraceSeconds),
                },
            },
            { parent: this },
        );

        this.paths = {
            ...Object.fromEntries(args.subdirectories.map((sub) => [sub, `${args.dataDir}/${sub}`])),
            ...outside,
        };
        this.registerOutputs({ paths: this.paths });
    }
}
