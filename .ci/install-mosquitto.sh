#!/usr/bin/env bash
# Install Debian's mosquitto broker for the MQTT5 + mTLS link tests (test/mqtt5),
# if it is not there yet. Idempotent and quiet. Runs `apt-get update` only when apt
# has no candidate for the package. Leaves no broker running: the tests start their
# own instance with their own config; Debian's default service is kept from starting
# (policy-rc.d) and stopped if it started anyway.
set -euo pipefail

have_broker() { command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; }
have_broker && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install-mosquitto: not root and no sudo; cannot install mosquitto" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive

# Keep invoke-rc.d from starting the packaged service (exit 101 = "action forbidden").
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  ADDED_POLICY=1
fi
LOG="$(mktemp)"
cleanup() {
  if [ -n "$ADDED_POLICY" ]; then $SUDO rm -f "$POLICY"; fi
  rm -f "$LOG"
}
trap cleanup EXIT
# Quiet on success; apt's output is shown only when a step fails.
quietly() { "$@" >"$LOG" 2>&1 || { cat "$LOG" >&2; echo "install-mosquitto: failed: $*" >&2; exit 1; }; }

has_candidate() { apt-cache policy mosquitto 2>/dev/null | grep -Eq 'Candidate: [0-9]'; }
if ! has_candidate; then
  quietly $SUDO apt-get update -qq
fi
quietly $SUDO apt-get install -y -qq --no-install-recommends mosquitto

# If a default instance started anyway (a system with a working init), stop it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
PIDFILE=/run/mosquitto/mosquitto.pid
if [ -s "$PIDFILE" ]; then
  pid="$(cat "$PIDFILE")"
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "mosquitto" ]; then
    $SUDO kill "$pid" 2>/dev/null || true
  fi
fi

if ! have_broker; then
  echo "install-mosquitto: apt-get finished but mosquitto is missing" >&2
  exit 1
fi
echo "install-mosquitto: $( (command -v mosquitto || echo /usr/sbin/mosquitto) ) installed"
