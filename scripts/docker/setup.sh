#!/usr/bin/env bash
# Makes Docker ready for the Docker tests (test/docker/), as root: starts dockerd when no engine answers,
# with no bridge network (containers use the host's network, so nothing leaves loopback), then makes the
# local base images (images.sh). scripts/setup.sh installs docker.io, docker-compose and debootstrap.
# It does not fail the set-up: when Docker cannot run, the Docker tests fail and say why.
set -uo pipefail
cd "$(dirname "$0")/../.."

LOG=/var/log/drain-init-dockerd.log

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null; then echo "setup: no dockerd (apt-get install docker.io): the Docker tests will fail" >&2; exit 0; fi
  echo "setup: starting dockerd --bridge=none (log: $LOG)"
  nohup dockerd --bridge=none --iptables=false --ip6tables=false >"$LOG" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
fi
if ! docker info >/dev/null 2>&1; then
  echo "setup: dockerd did not start (see $LOG): the Docker tests will fail" >&2
  exit 0
fi
bash scripts/docker/images.sh >/dev/null || echo "setup: the Docker base images could not be made: the Docker tests will fail" >&2
