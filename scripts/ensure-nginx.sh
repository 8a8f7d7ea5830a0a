#!/usr/bin/env bash
# Makes sure Debian's nginx is installed (tests and bench/fetch.ts serve files with it).
# Idempotent: installs only when missing. Prints the nginx binary's path last.
set -euo pipefail
source "$(dirname "$0")/apt-install.sh"
find_nginx() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
bin="$(find_nginx)"
if [ -z "$bin" ]; then
  apt_install nginx-light
  # the package may start a system-wide nginx on port 80: tests run their own
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO service nginx stop >/dev/null 2>&1 || true
  bin="$(find_nginx)"
fi
[ -n "$bin" ] || { echo "nginx not found after install" >&2; exit 1; }
echo "$bin"
