#!/usr/bin/env bash
# Runs a Pulumi command for this project with no Pulumi Cloud account: state in ./.pulumi-state (a local
# file backend), secrets encrypted with a passphrase. Usage: scripts/pulumi.sh up|preview|destroy [args]
# The commands that change the stack (up, destroy, refresh, import, state, watch) run under its deploy lock
# (scripts/deployLock.ts, docs/deploys.md "One change at a time"); `--lock-wait SECONDS` and `--lock-ttl 60m` are the
# lock's options, taken out before Pulumi sees the arguments.
# Stack: `--stack NAME` anywhere in the arguments (default dev; $PULUMI_STACK is how the scripts that run
# this one under a lock hand it down), e.g. `npm run up -- --stack odin`.
# Passphrase: $PULUMI_CONFIG_PASSPHRASE(_FILE), else one is generated on first use of a file:// state into
# ~/.config/marvel-rivals-stats/passphrase (0600), never beside the state it decrypts: a copy of the state
# alone must not open its secrets (back the passphrase up apart, e.g. a password manager).
# odin's state has one home, shared by the laptop and the runner (docs/github.md): this script refuses any
# local file:// state for odin unless MRS_ALLOW_LOCAL_STATE=1.
set -euo pipefail
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() { printf 'error: %s\n' "$*" >&2; exit 1; }
usage() {
    cat <<'EOF'
usage: npm run up|preview|destroy|outputs|config -- [--stack <name>] [pulumi's own arguments]
       npm run up -- --stack odin                       deploy odin (first: npm run preview -- --stack odin)
       npm run outputs -- databaseUrl --stack odin      one stack output, secrets shown
       npm run config -- set appPort 8001 --stack dev   set a config key (--secret for a secret)
--stack <name> chooses the stack (default dev; one stack per Pulumi.<name>.yaml file); the flags go after `--`.
--lock-wait SECONDS, --lock-ttl 60m: the deploy lock of up, destroy, refresh, import, state, watch.
EOF
}
stacks() {
    local f list=""
    for f in Pulumi.*.yaml; do f="${f#Pulumi.}" && list="${list:+$list, }${f%.yaml}"; done
    printf '%s' "$list"
}
# npm takes `--stack odin` before `--` for its own config (npm_config_stack) and hands us `odin` alone.
if [ -n "${npm_config_stack:-}" ]; then
    value="$npm_config_stack"
    if [ "$value" = true ]; then
        value="<name>"
        for a in "$@"; do [ ! -f "Pulumi.$a.yaml" ] || { value="$a" && break; }; done
    fi
    fail "npm took --stack for itself: put \`--\` before the flags: npm run ${npm_lifecycle_event:-up} -- --stack $value"
fi
stack="${PULUMI_STACK:-dev}"
rest=()
while [ $# -gt 0 ]; do
    case "$1" in
        --stack)
            [ $# -ge 2 ] || fail "--stack needs a stack name: --stack <name> (the stacks: $(stacks))"
            stack="$2"
            shift 2
            ;;
        --stack=*)
            stack="${1#--stack=}"
            shift
            ;;
        --help | -h)
            usage
            exit 0
            ;;
        *)
            rest+=("$1")
            shift
            ;;
    esac
done
set -- ${rest[@]+"${rest[@]}"}
[ -f "Pulumi.$stack.yaml" ] ||
    fail "unknown stack \"$stack\": the stacks are $(stacks) (one per Pulumi.<name>.yaml file); choose one with --stack <name>"
command -v pulumi >/dev/null 2>&1 ||
    fail "the Pulumi CLI is not installed. Install it (https://www.pulumi.com/docs/install/), then run this again."
command -v docker >/dev/null 2>&1 ||
    fail "the docker CLI is not installed: the stack's setup steps run it. Install Docker, then run this again."
[ -d node_modules/@pulumi/pulumi ] || fail "dependencies are missing: run \`npm ci\` first."

state="$PWD/.pulumi-state"
mkdir -p "$state"
chmod 700 "$state"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$state}"
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
    # Outside the state directory (issue 23): one that an earlier version generated beside the state is
    # moved out once, never lost; two different ones are a question for a person.
    keys="${XDG_CONFIG_HOME:-$HOME/.config}/marvel-rivals-stats"
    passphrase="$keys/passphrase"
    (umask 077 && mkdir -p "$keys")
    if [ -s "$state/passphrase" ]; then
        if [ ! -s "$passphrase" ]; then
            (umask 077 && cp "$state/passphrase" "$passphrase.tmp" && mv "$passphrase.tmp" "$passphrase")
            rm "$state/passphrase"
            printf 'Moved the stack passphrase out of the state directory, to %s (0600): back it up apart from %s.\n' "$passphrase" "$state" >&2
        elif cmp -s "$state/passphrase" "$passphrase"; then
            rm "$state/passphrase"
        else
            fail "two different passphrases: $state/passphrase and $passphrase. Keep the one that decrypts your stacks in $passphrase and delete $state/passphrase (a passphrase never sits beside the state)."
        fi
    fi
    # A new one only for a state without stacks: stacks there were encrypted with a passphrase that is not
    # here (another XDG_CONFIG_HOME, a new laptop), and a new one would not open them (pulumi/pulumi
    # pkg/backend/diy/store.go: StacksDir, .pulumi/stacks).
    if [ ! -s "$passphrase" ] && [ "$PULUMI_BACKEND_URL" = "file://$state" ] &&
        [ -n "$(ls -A "$state/.pulumi/stacks" 2>/dev/null)" ]; then
        fail "the stacks in $state were encrypted with a passphrase that is not in $passphrase: put it there (0600), or set PULUMI_CONFIG_PASSPHRASE_FILE to the file that holds it; a new one would not open them."
    fi
    # A shared backend (s3://, Pulumi Cloud: odin's, docs/github.md) holds stacks made with the passphrase
    # of the GitHub secret; a new one here would not open them. Only the scheme is shown: a URL may carry more.
    case "$PULUMI_BACKEND_URL" in
        file://*) ;;
        *)
            [ -s "$passphrase" ] ||
                fail "no passphrase for the ${PULUMI_BACKEND_URL%%://*}:// backend: put the stack's passphrase (the GitHub secret PULUMI_CONFIG_PASSPHRASE) in $passphrase (0600), or set PULUMI_CONFIG_PASSPHRASE_FILE to the file that holds it; a new one would not open its stacks."
            ;;
    esac
    if [ ! -s "$passphrase" ]; then
        (umask 077 && head -c 32 /dev/urandom | base64 > "$passphrase")
        printf 'Generated a passphrase for the stack secrets in %s (0600): back it up apart from the state.\n' "$passphrase" >&2
    fi
    chmod 600 "$passphrase"
    export PULUMI_CONFIG_PASSPHRASE_FILE="$passphrase"
