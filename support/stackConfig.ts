// Reads Pulumi.yaml and Pulumi.<stack>.yaml the way the Pulumi CLI does before it runs a program, with the
// CLI's refusals, so that a stack file the real CLI would refuse fails here too. Used by mockProgram (the
// unit tier and `npm run policy`), the config tests and the end-to-end harness (test/e2e/harness/run.ts).
//
// Emulated from pulumi/pulumi v3.259.0:
// - pkg/workspace/config.go, mergeConfig: a key declared in Pulumi.yaml (in the project's namespace) with
//   no `default`/`value` that the stack does not set stops the run: "Stack 'dev' is missing configuration
//   values 'a' and 'b'" (formatMissingKeys, missingStackConfigurationKeysError). Otherwise the project's
//   default or value is applied when the stack does not set the key (createConfigValue: scalars as text
//   with %v, everything else as JSON).
// - pkg/workspace/config.go, validateStackConfigValue: for every declared, explicitly typed key, in sorted
//   order, the first failure stops the run: a `secret: true` key whose value is not `secure:` ("Stack 'dev'
//   with configuration key 'k' must be encrypted as it's secret"), then a value not of the declared type
//   ("Stack 'dev' with configuration key 'k' must be of type 'integer'"; arrays as 'array<string>',
//   sdk/go/common/workspace/project.go, InferFullTypeName).
// - sdk/go/common/workspace/project.go, ValidateConfigValue: string accepts a string only; integer an int,
//   a whole float or a string strconv.Atoi parses; boolean a bool or the strings "true"/"false"; array a
//   list whose items validate.
// - sdk/go/common/workspace/project.go, ValidateProject: a declared array needs `items`; a default must be
//   of the declared type; `default` and `value` together are refused.
// Keys set in the stack file but not declared are passed through (the CLI validates declared keys only).
// Where the CLI decrypts `secure:` values, the loader substitutes a recognisable test value (or the
// caller's override): nothing here can decrypt a real stack's secrets.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

export const PROJECT_ROOT = path.resolve(__dirname, "..");
export const NAMESPACE = "marvel-rivals-stats";

export interface LoadedConfig {
    /** The project's name (Pulumi.yaml `name`). */
    project: string;
    /** The program's entry point relative to the project (Pulumi.yaml `main`), if set. */
    main?: string;
    /** Full keys (`marvel-rivals-stats:dataDir`) to the string values the program sees. */
    config: Record<string, string>;
    /** Full keys whose values are secrets. */
    secretKeys: string[];
}

/** The Pulumi CLI's refusal of a stack's configuration (the message is the CLI's own). */
export class CliConfigError extends Error {}

interface Declared {
    type?: string;
    items?: { type: string; items?: unknown };
    default?: unknown;
    value?: unknown;
    secret?: boolean;
}

/** How the CLI hands a value to the program: scalars as text, everything else as JSON. */
const asString = (v: unknown) =>
    typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : JSON.stringify(v);

