/* Statistics: the log-linear latency histogram, code counters, merging per-worker sets. */
#include <string.h>

#include "lg_int.h"

/* Values below 2^SUB_BITS have a bucket each; above, every power of two [2^m, 2^(m+1)) is
 * split into 2^(SUB_BITS-1) equal buckets, so a bucket is at most 1/64 of its value wide. */
static size_t hist_index(uint64_t v)
{
    const unsigned sub = LG_HIST_SUB_BITS;
    unsigned m;
    if (v < (1u << sub))
        return (size_t)v;
    m = 63u - (unsigned)__builtin_clzll(v);
    return (1u << sub) + (size_t)(m - sub) * (1u << (sub - 1)) +
           (size_t)((v >> (m - sub + 1)) - (1u << (sub - 1)));
}

/* The largest value that falls into bucket i. */
static uint64_t hist_upper(size_t i)
{
    const unsigned sub = LG_HIST_SUB_BITS;
    size_t half = (size_t)1 << (sub - 1), k;
    unsigned m, shift;
    if (i < ((size_t)1 << sub))
        return (uint64_t)i;
    k = i - ((size_t)1 << sub);
    m = sub + (unsigned)(k / half);
    shift = m - sub + 1;
    return ((((uint64_t)(k % half + half)) + 1) << shift) - 1;
}

void lg_hist_record(lg_hist_t *h, uint64_t us)
{
    h->b[hist_index(us)]++;
    h->count++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

void lg_hist_merge(lg_hist_t *dst, const lg_hist_t *src)
{
    if (src->count == 0)
        return;
    for (size_t i = 0; i < LG_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

uint64_t lg_hist_quantile(const lg_hist_t *h, double q)
{
    uint64_t rank, seen = 0;
    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max_us;
    rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    for (size_t i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > rank) {
            uint64_t up = hist_upper(i);
            return up < h->max_us ? up : h->max_us;
        }
    }
    return h->max_us;
}

void lg_codes_add(lg_codes_t *c, const char *name, size_t len, uint64_t n)
{
    if (len >= sizeof(c->name[0]))
        len = sizeof(c->name[0]) - 1;
    for (int i = 0; i < c->used; i++)
        if (strncmp(c->name[i], name, len) == 0 && c->name[i][len] == '\0') {
            c->n[i] += n;
            return;
        }
    if (c->used == LG_CODES_MAX) {
        c->other += n;
        return;
    }
    memcpy(c->name[c->used], name, len);
    c->name[c->used][len] = '\0';
    c->n[c->used++] = n;
}

void lg_codes_merge(lg_codes_t *dst, const lg_codes_t *src)
{
    for (int i = 0; i < src->used; i++)
        lg_codes_add(dst, src->name[i], strlen(src->name[i]), src->n[i]);
    dst->other += src->other;
}

void lg_stats_merge(lg_stats_t *d, const lg_stats_t *s)
{
#define ADD(f) d->f += s->f
    ADD(batches), ADD(events), ADD(events_invalid), ADD(dup_copies), ADD(retry_batches);
    ADD(skipped), ADD(requests), ADD(events_sent), ADD(bytes_sent), ADD(conn_errors);
    ADD(timeouts), ADD(refused), ADD(bad_responses), ADD(connects), ADD(resends);
    ADD(exhausted_batches), ADD(accepted_twice), ADD(invalid_accepted), ADD(unexpected_invalid);
    ADD(id_conflicts), ADD(abandoned_jobs);
#undef ADD
    for (int i = 0; i < 600; i++)
        d->http[i] += s->http[i];
    for (int i = 0; i < LG_ANS__COUNT; i++)
        d->ans[i] += s->ans[i];
    lg_codes_merge(&d->req_codes, &s->req_codes);
    lg_codes_merge(&d->ev_codes, &s->ev_codes);
    lg_hist_merge(&d->lat, &s->lat);
    lg_hist_merge(&d->batch_lat, &s->batch_lat);
}
