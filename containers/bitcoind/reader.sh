#!/bin/sh
# Prints the bitcoin.conf lines of bitcoind's read-only RPC user (issue 13,
# least privilege): an rpcauth entry for RPC_READER_USER / RPC_READER_PASSWORD
# (HMAC-SHA256 of the password keyed by a random salt, as share/rpcauth/rpcauth.py
# computes it: "rpcauth=<USERNAME>:<SALT>$<HASH>"), an rpcwhitelist naming the
# only calls that user may make, and rpcwhitelistdefault=0 so that the main
# user (rpcuser, which the functions that pay use) keeps every call.
# Bitcoin Core: "-rpcwhitelist=<whitelist>: Set a whitelist to filter incoming
# RPC calls for a specific user ... <USERNAME>:<rpc 1>,<rpc 2>,...,<rpc n>";
# a call outside it is refused with HTTP 403.
# Run by entrypoint.sh when RPC_READER_USER is set; test/real-nodes/reader.test.ts
# runs it against a real bitcoind.
set -eu
: "${RPC_READER_USER:?RPC_READER_USER is required}"
: "${RPC_READER_PASSWORD:?RPC_READER_PASSWORD is required}"

# Node-level reads, and the wallet reads the watching functions make (watch:
# listsinceblock, gettransaction; query: getbalances; loadwallet for a wallet the
# node has not loaded since a restart). No call that creates keys or addresses,
# shows private keys, signs, spends or backs a wallet up; no generate, no send,
# no control or network changes.
READER_CALLS="getblockchaininfo,getblockcount,getbestblockhash,getblockhash,getblockheader,getrawtransaction,gettxout,getmempoolinfo,getnetworkinfo,uptime,listsinceblock,gettransaction,getbalances,loadwallet"

salt=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
hash=$(printf '%s' "$RPC_READER_PASSWORD" | openssl dgst -sha256 -hmac "$salt" -r | cut -d' ' -f1)
printf 'rpcauth=%s:%s$%s\n' "$RPC_READER_USER" "$salt" "$hash"
printf 'rpcwhitelist=%s:%s\n' "$RPC_READER_USER" "$READER_CALLS"
printf 'rpcwhitelistdefault=0\n'
