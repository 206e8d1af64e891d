// Reads the real Pulumi.yaml and Pulumi.<stack>.yaml the way the Pulumi CLI hands them to a program:
// project defaults first, stack values over them, every value a string (arrays as JSON). `secure:`
// values cannot be decrypted here, so they become recognisable test values.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
export const NAMESPACE = "marvel-rivals-stats";

export interface LoadedConfig {
    /** Full keys (`marvel-rivals-stats:dataDir`) to the string values the program sees. */
    config: Record<string, string>;
    /** Full keys whose values are secrets. */
    secretKeys: string[];
}

const asString = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

export function loadStackConfig(stack: string, overrides: Record<string, string | undefined> = {}): LoadedConfig {
    const project = parse(readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8"));
    const stackFile = parse(readFileSync(path.join(PROJECT_ROOT, `Pulumi.${stack}.yaml`), "utf8")) ?? {};
    const config: Record<string, string> = {};
    const secretKeys = new Set<string>();
    for (const [key, schema] of Object.entries<Record<string, unknown>>(project.config ?? {})) {
        const full = `${NAMESPACE}:${key}`;
        if (schema.secret) secretKeys.add(full);
        if (schema.default !== undefined) config[full] = asString(schema.default);
    }
    for (const [full, value] of Object.entries<unknown>(stackFile.config ?? {})) {
        if (value && typeof value === "object" && "secure" in value) {
            config[full] = `test-secret-for-${full.split(":")[1]}`;
            secretKeys.add(full);
        } else {
            config[full] = asString(value);
        }
    }
    for (const [key, value] of Object.entries(overrides)) {
        const full = key.includes(":") ? key : `${NAMESPACE}:${key}`;
        if (value === undefined) delete config[full];
        else config[full] = value;
    }
    return { config, secretKeys: [...secretKeys] };
}
