/* Test doubles for the registry cache's unit tests (header-only: each test file is its own
 * executable): a fake registry behind schema_cache_ops_t.fetch that can be blocked, taken down
 * and edited, a fake compiler that counts what it builds and frees, a settable clock, and a
 * completion counter to poll. */
#ifndef SCHEMA_CACHE_FAKES_H
#define SCHEMA_CACHE_FAKES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema_cache.h"

#define FAKE_MAX_VERSIONS 32

typedef struct {
    char subject[64];
    int32_t version;
    uint32_t id;
    char schema[256];
} fake_version_t;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    fake_version_t v[FAKE_MAX_VERSIONS];
    int n;
    int down;                  /* every request fails as unreachable */
    int block;                 /* requests (other than /subjects) wait until cleared */
    int blocked;               /* requests waiting right now */
    int list;                  /* /subjects lists the subjects (else []) */
    atomic_int schema_fetches; /* requests other than /subjects */
    atomic_int list_fetches;
    char last_path[1024]; /* of the last request other than /subjects */
} fake_reg_t;

static inline void fake_reg_init(fake_reg_t *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static inline void fake_reg_dispose(fake_reg_t *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cond);
}

static inline void fake_reg_add(fake_reg_t *r, const char *subject, int32_t version, uint32_t id,
                                const char *schema)
{
    pthread_mutex_lock(&r->mu);
    fake_version_t *v = &r->v[r->n++];
    snprintf(v->subject, sizeof(v->subject), "%s", subject);
    v->version = version;
    v->id = id;
    snprintf(v->schema, sizeof(v->schema), "%s", schema);
    pthread_mutex_unlock(&r->mu);
}

