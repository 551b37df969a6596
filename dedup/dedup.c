/* The claim -> produce -> commit protocol on top of the Bloom filter and the Redis adapter:
 * lifetimes, in-batch repeats, the failure policy and verdicts, shared by both Redis layouts
 * (dedup.layout; dedup_keys.c, dedup_buckets.c; dedup/README.md has both, with their costs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "dedup_int.h"
#include "sl_log.h"

const char *const dedup_policy_names[] = {"open", "closed", NULL};
const char *const dedup_layout_names[] = {"keys", "buckets", NULL};

dedup_t *dedup_create(const dedup_conf_t *conf, char *errbuf, size_t errlen)
{
    dedup_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        abort();
    d->conf = *conf;
    if (conf->redis.host == conf->redis_host) /* keep pointing into our own copy */
        d->conf.redis.host = d->conf.redis_host;
    if (conf->lease_ms == 0 || conf->window_ms <= conf->lease_ms) {
        snprintf(errbuf, errlen, "dedup.window must be longer than dedup.lease");
        goto Fail;
    }
    if (conf->layout == DEDUP_LAYOUT_BUCKETS && conf->buckets == 0) {
        snprintf(errbuf, errlen, "dedup.buckets must be at least 1");
        goto Fail;
    }
    if ((d->bloom = dedup_bloom_create(&conf->bloom, sl_now_ms(), errbuf, errlen)) == NULL)
        goto Fail;
    dedup_buckets_hash_scripts(d);
    SL_INFO("dedup: redis layout", "layout=%s buckets=%llu window_ms=%llu",
            dedup_layout_names[conf->layout],
            (unsigned long long)(conf->layout == DEDUP_LAYOUT_BUCKETS ? conf->buckets : 0),
            (unsigned long long)conf->window_ms);
    return d;
Fail:
    dedup_destroy(d);
    return NULL;
}

void dedup_destroy(dedup_t *d)
{
    if (d == NULL)
        return;
    dedup_bloom_destroy(d->bloom);
    free(d);
}

dedup_thread_t *dedup_thread_create(dedup_t *d, h2o_evloop_t *loop)
{
    dedup_thread_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        abort();
    t->d = d;
    t->redis = dedup_redis_create(loop, &d->conf.redis);
    if (getrandom(&t->nonce_base, sizeof(t->nonce_base), 0) != sizeof(t->nonce_base))
        t->nonce_base = sl_now_ns();
    return t;
}

void dedup_thread_destroy(dedup_thread_t *t)
{
    if (t == NULL)
        return;
    dedup_redis_destroy(t->redis);
    free(t);
}

void dedup_put_u64(char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint64_t get_u64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Marks repeats of an event_id inside the batch, before anything goes to Redis: the first
 * occurrence competes for the claim, the others are duplicates (or conflicts) of it. */
static void mark_in_batch_repeats(dedup_item_t *items, size_t n)
{
    enum { SLOTS = 2048 }; /* > 2 x max events per batch, power of two */
    uint16_t table[SLOTS];

    if (n >= SLOTS / 2) { /* larger than any configured batch: fall back to pairwise */
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < i && items[i].verdict == DEDUP_NEW; k++)
                if (items[k].verdict != DEDUP_SKIP &&
                    items[k].event_id_len == items[i].event_id_len &&
                    memcmp(items[k].event_id, items[i].event_id, items[i].event_id_len) == 0)
                    items[i].verdict = items[k].fingerprint == items[i].fingerprint
                                           ? DEDUP_DUPLICATE
                                           : DEDUP_CONFLICT;
        return;
    }
    memset(table, 0xff, sizeof(table));
    for (size_t i = 0; i < n; i++) {
        uint64_t slot = 0xcbf29ce484222325u;
        if (items[i].verdict != DEDUP_NEW)
            continue;
        for (size_t c = 0; c < items[i].event_id_len; c++) /* FNV-1a: ids are short */
            slot = (slot ^ (unsigned char)items[i].event_id[c]) * 1099511628211u;
        for (slot &= SLOTS - 1;; slot = (slot + 1) & (SLOTS - 1)) {
            const dedup_item_t *first;
            if (table[slot] == 0xffff) {
                table[slot] = (uint16_t)i;
                break;
            }
            first = &items[table[slot]];
            if (first->event_id_len == items[i].event_id_len &&
                memcmp(first->event_id, items[i].event_id, items[i].event_id_len) == 0) {
                items[i].verdict =
                    first->fingerprint == items[i].fingerprint ? DEDUP_DUPLICATE : DEDUP_CONFLICT;
                break;
            }
        }
    }
}

/* The Bloom filter's key: tenant, NUL, event_id (process-local, so no Redis key format). */
static dedup_hash_t bloom_key(const dedup_t *d, const char *tenant, const dedup_item_t *it)
{
    char key[KEY_MAX];
    size_t tlen = strlen(tenant), idlen = it->event_id_len;

    if (tlen > KEY_MAX / 2)
        tlen = KEY_MAX / 2;
    if (idlen > KEY_MAX - 1 - tlen)
        idlen = KEY_MAX - 1 - tlen;
    memcpy(key, tenant, tlen);
    key[tlen] = '\0';
    memcpy(key + tlen + 1, it->event_id, idlen);
    return dedup_bloom_hash(d->bloom, key, tlen + 1 + idlen);
}

