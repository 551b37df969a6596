/* Unit tests for schema/schema_cache.c against a fake registry (ops.fetch, no sockets) and a
 * settable clock: hit, miss -> pending -> callback -> hit, collapsed concurrent misses, negative
 * cache expiry, TTL expiry with stale serve + background refresh, registry down with and
 * without cached entries, lookups by id, bounds, readiness, metrics. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "schema_cache.h"
#include "schema_cache_fakes.h"

#define PV_V1 "{\"type\":\"record\",\"name\":\"page_view\",\"fields\":[]}"
#define PV_V2 "{\"type\":\"record\",\"name\":\"page_view\",\"fields\":[{\"name\":\"x\"}]}"
#define CLICK "{\"type\":\"record\",\"name\":\"click\",\"fields\":[]}"
#define WAIT_MS 5000

static void test_miss_pending_callback_hit(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;
    done_t d = {0};

    harness_init(&h);
    fake_reg_add(&h.reg, "page_view", 1, 7, PV_V1);
    assert_non_null(harness_start(&h));

    assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, on_done, &d),
                     SCHEMA_CACHE_PENDING);
    assert_true(wait_atomic_at_least(&d.calls, 1, WAIT_MS));
    assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                     SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 7);
    assert_int_equal(hit.version, 1);
    assert_string_equal(hit.type, "AVRO");
    assert_int_equal(hit.is_stale, 0);
    assert_int_equal(((fake_compiled_t *)hit.compiled)->id, 7);
    assert_string_equal(((fake_compiled_t *)hit.compiled)->text, PV_V1);
    assert_string_equal(h.reg.last_path, "/subjects/page_view/versions/latest");

    /* the latest answer also filled (page_view, 1): no second fetch for the pinned version */
    assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 1, &hit, NULL, NULL),
                     SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 7);
    assert_int_equal(atomic_load(&h.reg.schema_fetches), 1);
    /* so did the id */
    assert_int_equal(schema_cache_lookup_id(h.c, 7, &hit, NULL, NULL), SCHEMA_CACHE_HIT);
    assert_int_equal(hit.version, 0);
    assert_int_equal(atomic_load(&h.reg.schema_fetches), 1);
    assert_int_equal(atomic_load(&h.fc.compiled), 1);

    schema_cache_stats(h.c, &st);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.misses_pending, 1);
    assert_int_equal(st.subjects, 2); /* (page_view, latest) and (page_view, 1) */
    assert_int_equal(st.schemas, 1);
    harness_dispose(&h);
    assert_int_equal(atomic_load(&h.fc.destroyed), atomic_load(&h.fc.compiled));
}

static void test_pinned_version_and_not_found_version(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;

    harness_init(&h);
    fake_reg_add(&h.reg, "page_view", 1, 7, PV_V1);
    fake_reg_add(&h.reg, "page_view", 2, 9, PV_V2);
    assert_non_null(harness_start(&h));
    assert_int_equal(harness_lookup_wait(&h, "page_view", 1, &hit), SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 7);
    assert_int_equal(hit.version, 1);
    assert_string_equal(h.reg.last_path, "/subjects/page_view/versions/1");
    assert_int_equal(harness_lookup_wait(&h, "page_view", 0, &hit), SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 9);
    assert_int_equal(hit.version, 2);
    assert_int_equal(harness_lookup_wait(&h, "page_view", 3, &hit), SCHEMA_CACHE_NEGATIVE);
    harness_dispose(&h);
}

typedef struct {
    harness_t *h;
    int n;
    done_t done;
    atomic_int pending, other;
} storm_t;

static void *storm_main(void *arg)
{
    storm_t *s = arg;
    schema_cache_hit_t hit;
    for (int i = 0; i < s->n; i++) {
        schema_cache_status_t st =
            schema_cache_lookup(s->h->c, "click", 5, 0, &hit, on_done, &s->done);
        atomic_fetch_add(st == SCHEMA_CACHE_PENDING ? &s->pending : &s->other, 1);
    }
    return NULL;
}

