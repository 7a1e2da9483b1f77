#!/usr/bin/env bash
# Installs everything drain-init's build, demo, tests and benchmarks need on Debian 12, as root:
# Debian packages, the npm dependencies (Node 24 comes as the `node` package), then builds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(redis-server ruby-sidekiq tini dumb-init catatonit python3 make g++ util-linux procps openssl wrk
  # the Sentinel test (redis-sentinel) and the alert rules' test (promtool, from Debian's prometheus);
  # socat, the C proxy of the endpoint benchmark
  redis-sentinel prometheus socat
  # the single executables: the arm64 addon's cross compiler, and qemu to run the arm64 binary in a test
  gcc-aarch64-linux-gnu qemu-user libstdc++6-arm64-cross
  # the Docker tests: the engine, compose v1, and debootstrap for the base images and the release tests'
  # root file systems (scripts/rootfs.sh); the release's launcher and standalone libraries, and the
  # static worker of the release tests: glibc's static and arm64 development files
  docker.io docker-compose debootstrap libc6-dev libc6-dev-arm64-cross)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "setup: must run as root to install ${missing[*]}" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Debian services are not needed: tests start their own servers on free loopback ports.
for service in redis-server redis-sentinel prometheus; do systemctl disable --now "$service" >/dev/null 2>&1 || true; done

if ! command -v npm >/dev/null; then echo "setup: npm is required (Debian: apt-get install npm)" >&2; exit 1; fi
if [ ! -x node_modules/.bin/node ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies"
  npm install --no-audit --no-fund --loglevel=error
fi
export PATH="$PWD/node_modules/.bin:$PATH"
hash -r
echo "setup: building with $(node --version)"
npm run --silent build
node scripts/build/binary.ts >/dev/null
bash scripts/rootfs.sh >/dev/null
bash scripts/docker/setup.sh
