#!/usr/bin/env bash
# Makes Debian 13's Nix (2.26) runnable on this machine, next to the host's Nix, and prints the
# directory of its commands on the last line. Putting that directory first on PATH (or in the
# config's `nix.bin`) makes fodder and its tests use Nix 2.26.
#
# How: a Debian 13 (trixie) root made with debootstrap (minbase) in $FODDER_NIX226_ROOT
# (default /var/cache/fodder/debian13), Debian's nix-bin installed in it, and a bin/ directory
# of wrapper scripts that run the root's `nix` binary on the host, without chroot, through the
# root's own loader and libraries. The Debian mirror is the one this machine's apt sources name.
# Idempotent; quick once done. Needs root (or sudo) and the Debian mirror the first time.
#
# The wrappers give Nix 2.26 a state directory and a configuration of its own (under the root),
# so it never reads, locks or upgrades the host Nix's database in /nix/var/nix: the two Nix
# versions keep separate databases. Both see the same /nix/store directory, so a local-store
# build or garbage collection by one may clash with paths the other registered; fodder and its
# tests use chroot stores (`--store DIR`) and file:// stores, which the two never share.
set -euo pipefail

ROOT="${FODDER_NIX226_ROOT:-/var/cache/fodder/debian13}"
SUITE=trixie
BIN="$ROOT/fodder-bin"
ARCH_LIBS="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu"
LOADER="$ROOT/lib64/ld-linux-x86-64.so.2"
STAMP="$BIN/.ready"
# bump when the wrappers or the configuration below change, so existing roots get them rewritten
WRAPPER_VERSION=6

say() { echo "fodder: $*" >&2; }

if [ "$(uname -m)" != x86_64 ]; then say "ensure-nix-2.26.sh supports x86_64 hosts only"; exit 1; fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WRAPPER_VERSION" ] && [ -x "$ROOT/usr/bin/nix" ]; then
  echo "$BIN"; exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    say "need root (or sudo) to make the Debian 13 root in $ROOT"; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive

# The Debian archive this machine's apt uses: the first `deb` source, one-line or deb822, whose
# suites include the host's own release (so not a -security or third-party archive).
host_mirror() {
  local codename
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI SUITE COMPONENTS...
    awk -v cn="$codename" '
      $1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == cn) { print $i; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # stanzas separated by blank lines; fields Types, URIs, Suites (may list several values)
    awk -v cn="$codename" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " cn " ") && enabled != "no" && uris != "") {
          split(uris, u, " "); print u[1]; found = 1; exit
        }
        types = ""; uris = ""; suites = ""; enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^[ \t]+/, ""); val = $0
        if (key == "types") types = val; else if (key == "uris") uris = val
        else if (key == "suites") suites = val; else if (key == "enabled") enabled = tolower(val)
      }
      END { if (!found) flush() }' "$f"
  done
}

if [ ! -x "$ROOT/usr/bin/nix" ]; then
  MIRROR="$(host_mirror | head -n 1)"
  if [ -z "$MIRROR" ]; then
    say "no Debian archive found in /etc/apt/sources.list or /etc/apt/sources.list.d/"; exit 1
  fi
  if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
    say "installing debootstrap"
    $SUDO apt-get install -y -qq debootstrap >/dev/null \
      || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq debootstrap >/dev/null; }
  fi
  DEBOOTSTRAP="$(command -v debootstrap || echo /usr/sbin/debootstrap)"
  if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ ! -f "$ROOT/.fodder-debootstrap-done" ]; then
    say "making a Debian 13 root in $ROOT from $MIRROR (a few minutes, once)"
    $SUDO rm -rf "$ROOT"
    $SUDO mkdir -p "$(dirname "$ROOT")"
    $SUDO "$DEBOOTSTRAP" --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >&2
    $SUDO touch "$ROOT/.fodder-debootstrap-done"
  fi
  say "installing nix-bin in $ROOT"
  # the chroot's apt needs /proc and name resolution; both are undone on exit
  $SUDO cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  mounted=""
  cleanup() { if [ -n "$mounted" ]; then $SUDO umount "$ROOT/proc" || true; fi; }
  trap cleanup EXIT
  if ! mountpoint -q "$ROOT/proc"; then $SUDO mount -t proc proc "$ROOT/proc" && mounted=1; fi
  $SUDO chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get -f install -y -qq && apt-get install -y -qq --no-install-recommends nix-bin' >&2
  cleanup; mounted=""; trap - EXIT
  [ -x "$ROOT/usr/bin/nix" ] || { say "nix-bin installed but $ROOT/usr/bin/nix is missing"; exit 1; }