function structured(value: string): unknown {
    if (!/^\s*[[{]/.test(value)) return value;
    try {
        return JSON.parse(value);
    } catch {
        return value;
    }
}

/** sdk/go/common/workspace/project.go, ValidateConfigValue (v3.259.0). */
export function validateConfigValue(type: string, items: Declared["items"], value: unknown): boolean {
    if (type === "string") return typeof value === "string";
    if (type === "integer") {
        if (typeof value === "number") return Number.isInteger(value);
        // strconv.Atoi: optional sign, decimal digits, within int64.
        return typeof value === "string" && /^[+-]?\d+$/.test(value) && Math.abs(Number(value)) < 2 ** 63;
    }
    if (type === "boolean") return typeof value === "boolean" || value === "true" || value === "false";
    if (type === "object") return value !== null && typeof value === "object" && !Array.isArray(value);
    if (!Array.isArray(value) || !items) return false;
    return value.every((item) => validateConfigValue(items.type, items.items as Declared["items"], item));
}

const fullTypeName = (type: string, items: Declared["items"]): string =>
    items ? `array<${fullTypeName(items.type, items.items as Declared["items"])}>` : type;

/** sdk/go/common/workspace/project.go (v3.259.0), ValidateProject's checks of `config:`. */
function validateProject(declared: Record<string, Declared>): void {
    for (const [key, decl] of Object.entries(declared)) {
        if (decl.default !== undefined && decl.value !== undefined)
            throw new CliConfigError(`project config '${key}' cannot have both a 'default' and 'value' attribute`);
        if (decl.type === "array" && !decl.items)
            throw new CliConfigError(
                `The configuration key '${key}' declares an array but does not specify the underlying type via the 'items' attribute`,
            );
        if (decl.type && decl.default !== undefined && !validateConfigValue(decl.type, decl.items, decl.default))
            throw new CliConfigError(
                `The default value specified for configuration key '${key}' is not of the expected type '${fullTypeName(decl.type, decl.items)}'`,
            );
    }
}

/** pkg/workspace/config.go (v3.259.0), formatMissingKeys. */
function formatMissingKeys(keys: string[]): string {
    if (keys.length === 1) return `'${keys[0]}'`;
    const sorted = [...keys].sort();
    return sorted
        .map((k, i) => (i === sorted.length - 1 ? `and '${k}'` : i === sorted.length - 2 ? `'${k}' ` : `'${k}', `))
        .join("");
}

/**
 * The config a program of `projectDir` sees for `stack`, after the CLI's checks. `overrides` stand for
 * `pulumi config set` (secret keys listed in `secretOverrides` as `--secret`); `undefined` removes a key.
 */
export function loadStackConfig(
    stack: string,
    overrides: Record<string, string | undefined> = {},
    opts: { projectDir?: string; secretOverrides?: string[] } = {},
): LoadedConfig {
    const projectDir = opts.projectDir ?? PROJECT_ROOT;
    const project = parse(readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) ?? {};
    const name: string = project.name;
    const full = (k: string) => (k.includes(":") ? k : `${name}:${k}`);
    const declared: Record<string, Declared> = {};
    for (const [key, decl] of Object.entries<unknown>(project.config ?? {})) {
        // A bare value is shorthand for { default: value } (untyped).
        declared[key] =
            decl !== null && typeof decl === "object" && !Array.isArray(decl) ? (decl as Declared) : { default: decl };
    }
    validateProject(declared);

    const stackFile = parse(readFileSync(path.join(projectDir, `Pulumi.${stack}.yaml`), "utf8")) ?? {};
    /** Stack values as the CLI holds them: the raw YAML value, and whether it is `secure:`. */
    const values = new Map<string, { value: unknown; secure: boolean }>();
    for (const [key, value] of Object.entries<unknown>(stackFile.config ?? {})) {
        // sdk/go/common/resource/config/key.go, ParseKey: a stack file's keys carry their namespace.
        if (!key.includes(":"))
            throw new CliConfigError(
                `could not parse ${key} as a configuration key (configuration keys should be of the form \`<namespace>:<name>\`)`,
            );
        const secure = value !== null && typeof value === "object" && "secure" in value;
        values.set(full(key), { value: secure ? `test-secret-for-${full(key).split(":")[1]}` : value, secure });
    }
    for (const [key, value] of Object.entries(overrides)) {
        if (value === undefined) values.delete(full(key));
        // A list or map is set as structured config (`pulumi config set --json`, or written in the YAML),
        // which is how the CLI stores it as an object; anything else is text, as `pulumi config set` stores it.
        else values.set(full(key), { value: structured(value), secure: opts.secretOverrides?.includes(key) ?? false });
    }

    const missing: string[] = [];
    for (const key of Object.keys(declared).sort()) {
        const decl = declared[key];
        const k = full(key);
        if (values.has(k)) continue;
        const fallback = decl.value ?? decl.default;
        if (fallback === undefined) {
            if (k.startsWith(`${name}:`)) missing.push(key);
            continue;
        }
        values.set(k, { value: fallback, secure: false });
    }
    if (missing.length > 0)
        throw new CliConfigError(
            `Stack '${stack}' is missing configuration value${missing.length > 1 ? "s" : ""} ${formatMissingKeys(missing)}`,
        );
    for (const key of Object.keys(declared).sort()) {
        const decl = declared[key];
        const stored = values.get(full(key));
        if (!stored || !decl.type) continue;
        if (decl.secret && !stored.secure)
            throw new CliConfigError(
                `Stack '${stack}' with configuration key '${key}' must be encrypted as it's secret`,
            );
        // The CLI stores scalars as text (YAML 5432 is "5432") and checks the text, except for objects.
        const v = stored.value;
        const checked = v !== null && typeof v === "object" ? v : asString(v);
        if (!validateConfigValue(decl.type, decl.items, checked))
            throw new CliConfigError(
                `Stack '${stack}' with configuration key '${key}' must be of type '${fullTypeName(decl.type, decl.items)}'`,
            );
    }

    const config: Record<string, string> = {};
    const secretKeys: string[] = [];
    for (const [k, { value, secure }] of values) {
        config[k] = asString(value);
        if (secure) secretKeys.push(k);
    }
    return { project: name, main: project.main, config, secretKeys };
}
