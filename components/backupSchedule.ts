// The backup schedule (issue 14): parsed here, once, in TypeScript; the agent in the container only looks
// values up in the lists this module expands (agent/schedule.ts, `due`), so cron syntax has one
// parser. Times are UTC: the container's clock.
//
// Accepted: five cron fields (minute hour day-of-month month day-of-week; `*`, numbers, `a-b`, `*/n`,
// `a-b/n`, lists with `,`; day-of-week 0-7 with 0 and 7 Sunday), as Vixie cron reads them (a restricted
// day-of-month and day-of-week match when either does); `@hourly`, `@daily` (= `@midnight`), `@weekly`,
// `@monthly`; and `@every <n>s|m|h` for a fixed interval from the agent's start.

export interface CronSchedule {
    kind: "cron";
    /** Allowed values per field, ascending. */
    minutes: number[];
    hours: number[];
    daysOfMonth: number[];
    months: number[];
    /** 0-6, Sunday 0. */
    daysOfWeek: number[];
    /** Whether the day field starts with `*` (Vixie cron's day rule needs to know). */
    domAny: boolean;
    dowAny: boolean;
}

export interface IntervalSchedule {
    kind: "every";
    seconds: number;
}

export type Schedule = CronSchedule | IntervalSchedule;

const FIELDS = [
    { name: "minute", min: 0, max: 59 },
    { name: "hour", min: 0, max: 23 },
    { name: "day of month", min: 1, max: 31 },
    { name: "month", min: 1, max: 12 },
    { name: "day of week", min: 0, max: 7 },
] as const;

const MACROS: Record<string, string> = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
};

/** Raised with what is wrong and what is accepted; never a partial schedule. */
export class ScheduleError extends Error {}

function field(text: string, f: (typeof FIELDS)[number]): number[] {
    const values = new Set<number>();
    for (const part of text.split(",")) {
        const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
        if (!m) throw new ScheduleError(`${f.name} \`${part}\` is not a number, range, * or step`);
        const lo = m[1] === "*" ? f.min : Number(m[2]);
        const hi = m[1] === "*" ? f.max : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? f.max : lo;
        const step = m[4] !== undefined ? Number(m[4]) : 1;
        if (lo < f.min || hi > f.max || lo > hi)
            throw new ScheduleError(`${f.name} \`${part}\` is outside ${f.min}-${f.max}`);
        if (step < 1) throw new ScheduleError(`${f.name} \`${part}\` has a step below 1`);
        for (let v = lo; v <= hi; v += step) values.add(v);
    }
    return [...values].sort((a, b) => a - b);
}

/** Parses a schedule; throws a ScheduleError that names the wrong part. */
export function parseSchedule(text: string): Schedule {
    const trimmed = text.trim();
    const every = /^@every\s+(\d+)([smh])$/.exec(trimmed);
    if (every) {
        const seconds = Number(every[1]) * { s: 1, m: 60, h: 3600 }[every[2] as "s" | "m" | "h"];
        if (seconds < 1 || seconds > 31 * 86400) throw new ScheduleError("@every must be from 1s to 744h");
        return { kind: "every", seconds };
    }
    if (trimmed.startsWith("@") && !(trimmed in MACROS))
        throw new ScheduleError(`\`${trimmed}\` is not one of @hourly, @daily, @weekly, @monthly or @every <n>s|m|h`);
    const parts = (MACROS[trimmed] ?? trimmed).split(/\s+/);
    if (parts.length !== 5)
        throw new ScheduleError(
            `a cron schedule has 5 fields (minute hour day-of-month month day-of-week), got ${parts.length}`,
        );
    const [minutes, hours, daysOfMonth, months, dow] = parts.map((p, i) => field(p, FIELDS[i]));
    const daysOfWeek = [...new Set(dow.map((d) => d % 7))].sort((a, b) => a - b);
    return {
        kind: "cron",
        minutes,
        hours,
        daysOfMonth,
        months,
        daysOfWeek,
        // Vixie cron (entry.c, load_entry): a day field that starts with `*` (`*`, `*/2`) sets DOM_STAR /
        // DOW_STAR, and then both day fields must match; only two restricted fields match on either.
        domAny: parts[2].startsWith("*"),
        dowAny: parts[4].startsWith("*"),
    };
}

/** Whether a cron schedule fires in the minute of `t` (UTC), by Vixie cron's rules. */
export function matches(s: CronSchedule, t: Date): boolean {
    if (!s.minutes.includes(t.getUTCMinutes()) || !s.hours.includes(t.getUTCHours())) return false;
    if (!s.months.includes(t.getUTCMonth() + 1)) return false;
    const dom = s.daysOfMonth.includes(t.getUTCDate());
    const dow = s.daysOfWeek.includes(t.getUTCDay());
    // (A plain `*` lists every day, so "both" needs no special case for it.)
    return s.domAny || s.dowAny ? dom && dow : dom || dow;
}

/**
 * The longest gap between two consecutive runs within a year from `from`, in seconds: "twice the
 * schedule" for the staleness warning. A schedule that fires less than twice a year counts a year.
 */
export function longestGapSeconds(s: Schedule, from = new Date()): number {
    if (s.kind === "every") return s.seconds;
    const start = Math.floor(from.getTime() / 60_000) * 60_000;
    const year = 366 * 24 * 60;
    let last: number | undefined;
    let longest = 0;
    for (let i = 0; i <= year; i++) {
        const t = start + i * 60_000;
        if (!matches(s, new Date(t))) continue;
        if (last !== undefined) longest = Math.max(longest, (t - last) / 1000);
        last = t;
    }
    return longest > 0 ? longest : year * 60;
}

/**
 * The agent's environment for a schedule: interval seconds, or one space-separated list per cron field
 * (the agent matches `date -u` against them), with the day rule spelled out. Empty: no schedule.
 */
export function agentEnvironment(s: Schedule | undefined): Record<string, string> {
    if (!s) return { BACKUP_MODE: "off" };
    if (s.kind === "every") return { BACKUP_MODE: "every", BACKUP_EVERY_SECONDS: String(s.seconds) };
    return {
        BACKUP_MODE: "cron",
        BACKUP_MINUTES: s.minutes.join(" "),
        BACKUP_HOURS: s.hours.join(" "),
        BACKUP_DAYS: s.daysOfMonth.join(" "),
        BACKUP_MONTHS: s.months.join(" "),
        BACKUP_WEEKDAYS: s.daysOfWeek.join(" "),
        // "either": a restricted day-of-month and day-of-week match when either does (Vixie cron).
        BACKUP_DAY_RULE: !s.domAny && !s.dowAny ? "either" : "both",
    };
}
