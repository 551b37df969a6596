#!/usr/bin/env bash
# End to end for `make run`: starts scripts/run-stack.sh on free ports, pastes the curl it
# prints, reads the event back with the kcat command it prints, then stops the stack with
# SIGTERM and checks that every process it started is gone and the gateway drained.
# Usage: test_run_stack.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
work=$(mktemp -d /tmp/sluice-e2e-XXXXXX)
script_pid=""
cleanup() {
    [ -n "$script_pid" ] && kill -TERM "$script_pid" 2>/dev/null || true
    pkill -f -- "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$work"/out "$work"/run/logs/*; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; } >&2; done
    exit 1
}
# deadline_poll SECONDS COMMAND: polls COMMAND until it succeeds, fails the test at the deadline
deadline_poll() {
    local deadline=$(($(date +%s) + $1)); shift
    until eval "$*" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for: $*"
        sleep 0.1
    done
}
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

export STACK_HTTPS_PORT=$(free_port) STACK_ADMIN_PORT=$(free_port) STACK_KAFKA_PORT=$(free_port)
export STACK_REDIS_PORT=$(free_port) STACK_DIR=$work/run
setsid "$src/scripts/run-stack.sh" "$build" >"$work/out" 2>&1 &
script_pid=$!
deadline_poll 60 "grep -q 'Ctrl-C stops everything' '$work/out'"

# the printed curl, exactly as a developer would paste it
sed -n '/^curl --cacert/,/^  -d /p' "$work/out" >"$work/curl.sh"
[ "$(wc -l <"$work/curl.sh")" -eq 3 ] || fail "printed curl not found"
grep -q "Authorization: Bearer sk_dev_" "$work/curl.sh" || fail "curl has no dev write key"
event_id=$(grep -o '"event_id":"[0-9a-f-]*"' "$work/curl.sh" | cut -d'"' -f4)
[ -n "$event_id" ] || fail "no event_id in the printed curl"
curl_cmd=$(sed 's/\\$//' "$work/curl.sh" | tr '\n' ' ')
status=$(eval "$curl_cmd -s -o '$work/resp' -w '%{http_code}'") || fail "curl failed"
[ "$status" = 200 ] || fail "printed curl got HTTP $status: $(cat "$work/resp")"
grep -q '"accepted":1,' "$work/resp" || fail "event not accepted: $(cat "$work/resp")"

# the printed kcat reads it back: the same event_id, the dev tenant, key user_id
kcat_cmd=$(grep '^kcat -C' "$work/out")
[ -n "$kcat_cmd" ] || fail "printed kcat not found"
eval "$kcat_cmd" >"$work/kcat.out" 2>"$work/kcat.err" || fail "kcat failed: $(cat "$work/kcat.err")"
grep -q "key=u-123 headers=event_id=$event_id,tenant=dev,received_at=" "$work/kcat.out" ||
    fail "event not in Kafka: $(cat "$work/kcat.out")"
[ "$(grep -c "$event_id" "$work/kcat.out")" -eq 1 ] || fail "event in Kafka more than once"

# Ctrl-C equivalent: the script stops its children in order and exits 0
kill -TERM "$script_pid"
rc=0
wait "$script_pid" || rc=$?
script_pid=""
[ "$rc" -eq 0 ] || fail "run-stack exited $rc"
grep -q 'msg="drained' "$work/run/logs/gateway.log" || fail "gateway did not drain"
if pgrep -f -- "$work/run" >/dev/null; then fail "processes left running: $(pgrep -af -- "$work/run")"; fi
echo "run-stack e2e: 1 passed, 0 failed"
