#!/usr/bin/env bash
# Quick benchmark with h2load (nghttp2-client): starts its own stack on free ports, then
#  1. single connection, one request at a time, batch of 50 events: latency percentiles;
#  2. HTTP/2, 16 connections (10 streams each), batch of 50: events/s;
# and reports gateway CPU per event from /proc (process CPU time / events accepted).
# Usage: loadtest/h2load.sh BUILD_DIR [REQUESTS]   (results also go to loadtest/results/)
set -euo pipefail
build=$(cd "${1:?usage: h2load.sh BUILD_DIR [REQUESTS]}" && pwd)
requests=${2:-20000}
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/sluice-bench-XXXXXX)
out_dir=$top/loadtest/results
mkdir -p "$out_dir"
report=$out_dir/h2load-$(date -u +%Y%m%dT%H%M%SZ).md

. "$top/scripts/stack-lib.sh"
trap 'stack_stop >/dev/null 2>&1; rm -rf "$work"' EXIT
stack_start "$build" "$work" || { cat "$work/stack.out"; exit 1; }
key=$STACK_KEY url=$STACK_URL gw_pid=$STACK_GATEWAY_PID

# 50 realistic events, distinct users so they spread over partitions (~300 bytes each)
{
    printf '{"sent_at":%s,"events":[' "$(($(date +%s%N) / 1000000))"
    for i in $(seq 1 50); do
        [ "$i" -gt 1 ] && printf ','
        printf '{"event_id":"%s","event_type":"page_view","ts":1763999999000,"user_id":"user-%05d","session_id":"sess-%05d","page_id":%d,"properties":{"url":"/products/item-%d?ref=home","referrer":"https://www.example.com/landing","title":"Product %d","latency_ms":%d}}' \
            "$(cat /proc/sys/kernel/random/uuid)" "$i" "$i" "$i" "$i" "$i" $((i * 7))
    done
    printf ']}'
} >"$work/batch.json"
event_bytes=$(($(stat -c %s "$work/batch.json") / 50))

cpu_ticks() { awk '{print $14 + $15}' "/proc/$gw_pid/stat"; }
hz=$(getconf CLK_TCK)

run() { # name, h2load args...
    local name=$1; shift
    local acc0 cpu0 acc1 cpu1
    acc0=$(stack_metric 'sluice_events_total{outcome="accepted"}'); cpu0=$(cpu_ticks)
    h2load "$@" -d "$work/batch.json" -H "authorization: Bearer $key" \
        -H 'content-type: application/json' "$url" >"$work/$name.txt" 2>&1
    acc1=$(stack_metric 'sluice_events_total{outcome="accepted"}'); cpu1=$(cpu_ticks)
    local events=$((acc1 - acc0))
    local cpu_us=$(((cpu1 - cpu0) * 1000000 / hz))
    echo "### $name"
    echo '```'
    echo "h2load $* (batch of 50, ${event_bytes} B/event)"
    grep -E "^finished in|requests:|status codes:|time for request:|req/s" "$work/$name.txt"
    echo '```'
    local secs
    secs=$(grep -oP 'finished in \K[0-9.]+(?=s)' "$work/$name.txt")
    awk -v e="$events" -v s="$secs" -v c="$cpu_us" 'BEGIN {
        printf "- events accepted: %d, %.0f events/s\n", e, e / s;
        if (e > 0) printf "- gateway CPU: %.2f µs/event (process CPU time / events accepted)\n", c / e }'
    echo
}

{
    echo "# h2load benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"); generator, gateway, broker and redis share it."
    echo "Build: $build"
    echo
    run latency-1conn -n 2000 -c 1 -m 1
    run http2-16conn -n "$requests" -c 16 -m 10
    run http11-16conn --h1 -n "$requests" -c 16 || true
} | tee "$report"
echo "report: $report"
