#!/usr/bin/env bash
# e2e.overload (issue 6): 2x the measured capacity, open loop, on this build. Passes when the
# gateway answers the excess with 429 + Retry-After, keeps accepting at least 80% of its
# unloaded maximum, and the audit finds no accepted event lost (loadtest/overload.sh). 20 s per
# phase: SDK-like clients pause on a 429, so goodput comes in waves a short window would catch.
set -euo pipefail
src=$1 build=$2
OVERLOAD_DURATION=${OVERLOAD_DURATION:-20} exec "$src/loadtest/overload.sh" "$build"
