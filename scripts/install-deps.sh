#!/usr/bin/env bash
# Installs the Debian 12 packages Sluice needs, only those missing: one `apt-get update`, then
# one `apt-get install -y`. Safe to run again; does nothing when everything is present.
set -euo pipefail

packages=(
    # build
    gcc make cmake pkg-config
    libc6-dev libh2o-evloop-dev librdkafka-dev libhiredis-dev libssl-dev zlib1g-dev
    libnghttp2-dev libavro-dev libjansson-dev libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev
    # the registry compiles Protobuf schemas with protoc
    protobuf-compiler
    # tests
    libcmocka-dev jq
    # the local stack and the third-party clients it is checked with
    redis-server kcat curl nghttp2-client openssl procps iproute2
)
# the npm client compatibility tests need Node.js; Debian's is enough when the machine has none
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts redis-server's own service on install; Sluice runs its own instance instead.
