/* The registry cache: lock-free lookup tables read by every loop thread, a mutex-protected side
 * map for keys being fetched or known to be missing, and fetch threads that talk to the
 * registry, compile, publish and persist.
 *
 * Why lookups need no lock: published entries and compiled schemas are never freed or moved
 * before destroy, a table slot goes from NULL to an entry once (stored with release, read with
 * acquire) and never changes again, and the only mutable fields of an entry are atomics. So a
 * reader probes the open-addressed table, and at worst sees the previous latest version or an
 * entry published a moment later. Writers (fetch threads, and lookups that miss) serialise on
 * c->mu, which the hit path never takes. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "schema_cache.h"
#include "schema_cache_int.h"
#include "sl_log.h"

#define N_SHARDS 64

/* A compiled schema, by registry id. Immutable once published. */
typedef struct {
    uint32_t id;
    const char *type; /* static string */
    void *compiled;
} sc_schema_t;

/* A (subject, version) key in the lookup table; version 0 is "latest". Immutable fields first;
 * the atomics change only for latest entries. */
typedef struct sc_entry {
    uint64_t hash;
    int32_t version;
    uint32_t subject_len;
    sc_schema_t *schema;             /* pinned entries: the schema of that version */
    _Atomic(struct sc_entry *) cur;  /* latest entries: the pinned entry now latest */
    _Atomic uint64_t fresh_until_ms; /* latest: after this, lookups queue a refresh */
    atomic_int refreshing;           /* latest: a refresh is queued or running */
    atomic_int gone;                 /* latest: the registry no longer knows the subject */
    atomic_int is_stale;             /* latest: from the snapshot, not confirmed yet */
    struct sc_entry *next_refresh;   /* refresh queue link (under c->mu) */
    char subject[];                  /* NUL-terminated */
} sc_entry_t;

/* A waiting PENDING lookup. */
typedef struct sc_waiter {
    schema_cache_cb_t cb;
    void *arg;
    struct sc_waiter *next;
} sc_waiter_t;

enum { REC_QUEUED, REC_RUNNING, REC_NEGATIVE, REC_FAILED };

/* A key that is not in the lookup table: being fetched, or known missing / failed until
 * `until_ms`. All fields under c->mu. By id when is_id. */
typedef struct sc_rec {
    uint64_t hash;
    int is_id;
    uint32_t id;
    int32_t version;
    int state;
    uint64_t until_ms;
    sc_waiter_t *waiters;
    struct sc_rec *hnext;         /* hash chain */
    struct sc_rec *older, *newer; /* settled list (NEGATIVE/FAILED only), for eviction */
    struct sc_rec *next_queued;   /* fetch queue */
    uint32_t subject_len;
    char subject[];
} sc_rec_t;

/* Lookup results counted per shard: each thread adds to its own cache line. */
enum { C_HIT, C_STALE, C_PENDING, C_NEGATIVE, C_UNAVAILABLE, C__N };
typedef struct {
    _Alignas(64) _Atomic uint64_t n[C__N];
} sc_shard_t;

typedef struct {
    schema_cache_t *c;
    pthread_t tid;
    int started;
    void *http;
    sl_hist_t rtt; /* single writer: this thread */
} sc_fetcher_t;

struct schema_cache {
    schema_cache_settings_t s; /* strings are our copies */
    schema_cache_ops_t ops;
    size_t max_body;

    _Atomic(sc_entry_t *) *slots; /* lookup table, open addressing, never shrinks */
    size_t mask;
    _Atomic(sc_schema_t *) *id_slots;
    size_t id_mask;
    atomic_size_t n_entries, n_schemas, n_recs_gauge;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    sc_rec_t **buckets;
    size_t bucket_mask, n_recs, n_waiters;
    sc_rec_t *oldest, *newest; /* settled list, in the order they settled */
    sc_rec_t *q_head, *q_tail;
    sc_entry_t *r_head, *r_tail;
    int stopping;
    int probe_pending, probe_running;
    uint64_t probe_at_ms; /* real monotonic time */

    sc_fetcher_t *fetchers;
    size_t n_fetchers;
    sc_disk_t *disk;
    int http_ref;

    atomic_int warm;
    _Atomic uint64_t fetches, fetch_errors, compile_errors, refreshes, persist_errors, full;
    sc_shard_t shards[N_SHARDS];
};

static _Thread_local int tls_shard = -1;
static atomic_uint next_shard;

static inline void count(schema_cache_t *c, int what)
{
    if (tls_shard < 0)
        tls_shard = (int)(atomic_fetch_add(&next_shard, 1) % N_SHARDS);
    atomic_fetch_add_explicit(&c->shards[tls_shard].n[what], 1, memory_order_relaxed);
}

static uint64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline uint64_t now_ms(const schema_cache_t *c)
{
    struct timespec ts;
    if (c->ops.now_ms != NULL)
        return c->ops.now_ms(c->ops.clock_ctx);
    /* the coarse clock (a few ms resolution) costs a few ns; TTLs are seconds */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Word-at-a-time multiply-xorshift over the subject, the length and version mixed in, then the
 * splitmix64 finaliser: a few ns for an event_type, where byte-wise FNV cost most of a HIT. Not
 * keyed: subjects that collide only lengthen a probe, and the table holds only subjects the
 * registry knows (unknown ones live in the bounded side map). */
static inline uint64_t key_hash(const char *s, size_t n, int32_t version)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)n << 32) ^ (uint32_t)version;
    uint64_t w;

    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    if (n > 0) {
        w = 0;
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)(unsigned char)s[i] << (8 * i);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    }
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

static inline uint64_t id_hash(uint32_t id)
{
    uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n)
        p <<= 1;
    return p;
}

static const char *type_name(const char *t)
{
    /* the registry's spelling, reduced to static strings so hits can hand them out */
    if (t == NULL || strcmp(t, "AVRO") == 0)
        return "AVRO";
    if (strcmp(t, "PROTOBUF") == 0)
        return "PROTOBUF";
    if (strcmp(t, "JSON") == 0)
        return "JSON";
    return NULL;
}

/* ---- lock-free tables ---- */

static sc_entry_t *entry_find(const schema_cache_t *c, uint64_t h, const char *s, size_t n,
                              int32_t version)
{
    size_t i = (size_t)h & c->mask;
    for (;;) {
        sc_entry_t *e = atomic_load_explicit(&c->slots[i], memory_order_acquire);
        if (e == NULL)
            return NULL;
        if (e->hash == h && e->version == version && e->subject_len == n &&
            memcmp(e->subject, s, n) == 0)
            return e;
        i = (i + 1) & c->mask;
    }
}

