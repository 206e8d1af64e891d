# The backup agent (issue 14): runs in the stack's backup container, from the stack's Postgres image, so
# pg_dump and pg_restore are the server's own version. POSIX sh (busybox ash on alpine, dash on Debian).
# The program passes this file in the environment (BACKUP_AGENT) and the container runs
# `sh -c 'eval "$BACKUP_AGENT"' backup-agent run`; `docker exec` runs the other commands the same way.
#
#   run            the schedule loop (BACKUP_MODE off | every | cron, lists from components/backupSchedule.ts)
#   once LABEL     one dump now, checked, named <UTC stamp>-LABEL.dump (restore's safety dump: `safety`)
#   verify FILE    check an existing dump again, rewriting its record
#   list           one JSON record per dump, oldest first
#   restore FILE   load FILE into the database (the app must be stopped; see scripts/backups.ts)
#   database-exists  yes or no
#
# Credentials come from PG* variables (PGHOST, PGUSER, PGPASSWORD, PGDATABASE), never from arguments.
# Files: <dir>/<stamp>-<label>.dump (pg_dump custom format) and <file>.json beside it, each written under
# a temporary name and renamed, so a reader never sees half of one. Nothing here deletes anything but
# scheduled dumps past the retention (never the newest that passed its check) and its own temporary files.
set -u
# A write to a psql session that has died must fail, not kill the agent (SIGPIPE).
trap '' PIPE
DIR="${BACKUP_DIR:-/backups}"
LOCK=/tmp/backup-agent.lock

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
loud() { printf '%s backup: ERROR %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# One agent command at a time (the loop and a `docker exec`): a lock directory in the container.
lock() {
    n=0
    until mkdir "$LOCK" 2>/dev/null; do
        n=$((n + 1))
        if [ "$n" -ge 3600 ]; then loud "another backup still holds $LOCK after an hour"; return 1; fi
        sleep 1
    done
}
unlock() { rmdir "$LOCK" 2>/dev/null || true; }

# SQL whose result is one query per user table; psql's \gexec runs them, each printing `schema.table|rows`.
COUNT_SQL="SELECT format('SELECT %L, count(*) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1"

json_escape() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n\t' '  '; }

# counts_json FILE: `a|1` lines -> {"a":1,...}
counts_json() {
    awk -F'|' 'BEGIN { printf "{" } NF == 2 { printf "%s\"%s\":%s", (n++ ? "," : ""), $1, $2 } END { printf "}" }' "$1"
}

# write_record DUMP CHECK REASON COUNTS_FILE STARTED DUMP_MS CHECK_MS
write_record() {
    size=$(wc -c <"$1" | tr -d ' ')
    tmp="$DIR/.$(basename "$1").json.tmp"
    printf '{"file":"%s","createdAt":"%s","sizeBytes":%s,"check":"%s","reason":"%s","checkedAt":"%s","dumpMs":%s,"checkMs":%s,"tables":%s}\n' \
        "$(basename "$1")" "$5" "$size" "$2" "$(json_escape "$3")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$6" "$7" \
        "$(counts_json "$4")" >"$tmp" && mv "$tmp" "$1.json"
}

now_ms() {
    s=$(date +%s%N 2>/dev/null)
    case "$s" in *N | "") echo "$(($(date +%s) * 1000))" ;; *) echo "$((s / 1000000))" ;; esac
}

