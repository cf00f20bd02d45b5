#!/bin/sh
# Starts multichaind. On first start (no params.dat on the data volume) it
# creates the chain closed to outsiders, and it makes sure the streams the
# back-end uses exist and are subscribed on every start.
# Environment: CHAIN_NAME, RPC_USER, RPC_PASSWORD (ECS secrets), RPC_ALLOW_IP
# (the VPC CIDR), DATA_DIR, RPC_PORT, P2P_PORT.
set -eu

: "${CHAIN_NAME:?CHAIN_NAME is required}"
: "${RPC_USER:?RPC_USER is required}"
: "${RPC_PASSWORD:?RPC_PASSWORD is required}"
DATA_DIR="${DATA_DIR:-/data}"
RPC_PORT="${RPC_PORT:-8570}"
P2P_PORT="${P2P_PORT:-8571}"
RPC_ALLOW_IP="${RPC_ALLOW_IP:-127.0.0.1}"
STREAMS="domains obligations settlements"
CHAIN_DIR="$DATA_DIR/$CHAIN_NAME"

set_param() { # set_param NAME VALUE: rewrite "name = value   # comment" in params.dat
  sed -i "s|^\($1[[:space:]]*=[[:space:]]*\)[^[:space:]#]*|\1$2|" "$CHAIN_DIR/params.dat"
  grep -q "^$1[[:space:]]*=[[:space:]]*$2" "$CHAIN_DIR/params.dat" || { echo "could not set $1" >&2; exit 1; }
}

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
fi

# Credentials come from Secrets Manager at every start; never baked into the image.
umask 077
cat > "$CHAIN_DIR/multichain.conf" <<CONF
rpcuser=$RPC_USER
rpcpassword=$RPC_PASSWORD
rpcallowip=$RPC_ALLOW_IP
rpcport=$RPC_PORT
CONF

multichaind "$CHAIN_NAME" -datadir="$DATA_DIR" -rpcport="$RPC_PORT" -port="$P2P_PORT" -printtoconsole &
pid=$!
trap 'multichain-cli -datadir="$DATA_DIR" "$CHAIN_NAME" stop >/dev/null 2>&1 || kill "$pid"; wait "$pid"' TERM INT

cli() { multichain-cli -datadir="$DATA_DIR" "$CHAIN_NAME" "$@"; }
tries=0
until cli getinfo >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -gt 120 ]; then echo "multichaind did not answer RPC" >&2; exit 1; fi
  kill -0 "$pid" 2>/dev/null || { echo "multichaind exited" >&2; exit 1; }
  sleep 1
done

for stream in $STREAMS; do
  if ! cli liststreams "$stream" >/dev/null 2>&1; then
    # "false": closed stream, only addresses with write permission may publish.
    cli create stream "$stream" false
  fi
  cli subscribe "$stream"
done
echo "chain $CHAIN_NAME ready, streams: $STREAMS"

wait "$pid"