fi

# One home for odin's state (docs/github.md, "Where odin's state lives"): a file backend is this machine's
# alone (inside the repository, ~/.pulumi with file://~, anywhere: a path check could be walked round with
# a relative path, a symlink or ~), and two states of one stack replace each other's containers.
if [ "$stack" = odin ] && [ -z "${MRS_ALLOW_LOCAL_STATE:-}" ]; then
    case "$PULUMI_BACKEND_URL" in
        file://*)
            fail "odin's state would be $PULUMI_BACKEND_URL, a local file backend on this machine: odin has one state, shared with the GitHub deploy. Set PULUMI_BACKEND_URL to it (docs/github.md, \"Where odin's state lives\"), or set MRS_ALLOW_LOCAL_STATE=1 to use this local state anyway."
            ;;
    esac
fi
# The passphrase file, as pulumi (run from here) opens it: relative to this directory, symlinks resolved.
passfile="${PULUMI_CONFIG_PASSPHRASE_FILE:-}"
case "$passfile" in "" | /*) ;; *) passfile="$PWD/$passfile" ;; esac
[ -z "$passfile" ] || [ ! -d "$(dirname "$passfile")" ] ||
    passfile="$(cd "$(dirname "$passfile")" && pwd -P)/$(basename "$passfile")"
case "$passfile" in
    "$state"/* | "$(cd "$state" && pwd -P)"/*) fail "PULUMI_CONFIG_PASSPHRASE_FILE is $PULUMI_CONFIG_PASSPHRASE_FILE, inside the state directory $state: a copy of the state would open its secrets. Move the file out (e.g. to ~/.config/marvel-rivals-stats/passphrase, 0600) and point PULUMI_CONFIG_PASSPHRASE_FILE at it." ;;
esac
if ! pulumi stack select "$stack" >/dev/null 2>&1; then
    pulumi stack init "$stack" --secrets-provider passphrase
fi

lock_args=()
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --lock-wait | --lock-ttl)
            [ $# -ge 2 ] || fail "$1 needs a value, e.g. $1 60"
            lock_args+=("$1" "$2")
            shift 2
            ;;
        --lock-wait=* | --lock-ttl=*)
            lock_args+=("${1%%=*}" "${1#*=}")
            shift
            ;;
        *)
            args+=("$1")
            shift
            ;;
    esac
done
# MRS_DEPLOY_LOCK_HELD: the stack's lock is held already, by this script's own run below or by a script
# (npm run rollback, npm run rotate) for its pulumi runs; it is not taken twice.
case "${MRS_DEPLOY_LOCK_HELD:+held}${args[0]:-}" in
    held*) ;;
    up | update | destroy | refresh | import | state | watch)
        # One process holds the lock and runs this script again under it (node --import tsx: the tsx
        # launcher would add another process). ${a[@]+"${a[@]}"}: an empty array under `set -u` is an error
        # in bash 3.2 (macOS's /bin/bash).
        exec node --import tsx scripts/deployLock.ts run --stack "$stack" --what "${args[0]}" \
            ${lock_args[@]+"${lock_args[@]}"} -- env PULUMI_STACK="$stack" MRS_DEPLOY_LOCK_HELD="${args[0]}" \
            bash "$self" "${args[@]}"
        ;;
esac
# A rollback pins the app to a kept release (appImage, set by `npm run rollback`); a plain `up` deploys the
# code again, so it removes the pin first and says so: under the lock, so never between a rollback's
# `config set` and its `up`.
if [ "${args[0]:-}" = up ] && [ -z "${MRS_ROLLBACK:-}" ]; then
    if pinned="$(pulumi config get marvel-rivals-stats:appImage --stack "$stack" 2>/dev/null)" && [ -n "$pinned" ]; then
        printf 'The app was rolled back to %s (appImage): this up deploys the code again and removes the pin.\n' "$pinned" >&2
        pulumi config rm marvel-rivals-stats:appImage --stack "$stack"
    fi
fi
[ ${#lock_args[@]} -eq 0 ] ||
    fail "${lock_args[0]} is for the commands that change the stack (up, destroy, refresh, ...); ${args[0]:-this command} takes no lock."
exec pulumi ${args[@]+"${args[@]}"} --stack "$stack"
