// When the agent runs a scheduled pass. The schedule is parsed once, by the program
// (components/backupSchedule.ts, agentEnvironment): the agent only looks the minute up in the lists it was
// given, so cron syntax has one parser. Times are UTC (the container's clock).

export type AgentSchedule =
    | { mode: "off" }
    | { mode: "every"; seconds: number }
    | {
          mode: "cron";
          minutes: number[];
          hours: number[];
          days: number[];
          months: number[];
          weekdays: number[];
          /** "either": a restricted day of month and day of week match when either does (Vixie cron). */
          dayRule: "either" | "both";
      };

const list = (v: string | undefined): number[] =>
    (v ?? "")
        .split(/\s+/)
        .filter((x) => x !== "")
        .map(Number);

/** The schedule from the agent's environment (BACKUP_MODE and its lists); throws on a mode it does not know. */
export function scheduleFromEnv(all: NodeJS.ProcessEnv, prefix = "BACKUP_"): AgentSchedule {
    // The verify's schedule travels as BACKUP_VERIFY_MODE, BACKUP_VERIFY_MINUTES, ...
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(all)) if (k.startsWith(prefix)) env[`BACKUP_${k.slice(prefix.length)}`] = v;
    const mode = env.BACKUP_MODE ?? "off";
    if (mode === "off") return { mode };
    if (mode === "every") {
        const seconds = Number(env.BACKUP_EVERY_SECONDS);
        if (!Number.isInteger(seconds) || seconds < 1)
            throw new Error(`BACKUP_EVERY_SECONDS must be a whole number of seconds, got ${env.BACKUP_EVERY_SECONDS}`);
        return { mode, seconds };
    }
    if (mode === "cron")
        return {
            mode,
            minutes: list(env.BACKUP_MINUTES),
            hours: list(env.BACKUP_HOURS),
            days: list(env.BACKUP_DAYS),
            months: list(env.BACKUP_MONTHS),
            weekdays: list(env.BACKUP_WEEKDAYS),
            dayRule: env.BACKUP_DAY_RULE === "either" ? "either" : "both",
        };
    throw new Error(`unknown BACKUP_MODE ${mode}`);
}

/** Whether a cron schedule fires in the minute of `t` (UTC). */
export function due(s: AgentSchedule, t: Date): boolean {
    if (s.mode !== "cron") return false;
    if (!s.minutes.includes(t.getUTCMinutes()) || !s.hours.includes(t.getUTCHours())) return false;
    if (!s.months.includes(t.getUTCMonth() + 1)) return false;
    const dom = s.days.includes(t.getUTCDate());
    const dow = s.weekdays.includes(t.getUTCDay());
    return s.dayRule === "either" ? dom || dow : dom && dow;
}

/** The start of the next minute after `t` in which a cron schedule fires (within a year), or undefined. */
export function nextDue(s: AgentSchedule, t: Date): Date | undefined {
    const start = Math.floor(t.getTime() / 60_000) * 60_000 + 60_000;
    for (let i = 0; i <= 366 * 24 * 60; i++) {
        const m = new Date(start + i * 60_000);
        if (due(s, m)) return m;
    }
    return undefined;
}

/** A minute key (UTC, yyyymmddhhmm) so that one minute never fires twice. */
export const minuteKey = (t: Date): string => t.toISOString().slice(0, 16);
