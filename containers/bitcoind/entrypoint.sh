#!/bin/sh
# Starts bitcoind in regtest. Writes bitcoin.conf from the environment on every
# start (credentials from the ECS secrets); on first start it creates the
# descriptor wallet(s) in WALLETS and mines 101 blocks so the first coinbase
# is spendable.
# Environment: RPC_USER, RPC_PASSWORD, RPC_ALLOW_IP (VPC CIDR), DATA_DIR,
# RPC_PORT, WALLETS (comma-separated, the first one gets the mined coins),
# MINE_INTERVAL (seconds between regtest blocks while the mempool is not empty; 30).
set -eu

: "${RPC_USER:?RPC_USER is required}"
: "${RPC_PASSWORD:?RPC_PASSWORD is required}"
DATA_DIR="${DATA_DIR:-/data}"
RPC_PORT="${RPC_PORT:-18443}"
RPC_ALLOW_IP="${RPC_ALLOW_IP:-127.0.0.1}"
WALLETS="${WALLETS:-oc}"
NETWORK="${NETWORK:-regtest}"
if [ "$NETWORK" != "regtest" ]; then echo "only regtest is supported (NETWORK=$NETWORK)" >&2; exit 1; fi

umask 077
cat > "$DATA_DIR/bitcoin.conf" <<CONF
regtest=1
server=1
txindex=1
fallbackfee=0.0002
printtoconsole=1
[regtest]
rpcuser=$RPC_USER
rpcpassword=$RPC_PASSWORD
rpcbind=0.0.0.0
rpcallowip=$RPC_ALLOW_IP
rpcport=$RPC_PORT
CONF

bitcoind -datadir="$DATA_DIR" &
pid=$!
trap 'bitcoin-cli -datadir="$DATA_DIR" stop >/dev/null 2>&1 || kill "$pid"; s=0; wait "$pid" || s=$?; exit "$s"' TERM INT

cli() { bitcoin-cli -datadir="$DATA_DIR" "$@"; }
cli -rpcwait -rpcwaittimeout=120 getblockchaininfo >/dev/null

first=""
for wallet in $(echo "$WALLETS" | tr ',' ' '); do
  [ -n "$first" ] || first="$wallet"
  if [ -d "$DATA_DIR/regtest/wallets/$wallet" ]; then
    cli loadwallet "$wallet" >/dev/null 2>&1 || true   # already loaded is fine
  else
    cli -named createwallet wallet_name="$wallet" descriptors=true load_on_startup=true >/dev/null
  fi
done

if [ ! -f "$DATA_DIR/.oc-initialised" ]; then
  address=$(cli -rpcwallet="$first" getnewaddress mining bech32)
  cli generatetoaddress 101 "$address" >/dev/null
  touch "$DATA_DIR/.oc-initialised"
  echo "regtest initialised: 101 blocks mined to wallet $first"
fi

# Regtest has no miners: mine a block whenever a transaction waits in the
# mempool, every MINE_INTERVAL seconds (0 disables), so settlements confirm.
MINE_INTERVAL="${MINE_INTERVAL:-30}"
if [ "$MINE_INTERVAL" -gt 0 ]; then
  miner=$(cli -rpcwallet="$first" getnewaddress mining bech32)
  (
    while kill -0 "$pid" 2>/dev/null; do
      sleep "$MINE_INTERVAL"
      size=$(cli getmempoolinfo 2>/dev/null | sed -n 's/.*"size": *\([0-9]*\).*/\1/p')
      if [ "${size:-0}" -gt 0 ]; then cli generatetoaddress 1 "$miner" >/dev/null 2>&1 || true; fi
    done
  ) &
fi

wait "$pid"