static void test_concurrent_misses_collapse(void **state)
{
    harness_t h;
    storm_t s = {.n = 50};
    pthread_t t[4];
    schema_cache_hit_t hit;

    harness_init(&h);
    h.s.fetch_threads = 4; /* idle threads must not fetch the same key again */
    fake_reg_add(&h.reg, "click", 1, 3, CLICK);
    h.reg.block = 1;
    assert_non_null(harness_start(&h));
    s.h = &h;
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, storm_main, &s);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(fake_wait_blocked(&h.reg, 1, WAIT_MS));
    assert_int_equal(atomic_load(&s.pending), 200);
    assert_int_equal(atomic_load(&s.done.calls), 0);
    fake_reg_set(&h.reg, &h.reg.block, 0);
    assert_true(wait_atomic_at_least(&s.done.calls, 200, WAIT_MS));
    assert_int_equal(schema_cache_lookup(h.c, "click", 5, 0, &hit, NULL, NULL), SCHEMA_CACHE_HIT);
    assert_int_equal(atomic_load(&h.reg.schema_fetches), 1);
    assert_int_equal(atomic_load(&s.done.calls), 200);
    harness_dispose(&h);
}

static void test_negative_cache_expiry(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;

    harness_init(&h);
    assert_non_null(harness_start(&h));
    assert_int_equal(harness_lookup_wait(&h, "nope", 0, &hit), SCHEMA_CACHE_NEGATIVE);
    assert_int_equal(atomic_load(&h.reg.schema_fetches), 1);
    /* a flood of lookups for it does not reach the registry while the entry lives */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(schema_cache_lookup(h.c, "nope", 4, 0, &hit, NULL, NULL),
                         SCHEMA_CACHE_NEGATIVE);
    advance(&h, 4999);
    assert_int_equal(schema_cache_lookup(h.c, "nope", 4, 0, &hit, NULL, NULL),
                     SCHEMA_CACHE_NEGATIVE);
    assert_int_equal(atomic_load(&h.reg.schema_fetches), 1);
    /* registered meanwhile: after the negative TTL the next lookup asks again */
    fake_reg_add(&h.reg, "nope", 1, 11, CLICK);
    advance(&h, 1);
    assert_int_equal(harness_lookup_wait(&h, "nope", 0, &hit), SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 11);
    assert_int_equal(atomic_load(&h.reg.schema_fetches), 2);
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.misses_negative, 1002);
    assert_int_equal(st.negative, 0); /* the record went away once the table had the key */
    harness_dispose(&h);
}

static void test_ttl_stale_served_while_refreshing(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;

    harness_init(&h);
    fake_reg_add(&h.reg, "page_view", 1, 7, PV_V1);
    assert_non_null(harness_start(&h));
    assert_int_equal(harness_lookup_wait(&h, "page_view", 0, &hit), SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 7);

    fake_reg_add(&h.reg, "page_view", 2, 9, PV_V2);
    advance(&h, 29999);
    assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                     SCHEMA_CACHE_HIT);
    assert_int_equal(atomic_load(&h.reg.schema_fetches), 1); /* still fresh */

    fake_reg_set(&h.reg, &h.reg.block, 1);
    advance(&h, 1);
    /* expired: still a hit on v1 while the refresh is stuck in the registry */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                         SCHEMA_CACHE_HIT);
        assert_int_equal(hit.id, 7);
    }
    assert_true(fake_wait_blocked(&h.reg, 1, WAIT_MS));
    assert_int_equal(atomic_load(&h.reg.schema_fetches), 2); /* one refresh, not 100 */
    fake_reg_set(&h.reg, &h.reg.block, 0);

    /* the refresh lands: v2 from then on */
    {
        uint64_t end = mono_ms() + WAIT_MS;
        do {
            assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                             SCHEMA_CACHE_HIT);
            if (hit.id == 9)
                break;
            nap_1ms();
        } while (mono_ms() < end);
    }
    assert_int_equal(hit.id, 9);
    assert_int_equal(hit.version, 2);
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.refreshes, 1);
    /* v1 is still reachable pinned (raw pointers held by readers stay valid) */
    assert_int_equal(harness_lookup_wait(&h, "page_view", 1, &hit), SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 7);
    harness_dispose(&h);
    assert_int_equal(atomic_load(&h.fc.destroyed), 2);
}

