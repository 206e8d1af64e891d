#!/bin/sh
# Prints the path of a pg_dump that can dump a PostgreSQL 16 server, providing one if needed.
#
# Why: the migration runner's backups (issue 3) need pg_dump >= 16, and Debian bookworm (this machine,
# CI) only packages 15, which refuses a newer server. Debian trixie packages postgresql-client-17, and a
# pg_dump 17 dumps a 16 server. We install it once into a minimal trixie root with debootstrap and print
# a small wrapper that runs it there through chroot (needs root). chroot keeps the environment (the PG*
# variables carry the credentials, never argv) and shares the network namespace, so TCP to 127.0.0.1
# works; Unix sockets of the host do not, use a TCP host.
#
# Idempotent: a ready wrapper (or a pg_dump >= 16 already on PATH) is printed without touching anything.
# Usage: PG_DUMP="$(.ci/pg-dump.sh)"   (progress goes to stderr, only the path to stdout)
set -eu

CACHE="${MRS_PGDUMP_CACHE:-/var/cache/marvel-rivals-stats}"
ROOT="$CACHE/trixie-pgdump"
WRAPPER="$CACHE/pg_dump-17"
MIRROR="${MRS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

major_of() {
    # `pg_dump (PostgreSQL) 17.6 (Debian 17.6-0+deb13u1)` -> 17
    "$1" --version 2>/dev/null | sed -n 's/^pg_dump (PostgreSQL) \([0-9][0-9]*\).*/\1/p'
}

usable() {
    m="$(major_of "$1")"
    [ -n "$m" ] && [ "$m" -ge 16 ]
}

if command -v pg_dump >/dev/null 2>&1 && usable "$(command -v pg_dump)"; then
    command -v pg_dump
    exit 0
fi

if [ -x "$WRAPPER" ] && usable "$WRAPPER"; then
    echo "$WRAPPER"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "pg-dump.sh: no pg_dump >= 16 on PATH and building one needs root (debootstrap, chroot); run as root or set PG_DUMP to a pg_dump >= 16" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "pg-dump.sh: debootstrap is not installed; install it with 'apt-get install debootstrap' or set PG_DUMP to a pg_dump >= 16" >&2
    exit 1
fi

mkdir -p "$CACHE"
if [ ! -x "$ROOT/usr/lib/postgresql/17/bin/pg_dump" ]; then
    # Build beside the final path and rename at the end, so an interrupted run never looks finished.
    TMP="$ROOT.partial"
    rm -rf "$TMP"
    echo "pg-dump.sh: debootstrap trixie + postgresql-client-17 into $ROOT (once, about a minute)" >&2
    debootstrap --variant=minbase --include=postgresql-client-17 trixie "$TMP" "$MIRROR" >&2
    rm -rf "$ROOT"
    mv "$TMP" "$ROOT"
fi

cat > "$WRAPPER.tmp" <<WRAP
#!/bin/sh
# pg_dump 17 from a Debian trixie root (built by .ci/pg-dump.sh); the environment passes through chroot.
exec chroot "$ROOT" /usr/lib/postgresql/17/bin/pg_dump "\$@"
WRAP
chmod 755 "$WRAPPER.tmp"
mv "$WRAPPER.tmp" "$WRAPPER"

if ! usable "$WRAPPER"; then
    echo "pg-dump.sh: $WRAPPER does not report a pg_dump >= 16: $("$WRAPPER" --version 2>&1 || true)" >&2
    exit 1
fi
echo "$WRAPPER"
