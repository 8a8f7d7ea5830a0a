#!/usr/bin/env bash
# Set-up, then the main job on the bundled defaults: crawl the bundled test package set into
# data/fodder.db (a chroot store in data/store: no root, no daemon) and show what was found.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/src/cli/main.js crawl
echo
echo "\$ npx fodder sources hello"
node dist/src/cli/main.js sources hello
