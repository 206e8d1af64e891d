// What the engine receives for each resource a program registers, taken from the request the
// Node SDK sends to the resource monitor (the mock monitor, under `setMocks`): type, name, parent, inputs,
// dependencies and the resource options that change what the engine does (pulumi/pulumi v3.259.0,
// proto/pulumi/resource.proto, RegisterResourceRequest). mockProgram (the unit tests, `npm run policy`) and
// the e2e harness both use it, so they see the same options the real engine would.
import * as pulumi from "@pulumi/pulumi";

export interface Registration {
    type: string;
    name: string;
    urn: string;
    parent: string;
    custom: boolean;
    /** Inputs as the engine receives them (secret wrappers kept: see secretInputs). */
    rawInputs: Record<string, any>;
    /** URNs this registration depends on (explicit dependsOn and input dependencies). */
    dependencies: string[];
    /**
     * The program's deleteBeforeReplace, undefined when the program left it unset: an explicit `false`
     * overrides the provider's choice (pulumi/pulumi v3.259.0, pkg/resource/deploy/source_eval.go reads
     * DeleteBeforeReplaceDefined; step_generator.go, generateStepsFromDiff: `if goal.DeleteBeforeReplace != nil`).
     */
    deleteBeforeReplace: boolean | undefined;
    ignoreChanges: string[];
    replaceOnChanges: string[];
    retainOnDelete: boolean;
    protect: boolean;
    additionalSecretOutputs: string[];
}

/** Calls `record` for every resource registration of the program that runs after it (mock runtime only). */
export function interceptRegistrations(project: string, stack: string, record: (r: Registration) => void): void {
    const monitor = pulumi.runtime.getMonitor() as any;
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: any) => {
        const parent: string = req.getParent();
        const stackPrefix = `urn:pulumi:${stack}::${project}::`;
        const parentType = parent ? parent.slice(stackPrefix.length).split("::")[0] : "";
        record({
            type: req.getType(),
            name: req.getName(),
            urn: `${stackPrefix}${parentType ? `${parentType}$` : ""}${req.getType()}::${req.getName()}`,
            parent,
            custom: req.getCustom(),
            rawInputs: pulumi.runtime.deserializeProperties(req.getObject()),
            dependencies: req.getDependenciesList(),
            deleteBeforeReplace: req.getDeletebeforereplacedefined() ? req.getDeletebeforereplace() : undefined,
            ignoreChanges: req.getIgnorechangesList(),
            replaceOnChanges: req.getReplaceonchangesList(),
            retainOnDelete: req.getRetainondelete() ?? false,
            protect: req.getProtect() ?? false,
            additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
        });
        return register(req, callback);
    };
}
