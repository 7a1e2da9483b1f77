#!/usr/bin/env bash
# Makes the local images the Docker tests build Dockerfile.example from, with no registry, and prints
# them as that file's build arguments (BASE_IMAGE=... and BUILD_IMAGE=..., one a line):
#   BASE_IMAGE   Debian bookworm from debootstrap (the machine's apt mirror) with Sidekiq 6.4.1, bundler,
#                redis-server and python3, imported with `docker import`
#   BUILD_IMAGE  that image with npm and a C toolchain, to build drain-init's binary in
# Each is made only when missing.
set -euo pipefail

BASE_IMAGE=drain-init-test-base:bookworm
BUILD_IMAGE=drain-init-test-build:bookworm

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

if ! have "$BUILD_IMAGE"; then
  echo "images: building $BUILD_IMAGE (npm, python3, make, g++ from Debian)" >&2
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  # npm in the build trusts what this machine trusts (a proxy's CA, if the machine has one).
  cp /etc/ssl/certs/ca-certificates.crt "$context/host-ca.crt"
  cat >"$context/Dockerfile" <<DOCKERFILE
FROM $BASE_IMAGE
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm python3 make g++ ca-certificates >/dev/null && rm -rf /var/lib/apt/lists/*
COPY host-ca.crt /usr/local/share/host-ca.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/host-ca.crt
DOCKERFILE
  docker build --quiet --network host -t "$BUILD_IMAGE" "$context" >/dev/null
fi

echo "BASE_IMAGE=$BASE_IMAGE"
echo "BUILD_IMAGE=$BUILD_IMAGE"