static sc_schema_t *schema_find(const schema_cache_t *c, uint32_t id)
{
    size_t i = (size_t)id_hash(id) & c->id_mask;
    for (;;) {
        sc_schema_t *sc = atomic_load_explicit(&c->id_slots[i], memory_order_acquire);
        if (sc == NULL || sc->id == id)
            return sc;
        i = (i + 1) & c->id_mask;
    }
}

/* Publishes e (fully built). Under c->mu (or before the threads start). The tables are sized at
 * twice their bound, so a free slot always exists. */
static void entry_publish(schema_cache_t *c, sc_entry_t *e)
{
    size_t i = (size_t)e->hash & c->mask;
    while (atomic_load_explicit(&c->slots[i], memory_order_relaxed) != NULL)
        i = (i + 1) & c->mask;
    atomic_store_explicit(&c->slots[i], e, memory_order_release);
    atomic_fetch_add(&c->n_entries, 1);
}

static void schema_publish(schema_cache_t *c, sc_schema_t *sc)
{
    size_t i = (size_t)id_hash(sc->id) & c->id_mask;
    while (atomic_load_explicit(&c->id_slots[i], memory_order_relaxed) != NULL)
        i = (i + 1) & c->id_mask;
    atomic_store_explicit(&c->id_slots[i], sc, memory_order_release);
    atomic_fetch_add(&c->n_schemas, 1);
}

static sc_entry_t *entry_new(uint64_t h, const char *s, size_t n, int32_t version)
{
    sc_entry_t *e = calloc(1, sizeof(*e) + n + 1);
    if (e == NULL)
        abort();
    e->hash = h;
    e->version = version;
    e->subject_len = (uint32_t)n;
    memcpy(e->subject, s, n);
    return e;
}

/* ---- the side map of keys not in the table (under c->mu) ---- */

static sc_rec_t *rec_find(schema_cache_t *c, uint64_t h, int is_id, uint32_t id, const char *s,
                          size_t n, int32_t version)
{
    for (sc_rec_t *r = c->buckets[h & c->bucket_mask]; r != NULL; r = r->hnext) {
        if (r->hash != h || r->is_id != is_id)
            continue;
        if (is_id ? r->id == id
                  : (r->version == version && r->subject_len == n && memcmp(r->subject, s, n) == 0))
            return r;
    }
    return NULL;
}

static int rec_is_settled(const sc_rec_t *r)
{
    return r->state == REC_NEGATIVE || r->state == REC_FAILED;
}

static void settled_remove(schema_cache_t *c, sc_rec_t *r)
{
    if (r->older != NULL)
        r->older->newer = r->newer;
    else
        c->oldest = r->newer;
    if (r->newer != NULL)
        r->newer->older = r->older;
    else
        c->newest = r->older;
    r->older = r->newer = NULL;
}

/* Marks r known-missing or failed until `until_ms`, youngest in the eviction order. */
static void rec_settle(schema_cache_t *c, sc_rec_t *r, int state, uint64_t until_ms)
{
    if (rec_is_settled(r))
        settled_remove(c, r);
    r->state = state;
    r->until_ms = until_ms;
    r->older = c->newest;
    r->newer = NULL;
    if (c->newest != NULL)
        c->newest->newer = r;
    else
        c->oldest = r;
    c->newest = r;
}

static void rec_unlink(schema_cache_t *c, sc_rec_t *r)
{
    sc_rec_t **pp = &c->buckets[r->hash & c->bucket_mask];
    while (*pp != r)
        pp = &(*pp)->hnext;
    *pp = r->hnext;
    if (rec_is_settled(r))
        settled_remove(c, r);
    c->n_recs--;
    atomic_store(&c->n_recs_gauge, c->n_recs);
}

/* Makes room for one more record by forgetting the one that settled first (nobody waits on a
 * settled record). O(1): a flood of unknown types must not make each miss scan the map. 0, or
 * -1 when every record is a fetch queued or in progress. */
static int rec_make_room(schema_cache_t *c)
{
    sc_rec_t *r = c->oldest;
    if (c->n_recs < (size_t)c->s.max_negative)
        return 0;
    if (r == NULL)
        return -1;
    rec_unlink(c, r);
    free(r);
    return 0;
}

static sc_rec_t *rec_new(schema_cache_t *c, uint64_t h, int is_id, uint32_t id, const char *s,
                         size_t n, int32_t version)
{
    sc_rec_t *r = calloc(1, sizeof(*r) + n + 1);
    if (r == NULL)
        abort();
    r->hash = h;
    r->is_id = is_id;
    r->id = id;
    r->version = version;
    r->subject_len = (uint32_t)n;
    memcpy(r->subject, s, n);
    r->state = REC_QUEUED; /* the caller queues it */
    r->hnext = c->buckets[h & c->bucket_mask];
    c->buckets[h & c->bucket_mask] = r;
    c->n_recs++;
    atomic_store(&c->n_recs_gauge, c->n_recs);
    return r;
}

static void rec_enqueue(schema_cache_t *c, sc_rec_t *r)
{
    if (rec_is_settled(r))
        settled_remove(c, r);
    r->state = REC_QUEUED;
    r->next_queued = NULL;
    if (c->q_tail != NULL)
        c->q_tail->next_queued = r;
    else
        c->q_head = r;
    c->q_tail = r;
    pthread_cond_signal(&c->cond);
}

/* Resolves a key absent from the table, under c->mu: known-missing, failed recently, being
 * fetched (join it), or new (queue a fetch). */
static schema_cache_status_t miss_locked(schema_cache_t *c, uint64_t h, int is_id, uint32_t id,
                                         const char *s, size_t n, int32_t version,
                                         schema_cache_cb_t cb, void *arg)
{
    sc_rec_t *r = rec_find(c, h, is_id, id, s, n, version);
    uint64_t now = now_ms(c);

    if (r != NULL && r->state == REC_NEGATIVE && now < r->until_ms)
        return SCHEMA_CACHE_NEGATIVE;
    if (r != NULL && r->state == REC_FAILED && now < r->until_ms)
        return SCHEMA_CACHE_UNAVAILABLE;
    if (r == NULL) {
        if (c->stopping || rec_make_room(c) != 0)
            return SCHEMA_CACHE_UNAVAILABLE;
        r = rec_new(c, h, is_id, id, s, n, version);
        rec_enqueue(c, r);
    } else if (r->state == REC_NEGATIVE || r->state == REC_FAILED) {
        rec_enqueue(c, r); /* expired: ask again */
    }
    if (cb != NULL) {
        sc_waiter_t *w;
        /* the bound protects us from a flood of requests all waiting on a slow registry */
        if (c->n_waiters >= (size_t)c->s.max_waiters)
            return SCHEMA_CACHE_UNAVAILABLE;
        w = malloc(sizeof(*w));
        if (w == NULL)
            abort();
        w->cb = cb;
        w->arg = arg;
        w->next = r->waiters;
        r->waiters = w;
        c->n_waiters++;
    }
    return SCHEMA_CACHE_PENDING;
}

