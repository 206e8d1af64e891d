import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import {
    containerDefaults,
    containerOptions,
    hardening,
    labelList,
    memoryLimit,
    publishedPorts,
    type Labels,
    type Publish,
} from "./common";

/** pgAdmin's port in its container (PGADMIN_LISTEN_PORT). */
export const PGADMIN_PORT = 5050;

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
                    // A port a non-root process may bind without CAP_NET_BIND_SERVICE (the image's default is 80).
                    `PGADMIN_LISTEN_PORT=${PGADMIN_PORT}`,
                ],
                networksAdvanced: [{ name: args.networkName }],
                ports: publishedPorts(PGADMIN_PORT, args.publish),
                labels: labelList(args.labels),
                destroyGraceSeconds: 10,
                ...containerDefaults,
                // The image's python carries CAP_NET_BIND_SERVICE as a file capability with the effective bit
                // (pgadmin-org/pgadmin4 Dockerfile: `setcap CAP_NET_BIND_SERVICE=+eip`): the kernel refuses to
                // exec such a file when the capability is outside the bounding set (linux security/commoncap.c,
                // bprm_caps_from_vfs_caps), and no-new-privileges does not lift that. So it is given back.
                ...hardening({ capAdd: ["CAP_NET_BIND_SERVICE"] }),
                ...memoryLimit(512),
            },
            { parent: this, ...containerOptions, additionalSecretOutputs: ["envs"] },
        );
        this.url = `http://${args.publish.bindAddress}:${args.publish.port}`;
        this.registerOutputs({ url: this.url });
    }
}
