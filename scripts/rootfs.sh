#!/usr/bin/env bash
# Makes the root file systems the release tests run drain-init in as PID 1 (test/binary/), once per
# machine, in $ROOTFS_CACHE (default /var/cache/drain-init/rootfs), as root; never committed:
#   bookworm  Debian 12 (glibc 2.36), debootstrap minbase from the machine's apt mirror
#   bullseye  Debian 11 (glibc 2.31), the same
#   musl      musl only: Debian's musl (its loader and libc) and busybox-static, no glibc at all
# (The empty root file system, drain-init and the worker alone, is made by each test.) Each is made only
# when missing, in a temporary directory renamed into place when complete. Prints where they are.
set -euo pipefail

CACHE=${ROOTFS_CACHE:-/var/cache/drain-init/rootfs}
mkdir -p "$CACHE"

# The first mirror of the machine's apt sources, in deb822 (URIs:) or one-line (deb URL) format.
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p; s/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]*\)\{0,1\}\(http[^[:space:]]*\).*/\2/p' \
  /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -v security | grep debian | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

debian() {
  local suite=$1 dir=$CACHE/$1
  [ -x "$dir/bin/sh" ] && return
  command -v debootstrap >/dev/null || { echo "rootfs: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
  local work
  work=$(mktemp -d "$CACHE/.$suite.XXXXXX")
  echo "rootfs: debootstrap $suite from $mirror (about a minute)" >&2
  debootstrap --variant=minbase "$suite" "$work" "$mirror" >"$work.log" 2>&1 \
    || { echo "rootfs: debootstrap $suite failed, see $work.log" >&2; rm -rf "$work"; exit 1; }
  rm -rf "$work.log" "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/*
  chmod 755 "$work" && rm -rf "$dir" && mv "$work" "$dir"
}

musl() {
  local dir=$CACHE/musl
  [ -x "$dir/bin/busybox" ] && return
  local work debs
  work=$(mktemp -d "$CACHE/.musl.XXXXXX")
  debs=$(mktemp -d)
  echo "rootfs: musl and busybox-static from Debian" >&2
  (cd "$debs" && apt-get download musl busybox-static >/dev/null 2>&1) \
    || { apt-get update -qq && (cd "$debs" && apt-get download musl busybox-static >/dev/null); }
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$work"; done
  rm -rf "$debs"
  mkdir -p "$work/proc" "$work/dev" "$work/tmp" "$work/opt" "$work/sbin" "$work/usr/bin" "$work/usr/sbin"
  chroot "$work" /bin/busybox --install -s
  chmod 755 "$work" && rm -rf "$dir" && mv "$work" "$dir"
}

debian bookworm
debian bullseye
musl
echo "$CACHE"
