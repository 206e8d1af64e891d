import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { agentEnvironment, longestGapSeconds, type Schedule } from "./backupSchedule";
import type { OffsiteContainerInputs } from "./offsite";
import {
    containerDefaults,
    hardening,
    healthTiming,
    labelList,
    memoryLimit,
    requireUidGid,
    statefulContainerOptions,
    type Labels,
} from "./common";

/** Label of the backup container holding its schedule as written: `npm run backups` reads it. */
export const SCHEDULE_LABEL = "marvel-rivals-stats.backup-schedule";
/** Where the backup directory is mounted in the container. */
export const BACKUP_MOUNT = "/backups";
/** How `docker exec` runs the agent: its command in the backup image (agent/Dockerfile), also its entrypoint. */
export const AGENT_ENTRYPOINT = ["backup-agent"];
/** The agent's database password, a file in the container (an upload), named by BACKUP_PGPASSWORD_FILE. */
export const DB_PASSWORD_FILE = "/run/secrets/backup/pgpassword";

export interface BackupsArgs {
    /** The backup image's ID (components/backupImage.ts): FROM the Postgres image, with the agent in it. */
    image: pulumi.Input<string>;
    containerName: string;
    /** The Postgres container's name, for the commands the agent suggests (`docker exec <it> dropdb ...`). */
    postgresContainer: string;
    networkName: pulumi.Input<string>;
    /** How the database is reached on the stack's network. */
    database: { host: string; port: number; name: string; user: string; password: pulumi.Input<string> };
    /** Host directory for the dumps (absolute, created by HostDirectories). */
    backupDir: string;
    /** The schedule as written and parsed; undefined: the agent idles, dumps on demand only. */
    scheduleText?: string;
    schedule?: Schedule;
    /** The periodic verify's schedule (re-hash every dump, test-restore the newest); undefined: none. */
    verifySchedule?: Schedule;
    keepLast: number;
    keepDays: number;
    /** Tiered retention (agent/retention.ts); 0 or unset turns a tier off. */
    tiers?: { daily: number; weekly: number; monthly: number; otherDays: number };
    /** The backup directory must be a mounted share (backupRequireMount): a pass refuses to write otherwise. */
    requireMount?: boolean;
    /** Webhook for a failed pass and the recovery (backupNotifyUrl, secret): POSTed JSON. */
    notifyUrl?: pulumi.Input<string>;
    /** The off-site copy (components/offsite.ts, stackOffsiteInputs): its envs and secret files. */
    offsite?: OffsiteContainerInputs;
    /** The stack's name, for the notifications. */
    stack?: string;
    /** `uid:gid` the agent runs as, so the dumps belong to the stack's owner. */
    user: string;
    labels?: Labels;
    memoryLimitMb?: number;
    /** Resources that must be complete first (the healthy database, the directories). */
    waitFor?: pulumi.Input<pulumi.Resource>[];
}

/**
 * The backup service (issues 14, 22): a small container from the backup image (the Postgres image with
 * the agent of agent/ in it) on the stack's network. On its schedule it dumps the database, proves the dump by restoring it into
 * a scratch database and comparing row counts at the dump's snapshot, records the result beside the dump
 * and prunes old scheduled dumps; `npm run restore` and `npm run backups` drive it through `docker exec`.
 * The database password reaches it as a file (an upload, BACKUP_PGPASSWORD_FILE), never in its environment
 * or an argument; the user name in PGUSER: `<dbUser>_backup`, pg_read_all_data only (issue 24: its check
 * restores into a temporary cluster of its own). A restore borrows the owner's password for that one command
 * (scripts/backups.ts, agentAsOwner).
 */
