/* The claim -> produce -> commit protocol on top of the Bloom filter and the Redis adapter.
 *
 * Redis layout, one key per remembered event (the hash tag covers tenant and event_id, so every
 * command is single-slot and a cluster spreads a tenant's events over all shards):
 *   key    sl:dd:{<tenant>:<event_id>}
 *   lease  'L' fp[8] nonce[8]   SET NX PX lease_ms GET  (claim; the old value comes back)
 *   commit 'C' fp[8]            SET PX window_ms        (after Kafka acked)
 *   release                     DEL only while the value is still our lease (EVAL) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "dedup.h"
#include "sl_log.h"

const char *const dedup_policy_names[] = {"open", "closed", NULL};

#define LEASE_LEN 17
#define COMMIT_LEN 9
#define KEY_MAX 320

static const char release_script[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end "
    "return 0";

struct dedup {
    dedup_conf_t conf;
    dedup_bloom_t *bloom;
};

struct dedup_thread {
    dedup_t *d;
    dedup_redis_t *redis;
    uint64_t nonce_seq;
    uint64_t nonce_base;
};

struct dedup_claim {
    dedup_thread_t *t;
    dedup_item_t *items;
    size_t n;
    dedup_claim_cb cb;
    void *arg;
    int degraded;
    char lease_tail[8]; /* the nonce: tells our lease from anyone else's */
    size_t *sent;       /* indices of the items sent to Redis, in pipeline order */
    size_t n_sent;
    char tenant[];
};

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
    if ((d->bloom = dedup_bloom_create(&conf->bloom, sl_now_ms(), errbuf, errlen)) == NULL)
        goto Fail;
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

static size_t make_key(char *key, const char *tenant, const dedup_item_t *it)
{
    int n = snprintf(key, KEY_MAX, "sl:dd:{%s:%.*s}", tenant, (int)it->event_id_len,
                     it->event_id);
    return n < KEY_MAX ? (size_t)n : KEY_MAX - 1;
}

static void put_u64(char *p, uint64_t v)
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
        uint64_t slot = 1469598103934665603u;
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

static dedup_hash_t bloom_key(const dedup_t *d, const char *tenant, const dedup_item_t *it)
{
    char key[KEY_MAX];
    size_t n = make_key(key, tenant, it);
    return dedup_bloom_hash(d->bloom, key, n);
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
    *degraded = 1;
    c->degraded = 1;
    for (size_t k = 0; k < c->n_sent; k++) {
        dedup_item_t *it = &c->items[c->sent[k]];
        it->verdict = dedup_bloom_maybe_contains(d->bloom, bloom_key(d, c->tenant, it))
                          ? DEDUP_DUPLICATE
                          : DEDUP_DEGRADED;
    }
}

static void on_claim_replies(void *arg, const char *err, redisReply **replies, size_t n)
{
    dedup_claim_t *c = arg;
    int degraded = 0, refused = 0;

    if (err != NULL) {
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "dedup: redis unavailable", "err=\"%s\" policy=%s",
                           err, dedup_policy_names[c->t->d->conf.policy]);
        decide_without_redis(c, &degraded, &refused);
    } else {
        for (size_t k = 0; k < n; k++) {
            dedup_item_t *it = &c->items[c->sent[k]];
            const redisReply *r = replies[k];
            if (r->type == REDIS_REPLY_NIL) {
                it->verdict = DEDUP_NEW; /* the lease is ours */
            } else if (r->type == REDIS_REPLY_STRING && r->len == COMMIT_LEN && r->str[0] == 'C') {
                it->verdict =
                    get_u64(r->str + 1) == it->fingerprint ? DEDUP_DUPLICATE : DEDUP_CONFLICT;
            } else {
                /* someone's lease (or a value we do not know, or an error reply for this key):
                 * not stored by us, not known to be stored: the client resends later */
                it->verdict = DEDUP_IN_FLIGHT;
            }
        }
    }
    c->cb(c->arg, c, degraded, refused);
}

