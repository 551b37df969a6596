/* Integration: dedup.layout=buckets, looked at from inside Redis (a synchronous hiredis context
 * next to the gateway). The protocol tests run as integration.test_dedup_buckets; this one
 * checks what only this layout has:
 *  1. the layout itself: committed events are 'C' + fingerprint in the field of their packed
 *     UUID, in sl:ddb:{tenant:bucket}:generation, a listpack hash expiring two windows after
 *     its generation started (lowercase and uppercase UUIDs);
 *  2. a lease left behind by a gateway that died (expired, but still in the hash: fields do not
 *     expire) is taken over: the batch is accepted, then a resend is duplicate;
 *  3. a live lease answers retry/in_flight, and the same event is accepted once it expired;
 *  4. generations: a commit found in the previous or next generation is still a duplicate (a
 *     replica's clock may run ahead), and another fingerprint there is id_conflict; a live lease
 *     in the next generation is in_flight;
 *  5. SCRIPT FLUSH (Redis forgot the scripts) before a claim, and between a claim and the
 *     release of a failed write: both still happen (sent again behind SCRIPT LOAD);
 *  6. (second stack, dedup.window=60s) a batch claimed just before a generation ends and acked
 *     after it: the commit goes into the new generation and our lease leaves the old one.
 * Kafka is read back after each stack and audited against every answer. */
#include "slt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#define N 10
#define BUCKETS 10000ull /* dedup.bloom_expected=1000000 / 100 */

static uint64_t window_ms = 86400000; /* dedup.window: the default, then 60 s for the rollover */

static slt_ledger_t led;
static redisContext *rc;

/* --- the layout, as dedup/README.md describes it (dedup_buckets.c: bucket_of, bucket_field) --- */

static uint64_t bucket_of(const char *id)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h % BUCKETS;
}

/* A UUID packs into 16 bytes, + 0x01 when it is written in uppercase. */
static size_t field_of(const char *id, char out[17])
{
    size_t o = 0;
    int upper = 0;
    for (const char *p = id; *p; p++) {
        int v;
        if (*p == '-')
            continue;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else
            v = *p - 'A' + 10, upper = 1;
        out[o / 2] = (char)(o % 2 ? out[o / 2] | v : v << 4);
        o++;
    }
    if (upper)
        out[16] = 1;
    return upper ? 17 : 16;
}

static uint64_t gen_now(void)
{
    return (uint64_t)slt_wall_ms() / window_ms;
}

static void key_of(const char *id, uint64_t gen, char *key, size_t len)
{
    snprintf(key, len, "sl:ddb:{%s:%llu}:%llu", SLT_TENANT_A, (unsigned long long)bucket_of(id),
             (unsigned long long)gen);
}

/* --- Redis, synchronously (the test's own connection) --- */

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    SLT_REQUIRE(r != NULL, "redis command: %s", rc->errstr);
    return r;
}

/* The value of id's field in generation gen; malloc'd, NULL when absent. */
static char *hget(const char *id, uint64_t gen, size_t *len)
{
    char key[128], field[17];
    size_t flen = field_of(id, field);
    key_of(id, gen, key, sizeof(key));
    redisReply *r = cmd("HGET %s %b", key, field, flen);
    char *v = NULL;
    if (r->type == REDIS_REPLY_STRING) {
        v = malloc(r->len + 1);
        memcpy(v, r->str, r->len);
        v[r->len] = 0;
        *len = r->len;
    }
    freeReplyObject(r);
    return v;
}

typedef struct {
    const char *id;
    uint64_t gen;
} field_ref_t;

static int is_committed(void *arg)
{
    const field_ref_t *f = arg;
    size_t len = 0;
    char *v = hget(f->id, f->gen, &len);
    int yes = v != NULL && len == 9 && v[0] == 'C';
    free(v);
    return yes;
}

/* The gateway answers when Kafka acked and sends the commit at the same time, without waiting
 * for Redis: the test's own connection may look before the commit arrived. Returns the value
 * once it is committed (malloc'd, 9 bytes), else what is there. */
