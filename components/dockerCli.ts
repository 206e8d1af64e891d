// Shared by the components that drive the `docker` CLI through @pulumi/command.

/**
 * Environment for a `docker` CLI call against the stack's engine. Unset means the local engine, as the
 * CLI would pick it (DOCKER_HOST of the calling shell or the default socket).
 */
export function dockerEnvironment(dockerHost: string | undefined): Record<string, string> {
    return dockerHost ? { DOCKER_HOST: dockerHost } : {};
}

/** The json-file log rotation every container of the stack uses. */
export const rotatedLogs = {
    logDriver: "json-file",
    logOpts: { "max-size": "10m", "max-file": "3" },
};
