// `seed`: inserts the deterministic sample data (src/seed.ts). Reads DATABASE_URL; exit 0 on success,
// 1 with one clear line on any failure. Running it again inserts nothing.
import pg from "pg";
import { ConfigError, loadDatabaseUrl } from "../config";
import { isMissingTable, shortReason } from "../db";
import { seed } from "../seed";

async function main(): Promise<number> {
    let databaseUrl: string;
    try {
        databaseUrl = loadDatabaseUrl();
    } catch (err) {
        if (err instanceof ConfigError) {
            process.stderr.write(`seed: ${err.message}\n`);
            return 1;
        }
        throw err;
    }
    const pool = new pg.Pool({
        connectionString: databaseUrl,
        max: 1,
        connectionTimeoutMillis: 10_000,
        application_name: "marvel-rivals-stats-seed",
    });
    pool.on("error", () => undefined); // a failing idle client surfaces through the next query anyway
    try {
        const report = await seed(pool);
        for (const [table, { total, inserted }] of Object.entries(report)) {
            process.stdout.write(`seed: ${table}: ${inserted} inserted, ${total - inserted} already present\n`);
        }
        return 0;
    } catch (err) {
        const where = new URL(databaseUrl);
        const hint = isMissingTable(err) ? ": the schema is missing, run `migrate up` first" : "";
        process.stderr.write(
            `seed: failed against ${where.hostname}:${where.port || 5432}${where.pathname}: ${shortReason(err)}${hint}\n`,
        );
        return 1;
    } finally {
        await pool.end().catch(() => undefined);
    }
}

main().then((code) => process.exit(code));
