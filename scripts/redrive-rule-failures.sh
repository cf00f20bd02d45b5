#!/usr/bin/env bash
# Redrive device messages that a rule-invoked function (offer, accept) failed on
# after Lambda's retries: each message in the function's on-failure queue
# (lib/constructs/rule-failures.ts) is Lambda's invocation record; its
# `requestPayload` is the original rule event. It is invoked again
# asynchronously (as the rule would) and the message deleted once Lambda took
# it. Both handlers are idempotent (accept by obligation id), so a redriven
# event that already succeeded is answered the same way.
#
# Usage: scripts/redrive-rule-failures.sh <offer|accept> [max-messages]
# Needs: aws CLI v2 (credentials of an operator), jq. The queue URL and the
# function name come from the backend stack's outputs and resources: the stack
# named oc-<stage>-backend (lib/app.ts), stage from OC_STAGE (default dev), or
# OC_BACKEND_STACK naming it outright.
set -euo pipefail
usage="usage: $0 <offer|accept> [max-messages]"
case "${1:-}" in -h|--help) sed -n '2,14p' "$0"; exit 0 ;; esac
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "$usage" >&2; exit 2; }
handler="$1"
max="${2:-100}"
case "$handler" in offer|accept) ;; *) echo "unknown handler: $handler (offer or accept)" >&2; exit 2 ;; esac
case "$max" in ''|*[!0-9]*|0*) echo "max-messages must be a whole number from 1 (got $max); $usage" >&2; exit 2 ;; esac
if [ -z "${OC_BACKEND_STACK:-}" ]; then
  case "${OC_STAGE:-dev}" in ''|*[!a-z0-9-]*) echo "OC_STAGE: lower-case letters, digits and - only (got $OC_STAGE)" >&2; exit 2 ;; esac
fi
stack="${OC_BACKEND_STACK:-oc-${OC_STAGE:-dev}-backend}"

queue=$(aws cloudformation describe-stacks --stack-name "$stack" \
  --query "Stacks[0].Outputs[?OutputKey=='${handler}FailureQueueUrl'].OutputValue" --output text)
fn=$(aws cloudformation describe-stack-resources --stack-name "$stack" \
  --query "StackResources[?ResourceType=='AWS::Lambda::Function' && starts_with(LogicalResourceId, 'Handlers$(tr '[:lower:]' '[:upper:]' <<<"${handler:0:1}")${handler:1}')].PhysicalResourceId" --output text)
[ -n "$queue" ] && [ -n "$fn" ] || { echo "no queue or function for $handler in $stack" >&2; exit 1; }

done_count=0
while [ "$done_count" -lt "$max" ]; do
  batch=$(aws sqs receive-message --queue-url "$queue" --max-number-of-messages 10 --wait-time-seconds 2 --output json)
  n=$(jq '.Messages | length' <<<"${batch:-{\}}")
  [ "${n:-0}" -gt 0 ] || break
  for i in $(seq 0 $((n - 1))); do
    body=$(jq -r ".Messages[$i].Body" <<<"$batch")
    receipt=$(jq -r ".Messages[$i].ReceiptHandle" <<<"$batch")
    payload=$(mktemp)
    jq -c '.requestPayload' <<<"$body" >"$payload"
    condition=$(jq -r '.requestContext.condition // "?"' <<<"$body")
    aws lambda invoke --function-name "$fn" --invocation-type Event \
      --cli-binary-format raw-in-base64-out --payload "file://$payload" /dev/null >/dev/null
    aws sqs delete-message --queue-url "$queue" --receipt-handle "$receipt"
    rm -f "$payload"
    done_count=$((done_count + 1))
    echo "redriven ($condition): $(jq -c '{domain, thing, topic}' <<<"$(jq -c '.requestPayload' <<<"$body")")"
  done
done
echo "$done_count message(s) redriven to $fn"
