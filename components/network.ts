import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { labelList, type Labels } from "./common";

export interface NetworkArgs {
    /** Name of the private bridge network the stack creates. */
    name: string;
    /** Networks that already exist on the Docker host (e.g. a reverse proxy's); looked up, never created or deleted. */
    external?: string[];
    /** Labels of the network (the stack's identity). */
    labels?: Labels;
    /** Resources that must be complete first (the host preparation that frees the name after a lost state). */
    waitFor?: pulumi.Input<pulumi.Resource>[];
}

/** The stack's private bridge network, plus read-only lookups of pre-existing networks. */
export class Network extends pulumi.ComponentResource {
    public readonly name: pulumi.Output<string>;
    /** Names of the external networks, resolved through the engine so a missing one fails the run early. */
    public readonly externalNames: pulumi.Output<string[]>;

    constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("marvel-rivals-stats:network:Network", name, {}, opts);
        if (!args.name) throw new Error("`name` is required");

        // A fixed name means a replacement must delete the old network before creating the new one.
        const network = new docker.Network(
            `${name}-bridge`,
            { name: args.name, driver: "bridge", labels: labelList(args.labels) },
            { parent: this, deleteBeforeReplace: true, dependsOn: args.waitFor },
        );
        this.name = network.name;

        this.externalNames = pulumi.all(
            (args.external ?? []).map(
                (external) =>
                    // `parent` makes the lookup use the stack's Docker provider (the remote host on odin).
                    docker.getNetworkOutput({ name: external }, { parent: this }).name,
            ),
        );
        this.registerOutputs({ name: this.name, externalNames: this.externalNames });
    }
}
