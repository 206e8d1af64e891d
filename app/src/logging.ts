// The logger's `err` serializer. pino's standard one copies every enumerable property of an error, and
// libraries hang objects on their errors: ioredis the failed command (`err.command = { name, args }`: when
// Redis refuses AUTH, `args` holds the password, logged on every reconnection attempt), pg-pool the client
// whose idle connection failed (`err.client`: user, database, host, the backend's cancel key). This
// serializer keeps what explains a failure (type, message, stack, code and the other plain values, causes)
// and drops every other object, for every log line of the app (outages, health checks, handler).
// Hand-written rather than wrapping pino.stdSerializers.err: pino is fastify's dependency, not the app's.

/** Properties never copied from an error: a command and its arguments may carry passwords and keys. */
const DROPPED = new Set(["command", "args", "argv", "params", "parameters"]);

export interface SerializedError {
    type: string;
    message: string;
    stack: string;
    [key: string]: unknown;
}

type Plain = string | number | boolean | null;

function isPlain(value: unknown): value is Plain {
    return value === null || ["string", "number", "boolean"].includes(typeof value);
}

function serialize(err: Error, seen: WeakSet<object>): SerializedError {
    seen.add(err);
    const out: SerializedError = {
        type: err.constructor?.name ?? "Error",
        message: err.message,
        stack: err.stack ?? "",
    };
    const copy = (key: string, value: unknown) => {
        if (DROPPED.has(key)) return;
        if (value instanceof Error) {
            if (!seen.has(value)) out[key] = serialize(value, seen);
            return;
        }
        // Arrays of errors (AggregateError's `errors`, ioredis's `previousErrors`) or of plain values.
        if (Array.isArray(value) && value.every((v) => v instanceof Error || isPlain(v))) {
            out[key] = value.map((v) => (v instanceof Error ? (seen.has(v) ? "[Circular]" : serialize(v, seen)) : v));
            return;
        }
        // Any other object (a client, a socket, a command) stays out of the log.
        if (isPlain(value)) out[key] = value;
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