static void queue_refresh(schema_cache_t *c, sc_entry_t *e)
{
    int expected = 0;
    /* one refresh per entry at a time, whoever notices the expiry first */
    if (!atomic_compare_exchange_strong(&e->refreshing, &expected, 1))
        return;
    pthread_mutex_lock(&c->mu);
    e->next_refresh = NULL;
    if (c->r_tail != NULL)
        c->r_tail->next_refresh = e;
    else
        c->r_head = e;
    c->r_tail = e;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

static schema_cache_status_t finish(schema_cache_t *c, schema_cache_status_t st)
{
    static const int which[] = {C_HIT, C_NEGATIVE, C_UNAVAILABLE, C_PENDING};
    count(c, which[st]);
    return st;
}

schema_cache_status_t schema_cache_lookup(schema_cache_t *c, const char *subject,
                                          size_t subject_len, int32_t version,
                                          schema_cache_hit_t *hit, schema_cache_cb_t cb, void *arg)
{
    uint64_t h;
    sc_entry_t *e;
    schema_cache_status_t st;

    if (subject_len == 0 || subject_len > SCHEMA_CACHE_MAX_SUBJECT_BYTES || version < 0)
        return finish(c, SCHEMA_CACHE_NEGATIVE);
    h = key_hash(subject, subject_len, version);
    for (;;) {
        e = entry_find(c, h, subject, subject_len, version);
        if (e != NULL)
            break;
        pthread_mutex_lock(&c->mu);
        /* published between our probe and the lock? then it is a hit after all */
        if (entry_find(c, h, subject, subject_len, version) != NULL) {
            pthread_mutex_unlock(&c->mu);
            continue;
        }
        st = miss_locked(c, h, 0, 0, subject, subject_len, version, cb, arg);
        pthread_mutex_unlock(&c->mu);
        return finish(c, st);
    }
    if (version == 0) {
        const sc_entry_t *p;
        if (now_ms(c) >= atomic_load_explicit(&e->fresh_until_ms, memory_order_relaxed))
            queue_refresh(c, e); /* stale-while-revalidate: this lookup still gets an answer */
        if (atomic_load_explicit(&e->gone, memory_order_relaxed))
            return finish(c, SCHEMA_CACHE_NEGATIVE);
        p = atomic_load_explicit(&e->cur, memory_order_acquire);
        hit->compiled = p->schema->compiled;
        hit->id = p->schema->id;
        hit->version = p->version;
        hit->type = p->schema->type;
        hit->is_stale = atomic_load_explicit(&e->is_stale, memory_order_relaxed);
        if (hit->is_stale)
            count(c, C_STALE);
    } else {
        hit->compiled = e->schema->compiled;
        hit->id = e->schema->id;
        hit->version = e->version;
        hit->type = e->schema->type;
        hit->is_stale = 0;
    }
    return finish(c, SCHEMA_CACHE_HIT);
}

schema_cache_status_t schema_cache_lookup_id(schema_cache_t *c, uint32_t id,
                                             schema_cache_hit_t *hit, schema_cache_cb_t cb,
                                             void *arg)
{
    sc_schema_t *sc;
    schema_cache_status_t st;

    if (id == 0 || id > INT32_MAX)
        return finish(c, SCHEMA_CACHE_NEGATIVE);
    sc = schema_find(c, id);
    if (sc == NULL) {
        pthread_mutex_lock(&c->mu);
        sc = schema_find(c, id);
        st = sc != NULL ? SCHEMA_CACHE_HIT : miss_locked(c, id_hash(id), 1, id, "", 0, 0, cb, arg);
        pthread_mutex_unlock(&c->mu);
        if (st != SCHEMA_CACHE_HIT)
            return finish(c, st);
    }
    hit->compiled = sc->compiled;
    hit->id = sc->id;
    hit->version = 0;
    hit->type = sc->type;
    hit->is_stale = 0;
    return finish(c, SCHEMA_CACHE_HIT);
}

/* ---- the fetch side: registry answers ---- */

enum { ANS_OK, ANS_NOT_FOUND, ANS_ERROR };

typedef struct {
    int outcome;
    uint32_t id;
    int32_t version;
    const char *type;
    char *text; /* malloc'd schema text */
    size_t text_len;
    char err[256];
} sc_answer_t;

/* Log-safe rendering of a client-chosen subject: at most 64 bytes of [A-Za-z0-9._-], the rest
 * as '?', so a hostile event_type cannot forge log fields. */
static const char *safe_subject(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < 64 && o + 1 < outlen; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        out[o++] = ok ? ch : '?';
    }
    out[o] = '\0';
    return out;
}

static int do_get(schema_cache_t *c, sc_fetcher_t *f, const char *path, sl_buf_t *body,
                  char *errbuf, size_t errlen)
{
    uint64_t t0 = sl_now_ns();
    int status;

    atomic_fetch_add(&c->fetches, 1);
    if (c->ops.fetch != NULL)
        status = c->ops.fetch(c->ops.fetch_ctx, path, body, errbuf, errlen);
    else
        status = sc_http_get(f->http, c->s.registry_url, path, c->s.fetch_timeout_ms, body, errbuf,
                             errlen);
    sl_hist_observe(&f->rtt, (sl_now_ns() - t0) / 1000u);
    if (body->overflow)
        snprintf(errbuf, errlen, "registry response over %zu bytes", body->max);
    return status;
}

/* Confluent error bodies on 404: 40401 subject, 40402 version, 40403 schema not found. */
static int is_not_found(int status, const sl_buf_t *body)
{
    json_t *j, *code;
    int yes = 0;
    if (status != 404 || body->len == 0)
        return 0;
    j = json_loadb(body->data, body->len, 0, NULL);
    code = json_object_get(j, "error_code");
    if (json_is_integer(code)) {
        json_int_t v = json_integer_value(code);
        yes = v == 40401 || v == 40402 || v == 40403;
    }
    json_decref(j);
    return yes;
}

