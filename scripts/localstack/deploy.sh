#!/usr/bin/env bash
# Deploy obligation-chain to LocalStack with cdklocal (npm: aws-cdk-local, which
# wraps the aws-cdk CLI installed in this project).
#
#   LOCALSTACK_PLAN=free (default): `-c target=localstack-free`, the stacks the
#     free plan can run: OcData (DynamoDB table) and OcFreeBackend (the Lambda
#     handlers and EventBridge schedules, RPC secrets in Secrets Manager). The
#     MultiChain and bitcoind nodes are yours to run; pass their endpoints and
#     credentials (reachable from LocalStack's Lambda containers):
#       MULTICHAIN_RPC_URL, MULTICHAIN_RPC_USER, MULTICHAIN_RPC_PASSWORD, MULTICHAIN_CHAIN_NAME,
#       BITCOIN_RPC_URL, BITCOIN_RPC_USER, BITCOIN_RPC_PASSWORD,
#       BITCOIN_READER_USER, BITCOIN_READER_PASSWORD (the read-only user, containers/bitcoind/reader.sh)
#     No HTTP API (API Gateway v2 is paid): invoke the functions with
#     `aws lambda invoke` and API Gateway v2-shaped events (docs/deploy.md).
#   LOCALSTACK_PLAN=paid: all four stacks (OcChain, OcData, OcBackend, OcIot).
#     Needs a plan with API Gateway v2, IoT Core, ECS/Fargate, EFS and Cloud Map,
#     and Docker to build the node images; the MultiChain build needs
#     MULTICHAIN_SHA256=<sha256 of multichain-2.3.3.tar.gz>.
# Not runnable on the project's build machine (no Docker engine, no LocalStack).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,19p' "$0"; exit 0 ;; esac
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/localstack/env.sh
. scripts/localstack/env.sh

# the plan and its variables are checked before anything is bootstrapped
case "${LOCALSTACK_PLAN:-free}" in
  free)
    need() { [ -n "${!1:-}" ] || { echo "set $1 (see the header of $0)" >&2; exit 2; }; }
    for v in MULTICHAIN_RPC_URL MULTICHAIN_RPC_USER MULTICHAIN_RPC_PASSWORD BITCOIN_RPC_URL BITCOIN_RPC_USER BITCOIN_RPC_PASSWORD BITCOIN_READER_USER BITCOIN_READER_PASSWORD; do need "$v"; done
    ;;
  paid) ;;
  *) echo "LOCALSTACK_PLAN is free or paid (got $LOCALSTACK_PLAN)" >&2; exit 2 ;;
esac

npx --no-install cdklocal --version >/dev/null 2>&1 || {
  echo "cdklocal not found: npm i -D aws-cdk-local (not a project dependency)" >&2
  exit 1
}
npx --no-install cdklocal bootstrap "aws://${CDK_DEFAULT_ACCOUNT}/${AWS_REGION}"

case "${LOCALSTACK_PLAN:-free}" in
  free)
    npx --no-install cdklocal deploy OcData OcFreeBackend -c target=localstack-free --require-approval never \
      --parameters "OcFreeBackend:MultichainRpcUrl=${MULTICHAIN_RPC_URL}" \
      --parameters "OcFreeBackend:MultichainChainName=${MULTICHAIN_CHAIN_NAME:-oc-chain}" \
      --parameters "OcFreeBackend:MultichainUser=${MULTICHAIN_RPC_USER}" \
      --parameters "OcFreeBackend:MultichainPassword=${MULTICHAIN_RPC_PASSWORD}" \
      --parameters "OcFreeBackend:BitcoinRpcUrl=${BITCOIN_RPC_URL}" \
      --parameters "OcFreeBackend:BitcoinUser=${BITCOIN_RPC_USER}" \
      --parameters "OcFreeBackend:BitcoinPassword=${BITCOIN_RPC_PASSWORD}" \
      --parameters "OcFreeBackend:BitcoinReaderUser=${BITCOIN_READER_USER}" \
      --parameters "OcFreeBackend:BitcoinReaderPassword=${BITCOIN_READER_PASSWORD}" \
      "$@"
    ;;
  paid)
    context=()
    if [ -n "${MULTICHAIN_SHA256:-}" ]; then context+=(-c "multichainSha256=${MULTICHAIN_SHA256}"); fi
    if [ -n "${BITCOIN_SHA256:-}" ]; then context+=(-c "bitcoinSha256=${BITCOIN_SHA256}"); fi
    npx --no-install cdklocal deploy --all --require-approval never "${context[@]}" "$@"
    ;;
esac
