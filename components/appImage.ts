import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";

export interface AppImageArgs {
    /** Build context (the repository root: the image also carries migrations/). */
    context: string;
    /** Dockerfile path, relative to the context. */
    dockerfile: string;
    /** `dev` (watcher over a bind-mounted src) or `runtime`. */
    target: "dev" | "runtime";
    imageName: string;
    platform?: string;
}

/**
 * The app image, built by the stack's Docker engine from app/Dockerfile. It carries the service and
 * the migration runner with the migration files, so the migration step and the app run the same code.
 */
export class AppImage extends pulumi.ComponentResource {
    public readonly image: docker.Image;
    /** Image ID: changes exactly when the build does. */
    public readonly imageId: pulumi.Output<string>;

    constructor(name: string, args: AppImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:app:AppImage", name, {}, opts);
        if (args.target !== "dev" && args.target !== "runtime") {
            throw new Error(`\`target\` must be "dev" or "runtime", got ${JSON.stringify(args.target)}`);
        }

        this.image = new docker.Image(
            `${name}-image`,
            {
                imageName: args.imageName,
                build: {
                    context: args.context,
                    dockerfile: args.dockerfile,
                    target: args.target,
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
