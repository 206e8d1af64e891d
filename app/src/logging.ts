// The logger's `err` serializer. pino's standard one copies every enumerable property of an error, and
// ioredis puts the failed command on its errors (`err.command = { name, args }`): when Redis refuses AUTH,
// `args` holds the password, which would then be logged on every reconnection attempt. This serializer keeps
// what explains a failure (type, message, stack, code and the like, causes) and drops anything that carries
// command arguments, for every log line of the app (Redis listener, stats cache, health checks, handler).
// Hand-written rather than wrapping pino.stdSerializers.err: pino is fastify's dependency, not the app's.

/** Properties never copied from an error: a command and its arguments may carry passwords and keys. */
const DROPPED = new Set(["command", "args", "argv", "params", "parameters"]);

export interface SerializedError {
    type: string;
    message: string;
    stack: string;
    [key: string]: unknown;
}

function carriesArgs(value: unknown): boolean {
    return typeof value === "object" && value !== null && !Array.isArray(value) && "args" in value;
}

function serialize(err: Error, seen: WeakSet<object>): SerializedError {
    seen.add(err);
    const out: SerializedError = {
        type: err.constructor?.name ?? "Error",
        message: err.message,
        stack: err.stack ?? "",
    };
    const copy = (key: string, value: unknown) => {
        if (DROPPED.has(key) || carriesArgs(value) || typeof value === "function") return;
        if (value instanceof Error) {
            if (!seen.has(value)) out[key] = serialize(value, seen);
            return;
        }
        if (Array.isArray(value) && value.some((v) => v instanceof Error)) {
            out[key] = value.map((v) => (v instanceof Error ? (seen.has(v) ? "[Circular]" : serialize(v, seen)) : v));
            return;
        }
        out[key] = value;
    };
    for (const [key, value] of Object.entries(err)) copy(key, value);
    // `cause` is usually not enumerable (new Error(msg, { cause })): copy it explicitly.
    if (!("cause" in out) && err.cause !== undefined) copy("cause", err.cause);
    return out;
}

/** pino `err` serializer: the error without command arguments; a non-error (`{ err: "text" }`) passes through. */
export function errSerializer(err: Error): SerializedError {
    if (!(err instanceof Error)) return err as unknown as SerializedError;
    return serialize(err, new WeakSet());
}
