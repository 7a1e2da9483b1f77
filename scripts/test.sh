#!/usr/bin/env bash
# The whole test suite: set-up, type check, format check, then every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
hash -r
npm run --silent typecheck
prettier --check . >/dev/null || { prettier --check . 2>&1 | tail -n 20; echo "format: run npx prettier --write ." >&2; exit 1; }
results=.vitest-results.json
status=0
vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" || status=$?
# One plain closing line, whatever reads this output.
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed`)' "$results" || true
exit "$status"
