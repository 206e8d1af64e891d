#!/usr/bin/env bash
# OFFLINE CI STAND-IN ONLY: a reduced copy of the official postgres image's entrypoint (docker-library/
# postgres, docker-entrypoint.sh) for the stand-in image built by .ci/provision.sh. Same behaviour for
# what the Pulumi program uses; no nss_wrapper, no POSTGRES_INITDB_WALDIR.
set -Eeo pipefail

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" = 'postgres' ]; then
    : "${POSTGRES_USER:=postgres}"
    : "${POSTGRES_DB:=$POSTGRES_USER}"
    : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
    export POSTGRES_USER POSTGRES_DB

    mkdir -p "$PGDATA"
    chmod 00700 "$PGDATA" || :
    mkdir -p /var/run/postgresql || :
    chmod 03775 /var/run/postgresql || :

    if [ "$(id -u)" = '0' ]; then
        find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
        find /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
        # gosu/su-exec equivalent from util-linux.
        exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
    fi

    # The official entrypoint's file_env (docker-library/postgres, docker-entrypoint.sh): POSTGRES_PASSWORD_FILE
    # names a file holding the password; setting both is an error.
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        if [ -n "${POSTGRES_PASSWORD:-}" ]; then
            echo >&2 'error: both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set (but are exclusive)'
            exit 1
        fi
        POSTGRES_PASSWORD="$(< "$POSTGRES_PASSWORD_FILE")"
        export POSTGRES_PASSWORD
        unset POSTGRES_PASSWORD_FILE
    fi

    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
            echo >&2 'Error: Database is uninitialized and superuser password is not specified.'
            echo >&2 '       You must specify POSTGRES_PASSWORD to a non-empty value for the superuser.'
            exit 1
        fi
        # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list, as upstream.
        initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
            ${POSTGRES_INITDB_ARGS:-}
        # initdb's defaults trust the local socket and loopback; every other host needs the password.
        printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"

        # Temporary server on the socket only, to create the database and run init scripts.
        PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -w start \
            -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql -p 5432"
        psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
        if [ "$POSTGRES_DB" != 'postgres' ]; then
            "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
        fi
        for f in /docker-entrypoint-initdb.d/*; do
            case "$f" in
                *.sh) echo "running $f"; . "$f" ;;
                *.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
                *) if [ -e "$f" ]; then echo "ignoring $f"; fi ;;
            esac
        done
        PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
        echo
        echo 'PostgreSQL init process complete; ready for start up.'
        echo
    else
        echo
        echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
        echo
    fi
    # The official build compiles the socket directory in; these binaries default to /tmp. Given first,
    # so that a caller's own `-c unix_socket_directories=...` still wins.
    shift
    set -- postgres -c unix_socket_directories=/var/run/postgresql "$@"
fi

exec "$@"
