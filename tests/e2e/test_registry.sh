#!/usr/bin/env bash
# End to end for sluice-registry over HTTP: starts the real binary on a free port, exercises every
# endpoint and error code with curl, restarts it and checks that ids, versions and configs
# survived, and that SIGTERM ends it with status 0.
# Usage: test_registry.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
. "$src/scripts/stack-lib.sh"
bin=$build/schema/registry/sluice-registry
work=$(mktemp -d /tmp/sluice-e2e-registry-XXXXXX)
pid=""
passed=0
cleanup() {
    [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true
    [ -z "$pid" ] || wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [ -f "$work/registry.log" ] && { echo "--- registry.log"; tail -30 "$work/registry.log"; } >&2
    exit 1
}

port=$(stack_free_port)
R=http://127.0.0.1:$port
CT='Content-Type: application/vnd.schemaregistry.v1+json'

start() {
    "$bin" --set "registry.listen=127.0.0.1:$port" --set "registry.data_dir=$work/data" \
        --set registry.max_body_bytes=64KiB 2>>"$work/registry.log" &
    pid=$!
    stack_poll 15 "curl -sf $R/subjects" || fail "registry did not start"
}
stop() {
    local rc=0
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    pid=""
    [ "$rc" -eq 0 ] || fail "registry exited $rc on SIGTERM"
}

# req METHOD PATH [BODY]: sets $status and $body
req() {
    local args=(-s -o "$work/body" -w '%{http_code}' -X "$1" -H "$CT" "$R$2")
    [ $# -lt 3 ] || args+=(--data-binary "$3")
    status=$(curl "${args[@]}")
    body=$(cat "$work/body")
}
# expect STATUS JQ_EXPR DESCRIPTION: the last answer has STATUS and JQ_EXPR is true on its body
expect() {
    [ "$status" = "$1" ] || fail "$3: HTTP $status, want $1: $body"
    echo "$body" | jq -e "$2" >/dev/null || fail "$3: $2 is false on $body"
    passed=$((passed + 1))
}
schema_body() { jq -cn --arg s "$1" '{schema: $s}'; }

A1='{"type":"record","name":"A","fields":[{"name":"a","type":"string"}]}'
A2='{"type":"record","name":"A","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":1}]}'
A_REQ='{"type":"record","name":"A","fields":[{"name":"a","type":"string"},{"name":"c","type":"int"}]}'
P1=$'syntax = "proto3";\npackage e2e;\nmessage Ev { string id = 1; int32 n = 2; }\n'
P_BAD=$'syntax = "proto3";\npackage e2e;\nmessage Ev { string id = 1; string n = 2; }\n'

start
req GET /subjects; expect 200 '. == []' "empty registry"
req POST /subjects/s1/versions "$(schema_body "$A1")"; expect 200 '.id == 1' "register"
# Content-Type application/json is accepted too
status=$(curl -s -o "$work/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$(schema_body "$A1")" "$R/subjects/s1/versions"); body=$(cat "$work/body")
expect 200 '.id == 1' "identical schema, application/json"
curl -s -D "$work/headers" -o /dev/null "$R/subjects" 
grep -qi '^content-type: application/vnd.schemaregistry.v1+json' "$work/headers" || fail "content type"
req POST /subjects/s2/versions "$(schema_body "$A1")"; expect 200 '.id == 1' "same schema, other subject"
req POST /subjects/s1/versions "$(schema_body "$A2")"; expect 200 '.id == 2' "compatible v2"
req POST /subjects/s1/versions "$(schema_body "$A_REQ")"
expect 409 '.error_code == 409 and (.message | test("incompatible"))' "new required field"
req GET /subjects; expect 200 '. == ["s1","s2"]' "subjects"
req GET /subjects/s1/versions; expect 200 '. == [1,2]' "versions"
req GET /subjects/s1/versions/latest
expect 200 '.subject == "s1" and .version == 2 and .id == 2 and (has("schemaType") | not) and (.schema | fromjson | .fields | length == 2)' "latest"
req GET /subjects/s1/versions/1; expect 200 '.version == 1 and .id == 1' "version 1"
req GET /subjects/s1/versions/1/schema; expect 200 '.name == "A"' "raw schema"
req GET /subjects/s1/versions/3; expect 404 '.error_code == 40402' "version not found"
req GET /subjects/s1/versions/abc; expect 422 '.error_code == 42202' "invalid version"
req GET /subjects/s1/versions/0; expect 422 '.error_code == 42202' "version 0"
req GET /subjects/nope/versions; expect 404 '.error_code == 40401' "subject not found"
req GET /subjects/nope/versions/latest; expect 404 '.error_code == 40401' "subject not found (version)"
req GET /schemas/ids/2; expect 200 '(.schema | fromjson | .name) == "A" and (has("schemaType") | not)' "by id"
req GET /schemas/ids/99; expect 404 '.error_code == 40403' "id not found"
req POST /subjects/s1 "$(schema_body "$A1")"; expect 200 '.subject == "s1" and .version == 1 and .id == 1 and (.schema | length > 0)' "lookup"
req POST /subjects/s1 "$(schema_body "$A_REQ")"; expect 404 '.error_code == 40403' "lookup: not registered"
req POST /subjects/nope "$(schema_body "$A1")"; expect 404 '.error_code == 40401' "lookup: no subject"
req POST /subjects/s1/versions '{"schema":"{\"type\":\"recor\"}"}'; expect 422 '.error_code == 42201' "invalid avro"
req POST /subjects/s1/versions '{"schema":"{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"b\",\"type\":\"int\",\"default\":\"x\"}]}"}'
expect 422 '.error_code == 42201 and (.message | test("default"))' "bad default"
req POST /subjects/s1/versions '{"schema":"\"int\"","schemaType":"JSON"}'; expect 422 '.error_code == 42201' "JSON schemaType"
req POST /subjects/s1/versions '{"schemaType":"AVRO"}'; expect 422 '.error_code == 42201' "no schema"
req POST /subjects/s1/versions 'not json'; expect 400 '.error_code == 400' "body not JSON"
req POST /subjects/s1/versions "{\"schema\":\"\\\"string\\\"\",\"references\":[{\"name\":\"x\",\"subject\":\"y\",\"version\":1}]}"
expect 422 '.error_code == 42201 and (.message | test("references"))' "references"
# compatibility
req POST /compatibility/subjects/s1/versions/latest "$(schema_body "$A_REQ")"
expect 200 '.is_compatible == false and (.messages | length) == 1' "compat: incompatible"
req POST /compatibility/subjects/s1/versions/latest "$(schema_body "$A2")"
expect 200 '.is_compatible == true and .messages == []' "compat: compatible"
req POST /compatibility/subjects/s1/versions/1 "$(schema_body "$A1")"; expect 200 '.is_compatible == true' "compat: version 1"
req POST /compatibility/subjects/s1/versions "$(schema_body "$A2")"; expect 200 '.is_compatible == true' "compat: all"
req POST /compatibility/subjects/s1/versions/9 "$(schema_body "$A2")"; expect 404 '.error_code == 40402' "compat: no version"
req POST /compatibility/subjects/nope/versions/latest "$(schema_body "$A2")"; expect 404 '.error_code == 40401' "compat: no subject"
# config
req GET /config; expect 200 '.compatibilityLevel == "BACKWARD"' "global config"
req GET /config/s1; expect 404 '.error_code == 40408' "no subject config"
req GET '/config/s1?defaultToGlobal=true'; expect 200 '.compatibilityLevel == "BACKWARD"' "defaultToGlobal"
req PUT /config/s1 '{"compatibility":"NONE"}'; expect 200 '.compatibility == "NONE"' "set subject"
req PUT /config '{"compatibility":"FULL_TRANSITIVE"}'; expect 200 '.compatibility == "FULL_TRANSITIVE"' "set global"
req PUT /config '{"compatibility":"SIDEWAYS"}'; expect 422 '.error_code == 42203' "invalid level"
req GET /config/s1; expect 200 '.compatibilityLevel == "NONE"' "subject config"
req POST /subjects/s1/versions "$(schema_body "$A_REQ")"; expect 200 '.id == 3' "NONE accepts anything"
# protobuf
req POST /subjects/p1/versions "$(jq -cn --arg s "$P1" '{schema: $s, schemaType: "PROTOBUF"}')"
expect 200 '.id == 4' "protobuf"
req GET /schemas/ids/4; expect 200 '.schemaType == "PROTOBUF" and (.schema | test("message Ev"))' "protobuf by id"
req GET '/schemas/ids/4?format=serialized'; expect 200 '.schemaType == "PROTOBUF"' "protobuf serialized"
echo "$body" | jq -r .schema | base64 -d >"$work/fdp.bin" || fail "serialized is not base64"
protoc --decode_raw <"$work/fdp.bin" | grep -q '"Ev"' || fail "serialized is not a FileDescriptorProto"
req GET /subjects/p1/versions/latest; expect 200 '.schemaType == "PROTOBUF" and .id == 4' "protobuf version"
req POST /subjects/p1/versions "$(jq -cn --arg s "$P_BAD" '{schema: $s, schemaType: "PROTOBUF"}')"
expect 409 '.error_code == 409 and (.message | test("field 2"))' "protobuf incompatible"
req POST /subjects/p1/versions "$(jq -cn '{schema: "syntax = \"proto3\";\nmessage {", schemaType: "PROTOBUF"}')"
expect 422 '.error_code == 42201 and (.message | test("schema.proto"))' "protobuf invalid"
# routing and bounds
req DELETE /subjects/s1; expect 405 '.error_code == 405' "method not allowed"
req GET /nothing/here; expect 404 '.error_code == 404' "unknown path"
big=$(head -c 100000 /dev/zero | tr '\0' 'x')
status=$(curl -s -o /dev/null -w '%{http_code}' -H "$CT" --data-binary "{\"schema\":\"$big\"}" "$R/subjects/s1/versions")
[ "$status" = 413 ] || fail "body over registry.max_body_bytes: HTTP $status"
passed=$((passed + 1))
req GET /subjects/a%2Fb/versions; expect 404 '.error_code == 40401' "encoded subject"
req POST /subjects/a%2Fb/versions "$(schema_body "$A1")"; expect 200 '.id == 1' "subject with a slash"
req GET /subjects/a%2Fb/versions/1; expect 200 '.subject == "a/b"' "subject with a slash, read"

# restart: everything survives, ids continue
stop
start
req GET /subjects; expect 200 '. == ["a/b","p1","s1","s2"]' "subjects after restart"
req GET /subjects/s1/versions; expect 200 '. == [1,2,3]' "versions after restart"
req GET /schemas/ids/4; expect 200 '.schemaType == "PROTOBUF"' "protobuf after restart"
req GET /config; expect 200 '.compatibilityLevel == "FULL_TRANSITIVE"' "global config after restart"
req GET /config/s1; expect 200 '.compatibilityLevel == "NONE"' "subject config after restart"
req POST /subjects/s1/versions "$(schema_body "$A2")"; expect 200 '.id == 2' "identical after restart"
req POST /subjects/s3/versions "$(schema_body '"string"')"; expect 200 '.id == 5' "next id after restart"
# a second registry on the same data directory is refused
other=$(stack_free_port)
if "$bin" --set "registry.listen=127.0.0.1:$other" --set "registry.data_dir=$work/data" 2>"$work/second.log"; then
    fail "second registry on the same data_dir started"
fi
grep -q "another sluice-registry" "$work/second.log" || fail "second registry: $(cat "$work/second.log")"
passed=$((passed + 1))
stop
grep -q 'msg="stopping" signal=SIGTERM' "$work/registry.log" || fail "no stop line in the log"
echo "registry e2e: $passed passed, 0 failed"
