#!/bin/bash
# Turn on ReportBatchItemFailures on scale_up's SQS event source mapping, after `chalice deploy`.
#
#   scripts/enable-batch-failures.sh github-runners-dev-scale_up
#
# Chalice has no switch for it: `chalice deploy` creates the mapping without it, and then Lambda
# ignores the batchItemFailures that scale_up returns and deletes the whole batch, losing the
# jobs it meant to retry. (The packaged template sets it; this is for the `chalice deploy` path.)
# Later `chalice deploy` runs update the mapping without touching the setting, and this script is
# idempotent: run it after every deploy. It also sets the pollers (ScalingConfig) to the
# function's reserved concurrency, 2 at least, as the packaged template does. Exits non-zero
# unless every SQS mapping of the function ends up with it.
set -euo pipefail

function_name=${1:?usage: $0 <scale-up function name, e.g. github-runners-dev-scale_up>}

reserved=$(aws lambda get-function-concurrency --function-name "$function_name" \
  --query 'ReservedConcurrentExecutions' --output text 2>/dev/null || true)
scaling=()
if [[ "$reserved" =~ ^[0-9]+$ ]]; then
  # As many pollers as containers may run; Lambda allows no fewer than 2.
  scaling=(--scaling-config "MaximumConcurrency=$(( reserved > 2 ? reserved : 2 ))")
fi

uuids=$(aws lambda list-event-source-mappings --function-name "$function_name" \
  --query "EventSourceMappings[?contains(EventSourceArn, ':sqs:')].UUID" --output text)
if [ -z "$uuids" ] || [ "$uuids" = "None" ]; then
  echo "error: $function_name has no SQS event source mapping (run chalice deploy first)" >&2
  exit 1
fi

for uuid in $uuids; do
  aws lambda update-event-source-mapping --uuid "$uuid" \
    --function-response-types ReportBatchItemFailures "${scaling[@]}" >/dev/null
  types=$(aws lambda get-event-source-mapping --uuid "$uuid" \
    --query 'FunctionResponseTypes' --output text)
  if [ "$types" != "ReportBatchItemFailures" ]; then
    echo "error: mapping $uuid still reports FunctionResponseTypes=$types" >&2
    exit 1
  fi
  echo "mapping $uuid of $function_name: ReportBatchItemFailures on"
done