typedef struct {
    harness_t *h;
    atomic_int stop;
    atomic_int bad;
    long lookups;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    schema_cache_hit_t hit;
    while (!atomic_load(&r->stop)) {
        if (schema_cache_lookup(r->h->c, "page_view", 9, 0, &hit, NULL, NULL) != SCHEMA_CACHE_HIT ||
            ((fake_compiled_t *)hit.compiled)->id != hit.id ||
            hit.id != 100 + (uint32_t)hit.version)
            atomic_fetch_add(&r->bad, 1);
        r->lookups++;
    }
    return NULL;
}

/* Readers on other threads while the latest version moves under them: every answer is a
 * consistent (version, id, compiled) triple, never a torn one, never a miss. */
static void test_readers_during_refreshes(void **state)
{
    harness_t h;
    reader_t r[2] = {{0}, {0}};
    pthread_t t[2];
    schema_cache_hit_t hit;
    schema_cache_stats_t st;

    harness_init(&h);
    fake_reg_add(&h.reg, "page_view", 1, 101, PV_V1);
    assert_non_null(harness_start(&h));
    assert_int_equal(harness_lookup_wait(&h, "page_view", 0, &hit), SCHEMA_CACHE_HIT);
    for (int i = 0; i < 2; i++) {
        r[i].h = &h;
        pthread_create(&t[i], NULL, reader_main, &r[i]);
    }
    for (int v = 2; v <= 20; v++) {
        uint64_t end = mono_ms() + WAIT_MS;
        fake_reg_add(&h.reg, "page_view", v, 100 + (uint32_t)v, v % 2 ? PV_V1 : PV_V2);
        advance(&h, 30000);
        do {
            schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL);
            if (hit.version == v)
                break;
            nap_1ms();
        } while (mono_ms() < end);
        assert_int_equal(hit.version, v);
    }
    for (int i = 0; i < 2; i++) {
        atomic_store(&r[i].stop, 1);
        pthread_join(t[i], NULL);
        assert_int_equal(atomic_load(&r[i].bad), 0);
        assert_true(r[i].lookups > 0);
    }
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.schemas, 20);
    assert_int_equal(st.subjects, 21);
    harness_dispose(&h);
    assert_int_equal(atomic_load(&h.fc.destroyed), 20);
}

static void test_registry_down_nothing_cached(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;

    harness_init(&h);
    h.reg.down = 1;
    fake_reg_add(&h.reg, "page_view", 1, 7, PV_V1);
    assert_non_null(harness_start(&h));
    assert_int_equal(harness_lookup_wait(&h, "page_view", 0, &hit), SCHEMA_CACHE_UNAVAILABLE);
    /* within the backoff no new request is made */
    for (int i = 0; i < 100; i++)
        assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                         SCHEMA_CACHE_UNAVAILABLE);
    assert_int_equal(atomic_load(&h.reg.schema_fetches), 1);
    schema_cache_stats(h.c, &st);
    assert_true(st.fetch_errors >= 1);
    /* back up, backoff over: served */
    fake_reg_set(&h.reg, &h.reg.down, 0);
    advance(&h, 1000);
    assert_int_equal(harness_lookup_wait(&h, "page_view", 0, &hit), SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 7);
    harness_dispose(&h);
}

static void test_registry_down_cached_still_served(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;
    uint64_t errors;

    harness_init(&h);
    fake_reg_add(&h.reg, "page_view", 1, 7, PV_V1);
    assert_non_null(harness_start(&h));
    assert_int_equal(harness_lookup_wait(&h, "page_view", 0, &hit), SCHEMA_CACHE_HIT);
    schema_cache_stats(h.c, &st);
    errors = st.fetch_errors;
    fake_reg_set(&h.reg, &h.reg.down, 1);
    advance(&h, 31000);
    assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                     SCHEMA_CACHE_HIT);
    /* the refresh fails in the background; the entry keeps answering */
    {
        uint64_t end = mono_ms() + WAIT_MS;
        do {
            schema_cache_stats(h.c, &st);
            if (st.fetch_errors > errors)
                break;
            nap_1ms();
        } while (mono_ms() < end);
    }
    assert_true(st.fetch_errors > errors);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                         SCHEMA_CACHE_HIT);
        assert_int_equal(hit.id, 7);
    }
    assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 1, &hit, NULL, NULL),
                     SCHEMA_CACHE_HIT);
    harness_dispose(&h);
}

