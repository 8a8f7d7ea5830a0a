#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed (test/dashboard.test.ts drives it through
# playwright-core; no browser is ever downloaded). Idempotent: installs only when missing.
# Prints the chromium binary's path last.
set -euo pipefail
source "$(dirname "$0")/apt-install.sh"
find_chromium() { command -v chromium 2>/dev/null || { [ -x /usr/bin/chromium ] && echo /usr/bin/chromium; } || true; }
bin="$(find_chromium)"
[ -n "$bin" ] || { apt_install chromium; bin="$(find_chromium)"; }
[ -n "$bin" ] || { echo "chromium not found after install" >&2; exit 1; }
echo "$bin"
