/* Dedup: drops every resend of a tenant's event_id inside the window, across gateway replicas,
 * and never drops an event that was not stored. Claim (short lease) before producing, commit
 * (full TTL) after Kafka acked, release when the produce failed. See dedup/README.md. */
#ifndef DEDUP_H
#define DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "dedup_bloom.h"
#include "dedup_redis.h"
#include "sl_config.h"

/* What happens to a batch when Redis cannot answer. */
typedef enum {
    DEDUP_FAIL_OPEN = 0, /* Bloom filter alone: "new" accepted (records marked degraded),
                            "maybe seen" answered retry */
    DEDUP_FAIL_CLOSED,   /* the whole batch gets 503 + Retry-After */
} dedup_policy_t;

extern const char *const dedup_policy_names[]; /* "open", "closed", NULL */

/* How Redis remembers events (dedup/README.md, "Layouts"). Same protocol and verdicts. */
typedef enum {
    DEDUP_LAYOUT_KEYS = 0, /* one key per event: sl:dd:{<tenant>:<event_id>} */
    DEDUP_LAYOUT_BUCKETS,  /* fields in hashes sl:ddb:{<tenant>:<bucket>}:<generation> */
} dedup_layout_t;

extern const char *const dedup_layout_names[]; /* "keys", "buckets", NULL */

typedef struct {
    int enabled;
    char redis_host[256];       /* storage behind redis.host */
    uint64_t window_ms;         /* how long a committed event_id is remembered (TTL) */
    uint64_t lease_ms;          /* how long a claim holds before the produce must finish */
    int policy;                 /* dedup_policy_t */
    int layout;                 /* dedup_layout_t */
    uint64_t buckets;           /* buckets layout: hashes per tenant and generation (>= 1) */
    dedup_bloom_conf_t bloom;
    dedup_redis_conf_t redis;
} dedup_conf_t;

/* The configuration as typed settings (dedup.*, redis.*; `--help` lists them). */
typedef struct {
    int enabled;
    int64_t window_ms, lease_ms;
    int policy, layout;
    int64_t buckets; /* 0: derived from bloom_expected */
    int64_t bloom_expected, bloom_fp_ppm, bloom_generations;
    uint64_t bloom_max_bytes;
    char *redis_address;
    int64_t connect_timeout_ms, command_timeout_ms, reconnect_min_ms, reconnect_max_ms;
    int64_t breaker_failures, breaker_open_ms, max_pending;
} dedup_settings_t;

int dedup_config_register(sl_config_t *cfg, dedup_settings_t *s, char *errbuf, size_t errlen);
/* Checks and converts. conf->redis.host points into conf itself (keep conf where it is). */
int dedup_conf_from_settings(const dedup_settings_t *s, dedup_conf_t *conf, char *errbuf,
                             size_t errlen);

/* Per event, in and out of a claim. */
typedef enum {
    DEDUP_NEW = 0,      /* claimed: produce it, then commit or release */
    DEDUP_DEGRADED,     /* Redis unavailable, Bloom says new: produce it (marked degraded) */
    DEDUP_DUPLICATE,    /* committed earlier with the same payload: drop, answer duplicate */
    DEDUP_CONFLICT,     /* committed earlier with a different payload: duplicate/id_conflict */
    DEDUP_IN_FLIGHT,    /* leased by a request elsewhere: answer retry */
    DEDUP_UNSURE,       /* Redis unavailable and the Bloom filter says "maybe seen": answer
                           retry (a false positive must not drop a new event) */
    DEDUP_SKIP,         /* not taking part (invalid event): left alone */
} dedup_verdict_t;

typedef struct {
    const char *event_id; /* in: the idempotency key */
    size_t event_id_len;
    uint64_t fingerprint; /* in: hash of the event's payload */
    dedup_verdict_t verdict; /* in: DEDUP_SKIP to leave out, else DEDUP_NEW; out: the verdict */
} dedup_item_t;

typedef struct dedup dedup_t;          /* process-wide: conf, Bloom filter */
typedef struct dedup_thread dedup_thread_t; /* per loop thread: its Redis connection */

dedup_t *dedup_create(const dedup_conf_t *conf, char *errbuf, size_t errlen);
void dedup_destroy(dedup_t *d); /* accepts NULL; after every dedup_thread is destroyed */
dedup_thread_t *dedup_thread_create(dedup_t *d, h2o_evloop_t *loop);
void dedup_thread_destroy(dedup_thread_t *t); /* accepts NULL */

/* A claim in progress; it remembers the lease value it set so commit/release touch only what
 * this claim owns. Allocated by dedup_claim, freed by dedup_finish. */
typedef struct dedup_claim dedup_claim_t;

/* Called once on the loop thread when every item has a verdict. `degraded` is set when Redis
 * could not answer and the policy is fail-open; `refused` when the policy is fail-closed (the
 * caller answers 503; nothing was claimed). */
typedef void (*dedup_claim_cb)(void *arg, dedup_claim_t *claim, int degraded, int refused);

/* Decides every item with one pipelined Redis round trip: layout keys, SET key lease NX PX
 * lease_ms GET; layout buckets, one EVALSHA of the claim script per item (a second round trip
 * only when Redis lost its script cache: NOSCRIPT). Duplicates inside the batch are decided
 * locally. The items array must stay valid until the callback. */
void dedup_claim(dedup_thread_t *t, const char *tenant, dedup_item_t *items, size_t n,
                 dedup_claim_cb cb, void *arg);

/* After the produce: for every DEDUP_NEW item, stored[i] != 0 commits it (keys: SET key
 * committed PX window_ms; buckets: the commit script) and 0 releases its lease (deleted only if
 * still ours). One pipeline, no wait for the replies (a lost commit leaves the lease to expire:
 * a later resend is then accepted). The items array must still be valid during this call.
 * (The Bloom filter already holds every item the claim let through.) Frees the claim. */
void dedup_finish(dedup_thread_t *t, dedup_claim_t *claim, const unsigned char *stored);

/* The thread's Redis connection is up and its circuit closed (for /readyz and metrics). */
int dedup_thread_redis_up(const dedup_thread_t *t);
void dedup_thread_stats(const dedup_thread_t *t, dedup_redis_stats_t *out);

/* Payload fingerprint stored with each event_id: stable across processes (not keyed). */
uint64_t dedup_fingerprint(const void *data, size_t len);

#endif