/* GET path and parse a schema answer ({"id","version","schema","schemaType"}; by-id answers
 * have no id or version: want_id fills it). */
static void fetch_schema(schema_cache_t *c, sc_fetcher_t *f, const char *path, uint32_t want_id,
                         sc_answer_t *a)
{
    sl_buf_t body;
    json_t *j = NULL, *v;
    int status;
    json_error_t jerr;

    memset(a, 0, sizeof(*a));
    a->outcome = ANS_ERROR;
    sl_buf_init(&body, c->max_body);
    status = do_get(c, f, path, &body, a->err, sizeof(a->err));
    if (status < 0 || (body.overflow && status != 200))
        goto Done;
    if (body.overflow) {
        /* a schema this big will not get smaller by asking again: treat it as unusable */
        atomic_store(&c->warm, 1);
        atomic_fetch_add(&c->compile_errors, 1);
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "schema cannot be compiled; treated as not found",
                           "error=\"%s\"", a->err);
        a->outcome = ANS_NOT_FOUND;
        goto Done;
    }
    if (is_not_found(status, &body)) {
        atomic_store(&c->warm, 1);
        a->outcome = ANS_NOT_FOUND;
        goto Done;
    }
    if (status != 200) {
        snprintf(a->err, sizeof(a->err), "registry answered HTTP %d", status);
        goto Done;
    }
    atomic_store(&c->warm, 1);
    j = json_loadb(body.data != NULL ? body.data : "", body.len, 0, &jerr);
    if (!json_is_object(j)) {
        snprintf(a->err, sizeof(a->err), "registry answer is not a JSON object");
        goto Done;
    }
    v = json_object_get(j, "id");
    if (want_id != 0 && v == NULL) {
        a->id = want_id;
    } else if (json_is_integer(v) && json_integer_value(v) > 0 &&
               json_integer_value(v) <= INT32_MAX &&
               (want_id == 0 || (uint32_t)json_integer_value(v) == want_id)) {
        a->id = (uint32_t)json_integer_value(v);
    } else {
        snprintf(a->err, sizeof(a->err), "registry answer has no valid \"id\"");
        goto Done;
    }
    v = json_object_get(j, "version");
    if (want_id == 0) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
            json_integer_value(v) > INT32_MAX) {
            snprintf(a->err, sizeof(a->err), "registry answer has no valid \"version\"");
            goto Done;
        }
        a->version = (int32_t)json_integer_value(v);
    }
    v = json_object_get(j, "schemaType");
    a->type = type_name(json_is_string(v) ? json_string_value(v) : NULL);
    if (v != NULL && (!json_is_string(v) || a->type == NULL)) {
        snprintf(a->err, sizeof(a->err), "registry answer has an unknown \"schemaType\"");
        goto Done;
    }
    v = json_object_get(j, "schema");
    if (!json_is_string(v)) {
        snprintf(a->err, sizeof(a->err), "registry answer has no \"schema\" string");
        goto Done;
    }
    a->text_len = json_string_length(v);
    a->text = malloc(a->text_len + 1);
    if (a->text == NULL)
        abort();
    memcpy(a->text, json_string_value(v), a->text_len + 1);
    a->outcome = ANS_OK;
Done:
    json_decref(j);
    sl_buf_dispose(&body);
}

/* The schema for a.id: already cached, or compiled now (outside the lock; a race with another
 * thread compiling the same id is settled at publish). NULL when it cannot be used: then
 * a->outcome is NOT_FOUND (the schema is unusable: same answer as unknown). */
static void *compile_answer(schema_cache_t *c, sc_answer_t *a)
{
    char err[256] = "";
    void *compiled;

    if (a->text_len > c->s.max_schema_bytes) {
        snprintf(err, sizeof(err), "schema text over schema.max_schema_bytes (%zu bytes)",
                 a->text_len);
        compiled = NULL;
    } else {
        compiled =
            c->ops.compile(c->ops.ctx, a->text, a->text_len, a->type, a->id, err, sizeof(err));
    }
    if (compiled == NULL) {
        atomic_fetch_add(&c->compile_errors, 1);
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "schema cannot be compiled; treated as not found",
                           "id=%" PRIu32 " error=\"%s\"", a->id, err);
        a->outcome = ANS_NOT_FOUND;
    }
    return compiled;
}

/* What a publish changed, for the snapshot. */
typedef struct {
    int new_schema, new_pinned, new_latest;
} sc_changes_t;

/* Publishes the answer under c->mu: schema by id, then (subject, version), then (subject,
 * latest) when `latest` is given or wanted. Returns 0, or -1 when a bound is reached. `compiled`
 * is consumed (destroyed later by the caller through *dup when another thread won). */
static int publish_locked(schema_cache_t *c, const sc_answer_t *a, void *compiled, void **dup,
                          const char *subject, size_t n, int want_latest, sc_entry_t *latest,
                          sc_changes_t *ch)
{
    sc_schema_t *sc = schema_find(c, a->id);
    sc_entry_t *pinned = NULL;
    uint64_t now = now_ms(c);

    memset(ch, 0, sizeof(*ch));
    *dup = NULL;
    if (sc != NULL) {
        *dup = compiled;
    } else if (atomic_load(&c->n_schemas) >= (uint64_t)c->s.max_schemas) {
        *dup = compiled;
        return -1;
    } else {
        sc = calloc(1, sizeof(*sc));
        if (sc == NULL)
            abort();
        sc->id = a->id;
        sc->type = a->type;
        sc->compiled = compiled;
        schema_publish(c, sc);
        ch->new_schema = 1;
    }
    if (subject == NULL)
        return 0;
    pinned = entry_find(c, key_hash(subject, n, a->version), subject, n, a->version);
    if (pinned == NULL) {
        /* room for the pinned entry and, if needed, the latest one */
        if (atomic_load(&c->n_entries) + (want_latest && latest == NULL ? 2 : 1) >
            (uint64_t)c->s.max_subjects)
            return -1;
        pinned = entry_new(key_hash(subject, n, a->version), subject, n, a->version);
        pinned->schema = sc;
        entry_publish(c, pinned);
        ch->new_pinned = 1;
    }
    if (!want_latest)
        return 0;
    if (latest == NULL)
        latest = entry_find(c, key_hash(subject, n, 0), subject, n, 0);
    if (latest == NULL) {
        if (atomic_load(&c->n_entries) + 1 > (uint64_t)c->s.max_subjects)
            return -1;
        latest = entry_new(key_hash(subject, n, 0), subject, n, 0);
        atomic_store(&latest->cur, pinned);
        atomic_store(&latest->fresh_until_ms, now + (uint64_t)c->s.latest_ttl_ms);
        entry_publish(c, latest);
        ch->new_latest = 1;
        return 0;
    }
    if (atomic_load(&latest->cur) != pinned)
        ch->new_latest = 1;
    atomic_store_explicit(&latest->cur, pinned, memory_order_release);
    atomic_store(&latest->gone, 0);
    atomic_store(&latest->is_stale, 0);
    atomic_store(&latest->fresh_until_ms, now + (uint64_t)c->s.latest_ttl_ms);
    return 0;
}

