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
    /** Host directory for a pg_dump taken before pending migrations are applied; omit for no backups. */
    backupDir?: string;
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
        if (args.sourcePath) environment.HOST_APP_SRC = args.sourcePath;

        this.step = new command.local.Command(
            `${name}-up`,
            {
                create: [
                    "set -eu",
                    'set -- docker run --rm --network "$MIGRATE_NETWORK" --user "$MIGRATE_USER" $MIGRATE_HARDENING -v "$HOST_DATABASE_URL_FILE:/run/secrets/database_url:ro" -e DATABASE_URL_FILE=/run/secrets/database_url',
                    'if [ -n "${HOST_BACKUP_DIR:-}" ]; then set -- "$@" -v "$HOST_BACKUP_DIR:/backups" -e MIGRATE_BACKUP_DIR=/backups; fi',
                    'if [ -n "${HOST_APP_SRC:-}" ]; then set -- "$@" -v "$HOST_APP_SRC:/app/src:ro"; fi',
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
