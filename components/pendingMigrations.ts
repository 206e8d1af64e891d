import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { readMigrations, type MigrationFile } from "../app/src/migrate/files";
import { MigrateError } from "../app/src/migrate/errors";
import { DEFAULT_HISTORY_TABLE, LEGACY_COLUMNS, LEGACY_HISTORY_TABLE } from "../app/src/migrate/historyName";
import { dockerEnvironment } from "./common";

export interface PendingMigrationsArgs {
    /** The stack's Postgres container, read only if it exists and runs. */
    containerName: string;
    dbUser: string;
    dbName: string;
    /** Docker endpoint for the `docker` CLI: the stack's provider's. */
    dockerHost: string;
    /** Directory of `NNN_name.sql` files on this machine: what the migration step will apply. */
    migrationsDir: string;
    /** Whether the migration step takes a pg_dump before applying anything. */
    backups: boolean;
}

export interface PendingMigrations {
    /**
     * What was read: the history, or why not (no container yet, stopped, the engine did not answer, the
     * database did not answer).
     */
    database: "read" | "not created yet" | "stopped" | "unreachable" | "unreadable";
    /** Why the history could not be read (the engine's or psql's own words), else null. */
    reason: string | null;
    /** A migration file that the runner refuses (a bad name, two files with one number), as one line; else null. */
    filesError: string | null;
    /** Files the next `up` applies, with their first line. */
    pending: { file: string; firstLine: string }[];
    /** Applied files whose content changed since (the `up` refuses them). */
    drifted: string[];
    /** Applied files that are gone from migrations/ (the `up` refuses that too). */
    missing: string[];
    /** Files recorded as failed half-way (the `up` refuses until `migrate resolve`). */
    failed: string[];
    /** Whether a pg_dump is taken before they are applied. */
    backupFirst: boolean;
    /** The report as lines, as the preview prints them. */
    summary: string[];
}

/** How long the whole read may take: the docker CLI's own SSH connect timeout is 30 s per call. */
export const HISTORY_READ_SECONDS = 25;

/**
 * Reads the database's migration history read-only, through `psql` inside the stack's own Postgres
 * container (`docker exec` over the stack's engine, so it works on odin where no port is published), and
 * only when that container exists and runs. Prints one word or a JSON array on stdout, and never fails: the
 * report says what it could not read instead of stopping a preview.
 *
 * - `none`: the engine answered that the container does not exist (its own "No such container"); any
 *   other failure of `docker container inspect` is `unreachable <the CLI's error>`: an engine that cannot
 *   be reached is not a first deploy.
 * - psql's stderr is kept apart from its stdout: a server NOTICE or WARNING (a collation version mismatch,
 *   say) goes to stderr and never into the JSON; stderr is read only when psql fails (`unreadable <it>`).
 * - Every docker call is bounded by what is left of $LIMIT seconds, with a watchdog (POSIX sh: macOS has no
 *   `timeout`): TERM at the limit, KILL 3 s later if the CLI is still there, so the read ends within
 *   $LIMIT + 3 s (28 s) whatever the CLI does with TERM. The docker CLI adds `-o ConnectTimeout=30` to its ssh command (docker/cli, 28f75608,
 *   cli/connhelper/connhelper.go, addSSHTimeout), more than our limit, and on Linux kills ssh with
 *   itself (cli/connhelper/commandconn/pdeathsig_linux.go); the outputs go to files, so an ssh child that
 *   outlives a killed docker on macOS holds no pipe of this script open.
 */
