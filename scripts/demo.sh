#!/usr/bin/env bash
# npm run demo: a real Sidekiq 6.4.1 under drain-init gets SIGTERM while jobs run; see scripts/demo/run.ts.
# Needs root (unshare --pid) and what scripts/setup.sh installs and builds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
hash -r
exec node scripts/demo/run.ts "$@"
