#!/bin/sh
# Starts bitcoind on NETWORK (regtest, signet, testnet4 or mainnet). Writes
# bitcoin.conf from the environment on every start: the RPC credentials as
# `rpcauth` (a salted HMAC-SHA256 of the password, as Bitcoin Core's
# share/rpcauth/rpcauth.py makes it), never the password itself; the local
# bitcoin-cli authenticates with the cookie file bitcoind writes in the data
# dir. Creates or loads the descriptor wallet(s) in WALLETS. On regtest only:
# on first start mines 101 blocks so the first coinbase is spendable, then
# runs a miner.
# Environment:
#   RPC_USER, RPC_PASSWORD  (required; ECS secrets)
#   NETWORK                 regtest (default) | signet | testnet4 | mainnet
#   DATA_DIR (/data), RPC_PORT (the network's default), RPC_BIND (0.0.0.0),
#   RPC_ALLOW_IP (VPC CIDR; 127.0.0.1), P2P_PORT (the network's default)
#   WALLETS                 comma-separated (oc); the first gets the regtest coins
#   PRUNE                   MiB of blocks to keep (0 = full node; >= 550; not on regtest;
#                           a pruned node has no txindex)
#   PEERS                   "none": no outbound or inbound peers (offline tests)
#   BITCOIN_BIN_DIR         folder holding bitcoind and bitcoin-cli (default: PATH)
#   MINE_INTERVAL           regtest: seconds between blocks while the mempool is not empty (30; 0 disables)
#   RPC_READER_USER, RPC_READER_PASSWORD  optional: the read-only RPC user (reader.sh)
set -eu

: "${RPC_USER:?RPC_USER is required}"
: "${RPC_PASSWORD:?RPC_PASSWORD is required}"
if [ -n "${BITCOIN_BIN_DIR:-}" ]; then PATH="$BITCOIN_BIN_DIR:$PATH"; export PATH; fi
DATA_DIR="${DATA_DIR:-/data}"
NETWORK="${NETWORK:-regtest}"
case "$NETWORK" in
  regtest)  chain=regtest;  default_rpc=18443 ;;
  signet)   chain=signet;   default_rpc=38332 ;;
  testnet4) chain=testnet4; default_rpc=48332 ;;
  mainnet)  chain=main;     default_rpc=8332 ;;
  *) echo "NETWORK must be regtest, signet, testnet4 or mainnet (got $NETWORK)" >&2; exit 2 ;;
esac
RPC_PORT="${RPC_PORT:-$default_rpc}"
RPC_BIND="${RPC_BIND:-0.0.0.0}"
RPC_ALLOW_IP="${RPC_ALLOW_IP:-127.0.0.1}"
WALLETS="${WALLETS:-oc}"
PRUNE="${PRUNE:-0}"
case "$PRUNE" in ''|*[!0-9]*) echo "PRUNE must be a number of MiB (got $PRUNE)" >&2; exit 2 ;; esac
if [ "$PRUNE" -gt 0 ]; then
  if [ "$NETWORK" = regtest ]; then echo "PRUNE is not allowed on regtest" >&2; exit 2; fi
  # Bitcoin Core refuses prune below 550 MiB (-prune help text).
  if [ "$PRUNE" -lt 550 ]; then echo "PRUNE must be 0 or at least 550 (MiB), got $PRUNE" >&2; exit 2; fi
  # -prune is incompatible with -txindex.
  blocks="prune=$PRUNE
txindex=0"
else
  blocks="txindex=1"
fi

# rpcauth=<user>:<salt>$<hmac>: hmac = HMAC-SHA256(key = the salt's hex text, message = the password).
salt=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
hmac=$(printf '%s' "$RPC_PASSWORD" | openssl dgst -sha256 -hmac "$salt" -r | cut -d' ' -f1)
case "$hmac" in ''|*[!0-9a-f]*) echo "could not compute rpcauth" >&2; exit 1 ;; esac

peers=""
if [ "${PEERS:-}" = none ]; then
  peers="connect=0
listen=0
dnsseed=0
fixedseeds=0
listenonion=0
discover=0
natpmp=0"
fi
p2p=""
if [ -n "${P2P_PORT:-}" ]; then p2p="port=$P2P_PORT"; fi
fees=""
# regtest has no fee estimates; the back-end passes an explicit fee_rate anyway (adapters/payments).
if [ "$NETWORK" = regtest ]; then fees="fallbackfee=0.0002"; fi

umask 077
cat > "$DATA_DIR/bitcoin.conf" <<CONF
chain=$chain
server=1
$blocks
$fees
printtoconsole=1
[$chain]
rpcauth=$RPC_USER:$salt\$$hmac
rpcbind=$RPC_BIND
rpcallowip=$RPC_ALLOW_IP
rpcport=$RPC_PORT
$p2p
$peers
CONF

# --- read-only RPC user (issue 13, least privilege) ----------------------------
# RPC_READER_USER / RPC_READER_PASSWORD (ECS secrets, optional): a second RPC
# user limited by rpcwhitelist to node-level reads (reader.sh), for the functions
# that only read; appended to the [regtest] section written above.
if [ -n "${RPC_READER_USER:-}" ]; then
  /usr/local/bin/reader.sh >> "$DATA_DIR/bitcoin.conf"
fi
# --- end of the read-only RPC user ------------------------------------------------

bitcoind -datadir="$DATA_DIR" &
pid=$!
trap 'bitcoin-cli -datadir="$DATA_DIR" stop >/dev/null 2>&1 || kill "$pid"; s=0; wait "$pid" || s=$?; exit "$s"' TERM INT

cli() { bitcoin-cli -datadir="$DATA_DIR" "$@"; }
cli -rpcwait -rpcwaittimeout=120 getblockchaininfo >/dev/null

first=""
for wallet in $(echo "$WALLETS" | tr ',' ' '); do
  [ -n "$first" ] || first="$wallet"
  if cli listwalletdir | grep -q "\"name\": \"$wallet\""; then
    cli loadwallet "$wallet" >/dev/null 2>&1 || true   # already loaded is fine
  else
    cli -named createwallet wallet_name="$wallet" descriptors=true load_on_startup=true >/dev/null
  fi
done
echo "bitcoind on $NETWORK: wallets $WALLETS ready"

if [ "$NETWORK" = regtest ]; then
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
fi

wait "$pid"
