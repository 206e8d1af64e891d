// What a change of the Postgres config does to the running database (issue 21), known before anything
// changes: the preview reads the running container read-only and says which shape each change takes; the
// `up` refuses an image of another major version than the data directory's before the container is touched,
// and applies `postgresSettings` with ALTER SYSTEM, reloading or restarting gracefully as the setting needs.
// Every read goes through the docker CLI against the stack's engine (DOCKER_HOST), so it works over SSH.

import { memoryChange } from "./common";

/** `postgresSettings` names: PostgreSQL's GUC names, optionally with an extension's prefix (`auto_explain.x`). */
export const SETTING_NAME = /^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?$/;

/** Where the image keeps PGDATA in the mounted directory (postgres.ts sets PGDATA to it). */
export const PGDATA_SUBDIR = "pgdata";

/** Seconds the provider (and a settings restart) gives PostgreSQL to stop: a fast shutdown with its checkpoint. */
export const POSTGRES_STOP_GRACE_SECONDS = 60;

/**
 * The downtime of a graceful stop and start, as the preview announces it. PostgreSQL stops on the image's
 * STOPSIGNAL SIGINT (a fast shutdown: open transactions roll back, one checkpoint) and starts without
 * recovery; a few seconds on odin, bounded by the stop grace.
 */
export const RESTART_DOWNTIME = `about 5 s of downtime, at most ${POSTGRES_STOP_GRACE_SECONDS} s for the stop`;

/** The values of `postgresSettings` as ALTER SYSTEM takes them: text, whatever JSON type they were written in. */
export type PostgresSettings = Record<string, string>;

/**
 * Reads the running container, read-only and never failing (what it cannot read, it says): the container
 * (running, image ID, memory limit in bytes), the configured image (ID and its PG_MAJOR, when the engine has
 * it), the data directory's PG_VERSION (through the existing container, `docker exec` or, stopped,
 * `docker cp`: a preview creates no container), and the server's view of the settings that
 * `postgresSettings` names or that ALTER SYSTEM holds (one JSON line). One line each.
 */
export const READ_POSTGRES = [
    "set -u",
    'info=$(docker container inspect --format "{{.State.Running}} {{.Image}} {{.HostConfig.Memory}}" "$PG_CONTAINER" 2>/dev/null) || info=absent',
    'echo "container $info"',
    'image=$(docker image inspect --format "{{.Id}}" "$PG_IMAGE" 2>/dev/null) || image=""',
    'major=""',
    '[ -z "$image" ] || major=$(docker image inspect --format "{{range .Config.Env}}{{println .}}{{end}}" "$image" | sed -n "s/^PG_MAJOR=//p")',
    'echo "image ${image:-absent} ${major:-unknown}"',
    'set -- $info; data=""',
    `if [ "$1" = true ]; then data=$(docker exec "$PG_CONTAINER" cat "/var/lib/postgresql/data/${PGDATA_SUBDIR}/PG_VERSION" 2>/dev/null)`,
    `elif [ "$1" = false ]; then data=$(docker cp "$PG_CONTAINER:/var/lib/postgresql/data/${PGDATA_SUBDIR}/PG_VERSION" - 2>/dev/null | tar -xO 2>/dev/null); fi`,
    'echo "data ${data:-unknown}"',
    'if [ "$1" = true ]; then',
    '  s=$(printf "%s\\n" "$SETTINGS_SQL" | docker exec -i "$PG_CONTAINER" psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$PG_USER" -d "$PG_DB" 2>&1 | tr "\\n" " ")',
    '  echo "settings $s"',
    "fi",
].join("\n");

/** What READ_POSTGRES found; undefined fields were not read. */
export interface PostgresReadout {
    container?: { running: boolean; imageId: string; memoryBytes: number };
    image?: { id?: string; major?: string };
    dataMajor?: string;
    /** The server's view of each named setting; `error` when psql failed. */
    settings?: { name: string; context: string | null; file: string | null; current: string | null }[];
    settingsError?: string;
}

