#!/usr/bin/env bash
# Overload check (issue 6): does the gateway keep serving its capacity when offered twice of it?
#
#   1. capacity: closed loop on a fresh stack (32 connections x 10 streams, each sending as fast
#      as it is answered: 16000 events in flight, under backpressure.max_inflight_events) -> the
#      unloaded maximum in accepted events/s;
#   2. overload: open loop at FACTOR x that rate in batches/s on another fresh stack, audited
#      against Kafka. The generator behaves like an SDK: with OVERLOAD_CLIENT=sdk (default) a
#      429 pauses that connection until Retry-After (sluice-load --sdk-pause: SDKs stop flushing
#      their queue); with OVERLOAD_CLIENT=naive only the refused batch waits and new batches keep
#      coming at the full rate (the harsher case: every excess batch is resent up to 10 times).
#
# Goodput is the gateway's accepted-events counter over the steady middle of each run.
# Passes when the overload run got 429s with Retry-After, its accepted events/s stayed at least
# MIN_PCT % of the maximum, and the audit found no accepted event lost or duplicated.
# Prints one JSON object with both runs' numbers on stdout.
#
# Usage: loadtest/overload.sh [BUILD_DIR]   (default build/release)
#   OVERLOAD_DURATION=S (20)  OVERLOAD_FACTOR=F (2)  OVERLOAD_MIN_PCT=P (80)
#   OVERLOAD_CONNECTIONS=N (64) OVERLOAD_STREAMS=N (50)  OVERLOAD_CLIENT=sdk|naive (sdk)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build/release}" && pwd)
dur=${OVERLOAD_DURATION:-20}
factor=${OVERLOAD_FACTOR:-2}
min_pct=${OVERLOAD_MIN_PCT:-80}
conns=${OVERLOAD_CONNECTIONS:-64}
streams=${OVERLOAD_STREAMS:-50}
client=${OVERLOAD_CLIENT:-sdk}
case "$client" in
sdk) client_args=(--sdk-pause) ;;
naive) client_args=() ;;
*) echo "OVERLOAD_CLIENT must be sdk or naive" >&2; exit 2 ;;
esac
batch=50
# the generator: a sanitizer build's uninstrumented copy when there is one (see
# loadtest/gen/CMakeLists.txt); OVERLOAD_LOAD_BIN overrides
load=$build/loadtest/gen/sluice-load
if [ -x "$build/loadtest/gen/sluice-load-uninstrumented" ]; then
    load=$build/loadtest/gen/sluice-load-uninstrumented
fi
load=${OVERLOAD_LOAD_BIN:-$load}
work=$(mktemp -d /tmp/sluice-overload-XXXXXX)

. "$top/scripts/stack-lib.sh"
ok=0
cleanup() {
    stack_stop >/dev/null 2>&1 || true
    if [ "$ok" -eq 1 ]; then rm -rf "$work"; else echo "overload: logs kept in $work" >&2; fi
}
trap cleanup EXIT
say() { echo "overload: $*" >&2; }

accepted() { stack_metric 'sluice_events_total{outcome="accepted"}'; }

# run NAME sluice-load-args...: a fresh stack and one audited sluice-load run. Goodput is the
# gateway's own accepted-events counter over the steady middle of the run (from 3 s in to 1 s
# before the end), so neither the warm-up nor the generator's drain of resends counts.
run() {
    local name=$1
    shift
    local dir=$work/$name
    mkdir -p "$dir"
    stack_start "$build" "$dir" || { say "$name: the stack did not start"; exit 1; }
    local rc=0 a0 a1 t0 t1
    "$load" --url "$STACK_URL" --key "$STACK_KEY:dev" -b "$batch" --warmup 2 -q -d "$dur" \
        --audit --kafka "127.0.0.1:$STACK_KAFKA_PORT" "$@" >"$dir/summary.json" \
        2>"$dir/progress.log" &
    local lp=$!
    # the steady window is timed by the clock, not waited for: the generator runs meanwhile
    sleep 3
    a0=$(accepted); t0=$(date +%s.%N)
    sleep "$((dur - 4))"
    a1=$(accepted); t1=$(date +%s.%N)
    wait "$lp" || rc=$?
    curl -s "$STACK_ADMIN/metrics" >"$dir/metrics.txt" || true
    stack_stop >/dev/null 2>&1 || true
    jq -e .audit "$dir/summary.json" >/dev/null 2>&1 ||
        { say "$name: no summary (sluice-load exit $rc)"; tail -5 "$dir/progress.log" >&2; exit 1; }
    awk -v a0="$a0" -v a1="$a1" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.0f", (a1 - a0) / (t1 - t0)}' \
        >"$dir/goodput"
}

[ "$dur" -ge 8 ] || { say "OVERLOAD_DURATION must be >= 8"; exit 2; }
say "1/2 capacity: closed loop, ${dur}s"
run max -c 32 -m 10
max_eps=$(cat "$work/max/goodput")
max_bps=$((max_eps / batch))
rate=$(awk -v r="$max_bps" -v f="$factor" 'BEGIN {printf "%d", r * f}')
say "   capacity $max_eps events/s ($max_bps batches/s)"

say "2/2 overload: open loop at ${factor}x = $rate batches/s, ${dur}s, $conns connections x $streams streams, $client clients"
run over -c "$conns" -m "$streams" --rate "$rate" --drain-timeout-ms 30000 "${client_args[@]}"

s=$work/over/summary.json
over_eps=$(cat "$work/over/goodput")
n429=$(jq -r '.http_status["429"] // 0' "$s")
lost=$(jq -r '.audit.lost' "$s")
dup=$(jq -r '.audit.duplicated' "$s")
complete=$(jq -r '.audit.complete' "$s")
shed=$(awk '/^sluice_shed_total/ && $2 > 0 {printf "%s%s", sep, $0; sep="; "}' "$work/over/metrics.txt")
pct=$(awk -v o="$over_eps" -v m="$max_eps" 'BEGIN {printf "%.1f", (m > 0) ? 100 * o / m : 0}')

jq -n --slurpfile max "$work/max/summary.json" --slurpfile over "$s" --arg pct "$pct" \
    --arg shed "$shed" --arg rate "$rate" --arg client "$client" --arg max_eps "$max_eps" --arg over_eps "$over_eps" '
    $max[0] as $max | $over[0] as $over | {
    capacity: {accepted_events_per_s: ($max_eps | tonumber), latency_ms: $max.latency_ms},
    overload: {offered_batches_per_s: ($rate | tonumber), client: $client,
               accepted_events_per_s: ($over_eps | tonumber),
               percent_of_capacity: ($pct | tonumber), http_status: $over.http_status,
               latency_ms: $over.latency_ms, shed_by_cause: $shed, audit: $over.audit}}'

fail=0
[ "$n429" -gt 0 ] || { say "FAIL: no 429 under ${factor}x load"; fail=1; }
awk -v p="$pct" -v m="$min_pct" 'BEGIN {exit !(p >= m)}' ||
    { say "FAIL: accepted $over_eps events/s = $pct% of the maximum $max_eps (< $min_pct%)"; fail=1; }
[ "$lost" = 0 ] && [ "$dup" = 0 ] && [ "$complete" = true ] ||
    { say "FAIL: audit lost=$lost duplicated=$dup complete=$complete"; fail=1; }
say "accepted $over_eps events/s under ${factor}x = $pct% of $max_eps; 429s: $n429 ($shed); lost $lost"
[ "$fail" -eq 0 ] && ok=1
exit "$fail"
