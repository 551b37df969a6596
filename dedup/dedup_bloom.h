/* A rotating Bloom filter shared by every loop thread: lock-free reads, atomic sets, and
 * generations that rotate so that what it remembers covers the dedup window. It can only say
 * "definitely new" or "maybe seen"; Redis is the authority (see dedup/README.md). */
#ifndef DEDUP_BLOOM_H
#define DEDUP_BLOOM_H

#include <stddef.h>
#include <stdint.h>

/* A 128-bit keyed hash of a key; the Bloom filter derives its k probes from (h1, h2). */
typedef struct {
    uint64_t h1, h2;
} dedup_hash_t;

typedef struct dedup_bloom dedup_bloom_t;

typedef struct {
    uint64_t expected_per_window; /* distinct keys added during one window at the sizing load */
    double fp_rate;               /* target false-positive rate of dedup_bloom_maybe_contains at
                                     that load, across all generations, e.g. 0.01 */
    unsigned generations;         /* >= 2; each covers window_ms / (generations - 1) */
    uint64_t window_ms;           /* what must be remembered at least (24 h default) */
    uint64_t max_bytes;           /* refuse to allocate more than this (0: no cap) */
} dedup_bloom_conf_t;

/* Sizes every generation from the conf and allocates them (zeroed, so the memory is committed at
 * start). A generation holds one slice's keys, n = expected_per_window / (G - 1), at the per-
 * generation rate p = 1 - (1 - fp_rate)^(1/G) so that G full generations together give fp_rate;
 * bits start at the usual m = -n ln p / (ln 2)^2, rounded up to 512, and grow until the blocked
 * layout's expected rate meets p (about +6% at fp_rate 0.01, G = 4: 2.2 bytes per expected key).
 * Returns NULL with errbuf set on an invalid conf or when max_bytes would be passed (the message
 * says how many bytes it would need). `now_ms` starts the first generation's clock. The caller
 * owns the filter; create it before the loop threads start. */
dedup_bloom_t *dedup_bloom_create(const dedup_bloom_conf_t *conf, uint64_t now_ms, char *errbuf,
                                  size_t errlen);
void dedup_bloom_destroy(dedup_bloom_t *b); /* accepts NULL */

/* Keyed hash (the key is random per process, so clients cannot aim collisions). Any thread. */
dedup_hash_t dedup_bloom_hash(const dedup_bloom_t *b, const void *key, size_t len);

/* 0: definitely not added within the remembered generations; 1: maybe. A key added at t is
 * remembered at least until t + window_ms and at most until t + window_ms + one slice. Lock-free
 * (relaxed loads), any thread. */
int dedup_bloom_maybe_contains(const dedup_bloom_t *b, dedup_hash_t h);
/* Adds to the current generation (relaxed atomic OR, skipped for bits already set). Lock-free,
 * any thread. */
void dedup_bloom_add(dedup_bloom_t *b, dedup_hash_t h);

/* Rotates when the current generation's time slice is over: the oldest generation is cleared and
 * becomes current. After a gap of several slices it rotates once per slice due, at most G times
 * (then everything is forgotten). Cheap when nothing is due (one atomic load); any thread may call
 * it: one caller wins a CAS and does the work (clearing costs ~0.1 ms per MB of a generation, on
 * the winner's thread), the others return 0 at once. Returns the number of rotations done.
 * A query racing the clear may answer "definitely new" for a key only the expiring generation
 * held, i.e. one older than the window; Redis, asked for every event, has the truth. */
unsigned dedup_bloom_rotate_if_due(dedup_bloom_t *b, uint64_t now_ms);

/* Introspection for metrics and the README's sizing table. */
uint64_t dedup_bloom_bytes(const dedup_bloom_t *b);  /* all generations */
unsigned dedup_bloom_probes(const dedup_bloom_t *b); /* k */
uint64_t dedup_bloom_bits_per_generation(const dedup_bloom_t *b);

#endif
