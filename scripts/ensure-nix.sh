#!/usr/bin/env bash
# Installs Nix (Debian's nix-bin) when nix-instantiate is missing. Idempotent.
set -euo pipefail
if command -v nix-instantiate >/dev/null 2>&1; then exit 0; fi
echo "fodder: Nix is not installed; installing Debian's nix-bin" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "fodder: need root (or sudo) to install nix-bin: apt-get install nix-bin" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq nix-bin >/dev/null
command -v nix-instantiate >/dev/null || { echo "fodder: nix-bin installed but nix-instantiate is not on PATH" >&2; exit 1; }
