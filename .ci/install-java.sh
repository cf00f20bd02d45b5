#!/usr/bin/env bash
# Java 17 for the DynamoDB Local tests (test/dynamodb-local), if it is not there
# yet. Idempotent and quiet; `apt-get update` only when apt has no candidate.
set -euo pipefail
command -v java >/dev/null 2>&1 && exit 0
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache policy openjdk-17-jre-headless 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  apt-get update -qq >/dev/null
fi
log=$(mktemp)
if ! apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
