// The process limit of the stack's containers (issue 24): the provider has none, so a step sets it.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type * as docker from "@pulumi/docker";
import { PROCESS_LIMIT, dockerEnvironment } from "./common";

/** The name of the stack's pids-limit step (the policy looks for it). */
export const PIDS_LIMITS_STEP = "pids-limits";

/**
 * The process limit of every container of the stack (PROCESS_LIMIT, see there): one `docker update
 * --pids-limit` over their names after they exist, again whenever one of them is a new container (its ID
 * in the triggers). `PIDS_CONTAINERS` lists the names, for the policy to check that none is left out.
 */
export class PidsLimits extends pulumi.ComponentResource {
    public readonly step: command.local.Command;

    constructor(
        name: string,
        containers: docker.Container[],
        dockerHost: string,
        opts?: pulumi.ComponentResourceOptions,
    ) {
        super("marvel-rivals-stats:docker:PidsLimits", name, {}, opts);
        this.step = new command.local.Command(
            PIDS_LIMITS_STEP,
            {
                create: 'set -eu\nfor c in $PIDS_CONTAINERS; do docker update --pids-limit "$PIDS_LIMIT" "$c" >/dev/null; done\necho "pids limit $PIDS_LIMIT: $PIDS_CONTAINERS"',
                environment: {
                    ...dockerEnvironment(dockerHost),
                    PIDS_LIMIT: String(PROCESS_LIMIT),
                    PIDS_CONTAINERS: pulumi.all(containers.map((c) => c.name)).apply((n) => n.join(" ")),
                },
                triggers: containers.map((c) => c.id),
            },
            { parent: this, dependsOn: containers },
        );
        this.registerOutputs({});
    }
}
