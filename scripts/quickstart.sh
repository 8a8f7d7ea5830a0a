#!/usr/bin/env bash
# Set-up, then the main job on the bundled defaults: crawl the bundled test package set into
# data/fodder.db (no root, no daemon: Nix writes its .drv files into a scratch directory) and show
# what was found.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/src/cli/main.js crawl
echo
echo "\$ npx fodder sources hello"
node dist/src/cli/main.js sources hello
