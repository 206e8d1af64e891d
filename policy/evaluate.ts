// `npm run policy -- <stack> [--set key=value ...]`: evaluates the policy pack (rules.ts) against the
// stack's resource graph without the Pulumi CLI: the real index.ts runs under the unit tier's mocks over
// the real stack config (support/mockProgram.ts), and every policy sees each resource's type, name,
// URN, inputs and options as the engine would hand them over. Exits 1 naming the rule and the resource on
// a mandatory violation, 2 on bad usage. `--set` tries a change first (e.g. --set postgresPort=5432).
import { resolve } from "node:path";
import { OPTIONAL_KEYS, nearestKey, projectDefaults } from "../config";
import { runProgram } from "../support/mockProgram";
import { eachArg, npmAteFlags, stackName, stackNames, UsageError, wantsHelp } from "../scripts/target";
import { policies, type Resource } from "./rules";

const REPO = resolve(__dirname, "..");

export interface Violation {
    policy: string;
    enforcementLevel: string;
    message: string;
    urn: string | undefined;
}

/** Runs every policy over `resources`; the violations they report. */
export function evaluate(resources: Resource[]): Violation[] {
    const violations: Violation[] = [];
    for (const policy of policies) {
        const args = {
            resources,
            stackTags: new Map<string, string>(),
            getConfig: () => ({}),
            notApplicable: (reason?: string): never => {
                throw new Error(`${policy.name} is not applicable: ${reason ?? ""}`);
            },
        };
        void policy.validateStack(args as never, (message, urn) =>
            violations.push({
                policy: policy.name,
                enforcementLevel: policy.enforcementLevel ?? "mandatory",
                message,
                urn,
            }),
        );
    }
    return violations;
}

/** The program's resources for `stack` (with config `overrides`), as policies see them. */
export async function stackResources(stack: string, overrides: Record<string, string> = {}): Promise<Resource[]> {
    const run = await runProgram(stack, overrides);
    return run.resources.map((r) => ({
        type: r.type,
        name: r.name,
        urn: r.urn,
        props: r.inputs,
        opts: { additionalSecretOutputs: r.additionalSecretOutputs },
    }));
}

/** The one-line error for `--set key=value` when `key` is no setting of this project; undefined when it is. */
export function unknownSetKey(key: string, value: string): string | undefined {
    const known = [...Object.keys(projectDefaults(REPO)), ...Object.keys(OPTIONAL_KEYS)];
    if (known.includes(key)) return undefined;
    const like = nearestKey(key, known);
    return like
        ? `--set ${key}: did you mean --set ${like}=${value}?`
        : `--set ${key}: not a setting of this project (docs/configuration.md lists every key)`;
}

const USAGE =
    "usage: npm run policy -- [--stack <name>] [--set key=value ...]   e.g. npm run -s policy -- --stack odin";

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
    if (wantsHelp(argv)) {
        process.stdout.write(`${USAGE}\nthe stacks: ${stackNames().join(", ")} (one per Pulumi.<name>.yaml file)\n`);
        return 0;
    }
    // The stack: `--stack <name>` as in every script, or the first argument (as before); default dev.
    let stack = "dev";
    const rest: string[] = [];
    try {
        npmAteFlags(argv, env);
        eachArg(
            argv,
            (arg, value) => {
                if (arg === "--stack") stack = value();
                else if (rest.length === 0 && !arg.startsWith("-") && argv.indexOf(arg) === 0) stack = arg;
                else rest.push(arg);
            },
            env,
        );
        stackName(stack);
    } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`policy: ${err.message}\n`);
        return 2;
    }
    const overrides: Record<string, string> = {};
    for (let i = 0; i < rest.length; i++) {
        if (rest[i] !== "--set") {
            process.stderr.write(`policy: unexpected argument ${JSON.stringify(rest[i])}\n${USAGE}\n`);
            return 2;
        }
        const m = /^([A-Za-z]\w*)=(.*)$/.exec(rest[i + 1] ?? "");
        if (!m) {
            process.stderr.write("policy: --set needs key=value, e.g. --set appPort=8000\n");
            return 2;
        }
        // A mistyped key of --set is this command's typo, not the stack's: the config's own message would
        // say to `config rm` a key the stack does not have.
        const unknown = unknownSetKey(m[1]!, m[2]!);
        if (unknown) {
            process.stderr.write(`policy: ${unknown}\n`);
            return 2;
        }
        overrides[m[1]!] = m[2]!;
        i++;
    }
    const resources = await stackResources(stack, overrides);
    const violations = evaluate(resources);
    for (const v of violations) {
        const resource = v.urn ? v.urn.split("::").at(-1) : "the stack";
        process.stdout.write(`${v.enforcementLevel} violation of ${v.policy} (${resource}): ${v.message}\n`);
    }
    const mandatory = violations.filter((v) => v.enforcementLevel === "mandatory").length;
    process.stdout.write(
        `policy: ${policies.length} policies over ${resources.length} resources of stack ${stack}: ${mandatory === 0 ? "no mandatory violation" : `${mandatory} mandatory violation(s)`}\n`,
    );
    return mandatory === 0 ? 0 : 1;
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (err: unknown) => {
            process.stderr.write(`policy: ${err instanceof Error ? err.message : String(err)}\n`);
            process.exit(2);
        },
    );
}