/** The SQL READ_POSTGRES runs for the settings: every name of `names` and every name ALTER SYSTEM holds. */
export function readSettingsSql(names: string[]): string {
    for (const n of names) if (!SETTING_NAME.test(n)) throw new Error(`setting name ${JSON.stringify(n)}`);
    const wanted = names.length ? `SELECT unnest(ARRAY[${names.map((n) => `'${n}'`).join(", ")}]::text[])` : "";
    return [
        "WITH f AS (SELECT DISTINCT ON (name) name, setting FROM pg_file_settings",
        "  WHERE sourcefile LIKE '%/postgresql.auto.conf' ORDER BY name, seqno DESC),",
        `k(name) AS (${wanted ? `${wanted} UNION ` : ""}SELECT name FROM f)`,
        "SELECT coalesce(json_agg(json_build_object('name', k.name, 'context', s.context, 'file', f.setting,",
        "  'current', CASE WHEN s.name IS NULL THEN NULL ELSE current_setting(k.name) END) ORDER BY k.name), '[]')",
        "FROM k LEFT JOIN pg_settings s ON s.name = k.name LEFT JOIN f ON f.name = k.name;",
    ].join("\n");
}

/** READ_POSTGRES's lines, parsed; anything else (the unit tier's mocks answer "none") reads as nothing. */
export function parseReadout(stdout: string): PostgresReadout {
    const r: PostgresReadout = {};
    for (const line of stdout.split("\n")) {
        const [word, ...rest] = line.trim().split(" ");
        if (word === "container" && rest[0] !== "absent" && rest.length >= 3) {
            r.container = { running: rest[0] === "true", imageId: rest[1], memoryBytes: Number(rest[2]) };
        } else if (word === "image") {
            r.image = {
                id: rest[0] && rest[0] !== "absent" ? rest[0] : undefined,
                major: rest[1] && rest[1] !== "unknown" ? rest[1] : undefined,
            };
        } else if (word === "data" && /^\d+$/.test(rest[0] ?? "")) {
            r.dataMajor = rest[0];
        } else if (word === "settings") {
            const text = rest.join(" ").trim();
            try {
                r.settings = JSON.parse(text);
            } catch {
                r.settingsError = text;
            }
        }
    }
    return r;
}

/** The major version an image's tag names (`postgres:17-alpine`, `postgres:16.4`), when the image is not local. */
export function majorOfTag(image: string): string | undefined {
    const tag = /:([^/:@]+)(?:@|$)/.exec(image)?.[1];
    return tag ? /^(\d+)(?:[.-]|$)/.exec(tag)?.[1] : undefined;
}

export interface PostgresDesired {
    containerName: string;
    /** The configured image reference. */
    image: string;
    /** 0 or undefined: none. */
    memoryLimitMb?: number;
    settings: PostgresSettings;
    /** What to run to move the data to another major (named in the refusal). */
    upgradeHint: string;
}

export interface PostgresPlan {
    /** Lines for the preview (info). */
    info: string[];
    /** Lines for the preview (warn): a replacement or a restart, a refusal to come. */
    warn: string[];
    /** Settings the server does not know: the program refuses them (an error naming the key). */
    unknownSettings: string[];
}

/** The refusal of an image of another major version, in the words the preview and the `up` both use. */
export function majorMismatch(dataMajor: string, imageMajor: string, image: string, hint: string): string {
    return `the data directory is PostgreSQL ${dataMajor}, the image ${image} is PostgreSQL ${imageMajor}: PostgreSQL ${imageMajor} cannot start on it, so the up refuses before touching the running container. Upgrade the data first (${hint}), or set postgresImage back to a PostgreSQL ${dataMajor} image.`;
}

/**
 * Which shape each change takes, from what READ_POSTGRES read and the config: in place, a reload, a
 * graceful restart or a replacement (components/common.ts, statefulContainerOptions, decides the container's
 * shapes; this only says them). What it cannot tell (nothing running, an image not pulled yet) it says so.
 */