export class Backups extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    public readonly containerName: pulumi.Output<string>;

    constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:database:Backups", name, {}, opts);
        requireUidGid("user", args.user);
        if (!args.backupDir.startsWith("/")) throw new Error(`\`backupDir\` must be absolute, got ${args.backupDir}`);

        this.container = new docker.Container(
            `${name}-container`,
            {
                name: args.containerName,
                image: args.image,
                command: ["run"],
                user: args.user,
                envs: [
                    `BACKUP_DIR=${BACKUP_MOUNT}`,
                    `BACKUP_SCHEDULE=${args.scheduleText ?? ""}`,
                    ...Object.entries(agentEnvironment(args.schedule)).map(([k, v]) => `${k}=${v}`),
                    `BACKUP_KEEP_LAST=${args.keepLast}`,
                    `BACKUP_KEEP_DAYS=${args.keepDays}`,
                    `BACKUP_KEEP_DAILY=${args.tiers?.daily ?? 0}`,
                    `BACKUP_KEEP_WEEKLY=${args.tiers?.weekly ?? 0}`,
                    `BACKUP_KEEP_MONTHLY=${args.tiers?.monthly ?? 0}`,
                    `BACKUP_KEEP_OTHER_DAYS=${args.tiers?.otherDays ?? 0}`,
                    `BACKUP_REQUIRE_MOUNT=${args.requireMount ? 1 : 0}`,
                    ...Object.entries(agentEnvironment(args.verifySchedule)).map(
                        ([k, v]) => `${k.replace(/^BACKUP_/, "BACKUP_VERIFY_")}=${v}`,
                    ),
                    `BACKUP_OVERDUE_SECONDS=${overdueSeconds(args.schedule)}`,
                    `BACKUP_STACK=${args.stack ?? ""}`,
                    ...(args.notifyUrl ? [pulumi.interpolate`BACKUP_NOTIFY_URL=${args.notifyUrl}`] : []),
                    `BACKUP_HOST_DIR=${args.backupDir}`,
                    `BACKUP_POSTGRES_CONTAINER=${args.postgresContainer}`,
                    `PGHOST=${args.database.host}`,
                    `PGPORT=${args.database.port}`,
                    `PGDATABASE=${args.database.name}`,
                    `PGUSER=${args.database.user}`,
                    `BACKUP_PGPASSWORD_FILE=${DB_PASSWORD_FILE}`,
                    ...(args.offsite?.envs ?? []),
                ],
                // Root's files in the container (0444: the agent runs as the stack's owner), copied in before
                // it starts: not in `docker inspect`, not on any bind mount (components/offsite.ts).
                uploads: [
                    { file: DB_PASSWORD_FILE, content: pulumi.secret(args.database.password), permissions: "0444" },
                    ...(args.offsite?.uploads ?? []),
                ],
                volumes: [{ hostPath: args.backupDir, containerPath: BACKUP_MOUNT }],
                labels: labelList({ ...args.labels, [SCHEDULE_LABEL]: args.scheduleText ?? "" }),
                networksAdvanced: [{ name: args.networkName }],
                // Unhealthy after a failed scheduled pass or when one is overdue (agent/status.ts), so
                // `docker ps` and whatever watches the engine see it within a minute.
                healthcheck: {
                    tests: ["CMD", "backup-agent", "health"],
                    ...healthTiming({ interval: "15s", timeout: "10s", retries: 1, startPeriod: "0s" }),
                },
                // A dump in progress is given time to finish its file; a killed one leaves only a
                // temporary file, removed when the agent starts again.
                destroyGraceSeconds: 30,
                ...memoryLimit(args.memoryLimitMb),
                ...containerDefaults,
                // Issue 24: runs as `user`, needs no capability.
                ...hardening(),
            },
            {
                parent: this,
                ...statefulContainerOptions(args.memoryLimitMb),
                dependsOn: args.waitFor,
                additionalSecretOutputs: ["envs", "uploads"],
            },
        );
        this.containerName = this.container.name;
        this.registerOutputs({ containerName: this.containerName });
    }
}

/**
 * How long without a good scheduled pass makes the container unhealthy: twice an interval (and a minute)
 * for `@every`, the longest gap between two runs and an hour for a cron schedule; 0 without a schedule.
 */
export function overdueSeconds(s: Schedule | undefined): number {
    if (!s) return 0;
    return s.kind === "every" ? 2 * s.seconds + 60 : longestGapSeconds(s) + 3600;
}
