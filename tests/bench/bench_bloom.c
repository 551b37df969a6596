/* Cost of the dedup Bloom filter (not a test: prints numbers, asserts only correctness): ns per
 * hash, add and maybe_contains on one thread, rotation time, bytes per expected key and the
 * measured false-positive rate, at three sizes (in L2, in L3, in DRAM). Standalone:
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Idedup dedup/dedup_bloom.c tests/bench/bench_bloom.c -lm \
 *       -o /tmp/bench_bloom && /tmp/bench_bloom [ops, default 10000000]
 * Add -DDEDUP_BLOOM_BLOCKED=0 to both files' build to measure the standard (unblocked) layout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dedup_bloom.h"

#define GENS 4u
#define FP_RATE 0.01
#define WINDOW_MS 86400000ull

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Key stream: SplitMix64 over a counter, so a stream of distinct well-mixed 128-bit hashes costs
 * ~1 ns and needs no memory. The generator's own cost is measured and subtracted. */
static inline uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static inline dedup_hash_t key_hash(uint64_t stream, uint64_t i)
{
    uint64_t x = (stream << 56) + i * 2;
    dedup_hash_t h = {mix(x), mix(x + 1)};
    return h;
}

static volatile uint64_t sink;

static double generator_ns(uint64_t ops)
{
    uint64_t acc = 0;
    double t0 = now_s();
    for (uint64_t i = 0; i < ops; i++) {
        dedup_hash_t h = key_hash(3, i);
        acc += h.h1 ^ h.h2;
    }
    sink = acc;
    return (now_s() - t0) * 1e9 / (double)ops;
}

static double hash_ns(uint64_t ops)
{
    dedup_bloom_conf_t conf = {.expected_per_window = 1000,
                               .fp_rate = FP_RATE,
                               .generations = GENS,
                               .window_ms = WINDOW_MS};
    char err[256], key[] = "tenant-0042:6f1c2a9e-3b7d-4c8e-9a01-5d2e7f4b8c13"; /* 48 bytes */
    dedup_bloom_t *b = dedup_bloom_create(&conf, 0, err, sizeof(err));
    uint64_t acc = 0;
    double t0;
    if (b == NULL) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    t0 = now_s();
    for (uint64_t i = 0; i < ops; i++) {
        key[11] = (char)i; /* defeat hoisting */
        acc += dedup_bloom_hash(b, key, sizeof(key) - 1).h1;
    }
    sink = acc;
    dedup_bloom_destroy(b);
    return (now_s() - t0) * 1e9 / (double)ops;
}

static void run(uint64_t expected, uint64_t ops, double gen_ns)
{
    dedup_bloom_conf_t conf = {.expected_per_window = expected,
                               .fp_rate = FP_RATE,
                               .generations = GENS,
                               .window_ms = WINDOW_MS};
    const uint64_t slice_ms = WINDOW_MS / (GENS - 1),
                   per_slice = (expected + GENS - 2) / (GENS - 1);
    char err[256];
    dedup_bloom_t *b = dedup_bloom_create(&conf, 0, err, sizeof(err));
    uint64_t added = 0, maybe = 0, slice = 0, rotations = 0, timed_adds = 0;
    double t_add = 0, t_rot = 0, t_new, t_old, t0;

    if (b == NULL) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    /* Steady state: keys arrive at the sizing rate, a rotation after every slice's worth. Adds
     * are timed (whole slices until at least `ops` adds), rotations separately. The run stops at
     * the end of a slice once G slices are in and enough adds are timed: all G generations are
     * full then, the worst moment for queries. */
    for (;;) {
        uint64_t end = added + per_slice;
        int timed = timed_adds < ops;
        t0 = now_s();
        for (; added < end; added++)
            dedup_bloom_add(b, key_hash(1, added));
        if (timed) {
            t_add += now_s() - t0;
            timed_adds += per_slice;
        }
        if (++slice >= GENS && timed_adds >= ops)
            break;
        t0 = now_s();
        rotations += dedup_bloom_rotate_if_due(b, slice * slice_ms);
        t_rot += now_s() - t0;
    }
    /* ops never-added keys (the common case: a new event) */
    t0 = now_s();
    for (uint64_t i = 0; i < ops; i++)
        maybe += (uint64_t)dedup_bloom_maybe_contains(b, key_hash(2, i));
    t_new = now_s() - t0;
    /* ops keys added within the window (a resend) */
    t0 = now_s();
    for (uint64_t i = 0, missing = 0; i < ops; i++) {
        missing += (uint64_t)!dedup_bloom_maybe_contains(
            b, key_hash(1, added - 1 - i % (GENS * per_slice)));
        if (i + 1 == ops && missing != 0) {
            fprintf(stderr, "false negatives: %llu\n", (unsigned long long)missing);
            exit(1);
        }
    }
    t_old = now_s() - t0;

    printf("expected/window %10llu: %11llu bytes = %5.2f B/key, k=%2u | add %5.1f ns | "
           "query new %5.1f ns, seen %5.1f ns | fp %.4f (target %.3f) | rotate %.2f ms "
           "(%.2f ms/MB)\n",
           (unsigned long long)expected, (unsigned long long)dedup_bloom_bytes(b),
           (double)dedup_bloom_bytes(b) / (double)expected, dedup_bloom_probes(b),
           t_add * 1e9 / (double)timed_adds - gen_ns, t_new * 1e9 / (double)ops - gen_ns,
           t_old * 1e9 / (double)ops - gen_ns, (double)maybe / (double)ops, FP_RATE,
           t_rot * 1e3 / (double)rotations,
           t_rot * 1e3 / (double)rotations / ((double)dedup_bloom_bytes(b) / GENS / 1e6));
    dedup_bloom_destroy(b);
}

int main(int argc, char **argv)
{
    uint64_t ops = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    double gen_ns = generator_ns(ops);
#if defined(DEDUP_BLOOM_BLOCKED) && DEDUP_BLOOM_BLOCKED == 0
    const char *layout = "standard";
#else
    const char *layout = "blocked (default)";
#endif
    printf("layout %s, G=%u, fp_rate %.3f, %llu ops per figure; key generator %.1f ns "
           "(subtracted); SipHash-2-4-128 of a 48-byte key %.1f ns\n",
           layout, GENS, FP_RATE, (unsigned long long)ops, gen_ns, hash_ns(ops));
    run(100000, ops, gen_ns);    /* 0.2 MB: in L2 */
    run(10000000, ops, gen_ns);  /* 22 MB: in L3 */
    run(100000000, ops, gen_ns); /* 220 MB: DRAM */
    return 0;
}
