// One log line per outage of a dependency, not one per request or per health probe: while PostgreSQL or
// Redis stays unusable, every request that meets it would otherwise log the same error (a flood that hides
// everything else, at the probe's and the clients' rate). The first failure is logged at the outage's
// level with the error; the rest at debug; the first success after it says how long it lasted.
import type { FastifyBaseLogger } from "fastify";

export interface OutageOptions {
    /** The dependency's name in the log lines' `dependency` field. */
    dependency: "database" | "redis";
    level: "error" | "warn";
    /** The debug line for each further failure of the same outage. */
    still: string;
    /** The info line when the dependency answers again. */
    back: string;
}

export class Outage {
    private since: number | undefined;
    private failures = 0;

    constructor(
        private readonly log: FastifyBaseLogger,
        private readonly options: OutageOptions,
    ) {}

    /** A failure: logged with `message` if it starts an outage, at debug level otherwise. */
    failed(err: unknown, message: string): void {
        const { dependency, level, still } = this.options;
        this.failures++;
        if (this.since === undefined) {
            this.since = Date.now();
            this.log[level]({ err, dependency }, message);
        } else {
            this.log.debug({ err, dependency }, still);
        }
    }

    /** A success: ends the outage, if there was one, with one line. Cheap enough for every request. */
    recovered(): void {
        if (this.since === undefined) return;
        this.log.info(
            { dependency: this.options.dependency, downMs: Date.now() - this.since, failures: this.failures },
            this.options.back,
        );
        this.since = undefined;
        this.failures = 0;
    }
}
