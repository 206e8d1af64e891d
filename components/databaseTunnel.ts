// The laptop's way into a server's database (issue 25): Postgres is published on the server's loopback only
// (no port on the LAN: policy/rules.ts, no-database-port-on-lan), and an SSH tunnel brings that port to the
// laptop's own loopback. What the stack output `databaseTunnel` says: the ssh command and the URL to use
// while it runs.

/** The laptop's end of the tunnel: not 5432, which a laptop's own PostgreSQL (or the dev stack) often holds. */
export const TUNNEL_LOCAL_PORT = 15432;

/** `ssh://user@host:port` as ssh's destination and port options; undefined for any other endpoint. */
export function sshDestination(dockerHost: string): { destination: string; port?: string } | undefined {
    const m = /^ssh:\/\/(?:([^@/]+)@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(dockerHost);
    if (!m) return undefined;
    const [, user, host, port] = m;
    return { destination: user ? `${user}@${host}` : host!, ...(port ? { port } : {}) };
}

/**
 * The tunnel command: `ssh -N -L <local>:127.0.0.1:<server port> <destination>`, which forwards the
 * laptop's 127.0.0.1:<local> to the server's loopback while it runs (Ctrl-C ends it). It goes through the
 * user's ssh and ~/.ssh/config, as the stack's docker CLI does. Undefined when the engine is not reached
 * over SSH.
 */
export function tunnelCommand(
    dockerHost: string,
    serverPort: number,
    localPort = TUNNEL_LOCAL_PORT,
): string | undefined {
    const to = sshDestination(dockerHost);
    if (!to) return undefined;
    return `ssh -N -L ${localPort}:127.0.0.1:${serverPort}${to.port ? ` -p ${to.port}` : ""} ${to.destination}`;
}
