#!/usr/bin/env bash
# Provision IoT things for the device fleet with the AWS CLI, against AWS or
# LocalStack (Pro, for IoT):
#
#   scripts/provision-fleet.sh --domain acme --prefix scd --count 3 [--role consumer]
#   . scripts/localstack/env.sh && scripts/provision-fleet.sh --domain acme ...   # LocalStack
#
# For each thing {prefix}-{n}: create-thing (the stage's thing type, attribute
# domain=<domain> — the device policy scopes topics by it), create a key pair
# and an active certificate, attach the device policy (output of the
# oc-<stage>-iot stack) to the certificate and the certificate to the thing. Files land in
# .fleet/<thing>/ : cert.pem, private.key, public.key, thing.json, and
# .fleet/endpoint.txt holds the IoT data endpoint. The MQTT client id must equal
# the thing name (the policy allows client/${iot:Connection.Thing.ThingName}).
# Idempotent: an existing thing with a .fleet/<thing>/cert.pem is skipped.
#
# Options: --domain D (required) --prefix P (default device) --count N (default 1)
#          --role R (thing attribute role, default device) --policy NAME (default:
#          the oc-<stage>-iot stack output DevicePolicyName) --out DIR (default .fleet)
#          --stage S (the deployment's -c stage, default dev)
# Environment: OC_AWS_ENDPOINT (e.g. http://localhost:4566) adds --endpoint-url.
set -euo pipefail

domain="" prefix="device" count=1 role="device" policy="" out=".fleet" stage="dev"
while [ $# -gt 0 ]; do
  case "$1" in
    --domain|--prefix|--count|--role|--policy|--out|--stage)
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "$1 needs a value; see $0 --help" >&2; exit 2; } ;;
  esac
  case "$1" in
    --domain) domain="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --count) count="$2"; shift 2 ;;
    --role) role="$2"; shift 2 ;;
    --policy) policy="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --stage) stage="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
[ -n "$domain" ] || { echo "--domain is required" >&2; exit 2; }
case "$stage" in ''|*[!a-z0-9-]*) echo "--stage: lower-case letters, digits and - only" >&2; exit 2 ;; esac
case "$domain$prefix$role" in *[!A-Za-z0-9_-]*) echo "domain, prefix and role: letters, digits, _ and - only" >&2; exit 2 ;; esac
case "$count" in ''|*[!0-9]*|0*) echo "--count must be a whole number from 1 (got $count)" >&2; exit 2 ;; esac
[ ! -e "$out" ] || [ -d "$out" ] || { echo "--out $out: exists and is not a directory" >&2; exit 2; }
case "${OC_AWS_ENDPOINT:-http://}" in http://*|https://*) ;; *) echo "OC_AWS_ENDPOINT must be an http(s) URL (got $OC_AWS_ENDPOINT)" >&2; exit 2 ;; esac

endpoint_args=()
if [ -n "${OC_AWS_ENDPOINT:-}" ]; then endpoint_args=(--endpoint-url "$OC_AWS_ENDPOINT"); fi
aws_() { aws "${endpoint_args[@]}" "$@"; }

iot_stack="oc-$stage-iot"
output() {
  aws_ cloudformation describe-stacks --stack-name "$iot_stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue | [0]" --output text
}
if [ -z "$policy" ]; then
  policy=$(output DevicePolicyName)
  [ -n "$policy" ] && [ "$policy" != "None" ] || { echo "no DevicePolicyName output on stack $iot_stack; pass --policy" >&2; exit 1; }
fi
thing_type=$(output ThingTypeName)
if [ -z "$thing_type" ] || [ "$thing_type" = "None" ]; then thing_type="oc-device"; fi

mkdir -p "$out"
chmod 700 "$out"
aws_ iot describe-endpoint --endpoint-type iot:Data-ATS --query endpointAddress --output text > "$out/endpoint.txt"

for n in $(seq 1 "$count"); do
  thing="${prefix}-${n}"
  dir="$out/$thing"
  if [ -f "$dir/cert.pem" ]; then echo "skip $thing (already provisioned)"; continue; fi
  mkdir -p "$dir"
  if ! aws_ iot describe-thing --thing-name "$thing" >/dev/null 2>&1; then
    aws_ iot create-thing --thing-name "$thing" --thing-type-name "$thing_type" \
      --attribute-payload "attributes={domain=${domain},role=${role}}" >/dev/null
  fi
  aws_ iot create-keys-and-certificate --set-as-active --output json \
    --certificate-pem-outfile "$dir/cert.pem" \
    --public-key-outfile "$dir/public.key" \
    --private-key-outfile "$dir/private.key" > "$dir/certificate.json"
  chmod 600 "$dir/private.key"
  cert_arn=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["certificateArn"])' "$dir/certificate.json")
  aws_ iot attach-policy --policy-name "$policy" --target "$cert_arn"
  aws_ iot attach-thing-principal --thing-name "$thing" --principal "$cert_arn"
  printf '{"thingName":"%s","domain":"%s","role":"%s","certificateArn":"%s"}\n' "$thing" "$domain" "$role" "$cert_arn" > "$dir/thing.json"
  echo "provisioned $thing ($domain)"
done
