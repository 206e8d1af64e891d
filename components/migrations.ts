import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { dockerEnvironment, hardeningFlags, requireUidGid } from "./common";

export interface MigrationsArgs {
    /** Directory of `NNN_name.sql` files on this machine; hashed so any change re-runs the step. */
    migrationsDir: string;
    /** Image that ships the runner (`migrate` on its PATH) and the same migration files. */
    image: pulumi.Input<string>;
    networkName: pulumi.Input<string>;
    /**
     * Host path of a file holding the in-network URL of the database (components/secretFiles.ts), mounted
     * read-only and named by DATABASE_URL_FILE: the URL is in no environment and on no command line.
     */
    databaseUrlFile: string;
    /** Changes whenever the file's content does (SecretFiles.version): the step runs again. */
    secretsVersion: pulumi.Input<string>;
    /** `uid:gid` the runner runs as (it writes backups into backupDir). */
    user: string;
    /** Host directory for the runner's own pg_dump before pending migrations (plain SQL); omit for none. */
    backupDir?: string;
    /**
     * The backup container: when set, the dump before pending migrations is the agent's (`backup-agent once
     * before-<first pending file>`: custom format, the server's own pg_dump, checked, listed, restorable by
     * `npm run restore`), and a dump that does not pass stops the step before anything is migrated.
     */
    backupContainer?: pulumi.Input<string>;
    /** The app's source on this machine, mounted read-only for an image that runs it (the dev image). */
    sourcePath?: string;
    /** Docker endpoint for the `docker` CLI: the stack's provider's. */
    dockerHost: string;
    /** Resources that must be ready first (the healthy Postgres container). */
    waitFor: pulumi.Input<pulumi.Resource>[];
}

export interface AppliedMigration {
    name: string;
    appliedAt: string;
}

/** Hash of every file in the migrations directory: its names and contents. */
export function hashMigrations(dir: string): string {
    const hash = createHash("sha256");
    for (const file of readdirSync(dir)
        .filter((f) => f.endsWith(".sql"))
        .sort()) {
        hash.update(file)
            .update("\0")
            .update(readFileSync(path.join(dir, file)))
            .update("\0");
    }
    return hash.digest("hex");
}

/**
 * The dump before pending migrations, made by the backup agent like every other (issue 22, item 7): the
 * runner's `status --json` says what is pending (node, which runs this program, reads it); nothing pending,
 * no dump; a status that cannot be read, a dump all the same. The agent's own `result=` line decides, never
 * the exit code of `docker exec`. Its output goes to stderr (Pulumi's log of the step): no secret is in it.
 */
const PRE_MIGRATION_DUMP = [
    'if [ -n "${MIGRATE_BACKUP_CONTAINER:-}" ]; then',
    '    first=$("$@" "$MIGRATE_IMAGE" migrate status --json 2>/dev/null | node -e \'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { let p; try { p = JSON.parse(s.trim().split("\\n").pop()).pending; } catch {} process.stdout.write(Array.isArray(p) ? (p[0] ?? "") : "?"); });\' || echo "?")',
    '    if [ -n "$first" ]; then',
    '        if [ "$first" = "?" ]; then label=before-migrations',
    "        else label=before-$(printf '%s' \"$first\" | tr 'A-Z_.' 'a-z--' | tr -cd 'a-z0-9-' | cut -c1-60); fi",
    '        echo "migrations: a checked dump by $MIGRATE_BACKUP_CONTAINER before applying $first ($label)" >&2',
    '        out=$(docker exec "$MIGRATE_BACKUP_CONTAINER" backup-agent once "$label" 2>&1) || true',
    "        printf '%s\\n' \"$out\" >&2",
    '        case "$out" in',
    '            *"result=passed "*) ;;',
    '            *) echo "migrations: the dump before migrating did not pass its check (the agent\'s lines above say why); nothing was migrated: fix the backups (npm run backups), then run up again" >&2; exit 1 ;;',
    "        esac",
    "    fi",
    "fi",
];

/**
 * Runs the migration runner once Postgres is healthy, in a throwaway container on the stack's network,
 * so it works against a remote engine without publishing the database. It runs again whenever a file in
 * migrations/ (or the image carrying the runner) changes. The database URL reaches the container through
 * a file mounted read-only (DATABASE_URL_FILE, issue 24): never argv, never the container's environment.
 */
export class Migrations extends pulumi.ComponentResource {
    public readonly step: command.local.Command;
    /** Applied migrations as the runner reports them after the run. */
    public readonly applied: pulumi.Output<AppliedMigration[]>;

    constructor(name: string, args: MigrationsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:database:Migrations", name, {}, opts);
        if (!path.isAbsolute(args.migrationsDir)) throw new Error("`migrationsDir` must be an absolute path");
        requireUidGid("user", args.user);

        const environment: Record<string, pulumi.Input<string>> = {
            ...dockerEnvironment(args.dockerHost),
            HOST_DATABASE_URL_FILE: args.databaseUrlFile,
            SECRETS_VERSION: args.secretsVersion,
            MIGRATE_IMAGE: args.image,
            MIGRATE_NETWORK: args.networkName,
            MIGRATE_USER: args.user,
            // No capability, no-new-privileges, a process limit (common.ts, hardening).
            MIGRATE_HARDENING: hardeningFlags(),
        };
        if (args.backupDir) environment.HOST_BACKUP_DIR = args.backupDir;
        if (args.backupContainer) environment.MIGRATE_BACKUP_CONTAINER = args.backupContainer;
        if (args.sourcePath) environment.HOST_APP_SRC = args.sourcePath;

        this.step = new command.local.Command(
            `${name}-up`,
            {
                create: [
                    "set -eu",
                    'set -- docker run --rm --network "$MIGRATE_NETWORK" --user "$MIGRATE_USER" $MIGRATE_HARDENING -v "$HOST_DATABASE_URL_FILE:/run/secrets/database_url:ro" -e DATABASE_URL_FILE=/run/secrets/database_url',
                    'if [ -n "${HOST_BACKUP_DIR:-}" ]; then set -- "$@" -v "$HOST_BACKUP_DIR:/backups" -e MIGRATE_BACKUP_DIR=/backups; fi',
                    'if [ -n "${HOST_APP_SRC:-}" ]; then set -- "$@" -v "$HOST_APP_SRC:/app/src:ro"; fi',
                    ...PRE_MIGRATION_DUMP,
                    'exec "$@" "$MIGRATE_IMAGE" migrate up --json',
                ].join("\n"),
                environment,
                // Content hash of migrations/: an edited or added file re-runs the step.
                triggers: [hashMigrations(args.migrationsDir)],
            },
            { parent: this, dependsOn: args.waitFor },
        );

        this.applied = this.step.stdout.apply(parseApplied);
        this.registerOutputs({ applied: this.applied });
    }
}

/** Reads the runner's `--json` report; anything else is a runner bug worth failing loudly on. */
export function parseApplied(stdout: string): AppliedMigration[] {
    let report: { migrations?: { name: string; appliedAt: string }[] };
    try {
        report = JSON.parse(stdout.trim().split("\n").pop() ?? "");
    } catch {
        throw new Error(`the migration runner did not print its JSON report; its output was: ${stdout.slice(0, 500)}`);
    }
    if (!Array.isArray(report.migrations)) {
        throw new Error(`the migration runner's JSON report has no "migrations" list: ${stdout.slice(0, 500)}`);
    }
    return report.migrations.map(({ name, appliedAt }) => ({ name, appliedAt }));
}
