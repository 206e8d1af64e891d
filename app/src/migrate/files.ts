import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { MigrateError } from "./errors";
import { stripComments } from "./sql";
import { DEFAULT_HISTORY_TABLE } from "./historyName";

/** A migration on disk: `NNN_name.sql`, with an optional `NNN_name.down.sql` beside it. */
export interface MigrationFile {
    /** File name without `.sql`, e.g. `001_initial_schema`; the key in the runner's history table. */
    name: string;
    number: number;
    path: string;
    sql: string;
    /** sha256 (hex) of the up file's bytes, stored when applied, compared on every run (drift). */
    checksum: string;
    /** First line is `-- migrate:no-transaction`. */
    noTransaction: boolean;
    down: { path: string; sql: string; noTransaction: boolean } | null;
}

const UP_FILE = /^(\d{3,})_([a-z0-9][a-z0-9_]*)\.sql$/;
const DOWN_FILE = /^(\d{3,})_([a-z0-9][a-z0-9_]*)\.down\.sql$/;
const DIRECTIVE = /^--\s*migrate:(\S+)\s*$/;
export const NO_TRANSACTION = "no-transaction";
/**
 * Names that look meant as migrations but would not be applied: any case of `.sql` (`.SQL`), a number
 * first (`004-add.sql`, `4_add.sql`, `004_add.sql.bak`, `004_add.txt`). Refused by name: skipping them
 * would report "nothing pending" for a file its author thinks will run.
 */
const NEAR_MISS = /\.sql$/i;
const NUMBERED = /^\d+[_\-. ]/;

/**
 * The migrations directory: env `MIGRATIONS_DIR` if set, else the nearest `migrations/` walking up from
 * this module (app/src/migrate in the repo, /app/dist/migrate in the image).
 */
export function defaultMigrationsDir(): string {
    const fromEnv = process.env.MIGRATIONS_DIR;
    if (fromEnv !== undefined && fromEnv !== "") return resolve(fromEnv);
    let dir = __dirname;
    for (;;) {
        const candidate = join(dir, "migrations");
        if (existsSync(candidate) && statSync(candidate).isDirectory()) return candidate;
        const parent = dirname(dir);
        if (parent === dir) {
            throw new MigrateError(
                `no migrations/ directory found above ${__dirname}; set MIGRATIONS_DIR to the directory holding NNN_name.sql files`,
            );
        }
        dir = parent;
    }
}

function listSqlFiles(dir: string): string[] {
    try {
        const all = readdirSync(dir, { withFileTypes: true });
        for (const f of all) {
            if (f.name.endsWith(".sql") && !f.isFile() && !f.isSymbolicLink()) {
                throw new MigrateError(
                    `${f.name} in ${dir} is not a file; a migration is a NNN_name.sql file: move it out of the migrations directory`,
                    { file: f.name },
                );
            }
            if (f.name.endsWith(".sql")) continue;
            if (NEAR_MISS.test(f.name) || NUMBERED.test(f.name)) throw badName(dir, f.name);
        }
        return all.filter((f) => f.name.endsWith(".sql")).map((f) => f.name);
    } catch (err) {
        if (err instanceof MigrateError) throw err;
        throw new MigrateError(
            `cannot read the migrations directory ${dir}: ${(err as Error).message}; pass the right directory (MIGRATIONS_DIR)`,
            { cause: err },
        );
    }
}

function byNumberThenName(a: { number: number; name: string }, b: { number: number; name: string }): number {
    return a.number - b.number || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * Apply order of two migration names (`NNN_name`): by number, then name. Text order is wrong past the
 * padding: "1000_x" < "999_y" as text.
 */
export function compareMigrationNames(a: string, b: string): number {
    const num = (n: string) => Number(/^\d+/.exec(n)?.[0] ?? Number.MAX_SAFE_INTEGER);
    return byNumberThenName({ number: num(a), name: a }, { number: num(b), name: b });
}

/**
 * The name a near miss was meant to have (`005-add-region.sql` -> `005_add_region.sql`, `3_AddRegion.Sql`
 * -> `003_add_region.sql`), or null when there is no single answer (`004_add.sql.bak`, `add.sql`).
 */
export function renameOf(f: string): string | null {
    const m = /^(\d+)[_\-. ]+(.*?)(\.down)?\.sql$/i.exec(f);
    if (!m) return null;
    const rest = m[2]!
        .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "_")
        .replace(/^_+|_+$/g, "");
    if (rest === "") return null;
    const name = `${m[1]!.padStart(3, "0")}_${rest}${m[3] ? ".down" : ""}.sql`;
    return name === f ? null : name;
}

function badName(dir: string, f: string): MigrateError {
    const to = renameOf(f);
    return new MigrateError(
        `${f} in ${dir} is not named NNN_name.sql or NNN_name.down.sql (three or more digits, _, then lower-case letters, digits and _, ending in lower-case .sql), so it would never run; ${to ? `rename it to ${to}` : "rename it"}, or move it out of the migrations directory`,
        { file: f },
    );
}

/**
 * Names of the up migrations in order, without reading their contents (cheap: for readiness checks).
 * Refuses a badly named .sql file as readMigrations does: skipping it would report "nothing pending"
 * for a directory the runner will not apply.
 */