export const READ_HISTORY = [
    "set -u",
    'start=$(date +%s); tmp=$(mktemp -d 2>/dev/null || mktemp -d -t mrs-history) || { echo "unreadable cannot create a temporary directory"; exit 0; }',
    "trap 'rm -rf \"$tmp\"' EXIT",
    // bounded CMD...: CMD with stdout in $tmp/out and stderr in $tmp/err; 124 when the time is up.
    "bounded() {",
    "    left=$((start + LIMIT - $(date +%s)))",
    '    [ "$left" -gt 0 ] || return 124',
    '    rm -f "$tmp/late"',
    '    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null &',
    "    pid=$!",
    // At the limit: TERM, then KILL 3 s later if the CLI is still there (one that handles or ignores TERM
    // would otherwise keep `wait` and the preview waiting for ever). A KILLed docker's ssh gets its
    // parent-death signal on Linux all the same (pdeathsig: sent whatever killed the parent).
    '    ( trap \'kill "$s" 2>/dev/null; exit 0\' TERM; sleep "$left" & s=$!; wait "$s" && { : >"$tmp/late"; kill "$pid"; sleep 3 & s=$!; wait "$s" && kill -9 "$pid"; } ) >/dev/null 2>&1 </dev/null &',
    "    dog=$!",
    '    wait "$pid"; rc=$?',
    '    kill "$dog" 2>/dev/null; wait "$dog" 2>/dev/null',
    '    [ -e "$tmp/late" ] && return 124',
    '    return "$rc"',
    "}",
    // The CLI's own words, on one line.
    'why() { tr "\\r\\n" "  " <"$tmp/err" | sed "s/  */ /g; s/^ //; s/ $//" | cut -c1-500; }',
    'late() { echo "$1 no answer within $LIMIT s from $2"; exit 0; }',
    'bounded docker container inspect --format "{{.State.Running}}" "$PG_CONTAINER"; rc=$?',
    'if [ "$rc" = 124 ]; then late unreachable "the Docker engine at $DOCKER_HOST"; fi',
    'if [ "$rc" != 0 ]; then',
    '    if grep -q "No such" "$tmp/err"; then echo none; else echo "unreachable $(why)"; fi',
    "    exit 0",
    "fi",
    '[ "$(cat "$tmp/out")" = true ] || { echo stopped; exit 0; }',
    'q() { bounded docker exec "$PG_CONTAINER" psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$PG_USER" -d "$PG_DB" -c "$1"; rc=$?; [ "$rc" = 124 ] && late unreadable "psql in $PG_CONTAINER"; [ "$rc" = 0 ] || { echo "unreadable $(why)"; exit 0; }; }',
    // The runner's history (migration_runner.history), or the table of earlier versions not moved yet.
    // (The names are the runner's constants, checked lower-case identifiers: safe inside the SQL text.)
    `q "SELECT CASE WHEN to_regclass('${DEFAULT_HISTORY_TABLE}') IS NOT NULL THEN '${DEFAULT_HISTORY_TABLE}' WHEN (SELECT string_agg(attname, ',' ORDER BY attname) FROM pg_attribute WHERE attrelid = to_regclass('${LEGACY_HISTORY_TABLE}') AND attnum > 0 AND NOT attisdropped) = '${LEGACY_COLUMNS.join(",")}' THEN '${LEGACY_HISTORY_TABLE}' ELSE '' END"`,
    'where=$(cat "$tmp/out")',
    "[ -n \"$where\" ] || { echo '[]'; exit 0; }",
    "q \"SELECT coalesce(json_agg(to_jsonb(h)), '[]') FROM $where h\"",
    'cat "$tmp/out"',
].join("\n");

/** The inputs of the read (command.local.run): the script and its environment. */
export function readHistoryInputs(args: PendingMigrationsArgs, limitSeconds = HISTORY_READ_SECONDS) {
    return {
        command: READ_HISTORY,
        environment: {
            ...dockerEnvironment(args.dockerHost),
            PG_CONTAINER: args.containerName,
            PG_USER: args.dbUser,
            PG_DB: args.dbName,
            LIMIT: String(limitSeconds),
        },
    };
}

