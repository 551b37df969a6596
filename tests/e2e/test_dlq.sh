#!/usr/bin/env bash
# End to end for sluice-dlq against the local stack (scripts/run-stack.sh: redis, dev broker,
# registry with the default schemas, gateway): an event missing user_id becomes a dead letter;
# tail shows it with its reason, stats counts it, replay --dry-run re-validates it (still
# invalid). A retryable letter (schema_not_found: the gateway's answer to an event type without
# a schema, dead-lettered by the gateway) is invalid until its schema is registered, then
# would_accept, then accepted by a real replay (and in Kafka `events` once), and a second replay
# reports duplicate. Asserts on the CLI's output with jq.
# Usage: test_dlq.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
dlq=$build/tools/dlq/sluice-dlq
. "$src/scripts/stack-lib.sh"
work=$(mktemp -d /tmp/sluice-e2e-dlq-XXXXXX)
follow_pid=
cleanup() {
    [ -z "$follow_pid" ] || kill "$follow_pid" 2>/dev/null || true
    stack_stop >/dev/null 2>&1 || true
    if [ -n "${DLQ_E2E_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
checks=0
fail() {
    echo "FAIL: $*" >&2
    for f in "$work"/stack.out "$work"/run/logs/gateway.log "$work"/*.err; do
        [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; } >&2
    done
    exit 1
}
# expect_jq FILE FILTER WHAT: the jq filter (run with -e over the whole output, slurped) is true
expect_jq() {
    jq -se "$2" "$1" >/dev/null || fail "$3: $(head -c 2000 "$1")"
    checks=$((checks + 1))
}
# run_dlq NAME EXPECTED_RC ARGS...: runs sluice-dlq, output in $work/NAME.out/.err
run_dlq() {
    local name=$1 want=$2 rc=0
    shift 2
    "$dlq" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "$name: exit $rc, expected $want: $(cat "$work/$name.err")"
    checks=$((checks + 1))
}

[ -x "$dlq" ] || fail "no sluice-dlq at $dlq"
# the gateway remembers "no such subject" for schema.negative_ttl_ms (5 s by default); replay
# resends what the gateway still calls schema_not_found after a backoff. 1 s keeps this short.
export SLUICE_SCHEMA_NEGATIVE_TTL_MS=1000
stack_start "$build" "$work" || fail "stack did not start"
brokers=127.0.0.1:$STACK_KAFKA_PORT
cacert=$STACK_DIR/tls/selfsigned.pem
echo "$STACK_KEY" >"$work/key"
common=(--brokers "$brokers" --timeout 20)

# 1. a batch with one good event and one without user_id: the second is a dead letter
now=$(($(date +%s%N) / 1000000))
t0=$now
id_ok=$(cat /proc/sys/kernel/random/uuid)
id_bad=$(cat /proc/sys/kernel/random/uuid)
cat >"$work/batch.json" <<EOF
{"sent_at":$now,"events":[
 {"event_id":"$id_ok","event_type":"page_view","ts":$now,"user_id":"u-1",
  "properties":{"url":"/a","referrer":null,"title":null,"latency_ms":5}},
 {"event_id":"$id_bad","event_type":"page_view","ts":$now,
  "properties":{"url":"/b","referrer":null,"title":null,"latency_ms":6}}]}
EOF
status=$(curl -s --cacert "$cacert" -o "$work/resp.json" -w '%{http_code}' "$STACK_URL" \
    -H "Authorization: Bearer $STACK_KEY" -H 'Content-Type: application/json' \
    --data-binary @"$work/batch.json") || fail "curl failed"
[ "$status" = 200 ] || fail "batch got HTTP $status: $(cat "$work/resp.json")"
expect_jq "$work/resp.json" '.[0].accepted == 1 and .[0].invalid == 1 and
    .[0].events[0].code == "missing_field"' "gateway did not refuse the event without user_id"

# 2. tail --code missing_field shows it with its reason (poll: the letter may still be in flight)
stack_poll 20 "'$dlq' tail ${common[*]} --code missing_field | grep -q '$id_bad'" ||
    fail "dead letter never appeared in tail"
run_dlq tail 0 tail "${common[@]}" --code missing_field
expect_jq "$work/tail.out" 'length == 1 and (.[0] |
    .code == "missing_field" and .stage == "envelope" and .path == "user_id" and
    .retryable == false and .tenant == "dev" and .event_id == "'"$id_bad"'" and
    (.detail | length) > 0 and (.gateway | length) > 0 and .truncated == false and
    (.partition | type) == "number" and (.offset | type) == "number" and
    .timestamp >= '"$t0"' - 5000 and (.received_at | type) == "number" and
    (.content_type | test("application/json")) and
    (.value | fromjson | .event_id) == "'"$id_bad"'")' "tail record"

# time windows (the dev broker cannot seek by time: the CLI falls back to reading and filtering)
run_dlq since 0 tail "${common[@]}" --code missing_field --since -1h
expect_jq "$work/since.out" 'length == 1' "--since -1h should keep the letter"
run_dlq future 0 tail "${common[@]}" --code missing_field --since "$((now + 3600000))"
expect_jq "$work/future.out" 'length == 0' "--since in the future should drop it"
run_dlq until 0 tail "${common[@]}" --until 2020-01-01T00:00:00Z
expect_jq "$work/until.out" 'length == 0' "--until 2020 should drop it"
run_dlq other 0 tail "${common[@]}" --tenant nobody
expect_jq "$work/other.out" 'length == 0' "--tenant nobody should drop it"

# 3. stats counts it
run_dlq stats 0 stats "${common[@]}" --json
expect_jq "$work/stats.out" '.[0] | .total >= 1 and .by_code.missing_field == 1 and
    .by_tenant.dev >= 1 and .by_code_tenant.missing_field.dev == 1 and
    .first_timestamp <= .last_timestamp' "stats --json"
run_dlq stats_table 0 stats "${common[@]}"
grep -Eq '^missing_field +dev +1$' "$work/stats_table.out" ||
    fail "stats table: $(cat "$work/stats_table.out")"

# 4. replay --dry-run: by default only retryable letters (none yet); --all re-validates it
run_dlq dry_default 0 replay "${common[@]}" --dry-run --registry "$STACK_REGISTRY"
expect_jq "$work/dry_default.out" '.[-1].summary | .letters == 0 and .skipped >= 1' \
    "default replay must skip non-retryable letters"
run_dlq dry_all 0 replay "${common[@]}" --dry-run --all --code missing_field \
    --registry "$STACK_REGISTRY"
expect_jq "$work/dry_all.out" 'length == 2 and (.[0] | .result == "invalid" and
    .code == "missing_field" and .path == "user_id" and .subject == "page_view" and
    .event_id == "'"$id_bad"'") and .[1].summary.invalid == 1' "replay --dry-run --all"

# 5. a retryable letter: an event of type "signup", which has no schema yet: the gateway answers
#    it invalid schema_not_found and writes the dead letter itself (dlq.retryable=true)
id_new=$(cat /proc/sys/kernel/random/uuid)
now=$(($(date +%s%N) / 1000000))
event="{\"event_id\":\"$id_new\",\"event_type\":\"signup\",\"ts\":$now,\"user_id\":\"u-7\","
event+="\"properties\":{\"plan\":\"pro\"}}"
status=$(curl -s --cacert "$cacert" -o "$work/resp_signup.json" -w '%{http_code}' "$STACK_URL" \
    -H "Authorization: Bearer $STACK_KEY" -H 'Content-Type: application/json' \
    --data-binary "{\"sent_at\":$now,\"events\":[$event]}") || fail "curl failed"
[ "$status" = 200 ] || fail "signup batch got HTTP $status: $(cat "$work/resp_signup.json")"
expect_jq "$work/resp_signup.json" '.[0].invalid == 1 and
    .[0].events[0].code == "schema_not_found"' "gateway did not answer schema_not_found"
stack_poll 20 "'$dlq' tail ${common[*]} --code schema_not_found | grep -q '$id_new'" ||
    fail "injected letter never appeared"

# --limit, and --group: a second run of the same group starts where the first committed
run_dlq limit 0 tail "${common[@]}" --limit 1
expect_jq "$work/limit.out" 'length == 1' "--limit 1"
run_dlq group1 0 stats "${common[@]}" --json --group "ops-$$"
expect_jq "$work/group1.out" '.[0].total == 2' "first --group run sees both letters"
run_dlq group2 0 stats "${common[@]}" --json --group "ops-$$"
expect_jq "$work/group2.out" '.[0].total == 0' "second --group run starts after the commit"

run_dlq dry_missing 0 replay "${common[@]}" --dry-run --registry "$STACK_REGISTRY"
expect_jq "$work/dry_missing.out" 'length == 2 and (.[0] | .result == "invalid" and
    .code == "schema_not_found" and .subject == "signup") and .[1].summary.letters == 1' \
    "replay before the schema exists"

cat >"$work/signup.avsc" <<'EOF'
{"type":"record","name":"Signup","namespace":"sluice.events","fields":[
 {"name":"event_id","type":"string"},{"name":"event_type","type":"string"},
 {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"user_id","type":"string"},
 {"name":"session_id","type":["null","string"],"default":null},
 {"name":"page_id","type":["null","long"],"default":null},
 {"name":"properties","type":{"type":"record","name":"SignupProperties",
   "fields":[{"name":"plan","type":"string"}]}}]}
EOF
jq -Rs '{schema: .}' "$work/signup.avsc" |
    curl -sf -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data-binary @- \
        "$STACK_REGISTRY/subjects/signup/versions" >"$work/register.out" ||
    fail "registering signup failed"

run_dlq dry_ok 0 replay "${common[@]}" --dry-run --registry "$STACK_REGISTRY"
expect_jq "$work/dry_ok.out" 'length == 2 and (.[0] | .result == "would_accept" and
    .event_id == "'"$id_new"'" and (.schema_id | type) == "number") and
    .[1].summary.would_accept == 1' "replay --dry-run after registering"

# 6. the real replay: accepted, in Kafka `events` once; a second replay is a duplicate
gateway=https://127.0.0.1:$STACK_HTTPS_PORT
replay=(replay "${common[@]}" --registry "$STACK_REGISTRY" --gateway "$gateway"
    --write-key-file "$work/key" --cacert "$cacert" --rate 50)
run_dlq replay1 0 "${replay[@]}"
expect_jq "$work/replay1.out" 'length == 2 and (.[0] | .result == "accepted" and
    .event_id == "'"$id_new"'") and .[1].summary.accepted == 1' "first replay"
kcat -C -b "$brokers" -t events -o beginning -e -f '%h\n' >"$work/events.out" 2>"$work/kcat.err" ||
    fail "kcat consume failed: $(cat "$work/kcat.err")"
[ "$(grep -c "event_id=$id_new" "$work/events.out")" -eq 1 ] ||
    fail "replayed event not in Kafka once"
checks=$((checks + 1))
run_dlq replay2 0 "${replay[@]}"
# (every letter of it: a resend the gateway still answered schema_not_found left one more)
expect_jq "$work/replay2.out" '(.[:-1] | length >= 1 and all(.result == "duplicate" and
    .event_id == "'"$id_new"'")) and .[-1].summary.duplicate == (.[:-1] | length)' \
    "second replay must report duplicate"

# 7. tail --follow prints a letter written after it started, and stops cleanly on SIGINT
"$dlq" tail "${common[@]}" --follow --code follow_me >"$work/follow.out" 2>"$work/follow.err" &
follow_pid=$!
id_f=$(cat /proc/sys/kernel/random/uuid)
# the follower starts at the end: produce only once it is reading (its consumer is up)
stack_poll 20 "ss -Htnp | grep -q 'pid=$follow_pid,'" || fail "follower never connected"
for _ in 1 2 3; do
    printf '{"event_id":"%s"}\n' "$id_f" |
        kcat -P -b "$brokers" -t events.dlq -H dlq.code=follow_me -H tenant=dev 2>>"$work/kcat.err"
    stack_poll 5 "grep -q '$id_f' '$work/follow.out'" && break
done
grep -q "$id_f" "$work/follow.out" || fail "tail --follow did not print the new letter"
kill -INT "$follow_pid"
rc=0
wait "$follow_pid" || rc=$?
follow_pid=
[ "$rc" -eq 0 ] || fail "tail --follow exited $rc on SIGINT: $(cat "$work/follow.err")"
expect_jq "$work/follow.out" 'length >= 1 and all(.code == "follow_me")' "tail --follow output"

# 8. failures: a wrong write key fails every event (exit 1); usage errors exit 2
echo "sk_wrong" >"$work/badkey"
run_dlq replay_badkey 1 replay "${common[@]}" --registry "$STACK_REGISTRY" \
    --gateway "$gateway" --write-key-file "$work/badkey" --cacert "$cacert"
expect_jq "$work/replay_badkey.out" '(.[:-1] | length >= 1 and all(.result == "failed" and
    .code == "http_401")) and .[-1].summary.failed == (.[:-1] | length)' \
    "replay with an unknown write key"
run_dlq usage 2 replay "${common[@]}" --write-key-file "$work/key"
grep -q -- "--gateway" "$work/usage.err" || fail "usage error does not name --gateway"

echo "dlq e2e: $checks checks passed"
