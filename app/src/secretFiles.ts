// Secrets as files (issue 24): a credential reaches the process as a file named by `<NAME>_FILE` (a
// read-only bind mount), never in the container's environment, where `docker inspect`, /proc/<pid>/environ
// and every child process would see it. The value is read into this process's memory only: the returned
// copy of the environment is used, process.env is left as it is.
import { readFileSync } from "node:fs";

/** The variables that may come from a file instead (the credentials). */
export const SECRET_FILE_VARIABLES = ["DATABASE_URL", "REDIS_URL", "MARVEL_RIVALS_API_KEY"] as const;

/**
 * `env` with each `<NAME>_FILE` read into `<NAME>` (one trailing newline dropped). Setting both is a
 * problem (which would win?), as is a file that cannot be read; each is one line naming the fix, never
 * the value.
 */
export function readSecretFiles(env: NodeJS.ProcessEnv = process.env): {
    env: NodeJS.ProcessEnv;
    problems: string[];
} {
    const out: NodeJS.ProcessEnv = { ...env };
    const problems: string[] = [];
    for (const name of SECRET_FILE_VARIABLES) {
        const file = env[`${name}_FILE`];
        if (file === undefined || file === "") continue;
        if (env[name] !== undefined && env[name] !== "") {
            problems.push(
                `${name} and ${name}_FILE are both set: unset one (${name}_FILE keeps it out of the environment)`,
            );
            continue;
        }
        try {
            out[name] = readFileSync(file, "utf8").replace(/\r?\n$/, "");
        } catch (err) {
            const code = (err as NodeJS.ErrnoException).code ?? "error";
            problems.push(
                `${name}_FILE names ${file}, which cannot be read (${code}): mount the file read-only for this user, or unset ${name}_FILE`,
            );
        }
        delete out[`${name}_FILE`];
    }
    return { env: out, problems };
}

/** `env` with the secret files read; throws one Error listing every problem. */
export function withSecretFiles(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    const { env: out, problems } = readSecretFiles(env);
    if (problems.length > 0) throw new Error(problems.join("; "));
    return out;
}