# check DUMP EXPECTED_COUNTS: restore into a scratch database, compare per-table rows, drop it.
# Sets CHECK (passed|failed) and REASON.
check() {
    scratch="backup_check_$$_$(date -u +%s)"
    CHECK=failed
    REASON=
    if ! createdb -T template0 "$scratch" 2>"$work/check.err"; then
        REASON="could not create the scratch database: $(cat "$work/check.err")"
        return
    fi
    if ! pg_restore --exit-on-error --no-owner --no-acl -d "$scratch" "$1" 2>"$work/check.err"; then
        REASON="pg_restore failed: $(tail -n 3 "$work/check.err")"
    elif ! printf '%s\n' "$COUNT_SQL" '\gexec' | psql -X -At -v ON_ERROR_STOP=1 -d "$scratch" >"$work/restored" 2>"$work/check.err"; then
        REASON="counting the restored rows failed: $(cat "$work/check.err")"
    else
        sort "$work/restored" >"$work/restored.sorted"
        sort "$2" >"$work/expected.sorted"
        if cmp -s "$work/restored.sorted" "$work/expected.sorted"; then
            CHECK=passed
        else
            REASON="row counts differ from the source at the dump's snapshot: $(diff "$work/expected.sorted" "$work/restored.sorted" | grep '^[<>]' | head -n 5 | tr '\n' ' ')"
        fi
    fi
    dropdb --if-exists "$scratch" 2>>"$work/check.err" || loud "could not drop the scratch database $scratch: $(cat "$work/check.err")"
}

# backup LABEL: dump at one snapshot, count the rows at that same snapshot, check, record. Exit status 0
# only when the dump exists and passed its check.
backup() {
    label="$1"
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    name="$stamp-$label.dump"
    work=$(mktemp -d)
    started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    t0=$(now_ms)
    # The counts must be those of the dump's snapshot, not of a later moment: a session exports its
    # snapshot, pg_dump imports it (--snapshot), and the same session counts, then ends.
    mkfifo "$work/in"
    psql -X -At -v ON_ERROR_STOP=1 <"$work/in" >"$work/session" 2>"$work/session.err" &
    session=$!
    exec 3>"$work/in"
    printf '%s\n' "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;" "SELECT pg_export_snapshot();" >&3
    snapshot=
    n=0
    while [ -z "$snapshot" ] && [ "$n" -lt 300 ] && kill -0 "$session" 2>/dev/null; do
        snapshot=$(grep -E '^[0-9A-F]+-[0-9A-F]+-[0-9]+$' "$work/session" | head -n 1)
        [ -n "$snapshot" ] || { sleep 0.1; n=$((n + 1)); }
    done
    status=1
    if [ -z "$snapshot" ]; then
        loud "backup $name failed: no snapshot from the database: $(cat "$work/session.err")"
    elif ! pg_dump --format=custom --snapshot="$snapshot" --lock-wait-timeout=60000 -f "$DIR/.$name.partial" 2>"$work/dump.err"; then
        loud "backup $name failed, previous backups untouched: pg_dump: $(cat "$work/dump.err")"
    else
        t1=$(now_ms)
        printf '%s\n' "$COUNT_SQL" '\gexec' '\echo __counted__' "COMMIT;" >&3
        exec 3>&-
        wait "$session"
        session=
        if ! grep -q '^__counted__$' "$work/session"; then
            loud "backup $name failed: counting the rows at its snapshot failed: $(cat "$work/session.err")"
        else
            grep '|' "$work/session" >"$work/expected"
            mv "$DIR/.$name.partial" "$DIR/$name"
            check "$DIR/$name" "$work/expected"
            write_record "$DIR/$name" "$CHECK" "$REASON" "$work/expected" "$started" "$((t1 - t0))" "$(($(now_ms) - t1))"
            if [ "$CHECK" = passed ]; then
                log "$name written and checked: $(wc -l <"$work/expected" | tr -d ' ') tables restored with the same row counts"
                status=0
            else
                loud "backup $name FAILED ITS CHECK (kept, marked failed): $REASON"
            fi
        fi
    fi
    [ -n "$session" ] && { exec 3>&- 2>/dev/null; kill "$session" 2>/dev/null; wait "$session" 2>/dev/null; }
    rm -f "$DIR/.$name.partial"
    rm -rf "$work"
    LAST_NAME="$name"
    return "$status"
}

