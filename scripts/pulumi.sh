#!/usr/bin/env bash
# Runs a Pulumi command for this project with no Pulumi Cloud account: state in ./.pulumi-state (a local
# file backend), secrets encrypted with a passphrase. Usage: scripts/pulumi.sh up|preview|destroy [args]
# The commands that change the stack (up, destroy, refresh, import, state, watch) run under its deploy lock
# (scripts/deployLock.ts, docs/deploys.md "One change at a time"); `--lock-wait SECONDS` and `--lock-ttl 60m` are the
# lock's options, taken out before Pulumi sees the arguments.
# Stack: `--stack NAME` anywhere in the arguments (default dev; $PULUMI_STACK is how the scripts that run
# this one under a lock hand it down), e.g. `npm run up -- --stack odin`.  Passphrase: $PULUMI_CONFIG_PASSPHRASE(_FILE), else one is generated
# into .pulumi-state/passphrase on first use (back it up with the state: it decrypts the stack's secrets).
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
    passphrase="$state/passphrase"
    if [ ! -s "$passphrase" ]; then
        (umask 077 && head -c 32 /dev/urandom | base64 > "$passphrase")
        printf 'Generated a passphrase for the stack secrets in %s: back it up with %s.\n' "$passphrase" "$state" >&2
    fi
    export PULUMI_CONFIG_PASSPHRASE_FILE="$passphrase"
fi

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
