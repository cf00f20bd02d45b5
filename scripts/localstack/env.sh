# Source this file (". scripts/localstack/env.sh") to point the AWS CLI, the
# AWS SDK v3 (handlers, devices) and cdklocal at a LocalStack on this machine.
# Not runnable on the project's build machine (no Docker, no LocalStack).
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://localhost:4566}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
# LocalStack's default account id.
export CDK_DEFAULT_ACCOUNT="${CDK_DEFAULT_ACCOUNT:-000000000000}"
export CDK_DEFAULT_REGION="$AWS_REGION"
# provision-fleet.sh passes this to every aws call.
export OC_AWS_ENDPOINT="$AWS_ENDPOINT_URL"
