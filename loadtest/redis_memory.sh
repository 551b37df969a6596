#!/usr/bin/env bash
# Bytes per remembered event in Redis, for dedup's key layout and for a denser bucketed-hash
# layout, measured on a private redis-server: used_memory delta / N after inserting N events.
# Usage: loadtest/redis_memory.sh [N]   (default 1000000)
set -euo pipefail
n=${1:-1000000}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/stack-lib.sh"
work=$(mktemp -d /tmp/sluice-redismem-XXXXXX)
port=$(stack_free_port)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --daemonize no --logfile "$work/redis.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
stack_poll 10 "redis-cli -p $port ping | grep -q PONG" || { echo "redis did not start"; exit 1; }
cli() { redis-cli -p "$port" "$@"; }
used() { cli info memory | awk -F: '/^used_memory:/ {print $2+0}'; }

# RESP for N commands; ids are random UUIDs, values are 9 bytes like dedup's 'C' + fingerprint
gen() { # layout
    awk -v n="$n" -v layout="$1" 'BEGIN {
        srand(42); hex = "0123456789abcdef"
        for (i = 0; i < n; i++) {
            id = ""
            for (k = 0; k < 32; k++) {
                id = id substr(hex, int(rand() * 16) + 1, 1)
                if (k == 7 || k == 11 || k == 15 || k == 19) id = id "-"
            }
            if (layout == "keys") {
                key = "sl:dd:{tenant-a:" id "}"
                printf "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$9\r\nCabcdefgh\r\n$2\r\nPX\r\n$8\r\n86400000\r\n", length(key), key
            } else {
                # bucketed: 16-byte field (the id without dashes, as raw bytes would be), value 8
                # bytes, buckets of ~100 events so each hash stays a listpack
                b = int(rand() * (n / 100))
                key = "sl:ddb:{tenant-a:" b "}"
                f = id; gsub("-", "", f); f = substr(f, 1, 16)
                printf "*4\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n$16\r\n%s\r\n$8\r\nabcdefgh\r\n", length(key), key, f
            }
        }
    }'
}

for layout in keys buckets; do
    cli flushall >/dev/null
    before=$(used)
    gen $layout | cli --pipe >/dev/null
    after=$(used)
    if [ $layout = buckets ]; then # a TTL per bucket key (generations expire whole)
        cli --scan --pattern 'sl:ddb:*' | awk '{print "PEXPIRE " $1 " 172800000"}' | cli >/dev/null
        after=$(used)
    fi
    echo "$layout: $(cli dbsize) keys, $(( (after - before) / n )) bytes per event (N=$n, $(redis-server --version | awk '{print $3}'))"
done
