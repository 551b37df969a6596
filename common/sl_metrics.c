/* Histograms, the bounded text buffer and the Prometheus text rendering. */
#include "sl_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint64_t hist_bounds_us[] = {
#define SL_HIST_BOUND(us) us,
    SL_HIST_BUCKETS_US(SL_HIST_BOUND)
#undef SL_HIST_BOUND
};

void sl_hist_observe(sl_hist_t *h, uint64_t us)
{
    size_t i = 0;
    while (i < SL_HIST_NBUCKETS - 1 && us > hist_bounds_us[i])
        i++;
    sl_counter_add(&h->buckets[i], 1);
    sl_counter_add(&h->sum_us, us);
}

void sl_buf_init(sl_buf_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void sl_buf_dispose(sl_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static int buf_reserve(sl_buf_t *b, size_t n)
{
    size_t want = b->len + n + 1;
    if (want > b->max) {
        b->overflow = 1;
        return -1;
    }
    if (want > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < want)
            cap *= 2;
        if (cap > b->max)
            cap = b->max;
        char *p = realloc(b->data, cap);
        if (p == NULL)
            abort();
        b->data = p;
        b->cap = cap;
    }
    return 0;
}

void sl_buf_append(sl_buf_t *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sl_buf_printf(sl_buf_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        sl_buf_append(b, small, (size_t)n);
        return;
    }
    if (buf_reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sl_buf_json_escape(sl_buf_t *b, const char *s, size_t n, size_t max_in)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;

    if (n > max_in) { /* cut at a character boundary, not inside a UTF-8 sequence */
        n = max_in;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sl_buf_append(b, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sl_buf_append(b, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sl_buf_append(b, esc, 6);
        }
    }
    sl_buf_append(b, s + run, n - run);
}

void sl_prom_header(sl_buf_t *b, const char *name, const char *type, const char *help)
{
    sl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void sl_prom_value(sl_buf_t *b, const char *name, const char *labels, uint64_t v)
{
    if (labels != NULL)
        sl_buf_printf(b, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
    else
        sl_buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

void sl_prom_gauge(sl_buf_t *b, const char *name, const char *labels, double v)
{
    if (labels != NULL)
        sl_buf_printf(b, "%s{%s} %.6g\n", name, labels, v);
    else
        sl_buf_printf(b, "%s %.6g\n", name, v);
}

void sl_prom_hist(sl_buf_t *b, const char *name, const char *help, const sl_hist_t *const *h,
                  size_t n)
{
    sl_prom_hist_scaled(b, name, help, h, n, 1e6);
}

void sl_prom_hist_scaled(sl_buf_t *b, const char *name, const char *help,
                         const sl_hist_t *const *h, size_t n, double units_per_s)
{
    uint64_t cum = 0, sum_us = 0;
    size_t i, k;

    sl_prom_header(b, name, "histogram", help);
    for (i = 0; i < SL_HIST_NBUCKETS; i++) {
        for (k = 0; k < n; k++)
            cum += sl_counter_get(&h[k]->buckets[i]);
        if (i < SL_HIST_NBUCKETS - 1)
            sl_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, hist_bounds_us[i] / units_per_s,
                          (unsigned long long)cum);
        else
            sl_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    for (k = 0; k < n; k++)
        sum_us += sl_counter_get(&h[k]->sum_us);
    sl_buf_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, sum_us / units_per_s, name,
                  (unsigned long long)cum);
}
