#!/usr/bin/env bash
# Bytes per remembered event in Redis for dedup's two layouts (dedup.layout=keys|buckets),
# measured on a private redis-server: used_memory delta / N after writing N committed events
# exactly as the gateway leaves them (dedup/dedup_buckets.c, dedup/README.md "Layouts"):
#   keys     SET sl:dd:{tenant-a:<uuid>} 'C'+fp[8] PX 86400000
#   buckets  HSET sl:ddb:{tenant-a:<bucket>}:<generation> <uuid as 16 bytes> 'C'+fp[8], and
#            PEXPIREAT (generation + 2) * window on each hash; bucket = fmix64(FNV-1a(uuid)) % B
#            with B = ceil(N / 100) (N plays dedup.bloom_expected: the events of one window)
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

# RESP for N events (random UUIDs, fixed seed): binary-safe, for redis-cli --pipe
gen() { # layout
    perl -e '
        use strict; use warnings;
        my ($n, $layout) = @ARGV;
        my $window = 86400000;                     # dedup.window default
        my $buckets = int(($n + 99) / 100);        # dedup.buckets 0: bloom_expected / 100
        my $gen = int(time() * 1000 / $window);
        my %expiring;
        srand(42);
        sub resp { join("", "*", scalar(@_), "\r\n", map { "\$" . length($_) . "\r\n$_\r\n" } @_) }
        # dedup_buckets.c bucket_of: FNV-1a 64 (offset basis 0xcbf29ce484222325),
        # then MurmurHash3 fmix64, modulo the bucket count
        sub bucket_of {
            my $h;
            { use integer;
              $h = -3750763034362895579;  # 0xcbf29ce484222325, signed under use integer
              $h = ($h ^ $_) * 1099511628211 for unpack("C*", $_[0]);
              $h ^= ($h >> 33) & 0x7FFFFFFF; $h *= -49064778989728563;   # 0xff51afd7ed558ccd
              $h ^= ($h >> 33) & 0x7FFFFFFF; $h *= -4265267296055464877; # 0xc4ceb9fe1a85ec53
              $h ^= ($h >> 33) & 0x7FFFFFFF; }
            return ($h & ~0) % $buckets;
        }
        for (1 .. $n) {
            my $hex = join("", map { sprintf("%04x", int(rand(65536))) } 1 .. 8);
            substr($hex, 12, 1) = "4";                      # a UUIDv4, lowercase
            my $id = join("-", unpack("A8 A4 A4 A4 A12", $hex));
            my $value = "C" . pack("Q<", int(rand(2**53)));  # committed: C + fingerprint
            if ($layout eq "keys") {
                print resp("SET", "sl:dd:{tenant-a:$id}", $value, "PX", $window);
                next;
            }
            my $key = "sl:ddb:{tenant-a:" . bucket_of($id) . "}:$gen";
            print resp("HSET", $key, pack("H32", $hex), $value);
            print resp("PEXPIREAT", $key, ($gen + 2) * $window) unless $expiring{$key}++;
        }
    ' "$n" "$1"
}

for layout in keys buckets; do
    cli flushall >/dev/null
    before=$(used)
    gen $layout | cli --pipe >/dev/null
    after=$(used)
    enc=$(cli object encoding "$(cli randomkey)")
    echo "$layout: $(cli dbsize) keys ($enc), $(( (after - before) / n )) bytes per event" \
        "(N=$n, $(redis-server --version | awk '{print $3}'))"
done
