#!/usr/bin/env bash
# End to end with sluice-load (loadtest/gen), the audited SDK-shaped load generator: ~3000
# batches of 20 events over HTTP/2 with 10% of the batches resent later with the same bytes
# (an SDK whose answer got lost) and 5% invalid events, while its consumer reads `events` and
# `events.dlq`. Asserts issue 5's "Done means": every event answered accepted or duplicate is
# in Kafka exactly once (0 lost, 0 duplicated), every invalid one is in the DLQ, nothing that
# was refused is stored, every event got a final answer, and the resends really were answered
# `duplicate`. Then a short HTTP/1.1 + gzip run with the same checks. The gateway must drain
# and exit cleanly (under the asan preset, with no sanitizer report).
# Usage: test_load_audit.sh SOURCE_DIR BUILD_DIR      (needs jq)
set -euo pipefail
src=$1 build=$2
load=$build/loadtest/gen/sluice-load
command -v jq >/dev/null || { echo "FAIL: jq is needed (scripts/install-deps.sh)" >&2; exit 1; }
[ -x "$load" ] || { echo "FAIL: $load is not built" >&2; exit 1; }
. "$src/scripts/stack-lib.sh"
work=$(mktemp -d /tmp/sluice-e2e-XXXXXX)
trap 'stack_stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$work"/*.err "$work"/*.json "$work"/run/logs/gateway.log; do
        [ -f "$f" ] && { echo "--- $f"; tail -40 "$f"; } >&2
    done
    exit 1
}

stack_start "$build" "$work" || fail "stack did not start: $(cat "$work/stack.out")"

# run NAME ARGS...: one audited run; its summary goes to $work/NAME.json
run() {
    local name=$1
    shift
    "$load" --url "$STACK_URL" --cacert "$STACK_DIR/tls/selfsigned.pem" --key "$STACK_KEY:dev" \
        --dup-pct 10 --invalid-pct 5 --audit --kafka "127.0.0.1:$STACK_KAFKA_PORT" \
        --audit-quiet-ms 1000 --require-dlq --strict -q "$@" \
        >"$work/$name.json" 2>"$work/$name.err" || fail "sluice-load $name exited $?"
    # every expectation is one jq expression; the first false one is reported
    local checks=(
        '.passed == true'
        '.audit.complete == true'
        '.audit.lost == 0'
        '.audit.duplicated == 0'
        '.audit.present_never_accepted == 0'
        '.audit.invalid_not_in_dlq == 0'
        '.audit.wrong_tenant == 0'
        '.outcomes.accepted > 0'
        '.outcomes.invalid > 0'
        '.outcomes.accepted + .outcomes.invalid == .events.generated'
        '.outcomes.retry_exhausted == 0 and .outcomes.abandoned == 0 and .outcomes.rejected == 0'
        '.audit.expected_present == .outcomes.accepted + .outcomes.duplicate'
        '.batches.dup_copies > 0 and .answers.duplicate > 0'
        '.anomalies.accepted_twice == 0 and .anomalies.id_conflicts == 0'
        '.requests.answered == .requests.sent'
    )
    for c in "${checks[@]}"; do
        jq -e "$c" "$work/$name.json" >/dev/null || fail "$name: expected $c"
    done
    jq -r --arg n "$name" '"\($n): \(.events.generated) events, \(.outcomes.accepted) accepted, \(.outcomes.invalid) invalid, \(.answers.duplicate) duplicate answers to \(.batches.dup_copies) resent batches; audit: \(.audit.records) records read, lost \(.audit.lost), duplicated \(.audit.duplicated)"' \
        "$work/$name.json"
}

run h2 --batches 3000 --batch-size 20 --connections 8 --streams 8
kill -0 "$STACK_GATEWAY_PID" || fail "gateway died under HTTP/2 load"
run h1-gzip --h1 --gzip --batches 500 --batch-size 20 --connections 4
kill -0 "$STACK_GATEWAY_PID" || fail "gateway died under HTTP/1.1 load"

gw_log=$STACK_DIR/logs/gateway.log
stack_stop || fail "run-stack did not stop cleanly"
grep -q 'msg="drained' "$gw_log" || fail "gateway did not drain"
if grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$gw_log"; then
    fail "sanitizer report"
fi
echo "load audit e2e: 2 passed, 0 failed"
