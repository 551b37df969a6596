#!/usr/bin/env bash
# End to end with h2load (nghttp2's load generator, a client we did not write): 16
# connections over HTTP/1.1 and over HTTP/2 against a 2-thread gateway. Every request must get
# a 2xx, the gateway's accepted count must equal what was sent, and the gateway must drain and
# exit cleanly (under the asan preset, with no sanitizer report).
# Regression: loop threads once shared h2o's per-thread buffer allocator (heap-use-after-free
# under concurrent HTTP/1.1 load).
# Usage: test_h2load.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
. "$src/scripts/stack-lib.sh"
work=$(mktemp -d /tmp/sluice-e2e-XXXXXX)
trap 'stack_stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$work"/*.txt "$work"/run/logs/gateway.log; do [ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; } >&2; done
    exit 1
}

stack_start "$build" "$work" || fail "stack did not start: $(cat "$work/stack.out")"
{
    printf '{"events":['
    for i in $(seq 1 20); do
        [ "$i" -gt 1 ] && printf ','
        printf '{"event_id":"%s","event_type":"click","ts":1763999999000,"user_id":"u-%d","properties":{"url":"/","element":"buy"}}' \
            "$(cat /proc/sys/kernel/random/uuid)" "$i"
    done
    printf ']}'
} >"$work/batch.json"

requests=2000 passed=0
for proto in h1 h2; do
    before=$(stack_metric 'sluice_events_total{outcome="accepted"}')
    args=(-n $requests -c 16 -m 4)
    [ $proto = h1 ] && args=(--h1 -n $requests -c 16)
    h2load "${args[@]}" -d "$work/batch.json" -H "authorization: Bearer $STACK_KEY" \
        -H 'content-type: application/json' "$STACK_URL" >"$work/$proto.txt" 2>&1 ||
        fail "h2load $proto exited non-zero"
    grep -q "requests: $requests total, $requests started, $requests done, $requests succeeded, 0 failed" "$work/$proto.txt" ||
        fail "h2load $proto: not every request succeeded"
    grep -q "status codes: $requests 2xx" "$work/$proto.txt" || fail "h2load $proto: non-2xx answers"
    after=$(stack_metric 'sluice_events_total{outcome="accepted"}')
    [ $((after - before)) -eq $((requests * 20)) ] ||
        fail "h2load $proto: accepted $((after - before)), sent $((requests * 20))"
    kill -0 "$STACK_GATEWAY_PID" || fail "gateway died under $proto load"
    passed=$((passed + 1))
done
gw_log=$STACK_DIR/logs/gateway.log
stack_stop || fail "run-stack did not stop cleanly"
grep -q 'msg="drained' "$gw_log" || fail "gateway did not drain"
if grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$gw_log"; then fail "sanitizer report"; fi
echo "h2load e2e: $passed passed, 0 failed"