static char *hget_committed(const char *id, uint64_t gen, size_t *len)
{
    field_ref_t f = {id, gen};
    slt_poll_until(is_committed, &f, 3000);
    return hget(id, gen, len);
}

static void hset(const char *id, uint64_t gen, const char *val, size_t len)
{
    char key[128], field[17];
    size_t flen = field_of(id, field);
    key_of(id, gen, key, sizeof(key));
    freeReplyObject(cmd("HSET %s %b %b", key, field, flen, val, len));
}

static void hdel(const char *id, uint64_t gen)
{
    char key[128], field[17];
    size_t flen = field_of(id, field);
    key_of(id, gen, key, sizeof(key));
    freeReplyObject(cmd("HDEL %s %b", key, field, flen));
}

static uint64_t redis_now_ms(void)
{
    redisReply *r = cmd("TIME");
    uint64_t ms = strtoull(r->element[0]->str, NULL, 10) * 1000 +
                  strtoull(r->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(r);
    return ms;
}

/* NOSCRIPT error replies Redis has sent so far (INFO errorstats). */
static long noscript_errors(void)
{
    redisReply *r = cmd("INFO errorstats");
    const char *p =
        r->type == REDIS_REPLY_STRING ? strstr(r->str, "errorstat_NOSCRIPT:count=") : NULL;
    long n = p != NULL ? atol(p + strlen("errorstat_NOSCRIPT:count=")) : 0;
    freeReplyObject(r);
    return n;
}

/* A lease as a claim writes it: 'L' fp[8] nonce[8] expiry (ms, decimal, Redis's clock). */
static size_t make_lease(char *out, size_t cap, uint64_t expiry_ms)
{
    memcpy(out, "Lfingerpr-nonce--", 17);
    return 17 + (size_t)snprintf(out + 17, cap - 17, "%llu", (unsigned long long)expiry_ms);
}

/* --- the gateway --- */

static long post(const slt_stack_t *s, const slt_batch_t *b, slt_batch_resp_t *br, const char *what)
{
    slt_http_resp_t resp;
    char err[256];
    long status = slt_post_batch(s, b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
    int ok =
        status == 200 && slt_batch_resp_parse(resp.body, resp.body_len, br, err, sizeof(err)) == 0;
    SLT_CHECK(ok, "%s: HTTP %ld %.300s", what, status, resp.status ? resp.body : resp.error);
    slt_http_resp_dispose(&resp);
    return ok;
}

/* Posts a batch of one event and returns its outcome: "accepted", "duplicate", "id_conflict",
 * "in_flight", or what else came back (static storage). */
static const char *post_one(const slt_stack_t *s, const slt_batch_t *b, const char *what)
{
    static char out[64];
    slt_batch_resp_t br;
    if (!post(s, b, &br, what))
        return "error";
    const slt_outcome_t *o = slt_batch_resp_find(&br, 0);
    if (o == NULL)
        snprintf(out, sizeof(out), "accepted");
    else if (o->code != NULL)
        snprintf(out, sizeof(out), "%s", o->code);
    else
        snprintf(out, sizeof(out), "%s", o->status);
    slt_batch_resp_dispose(&br);
    return out;
}

#define EXPECT_OUTCOME(s, b, want, what)                                                           \
    do {                                                                                           \
        const char *got_ = post_one((s), (b), (what));                                             \
        SLT_CHECK(strcmp(got_, (want)) == 0, "%s: %s, want %s", (what), got_, (want));             \
    } while (0)

static void one_event(slt_batch_t *b)
{
    slt_batch_init(b);
    slt_batch_add(b, NULL);
}

static void test_layout(const slt_stack_t *s)
{
    slt_batch_t b;
    slt_batch_resp_t br;
    char upper[37];
    uint64_t gen = gen_now();

    slt_batch_init(&b);
    slt_batch_add_n(&b, N);
    /* the same kind of id as iOS's NSUUID().uuidString */
    snprintf(upper, sizeof(upper), "%s", slt_batch_event_id(&b, N - 1));
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    json_object_set_new(slt_batch_event(&b, N - 1), "event_id", json_string(upper));
    if (post(s, &b, &br, "layout")) {
        SLT_CHECK(br.accepted == N, "layout: %ld accepted, want %d", br.accepted, N);
        slt_batch_resp_dispose(&br);
    }
    for (size_t i = 0; i < N; i++) {
        const char *id = slt_batch_event_id(&b, i);
        char key[128];
        size_t len = 0;
        char *v = hget_committed(id, gen, &len);
        SLT_CHECK(v != NULL && len == 9 && v[0] == 'C',
                  "event %zu: field of %s in bucket %llu holds %zu bytes '%c', want 'C' + fp", i,
                  id, (unsigned long long)bucket_of(id), len, v ? v[0] : '-');
        free(v);
        key_of(id, gen, key, sizeof(key));
        redisReply *r = cmd("PEXPIRETIME %s", key);
        SLT_CHECK(r->type == REDIS_REPLY_INTEGER && (uint64_t)r->integer == (gen + 2) * window_ms,
                  "%s expires at %lld, want (generation + 2) * window = %llu", key,
                  r->type == REDIS_REPLY_INTEGER ? r->integer : -1,
                  (unsigned long long)((gen + 2) * window_ms));
        freeReplyObject(r);
        r = cmd("OBJECT ENCODING %s", key);
        SLT_CHECK(r->type == REDIS_REPLY_STRING && strcmp(r->str, "listpack") == 0, "%s is a %s",
                  key, r->type == REDIS_REPLY_STRING ? r->str : "?");
        freeReplyObject(r);
        slt_ledger_expect(&led, slt_batch_event(&b, i), SLT_TENANT_A);
    }
    if (post(s, &b, &br, "layout resend")) {
        SLT_CHECK(br.duplicate == N, "layout resend: %ld duplicate, want %d", br.duplicate, N);
        slt_batch_resp_dispose(&br);
    }
    slt_batch_dispose(&b);
}

static void test_expired_lease_is_taken_over(const slt_stack_t *s)
{
    slt_batch_t b;
    char lease[64];
    size_t len;

    one_event(&b);
    const char *id = slt_batch_event_id(&b, 0);
    /* a gateway claimed it a minute ago and died (SIGKILL) before commit or release */
    len = make_lease(lease, sizeof(lease), redis_now_ms() - 1000);
    hset(id, gen_now(), lease, len);
    EXPECT_OUTCOME(s, &b, "accepted", "expired lease");
    slt_ledger_expect(&led, slt_batch_event(&b, 0), SLT_TENANT_A);
    char *v = hget_committed(id, gen_now(), &len);
    SLT_CHECK(v != NULL && len == 9 && v[0] == 'C', "after the takeover the field is committed");
    free(v);
    EXPECT_OUTCOME(s, &b, "duplicate", "resend after the takeover");
    slt_batch_dispose(&b);
}

static int lease_ran_out(void *arg)
{
    return redis_now_ms() > *(const uint64_t *)arg;
}

static void test_live_lease(const slt_stack_t *s)
{
    slt_batch_t b;
    char lease[64];
    size_t len;

    one_event(&b);
    const char *id = slt_batch_event_id(&b, 0);
    /* another gateway holds it for 2 more seconds */
    uint64_t expiry = redis_now_ms() + 2000;
    len = make_lease(lease, sizeof(lease), expiry);
    hset(id, gen_now(), lease, len);
    EXPECT_OUTCOME(s, &b, "in_flight", "live lease");
    SLT_REQUIRE(slt_poll_until(lease_ran_out, &expiry, 10000), "Redis's clock passes the expiry");
    EXPECT_OUTCOME(s, &b, "accepted", "after the lease expired");
    slt_ledger_expect(&led, slt_batch_event(&b, 0), SLT_TENANT_A);
    free(hget_committed(id, gen_now(), &len));
    EXPECT_OUTCOME(s, &b, "duplicate", "resend after the lease expired");
    slt_batch_dispose(&b);
}

static void test_generations(const slt_stack_t *s)
{
    slt_batch_t b;
    char *committed, lease[64];
    size_t len;
    uint64_t gen = gen_now();

    one_event(&b);
    const char *id = slt_batch_event_id(&b, 0);
    EXPECT_OUTCOME(s, &b, "accepted", "generations: first send");
    slt_ledger_expect(&led, slt_batch_event(&b, 0), SLT_TENANT_A);
    committed = hget_committed(id, gen, &len);
    SLT_REQUIRE(committed != NULL && len == 9,
                "generations: committed in generation %llu (%s, %zu bytes)",
                (unsigned long long)gen, committed ? committed : "none", committed ? len : 0);

    /* committed in the previous generation (yesterday's hash) */
    hdel(id, gen);
    hset(id, gen - 1, committed, len);
    EXPECT_OUTCOME(s, &b, "duplicate", "committed in the previous generation");
    committed[8] ^= 0x5a; /* another payload under the same id */
    hset(id, gen - 1, committed, len);
    EXPECT_OUTCOME(s, &b, "id_conflict", "other fingerprint in the previous generation");
    committed[8] ^= 0x5a;
    hdel(id, gen - 1);

    /* committed by a replica whose clock is already in the next generation */
    hset(id, gen + 1, committed, len);
    EXPECT_OUTCOME(s, &b, "duplicate", "committed in the next generation");
    hdel(id, gen + 1);

    /* ... or still producing it there */
    len = make_lease(lease, sizeof(lease), redis_now_ms() + 60000);
    hset(id, gen + 1, lease, len);
    EXPECT_OUTCOME(s, &b, "in_flight", "live lease in the next generation");
    hdel(id, gen + 1);
    /* ... and an expired one there is no obstacle: the claim is taken in this generation */
    len = make_lease(lease, sizeof(lease), redis_now_ms() - 1);
    hset(id, gen + 1, lease, len);
    hset(id, gen, committed, 9);
    EXPECT_OUTCOME(s, &b, "duplicate", "committed here, expired lease in the next generation");
    free(committed);
    slt_batch_dispose(&b);
}

/* Every event of the batch has a field in this generation starting with `*want`. */
static int all_fields_are(const slt_batch_t *b, char want)
{
    for (size_t i = 0; i < slt_batch_len(b); i++) {
        size_t len = 0;
        char *v = hget(slt_batch_event_id(b, i), gen_now(), &len);
        int ok = v != NULL && v[0] == want;
        free(v);
        if (!ok)
            return 0;
    }
    return 1;
}

static int all_leased(void *arg)
{
    return all_fields_are(arg, 'L');
}

static int all_committed(void *arg)
{
    return all_fields_are(arg, 'C');
}

static int all_released(void *arg)
{
    const slt_batch_t *b = arg;
    for (size_t i = 0; i < slt_batch_len(b); i++) {
        size_t len = 0;
        char *v = hget(slt_batch_event_id(b, i), gen_now(), &len);
        free(v);
        if (v != NULL)
            return 0;
    }
    return 1;
}

static void test_script_flush(const slt_stack_t *s)
{
    slt_batch_t b;
    slt_batch_resp_t br;

    long noscript = noscript_errors();
    freeReplyObject(cmd("SCRIPT FLUSH"));
    slt_batch_init(&b);
    slt_batch_add_n(&b, N);
    if (post(s, &b, &br, "after SCRIPT FLUSH")) {
        SLT_CHECK(br.accepted == N, "after SCRIPT FLUSH: %ld accepted, want %d", br.accepted, N);
        slt_batch_resp_dispose(&br);
    }
    SLT_CHECK(noscript_errors() - noscript == N,
              "%ld claims answered NOSCRIPT (and retried), want %d", noscript_errors() - noscript,
              N);
    SLT_CHECK(slt_poll_until(all_committed, &b, 3000), "every event committed after SCRIPT FLUSH");
    for (size_t i = 0; i < N; i++)
        slt_ledger_expect(&led, slt_batch_event(&b, i), SLT_TENANT_A);
    if (post(s, &b, &br, "resend after SCRIPT FLUSH")) {
        SLT_CHECK(br.duplicate == N, "resend after SCRIPT FLUSH: %ld duplicate", br.duplicate);
        slt_batch_resp_dispose(&br);
    }
    slt_batch_dispose(&b);

    /* and between claim and release (kafka.linger.ms holds the batch, then the produce fails):
     * the release is a script too and must not be lost to NOSCRIPT (commits are plain HSETs) */
    slt_post_t p;
    slt_http_resp_t resp;
    slt_batch_init(&b);
    slt_batch_add_n(&b, N);
    for (size_t i = 0; i < N; i++) /* one user: one partition, one ProduceRequest */
        json_object_set_new(slt_batch_event(&b, i), "user_id", json_string("u-release"));
    SLT_REQUIRE(slt_broker_control(s, "produce-errors 1 10") == 0, "error injected");
    slt_post_prepare(&p, s, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2);
    slt_http_many_t *m = slt_http_many_start(&p.req, 1);
    SLT_CHECK(slt_poll_until(all_leased, &b, 5000), "the claim is in Redis");
    noscript = noscript_errors();
    freeReplyObject(cmd("SCRIPT FLUSH"));
    slt_http_many_join(m, &resp);
    {
        char err[256];
        int failed = resp.status == 503; /* producer_fatal: nothing stored either */
        if (resp.status == 200 &&
            slt_batch_resp_parse(resp.body, resp.body_len, &br, err, sizeof(err)) == 0) {
            failed = br.retry == N;
            slt_batch_resp_dispose(&br);
        }
        SLT_CHECK(failed, "the write failed: HTTP %ld %.300s", resp.status,
                  resp.status ? resp.body : resp.error);
    }
    slt_http_resp_dispose(&resp);
    slt_post_dispose(&p);
    SLT_CHECK(slt_poll_until(all_released, &b, 5000),
              "every lease released after SCRIPT FLUSH between claim and release");
    SLT_CHECK(noscript_errors() - noscript == N,
              "%ld releases answered NOSCRIPT (and retried), want %d", noscript_errors() - noscript,
              N);
    if (post(s, &b, &br, "resend after the failed write")) {
        SLT_CHECK(br.accepted == N, "resend after the failed write: %ld accepted", br.accepted);
        slt_batch_resp_dispose(&br);
    }
    for (size_t i = 0; i < N; i++)
        slt_ledger_expect(&led, slt_batch_event(&b, i), SLT_TENANT_A);
    slt_batch_dispose(&b);
}

typedef struct {
    uint64_t gen;
    const slt_batch_t *b;
} gen_batch_t;

static int leased_in_gen(void *arg)
{
    const gen_batch_t *g = arg;
    size_t len = 0;
    char *v = hget(slt_batch_event_id(g->b, 0), g->gen, &len);
    int yes = v != NULL && v[0] == 'L';
    free(v);
    return yes;
}

static int late_in_window(void *arg)
{
    (void)arg;
    return (uint64_t)slt_wall_ms() % window_ms >= window_ms - 600;
}

/* dedup.window=60s, kafka.linger.ms=1000: post 0.6 s before a generation ends, so that the claim
 * lands in it and the commit in the next one. */
static void test_rollover(const slt_stack_t *s)
{
    slt_batch_t b;
    slt_post_t p;
    slt_http_resp_t resp;
    size_t len = 0;

    slt_batch_init(&b);
    slt_batch_add_n(&b, N);
    SLT_REQUIRE(slt_poll_until(late_in_window, NULL, (int)window_ms + 1000),
                "the last 600 ms of a generation come");
    gen_batch_t g = {gen_now(), &b};
    slt_post_prepare(&p, s, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2);
    slt_http_many_t *m = slt_http_many_start(&p.req, 1);
    SLT_CHECK(slt_poll_until(leased_in_gen, &g, 2000), "claimed in generation %llu",
              (unsigned long long)g.gen);
    slt_http_many_join(m, &resp);
    SLT_CHECK(gen_now() == g.gen + 1, "acked in the next generation (linger 1 s)");
    slt_check_all_accepted("rollover", &resp, N);
    slt_http_resp_dispose(&resp);
    slt_post_dispose(&p);
    for (size_t i = 0; i < N; i++) {
        const char *id = slt_batch_event_id(&b, i);
        char key[128], *v = hget_committed(id, g.gen + 1, &len);
        SLT_CHECK(v != NULL && len == 9 && v[0] == 'C',
                  "event %zu committed in the generation of the commit", i);
        free(v);
        v = hget(id, g.gen, &len);
        SLT_CHECK(v == NULL, "event %zu: the claim's lease left generation %llu", i,
                  (unsigned long long)g.gen);
        free(v);
        key_of(id, g.gen + 1, key, sizeof(key));
        redisReply *r = cmd("PEXPIRETIME %s", key);
        SLT_CHECK(r->type == REDIS_REPLY_INTEGER && (uint64_t)r->integer == (g.gen + 3) * window_ms,
                  "%s expires two windows after its generation started", key);
        freeReplyObject(r);
        slt_ledger_expect(&led, slt_batch_event(&b, i), SLT_TENANT_A);
    }
    slt_batch_resp_t br;
    if (post(s, &b, &br, "resend after the rollover")) {
        SLT_CHECK(br.duplicate == N, "resend after the rollover: %ld duplicate", br.duplicate);
        slt_batch_resp_dispose(&br);
    }
    slt_batch_dispose(&b);
}

static void start(slt_stack_t *s, const char *const *sets)
{
    SLT_REQUIRE(slt_stack_start(s, sets) == 0, "the stack starts");
    SLT_REQUIRE((rc = redisConnect("127.0.0.1", s->redis_port)) != NULL && rc->err == 0,
                "hiredis connects to the stack's redis");
    slt_ledger_init(&led);
}

static void audit_and_stop(slt_stack_t *s, int64_t t0)
{
    int64_t t1 = slt_wall_ms();
    slt_kafka_recs_t recs;
    SLT_REQUIRE(slt_kafka_consume_all(s->bootstrap, "events", slt_ledger_n_expected(&led), 1500,
                                      30000, &recs) == 0,
                "topic events is readable");
    slt_ledger_verify(&led, &recs, t0, t1, NULL);
    SLT_CHECK(recs.n == slt_ledger_n_expected(&led), "events holds %zu records, want %zu", recs.n,
              slt_ledger_n_expected(&led));
    slt_kafka_recs_dispose(&recs);
    slt_ledger_dispose(&led);
    redisFree(rc);
    slt_stack_stop(s);
}

int main(void)
{
    slt_init("test_dedup_layout", 170);
    /* linger: a batch waits 300 ms for Kafka, long enough to act between claim and commit */
    const char *sets[] = {"dedup.layout=buckets", "dedup.bloom_expected=1000000",
                          "kafka.linger.ms=300", NULL};
    const char *sets_rollover[] = {"dedup.layout=buckets", "dedup.bloom_expected=1000000",
                                   "dedup.window=60s",     "dedup.lease=10s",
                                   "kafka.linger.ms=1000", NULL};
    slt_stack_t s;
    int64_t t0;

    /* the test computes generations with its own clock: keep away from a boundary (UTC
     * midnight with the default window) */
    while (window_ms - (uint64_t)slt_wall_ms() % window_ms < 30000)
        slt_nap_ms(1000);
    start(&s, sets);
    t0 = slt_wall_ms();
    test_layout(&s);
    test_expired_lease_is_taken_over(&s);
    test_live_lease(&s);
    test_generations(&s);
    test_script_flush(&s);
    audit_and_stop(&s, t0);

    window_ms = 60000;
    start(&s, sets_rollover);
    t0 = slt_wall_ms();
    test_rollover(&s);
    audit_and_stop(&s, t0);
    return slt_finish();
}
