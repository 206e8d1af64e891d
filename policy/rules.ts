// The stack's mandatory rules, as @pulumi/policy policies. They read only what the engine hands a policy
// (each resource's type, name, inputs and options) and what the program itself declares: the data
// directory is the DATA_DIR of the host-directories step, "the server" is a Docker provider reached over
// SSH or TCP (odin). So the same rules hold for any stack, with no second copy of the stack config.
import type { PolicyResource, ReportViolation, StackValidationPolicy } from "@pulumi/policy";
import { APP_PORT } from "../components/names";
import { PGADMIN_PORT } from "../components/pgadmin";
import { PIDS_LIMITS_STEP } from "../components/pidsLimits";

export const CONTAINER = "docker:index/container:Container";
export const REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage";
export const BUILT_IMAGE = "docker:index/image:Image";
export const DOCKER_PROVIDER = "pulumi:providers:docker";
export const COMMAND = "command:local:Command";

/** Internal ports of the stores whose data must never be reachable from the LAN. */
const STORE_PORTS: Record<number, string> = { 5432: "PostgreSQL", 6379: "Redis" };
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** What the rules need to know of a resource: the subset of PolicyResource the evaluator also provides. */
export type Resource = Pick<PolicyResource, "type" | "name" | "urn" | "props"> & {
    opts: Pick<PolicyResource["opts"], "additionalSecretOutputs">;
};

interface Port {
    internal: number;
    external?: number;
    ip?: string;
}
interface Volume {
    hostPath?: string;
    containerPath?: string;
    readOnly?: boolean;
}

