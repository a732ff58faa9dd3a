#!/usr/bin/env bash
# The base image the container tests build on, made from Debian's packages (nothing can be
# pulled from an image registry on the project's machines): `debootstrap --variant=minbase
# bookworm`, then `docker import`. The root file system is cached as a tarball under
# $TRIBUTARY_DOCKER_CACHE (default ~/.cache/tributary-docker) and reused; an image already in
# the engine is reused as it is. Prints the image name on its last line.
#
# Elsewhere, build deploy/Dockerfile with its default BASE_IMAGE (debian:bookworm-slim).
set -euo pipefail
image="${TRIBUTARY_BASE_IMAGE:-tributary-base:bookworm}"
cache="${TRIBUTARY_DOCKER_CACHE:-$HOME/.cache/tributary-docker}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
tarball="$cache/bookworm-minbase.tar"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
  if ! command -v debootstrap >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing debootstrap from Debian's packages" >&2
      apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >&2
    else
      echo "debootstrap is missing: install it (apt-get install debootstrap) or build" \
           "deploy/Dockerfile with --build-arg BASE_IMAGE=<an image you have>" >&2
      exit 1
    fi
  fi
  [ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  echo "debootstrap --variant=minbase bookworm (a few minutes, once)" >&2
  # curl: the image's HEALTHCHECK asks /health with it.
  debootstrap --variant=minbase --include=ca-certificates,curl bookworm "$rootfs" "$mirror" >&2
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
docker import "$tarball" "$image" >&2
echo "$image"