static void test_subject_deleted_answers_negative(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;

    harness_init(&h);
    fake_reg_add(&h.reg, "gone", 1, 5, CLICK);
    assert_non_null(harness_start(&h));
    assert_int_equal(harness_lookup_wait(&h, "gone", 0, &hit), SCHEMA_CACHE_HIT);
    pthread_mutex_lock(&h.reg.mu);
    h.reg.n = 0; /* deleted in the registry */
    pthread_mutex_unlock(&h.reg.mu);
    advance(&h, 30000);
    {
        schema_cache_status_t st = SCHEMA_CACHE_HIT;
        uint64_t end = mono_ms() + WAIT_MS;
        while (mono_ms() < end &&
               (st = schema_cache_lookup(h.c, "gone", 4, 0, &hit, NULL, NULL)) == SCHEMA_CACHE_HIT)
            nap_1ms();
        assert_int_equal(st, SCHEMA_CACHE_NEGATIVE);
    }
    harness_dispose(&h);
}

static void test_lookup_by_id(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    done_t d = {0};

    harness_init(&h);
    fake_reg_add(&h.reg, "click", 1, 3, CLICK);
    assert_non_null(harness_start(&h));
    assert_int_equal(schema_cache_lookup_id(h.c, 3, &hit, on_done, &d), SCHEMA_CACHE_PENDING);
    assert_true(wait_atomic_at_least(&d.calls, 1, WAIT_MS));
    assert_string_equal(h.reg.last_path, "/schemas/ids/3");
    assert_int_equal(schema_cache_lookup_id(h.c, 3, &hit, NULL, NULL), SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 3);
    assert_string_equal(((fake_compiled_t *)hit.compiled)->text, CLICK);
    /* the subject lookup finds the id compiled already */
    assert_int_equal(harness_lookup_wait(&h, "click", 0, &hit), SCHEMA_CACHE_HIT);
    assert_int_equal(atomic_load(&h.fc.compiled), 1);

    d.calls = 0;
    assert_int_equal(schema_cache_lookup_id(h.c, 99, &hit, on_done, &d), SCHEMA_CACHE_PENDING);
    assert_true(wait_atomic_at_least(&d.calls, 1, WAIT_MS));
    assert_int_equal(schema_cache_lookup_id(h.c, 99, &hit, NULL, NULL), SCHEMA_CACHE_NEGATIVE);
    assert_int_equal(schema_cache_lookup_id(h.c, 0, &hit, NULL, NULL), SCHEMA_CACHE_NEGATIVE);
    assert_int_equal(schema_cache_lookup_id(h.c, 0x80000000u, &hit, NULL, NULL),
                     SCHEMA_CACHE_NEGATIVE);
    harness_dispose(&h);
}

static void test_bad_input_answers_negative_without_fetch(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    char big[SCHEMA_CACHE_MAX_SUBJECT_BYTES + 2];

    harness_init(&h);
    assert_non_null(harness_start(&h));
    memset(big, 'a', sizeof(big));
    assert_int_equal(schema_cache_lookup(h.c, big, sizeof(big), 0, &hit, NULL, NULL),
                     SCHEMA_CACHE_NEGATIVE);
    assert_int_equal(schema_cache_lookup(h.c, "x", 0, 0, &hit, NULL, NULL), SCHEMA_CACHE_NEGATIVE);
    assert_int_equal(schema_cache_lookup(h.c, "x", 1, -1, &hit, NULL, NULL), SCHEMA_CACHE_NEGATIVE);
    /* bytes that need escaping reach the registry escaped */
    assert_int_equal(harness_lookup_wait(&h, "a b/c?d", 0, &hit), SCHEMA_CACHE_NEGATIVE);
    assert_string_equal(h.reg.last_path, "/subjects/a%20b%2Fc%3Fd/versions/latest");
    assert_int_equal(atomic_load(&h.reg.schema_fetches), 1);
    harness_dispose(&h);
}