static inline void fake_reg_set(fake_reg_t *r, int *field, int value)
{
    pthread_mutex_lock(&r->mu);
    *field = value;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static inline void fake_answer(sl_buf_t *body, const fake_version_t *v, int with_subject)
{
    /* the schema text is JSON-escaped by hand: the fakes use no quotes-in-quotes beyond \" */
    char esc[600];
    size_t o = 0;
    for (const char *p = v->schema; *p && o + 2 < sizeof(esc); p++) {
        if (*p == '"' || *p == '\\')
            esc[o++] = '\\';
        esc[o++] = *p;
    }
    esc[o] = '\0';
    if (with_subject)
        sl_buf_printf(body, "{\"subject\":\"%s\",\"version\":%d,\"id\":%u,\"schema\":\"%s\"}",
                      v->subject, (int)v->version, (unsigned)v->id, esc);
    else
        sl_buf_printf(body, "{\"schema\":\"%s\"}", esc);
}

/* schema_cache_ops_t.fetch */
static inline int fake_fetch(void *ctx, const char *path, sl_buf_t *body, char *errbuf,
                             size_t errlen)
{
    fake_reg_t *r = ctx;
    char subject[300], which[32];
    unsigned id;
    int status = 404, code = 40401;
    const fake_version_t *best = NULL;

    pthread_mutex_lock(&r->mu);
    if (strcmp(path, "/subjects") == 0) {
        atomic_fetch_add(&r->list_fetches, 1);
        if (r->down) {
            pthread_mutex_unlock(&r->mu);
            snprintf(errbuf, errlen, "fake registry down");
            return -1;
        }
        sl_buf_append(body, "[", 1);
        for (int i = 0; r->list && i < r->n; i++) {
            int seen = 0;
            for (int k = 0; k < i; k++)
                seen |= strcmp(r->v[k].subject, r->v[i].subject) == 0;
            if (!seen)
                sl_buf_printf(body, "%s\"%s\"", body->len > 1 ? "," : "", r->v[i].subject);
        }
        sl_buf_append(body, "]", 1);
        pthread_mutex_unlock(&r->mu);
        return 200;
    }
    atomic_fetch_add(&r->schema_fetches, 1);
    snprintf(r->last_path, sizeof(r->last_path), "%s", path); /* the probe's is not recorded */
    r->blocked++;
    pthread_cond_broadcast(&r->cond);
    while (r->block)
        pthread_cond_wait(&r->cond, &r->mu);
    r->blocked--;
    if (r->down) {
        pthread_mutex_unlock(&r->mu);
        snprintf(errbuf, errlen, "fake registry down");
        return -1;
    }
    if (sscanf(path, "/schemas/ids/%u", &id) == 1) {
        code = 40403;
        for (int i = 0; i < r->n; i++)
            if (r->v[i].id == id)
                best = &r->v[i];
        if (best != NULL)
            fake_answer(body, best, 0);
    } else if (sscanf(path, "/subjects/%299[^/]/versions/%31s", subject, which) == 2) {
        int32_t want = strcmp(which, "latest") == 0 ? 0 : (int32_t)atoi(which);
        for (int i = 0; i < r->n; i++) {
            if (strcmp(r->v[i].subject, subject) != 0)
                continue;
            code = 40402;
            if ((want == 0 && (best == NULL || r->v[i].version > best->version)) ||
                r->v[i].version == want)
                best = &r->v[i];
        }
        if (best != NULL)
            fake_answer(body, best, 1);
    }
    pthread_mutex_unlock(&r->mu);
    if (best != NULL)
        return 200;
    sl_buf_printf(body, "{\"error_code\":%d,\"message\":\"not found\"}", code);
    return status;
}

/* Waits (bounded) until `n` requests are blocked in the fake. */
static inline int fake_wait_blocked(fake_reg_t *r, int n, int timeout_ms)
{
    struct timespec ts;
    int ok;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (r->blocked < n && pthread_cond_timedwait(&r->cond, &r->mu, &ts) == 0)
        ;
    ok = r->blocked >= n;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* ---- fake compiler ---- */

typedef struct {
    uint32_t id;
    char text[256];
} fake_compiled_t;

typedef struct {
    atomic_int compiled, destroyed;
} fake_compiler_t;

static inline void *fake_compile(void *ctx, const char *text, size_t len, const char *type,
                                 uint32_t id, char *errbuf, size_t errlen)
{
    fake_compiler_t *fc = ctx;
    fake_compiled_t *out;
    if (len >= sizeof(out->text) || memmem(text, len, "BAD", 3) != NULL) {
        snprintf(errbuf, errlen, "fake compiler refuses it");
        return NULL;
    }
    out = calloc(1, sizeof(*out));
    out->id = id;
    memcpy(out->text, text, len);
    atomic_fetch_add(&fc->compiled, 1);
    return out;
}

static inline void fake_destroy(void *ctx, void *compiled)
{
    fake_compiler_t *fc = ctx;
    atomic_fetch_add(&fc->destroyed, 1);
    free(compiled);
}

/* ---- clock and completions ---- */

typedef struct {
    _Atomic uint64_t ms;
} fake_clock_t;

static inline uint64_t fake_now(void *ctx)
{
    return atomic_load(&((fake_clock_t *)ctx)->ms);
}

typedef struct {
    atomic_int calls;
} done_t;

static inline void on_done(void *arg)
{
    atomic_fetch_add(&((done_t *)arg)->calls, 1);
}

static inline uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void nap_1ms(void)
{
    struct timespec ts = {0, 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls (1 ms naps) until *v >= want or the deadline; returns whether it got there. */
static inline int wait_atomic_at_least(atomic_int *v, int want, int timeout_ms)
{
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    while (atomic_load(v) < want) {
        if (mono_ms() > end)
            return 0;
        nap_1ms();
    }
    return 1;
}

/* A test harness: fake registry + compiler + clock wired into a cache. */
typedef struct {
    fake_reg_t reg;
    fake_compiler_t fc;
    fake_clock_t clk;
    schema_cache_settings_t s;
    schema_cache_ops_t ops;
    schema_cache_t *c;
} harness_t;

static inline void harness_init(harness_t *h)
{
    memset(h, 0, sizeof(*h));
    fake_reg_init(&h->reg);
    atomic_store(&h->clk.ms, 1000000);
    schema_cache_settings_defaults(&h->s);
    h->s.latest_ttl_ms = 30000;
    h->s.negative_ttl_ms = 5000;
    h->s.retry_backoff_ms = 1000;
    h->ops = (schema_cache_ops_t){.compile = fake_compile,
                                  .destroy = fake_destroy,
                                  .ctx = &h->fc,
                                  .fetch = fake_fetch,
                                  .fetch_ctx = &h->reg,
                                  .now_ms = fake_now,
                                  .clock_ctx = &h->clk};
}

static inline schema_cache_t *harness_start(harness_t *h)
{
    char err[256] = "";
    h->c = schema_cache_create(&h->s, &h->ops, err, sizeof(err));
    if (h->c == NULL)
        fprintf(stderr, "schema_cache_create: %s\n", err);
    return h->c;
}

static inline void harness_stop(harness_t *h)
{
    schema_cache_destroy(h->c);
    h->c = NULL;
}

static inline void harness_dispose(harness_t *h)
{
    harness_stop(h);
    fake_reg_dispose(&h->reg);
}

/* Looks up; when PENDING waits (up to 5 s) for the callback, which must come exactly once, then
 * looks up again. */
static inline schema_cache_status_t harness_lookup_wait(harness_t *h, const char *subject,
                                                        int32_t version, schema_cache_hit_t *hit)
{
    done_t d = {0};
    schema_cache_status_t st =
        schema_cache_lookup(h->c, subject, strlen(subject), version, hit, on_done, &d);
    if (st != SCHEMA_CACHE_PENDING)
        return st;
    assert_true(wait_atomic_at_least(&d.calls, 1, 5000));
    st = schema_cache_lookup(h->c, subject, strlen(subject), version, hit, NULL, NULL);
    assert_int_equal(atomic_load(&d.calls), 1);
    return st;
}

static inline void advance(harness_t *h, uint64_t ms)
{
    atomic_fetch_add(&h->clk.ms, ms);
}

#endif