export function listMigrationNames(dir: string): string[] {
    const ups: { number: number; name: string }[] = [];
    for (const f of listSqlFiles(dir)) {
        if (DOWN_FILE.test(f)) continue;
        const m = UP_FILE.exec(f);
        if (!m) throw badName(dir, f);
        ups.push({ number: Number(m[1]), name: f.slice(0, -".sql".length) });
    }
    return ups.sort(byNumberThenName).map((m) => m.name);
}

function directiveOf(file: string, sql: string): boolean {
    const firstLine = sql.split(/\r?\n/, 1)[0] ?? "";
    const m = DIRECTIVE.exec(firstLine.trim());
    if (!m) return false;
    if (m[1] === NO_TRANSACTION) return true;
    throw new MigrateError(
        `${file}: unknown directive "-- migrate:${m[1]}" on the first line; the only directive is "-- migrate:${NO_TRANSACTION}"`,
        { file },
    );
}

/** Refuses a file that mentions the runner's history: its schema (unless public) or the table itself. */
function checkNoHistoryWrites(file: string, sql: string, historyTable: string): void {
    const [schema, table] = historyTable.split(".") as [string, string];
    const text = stripComments(sql).toLowerCase().replace(/"/g, "");
    const word = schema === "public" ? table : schema;
    if (new RegExp(`(^|[^\\w$])${word}($|[^\\w$])`).test(text)) {
        throw new MigrateError(
            `${file} mentions ${word}: the runner keeps its history in ${historyTable}, and migrations must not touch it; remove the reference`,
            { file },
        );
    }
}

/**
 * Reads and validates every migration file in `dir`, in apply order. `historyTable` (schema.table): the
 * runner's history, which no file may mention.
 */
export function readMigrations(dir: string, historyTable = DEFAULT_HISTORY_TABLE): MigrationFile[] {
    const names = listSqlFiles(dir);
    const ups: MigrationFile[] = [];
    const downs = new Map<string, string>();
    for (const f of names) {
        const down = DOWN_FILE.exec(f);
        if (down) {
            downs.set(f.slice(0, -".down.sql".length), f);
            continue;
        }
        const up = UP_FILE.exec(f);
        if (!up) throw badName(dir, f);
        const path = join(dir, f);
        const bytes = readFileSync(path);
        const sql = bytes.toString("utf8");
        checkNoHistoryWrites(f, sql, historyTable);
        ups.push({
            name: f.slice(0, -".sql".length),
            number: Number(up[1]),
            path,
            sql,
            checksum: createHash("sha256").update(bytes).digest("hex"),
            noTransaction: directiveOf(f, sql),
            down: null,
        });
    }
    ups.sort(byNumberThenName);
    for (let i = 1; i < ups.length; i++) {
        if (ups[i]!.number === ups[i - 1]!.number) {
            throw new MigrateError(
                `${ups[i - 1]!.name}.sql and ${ups[i]!.name}.sql share the number ${up3(ups[i]!.number)}; renumber the newer one after the last migration`,
                { file: `${ups[i]!.name}.sql` },
            );
        }
    }
    const byName = new Map(ups.map((m) => [m.name, m]));
    for (const [name, f] of downs) {
        const m = byName.get(name);
        if (!m) {
            throw new MigrateError(`${f} has no ${name}.sql beside it; rename it to match its up file or delete it`, {
                file: f,
            });
        }
        const sql = readFileSync(join(dir, f), "utf8");
        checkNoHistoryWrites(f, sql, historyTable);
        m.down = { path: join(dir, f), sql, noTransaction: directiveOf(f, sql) };
    }
    return ups;
}

function up3(n: number): string {
    return String(n).padStart(3, "0");
}

/** Creates the next numbered pair `NNN_name.sql` + `NNN_name.down.sql`; returns both paths. */
export function createMigration(dir: string, name: string): { up: string; down: string } {
    if (!/^[a-z0-9][a-z0-9_]*$/.test(name)) {
        throw new MigrateError(
            `invalid migration name "${name}": use lower-case letters, digits and _, e.g. add_player_region`,
        );
    }
    const existing = readMigrations(dir);
    // Two files of one name would be two migrations that read the same in `status` and in a review.
    const same = existing.find((m) => m.name.replace(/^\d+_/, "") === name);
    if (same) {
        throw new MigrateError(
            `a migration named "${name}" exists already (${same.name}.sql): choose another name, e.g. ${name}_2`,
        );
    }
    const next = (existing.at(-1)?.number ?? 0) + 1;
    const base = `${up3(next)}_${name}`;
    const up = join(dir, `${base}.sql`);
    const down = join(dir, `${base}.down.sql`);
    // `wx`: never overwrite a file, even one created since we listed the directory.
    writeFileSync(
        up,
        `-- ${base}: <what this migration does and why>\n-- Runs in one transaction with its history row. For statements that cannot (CREATE INDEX\n-- CONCURRENTLY), make the FIRST line: -- migrate:${NO_TRANSACTION}\n`,
        { flag: "wx" },
    );
    writeFileSync(down, `-- Reverts ${base}.\n`, { flag: "wx" });
    return { up, down };
}
