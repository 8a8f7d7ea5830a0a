#!/usr/bin/env bash
# Set-up, then every test (real Nix, real servers on 127.0.0.1), then the tests that lean on Nix
# most (crawl, fetch through Nix, binary cache substituted by Nix, Nix's version) again with
# Debian 13's Nix 2.26 first on PATH (scripts/ensure-nix-2.26.sh; a few minutes the first time).
# Ends with a plain "N passed, N failed" line per Nix. With arguments (files, a -t filter) only the
# first run happens, with exactly those.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/ensure-test-tools.sh   # host tools the test package set's FOD builders and test servers borrow
bash scripts/ensure-nginx.sh >/dev/null   # once, before test files run in parallel (one apt-get at a time)
bash scripts/ensure-chromium.sh >/dev/null   # Debian's Chromium for test/dashboard.test.ts (never a downloaded browser)
# the tests are type-checked too (vitest only strips types): a misspelt field is an error, not an assertion on undefined
npx tsc -p test/tsconfig.json
# the layering (docs/architecture.md): a backwards import or a cycle fails here, before any test runs
npm run --silent lint:deps
# ESLint (eslint.config.js) over the code, the tests and the benchmarks
npm run --silent lint
# Prettier (prettier.config.js): the code as it formats it
npm run --silent format:check >/dev/null || { npm run --silent format:check; exit 1; }

# the test files run again with Nix 2.26: what spawns Nix the most, chosen for coverage per minute
NIX226_TESTS=(
  test/crawl-fixture.test.ts   # a crawl of the test package set, checked against Nix's own reading of the .drv files
  test/crawl-mechanics.test.ts # uncatchable errors, restarts, caps: the walker against Nix's error output
  test/e2e-mirror.test.ts      # fetch, the hashed mirror and the signed binary cache, realised by Nix offline
  test/archive-nix.test.ts     # the nix fallback: import, build, dump-path, hash mismatch
  test/binary-cache.test.ts    # Nix substitutes from the cache fodder writes, checks its signatures
  test/mirror-nix.test.ts      # builtin:fetchurl from the mirror as hashed-mirrors
  test/drv-parse.test.ts       # .drv files as Nix writes and shows them
  test/nix-version.test.ts     # --version, the summary's nix field, lib/minver.nix
  test/nix-error.test.ts       # the line of Nix's error messages that lists and reports show
  test/cli-errors.test.ts      # bad input: Nix's refusals (an unknown system, a package set that does not load) in one line
  test/sources-targets.test.ts # targets evaluated now: --expr, --file, a NixOS configuration, a flake (flakes differ most between versions)
  test/offgrid.test.ts         # a season off the grid: bundle for a NixOS configuration, import, realised by Nix from the island's mirror
)

# runs vitest with the given arguments; prints the summary line and returns vitest's status
run_vitest() {
  local label="$1"; shift
  local results code
  results="$(mktemp -t fodder-vitest-XXXXXX.json)"
  set +e
  npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@"
  code=$?
  set -e
  node -e '
    const fs = require("fs");
    const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`tests (${process.argv[2]}): ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
    fs.appendFileSync(process.argv[3], `${r.numPassedTests} ${r.numFailedTests} ${skipped}\n`);
    // each failed test again, with the first lines of its failure, for the end of the log
    const failed = (where, message) =>
      fs.appendFileSync(process.argv[4], `FAILED (${process.argv[2]}) ${where}\n    ${(message ?? "").split("\n").slice(0, 6).join("\n    ")}\n`);
    for (const file of r.testResults) {
      const name = file.name.replace(process.cwd() + "/", "");
      const tests = file.assertionResults.filter((a) => a.status === "failed");
      for (const t of tests) failed(`${name} > ${t.fullName}`, t.failureMessages[0]);
      if (file.status === "failed" && tests.length === 0) failed(name, file.message);
    }
  ' "$results" "$label" "$totals" "$failures" 2>/dev/null || true
  rm -f "$results"
  return $code
}

code=0
totals="$(mktemp -t fodder-test-totals-XXXXXX)"
failures="$(mktemp -t fodder-test-failures-XXXXXX)"
first="$(nix-instantiate --version | sed 's/.* //')"
run_vitest "Nix $first" "$@" || code=$?
if [ $# = 0 ]; then
  nix226="$(bash scripts/ensure-nix-2.26.sh | tail -n 1)"
  started=$(date +%s)
  PATH="$nix226:$PATH" run_vitest "Nix $("$nix226/nix-instantiate" --version | sed 's/.* //')" "${NIX226_TESTS[@]}" || code=$?
  echo "(the Nix 2.26 run took $(( $(date +%s) - started )) s)"
fi
# the failed tests, named, where the end of a long log shows them, then the closing line: both runs together
cat "$failures"
rm -f "$failures"
awk '{ p += $1; f += $2; s += $3 } END { printf "tests: %d passed, %d failed%s\n", p, f, (s ? sprintf(", %d skipped", s) : "") }' "$totals"
rm -f "$totals"
exit $code
