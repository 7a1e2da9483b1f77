#!/usr/bin/env bash
# Makes the local base images of the Docker tests, with no registry, and prints them (NAME=image, one a
# line):
#   BASE_IMAGE   Debian bookworm from debootstrap (the machine's apt mirror) with Sidekiq 6.4.1, bundler,
#                redis-server and python3, imported with `docker import`: Dockerfile.example's base
#   MUSL_IMAGE   the musl-only root file system of scripts/rootfs.sh (Debian's musl and busybox-static),
#                imported: an image with no glibc, as Alpine's
# Each is made only when missing. (drain-init's own image, drain-init:<version>, is scripts/build/release.ts's.)
set -euo pipefail

BASE_IMAGE=drain-init-test-base:bookworm
MUSL_IMAGE=drain-init-test-musl:latest

have() { docker image inspect "$1" >/dev/null 2>&1; }

if ! have "$BASE_IMAGE"; then
  command -v debootstrap >/dev/null || { echo "images: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
  # The first mirror of the machine's apt sources, in deb822 (URIs:) or one-line (deb URL) format.
  mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p; s/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]*\)\{0,1\}\(http[^[:space:]]*\).*/\2/p' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -v security | head -n 1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  root=$(mktemp -d /var/tmp/drain-init-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  echo "images: debootstrap bookworm from $mirror (about a minute)" >&2
  debootstrap --variant=minbase --include=ruby-sidekiq,bundler,redis-server,python3-minimal bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { echo "images: debootstrap failed, see $root.log" >&2; exit 1; }
  rm -f "$root.log"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
  echo "images: imported $BASE_IMAGE" >&2
fi

if ! have "$MUSL_IMAGE"; then
  rootfs=$(bash "$(dirname "$0")/../rootfs.sh")
  tar -C "$rootfs/musl" -c . | docker import --change 'CMD ["/bin/sh"]' - "$MUSL_IMAGE" >/dev/null
  echo "images: imported $MUSL_IMAGE" >&2
fi

echo "BASE_IMAGE=$BASE_IMAGE"
echo "MUSL_IMAGE=$MUSL_IMAGE"
