#!/usr/bin/env bash
# Install the command-line validators `make test` runs that PyPI does not carry:
# promtool (Debian's prometheus package) checks and unit-tests the alert rules and the
# dashboard's queries. Fails, never skips, when it cannot be had.
set -u
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing promtool (Debian package prometheus)"
  export DEBIAN_FRONTEND=noninteractive
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  { $sudo_ apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 ||
    { $sudo_ apt-get update -qq && $sudo_ apt-get install -y --no-install-recommends prometheus; }
  } || true
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "ERROR: promtool is missing and could not be installed (apt-get install prometheus)" >&2
  exit 1
fi