static void persist(schema_cache_t *c, const sc_answer_t *a, const char *subject, size_t n,
                    const sc_changes_t *ch)
{
    sc_disk_rec_t recs[3];
    size_t k = 0;

    if (c->disk == NULL)
        return;
    /* in dependency order: load needs the schema before the mappings that point at it */
    if (ch->new_schema)
        recs[k++] = (sc_disk_rec_t){SC_DISK_SCHEMA, a->id, 0, a->type, a->text, a->text_len};
    if (ch->new_pinned)
        recs[k++] = (sc_disk_rec_t){SC_DISK_VERSION, a->id, a->version, NULL, subject, n};
    if (ch->new_latest)
        recs[k++] = (sc_disk_rec_t){SC_DISK_LATEST, 0, a->version, NULL, subject, n};
    if (k > 0 && sc_disk_append(c->disk, recs, k) != 0) {
        atomic_fetch_add(&c->persist_errors, 1);
        SL_LOG_RATELIMITED(SL_LOG_ERROR, 10000, "schema cache snapshot append failed", "%s", "");
    }
}

static void call_waiters(sc_waiter_t *w)
{
    while (w != NULL) {
        sc_waiter_t *next = w->next;
        w->cb(w->arg);
        free(w);
        w = next;
    }
}

static void note_full(schema_cache_t *c)
{
    atomic_fetch_add(&c->full, 1);
    SL_LOG_RATELIMITED(SL_LOG_WARN, 10000,
                       "schema cache full (schema.max_subjects / schema.max_schemas); new keys "
                       "answered unavailable",
                       "subjects=%zu schemas=%zu", atomic_load(&c->n_entries),
                       atomic_load(&c->n_schemas));
}

/* Fetches one side-map key and settles it: published (record dropped), negative, or failed.
 * r is ours while REC_RUNNING (eviction skips it); once settled another thread may evict it, so
 * everything needed afterwards is copied first. */
static void run_rec(schema_cache_t *c, sc_fetcher_t *f, sc_rec_t *r)
{
    char path[3 * SCHEMA_CACHE_MAX_SUBJECT_BYTES + 64], esc[3 * SCHEMA_CACHE_MAX_SUBJECT_BYTES + 1];
    char subject[SCHEMA_CACHE_MAX_SUBJECT_BYTES + 1], shown[80];
    size_t n = r->subject_len;
    uint32_t id = r->id;
    int is_id = r->is_id, rc = 0;
    sc_answer_t a;
    void *compiled = NULL, *dup = NULL;
    sc_changes_t ch = {0};
    sc_waiter_t *w;

    memcpy(subject, r->subject, n + 1);
    if (is_id) {
        snprintf(path, sizeof(path), "/schemas/ids/%" PRIu32, r->id);
    } else {
        sc_url_escape(subject, n, esc, sizeof(esc));
        if (r->version == 0)
            snprintf(path, sizeof(path), "/subjects/%s/versions/latest", esc);
        else
            snprintf(path, sizeof(path), "/subjects/%s/versions/%" PRId32, esc, r->version);
    }
    fetch_schema(c, f, path, is_id ? r->id : 0, &a);
    /* an id we hold already is not compiled again (ids are immutable) */
    if (a.outcome == ANS_OK && schema_find(c, a.id) == NULL)
        compiled = compile_answer(c, &a);

    pthread_mutex_lock(&c->mu);
    if (a.outcome == ANS_OK) {
        rc = publish_locked(c, &a, compiled, &dup, is_id ? NULL : subject, n,
                            !is_id && r->version == 0, NULL, &ch);
        if (rc != 0)
            note_full(c);
    }
    w = r->waiters;
    r->waiters = NULL;
    for (sc_waiter_t *x = w; x != NULL; x = x->next)
        c->n_waiters--;
    if (a.outcome == ANS_OK && rc == 0) {
        rec_unlink(c, r); /* the table answers from now on */
        free(r);
    } else if (a.outcome == ANS_NOT_FOUND) {
        rec_settle(c, r, REC_NEGATIVE, now_ms(c) + (uint64_t)c->s.negative_ttl_ms);
    } else {
        rec_settle(c, r, REC_FAILED, now_ms(c) + (uint64_t)c->s.retry_backoff_ms);
    }
    pthread_mutex_unlock(&c->mu);

    if (a.outcome == ANS_ERROR) {
        atomic_fetch_add(&c->fetch_errors, 1);
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "schema registry fetch failed",
                           "subject=\"%s\" id=%" PRIu32 " error=\"%s\"",
                           safe_subject(subject, n, shown, sizeof(shown)), id, a.err);
    }
    if (dup != NULL)
        c->ops.destroy(c->ops.ctx, dup);
    if (a.outcome == ANS_OK && rc == 0)
        persist(c, &a, is_id ? NULL : subject, n, &ch);
    call_waiters(w);
    free(a.text);
}

