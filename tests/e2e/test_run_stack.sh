#!/usr/bin/env bash
# End to end for `make run`: starts scripts/run-stack.sh on free ports, pastes the curl it
# prints, reads the event back with the kcat command it prints, then stops the stack with
# SIGTERM and checks that every process it started is gone and the gateway drained.
# Usage: test_run_stack.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
. "$src/scripts/stack-lib.sh"
work=$(mktemp -d /tmp/sluice-e2e-XXXXXX)
cleanup() {
    stack_stop >/dev/null 2>&1 || true
    pkill -f -- "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$work"/stack.out "$work"/run/logs/*; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; } >&2; done
    exit 1
}

stack_start "$build" "$work" || fail "stack did not start"
# the printed curl, exactly as a developer would paste it
sed -n '/^curl --cacert/,/^  -d /p' "$work/stack.out" >"$work/curl.sh"
[ "$(wc -l <"$work/curl.sh")" -eq 3 ] || fail "printed curl not found"
grep -q "Authorization: Bearer sk_dev_" "$work/curl.sh" || fail "curl has no dev write key"
event_id=$(grep -o '"event_id":"[0-9a-f-]*"' "$work/curl.sh" | cut -d'"' -f4)
[ -n "$event_id" ] || fail "no event_id in the printed curl"
curl_cmd=$(sed 's/\\$//' "$work/curl.sh" | tr '\n' ' ')
status=$(eval "$curl_cmd -s -o '$work/resp' -w '%{http_code}'") || fail "curl failed"
[ "$status" = 200 ] || fail "printed curl got HTTP $status: $(cat "$work/resp")"
grep -q '"accepted":1,' "$work/resp" || fail "event not accepted: $(cat "$work/resp")"

# the printed kcat reads it back: the same event_id, the dev tenant, key user_id
kcat_cmd=$(grep -m1 '^kcat -C' "$work/stack.out")
[ -n "$kcat_cmd" ] || fail "printed kcat not found"
eval "$kcat_cmd" >"$work/kcat.out" 2>"$work/kcat.err" || fail "kcat failed: $(cat "$work/kcat.err")"
grep -q "key=u-123 headers=event_id=$event_id,tenant=dev,received_at=" "$work/kcat.out" ||
    fail "event not in Kafka: $(cat "$work/kcat.out")"
[ "$(grep -c "$event_id" "$work/kcat.out")" -eq 1 ] || fail "event in Kafka more than once"

# Ctrl-C equivalent: the script stops its children in order and exits 0
rc=0
stack_stop || rc=$?
[ "$rc" -eq 0 ] || fail "run-stack exited $rc"
grep -q 'msg="drained' "$work/run/logs/gateway.log" || fail "gateway did not drain"
for pattern in "$work/run" "--listen 127.0.0.1:$STACK_KAFKA_PORT" "127.0.0.1:$STACK_REDIS_PORT"; do
    if pgrep -f -- "$pattern" >/dev/null; then fail "processes left running: $(pgrep -af -- "$pattern")"; fi
done
echo "run-stack e2e: 1 passed, 0 failed"
