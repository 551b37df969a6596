#!/usr/bin/env bash
# End to end with h2load (nghttp2's load generator, a client we did not write): 16
# connections over HTTP/1.1 and over HTTP/2 against a 2-thread gateway, every request carrying
# the same 20 events. Every request must get a 2xx; across both runs exactly 20 events are
# accepted and every other copy is answered duplicate (or retry in_flight while a concurrent
# copy is being written) - dedup under concurrency; the gateway must drain and exit cleanly
# (under the asan preset, with no sanitizer report).
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
    args=(-n $requests -c 16 -m 4)
    [ $proto = h1 ] && args=(--h1 -n $requests -c 16)
    h2load "${args[@]}" -d "$work/batch.json" -H "authorization: Bearer $STACK_KEY" \
        -H 'content-type: application/json' "$STACK_URL" >"$work/$proto.txt" 2>&1 ||
        fail "h2load $proto exited non-zero"
    grep -q "requests: $requests total, $requests started, $requests done, $requests succeeded, 0 failed" "$work/$proto.txt" ||
        fail "h2load $proto: not every request succeeded"
    grep -q "status codes: $requests 2xx" "$work/$proto.txt" || fail "h2load $proto: non-2xx answers"
    kill -0 "$STACK_GATEWAY_PID" || fail "gateway died under $proto load"
    passed=$((passed + 1))
done
accepted=$(stack_metric 'sluice_events_total{outcome="accepted"}')
duplicate=$(stack_metric 'sluice_events_total{outcome="duplicate"}')
retry=$(stack_metric 'sluice_events_total{outcome="retry"}')
in_flight=$(stack_metric 'sluice_errors_total{code="in_flight"}')
[ "$accepted" -eq 20 ] || fail "accepted $accepted events, want exactly 20 (one per event_id)"
[ "$retry" -eq "$in_flight" ] || fail "retries ($retry) other than in_flight ($in_flight)"
[ $((accepted + duplicate + retry)) -eq $((2 * requests * 20)) ] ||
    fail "accepted $accepted + duplicate $duplicate + retry $retry != $((2 * requests * 20)) sent"
echo "dedup under load: accepted $accepted, duplicate $duplicate, in_flight $in_flight"
gw_log=$STACK_DIR/logs/gateway.log
stack_stop || fail "run-stack did not stop cleanly"
grep -q 'msg="drained' "$gw_log" || fail "gateway did not drain"
if grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$gw_log"; then fail "sanitizer report"; fi
echo "h2load e2e: $passed passed, 0 failed"