/* Refreshes a latest entry (stale-while-revalidate): readers keep the old answer meanwhile. */
static void run_refresh(schema_cache_t *c, sc_fetcher_t *f, sc_entry_t *e)
{
    char path[3 * SCHEMA_CACHE_MAX_SUBJECT_BYTES + 64], esc[3 * SCHEMA_CACHE_MAX_SUBJECT_BYTES + 1];
    char shown[80];
    sc_answer_t a;
    void *compiled = NULL, *dup = NULL;
    sc_changes_t ch = {0};
    int rc = 0;

    atomic_fetch_add(&c->refreshes, 1);
    sc_url_escape(e->subject, e->subject_len, esc, sizeof(esc));
    snprintf(path, sizeof(path), "/subjects/%s/versions/latest", esc);
    fetch_schema(c, f, path, 0, &a);
    if (a.outcome == ANS_OK && schema_find(c, a.id) == NULL)
        compiled = compile_answer(c, &a);

    pthread_mutex_lock(&c->mu);
    if (a.outcome == ANS_OK) {
        rc = publish_locked(c, &a, compiled, &dup, e->subject, e->subject_len, 1, e, &ch);
        if (rc != 0) {
            note_full(c);
            /* keep serving what we have; try again after the backoff */
            atomic_store(&e->fresh_until_ms, now_ms(c) + (uint64_t)c->s.retry_backoff_ms);
        }
    } else if (a.outcome == ANS_NOT_FOUND) {
        /* deleted in the registry (or no longer compilable): answer negative for a while */
        atomic_store(&e->gone, 1);
        atomic_store(&e->fresh_until_ms, now_ms(c) + (uint64_t)c->s.negative_ttl_ms);
    } else {
        atomic_store(&e->fresh_until_ms, now_ms(c) + (uint64_t)c->s.retry_backoff_ms);
    }
    atomic_store(&e->refreshing, 0);
    pthread_mutex_unlock(&c->mu);

    if (a.outcome == ANS_ERROR) {
        atomic_fetch_add(&c->fetch_errors, 1);
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000,
                           "schema registry refresh failed; serving the cached "
                           "version",
                           "subject=\"%s\" error=\"%s\"",
                           safe_subject(e->subject, e->subject_len, shown, sizeof(shown)), a.err);
    }
    if (dup != NULL)
        c->ops.destroy(c->ops.ctx, dup);
    if (a.outcome == ANS_OK && rc == 0)
        persist(c, &a, e->subject, e->subject_len, &ch);
    free(a.text);
}

/* GET /subjects: proves the registry answers (readiness) and queues a fetch of every subject's
 * latest version we do not hold, so the first events of each type do not wait. Leaves half of
 * the side map free for lookups. Returns 0 when the registry answered. */
static int run_probe(schema_cache_t *c, sc_fetcher_t *f)
{
    sl_buf_t body;
    char err[256];
    json_t *j = NULL;
    size_t i, queued = 0;
    int status, rc = -1;

    sl_buf_init(&body, c->max_body);
    status = do_get(c, f, "/subjects", &body, err, sizeof(err));
    if (status == 200 && body.overflow) {
        /* answered, but too many subjects to list: ready, and lookups fetch on demand */
        SL_WARN("schema registry subject list over the response bound; no prefetch",
                "max_bytes=%zu", body.max);
        atomic_store(&c->warm, 1);
        rc = 0;
        goto Done;
    }
    if (status != 200) {
        if (status >= 0)
            snprintf(err, sizeof(err), "registry answered HTTP %d", status);
        atomic_fetch_add(&c->fetch_errors, 1);
        SL_LOG_RATELIMITED(SL_LOG_WARN, 10000, "schema registry not answering", "error=\"%s\"",
                           err);
        goto Done;
    }
    rc = 0;
    atomic_store(&c->warm, 1);
    j = json_loadb(body.data != NULL ? body.data : "", body.len, 0, NULL);
    pthread_mutex_lock(&c->mu);
    for (i = 0; json_is_array(j) && i < json_array_size(j); i++) {
        json_t *v = json_array_get(j, i);
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        uint64_t h;
        if (s == NULL || n == 0 || n > SCHEMA_CACHE_MAX_SUBJECT_BYTES)
            continue;
        if (c->n_recs >= (size_t)c->s.max_negative / 2 ||
            atomic_load(&c->n_entries) + 2 > (uint64_t)c->s.max_subjects)
            break;
        h = key_hash(s, n, 0);
        if (entry_find(c, h, s, n, 0) != NULL || rec_find(c, h, 0, 0, s, n, 0) != NULL)
            continue;
        rec_enqueue(c, rec_new(c, h, 0, 0, s, n, 0));
        queued++;
    }
    pthread_mutex_unlock(&c->mu);
    SL_INFO("schema registry answered; prefetching subjects", "subjects=%zu queued=%zu",
            json_is_array(j) ? json_array_size(j) : 0, queued);
Done:
    json_decref(j);
    sl_buf_dispose(&body);
    return rc;
}