fi

# Nix 2.26's own state and configuration, apart from the host Nix's /nix/var/nix and /etc/nix.
STATE="$ROOT/fodder-state"
CONF="$ROOT/fodder-etc"
$SUDO mkdir -p "$BIN" "$STATE" "$CONF"
# - sandbox off, as Debian 12's /etc/nix/nix.conf has it for 2.8: the test package set's builders
#   use the host's /usr/bin tools, which a sandbox would hide;
# - no experimental features, as Debian 13 ships it (it has no nix.conf): fodder passes
#   `--extra-experimental-features nix-command` itself, and the tests prove it does;
# - no substituters: only loopback may be contacted, and 2.26 would otherwise ask cache.nixos.org;
# - no build users group: 2.26 running as root would look one up (and the root's /etc/group
#   does not have the host's nixbld); builds run as the calling user;
# - sandbox-paths: Debian 13's default is `/bin/sh=/usr/bin/bash-static`, a path of the root, not
#   of this host; a build in a chroot store (`--store DIR`, which Nix always builds in a chroot
#   of its own) failed on it. The root's bash-static stands in.
# The build hook (below, in each wrapper) is this `nix` run again as `__build-remote`, which Nix
# finds through /proc/self/exe: here that is the loader, not nix, and every build failed with
# "unexpected EOF reading a line" from the hook. So the wrappers name themselves as the hook, in
# NIX_CONFIG: `nix` sets the hook after reading nix.conf, which therefore cannot (only
# NIX_CONFIG or --option can).
$SUDO tee "$CONF/nix.conf" >/dev/null <<EOF
# written by fodder's scripts/ensure-nix-2.26.sh for Debian 13's Nix run on the host
sandbox = false
substituters =
build-users-group =
sandbox-paths = /bin/sh=$ROOT/usr/bin/bash-static
EOF

# Every command of nix-bin is the one multi-call `nix` binary; the loader's --argv0 picks which.
# Each wrapper is a plain script, so a command's path (e.g. from `command -v`) is a real file.
COMMANDS=(nix nix-build nix-channel nix-collect-garbage nix-copy-closure nix-daemon nix-env
  nix-hash nix-instantiate nix-prefetch-url nix-shell nix-store)
for cmd in "${COMMANDS[@]}"; do
  $SUDO tee "$BIN/$cmd.tmp" >/dev/null <<EOF
#!/bin/sh
# Debian 13's $cmd (Nix 2.26) from $ROOT, run on the host through that root's loader.
export NIX_STATE_DIR="$STATE"
export NIX_CONF_DIR="$CONF"
export NIX_LOG_DIR="$STATE/log/nix"
export NIX_CONFIG="build-hook = $BIN/nix __build-remote\${NIX_CONFIG:+
\$NIX_CONFIG}"
exec "$LOADER" --library-path "$ARCH_LIBS" --argv0 "$cmd" "$ROOT/usr/bin/nix" "\$@"
EOF
  $SUDO chmod 755 "$BIN/$cmd.tmp"
  $SUDO mv -f "$BIN/$cmd.tmp" "$BIN/$cmd"
done

version="$("$BIN/nix-instantiate" --version)" || { say "$BIN/nix-instantiate does not run"; exit 1; }
case "$version" in *" 2.26"*) ;; *) say "expected Nix 2.26 in $ROOT, got: $version"; exit 1 ;; esac
echo "$WRAPPER_VERSION" | $SUDO tee "$STAMP" >/dev/null
say "$version ready"
echo "$BIN"
