// Shared by the components: the docker CLI environment and the options every container gets.

/**
 * Environment for a `docker` CLI call against the stack's engine. Unset means the local engine, as the
 * CLI would pick it (DOCKER_HOST of the calling shell or the default socket).
 */
export function dockerEnvironment(dockerHost: string | undefined): Record<string, string> {
    return dockerHost ? { DOCKER_HOST: dockerHost } : {};
}

/** Options every container of the stack gets. */
export const containerDefaults = {
    restart: "unless-stopped",
    // Rotated json-file logs: a chatty container cannot fill the server's disk.
    logDriver: "json-file",
    logOpts: { "max-size": "10m", "max-file": "3" },
    // Stated explicitly: the provider reads "bridge" back and otherwise shows a diff on every run
    // (pulumi/pulumi-docker#1272). The stack's own networks come from networksAdvanced.
    networkMode: "bridge",
};

export interface Publish {
    port: number;
    bindAddress: string;
}

/** A container's `ports`: `internal` published on the Docker host only when `publish` is given. */
export function publishedPorts(internal: number, publish: Publish | undefined) {
    return publish ? [{ internal, external: publish.port, ip: publish.bindAddress }] : [];
}

/** Docker's memory limit in MB; 0 or unset means none. */
export function memoryLimit(mb: number | undefined): number | undefined {
    return mb ? mb : undefined;
}