# prune: scheduled dumps past the retention. Kept: the newest BACKUP_KEEP_LAST, those younger than
# BACKUP_KEEP_DAYS days, and always the newest one that passed its check. 0 turns a rule off; both off
# keeps everything.
prune() {
    keep_last="${BACKUP_KEEP_LAST:-0}"
    keep_days="${BACKUP_KEEP_DAYS:-0}"
    [ "$keep_last" -eq 0 ] && [ "$keep_days" -eq 0 ] && return 0
    newest_passed=
    for f in "$DIR"/*-scheduled.dump; do
        [ -f "$f" ] || continue
        grep -q '"check":"passed"' "$f.json" 2>/dev/null && newest_passed="$f"
    done
    total=$(ls "$DIR" | grep -c -- '-scheduled\.dump$')
    i=0
    now=$(date +%s)
    for f in "$DIR"/*-scheduled.dump; do
        [ -f "$f" ] || continue
        i=$((i + 1))
        [ "$f" = "$newest_passed" ] && continue
        [ "$keep_last" -gt 0 ] && [ $((total - i)) -lt "$keep_last" ] && continue
        if [ "$keep_days" -gt 0 ]; then
            age=$((now - $(stat -c %Y "$f")))
            [ "$age" -lt $((keep_days * 86400)) ] && continue
        fi
        rm -f "$f" "$f.json" && log "pruned $(basename "$f") (retention: last $keep_last, $keep_days days)"
    done
}

in_list() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

# due: whether the cron lists match this minute (UTC).
due() {
    set -- $(date -u '+%M %H %d %m %w')
    m=${1#0} h=${2#0} d=${3#0} mo=${4#0} w=$5
    in_list "${m:-0}" "$BACKUP_MINUTES" && in_list "${h:-0}" "$BACKUP_HOURS" && in_list "$mo" "$BACKUP_MONTHS" || return 1
    if [ "$BACKUP_DAY_RULE" = either ]; then
        in_list "$d" "$BACKUP_DAYS" || in_list "$w" "$BACKUP_WEEKDAYS"
    else
        in_list "$d" "$BACKUP_DAYS" && in_list "$w" "$BACKUP_WEEKDAYS"
    fi
}

scheduled() {
    lock || return 1
    backup scheduled
    prune
    unlock
}

run() {
    unlock # a lock left by a killed container is stale: nothing else runs before the loop starts
    rm -f "$DIR"/.*.partial "$DIR"/.*.json.tmp 2>/dev/null
    trap 'log "stopping"; exit 0' TERM INT
    case "${BACKUP_MODE:-off}" in
    off)
        log "no schedule (backupSchedule unset): idle; dumps on demand with \`npm run restore\`"
        while :; do sleep 3600 & wait $!; done
        ;;
    every)
        log "schedule: every ${BACKUP_EVERY_SECONDS}s (${BACKUP_SCHEDULE:-}), into $DIR"
        while :; do
            sleep "$BACKUP_EVERY_SECONDS" & wait $!
            scheduled
        done
        ;;
    cron)
        log "schedule: ${BACKUP_SCHEDULE:-} (UTC), into $DIR"
        last=
        while :; do
            minute=$(date -u +%Y%m%d%H%M)
            if [ "$minute" != "$last" ] && due; then
                last="$minute"
                scheduled
            fi
            sleep $((60 - $(date -u +%S | sed 's/^0//'))) & wait $!
        done
        ;;
    *) loud "unknown BACKUP_MODE ${BACKUP_MODE}"; exit 2 ;;
    esac
}

list() {
    for f in "$DIR"/*.dump; do
        [ -f "$f" ] || continue
        if [ -f "$f.json" ]; then
            tr -d '\n' <"$f.json"
            echo
        else
            printf '{"file":"%s","sizeBytes":%s,"check":"unchecked","reason":"no record beside the dump"}\n' \
                "$(basename "$f")" "$(wc -c <"$f" | tr -d ' ')"
        fi
    done
}

verify() {
    f="$DIR/$(basename "$1")"
    [ -f "$f" ] || { loud "no dump $f"; return 2; }
    lock || return 1
    work=$(mktemp -d)
    # The source's counts at the dump's time are in its record; without one, compare with the dump's
    # own table of contents is impossible, so the check fails rather than pass on nothing.
    if [ -f "$f.json" ]; then
        sed -n 's/.*"tables":{\(.*\)}}$/\1/p' "$f.json" | tr ',' '\n' | sed 's/^"\(.*\)":\([0-9]*\)$/\1|\2/' | grep '|' >"$work/expected"
    fi
    if [ ! -s "$work/expected" ]; then
        CHECK=failed
        REASON="no row counts of the source recorded for this dump"
        : >"$work/expected"
    else
        check "$f" "$work/expected"
    fi
    t=$(now_ms)
    created=$(sed -n 's/.*"createdAt":"\([^"]*\)".*/\1/p' "$f.json" 2>/dev/null)
    write_record "$f" "$CHECK" "$REASON" "$work/expected" "${created:-unknown}" 0 0
    rm -rf "$work"
    unlock
    if [ "$CHECK" = passed ]; then log "$(basename "$f") checked again: passed"; else
        loud "$(basename "$f") FAILED ITS CHECK: $REASON"
        return 1
    fi
}