static void test_compile_error_and_oversized_schema(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;

    harness_init(&h);
    h.s.max_schema_bytes = 64;
    fake_reg_add(&h.reg, "broken", 1, 4, "{\"type\":\"BAD\"}");
    fake_reg_add(&h.reg, "huge", 1, 5,
                 "{\"type\":\"record\",\"name\":\"huge\",\"fields\":[],\"doc\":\"0123456789"
                 "0123456789012345678901234567890123456789\"}");
    assert_non_null(harness_start(&h));
    assert_int_equal(harness_lookup_wait(&h, "broken", 0, &hit), SCHEMA_CACHE_NEGATIVE);
    assert_int_equal(harness_lookup_wait(&h, "huge", 0, &hit), SCHEMA_CACHE_NEGATIVE);
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.compile_errors, 2);
    assert_int_equal(st.schemas, 0);
    harness_dispose(&h);
}

static void test_bound_max_subjects(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;

    harness_init(&h);
    h.s.max_subjects = 4; /* two subjects' (latest, version) pairs */
    fake_reg_add(&h.reg, "a", 1, 1, CLICK);
    fake_reg_add(&h.reg, "b", 1, 2, CLICK);
    fake_reg_add(&h.reg, "c", 1, 3, CLICK);
    assert_non_null(harness_start(&h));
    assert_int_equal(harness_lookup_wait(&h, "a", 0, &hit), SCHEMA_CACHE_HIT);
    assert_int_equal(harness_lookup_wait(&h, "b", 0, &hit), SCHEMA_CACHE_HIT);
    assert_int_equal(harness_lookup_wait(&h, "c", 0, &hit), SCHEMA_CACHE_UNAVAILABLE);
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.subjects, 4);
    assert_true(st.full >= 1);
    /* what is cached keeps working */
    assert_int_equal(schema_cache_lookup(h.c, "a", 1, 0, &hit, NULL, NULL), SCHEMA_CACHE_HIT);
    harness_dispose(&h);
}

static void test_bound_negative_entries_and_waiters(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;
    done_t d = {0};
    char name[32];

    harness_init(&h);
    h.s.max_negative = 8;
    h.s.max_waiters = 2;
    h.s.fetch_threads = 1;
    assert_non_null(harness_start(&h));
    /* a flood of distinct unknown types: each answered, memory stays at the bound */
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "unknown_%d", i);
        assert_int_equal(harness_lookup_wait(&h, name, 0, &hit), SCHEMA_CACHE_NEGATIVE);
        schema_cache_stats(h.c, &st);
        assert_true(st.negative <= 8);
    }
    /* waiters: two may wait, the third is told to come back later */
    fake_reg_set(&h.reg, &h.reg.block, 1);
    assert_int_equal(schema_cache_lookup(h.c, "w", 1, 0, &hit, on_done, &d), SCHEMA_CACHE_PENDING);
    assert_int_equal(schema_cache_lookup(h.c, "w", 1, 0, &hit, on_done, &d), SCHEMA_CACHE_PENDING);
    assert_int_equal(schema_cache_lookup(h.c, "w", 1, 0, &hit, on_done, &d),
                     SCHEMA_CACHE_UNAVAILABLE);
    /* a lookup without a callback starts/joins the fetch and needs no waiter slot */
    assert_int_equal(schema_cache_lookup(h.c, "w", 1, 0, &hit, NULL, NULL), SCHEMA_CACHE_PENDING);
    fake_reg_set(&h.reg, &h.reg.block, 0);
    assert_true(wait_atomic_at_least(&d.calls, 2, WAIT_MS));
    /* every record a fetch in flight: settled ones are forgotten for new keys, then a new
     * key is told to come back later instead of growing the map */
    fake_reg_set(&h.reg, &h.reg.block, 1);
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "busy_%d", i);
        assert_int_equal(schema_cache_lookup(h.c, name, strlen(name), 0, &hit, NULL, NULL),
                         SCHEMA_CACHE_PENDING);
    }
    assert_int_equal(schema_cache_lookup(h.c, "busy_8", 6, 0, &hit, NULL, NULL),
                     SCHEMA_CACHE_UNAVAILABLE);
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.negative, 8);
    fake_reg_set(&h.reg, &h.reg.block, 0);
    harness_dispose(&h);
    assert_int_equal(atomic_load(&d.calls), 2);
}

