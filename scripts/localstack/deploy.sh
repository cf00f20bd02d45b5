#!/usr/bin/env bash
# Deploy all four stacks to LocalStack with cdklocal (npm: aws-cdk-local, which
# wraps the aws-cdk CLI installed in this project).
#
# Requirements and limits:
# - A running LocalStack (Docker) on localhost:4566.
# - LocalStack Pro for IoT Core (thing type, policy, topic rules, describe-endpoint)
#   and for ECS/Fargate, EFS and Cloud Map; the community edition deploys only the
#   DataStack and the Lambda/API parts of the BackendStack.
# - The MultiChain and bitcoind services build their images from containers/
#   with Docker at deploy time; the MultiChain build needs the release digest:
#     MULTICHAIN_SHA256=<sha256 of multichain-2.3.3.tar.gz> scripts/localstack/deploy.sh
# None of this can run on the project's build machine (no Docker engine, no LocalStack).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/localstack/env.sh
. scripts/localstack/env.sh

context=()
if [ -n "${MULTICHAIN_SHA256:-}" ]; then context+=(-c "multichainSha256=${MULTICHAIN_SHA256}"); fi
if [ -n "${BITCOIN_SHA256:-}" ]; then context+=(-c "bitcoinSha256=${BITCOIN_SHA256}"); fi

npx --no-install cdklocal --version >/dev/null 2>&1 || {
  echo "cdklocal not found: npm i -D aws-cdk-local (not a project dependency)" >&2
  exit 1
}
npx --no-install cdklocal bootstrap "aws://${CDK_DEFAULT_ACCOUNT}/${AWS_REGION}"
npx --no-install cdklocal deploy --all --require-approval never "${context[@]}" "$@"
