#!/usr/bin/env bash
# Makes sure Debian's nginx is installed (tests and bench/fetch.ts serve files with it).
# Idempotent: installs only when missing. Prints the nginx binary's path last.
set -euo pipefail
find_nginx() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
bin="$(find_nginx)"
if [ -z "$bin" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends nginx-light >&2 \
    || { $SUDO apt-get update >&2 && $SUDO apt-get install -y --no-install-recommends nginx-light >&2; }
  # the package may start a system-wide nginx on port 80: tests run their own
  $SUDO service nginx stop >/dev/null 2>&1 || true
  bin="$(find_nginx)"
fi
[ -n "$bin" ] || { echo "nginx not found after install" >&2; exit 1; }
echo "$bin"
