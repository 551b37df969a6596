# Shell helpers shared by the e2e tests and loadtest/h2load.sh (source it; needs bash).
# stack_start BUILD_DIR WORK_DIR: runs scripts/run-stack.sh on free ports in the background and
# returns once it printed its banner; sets STACK_PID, STACK_KEY, STACK_URL, STACK_ADMIN,
# STACK_GATEWAY_PID, STACK_REGISTRY (the registry's base URL). stack_stop: SIGTERM, then waits; returns the script's exit status.

stack_lib_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# A TCP port nobody listens on, below the kernel's ephemeral range.
stack_free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

# stack_poll SECONDS COMMAND...: polls until COMMAND succeeds; returns 1 at the deadline.
stack_poll() {
    local deadline=$(($(date +%s) + $1))
    shift
    until eval "$*" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

stack_start() {
    local build=$1 work=$2
    export STACK_HTTPS_PORT=$(stack_free_port) STACK_ADMIN_PORT=$(stack_free_port)
    export STACK_KAFKA_PORT=$(stack_free_port) STACK_REDIS_PORT=$(stack_free_port)
    export STACK_REGISTRY_PORT=$(stack_free_port)
    export STACK_DIR=$work/run
    setsid "$stack_lib_top/scripts/run-stack.sh" "$build" >"$work/stack.out" 2>&1 &
    STACK_PID=$!
    stack_poll 60 "grep -q 'Ctrl-C stops everything' '$work/stack.out'" || return 1
    STACK_KEY=$(cat "$STACK_DIR/dev-write-key")
    STACK_URL=https://127.0.0.1:$STACK_HTTPS_PORT/v1/batch
    STACK_ADMIN=http://127.0.0.1:$STACK_ADMIN_PORT
    STACK_REGISTRY=http://127.0.0.1:$STACK_REGISTRY_PORT
    STACK_GATEWAY_PID=$(pgrep -f -- "sluice-gateway.*admin_listen=127.0.0.1:$STACK_ADMIN_PORT")
}

stack_stop() {
    local rc=0
    [ -n "${STACK_PID:-}" ] || return 0
    kill -TERM "$STACK_PID" 2>/dev/null || true
    wait "$STACK_PID" || rc=$?
    STACK_PID=""
    return $rc
}

# stack_metric NAME: one sample of the gateway's /metrics (exact name with labels).
stack_metric() {
    curl -s "$STACK_ADMIN/metrics" | awk -v m="$1" '$1 == m {print $2}'
}
