#!/usr/bin/env bash
# The local stack for `make run`: the project's own redis-server, the dev Kafka broker, the schema
# registry (with the five default schemas registered) and the gateway, in the foreground. Prints the URL, a dev write key and a curl that gets a 200.
# Ctrl-C (or SIGTERM) stops everything it started, gateway first so in-flight batches finish.
#
# Usage: scripts/run-stack.sh BUILD_DIR
# Ports can be moved with STACK_HTTPS_PORT, STACK_ADMIN_PORT, STACK_KAFKA_PORT,
# STACK_REDIS_PORT, STACK_REGISTRY_PORT; state lives in STACK_DIR (default .run/).
set -euo pipefail

build=$(cd "${1:?usage: run-stack.sh BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
https_port=${STACK_HTTPS_PORT:-8443}
admin_port=${STACK_ADMIN_PORT:-9464}
kafka_port=${STACK_KAFKA_PORT:-9092}
redis_port=${STACK_REDIS_PORT:-6380}
registry_port=${STACK_REGISTRY_PORT:-8081}
run=${STACK_DIR:-$top/.run}
mkdir -p "$run/redis" "$run/tls" "$run/logs" "$run/registry"
run=$(cd "$run" && pwd)

# one random dev write key per checkout, kept across runs
[ -s "$run/dev-write-key" ] || echo "sk_dev_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" >"$run/dev-write-key"
key=$(cat "$run/dev-write-key")

pids=()
stop_all() {
    # a terminal or pipe that went away with the Ctrl-C must not kill us before the children
    trap '' INT TERM PIPE
    trap - EXIT
    echo
    echo "stopping the local stack..."
    # reverse start order: the gateway drains first, then the registry, the broker, redis
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
    done
    echo "stopped."
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

# Polls until $1 succeeds or $2 seconds pass.
wait_for() {
    local deadline=$(($(date +%s) + $2))
    until eval "$1" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "run-stack: timed out waiting for: $1 (logs in $run/logs)" >&2
            exit 1
        fi
        sleep 0.1
    done
}

setsid redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$run/redis" --save "" \
    --appendonly no --daemonize no --logfile "$run/logs/redis.log" &
pids+=($!)
wait_for "redis-cli -p $redis_port ping | grep -q PONG" 10

setsid "$build/tools/devbroker/sluice-devbroker" --listen "127.0.0.1:$kafka_port" \
    >"$run/logs/devbroker.out" 2>"$run/logs/devbroker.log" &
pids+=($!)
wait_for "grep -q 'devbroker ready' '$run/logs/devbroker.out'" 15

# SLUICE_* variables configure the gateway (e.g. SLUICE_DEBUG_NULL_PIPELINE in benchmarks); the
# registry refuses keys it does not have, so it sees only its own (and the log level)
registry_env=()
for v in $(compgen -e); do
    case "$v" in
    SLUICE_REGISTRY_* | SLUICE_LOG_LEVEL) ;;
    SLUICE_*) registry_env+=(-u "$v") ;;
    esac
done
setsid env "${registry_env[@]}" "$build/schema/registry/sluice-registry" \
    --set "registry.listen=127.0.0.1:$registry_port" \
    --set "registry.data_dir=$run/registry" \
    2>"$run/logs/registry.log" &
pids+=($!)
wait_for "curl -sf http://127.0.0.1:$registry_port/subjects" 15
# the default schemas, one subject per event type; registering an identical schema again returns
# its existing id, so this is safe on every start
for avsc in "$top"/schema/defaults/*.avsc; do
    subject=$(basename "$avsc" .avsc)
    if ! jq -Rs '{schema: .}' "$avsc" |
        curl -sf -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data-binary @- \
            "http://127.0.0.1:$registry_port/subjects/$subject/versions" >>"$run/logs/registry-init.log"; then
        echo "run-stack: registering $subject failed (see $run/logs/registry.log)" >&2
        exit 1
    fi
    echo >>"$run/logs/registry-init.log"
done

setsid "$build/gateway/sluice-gateway" \
    --set "gateway.listen=0.0.0.0:$https_port" \
    --set "gateway.admin_listen=127.0.0.1:$admin_port" \
    --set "kafka.bootstrap.servers=127.0.0.1:$kafka_port" \
    --set "redis.address=127.0.0.1:$redis_port" \
    --set "schema.registry_url=http://127.0.0.1:$registry_port" \
    --set "schema.cache_dir=$run/schema-cache" \
    --set "auth.write_keys=$key:dev" \
    --set "tls.self_signed_out=$run/tls/selfsigned.pem" \
    2>"$run/logs/gateway.log" &
pids+=($!)
wait_for "curl -sf http://127.0.0.1:$admin_port/readyz" 30

event_id=$(cat /proc/sys/kernel/random/uuid)
now_ms=$(($(date +%s%N) / 1000000))
cat <<MSG

Sluice is running.
  gateway   https://localhost:$https_port/v1/batch   (self-signed certificate: $run/tls/selfsigned.pem)
  admin     http://127.0.0.1:$admin_port/metrics  /healthz  /readyz
  kafka     127.0.0.1:$kafka_port  (dev broker: topics events, events.dlq)
  redis     127.0.0.1:$redis_port
  registry  http://127.0.0.1:$registry_port/subjects  (Confluent Schema Registry API; data in $run/registry)
  logs      $run/logs/
  write key $key

Send a batch:
curl --cacert $run/tls/selfsigned.pem https://localhost:$https_port/v1/batch \\
  -H 'Authorization: Bearer $key' -H 'Content-Type: application/json' \\
  -d '{"sent_at":$now_ms,"events":[{"event_id":"$event_id","event_type":"page_view","ts":$now_ms,"user_id":"u-123","session_id":"s-9","page_id":42,"properties":{"url":"/pricing","referrer":null,"title":"Pricing","latency_ms":87}}]}'

Read it back from Kafka (the value is Confluent-framed Avro: 0x00, schema id, record):
kcat -C -b 127.0.0.1:$kafka_port -t events -o beginning -e -f 'key=%k headers=%h value=%S bytes\\n'
Decode values by their schema id with the npm Confluent client (tests/compat/registry-npm):
npm ci --prefix tests/compat/registry-npm --no-audit --no-fund && \\
  kcat -C -b 127.0.0.1:$kafka_port -t events -o beginning -e -c 1 -f '%s' > /tmp/v.bin && \\
  node tests/compat/registry-npm/decode.js http://127.0.0.1:$registry_port /tmp/v.bin

Ctrl-C stops everything.
MSG

# Children run in their own sessions (setsid) so that Ctrl-C reaches only this script, which
# then stops them in order. Foreground until Ctrl-C, or until one of the processes dies
wait -n -p exited_pid "${pids[@]}" || true
echo "run-stack: process ${exited_pid:-?} exited on its own; see $run/logs/" >&2
exit 1
