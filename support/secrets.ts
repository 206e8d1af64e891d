// Pulumi's wire form of secrets, as the mock monitor hands inputs to `newResource` (mockProgram's mocks and
// the e2e harness both read it).
// A secret value arrives as { [SIG_KEY]: SECRET_SIG, value }; state returned in that same form stays secret
// (pulumi/pulumi sdk/nodejs/runtime/rpc.ts, specialSigKey and specialSecretSig).
import { createHash } from "node:crypto";

export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export function isSecretWrapper(v: unknown): v is { value: unknown } {
    return typeof v === "object" && v !== null && (v as any)[SIG_KEY] === SECRET_SIG;
}

/** Whether a value holds a secret anywhere inside it. */
export function containsSecret(v: unknown): boolean {
    if (isSecretWrapper(v)) return true;
    if (Array.isArray(v)) return v.some(containsSecret);
    return !!v && typeof v === "object" && Object.values(v).some(containsSecret);
}

/** Deep copy with every secret wrapper replaced by its plain value. */
export function unwrapSecrets(v: any): any {
    if (isSecretWrapper(v)) return unwrapSecrets(v.value);
    if (Array.isArray(v)) return v.map(unwrapSecrets);
    if (v && typeof v === "object") {
        const out: Record<string, any> = {};
        for (const [k, x] of Object.entries(v)) out[k] = unwrapSecrets(x);
        return out;
    }
    return v;
}

export function secret<T>(value: T): { [SIG_KEY]: string; value: T } {
    return { [SIG_KEY]: SECRET_SIG, value };
}

/** Stable JSON (sorted keys, undefined dropped) of plain values. */
export function canonicalJson(v: any): string {
    if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
    if (v && typeof v === "object") {
        const keys = Object.keys(v)
            .filter((k) => v[k] !== undefined)
            .sort();
        return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(",")}}`;
    }
    return JSON.stringify(v ?? null);
}

/** A digest of a resource's inputs: what the harness compares between runs (no plaintext kept). */
export function inputsDigest(inputs: any): string {
    return createHash("sha256")
        .update(canonicalJson(unwrapSecrets(inputs)))
        .digest("hex");
}
