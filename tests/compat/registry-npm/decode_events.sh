#!/usr/bin/env bash
# e2e.kafka_decode_npm (issue 4, "done means"): the local stack (run-stack.sh) accepts the
# printed curl's page_view event; kcat reads its record from `events`; the npm Confluent client
# (@kafkajs/confluent-schema-registry, code nobody here wrote) decodes the value by its schema
# id against our registry, and gets back exactly the event that was sent.
# Usage: decode_events.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
dir=$("$src/tests/compat/registry-npm/install.sh" "$src" "$build") || exit $?
. "$src/scripts/stack-lib.sh"
work=$(mktemp -d /tmp/sluice-decode-npm-XXXXXX)
ok=0
cleanup() {
    stack_stop >/dev/null 2>&1 || true
    if [ "$ok" -eq 1 ]; then rm -rf "$work"; else echo "logs kept in $work" >&2; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

stack_start "$build" "$work" || fail "stack did not start: $(tail -5 "$work/stack.out")"
id=$(cat /proc/sys/kernel/random/uuid)
now=$(($(date +%s%N) / 1000000))
event='{"event_id":"'$id'","event_type":"page_view","ts":'$now',"user_id":"u-123","session_id":"s-9","page_id":42,"properties":{"url":"/pricing","referrer":null,"title":"Pricing","latency_ms":87}}'
resp=$(curl -sk "$STACK_URL" -H "Authorization: Bearer $STACK_KEY" -H 'Content-Type: application/json' \
    -d '{"sent_at":'$now',"events":['"$event"']}')
echo "$resp" | jq -e '.accepted == 1' >/dev/null || fail "not accepted: $resp"

kcat -C -b "127.0.0.1:$STACK_KAFKA_PORT" -t events -o beginning -e -c 1 -f '%s' >"$work/value.bin" \
    2>"$work/kcat.err" || fail "kcat: $(cat "$work/kcat.err")"
node "$dir/decode.js" "$STACK_REGISTRY" "$work/value.bin" >"$work/decoded.json" ||
    fail "the npm client could not decode the record"
latest=$(curl -sf "$STACK_REGISTRY/subjects/page_view/versions/latest" | jq .id)
jq -e --argjson sent "$event" --argjson latest "$latest" \
    '.schema_id == $latest and .value == $sent' "$work/decoded.json" >/dev/null ||
    fail "decoded $(cat "$work/decoded.json") is not schema $latest with the event sent $event"
echo "ok: the npm client decoded schema $latest: $(jq -c .value "$work/decoded.json")"
ok=1
