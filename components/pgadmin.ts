import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { containerDefaults, containerOptions, labelList, publishedPorts, type Labels, type Publish } from "./common";

export interface PgAdminArgs {
    image: string;
    containerName: string;
    networkName: pulumi.Input<string>;
    email: string;
    password: pulumi.Input<string>;
    publish: Publish;
    /** Labels of the container (the stack's identity). */
    labels?: Labels;
}

/** Optional pgAdmin for local development, on the stack's network (server host: `postgres`). */
export class PgAdmin extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    public readonly url: string;

    constructor(name: string, args: PgAdminArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:tools:PgAdmin", name, {}, opts);
        const image = new docker.RemoteImage(
            `${name}-image`,
            { name: args.image, keepLocally: true },
            { parent: this },
        );
        this.container = new docker.Container(
            `${name}-container`,
            {
                name: args.containerName,
                image: image.imageId,
                envs: [
                    `PGADMIN_DEFAULT_EMAIL=${args.email}`,
                    pulumi.interpolate`PGADMIN_DEFAULT_PASSWORD=${args.password}`,
                ],
                networksAdvanced: [{ name: args.networkName }],
                ports: publishedPorts(80, args.publish),
                labels: labelList(args.labels),
                destroyGraceSeconds: 10,
                ...containerDefaults,
            },
            { parent: this, ...containerOptions, additionalSecretOutputs: ["envs"] },
        );
        this.url = `http://${args.publish.bindAddress}:${args.publish.port}`;
        this.registerOutputs({ url: this.url });
    }
}