export function planPostgres(r: PostgresReadout, d: PostgresDesired): PostgresPlan {
    const plan: PostgresPlan = { info: [], warn: [], unknownSettings: [] };
    const who = `postgres (${d.containerName})`;
    const replaced = (why: string) =>
        `${who}: ${why}: the container is replaced, the database stops gracefully first (${RESTART_DOWNTIME})`;
    if (!r.container) {
        plan.info.push(`${who}: no container yet: created`);
    } else {
        if (r.image?.id && r.image.id !== r.container.imageId)
            plan.warn.push(replaced(`the image changes to ${d.image}`));
        else if (!r.image?.id)
            plan.info.push(
                `${who}: ${d.image} is not on the engine yet: the up pulls it; if it is another image than the running one, the container is replaced (${RESTART_DOWNTIME})`,
            );
        const memory = memoryChange(r.container.memoryBytes, d.memoryLimitMb);
        if (memory?.inPlace) plan.info.push(`${who}: ${memory.what}: updated in place, no restart`);
        else if (memory) plan.warn.push(replaced(memory.what));
    }
    const imageMajor = r.image?.major ?? majorOfTag(d.image);
    if (r.dataMajor && imageMajor && r.dataMajor !== imageMajor) {
        plan.warn.push(`${who}: ${majorMismatch(r.dataMajor, imageMajor, d.image, d.upgradeHint)}`);
    }

    if (r.settingsError) {
        plan.info.push(`${who}: the settings could not be read (${r.settingsError}); the up applies postgresSettings`);
    } else if (r.settings) {
        const byName = new Map(r.settings.map((s) => [s.name, s]));
        for (const [name, value] of Object.entries(d.settings)) {
            const s = byName.get(name);
            if (!s?.context) {
                plan.unknownSettings.push(name);
                continue;
            }
            if (s.context === "internal") {
                plan.unknownSettings.push(name);
                continue;
            }
            if (s.file === value) continue;
            const from = s.file ?? `${s.current ?? "?"} (its default)`;
            if (s.context === "postmaster" && s.current !== value)
                plan.warn.push(
                    `${who}: setting ${name} ${from} -> ${value} needs a restart (context postmaster): applied with ALTER SYSTEM, then the database restarts gracefully (${RESTART_DOWNTIME})`,
                );
            else
                plan.info.push(
                    `${who}: setting ${name} ${from} -> ${value}: applied with ALTER SYSTEM and a reload, no restart`,
                );
        }
        for (const s of r.settings) {
            if (s.file === null || s.name in d.settings) continue;
            plan.info.push(
                `${who}: setting ${s.name} = ${s.file} is held by ALTER SYSTEM but not in postgresSettings: ${s.context === "postmaster" ? "left as it is (a reset needs a restart; remove it with ALTER SYSTEM RESET by hand)" : "left as it is"}, unless an earlier up set it (then it is reset)`,
            );
        }
    } else if (r.container && Object.keys(d.settings).length > 0) {
        plan.info.push(`${who}: not running: postgresSettings are checked and applied by the up`);
    }
    return plan;
}

/** The refusal of settings the server does not know (or cannot change), naming each key. */
export function unknownSettingsError(names: string): string {
    return `\`marvel-rivals-stats:postgresSettings\` names ${names}, which this PostgreSQL server does not know or does not let ALTER SYSTEM change (\`SELECT name FROM pg_settings WHERE context <> 'internal'\` lists those it does): fix the name, or remove it with \`pulumi config rm --path postgresSettings.<name>\`; nothing was changed.`;
}

/**
 * The `up`'s check of the major versions, before the container is created or replaced: the image's
 * PG_MAJOR (the official images' ENV), else its `postgres --version`, against the data directory's
 * PG_VERSION (none yet: a first start, nothing to compare). Reads only; exits 1 with the refusal.
 */
export const CHECK_MAJOR = [
    "set -eu",
    'want=$(docker image inspect --format "{{range .Config.Env}}{{println .}}{{end}}" "$PG_IMAGE" | sed -n "s/^PG_MAJOR=//p")',
    '[ -n "$want" ] || want=$(docker run --rm --network none --entrypoint postgres "$PG_IMAGE" --version | sed -n "s/^[^0-9]*\\([0-9][0-9]*\\).*/\\1/p")',
    `have=$(docker run --rm --network none --entrypoint cat -v "$DATA_DIR:/d:ro" "$PG_IMAGE" "/d/${PGDATA_SUBDIR}/PG_VERSION" 2>/dev/null || true)`,
    'if [ -n "$have" ] && [ "$have" != "$want" ]; then',
    '  printf "%s\\n" "$REFUSAL" | sed -e "s/{DATA}/$have/g" -e "s/{IMAGE}/$want/g" >&2',
    "  exit 1",
    "fi",
    'echo "data directory: PostgreSQL ${have:-(none yet)}; image: PostgreSQL $want"',
].join("\n");

/**
 * Applies `postgresSettings` (issue 21): refuses names the server does not know before anything changes;
 * ALTER SYSTEM SET for each, RESET for those an earlier run set and the map no longer has (its last line
 * `managed: a,b` is kept in the state and comes back as PULUMI_COMMAND_STDOUT: pulumi-command v1.2.1,
 * provider/pkg/provider/local/commandController.go, Update); then pg_reload_conf(), and a graceful restart
 * (`docker restart`, the image's SIGINT: a fast shutdown) only when a changed setting is a postmaster one
 * whose running value differs; it waits for the container to be healthy again.
 */
