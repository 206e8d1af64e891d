// Runs the real index.ts under `pulumi.runtime.setMocks` and records the resource graph as the engine
// would receive it: every registration with its type, name, parent, inputs and dependencies. The unit tier
// and `npm run policy` (policy/evaluate.ts) both run the program through it, so it lives outside test/.
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import * as path from "node:path";
import { PROJECT_ROOT, loadStackConfig } from "./stackConfig";
import { interceptRegistrations, type Registration } from "./registrations";
import { containsSecret, unwrapSecrets } from "./secrets";

export interface Registered extends Registration {
    /** Plain inputs, secret wrappers removed (secrecy is recorded separately in `secretInputs`). */
    inputs: Record<string, any>;
    /** Top-level input names that the engine receives as secrets. */
    secretInputs: string[];
}

export interface ProgramRun {
    resources: Registered[];
    outputs: Record<string, { value: unknown; secret: boolean }>;
    byName(name: string): Registered;
    ofType(type: string): Registered[];
}

const fakeId = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

/** What the providers would answer, for the resource types the program uses. */
class ProviderMocks implements pulumi.runtime.Mocks {
    constructor(private readonly runnerReport: string) {}
    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, any> } {
        const state = { ...args.inputs };
        switch (args.type) {
            case "docker:index/remoteImage:RemoteImage":
                state.imageId = fakeId(args.inputs.name);
                state.repoDigest = `${args.inputs.name}@${fakeId(args.inputs.name)}`;
                break;
            case "docker:index/image:Image":
                state.repoDigest = fakeId(JSON.stringify(args.inputs.build));
                break;
            case "random:index/randomPassword:RandomPassword":
                state.result = `generated-${args.name}-0123456789`;
                break;
            case "random:index/randomId:RandomId":
                // As many bytes as asked (the SCRAM salt is 16, the state ID 8).
                state.hex = "00112233aabbccdd".repeat(4).slice(0, 2 * Number(args.inputs.byteLength ?? 8));
                break;
            case "command:local:Command":
                state.stdout = args.name.endsWith("-up") ? this.runnerReport : "created postgres";
                state.stderr = "";
                break;
        }
        return { id: `${args.name}-id`, state };
    }
    call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
        if (args.token === "docker:index/getNetwork:getNetwork") {
            return { id: `${args.inputs.name}-id`, name: args.inputs.name, driver: "bridge" };
        }
        if (args.token === "command:local:run") {
            // The pending-migrations read (components/pendingMigrations.ts): no Postgres container yet.
            return { ...args.inputs, stdout: "none", stderr: "" };
        }
        throw new Error(`unexpected invoke ${args.token}`);
    }
}

export const RUNNER_REPORT = JSON.stringify({
    command: "up",
    applied: [{ name: "001_initial_schema", durationMs: 12 }],
    migrations: [
        { name: "001_initial_schema", appliedAt: "2026-11-22T00:00:00.000Z", checksum: "ok" },
        { name: "002_add_indexes", appliedAt: "2026-11-22T00:00:00.000Z", checksum: "ok" },
    ],
    pending: [],
    backup: null,
});

function secretKeysOf(raw: Record<string, unknown>): string[] {
    return Object.keys(raw).filter((key) => containsSecret(raw[key]));
}

async function resolve(o: unknown): Promise<{ value: unknown; secret: boolean }> {
    if (!pulumi.Output.isInstance(o)) return { value: o, secret: false };
    const output = o as pulumi.Output<unknown> & { isSecret: Promise<boolean> };
    const value = await new Promise((res) => output.apply((v) => res(v)));
    return { value, secret: await output.isSecret };
}

/** The environment variables through which the program (and the provider) pick a Docker engine. */
const DOCKER_ENV = ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_SSH_OPTS", "DOCKER_CONFIG"] as const;
/** The Docker variables the program reads come from the test alone, never from the machine running it. */
function isolateDockerEnv(dockerEnv: Partial<Record<(typeof DOCKER_ENV)[number], string>> = {}): void {
    for (const key of DOCKER_ENV) {
        if (dockerEnv[key] === undefined) delete process.env[key];
        else process.env[key] = dockerEnv[key];
    }
    process.env.DOCKER_CONFIG ??= path.join(PROJECT_ROOT, "test", "no-docker-config");
}

/** Keys that a test sets as `pulumi config set --secret` would. */
const SECRET_KEYS = [
    "dbPassword",
    "redisPassword",
    "marvelRivalsApiKey",
    "backupOffsitePassword",
    "backupOffsiteSshKey",
    "backupOffsiteS3Credentials",
];

/**
 * Loads the stack's real config (with `overrides`), runs index.ts under mocks, and returns what it
 * registered. Call it once per test file: Pulumi's runtime state is global to the process.
 */
export async function runProgram(
    stack: string,
    overrides: Record<string, string | undefined> = {},
    dockerEnv: Partial<Record<(typeof DOCKER_ENV)[number], string>> = {},
): Promise<ProgramRun> {
    isolateDockerEnv(dockerEnv);
    const { config, secretKeys } = loadStackConfig(stack, overrides, { secretOverrides: SECRET_KEYS });
    pulumi.runtime.setAllConfig(config, secretKeys);
    await pulumi.runtime.setMocks(new ProviderMocks(RUNNER_REPORT), "marvel-rivals-stats", stack, false);

    const resources: Registered[] = [];
    interceptRegistrations("marvel-rivals-stats", stack, (r) =>
        resources.push({ ...r, inputs: unwrapSecrets(r.rawInputs), secretInputs: secretKeysOf(r.rawInputs) }),
    );

    const program = await import(path.join(PROJECT_ROOT, "index.ts"));
    const outputs: ProgramRun["outputs"] = {};
    for (const [key, value] of Object.entries(program)) outputs[key] = await resolve(value);

    return {
        resources,
        outputs,
        byName(name) {
            const found = resources.find((r) => r.name === name);
            if (!found) throw new Error(`no resource named ${name}; have ${resources.map((r) => r.name).join(", ")}`);
            return found;
        },
        ofType(type) {
            return resources.filter((r) => r.type === type);
        },
    };
}

/**
 * Runs index.ts under mocks that only record names, for a config the program should refuse: returns the
 * error it threw and the resources it declared before that. Call it once per test file.
 */
export async function runRefusedProgram(
    stack: string,
    overrides: Record<string, string | undefined>,
    secretOverrides: string[] = [],
): Promise<{ error?: Error; registered: string[] }> {
    isolateDockerEnv();
    const { config, secretKeys } = loadStackConfig(stack, overrides, { secretOverrides });
    pulumi.runtime.setAllConfig(config, secretKeys);
    const registered: string[] = [];
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                registered.push(args.name);
                return { id: args.name, state: args.inputs };
            },
            call: () => ({}),
        },
        "marvel-rivals-stats",
        stack,
    );
    try {
        await import(path.join(PROJECT_ROOT, "index.ts"));
    } catch (err) {
        return { error: err as Error, registered };
    }
    return { registered };
}
