# The backup agent (issue 14): runs in the stack's backup container, from the stack's Postgres image, so
# pg_dump and pg_restore are the server's own version. POSIX sh (busybox ash on alpine, dash on Debian).
# The program passes this file in the environment (BACKUP_AGENT) and the container runs
# `sh -c 'eval "$BACKUP_AGENT"' backup-agent run`; `docker exec` runs the other commands the same way.
#
#   run                     the schedule loop (BACKUP_MODE off | every | cron, lists from backupSchedule.ts)
#   once LABEL              one dump now, checked, named <UTC stamp>-LABEL.dump (restore's safety dump: `safety`)
#   verify FILE             check an existing dump again, rewriting its record
#   list                    one JSON record per dump, oldest first
#   preflight               what a restore needs to know first: result=exists:yes|no replaced:yes|no
#   restore FILE [SAFETY]   load FILE into the database (the app must be stopped; see scripts/backups.ts);
#                           the replaced database is dropped only when SAFETY names a dump of it that passed
#
# `once`, `preflight` and `restore` end with one `result=...` line on stdout: the caller trusts that line,
# never the exit code of a `docker exec` client (a dropped SSH connection or a Ctrl-C says nothing of how
# the agent ended).
#
# Credentials come from PG* variables (PGHOST, PGUSER, PGPASSWORD, PGDATABASE), never from arguments.
# Files: <dir>/<stamp>-<label>.dump (pg_dump custom format) and <file>.json beside it, each written under
# a temporary name and renamed, so a reader never sees half of one; readable by the owner only. Nothing
# here deletes anything but scheduled dumps past the retention (never the newest that passed its check),
# its own temporary files, and its own scratch databases.
set -u
umask 077
# A write to a psql session that has died must fail, not kill the agent (SIGPIPE).
trap '' PIPE
DIR="${BACKUP_DIR:-/backups}"
LOCK=/tmp/backup-agent.lock
SCRATCH_PREFIX=backup_check_

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
loud() { printf '%s backup: ERROR %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# One agent command at a time (the loop and a `docker exec`): a symlink in the container whose target is
# its holder's PID, created in one step (ln -s fails when it exists), so that a holder that died (a killed
# `docker exec`) does not block the schedule. Breaking a dead holder's lock re-reads it first; two waiters
# breaking the same dead lock at the same instant could still both go on (a window of microseconds).
lock() {
    n=0
    until ln -s "$$" "$LOCK" 2>/dev/null; do
        holder=$(readlink "$LOCK" 2>/dev/null)
        if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null && [ "$(readlink "$LOCK" 2>/dev/null)" = "$holder" ]; then
            rm -f "$LOCK"
            continue
        fi
        n=$((n + 1))
        if [ "$n" -ge 3600 ]; then
            loud "another backup (PID ${holder:-?}) still holds $LOCK after an hour"
            return 1
        fi
        sleep 1
    done
    LOCKED=1
    # Whatever a killed holder left: its temporary files and its scratch database.
    rm -f "$DIR"/.*.partial "$DIR"/.*.tmp 2>/dev/null
    for db in $(psql -X -At -d postgres -c "SELECT datname FROM pg_database WHERE datname ~ '^${SCRATCH_PREFIX}[0-9]+_[0-9]+\$'" 2>/dev/null); do
        dropdb --if-exists "$db" && log "dropped $db, a scratch database left by an interrupted check"
    done
}
unlock() {
    [ "${LOCKED:-0}" = 1 ] && [ "$(readlink "$LOCK" 2>/dev/null)" = "$$" ] && rm -f "$LOCK"
    LOCKED=0
}
# For one-shot commands: the lock goes with the process, however it ends.
hold_lock() {
    trap 'unlock' EXIT
    trap 'exit 130' INT TERM
    lock
}

# SQL whose result is one query per table pg_dump dumps (not other sessions' temporary tables); psql's
# \gexec runs them, each printing `schema.table|rows` and taking the table's ACCESS SHARE lock.
COUNT_SQL="SELECT format('SELECT %L, count(*) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1"

# One LOCK statement for every table COUNT_SQL counts (nothing when there is none).
LOCK_SQL="SELECT 'LOCK TABLE ' || string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY 1) || ' IN ACCESS SHARE MODE'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
HAVING count(*) > 0"

json_escape() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n\t\r' '   '; }

# counts_json FILE: `a|1` lines -> {"a":1,...}, names escaped for JSON.
counts_json() {
    awk -F'|' 'BEGIN { printf "{" }
        NF >= 2 { rows = $NF; name = substr($0, 1, length($0) - length(rows) - 1)
                  gsub(/\\/, "\\\\", name); gsub(/"/, "\\\"", name)
                  printf "%s\"%s\":%s", (n++ ? "," : ""), name, rows }
        END { printf "}" }' "$1"
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

# check DUMP EXPECTED_COUNTS: restore into a scratch database, compare per-table rows, drop it. Sets CHECK:
# passed, failed (the dump does not restore, or restores other rows), or unchecked (the check itself could
# not run: no scratch database), and REASON.
check() {
    scratch="$SCRATCH_PREFIX$(date -u +%s)_$$"
    CHECK=failed
    REASON=
    if ! createdb -T template0 "$scratch" 2>"$work/check.err"; then
        CHECK=unchecked
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

# session_wait FILE PATTERN PID: waits for a line matching PATTERN in FILE while the session PID lives.
session_wait() {
    while ! grep -qE "$2" "$1" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
}

# backup LABEL: one snapshot for everything. A session exports its snapshot and at once locks every table
# (ACCESS SHARE, one statement), so no DROP, TRUNCATE or rewrite lands from then on; pg_dump starts right
# away on that snapshot, and while it dumps, the session counts every table's rows in the same snapshot.
# Nothing waits on pg_dump while holding a lock pg_dump needs. The counts are kept beside the dump
# (<dump>.counts). Exit status 0 only when the dump exists and passed its check.
backup() {
    label="$1"
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    name="$stamp-$label.dump"
    work=$(mktemp -d)
    started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    t0=$(now_ms)
    status=1
    CHECK=failed
    mkfifo "$work/in"
    # Never wait forever behind another session's exclusive lock (pg_dump has --lock-wait-timeout).
    PGOPTIONS="${PGOPTIONS:-} -c lock_timeout=60000" psql -X -At -v ON_ERROR_STOP=1 <"$work/in" >"$work/session" 2>"$work/session.err" &
    session=$!
    # Read-write open: never blocks, even if the reader is gone; psql sees the end when fd 3 closes.
    exec 3<>"$work/in"
    printf '%s\n' "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;" "SELECT 'snapshot=' || pg_export_snapshot();" \
        "$LOCK_SQL" '\gexec' '\echo __locked__' >&3
    if ! session_wait "$work/session" '^__locked__$' "$session"; then
        loud "backup $name failed before any dump, previous backups untouched: the snapshot and its locks: $(cat "$work/session.err")"
    else
        snapshot=$(sed -n 's/^snapshot=//p' "$work/session")
        pg_dump --format=custom --snapshot="$snapshot" --lock-wait-timeout=60000 -f "$DIR/.$name.partial" 2>"$work/dump.err" &
        dump=$!
        printf '%s\n' "$COUNT_SQL" '\gexec' '\echo __counted__' >&3
        session_wait "$work/session" '^__counted__$' "$session"
        counted=$?
        wait "$dump"
        dumped=$?
        t1=$(now_ms)
        if [ "$dumped" != 0 ]; then
            loud "backup $name failed, previous backups untouched: pg_dump: $(cat "$work/dump.err")"
        elif [ "$counted" != 0 ]; then
            loud "backup $name failed, previous backups untouched: counting the rows at its snapshot: $(cat "$work/session.err")"
        else
            grep '|' "$work/session" >"$work/expected"
            cp "$work/expected" "$DIR/.$name.counts.tmp" && mv "$DIR/.$name.counts.tmp" "$DIR/$name.counts"
            mv "$DIR/.$name.partial" "$DIR/$name"
            status=2
        fi
    fi
    printf '%s\n' "COMMIT;" >&3 2>/dev/null
    exec 3>&-
    wait "$session" 2>/dev/null
    if [ "$status" = 2 ]; then
        status=1
        check "$DIR/$name" "$work/expected"
        write_record "$DIR/$name" "$CHECK" "$REASON" "$work/expected" "$started" "$((t1 - t0))" "$(($(now_ms) - t1))"
        if [ "$CHECK" = passed ]; then
            log "$name written and checked: $(wc -l <"$work/expected" | tr -d ' ') tables restored with the same row counts"
            status=0
        else
            loud "backup $name FAILED ITS CHECK (kept, marked $CHECK): $REASON"
        fi
    else
        name=
    fi
    rm -f "$DIR/.$stamp-$label.dump.partial"
    rm -rf "$work"
    LAST_NAME="$name"
    return "$status"
}

passed() { grep -q '"check":"passed"' "$1.json" 2>/dev/null; }

# prune: scheduled dumps past the retention, after every pass. Kept: the newest BACKUP_KEEP_LAST dumps that
# passed (and at most as many failed ones newer than the last of those), those younger than
# BACKUP_KEEP_DAYS days, and always the newest one that passed. 0 turns a rule off; both off keeps
# everything.
prune() {
    keep_last="${BACKUP_KEEP_LAST:-0}"
    keep_days="${BACKUP_KEEP_DAYS:-0}"
    [ "$keep_last" -eq 0 ] && [ "$keep_days" -eq 0 ] && return 0
    now=$(date +%s)
    good=0
    bad=0
    # Newest first (the names start with their UTC stamp).
    for f in $(ls "$DIR" | grep -- '-scheduled\.dump$' | sort -r); do
        f="$DIR/$f"
        if passed "$f"; then
            good=$((good + 1))
            [ "$good" -eq 1 ] && continue # the newest that passed: never pruned
            [ "$keep_last" -gt 0 ] && [ "$good" -le "$keep_last" ] && continue
        else
            bad=$((bad + 1))
            [ "$keep_last" -gt 0 ] && [ "$good" -lt "$keep_last" ] && [ "$bad" -le "$keep_last" ] && continue
        fi
        if [ "$keep_days" -gt 0 ]; then
            [ $((now - $(stat -c %Y "$f"))) -lt $((keep_days * 86400)) ] && continue
        fi
        rm -f "$f" "$f.json" "$f.counts" && log "pruned $(basename "$f") (retention: last $keep_last, $keep_days days)"
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
    # Nothing else runs before the loop starts: a lock left by a killed container is stale.
    rm -f "$LOCK"
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
                "$(json_escape "$(basename "$f")")" "$(wc -c <"$f" | tr -d ' ')"
        fi
    done
}

verify() {
    f="$DIR/$(basename "$1")"
    [ -f "$f" ] || { loud "no dump $f"; return 2; }
    hold_lock || return 1
    work=$(mktemp -d)
    # The source's counts at the dump's snapshot: <dump>.counts as written (older dumps: their record).
    if [ -f "$f.counts" ]; then
        cp "$f.counts" "$work/expected"
    elif [ -f "$f.json" ]; then
        sed -n 's/.*"tables":{\(.*\)}}$/\1/p' "$f.json" | tr ',' '\n' | sed 's/^"\(.*\)":\([0-9]*\)$/\1|\2/' | grep '|' >"$work/expected"
    fi
    if [ ! -f "$f.counts" ] && ! grep -q '"tables":' "$f.json" 2>/dev/null; then
        CHECK=failed
        REASON="no row counts of the source recorded for this dump"
        : >"$work/expected"
    else
        check "$f" "$work/expected"
    fi
    if [ "$CHECK" = unchecked ]; then
        # The check could not run: the dump's record stays as it was.
        loud "$(basename "$f") could not be checked: $REASON"
        rm -rf "$work"
        return 1
    fi
    created=$(sed -n 's/.*"createdAt":"\([^"]*\)".*/\1/p' "$f.json" 2>/dev/null)
    write_record "$f" "$CHECK" "$REASON" "$work/expected" "${created:-unknown}" 0 0
    rm -rf "$work"
    if [ "$CHECK" = passed ]; then log "$(basename "$f") checked again: passed"; else
        loud "$(basename "$f") FAILED ITS CHECK: $REASON"
        return 1
    fi
}

# preflight: result=exists:yes|no replaced:yes|no; no result line when the server cannot say.
preflight() {
    exists=$(database_exists) || { loud "the server cannot say whether $PGDATABASE exists"; return 2; }
    n=$(psql -X -At -d postgres -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM pg_database WHERE datname = '${PGDATABASE}_replaced'") || return 2
    replaced=no
    if [ "$n" != 0 ]; then
        replaced=yes
        log "${PGDATABASE}_replaced, the database an earlier restore replaced, still exists; look at it, then drop it ($(drop_hint)) and run again"
    fi
    echo "result=exists:$exists replaced:$replaced"
}

drop_hint() { echo "docker exec ${BACKUP_POSTGRES_CONTAINER:-<the Postgres container>} dropdb -U $PGUSER ${PGDATABASE}_replaced"; }

# database_exists: yes or no for PGDATABASE; nothing and exit 2 when the server cannot say.
database_exists() {
    # (psql interpolates :'db' in SQL it reads, not in -c.)
    n=$(printf '%s\n' "SELECT count(*) FROM pg_database WHERE datname = :'db';" | psql -X -At -d postgres -v ON_ERROR_STOP=1 -v db="$PGDATABASE") || return 2
    case "$n" in 1) echo yes ;; 0) echo no ;; *) return 2 ;; esac
}

# restore FILE [SAFETY]: into a new database first, then swapped in by renaming, so a dump that does not
# load leaves the current database as it was. The replaced database is dropped only when SAFETY names a
# dump of it that passed its check; otherwise it stays, renamed, and the log says where.
restore() {
    f="$DIR/$(basename "$1")"
    safety="${2:-}"
    [ -f "$f" ] || { loud "no dump $f"; return 2; }
    hold_lock || return 1
    work=$(mktemp -d)
    db="$PGDATABASE"
    incoming="${db}_restoring"
    old="${db}_replaced"
    status=1
    admin() { psql -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
    if ! exists=$(database_exists); then
        loud "restore of $(basename "$f") refused, nothing changed: the server cannot say whether $db exists"
    elif [ "$(admin -c "SELECT count(*) FROM pg_database WHERE datname = '$old'")" != 0 ]; then
        loud "restore of $(basename "$f") refused, nothing changed: $old, the database an earlier restore replaced, still exists; look at it, then drop it ($(drop_hint)) and run again"
    elif ! admin -c "DROP DATABASE IF EXISTS \"$incoming\"" -c "CREATE DATABASE \"$incoming\" TEMPLATE template0" 2>"$work/err"; then
        loud "restore of $(basename "$f") failed, nothing changed: $(cat "$work/err")"
    elif ! pg_restore --exit-on-error --single-transaction -d "$incoming" "$f" 2>"$work/err"; then
        loud "restore of $(basename "$f") failed, nothing changed: pg_restore: $(tail -n 5 "$work/err")"
        admin -c "DROP DATABASE IF EXISTS \"$incoming\"" 2>/dev/null
    elif [ "$exists" = no ]; then
        if admin -c "ALTER DATABASE \"$incoming\" RENAME TO \"$db\"" 2>"$work/err"; then
            log "restored $(basename "$f") into $db (it did not exist)"
            status=0
        else
            loud "restore of $(basename "$f"): renaming $incoming to $db failed: $(cat "$work/err"); the dump is loaded in $incoming"
        fi
    # One -c with both renames is one transaction: the database is never missing under its name.
    elif ! admin -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$db' AND pid <> pg_backend_pid()" \
        -c "ALTER DATABASE \"$db\" RENAME TO \"$old\"; ALTER DATABASE \"$incoming\" RENAME TO \"$db\";" >/dev/null 2>"$work/err"; then
        loud "restore of $(basename "$f"): swapping the databases failed, $db unchanged: $(cat "$work/err"); the dump is loaded in $incoming"
    else
        log "restored $(basename "$f") into $db"
        status=0
        if [ -n "$safety" ] && passed "$DIR/$(basename "$safety")"; then
            if admin -c "DROP DATABASE \"$old\"" 2>"$work/err"; then
                log "dropped the replaced database (its checked dump: $(basename "$safety"))"
            else
                loud "the replaced database $old could not be dropped: $(cat "$work/err")"
            fi
        else
            log "the replaced database is kept as $old (no checked dump of it): drop it once you no longer need it"
        fi
    fi
    rm -rf "$work"
    [ "$status" = 0 ] && echo "result=restored" || echo "result=unchanged"
    return "$status"
}

case "${1:-}" in
run) run ;;
once)
    case "${2:-manual}" in *[!a-z0-9-]*) loud "a label is lower-case letters, digits and -"; exit 2 ;; esac
    hold_lock || exit 1
    backup "${2:-manual}"
    s=$?
    [ "$s" = 0 ] && echo "result=passed $LAST_NAME" || echo "result=failed $LAST_NAME"
    exit "$s"
    ;;
verify) verify "${2:?verify FILE}" ;;
list) list ;;
preflight) preflight ;;
restore) restore "${2:?restore FILE}" "${3:-}" ;;
*)
    echo "usage: backup-agent run | once LABEL | verify FILE | list | preflight | restore FILE [SAFETY]" >&2
    exit 2
    ;;
esac
