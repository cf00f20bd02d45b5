#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (test/web), if it is not there yet.
# Idempotent and quiet: does nothing when /usr/bin/chromium exists; runs `apt-get update`
# only when apt has no candidate for the package (an empty or stale package list).
set -euo pipefail

BROWSER=/usr/bin/chromium
[ -x "$BROWSER" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install-browser: not root and no sudo; cannot install chromium" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive

has_candidate() {
  apt-cache policy chromium 2>/dev/null | grep -Eq 'Candidate: [0-9]'
}

if ! has_candidate; then
  $SUDO apt-get update -qq >/dev/null
fi
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null

if [ ! -x "$BROWSER" ]; then
  echo "install-browser: apt-get finished but $BROWSER is missing" >&2
  exit 1
fi
echo "install-browser: $("$BROWSER" --version 2>/dev/null || echo chromium) installed"
