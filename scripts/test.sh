#!/usr/bin/env bash
# The whole test suite: set-up, type check, then every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
hash -r
npm run --silent typecheck
vitest run "$@"
