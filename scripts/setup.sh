#!/usr/bin/env bash
# All set-up: Nix when missing, npm dependencies, the TypeScript build. Idempotent and quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-nix.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "fodder: installing npm dependencies" >&2
  # `npm install`, not `npm ci`: the lock file records only this platform's optional packages
  npm install --no-audit --no-fund --loglevel=error
fi
echo "fodder: building" >&2
npx tsc -p tsconfig.json
mkdir -p data
