#!/usr/bin/env bash
# Set-up, then every test (real Nix, real servers on 127.0.0.1). Ends with a plain
# "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/ensure-test-tools.sh   # host tools the test package set's FOD builders and test servers borrow
bash scripts/ensure-nginx.sh >/dev/null   # once, before test files run in parallel (one apt-get at a time)
# the tests are type-checked too (vitest only strips types): a misspelt field is an error, not an assertion on undefined
npx tsc -p test/tsconfig.json
results="$(mktemp -t fodder-vitest-XXXXXX.json)"
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@"
code=$?
set -e
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$results" 2>/dev/null || true
rm -f "$results"
exit $code
