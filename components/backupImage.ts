import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { readFileSync } from "node:fs";
import * as path from "node:path";

/** The repository of the backup image (a local tag per stack, never pushed). */
export const BACKUP_IMAGE_REPOSITORY = "marvel-rivals-stats-backup";

/** The Node base image, from its one home: app/Dockerfile's `ARG NODE_IMAGE=` line (see .ci/versions). */
export function nodeImage(root = path.join(__dirname, "..")): string {
    const m = /^ARG NODE_IMAGE=(\S+)\s*$/m.exec(readFileSync(path.join(root, "app", "Dockerfile"), "utf8"));
    if (!m) throw new Error("app/Dockerfile has no `ARG NODE_IMAGE=<image>` line: the backup image needs it");
    return m[1];
}

export interface BackupImageArgs {
    /** The stack's Postgres image as configured (postgresImage): the image is built FROM it. */
    postgresImage: string;
    /** Its image ID: a new ID (the tag moved) rebuilds the backup image. */
    postgresImageId: pulumi.Input<string>;
    imageName: string;
    /** The repository root: agent/ is the build context, agent/Dockerfile (relative to the root) the file. */
    root: string;
    platform?: string;
}

/**
 * The backup container's image (issue 22), built by the stack's Docker engine from agent/Dockerfile: the
 * stack's Postgres image (so pg_dump and pg_restore are the server's own version) with Node, the agent's
 * compiled code, restic and an SSH client. The agent is in the image, not in an environment variable.
 */
export class BackupImage extends pulumi.ComponentResource {
    public readonly image: docker.Image;
    /** Image ID: changes exactly when the build does. */
    public readonly imageId: pulumi.Output<string>;

    constructor(name: string, args: BackupImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:database:BackupImage", name, {}, opts);
        this.image = new docker.Image(
            `${name}-image`,
            {
                imageName: args.imageName,
                build: {
                    context: path.join(args.root, "agent"),
                    dockerfile: "agent/Dockerfile",
                    args: {
                        POSTGRES_IMAGE: args.postgresImage,
                        POSTGRES_IMAGE_ID: args.postgresImageId,
                        NODE_IMAGE: nodeImage(args.root),
                    },
                    platform: args.platform,
                    builderVersion: "BuilderBuildKit",
                },
                // Built for this Docker host only: never pushed, and never built by `pulumi preview`.
                skipPush: true,
                buildOnPreview: false,
            },
            { parent: this },
        );
        // For an image that is not pushed, repoDigest is the local image ID.
        this.imageId = this.image.repoDigest;
        this.registerOutputs({ imageId: this.imageId });
    }
}
