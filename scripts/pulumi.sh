#!/usr/bin/env bash
# Runs a Pulumi command for this project with no Pulumi Cloud account: state in ./.pulumi-state (a local
# file backend), secrets encrypted with a passphrase. Usage: scripts/pulumi.sh up|preview|destroy [args]
# Stack: $PULUMI_STACK, default dev.  Passphrase: $PULUMI_CONFIG_PASSPHRASE(_FILE), else one is generated
# into .pulumi-state/passphrase on first use (back it up with the state: it decrypts the stack's secrets).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() { printf 'error: %s\n' "$*" >&2; exit 1; }
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

stack="${PULUMI_STACK:-dev}"
[ -f "Pulumi.$stack.yaml" ] || fail "no stack file Pulumi.$stack.yaml: PULUMI_STACK must be dev or odin (or add a stack file)."
if ! pulumi stack select "$stack" >/dev/null 2>&1; then
    pulumi stack init "$stack" --secrets-provider passphrase
fi
# A rollback pins the app to a kept release (appImage, set by `npm run rollback`); a plain `up` deploys the
# code again, so it removes the pin first and says so.
if [ "${1:-}" = up ] && [ -z "${MRS_ROLLBACK:-}" ]; then
    if pinned="$(pulumi config get marvel-rivals-stats:appImage --stack "$stack" 2>/dev/null)" && [ -n "$pinned" ]; then
        printf 'The app was rolled back to %s (appImage): this up deploys the code again and removes the pin.\n' "$pinned" >&2
        pulumi config rm marvel-rivals-stats:appImage --stack "$stack"
    fi
fi
exec pulumi "$@" --stack "$stack"