# database_exists: yes or no, for PGDATABASE.
database_exists() {
    # (psql interpolates :'db' in SQL it reads, not in -c.)
    n=$(printf '%s\n' "SELECT count(*) FROM pg_database WHERE datname = :'db';" | psql -X -At -d postgres -v ON_ERROR_STOP=1 -v db="$PGDATABASE" 2>/dev/null)
    [ "$n" = 1 ] && echo yes || echo no
}

# restore FILE: into a new database first, then swapped in by renaming, so a dump that does not load
# leaves the current database as it was. The old database is dropped only after the swap.
restore() {
    f="$DIR/$(basename "$1")"
    [ -f "$f" ] || { loud "no dump $f"; return 2; }
    lock || return 1
    work=$(mktemp -d)
    db="$PGDATABASE"
    incoming="${db}_restoring"
    old="${db}_replaced"
    status=1
    admin() { psql -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
    if ! admin -c "DROP DATABASE IF EXISTS \"$incoming\"" -c "CREATE DATABASE \"$incoming\" TEMPLATE template0" 2>"$work/err"; then
        loud "restore of $(basename "$f") failed, nothing changed: $(cat "$work/err")"
    elif ! pg_restore --exit-on-error --single-transaction -d "$incoming" "$f" 2>"$work/err"; then
        loud "restore of $(basename "$f") failed, nothing changed: pg_restore: $(tail -n 5 "$work/err")"
        admin -c "DROP DATABASE IF EXISTS \"$incoming\"" 2>/dev/null
    elif [ "$(database_exists)" = no ]; then
        if admin -c "ALTER DATABASE \"$incoming\" RENAME TO \"$db\"" 2>"$work/err"; then
            log "restored $(basename "$f") into $db (it did not exist)"
            status=0
        else
            loud "restore of $(basename "$f"): renaming $incoming to $db failed: $(cat "$work/err"); the dump is loaded in $incoming"
        fi
    # One -c with both renames is one transaction: the database is never missing under its name.
    elif ! admin -c "DROP DATABASE IF EXISTS \"$old\"" \
        -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$db' AND pid <> pg_backend_pid()" \
        -c "ALTER DATABASE \"$db\" RENAME TO \"$old\"; ALTER DATABASE \"$incoming\" RENAME TO \"$db\";" >/dev/null 2>"$work/err"; then
        loud "restore of $(basename "$f"): swapping the databases failed, $db unchanged: $(cat "$work/err"); the dump is loaded in $incoming"
    else
        admin -c "DROP DATABASE \"$old\"" 2>"$work/err" || loud "the replaced database $old could not be dropped: $(cat "$work/err")"
        log "restored $(basename "$f") into $db"
        status=0
    fi
    rm -rf "$work"
    unlock
    return "$status"
}

case "${1:-}" in
run) run ;;
once)
    case "${2:-manual}" in *[!a-z0-9-]*) loud "a label is lower-case letters, digits and -"; exit 2 ;; esac
    lock || exit 1
    backup "${2:-manual}"
    s=$?
    unlock
    echo "$LAST_NAME"
    exit "$s"
    ;;
verify) verify "${2:?verify FILE}" ;;
database-exists) database_exists ;;
list) list ;;
restore) restore "${2:?restore FILE}" ;;
*)
    echo "usage: backup-agent run | once LABEL | verify FILE | list | restore FILE" >&2
    exit 2
    ;;
esac
