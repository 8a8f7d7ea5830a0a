#!/usr/bin/env bash
# Installs the Debian packages whose programs the test package set's FOD builders and
# test servers borrow from the host (test/fixtures/nixpkgs: its bootstrap is impure on
# purpose, wrapping /usr/bin tools so FOD builders run offline with real Nix), and that
# test/fixtures/upstream/regen.sh uses. Idempotent: installs only what is missing, as root
# or via sudo.
set -euo pipefail
# program (looked up where the fixture's wrappers look: /usr/bin /bin /usr/sbin /sbin) -> package
PROGRAMS=(
  curl:curl               # fetchurl's builder (fetchzip, fetchpatch)
  unzip:unzip             # fetchzip of .zip archives
  zip:zip                 # regen.sh
  lsdiff:patchutils       # fetchpatch's normalisation
  filterdiff:patchutils
  git:git                 # fetchgit
  hg:mercurial            # fetchhg (static-http:// from the upstream HTTP server)
  svn:subversion          # fetchsvn
  svnadmin:subversion     # make-svn.sh
  svnserve:subversion     # the fixture's svn server
  tar:tar
  gzip:gzip
  bzip2:bzip2
  xz:xz-utils
  zstd:zstd               # the binary cache's zstd compression (test/binary-cache.test.ts)
)
have() {
  local d
  for d in /usr/bin /bin /usr/sbin /sbin; do
    if [ -x "$d/$1" ] && [ ! -d "$d/$1" ]; then return 0; fi
  done
  return 1
}
missing=()
for entry in "${PROGRAMS[@]}"; do
  prog=${entry%%:*}
  pkg=${entry#*:}
  if ! have "$prog"; then
    case " ${missing[*]:-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done
if [ ${#missing[@]} = 0 ]; then exit 0; fi
echo "fodder: installing the test package set's host tools: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "fodder: need root (or sudo) to install: apt-get install ${missing[*]}" >&2; exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "fodder: no apt-get here; install these (Debian names) by hand: ${missing[*]}" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
for entry in "${PROGRAMS[@]}"; do
  prog=${entry%%:*}
  have "$prog" || { echo "fodder: ${entry#*:} installed but $prog is not in /usr/bin" >&2; exit 1; }
done
