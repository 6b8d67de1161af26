#!/usr/bin/env bash
# Install the command-line validators `make test` runs that PyPI does not carry:
# promtool (Debian's prometheus package) checks and unit-tests the alert rules and the
# dashboard's queries; systemd-analyze (Debian's systemd) verifies the units. The rest
# (hadolint, compose, kubernetes-validate, the KEDA models) come with pyproject's dev
# extras. Fails, never skips, when one cannot be had.
set -u
export DEBIAN_FRONTEND=noninteractive
sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
ensure() {  # command, Debian package
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $1 (Debian package $2)"
  { $sudo_ apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1 ||
    { $sudo_ apt-get update -qq && $sudo_ apt-get install -y --no-install-recommends "$2"; }
  } || true
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "ERROR: $1 is missing and could not be installed (apt-get install $2)" >&2
  return 1
}
ok=0
ensure promtool prometheus || ok=1
ensure systemd-analyze systemd || ok=1
exit $ok
