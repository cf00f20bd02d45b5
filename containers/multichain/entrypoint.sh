#!/bin/sh
# Starts multichaind, either creating a chain or joining an existing one.
#
# Create (JOIN_CHAIN unset): on first start (no params.dat on the data volume)
# it creates the chain closed to outsiders; on every start it makes sure the
# streams the back-end uses exist (write-restricted) and are subscribed.
#
# Join (JOIN_CHAIN=host:port of a node of an existing chain): on first start it
# fetches the chain's parameters from that node (multichaind C@host:port),
# which prints this node's new address and exits with status 1; the address
# is stored in $DATA_DIR/address and logged with the grant command the
# chain's admin runs (grant.sh grant <address> on the creating side). Until
# the grant arrives it retries every GRANT_POLL seconds. The first real start
# after the grant passes no -addnode (shared/notes/real-nodes.md: the extra
# connection can stall every link to the seed for ~60 s); the seed is added
# as a lasting peer by RPC afterwards, and later restarts pass -addnode.
#
# Environment: CHAIN_NAME, RPC_USER, RPC_PASSWORD (ECS secrets), RPC_ALLOW_IP
# (the VPC CIDR), DATA_DIR, RPC_PORT, P2P_PORT, JOIN_CHAIN (host:port),
# EXTERNAL_IP (the address other nodes reach this one at), RPC_BIND and
# P2P_BIND (listen addresses; all interfaces when unset), TARGET_BLOCK_TIME
# (seconds, create only; the MultiChain default of 15 when unset),
# GRANT_POLL (seconds between join attempts, 15), NODES_BIN (folder holding
# multichaind, multichain-util and multichain-cli; PATH when unset).
set -eu

: "${CHAIN_NAME:?CHAIN_NAME is required}"
: "${RPC_USER:?RPC_USER is required}"
: "${RPC_PASSWORD:?RPC_PASSWORD is required}"
DATA_DIR="${DATA_DIR:-/data}"
RPC_PORT="${RPC_PORT:-8570}"
P2P_PORT="${P2P_PORT:-8571}"
RPC_ALLOW_IP="${RPC_ALLOW_IP:-127.0.0.1}"
JOIN_CHAIN="${JOIN_CHAIN:-}"
GRANT_POLL="${GRANT_POLL:-15}"
STREAMS="domains obligations settlements"
CHAIN_DIR="$DATA_DIR/$CHAIN_NAME"
OUT="$DATA_DIR/multichaind.out"
if [ -n "${NODES_BIN:-}" ]; then PATH="$NODES_BIN:$PATH"; export PATH; fi

# Options of every start; values never hold spaces (ports, addresses, a path without blanks).
OPTS="-datadir=$DATA_DIR -rpcport=$RPC_PORT -port=$P2P_PORT -discover=0 -upnp=0"
[ -z "${RPC_BIND:-}" ] || OPTS="$OPTS -rpcbind=$RPC_BIND"
[ -z "${P2P_BIND:-}" ] || OPTS="$OPTS -bind=$P2P_BIND"
[ -z "${EXTERNAL_IP:-}" ] || OPTS="$OPTS -externalip=$EXTERNAL_IP"

set_param() { # set_param NAME VALUE: rewrite "name = value   # comment" in params.dat
  sed -i "s|^\($1[[:space:]]*=[[:space:]]*\)[^[:space:]#]*|\1$2|" "$CHAIN_DIR/params.dat"
  grep -q "^$1[[:space:]]*=[[:space:]]*$2" "$CHAIN_DIR/params.dat" || { echo "could not set $1" >&2; exit 1; }
}

write_conf() { # credentials come from Secrets Manager at every start; never baked into the image
  (
    umask 077
    cat > "$CHAIN_DIR/multichain.conf" <<CONF
rpcuser=$RPC_USER
rpcpassword=$RPC_PASSWORD
rpcallowip=$RPC_ALLOW_IP
rpcport=$RPC_PORT
CONF
  )
}

cli() { multichain-cli -datadir="$DATA_DIR" -rpcport="$RPC_PORT" "$CHAIN_NAME" "$@"; }

pid=""
shutdown() { # SIGTERM/SIGINT: stop the node cleanly and exit with its status (0 after a clean stop)
  trap - TERM INT
  status=0
  if [ -n "$pid" ]; then
    cli stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    wait "$pid" || status=$?
  fi
  exit "$status"
}
trap shutdown TERM INT

start_node() { # start_node TARGET [OPTION...]: multichaind in the background, its output streamed to ours
  : > "$OUT"
  # shellcheck disable=SC2086 # OPTS is a list of options
  multichaind "$@" $OPTS -printtoconsole > "$OUT" 2>&1 < /dev/null &
  pid=$!
  tail -n +1 -f --pid="$pid" "$OUT" &
}