/* Redis could not answer: the policy decides. Fail-open trusts the Bloom filter alone. */
static void decide_without_redis(dedup_claim_t *c, int *degraded, int *refused)
{
    dedup_t *d = c->t->d;
    if (d->conf.policy == DEDUP_FAIL_CLOSED) {
        *refused = 1;
        for (size_t k = 0; k < c->n_sent; k++) /* nothing was claimed: nothing to release */
            c->items[c->sent[k]].verdict = DEDUP_SKIP;
        return;
    }
    /* Fail-open: the Bloom filter decides alone, and it can only be sure of "new". A "maybe
     * seen" is answered retry, never duplicate: a false positive (and a filter filled past its
     * sizing load has many) would otherwise drop an event that was never stored. A "new" event
     * is added to the filter at once, so a copy racing it while Redis is away is a "maybe"
     * (retry) rather than a second write; if its own write then fails, its resends get retry
     * until Redis answers again: delayed, never lost. */
    *degraded = 1;
    c->degraded = 1;
    for (size_t k = 0; k < c->n_sent; k++) {
        dedup_item_t *it = &c->items[c->sent[k]];
        dedup_hash_t h = bloom_key(d, c->tenant, it);
        if (dedup_bloom_maybe_contains(d->bloom, h)) {
            it->verdict = DEDUP_UNSURE;
        } else {
            it->verdict = DEDUP_DEGRADED;
            dedup_bloom_add(d->bloom, h);
        }
    }
}

/* A claim's reply (both layouts answer alike): the old value, or nil when the lease is ours.
 * NULL: no answer for this item (a retry that failed). */
dedup_verdict_t dedup_verdict_of(const dedup_item_t *it, const redisReply *r)
{
    if (r != NULL && r->type == REDIS_REPLY_NIL)
        return DEDUP_NEW; /* the lease is ours */
    if (r != NULL && r->type == REDIS_REPLY_STRING && r->len == COMMIT_LEN && r->str[0] == 'C')
        return get_u64(r->str + 1) == it->fingerprint ? DEDUP_DUPLICATE : DEDUP_CONFLICT;
    /* someone's lease (or a value we do not know, or an error reply for this key, or no
     * answer): not stored by us, not known to be stored: the client resends later */
    return DEDUP_IN_FLIGHT;
}

/* The claim round trip failed as a whole (err set) or every verdict is in: tell the caller. */
void dedup_claim_done(dedup_claim_t *c, const char *err)
{
    int degraded = 0, refused = 0;

    if (err != NULL) {
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "dedup: redis unavailable", "err=\"%s\" policy=%s",
                           err, dedup_policy_names[c->t->d->conf.policy]);
        decide_without_redis(c, &degraded, &refused);
    } else {
        /* claimed events enter the Bloom filter now, not after the write: if Redis dies while
         * they are in flight, a copy racing them is a "maybe" (retry), not a second write */
        for (size_t k = 0; k < c->n_sent; k++) {
            dedup_item_t *it = &c->items[c->sent[k]];
            if (it->verdict == DEDUP_NEW)
                dedup_bloom_add(c->t->d->bloom, bloom_key(c->t->d, c->tenant, it));
        }
    }
    c->cb(c->arg, c, degraded, refused);
}

void dedup_claim(dedup_thread_t *t, const char *tenant, dedup_item_t *items, size_t n,
                 dedup_claim_cb cb, void *arg)
{
    size_t tlen = strlen(tenant);
    dedup_claim_t *c = calloc(1, sizeof(*c) + tlen + 1);

    if (c == NULL)
        abort();
    c->t = t;
    c->items = items;
    c->n = n;
    c->cb = cb;
    c->arg = arg;
    memcpy(c->tenant, tenant, tlen + 1);
    dedup_put_u64(c->lease_tail, t->nonce_base + ++t->nonce_seq);
    mark_in_batch_repeats(items, n);

    c->sent = malloc((n ? n : 1) * sizeof(*c->sent));
    for (size_t i = 0; i < n; i++)
        if (items[i].verdict == DEDUP_NEW)
            c->sent[c->n_sent++] = i;
    if (c->n_sent == 0) {
        cb(arg, c, 0, 0);
        return;
    }
    if (t->d->conf.layout == DEDUP_LAYOUT_BUCKETS) {
        dedup_buckets_claim(c);
        return;
    }
    dedup_keys_claim(c);
}

void dedup_finish(dedup_thread_t *t, dedup_claim_t *c, const unsigned char *stored)
{
    dedup_t *d = t->d;

    /* the Bloom filter already has every event this claim let through (added at the claim) */
    if (!c->degraded) {
        if (d->conf.layout == DEDUP_LAYOUT_BUCKETS)
            dedup_buckets_finish(t, c, stored);
        else
            dedup_keys_finish(t, c, stored);
    }
    dedup_bloom_rotate_if_due(d->bloom, sl_now_ms());
    free(c->sent);
    free(c);
}

int dedup_thread_redis_up(const dedup_thread_t *t)
{
    return dedup_redis_is_up(t->redis);
}

void dedup_thread_stats(const dedup_thread_t *t, dedup_redis_stats_t *out)
{
    dedup_redis_stats(t->redis, out);
}

uint64_t dedup_fingerprint(const void *data, size_t len)
{
    /* FNV-1a, 64 bit: stable across processes and replicas (it is stored in Redis and compared
     * by other gateways), unlike the Bloom filter's per-process keyed hash */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h;
}
