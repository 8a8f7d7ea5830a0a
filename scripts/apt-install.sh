# Sourced by the ensure-*.sh scripts: apt_install PACKAGE... installs Debian packages without
# their recommendations (as root, else through sudo), updating the package lists only when the
# first try fails. Its output goes to standard error.
apt_install() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "$@" >&2 \
    || { $sudo apt-get update >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "$@" >&2; }
}