/** The engine the containers run on is another machine (the server): a Docker host over ssh:// or tcp://. */
export function remoteEngine(resources: Resource[]): boolean {
    return resources.some((r) => r.type === DOCKER_PROVIDER && /^(ssh|tcp):\/\//.test(String(r.props.host ?? "")));
}

/** The stack's data directory: the DATA_DIR of the step that creates the host directories. */
export function dataDirOf(resources: Resource[]): string | undefined {
    const step = resources.find((r) => r.type === COMMAND && typeof r.props.environment?.DATA_DIR === "string");
    return step?.props.environment.DATA_DIR;
}

/** The directories that same step creates outside the data directory (EXTRA_DIRS: a backup share). */
export function extraDirsOf(resources: Resource[]): string[] {
    const step = resources.find((r) => r.type === COMMAND && typeof r.props.environment?.DATA_DIR === "string");
    const extra = step?.props.environment.EXTRA_DIRS;
    return typeof extra === "string" ? extra.split(" ").filter((d) => d !== "") : [];
}

const containers = (resources: Resource[]) => resources.filter((r) => r.type === CONTAINER);

export const noStorePortOnLan: StackValidationPolicy = {
    name: "no-database-port-on-lan",
    description:
        "No PostgreSQL (5432) or Redis (6379) port is published on a non-loopback address; on the server, only PostgreSQL on its loopback (the end of the laptop's SSH tunnel).",
    enforcementLevel: "mandatory",
    validateStack: (args, report: ReportViolation) => {
        const remote = remoteEngine(args.resources);
        for (const c of containers(args.resources)) {
            for (const p of (c.props.ports ?? []) as Port[]) {
                const store = STORE_PORTS[p.internal];
                if (!store) continue;
                const ip = p.ip ?? "0.0.0.0";
                // The server's loopback is reached only by who can log in there: the SSH tunnel's end
                // (npm run outputs -- databaseTunnel). Redis, a cache, needs no way in from a laptop.
                if (remote && !(p.internal === 5432 && /^127\.0\.0\.1$/.test(ip))) {
                    report(
                        `${c.name} publishes ${store}'s port ${p.internal} (as ${ip}:${p.external ?? "?"}) on the server; only PostgreSQL on the server's loopback is allowed (postgresBindAddress 127.0.0.1, for the SSH tunnel): set that, or remove postgresPort/redisPort, and reach it through \`docker exec\` or the tunnel`,
                        c.urn,
                    );
                } else if (!LOOPBACK.test(ip)) {
                    report(
                        `${c.name} publishes ${store}'s port ${p.internal} on ${ip}, reachable from the network; bind it to 127.0.0.1 (postgresBindAddress/redisBindAddress)`,
                        c.urn,
                    );
                }
            }
        }
    },
};

export const dataMountsUnderDataDir: StackValidationPolicy = {
    name: "data-mounts-under-data-dir",
    description:
        "Every writable bind mount of a container is under the stack's data directory or a directory the host step creates for it (the backup directory); read-only mounts, such as the dev stack's source, are not data.",
    enforcementLevel: "mandatory",
    validateStack: (args, report) => {
        const dataDir = dataDirOf(args.resources);
        if (dataDir === undefined) {
            report("the stack has no host-directories step (no DATA_DIR): cannot tell where data belongs");
            return;
        }
        const root = dataDir.replace(/\/+$/, "");
        const roots = [root, ...extraDirsOf(args.resources).map((d) => d.replace(/\/+$/, ""))];
        for (const c of containers(args.resources)) {
            for (const v of (c.props.volumes ?? []) as Volume[]) {
                if (!v.hostPath || v.readOnly) continue;
                if (!roots.some((r) => v.hostPath === r || v.hostPath!.startsWith(`${r}/`))) {
                    report(
                        `${c.name} mounts ${v.hostPath} at ${v.containerPath} writable, outside the data directory ${root}; put it under ${root} (HostDirectories) or mount it read-only`,
                        c.urn,
                    );
                }
            }
        }
    },
};

const RESTART = new Set(["always", "unless-stopped", "on-failure"]);

export const serverContainersRotateLogsAndRestart: StackValidationPolicy = {
    name: "server-log-rotation-and-restart",
    description:
        "On the server, every long-running container logs through json-file with max-size and max-file, and has a restart policy.",
    enforcementLevel: "mandatory",
    validateStack: (args, report) => {
        if (!remoteEngine(args.resources)) return;
        for (const c of containers(args.resources)) {
            const opts = (c.props.logOpts ?? {}) as Record<string, string>;
            if (c.props.logDriver !== "json-file" || !opts["max-size"] || !opts["max-file"]) {
                report(
                    `${c.name} logs through ${c.props.logDriver ?? "the engine's default driver"} without json-file rotation (max-size and max-file); the server's disk fills up; use containerDefaults (components/common.ts)`,
                    c.urn,
                );
            }
            if (!RESTART.has(String(c.props.restart ?? "no"))) {
                report(
                    `${c.name} has restart policy "${c.props.restart ?? "no"}": it stays down after a crash or a reboot of the server; use unless-stopped (containerDefaults)`,
                    c.urn,
                );
            }
        }
    },
};

/** A reference pinned to something other than `latest`: `name:tag` with tag != latest, or `name@sha256:...`. */
export function pinned(ref: string): boolean {
    if (/@sha256:[0-9a-f]{64}$/.test(ref) || /^sha256:[0-9a-f]{64}$/.test(ref)) return true;
    const tag = /:([\w][\w.-]{0,127})$/.exec(ref.slice(ref.lastIndexOf("/") + 1))?.[1];
    return tag !== undefined && tag !== "latest";
}

export const imagesPinned: StackValidationPolicy = {
    name: "images-pinned",
    description: "Every image is pinned: a tag other than latest, a digest, or an image ID.",
    enforcementLevel: "mandatory",
    validateStack: (args, report) => {
        for (const r of args.resources) {
            const ref =
                r.type === REMOTE_IMAGE
                    ? r.props.name
                    : r.type === BUILT_IMAGE
                      ? r.props.imageName
                      : r.type === CONTAINER
                        ? r.props.image
                        : undefined;
            if (typeof ref === "string" && !pinned(ref)) {
                report(
                    `${r.name} uses ${ref}, which is not pinned; name a version tag (not latest) or a digest`,
                    r.urn,
                );
            }
        }
    },
};

const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY)/i;
/** A URL with a password in it: scheme://user:password@host. */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:[^@\s]+@/i;

/** The names of a container's variables that carry a credential. */
export function credentialVariables(envs: unknown): string[] {
    if (!Array.isArray(envs)) return [];
    return envs
        .map(String)
        .map((e) => [e.slice(0, Math.max(0, e.indexOf("="))), e.slice(e.indexOf("=") + 1)] as const)
        .filter(
            ([key, value]) => key !== "" && value !== "" && (SECRET_NAME.test(key) || URL_WITH_PASSWORD.test(value)),
        )
        .map(([key]) => key);
}

export const noPlaintextSecretInEnv: StackValidationPolicy = {
    name: "no-plaintext-secret-in-env",
    description:
        "A container whose environment carries a credential keeps that environment secret in the state (additionalSecretOutputs: envs).",
    enforcementLevel: "mandatory",
    validateStack: (args, report) => {
        for (const c of containers(args.resources)) {
            const secrets = credentialVariables(c.props.envs);
            if (secrets.length > 0 && !(c.opts.additionalSecretOutputs ?? []).includes("envs")) {
                report(
                    `${c.name} carries ${secrets.join(", ")} in its environment, which the state would keep in plaintext; pass them as secrets and add additionalSecretOutputs: ["envs"]`,
                    c.urn,
                );
            }
        }
    },
};

/** A container's labels by key (the provider's `labels` list). */
function labelsOf(c: Resource): Record<string, string> {
    const list = (c.props.labels ?? []) as { label: string; value: string }[];
    return Object.fromEntries(list.map((l) => [l.label, String(l.value)]));
}
/** The app's container: the one labelled with the app's role (components/names.ts, ROLE_LABEL). */
const isApp = (c: Resource) => labelsOf(c)["marvel-rivals-stats.role"] === "app";