static void test_destroy_calls_every_pending_callback_once(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    done_t a = {0}, b = {0};

    harness_init(&h);
    h.s.fetch_threads = 1;
    h.reg.block = 1;
    assert_non_null(harness_start(&h));
    assert_int_equal(schema_cache_lookup(h.c, "a", 1, 0, &hit, on_done, &a), SCHEMA_CACHE_PENDING);
    assert_true(fake_wait_blocked(&h.reg, 1, WAIT_MS));
    assert_int_equal(schema_cache_lookup(h.c, "b", 1, 0, &hit, on_done, &b), SCHEMA_CACHE_PENDING);
    /* "b" is queued behind the blocked "a": whether the fetch thread or destroy settles it,
     * each callback runs exactly once */
    fake_reg_set(&h.reg, &h.reg.block, 0);
    harness_dispose(&h);
    assert_int_equal(atomic_load(&a.calls), 1);
    assert_int_equal(atomic_load(&b.calls), 1);
}

static void test_warm_and_prefetch(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;

    harness_init(&h);
    h.reg.list = 1;
    fake_reg_add(&h.reg, "page_view", 1, 7, PV_V1);
    fake_reg_add(&h.reg, "click", 1, 3, CLICK);
    assert_non_null(harness_start(&h));
    {
        uint64_t end = mono_ms() + WAIT_MS;
        do {
            schema_cache_stats(h.c, &st);
            if (st.subjects == 4)
                break;
            nap_1ms();
        } while (mono_ms() < end);
    }
    assert_true(schema_cache_is_warm(h.c));
    assert_int_equal(st.subjects, 4);
    /* prefetched: the first events of each type do not wait */
    assert_int_equal(schema_cache_lookup(h.c, "click", 5, 0, &hit, NULL, NULL), SCHEMA_CACHE_HIT);
    assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                     SCHEMA_CACHE_HIT);
    harness_dispose(&h);
}

static void test_not_warm_while_registry_down(void **state)
{
    harness_t h;

    harness_init(&h);
    h.s.retry_backoff_ms = 5; /* the probe's retry interval (real time) */
    h.reg.down = 1;
    assert_non_null(harness_start(&h));
    assert_true(wait_atomic_at_least(&h.reg.list_fetches, 2, WAIT_MS)); /* retried */
    assert_false(schema_cache_is_warm(h.c));
    fake_reg_set(&h.reg, &h.reg.down, 0);
    {
        uint64_t end = mono_ms() + WAIT_MS;
        while (!schema_cache_is_warm(h.c) && mono_ms() < end)
            nap_1ms();
    }
    assert_true(schema_cache_is_warm(h.c));
    harness_dispose(&h);
}

static void test_metrics_rendered(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    sl_buf_t b;

    harness_init(&h);
    fake_reg_add(&h.reg, "page_view", 1, 7, PV_V1);
    assert_non_null(harness_start(&h));
    assert_int_equal(harness_lookup_wait(&h, "page_view", 0, &hit), SCHEMA_CACHE_HIT);
    sl_buf_init(&b, 1 << 20);
    schema_cache_render_metrics(h.c, &b);
    assert_non_null(strstr(b.data, "sluice_schema_cache_hits_total 1\n"));
    assert_non_null(strstr(b.data, "sluice_schema_cache_misses_total{result=\"pending\"} 1\n"));
    assert_non_null(strstr(b.data, "sluice_schema_cache_entries{kind=\"schema\"} 1\n"));
    assert_non_null(strstr(b.data, "sluice_schema_registry_request_seconds_bucket"));
    assert_non_null(strstr(b.data, "sluice_schema_registry_fetches_total"));
    assert_non_null(strstr(b.data, "sluice_schema_cache_warm 1\n"));
    sl_buf_dispose(&b);
    assert_string_equal(schema_cache_status_name(SCHEMA_CACHE_PENDING), "pending");
    harness_dispose(&h);
}