/** The report of `stdout` (READ_HISTORY's) against the files in `args.migrationsDir`. */
export function reportPending(stdout: string, args: PendingMigrationsArgs): PendingMigrations {
    const out = stdout.trim();
    const firstLine = (sql: string) =>
        sql
            .split(/\r?\n/)
            .find((l) => l.trim() !== "")
            ?.trim() ?? "";
    const report: PendingMigrations = {
        database: "read",
        reason: null,
        filesError: null,
        pending: [],
        drifted: [],
        missing: [],
        failed: [],
        backupFirst: false,
        summary: [],
    };
    const s = report.summary;
    let files: MigrationFile[];
    try {
        files = readMigrations(args.migrationsDir);
    } catch (e) {
        // A file the runner refuses (005-add-region.sql): its one line, which names the fix, not a stack.
        if (!(e instanceof MigrateError)) throw e;
        report.filesError = e.message;
        s.push(`migrations: ${e.message}`);
        return report;
    }
    let history: { name: string; checksum: string; status?: string }[] = [];
    const word = /^(\S+)\s*([\s\S]*)$/.exec(out);
    if (out === "none") report.database = "not created yet";
    else if (out === "stopped") report.database = "stopped";
    else if (word && (word[1] === "unreachable" || word[1] === "unreadable")) {
        report.database = word[1];
        report.reason = word[2]!.trim() || "no reason given";
    } else {
        try {
            history = JSON.parse(out) as typeof history;
            if (!Array.isArray(history)) throw new Error("not an array");
        } catch {
            history = [];
            report.database = "unreadable";
            report.reason = `the history is not JSON: ${out.slice(0, 200)}`;
        }
    }

    const where = `${args.containerName} (database ${args.dbName})`;
    if (report.database === "unreachable") {
        s.push(
            `migrations: could not read the history: ${report.reason}; what the up applies is not known: check that the Docker engine at ${args.dockerHost} answers (docker -H ${args.dockerHost} info)`,
        );
        return report;
    }
    if (report.database === "unreadable") {
        s.push(
            `migrations: could not read the history: ${report.reason}; what the up applies to ${where} is not known`,
        );
        return report;
    }

    const applied = new Map(history.map((h) => [h.name, h]));
    for (const f of files) {
        const h = applied.get(f.name);
        if (!h) report.pending.push({ file: `${f.name}.sql`, firstLine: firstLine(f.sql) });
        else if (h.status === "failed") report.failed.push(`${f.name}.sql`);
        else if (h.checksum !== f.checksum) report.drifted.push(`${f.name}.sql`);
    }
    const names = new Set(files.map((f) => f.name));
    report.missing = history.filter((h) => !names.has(h.name)).map((h) => `${h.name}.sql`);
    report.backupFirst = args.backups && report.pending.length > 0 && report.database === "read";

    if (report.database === "not created yet") {
        s.push(`migrations: ${where} does not exist yet: a first deploy, every file is pending (${files.length})`);
    } else if (report.database === "stopped") {
        s.push(
            `migrations: ${where} is stopped: its history was not read; the up starts it, then applies what is pending`,
        );
        report.pending = [];
        return report;
    } else {
        s.push(
            report.pending.length === 0
                ? `migrations: nothing pending on ${where}`
                : `migrations: ${report.pending.length} pending on ${where}${report.backupFirst ? ", a pg_dump into backups/ is taken first" : ""}`,
        );
    }
    for (const p of report.pending) s.push(`  pending  ${p.file}  ${p.firstLine}`);
    for (const d of report.drifted) s.push(`  DRIFTED  ${d}: changed after it was applied; the up will refuse it`);
    for (const m of report.missing) s.push(`  MISSING  ${m}: applied, but its file is gone; the up will refuse it`);
    for (const f of report.failed) {
        s.push(`  FAILED   ${f}: failed half-way; the up refuses until \`migrate resolve\``);
    }
    return report;
}

/**
 * What the next `up` will do to the database, known before anything changes: during `preview` and at the
 * start of `up`. An invoke (command.local.run), so it runs in a preview too; it only reads. A history that
 * could not be read is a warning (the preview goes on: the provider's own errors say more about an engine
 * it cannot reach); a migration file the runner would refuse is logged as an error of one line (the
 * runner's own message, which names the rename), never a stack trace, and the `up`'s migration step refuses
 * the same file with the same line.
 */
export function pendingMigrations(args: PendingMigrationsArgs): pulumi.Output<PendingMigrations> {
    const read = command.local.runOutput({
        ...readHistoryInputs(args),
        // The history JSON is for the report below, not for the preview's log (pulumi-command logs a run's
        // stdout and stderr unless told not to: v1.2.1, local/logging.go, ShouldLogStdout).
        logging: command.types.enums.local.Logging.None,
    });
    return read.stdout.apply((stdout) => {
        const report = reportPending(stdout, args);
        const log =
            report.filesError !== null
                ? pulumi.log.error
                : report.database === "unreachable" || report.database === "unreadable"
                  ? pulumi.log.warn
                  : pulumi.log.info;
        for (const line of report.summary) void log(line);
        return report;
    });
}
