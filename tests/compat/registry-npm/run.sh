#!/usr/bin/env bash
# ctest wrapper: installs the exact client version of package-lock.json (install.sh), starts sluice-registry on a free port and runs test.js against it.
# Usage: run.sh SOURCE_DIR BUILD_DIR. Exits 77 (skipped) only when npm cannot install and no
# earlier install exists.
set -euo pipefail
src=$1 build=$2
here=$src/tests/compat/registry-npm
. "$src/scripts/stack-lib.sh"
dir=$("$here/install.sh" "$src" "$build") || exit $?

work=$(mktemp -d /tmp/sluice-registry-npm-XXXXXX)
pid=""
cleanup() {
    [ -z "$pid" ] || { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT
port=$(stack_free_port)
"$build/schema/registry/sluice-registry" --set "registry.listen=127.0.0.1:$port" \
    --set "registry.data_dir=$work/data" 2>"$work/registry.log" &
pid=$!
if ! stack_poll 15 "curl -sf http://127.0.0.1:$port/subjects"; then
    cat "$work/registry.log" >&2
    exit 1
fi
rc=0
(cd "$dir" && REGISTRY_URL=http://127.0.0.1:$port DEFAULTS_DIR=$src/schema/defaults node test.js) ||
    rc=$?
[ "$rc" -eq 0 ] || { echo "--- registry.log" >&2; tail -30 "$work/registry.log" >&2; }
exit $rc