void dedup_claim(dedup_thread_t *t, const char *tenant, dedup_item_t *items, size_t n,
                 dedup_claim_cb cb, void *arg)
{
    size_t tlen = strlen(tenant);
    dedup_claim_t *c = calloc(1, sizeof(*c) + tlen + 1);
    char lease[LEASE_LEN], px[24];
    int px_len;
    const char *err = NULL;
    int *argc;
    const char *const **argv;
    const size_t **argvlen;
    char (*keys)[KEY_MAX];
    const char **vecs;
    size_t *lens;

    if (c == NULL)
        abort();
    c->t = t;
    c->items = items;
    c->n = n;
    c->cb = cb;
    c->arg = arg;
    memcpy(c->tenant, tenant, tlen + 1);
    put_u64(c->lease_tail, t->nonce_base + ++t->nonce_seq);
    mark_in_batch_repeats(items, n);

    c->sent = malloc((n ? n : 1) * sizeof(*c->sent));
    for (size_t i = 0; i < n; i++)
        if (items[i].verdict == DEDUP_NEW)
            c->sent[c->n_sent++] = i;
    if (c->n_sent == 0) {
        cb(arg, c, 0, 0);
        return;
    }

    /* SET key lease NX PX lease_ms GET, one per event, one pipeline */
    px_len = snprintf(px, sizeof(px), "%llu", (unsigned long long)t->d->conf.lease_ms);
    argc = malloc(c->n_sent * sizeof(*argc));
    argv = malloc(c->n_sent * sizeof(*argv));
    argvlen = malloc(c->n_sent * sizeof(*argvlen));
    keys = malloc(c->n_sent * sizeof(*keys));
    vecs = malloc(c->n_sent * 7 * sizeof(*vecs));
    lens = malloc(c->n_sent * 7 * sizeof(*lens));
    lease[0] = 'L';
    memcpy(lease + 9, c->lease_tail, 8);
    for (size_t k = 0; k < c->n_sent; k++) {
        const dedup_item_t *it = &items[c->sent[k]];
        const char **v = vecs + 7 * k;
        size_t *l = lens + 7 * k;
        char *lv = keys[k] + KEY_MAX - LEASE_LEN; /* the lease value lives after the key */
        size_t klen = make_key(keys[k], tenant, it);

        memcpy(lv, lease, LEASE_LEN);
        put_u64(lv + 1, it->fingerprint);
        v[0] = "SET", l[0] = 3;
        v[1] = keys[k], l[1] = klen;
        v[2] = lv, l[2] = LEASE_LEN;
        v[3] = "NX", l[3] = 2;
        v[4] = "PX", l[4] = 2;
        v[5] = px, l[5] = (size_t)px_len;
        v[6] = "GET", l[6] = 3;
        argc[k] = 7;
        argv[k] = v;
        argvlen[k] = l;
    }
    if (dedup_redis_pipeline(t->redis, c->n_sent, argc, argv, argvlen, on_claim_replies, c, &err) !=
        0)
        on_claim_replies(c, err, NULL, 0);
    free(argc);
    free(argv);
    free(argvlen);
    free(keys);
    free(vecs);
    free(lens);
}

static void on_finish_replies(void *arg, const char *err, redisReply **replies, size_t n)
{
    (void)arg;
    (void)replies;
    (void)n;
    if (err != NULL)
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000,
                           "dedup: commit failed; leases will expire instead", "err=\"%s\"", err);
}

void dedup_finish(dedup_thread_t *t, dedup_claim_t *c, const unsigned char *stored)
{
    dedup_t *d = t->d;
    size_t n_cmd = 0;
    int *argc = malloc((c->n ? c->n : 1) * sizeof(*argc));
    const char *const **argv = malloc((c->n ? c->n : 1) * sizeof(*argv));
    const size_t **argvlen = malloc((c->n ? c->n : 1) * sizeof(*argvlen));
    char(*bufs)[KEY_MAX + 32] = malloc((c->n ? c->n : 1) * sizeof(*bufs));
    const char **vecs = malloc((c->n ? c->n : 1) * 6 * sizeof(*vecs));
    size_t *lens = malloc((c->n ? c->n : 1) * 6 * sizeof(*lens));
    char px[24];
    int px_len = snprintf(px, sizeof(px), "%llu", (unsigned long long)d->conf.window_ms);
    const char *err = NULL;

    for (size_t i = 0; i < c->n; i++) {
        dedup_item_t *it = &c->items[i];
        char *key = bufs[n_cmd], *val = bufs[n_cmd] + KEY_MAX;
        const char **v = vecs + 6 * n_cmd;
        size_t *l = lens + 6 * n_cmd;
        size_t klen;

        if (stored[i] && (it->verdict == DEDUP_NEW || it->verdict == DEDUP_DEGRADED))
            dedup_bloom_add(d->bloom, bloom_key(d, c->tenant, it));
        if (it->verdict != DEDUP_NEW || c->degraded)
            continue;
        klen = make_key(key, c->tenant, it);
        if (stored[i]) {
            val[0] = 'C';
            put_u64(val + 1, it->fingerprint);
            v[0] = "SET", l[0] = 3;
            v[1] = key, l[1] = klen;
            v[2] = val, l[2] = COMMIT_LEN;
            v[3] = "PX", l[3] = 2;
            v[4] = px, l[4] = (size_t)px_len;
            argc[n_cmd] = 5;
        } else {
            val[0] = 'L';
            put_u64(val + 1, it->fingerprint);
            memcpy(val + 9, c->lease_tail, 8);
            v[0] = "EVAL", l[0] = 4;
            v[1] = release_script, l[1] = sizeof(release_script) - 1;
            v[2] = "1", l[2] = 1;
            v[3] = key, l[3] = klen;
            v[4] = val, l[4] = LEASE_LEN;
            argc[n_cmd] = 5;
        }
        argv[n_cmd] = v;
        argvlen[n_cmd] = l;
        n_cmd++;
    }
    if (n_cmd > 0 &&
        dedup_redis_pipeline(t->redis, n_cmd, argc, argv, argvlen, on_finish_replies, NULL, &err) != 0)
        on_finish_replies(NULL, err, NULL, 0);
    dedup_bloom_rotate_if_due(d->bloom, sl_now_ms());
    free(argc);
    free(argv);
    free(argvlen);
    free(bufs);
    free(vecs);
    free(lens);
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
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h;
}