static void test_create_rejects_bad_settings(void **state)
{
    harness_t h;
    char err[256] = "";

    harness_init(&h);
    h.s.registry_url = NULL;
    assert_null(schema_cache_create(&h.s, &h.ops, err, sizeof(err)));
    assert_non_null(strstr(err, "schema.registry_url"));
    schema_cache_settings_defaults(&h.s);
    h.ops.compile = NULL;
    assert_null(schema_cache_create(&h.s, &h.ops, err, sizeof(err)));
    assert_non_null(strstr(err, "compile"));
    harness_dispose(&h);
}

static void test_config_table(void **state)
{
    sl_config_t *cfg = sl_config_create();
    schema_cache_settings_t s, d;
    char err[256];

    assert_int_equal(schema_cache_config_register(cfg, &s, err, sizeof(err)), 0);
    schema_cache_settings_defaults(&d);
    /* the defaults function and the table agree */
    assert_string_equal(s.registry_url, d.registry_url);
    assert_null(s.cache_dir);
    assert_int_equal(s.latest_ttl_ms, d.latest_ttl_ms);
    assert_int_equal(s.negative_ttl_ms, d.negative_ttl_ms);
    assert_int_equal(s.retry_backoff_ms, d.retry_backoff_ms);
    assert_int_equal(s.fetch_timeout_ms, d.fetch_timeout_ms);
    assert_int_equal(s.fetch_threads, d.fetch_threads);
    assert_int_equal(s.max_subjects, d.max_subjects);
    assert_int_equal(s.max_schemas, d.max_schemas);
    assert_int_equal(s.max_schema_bytes, d.max_schema_bytes);
    assert_int_equal(s.max_negative, d.max_negative);
    assert_int_equal(s.max_waiters, d.max_waiters);
    assert_int_equal(sl_config_set(cfg, "schema.latest_ttl_ms", "10s", "--set", err, sizeof(err)),
                     0);
    assert_int_equal(s.latest_ttl_ms, 10000);
    assert_int_equal(
        sl_config_set(cfg, "schema.cache_dir", "/var/lib/sluice", "--set", err, sizeof(err)), 0);
    assert_string_equal(s.cache_dir, "/var/lib/sluice");
    assert_int_equal(sl_config_set(cfg, "schema.max_subjects", "1", "--set", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "schema.max_subjects"));
    sl_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_miss_pending_callback_hit),
        cmocka_unit_test(test_pinned_version_and_not_found_version),
        cmocka_unit_test(test_concurrent_misses_collapse),
        cmocka_unit_test(test_negative_cache_expiry),
        cmocka_unit_test(test_ttl_stale_served_while_refreshing),
        cmocka_unit_test(test_readers_during_refreshes),
        cmocka_unit_test(test_registry_down_nothing_cached),
        cmocka_unit_test(test_registry_down_cached_still_served),
        cmocka_unit_test(test_subject_deleted_answers_negative),
        cmocka_unit_test(test_lookup_by_id),
        cmocka_unit_test(test_bad_input_answers_negative_without_fetch),
        cmocka_unit_test(test_compile_error_and_oversized_schema),
        cmocka_unit_test(test_bound_max_subjects),
        cmocka_unit_test(test_bound_negative_entries_and_waiters),
        cmocka_unit_test(test_destroy_calls_every_pending_callback_once),
        cmocka_unit_test(test_warm_and_prefetch),
        cmocka_unit_test(test_not_warm_while_registry_down),
        cmocka_unit_test(test_metrics_rendered),
        cmocka_unit_test(test_create_rejects_bad_settings),
        cmocka_unit_test(test_config_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
