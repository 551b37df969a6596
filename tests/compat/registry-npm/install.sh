#!/usr/bin/env bash
# Installs the exact client version of package-lock.json (npm ci, with a private cache) into
# BUILD_DIR/compat/registry-npm, next to copies of the scripts; prints that directory. Exits 77
# (ctest: skipped) only when npm cannot install and no earlier install exists.
# Usage: install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
here=$src/tests/compat/registry-npm
dir=$build/compat/registry-npm
mkdir -p "$dir"
cp "$here/package.json" "$here/package-lock.json" "$here/test.js" "$here/decode.js" "$dir/"
if ! (cd "$dir" && npm ci --cache "$build/compat/npm-cache" --no-audit --no-fund \
        --ignore-scripts --loglevel=error >"$dir/npm.log" 2>&1); then
    if [ ! -d "$dir/node_modules/@kafkajs/confluent-schema-registry" ]; then
        echo "SKIP: npm ci failed (registry unreachable?):" >&2
        tail -5 "$dir/npm.log" >&2
        exit 77
    fi
    echo "npm ci failed; using the earlier install in $dir" >&2
fi
echo "$dir"
