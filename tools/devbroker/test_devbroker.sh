#!/usr/bin/env bash
# Integration test for sluice-devbroker: fixed-port metadata, keyed produce/consume with headers
# through kcat, multi-broker ports, clean shutdown on signals and a clear failure on a taken port.
# usage: test_devbroker.sh path/to/sluice-devbroker
set -euo pipefail

BIN=${1:?usage: test_devbroker.sh path/to/sluice-devbroker}
if ! command -v kcat >/dev/null; then
    echo "SKIP: kcat is not installed"
    exit 77
fi

WORK=$(mktemp -d)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    local f
    echo "FAIL: $*" >&2
    for f in "$WORK"/*.out "$WORK"/*.err; do
        [[ -e $f ]] || continue
        echo "--- $f" >&2
        cat "$f" >&2
    done
    exit 1
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# Bounded kcat: a hung client fails the test instead of hanging it.
kc() {
    timeout 30 kcat "$@"
}

# start_broker NAME ARGS...: runs the broker in the background with stdout and stderr in
# $WORK/NAME.out and $WORK/NAME.err; sets BROKER_PID.
start_broker() {
    local name=$1
    shift
    # Truncate here, not only in the child's redirection: wait_ready must never see a ready line
    # left over from an earlier attempt.
    : >"$WORK/$name.out"
    "$BIN" "$@" >>"$WORK/$name.out" 2>"$WORK/$name.err" &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
}

# wait_ready NAME PID: returns 0 once the ready line is out, 1 if the broker exited first (its
# status in EXIT_RC); fails the test after 15 s.
wait_ready() {
    local name=$1 pid=$2 deadline
    deadline=$(($(now_ms) + 15000))
    while ! grep -q '^devbroker ready ' "$WORK/$name.out"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            EXIT_RC=0
            wait "$pid" || EXIT_RC=$?
            return 1
        fi
        (($(now_ms) < deadline)) || fail "$name: no ready line within 15 s"
        sleep 0.05
    done
}

# wait_exit PID TIMEOUT_MS: waits for the process to end, sets EXIT_RC; fails on timeout.
wait_exit() {
    local pid=$1 deadline
    deadline=$(($(now_ms) + $2))
    while kill -0 "$pid" 2>/dev/null; do
        (($(now_ms) < deadline)) || fail "pid $pid still running after $2 ms"
        sleep 0.05
    done
    EXIT_RC=0
    wait "$pid" || EXIT_RC=$?
}

port_is_free() {
    ! command -v ss >/dev/null || [[ -z $(ss -Htln "sport = :$1") ]]
}

# start_on_free_ports NAME NPORTS ARGS...: starts a broker on a random port whose next NPORTS
# ports are free, retrying when another process wins a port first; sets PORT, BROKER_PID.
start_on_free_ports() {
    local name=$1 nports=$2 i ok
    shift 2
    for _ in $(seq 1 20); do
        # Below Linux's default ephemeral range (32768+), so client connections do not collide.
        PORT=$((20000 + RANDOM % 12000))
        ok=1
        for ((i = 0; i < nports; i++)); do
            port_is_free $((PORT + i)) || ok=0
        done
        ((ok)) || continue
        start_broker "$name" --listen "127.0.0.1:$PORT" "$@"
        wait_ready "$name" "$BROKER_PID" && return 0
        # Exit 1 with "already in use": another process took a port after the check; retry.
        if [[ $EXIT_RC -ne 1 ]] || ! grep -q 'already in use' "$WORK/$name.err"; then
            fail "$name exited with $EXIT_RC before it was ready"
        fi
    done
    fail "no free port range found in 20 attempts"
}

# ---- usage errors ----
rc=0
"$BIN" --listen 0.0.0.0:19092 2>"$WORK/usage.err" || rc=$?
[[ $rc -eq 2 ]] || fail "--listen 0.0.0.0: expected exit 2, got $rc"
grep -q 'only 127.0.0.1 is supported' "$WORK/usage.err" || fail "--listen 0.0.0.0: unclear error"
rc=0
"$BIN" --topic 'bad/name:3' 2>"$WORK/usage.err" || rc=$?
[[ $rc -eq 2 ]] || fail "--topic bad/name: expected exit 2, got $rc"
echo "ok: usage errors exit 2"

# ---- one broker, default topics ----
start_on_free_ports one 1
PID=$BROKER_PID
BOOT=127.0.0.1:$PORT
expected="devbroker ready bootstrap=$BOOT brokers=1 topics=events:12,events.dlq:3"
[[ $(cat "$WORK/one.out") == "$expected" ]] || fail "ready line: got '$(cat "$WORK/one.out")'"
echo "ok: ready on $BOOT"

kc -L -b "$BOOT" -m 10 >"$WORK/meta.txt" || fail "kcat -L failed"
grep -q "^ 1 brokers:" "$WORK/meta.txt" || fail "metadata: expected 1 broker"
grep -q "broker 1 at $BOOT" "$WORK/meta.txt" || fail "metadata: broker not advertised at $BOOT"
grep -q 'topic "events" with 12 partitions:' "$WORK/meta.txt" || fail "metadata: events:12"
grep -q 'topic "events.dlq" with 3 partitions:' "$WORK/meta.txt" || fail "metadata: events.dlq:3"
echo "ok: metadata advertises $BOOT, events:12, events.dlq:3"

for i in $(seq 1 100); do
    echo "key-$i:value-$i"
done | kc -P -b "$BOOT" -t events -K: -H k=v -H src=test || fail "kcat -P events failed"
for i in $(seq 1 100); do
    echo "key-$i value-$i k=v,src=test"
done | sort >"$WORK/expected.txt"
kc -C -b "$BOOT" -t events -o beginning -e -q -f '%k %s %h\n' | sort >"$WORK/got.txt" ||
    fail "kcat -C events failed"
diff -u "$WORK/expected.txt" "$WORK/got.txt" >&2 || fail "events: consumed records differ"
echo "ok: 100 keyed records with headers round-tripped through events"

printf 'dlq-1\ndlq-2\ndlq-3\n' | kc -P -b "$BOOT" -t events.dlq || fail "kcat -P events.dlq failed"
kc -C -b "$BOOT" -t events.dlq -o beginning -e -q -f '%s\n' | sort >"$WORK/dlq.txt" ||
    fail "kcat -C events.dlq failed"
[[ $(tr '\n' ' ' <"$WORK/dlq.txt") == "dlq-1 dlq-2 dlq-3 " ]] ||
    fail "events.dlq: got $(cat "$WORK/dlq.txt")"
echo "ok: events.dlq round-trip"

start_broker second --listen "$BOOT"
wait_exit "$BROKER_PID" 15000
[[ $EXIT_RC -eq 1 ]] || fail "second broker on $BOOT: expected exit 1, got $EXIT_RC"
grep -q "$BOOT is already in use" "$WORK/second.err" || fail "second broker: unclear error"
[[ ! -s $WORK/second.out ]] || fail "second broker printed on stdout"
echo "ok: a second broker on $BOOT exits 1 with a clear message"

kill -TERM "$PID"
wait_exit "$PID" 10000
[[ $EXIT_RC -eq 0 ]] || fail "SIGTERM: expected exit 0, got $EXIT_RC"
echo "ok: SIGTERM exits 0"

# ---- three brokers on PORT..PORT+2: partition leaders spread over all ports ----
start_on_free_ports three 3 --brokers 3 --topic orders:6
PID=$BROKER_PID
B3=127.0.0.1:$PORT,127.0.0.1:$((PORT + 1)),127.0.0.1:$((PORT + 2))
expected="devbroker ready bootstrap=$B3 brokers=3 topics=orders:6"
[[ $(cat "$WORK/three.out") == "$expected" ]] || fail "ready line: got '$(cat "$WORK/three.out")'"
kc -L -b "127.0.0.1:$PORT" -m 10 >"$WORK/meta3.txt" || fail "kcat -L (3 brokers) failed"
for i in 0 1 2; do
    grep -q "broker $((i + 1)) at 127.0.0.1:$((PORT + i))" "$WORK/meta3.txt" ||
        fail "metadata: broker $((i + 1)) not at port $((PORT + i))"
done
grep -q 'topic "orders" with 6 partitions:' "$WORK/meta3.txt" || fail "metadata: orders:6"
grep -q 'replicas: 1,2,3' "$WORK/meta3.txt" || fail "metadata: replication factor 3 expected"
for i in $(seq 1 30); do
    echo "k$i:v$i"
done | kc -P -b "127.0.0.1:$PORT" -t orders -K: || fail "kcat -P orders failed"
n=$(kc -C -b "127.0.0.1:$PORT" -t orders -o beginning -e -q -f '%k\n' | wc -l) ||
    fail "kcat -C orders failed"
[[ $n -eq 30 ]] || fail "orders: expected 30 records, got $n"
echo "ok: 3 brokers on $B3, 30 records round-tripped"

kill -INT "$PID"
wait_exit "$PID" 10000
[[ $EXIT_RC -eq 0 ]] || fail "SIGINT: expected exit 0, got $EXIT_RC"
echo "ok: SIGINT exits 0"
echo "PASS"
