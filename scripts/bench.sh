#!/usr/bin/env bash
# Benchmarks: set-up (packages, npm dependencies, build), then each benchmark in turn, run by Node 24.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
hash -r

# One line per benchmark; append new ones below.
node scripts/bench/init-core.ts
node scripts/bench/stop.ts
node scripts/bench/redis-beat.ts
node scripts/bench/chaos.ts
node scripts/bench/endpoint.ts
node scripts/bench/probe.ts
node scripts/bench/relay.ts
node scripts/bench/release.ts
node scripts/bench/redis-faults.ts
