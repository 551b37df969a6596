/* Dedup's private header: the objects shared by the protocol core (dedup.c) and the two Redis
 * layouts (dedup_keys.c, dedup_buckets.c), and the few functions they call across files. */
#ifndef DEDUP_INT_H
#define DEDUP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dedup.h"

#define LEASE_LEN 17 /* a lease value: 'L' fp[8] nonce[8] (buckets: + the expiry, decimal) */
#define COMMIT_LEN 9 /* a committed value: 'C' fp[8] */
#define KEY_MAX 320  /* room for a keys-layout key, sl:dd:{<tenant>:<event_id>} */

/* Layout buckets: its scripts, indexing struct dedup's sha. */
enum { SCRIPT_CLAIM, SCRIPT_COMMIT, SCRIPT_RELEASE, SCRIPT__COUNT };

/* Process-wide (dedup_t): the conf, the Bloom filter, the bucket scripts' SHA1s. */
struct dedup {
    dedup_conf_t conf;
    dedup_bloom_t *bloom;
    char sha[SCRIPT__COUNT][41]; /* layout buckets: the scripts' SHA1, hex */
};

/* Per loop thread (dedup_thread_t): its Redis connection and lease nonces. */
struct dedup_thread {
    dedup_t *d;
    dedup_redis_t *redis;
    uint64_t nonce_seq;
    uint64_t nonce_base;
    /* layout buckets: 1 + the adapter's reconnect count when the scripts were last sent with a
     * pipeline (0: not yet, or that pipeline failed); Redis keeps scripts per server, and a
     * restarted server comes with a new connection */
    uint64_t scripts_conn;
};

/* A claim in progress (dedup_claim_t): its items, its nonce, what went to Redis. */
struct dedup_claim {
    dedup_thread_t *t;
    dedup_item_t *items;
    size_t n;
    dedup_claim_cb cb;
    void *arg;
    int degraded;
    char lease_tail[8]; /* the nonce: tells our lease from anyone else's */
    uint64_t gen;       /* layout buckets: the generation the leases were written in */
    size_t *sent;       /* indices of the items sent to Redis, in pipeline order */
    size_t n_sent;
    char tenant[];
};

/* dedup.c: writes v at p as 8 bytes, host byte order, unaligned. */
void dedup_put_u64(char *p, uint64_t v);
/* dedup.c: a claim's reply (both layouts answer alike) as the item's verdict; r NULL: no answer. */
dedup_verdict_t dedup_verdict_of(const dedup_item_t *it, const redisReply *r);
/* dedup.c: every verdict is in, or the round trip failed (err): the policy, then the callback. */
void dedup_claim_done(dedup_claim_t *c, const char *err);

/* dedup_keys.c: sl:dd:{<tenant>:<event_id>} into key[KEY_MAX]; its length (the Bloom key too). */
size_t dedup_make_key(char *key, const char *tenant, const dedup_item_t *it);
/* dedup_keys.c: claims c->sent[], one SET NX PX GET each; ends in dedup_claim_done. */
void dedup_keys_claim(dedup_claim_t *c);
/* dedup_keys.c: commits (stored) or releases each DEDUP_NEW item; one pipeline, no wait. */
void dedup_keys_finish(dedup_thread_t *t, dedup_claim_t *c, const unsigned char *stored);

/* dedup_buckets.c: fills d->sha with the SHA1 of each script (for EVALSHA). */
void dedup_buckets_hash_scripts(dedup_t *d);
/* dedup_buckets.c: claims c->sent[], one EVALSHA each; ends in dedup_claim_done. */
void dedup_buckets_claim(dedup_claim_t *c);
/* dedup_buckets.c: commits (stored) or releases each DEDUP_NEW item; one pipeline, no wait. */
void dedup_buckets_finish(dedup_thread_t *t, dedup_claim_t *c, const unsigned char *stored);

#endif
