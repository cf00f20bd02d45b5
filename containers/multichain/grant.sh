#!/bin/sh
# Grant or revoke a hub's membership of this chain, on the creating (admin) node:
#   grant.sh grant  <address>   connect,send,receive, then <stream>.write on every project stream
#   grant.sh revoke <address>   the same permissions taken back
# One permission kind per call: `grant A s1.write,s2.write` fails (-708) and
# global and stream permissions cannot be mixed (shared/notes/real-nodes.md).
# Runs inside the multichain container (ECS Exec) or wherever multichain-cli
# reaches the node: CHAIN_NAME, DATA_DIR, RPC_PORT and NODES_BIN as for entrypoint.sh.
# Prints one txid per permission; a user error is one line on stderr and exit 2.
set -eu

usage() { echo "usage: grant.sh grant|revoke <address>" >&2; exit 2; }
[ "$#" -eq 2 ] || usage
action="$1"
address="$2"
case "$action" in grant | revoke) ;; *) usage ;; esac
# A MultiChain address is base58 (no 0, O, I or l); anything else is refused before any RPC.
if ! printf '%s' "$address" | grep -Eq '^[1-9A-HJ-NP-Za-km-z]{20,64}$'; then
  echo "grant.sh: not a MultiChain address: $address" >&2
  exit 2
fi
: "${CHAIN_NAME:?CHAIN_NAME is required}"
DATA_DIR="${DATA_DIR:-/data}"
RPC_PORT="${RPC_PORT:-8570}"
STREAMS="domains obligations settlements"
if [ -n "${NODES_BIN:-}" ]; then PATH="$NODES_BIN:$PATH"; export PATH; fi

cli() { multichain-cli -datadir="$DATA_DIR" -rpcport="$RPC_PORT" "$CHAIN_NAME" "$@"; }

writes=$(for s in $STREAMS; do printf '%s.write ' "$s"; done)
# Revoke the stream writes first: once connect is revoked the hub's node is
# cut off and would not even learn that it may no longer write.
if [ "$action" = grant ]; then permissions="connect,send,receive $writes"; else permissions="$writes connect,send,receive"; fi
for permission in $permissions; do
  txid=$(cli "$action" "$address" "$permission" | tail -n 1)
  echo "$action $permission $address $txid"
done