export const APPLY_SETTINGS = [
    "set -eu",
    'q() { docker exec -i "$PG_CONTAINER" psql -X -A -t -q -v ON_ERROR_STOP=1 -U "$PG_USER" -d "$PG_DB" "$@"; }',
    'prev=$(printf "%s\\n" "${PULUMI_COMMAND_STDOUT:-}" | sed -n "s/^managed: //p" | tail -n 1)',
    'unknown=$(printf "%s\\n" "$UNKNOWN_SQL" | q)',
    'if [ -n "$unknown" ]; then printf "%s\\n" "$UNKNOWN_MESSAGE" | sed "s/{NAMES}/$unknown/" >&2; exit 1; fi',
    'restart=$(printf "%s\\n" "$RESTART_SQL" | q -v prev="$prev")',
    'printf "%s\\n" "$RESET_SQL" | q -v prev="$prev" | q',
    'printf "%s\\n" "$SET_SQL" | q',
    'if [ -n "$restart" ]; then',
    '  echo "restarting gracefully for $restart (postmaster settings)"',
    '  docker restart -t "$STOP_GRACE" "$PG_CONTAINER" >/dev/null',
    "  i=0",
    '  until [ "$(docker inspect --format "{{.State.Health.Status}}" "$PG_CONTAINER")" = healthy ]; do',
    '    i=$((i + 1)); [ "$i" -le 180 ] || { echo "$PG_CONTAINER did not turn healthy within 180 s of its restart" >&2; exit 1; }',
    "    sleep 1",
    "  done",
    "else",
    '  echo "reloaded, no restart"',
    "fi",
    'echo "managed: $NAMES"',
].join("\n");

const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The SQL APPLY_SETTINGS runs, for a map of settings (names checked against SETTING_NAME). */
export function settingsSql(settings: PostgresSettings) {
    const entries = Object.entries(settings);
    for (const [n] of entries) if (!SETTING_NAME.test(n)) throw new Error(`setting name ${JSON.stringify(n)}`);
    const desired = entries.length
        ? `(VALUES ${entries.map(([n, v]) => `(${literal(n)}, ${literal(v)})`).join(", ")}) AS d(name, value)`
        : "(SELECT NULL::text AS name, NULL::text AS value WHERE false) AS d";
    // `prev` comes in as a psql variable (-v prev=...), a comma list of names this step set earlier.
    const prev = "(SELECT unnest(string_to_array(:'prev', ',')) AS name) AS p";
    const file =
        "(SELECT DISTINCT ON (name) name, setting FROM pg_file_settings WHERE sourcefile LIKE '%/postgresql.auto.conf' ORDER BY name, seqno DESC) AS f";
    return {
        // Settings the server does not have, or that no one may change (context internal).
        UNKNOWN_SQL: `SELECT string_agg(d.name, ', ' ORDER BY d.name) FROM ${desired} LEFT JOIN pg_settings s ON s.name = d.name WHERE s.name IS NULL OR s.context = 'internal';`,
        // Postmaster settings whose change needs a restart: a new value that is not the running one, or one
        // an earlier run set and the map drops.
        RESTART_SQL: [
            `SELECT string_agg(name, ', ' ORDER BY name) FROM (`,
            `  SELECT d.name FROM ${desired} JOIN pg_settings s ON s.name = d.name LEFT JOIN ${file} ON f.name = d.name`,
            `  WHERE s.context = 'postmaster' AND f.setting IS DISTINCT FROM d.value AND current_setting(d.name) IS DISTINCT FROM d.value`,
            `  UNION SELECT p.name FROM ${prev} JOIN pg_settings s ON s.name = p.name JOIN ${file} ON f.name = p.name`,
            `  WHERE s.context = 'postmaster' AND p.name NOT IN (SELECT name FROM ${desired})`,
            `) AS r;`,
        ].join("\n"),
        // The statements resetting what an earlier run set and the map no longer has (run by a second psql).
        RESET_SQL: `SELECT format('ALTER SYSTEM RESET %I;', p.name) FROM ${prev} WHERE p.name <> '' AND p.name NOT IN (SELECT name FROM ${desired}) AND EXISTS (SELECT 1 FROM pg_settings s WHERE s.name = p.name);`,
        // ALTER SYSTEM cannot run in a transaction block: one statement per line, psql's autocommit.
        SET_SQL: [
            ...entries.map(([n, v]) => `ALTER SYSTEM SET ${n} = ${literal(v)};`),
            "SELECT pg_reload_conf();",
        ].join("\n"),
        NAMES: entries.map(([n]) => n).join(","),
    };
}