wait_rpc() { # 0 once the node answers RPC; 1 when it exited first (its status in $exited)
  tries=0
  until cli getinfo >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      exited=0
      wait "$pid" || exited=$?
      pid=""
      return 1
    fi
    tries=$((tries + 1))
    if [ "$tries" -gt 600 ]; then echo "multichaind did not answer RPC" >&2; exit 1; fi
    sleep 0.2
  done
}

printed_address() { sed -n 's/.*grant \([1-9A-HJ-NP-Za-km-z]\{20,\}\) connect.*/\1/p' "$OUT" | head -n 1; }

if [ -z "$JOIN_CHAIN" ]; then
  if [ ! -f "$CHAIN_DIR/params.dat" ]; then
    echo "creating chain $CHAIN_NAME in $DATA_DIR"
    multichain-util create "$CHAIN_NAME" -datadir="$DATA_DIR"
    set_param anyone-can-connect false
    set_param anyone-can-send false
    set_param anyone-can-receive false
    set_param anyone-can-create false
    set_param anyone-can-issue false
    set_param anyone-can-mine false
    set_param default-rpc-port "$RPC_PORT"
    set_param default-network-port "$P2P_PORT"
    [ -z "${TARGET_BLOCK_TIME:-}" ] || set_param target-block-time "$TARGET_BLOCK_TIME"
  fi
  write_conf
  start_node "$CHAIN_NAME"
  wait_rpc || { echo "multichaind exited with status $exited" >&2; exit 1; }
  # A chain less than ~1 s old answers RPC before its wallet holds a confirmed
  # output; `create` would fail with -704 (real-nodes.md): wait for one.
  tries=0
  until [ "$(cli listunspent 1 2>/dev/null | grep -c '"txid"')" -gt 0 ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 600 ]; then echo "no confirmed output on the new chain" >&2; exit 1; fi
    sleep 0.2
  done
  for stream in $STREAMS; do
    if ! cli liststreams "$stream" >/dev/null 2>&1; then
      # "false": write-restricted stream, only addresses with <stream>.write may publish.
      cli create stream "$stream" false >/dev/null
    fi
  done
  cli getaddresses | sed -n 's/.*"\([1-9A-HJ-NP-Za-km-z]\{20,\}\)".*/\1/p' | head -n 1 > "$DATA_DIR/address"
else
  joined="$DATA_DIR/.oc-joined"
  if [ -f "$joined" ]; then
    write_conf
    # Later restarts may pass -addnode safely (real-nodes.md).
    start_node "$CHAIN_NAME" -addnode="$JOIN_CHAIN"
    wait_rpc || { echo "multichaind exited with status $exited" >&2; exit 1; }
  else
    # No params.dat yet: fetch them from the seed. Afterwards start by name, without -addnode.
    target="$CHAIN_NAME@$JOIN_CHAIN"
    if [ -f "$CHAIN_DIR/params.dat" ]; then target="$CHAIN_NAME"; write_conf; fi
    until start_node "$target" && wait_rpc; do
      address=$(printed_address)
      if [ -z "$address" ]; then
        echo "joining $CHAIN_NAME at $JOIN_CHAIN failed (multichaind status $exited); retrying in $GRANT_POLL s" >&2
      else
        if [ ! -f "$DATA_DIR/address" ] || [ "$(cat "$DATA_DIR/address")" != "$address" ]; then
          echo "$address" > "$DATA_DIR/address"
        fi
        echo "node address $address: waiting for the chain's admin to run: grant.sh grant $address"
      fi
      if [ -f "$CHAIN_DIR/params.dat" ]; then target="$CHAIN_NAME"; write_conf; fi
      sleep "$GRANT_POLL" &
      wait $! || true
    done
    touch "$joined"
    cli addnode "$JOIN_CHAIN" add >/dev/null 2>&1 || true # a lasting peer (-23 "already added" is fine)
  fi
  cli getaddresses | sed -n 's/.*"\([1-9A-HJ-NP-Za-km-z]\{20,\}\)".*/\1/p' | head -n 1 > "$DATA_DIR/address"
  # The streams come with the chain; wait until this node has them before subscribing.
  tries=0
  for stream in $STREAMS; do
    until cli liststreams "$stream" >/dev/null 2>&1; do
      tries=$((tries + 1))
      if [ "$tries" -gt 1500 ]; then echo "stream $stream never reached this node" >&2; exit 1; fi
      sleep 0.2
    done
  done
fi

# One subscribe call with every stream as a JSON array: as separate arguments
# the third is read as an Enterprise-only option (-702, real-nodes.md).
list=""
for stream in $STREAMS; do list="$list${list:+,}\"$stream\""; done
cli subscribe "[$list]" >/dev/null
echo "chain $CHAIN_NAME ready, address $(cat "$DATA_DIR/address"), streams: $STREAMS"

wait "$pid"
