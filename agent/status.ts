// What the scheduled passes have done, for the container's healthcheck (`backup-agent health`), for
// `npm run backups` and for the notifications: kept in a small file in the container (not in the backup
// directory, which may be the problem). Pure helpers; main.ts reads and writes the file.

export interface PassStatus {
    /** When the schedule loop started. */
    startedAt: string;
    lastPassAt?: string;
    lastPassOk?: boolean;
    lastPassFile?: string;
    lastError?: string;
    lastGoodAt?: string;
    lastGoodFile?: string;
    /** The periodic verify (re-hash, test-restore in a temporary cluster). */
    lastVerifyAt?: string;
    lastVerifyOk?: boolean;
    lastVerifyError?: string;
}

export interface Health {
    healthy: boolean;
    message: string;
}

/**
 * Unhealthy after a failed pass, or when no good pass came within `overdueSeconds` of the last good one
 * (or of the start, before the first); 0 turns the overdue rule off (no schedule).
 */
export function health(s: PassStatus | undefined, now: Date, overdueSeconds: number): Health {
    if (!s) return { healthy: true, message: "no scheduled pass yet" };
    if (s.lastPassOk === false)
        return { healthy: false, message: `the last scheduled pass (${s.lastPassAt}) failed: ${s.lastError ?? "?"}` };
    if (s.lastVerifyOk === false)
        return { healthy: false, message: `the last verify (${s.lastVerifyAt}) failed: ${s.lastVerifyError ?? "?"}` };
    const since = s.lastGoodAt ?? s.startedAt;
    const age = (now.getTime() - new Date(since).getTime()) / 1000;
    if (overdueSeconds > 0 && age > overdueSeconds)
        return {
            healthy: false,
            message: s.lastGoodAt
                ? `overdue: the last good pass (${s.lastGoodFile}) was at ${s.lastGoodAt}, ${Math.round(age)} s ago (allowed ${overdueSeconds} s)`
                : `overdue: no good pass since the agent started at ${s.startedAt}, ${Math.round(age)} s ago (allowed ${overdueSeconds} s)`,
        };
    return {
        healthy: true,
        message: s.lastGoodAt ? `last good pass: ${s.lastGoodFile} at ${s.lastGoodAt}` : "no scheduled pass yet",
    };
}

/** The status after a pass, and which notification it calls for: the first failure of a run, or a recovery. */
export function afterPass(
    before: PassStatus,
    pass: { at: string; ok: boolean; file?: string; error?: string },
): { status: PassStatus; event?: "failure" | "recovery" } {
    const status: PassStatus = {
        ...before,
        lastPassAt: pass.at,
        lastPassOk: pass.ok,
        lastPassFile: pass.file,
        lastError: pass.ok ? undefined : pass.error,
        ...(pass.ok ? { lastGoodAt: pass.at, lastGoodFile: pass.file } : {}),
    };
    const event =
        !pass.ok && before.lastPassOk !== false
            ? "failure"
            : pass.ok && before.lastPassOk === false
              ? "recovery"
              : undefined;
    return { status, event };
}

/**
 * The webhook's JSON body: one shape that ntfy, Gotify (`title`, `message`, `priority`) and Discord
 * (`content`) each read, with the facts as fields for anything else.
 */
export function notification(
    event: "failure" | "recovery",
    stack: string,
    status: PassStatus,
): Record<string, string | number> {
    const title = event === "failure" ? `Backups FAILING on ${stack}` : `Backups recovered on ${stack}`;
    const message =
        event === "failure"
            ? `The scheduled backup at ${status.lastPassAt} failed: ${status.lastError ?? "?"}. Last good backup: ${status.lastGoodFile ?? "none"}${status.lastGoodAt ? ` (${status.lastGoodAt})` : ""}. See docker logs of the backup container.`
            : `The scheduled backup at ${status.lastPassAt} passed (${status.lastPassFile}).`;
    return {
        event,
        stack,
        title,
        message,
        content: `**${title}**: ${message}`,
        priority: event === "failure" ? 8 : 4,
        at: status.lastPassAt ?? "",
        file: status.lastPassFile ?? "",
        lastGood: status.lastGoodFile ?? "",
    };
}