static void *fetch_main(void *arg)
{
    sc_fetcher_t *f = arg;
    schema_cache_t *c = f->c;

    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        /* refreshes first: few (one per latest entry per TTL), and they keep the traffic
         * that already flows on current schemas; a flood of unknown types waits */
        if (c->r_head != NULL) {
            sc_entry_t *e = c->r_head;
            c->r_head = e->next_refresh;
            if (c->r_head == NULL)
                c->r_tail = NULL;
            pthread_mutex_unlock(&c->mu);
            run_refresh(c, f, e);
            pthread_mutex_lock(&c->mu);
        } else if (c->q_head != NULL) {
            sc_rec_t *r = c->q_head;
            c->q_head = r->next_queued;
            if (c->q_head == NULL)
                c->q_tail = NULL;
            r->state = REC_RUNNING;
            pthread_mutex_unlock(&c->mu);
            run_rec(c, f, r);
            pthread_mutex_lock(&c->mu);
        } else if (c->probe_pending && !c->probe_running && real_now_ms() >= c->probe_at_ms) {
            int ok;
            c->probe_running = 1;
            pthread_mutex_unlock(&c->mu);
            ok = run_probe(c, f) == 0;
            pthread_mutex_lock(&c->mu);
            c->probe_running = 0;
            if (ok)
                c->probe_pending = 0;
            else
                c->probe_at_ms = real_now_ms() + (uint64_t)c->s.retry_backoff_ms;
        } else if (c->probe_pending && !c->probe_running) {
            uint64_t at = c->probe_at_ms;
            struct timespec ts = {(time_t)(at / 1000u), (long)(at % 1000u) * 1000000L};
            pthread_cond_timedwait(&c->cond, &c->mu, &ts);
        } else {
            pthread_cond_wait(&c->cond, &c->mu);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- snapshot load ---- */

/* Takes one snapshot record into the tables (single-threaded: before the fetch threads start).
 * Returns 1 when kept (it goes into the compacted snapshot), 0 when skipped. */
static int on_disk_rec(void *arg, const sc_disk_rec_t *r)
{
    schema_cache_t *c = arg;
    sc_entry_t *pinned, *latest;
    uint64_t h;

    if (r->kind == SC_DISK_SCHEMA) {
        sc_answer_t a = {.id = r->id,
                         .type = type_name(r->type),
                         .text = (char *)r->payload,
                         .text_len = r->len};
        void *compiled, *dup;
        sc_changes_t ch;
        if (a.type == NULL || r->id == 0 || schema_find(c, r->id) != NULL)
            return 0;
        compiled = compile_answer(c, &a);
        if (compiled == NULL)
            return 0;
        if (publish_locked(c, &a, compiled, &dup, NULL, 0, 0, NULL, &ch) != 0 || dup != NULL) {
            c->ops.destroy(c->ops.ctx, compiled);
            return 0;
        }
        return 1;
    }
    if (r->len == 0 || r->len > SCHEMA_CACHE_MAX_SUBJECT_BYTES || r->version <= 0)
        return 0;
    if (r->kind == SC_DISK_VERSION) {
        sc_schema_t *sc = schema_find(c, r->id);
        h = key_hash(r->payload, r->len, r->version);
        if (sc == NULL || entry_find(c, h, r->payload, r->len, r->version) != NULL ||
            atomic_load(&c->n_entries) + 1 > (uint64_t)c->s.max_subjects)
            return 0;
        pinned = entry_new(h, r->payload, r->len, r->version);
        pinned->schema = sc;
        entry_publish(c, pinned);
        return 1;
    }
    pinned =
        entry_find(c, key_hash(r->payload, r->len, r->version), r->payload, r->len, r->version);
    if (pinned == NULL)
        return 0;
    h = key_hash(r->payload, r->len, 0);
    latest = entry_find(c, h, r->payload, r->len, 0);
    if (latest == NULL) {
        if (atomic_load(&c->n_entries) + 1 > (uint64_t)c->s.max_subjects)
            return 0;
        latest = entry_new(h, r->payload, r->len, 0);
        atomic_store(&latest->cur, pinned);
        entry_publish(c, latest);
    }
    /* a later record for the same subject wins; fresh_until 0: refreshed at first use */
    atomic_store(&latest->cur, pinned);
    atomic_store(&latest->is_stale, 1);
    atomic_store(&latest->fresh_until_ms, 0);
    return 1;
}

/* ---- create / destroy ---- */

const char *schema_cache_status_name(schema_cache_status_t st)
{
    static const char *const names[] = {"hit", "negative", "unavailable", "pending"};
    return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

schema_cache_t *schema_cache_create(const schema_cache_settings_t *s, const schema_cache_ops_t *ops,
                                    char *errbuf, size_t errlen)
{
    schema_cache_t *c = NULL;
    pthread_condattr_t ca;
    size_t nb;

    if (ops == NULL || ops->compile == NULL || ops->destroy == NULL) {
        snprintf(errbuf, errlen, "schema cache: ops.compile and ops.destroy are required");
        return NULL;
    }
    if (s->registry_url == NULL || s->registry_url[0] == '\0' || strlen(s->registry_url) > 1024) {
        snprintf(errbuf, errlen, "schema.registry_url: must be set (at most 1024 bytes)");
        return NULL;
    }
    if (s->max_subjects < 2 || s->max_schemas < 1 || s->max_negative < 2 || s->max_waiters < 1 ||
        s->fetch_threads < 1 || s->fetch_threads > 64 || s->max_schema_bytes < 16 ||
        s->latest_ttl_ms < 0 || s->negative_ttl_ms < 0 || s->retry_backoff_ms < 1 ||
        s->fetch_timeout_ms < 1 || s->max_subjects > 10000000 || s->max_schemas > 10000000 ||
        s->max_negative > 10000000 || s->max_schema_bytes > (64u << 20)) {
        snprintf(errbuf, errlen, "schema cache: a setting is out of range (see --help)");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->s = *s;
    c->s.registry_url = strdup(s->registry_url);
    c->s.cache_dir = s->cache_dir != NULL && s->cache_dir[0] != '\0' ? strdup(s->cache_dir) : NULL;
    c->ops = *ops;
    /* a JSON string escapes to at most 6 bytes per byte (\u00XX); real schemas are ASCII with
     * some quotes, so twice the text plus room for the envelope is the bound we hold to */
    c->max_body = (size_t)s->max_schema_bytes * 2 + 65536;
    c->mask = pow2_at_least((size_t)s->max_subjects * 2) - 1;
    c->id_mask = pow2_at_least((size_t)s->max_schemas * 2) - 1;
    nb = pow2_at_least((size_t)s->max_negative);
    c->bucket_mask = nb - 1;
    c->slots = calloc(c->mask + 1, sizeof(*c->slots));
    c->id_slots = calloc(c->id_mask + 1, sizeof(*c->id_slots));
    c->buckets = calloc(nb, sizeof(*c->buckets));
    c->fetchers = calloc((size_t)s->fetch_threads, sizeof(*c->fetchers));
    if (c->slots == NULL || c->id_slots == NULL || c->buckets == NULL || c->fetchers == NULL)
        abort();
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);

    if (c->s.cache_dir != NULL) {
        long n;
        /* the biggest snapshot the bounds allow; anything larger is not ours */
        uint64_t max_bytes = (uint64_t)s->max_schemas * (s->max_schema_bytes + 128) +
                             (uint64_t)s->max_subjects * 4 * (SCHEMA_CACHE_MAX_SUBJECT_BYTES + 128);
        c->disk = sc_disk_open(c->s.cache_dir, errbuf, errlen);
        if (c->disk == NULL)
            goto Fail;
        n = sc_disk_load(c->disk, max_bytes, on_disk_rec, c, s->max_schema_bytes);
        if (atomic_load(&c->n_schemas) > 0)
            atomic_store(&c->warm, 1);
        if (n < 0) {
            /* serve what loaded, but do not pretend later fetches are persisted */
            sc_disk_close(c->disk);
            c->disk = NULL;
        }
    }

    sc_http_global_ref();
    c->http_ref = 1;
    c->probe_pending = 1;
    c->probe_at_ms = 0;
    for (size_t i = 0; i < (size_t)s->fetch_threads; i++) {
        sc_fetcher_t *f = &c->fetchers[i];
        f->c = c;
        f->http = sc_http_new();
        if (pthread_create(&f->tid, NULL, fetch_main, f) != 0) {
            snprintf(errbuf, errlen, "schema cache: cannot start a fetch thread");
            goto Fail;
        }
        f->started = 1;
        c->n_fetchers = i + 1;
    }
    return c;
Fail:
    schema_cache_destroy(c);
    return NULL;
}

void schema_cache_destroy(schema_cache_t *c)
{
    sc_rec_t *r, *next;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; c->fetchers != NULL && i < (size_t)c->s.fetch_threads; i++) {
        if (c->fetchers[i].started)
            pthread_join(c->fetchers[i].tid, NULL);
        sc_http_free(c->fetchers[i].http);
    }
    /* nobody will fetch for them any more: let every waiter go (they look up no more) */
    for (size_t b = 0; c->buckets != NULL && b <= c->bucket_mask; b++) {
        for (r = c->buckets[b]; r != NULL; r = next) {
            next = r->hnext;
            call_waiters(r->waiters);
            free(r);
        }
    }
    for (size_t i = 0; c->slots != NULL && i <= c->mask; i++)
        free(atomic_load(&c->slots[i]));
    for (size_t i = 0; c->id_slots != NULL && i <= c->id_mask; i++) {
        sc_schema_t *sc = atomic_load(&c->id_slots[i]);
        if (sc != NULL) {
            c->ops.destroy(c->ops.ctx, sc->compiled);
            free(sc);
        }
    }
    if (c->http_ref)
        sc_http_global_unref();
    sc_disk_close(c->disk);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c->id_slots);
    free(c->buckets);
    free(c->fetchers);
    free(c->s.registry_url);
    free(c->s.cache_dir);
    free(c);
}

int schema_cache_is_warm(const schema_cache_t *c)
{
    return atomic_load_explicit(&((schema_cache_t *)c)->warm, memory_order_relaxed);
}

void schema_cache_stats(const schema_cache_t *c, schema_cache_stats_t *out)
{
    schema_cache_t *m = (schema_cache_t *)c; /* atomics are read-only here */
    uint64_t sum[C__N] = {0};

    for (size_t i = 0; i < N_SHARDS; i++)
        for (size_t k = 0; k < C__N; k++)
            sum[k] += atomic_load_explicit(&m->shards[i].n[k], memory_order_relaxed);
    memset(out, 0, sizeof(*out));
    out->hits = sum[C_HIT];
    out->stale_hits = sum[C_STALE];
    out->misses_pending = sum[C_PENDING];
    out->misses_negative = sum[C_NEGATIVE];
    out->misses_unavailable = sum[C_UNAVAILABLE];
    out->fetches = atomic_load(&m->fetches);
    out->fetch_errors = atomic_load(&m->fetch_errors);
    out->compile_errors = atomic_load(&m->compile_errors);
    out->refreshes = atomic_load(&m->refreshes);
    out->persist_errors = atomic_load(&m->persist_errors);
    out->full = atomic_load(&m->full);
    out->subjects = atomic_load(&m->n_entries);
    out->schemas = atomic_load(&m->n_schemas);
    out->negative = atomic_load(&m->n_recs_gauge);
}

void schema_cache_render_metrics(const schema_cache_t *c, sl_buf_t *b)
{
    schema_cache_stats_t st;
    const sl_hist_t *hists[64];
    size_t nh = c->n_fetchers < 64 ? c->n_fetchers : 64;

    schema_cache_stats(c, &st);
    sl_prom_header(b, "sluice_schema_cache_hits_total", "counter",
                   "schema lookups answered from the cache (stale ones included)");
    sl_prom_value(b, "sluice_schema_cache_hits_total", NULL, st.hits);
    sl_prom_header(b, "sluice_schema_cache_stale_hits_total", "counter",
                   "hits on a latest version read from the disk snapshot, not yet confirmed");
    sl_prom_value(b, "sluice_schema_cache_stale_hits_total", NULL, st.stale_hits);
    sl_prom_header(b, "sluice_schema_cache_misses_total", "counter",
                   "schema lookups not answered with a schema, by result");
    sl_prom_value(b, "sluice_schema_cache_misses_total", "result=\"pending\"", st.misses_pending);
    sl_prom_value(b, "sluice_schema_cache_misses_total", "result=\"negative\"", st.misses_negative);
    sl_prom_value(b, "sluice_schema_cache_misses_total", "result=\"unavailable\"",
                  st.misses_unavailable);
    sl_prom_header(b, "sluice_schema_registry_fetches_total", "counter",
                   "HTTP requests to the schema registry");
    sl_prom_value(b, "sluice_schema_registry_fetches_total", NULL, st.fetches);
    sl_prom_header(b, "sluice_schema_registry_fetch_errors_total", "counter",
                   "registry requests that failed (unreachable, timeout, bad answer)");
    sl_prom_value(b, "sluice_schema_registry_fetch_errors_total", NULL, st.fetch_errors);
    sl_prom_header(b, "sluice_schema_registry_refreshes_total", "counter",
                   "background refreshes of (subject, latest)");
    sl_prom_value(b, "sluice_schema_registry_refreshes_total", NULL, st.refreshes);
    sl_prom_header(b, "sluice_schema_compile_errors_total", "counter",
                   "registry schemas the gateway could not compile (answered as not found)");
    sl_prom_value(b, "sluice_schema_compile_errors_total", NULL, st.compile_errors);
    sl_prom_header(b, "sluice_schema_cache_persist_errors_total", "counter",
                   "snapshot appends that failed");
    sl_prom_value(b, "sluice_schema_cache_persist_errors_total", NULL, st.persist_errors);
    sl_prom_header(b, "sluice_schema_cache_full_total", "counter",
                   "keys not cached because schema.max_subjects or max_schemas was reached");
    sl_prom_value(b, "sluice_schema_cache_full_total", NULL, st.full);
    sl_prom_header(b, "sluice_schema_cache_entries", "gauge", "entries held, by kind");
    sl_prom_value(b, "sluice_schema_cache_entries", "kind=\"subject\"", st.subjects);
    sl_prom_value(b, "sluice_schema_cache_entries", "kind=\"schema\"", st.schemas);
    sl_prom_value(b, "sluice_schema_cache_entries", "kind=\"negative\"", st.negative);
    sl_prom_header(b, "sluice_schema_cache_warm", "gauge",
                   "1 once the snapshot loaded or the registry answered");
    sl_prom_value(b, "sluice_schema_cache_warm", NULL, (uint64_t)schema_cache_is_warm(c));
    for (size_t i = 0; i < nh; i++)
        hists[i] = &c->fetchers[i].rtt;
    sl_prom_hist(b, "sluice_schema_registry_request_seconds",
                 "schema registry round trip per request", hists, nh);
}