/**
 * Issue 24, item 3: every container drops every capability (adding back only named ones), runs with
 * no-new-privileges, a process limit (a pids limit, set by the stack's pids-limits step: the provider has none) and a memory
 * limit; the app also with a read-only root file system and a user that is not root.
 */
export const containersHardened: StackValidationPolicy = {
    name: "containers-hardened",
    description:
        "Every container: capabilities dropped (ALL), no-new-privileges, a pids limit, a memory limit; the app read-only and not root.",
    enforcementLevel: "mandatory",
    validateStack: (args, report) => {
        for (const c of containers(args.resources)) {
            const fix = "use hardening() (components/common.ts)";
            const drops = ((c.props.capabilities ?? {}) as { drops?: string[] }).drops ?? [];
            if (!drops.includes("ALL")) report(`${c.name} keeps Docker's default capabilities; ${fix}`, c.urn);
            const opts = (c.props.securityOpts ?? []) as string[];
            if (!opts.some((o) => /^no-new-privileges(:true)?$/.test(o)))
                report(`${c.name} runs without no-new-privileges; ${fix}`, c.urn);
            // The provider has no pids input: the stack's pids-limits step sets it (components/pidsLimits.ts).
            const pids = args.resources.find((r) => r.type === COMMAND && r.name === PIDS_LIMITS_STEP);
            const listed = pids?.props.environment?.PIDS_CONTAINERS;
            if (!pids || (typeof listed === "string" && !listed.split(" ").includes(String(c.props.name))))
                report(
                    `${c.name} has no process limit (not in the ${PIDS_LIMITS_STEP} step); the PidsLimits component (components/pidsLimits.ts)`,
                    c.urn,
                );
            if (!(Number(c.props.memory) > 0))
                report(
                    `${c.name} has no memory limit; set postgresMemoryMb, redisMemoryMb or appMemoryMb above 0`,
                    c.urn,
                );
            if (isApp(c)) {
                if (c.props.readOnly !== true)
                    report(`${c.name} (the app) has a writable root file system; hardening({ readOnly })`, c.urn);
                const user = String(c.props.user ?? "");
                if (user === "" || /^(0|root)(:|$)/.test(user))
                    report(
                        `${c.name} (the app) runs as ${user || "the image's user"}, not a fixed non-root uid:gid; set hostOwner to a uid other than 0`,
                        c.urn,
                    );
            }
        }
    },
};

/**
 * Issue 24, item 4: on the server, nothing is published beyond loopback by default: the app is reached
 * through Caddy (`domain`). A LAN port for the app (appPort with appBindAddress 0.0.0.0) is an explicit
 * opt-in: reported here, as advisory, so that nobody keeps one without knowing it (stores: mandatory, above).
 */
/** What a port on the server's LAN is, and the keys that publish it (config.ts), by the container's port. */
const LAN_PORT_FIX: Record<number, string> = {
    [APP_PORT]:
        "plain HTTP on the LAN beside Caddy; unset appPort/appBindAddress and reach it through `domain` unless you mean it",
    5432: "PostgreSQL on the LAN; unset postgresPort/postgresBindAddress, or set postgresBindAddress 127.0.0.1 for the SSH tunnel",
    6379: "Redis on the LAN; unset redisPort/redisBindAddress and reach it through `docker exec`",
    [PGADMIN_PORT]: "pgAdmin on the LAN; set pgadmin false (a tool for a local Docker engine; pgadminPort is its port)",
};

export const serverPublishesOnlyLoopback: StackValidationPolicy = {
    name: "server-publishes-only-loopback",
    description: "On the server, no container port is published beyond loopback (the app is reached through Caddy).",
    enforcementLevel: "advisory",
    validateStack: (args, report) => {
        if (!remoteEngine(args.resources)) return;
        for (const c of containers(args.resources)) {
            for (const p of (c.props.ports ?? []) as Port[]) {
                const ip = p.ip ?? "0.0.0.0";
                if (LOOPBACK.test(ip)) continue;
                const what = LAN_PORT_FIX[p.internal] ?? LAN_PORT_FIX[APP_PORT]!;
                report(
                    `${c.name} publishes port ${p.internal} on ${ip}:${p.external ?? "?"} of the server, ${what}`,
                    c.urn,
                );
            }
        }
    },
};

export const policies: StackValidationPolicy[] = [
    noStorePortOnLan,
    dataMountsUnderDataDir,
    serverContainersRotateLogsAndRestart,
    imagesPinned,
    noPlaintextSecretInEnv,
    containersHardened,
    serverPublishesOnlyLoopback,
];
