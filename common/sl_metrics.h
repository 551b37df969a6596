/* Metrics primitives: single-writer counters and fixed-bucket histograms kept in one shard per
 * loop thread, summed at scrape time and rendered as Prometheus text. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A counter written by exactly one thread; any thread may read it. */
typedef struct {
    _Atomic uint64_t v;
} sl_counter_t;

static inline void sl_counter_add(sl_counter_t *c, uint64_t n)
{
    atomic_store_explicit(&c->v, atomic_load_explicit(&c->v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t sl_counter_get(const sl_counter_t *c)
{
    return atomic_load_explicit(&c->v, memory_order_relaxed);
}

/* Latency buckets in microseconds (upper bounds); the last bucket is +Inf. */
#define SL_HIST_BUCKETS_US(X)                                                                      \
    X(100) X(250) X(500) X(1000) X(2500) X(5000) X(10000) X(25000) X(50000) X(100000) X(250000)  \
        X(500000) X(1000000) X(2500000) X(5000000) X(10000000)
#define SL_HIST_COUNT_ONE(us) +1
enum { SL_HIST_NBUCKETS = 0 SL_HIST_BUCKETS_US(SL_HIST_COUNT_ONE) + 1 };

typedef struct {
    sl_counter_t buckets[SL_HIST_NBUCKETS]; /* not cumulative; summed at render */
    sl_counter_t sum_us;
} sl_hist_t;

/* Records one observation (single writer). */
void sl_hist_observe(sl_hist_t *h, uint64_t us);

/* A bounded, growable text buffer (used for /metrics and JSON responses). */
typedef struct {
    char *data;
    size_t len, cap, max;
    int overflow; /* set when an append would have passed max; the text is then truncated */
} sl_buf_t;

void sl_buf_init(sl_buf_t *b, size_t max);
void sl_buf_dispose(sl_buf_t *b);
void sl_buf_append(sl_buf_t *b, const char *s, size_t n);
void sl_buf_printf(sl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as the inside of a JSON string (escaping quotes, backslashes, control bytes),
 * at most max_in input bytes, cut at a UTF-8 character boundary. */
void sl_buf_json_escape(sl_buf_t *b, const char *s, size_t n, size_t max_in);

/* Prometheus text helpers. `labels` is either NULL or `name="value",...` without braces. */
void sl_prom_header(sl_buf_t *b, const char *name, const char *type, const char *help);
void sl_prom_value(sl_buf_t *b, const char *name, const char *labels, uint64_t v);
void sl_prom_gauge(sl_buf_t *b, const char *name, const char *labels, double v);
/* Renders the sum of n histograms (one per shard) as a Prometheus histogram in seconds. */
void sl_prom_hist(sl_buf_t *b, const char *name, const char *help, const sl_hist_t *const *h,
                  size_t n);
/* The same for a histogram observed in other units (1e3: milliseconds); bucket bounds and sum
 * are divided by units_per_s, so the text is still in seconds. */
void sl_prom_hist_scaled(sl_buf_t *b, const char *name, const char *help,
                         const sl_hist_t *const *h, size_t n, double units_per_s);

#endif
