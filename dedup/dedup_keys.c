/* Layout keys (dedup.layout = keys): one Redis key per remembered event. The hash tag covers
 * tenant and event_id, so every command is single-slot and a cluster spreads a tenant's events
 * over all shards:
 *   key    sl:dd:{<tenant>:<event_id>}
 *   lease  'L' fp[8] nonce[8]   SET NX PX lease_ms GET  (claim; the old value comes back)
 *   commit 'C' fp[8]            SET PX window_ms        (after Kafka acked)
 *   release                     DEL only while the value is still our lease (EVAL) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedup_int.h"
#include "sl_log.h"

static const char release_script[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end "
    "return 0";

/* Appends n bytes of s at *at, never past the last byte of key (the NUL's place). */
static void key_put(char *key, size_t *at, const char *s, size_t n)
{
    if (n > KEY_MAX - 1 - *at)
        n = KEY_MAX - 1 - *at;
    memcpy(key + *at, s, n);
    *at += n;
}

size_t dedup_make_key(char *key, const char *tenant, const dedup_item_t *it)
{
    /* "sl:dd:{<tenant>:<event_id>}", cut at KEY_MAX - 1 bytes; built without printf: this runs
     * twice per event on the hot path */
    size_t at = 0;
    key_put(key, &at, "sl:dd:{", 7);
    key_put(key, &at, tenant, strlen(tenant));
    key_put(key, &at, ":", 1);
    key_put(key, &at, it->event_id, it->event_id_len);
    key_put(key, &at, "}", 1);
    key[at] = '\0';
    return at;
}

static void on_claim_replies(void *arg, const char *err, redisReply **replies, size_t n)
{
    dedup_claim_t *c = arg;

    if (err == NULL)
        for (size_t k = 0; k < n; k++)
            c->items[c->sent[k]].verdict = dedup_verdict_of(&c->items[c->sent[k]], replies[k]);
    dedup_claim_done(c, err);
}

void dedup_keys_claim(dedup_claim_t *c)
{
    dedup_thread_t *t = c->t;
    char lease[LEASE_LEN], px[24];
    int px_len;
    const char *err = NULL;
    int *argc;
    const char *const **argv;
    const size_t **argvlen;
    char(*keys)[KEY_MAX];
    const char **vecs;
    size_t *lens;

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
        const dedup_item_t *it = &c->items[c->sent[k]];
        const char **v = vecs + 7 * k;
        size_t *l = lens + 7 * k;
        char *lv = keys[k] + KEY_MAX - LEASE_LEN; /* the lease value lives after the key */
        size_t klen = dedup_make_key(keys[k], c->tenant, it);

        memcpy(lv, lease, LEASE_LEN);
        dedup_put_u64(lv + 1, it->fingerprint);
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
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "dedup: commit failed; leases will expire instead",
                           "err=\"%s\"", err);
}

void dedup_keys_finish(dedup_thread_t *t, dedup_claim_t *c, const unsigned char *stored)
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

        if (it->verdict != DEDUP_NEW)
            continue;
        klen = dedup_make_key(key, c->tenant, it);
        if (stored[i]) {
            val[0] = 'C';
            dedup_put_u64(val + 1, it->fingerprint);
            v[0] = "SET", l[0] = 3;
            v[1] = key, l[1] = klen;
            v[2] = val, l[2] = COMMIT_LEN;
            v[3] = "PX", l[3] = 2;
            v[4] = px, l[4] = (size_t)px_len;
            argc[n_cmd] = 5;
        } else {
            val[0] = 'L';
            dedup_put_u64(val + 1, it->fingerprint);
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
    if (n_cmd > 0 && dedup_redis_pipeline(t->redis, n_cmd, argc, argv, argvlen, on_finish_replies,
                                          NULL, &err) != 0)
        on_finish_replies(NULL, err, NULL, 0);
    free(argc);
    free(argv);
    free(argvlen);
    free(bufs);
    free(vecs);
    free(lens);
}
