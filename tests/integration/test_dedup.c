/* Integration: dedup against a real redis-server (DESIGN.md invariants 2 and 3).
 *  1. a resent batch is all `duplicate` and adds nothing to Kafka;
 *  2. repeats inside one batch: same payload -> duplicate, other payload -> id_conflict;
 *  3. a Kafka write that fails after the claim releases it: the resend is accepted, once;
 *  4. two gateways receiving the same batches at the same time: one copy of each event;
 *  5. kill -9 Redis (policy open): batches accepted, marked degraded, resends answered retry
 *     (the Bloom filter says "maybe"), /readyz says degraded; Redis back: dedup resumes.
 *  6. kill -9 Redis in the middle of 40 concurrent batches: every answer holds (accepted events
 *     in Kafka once, retried ones absent), then Redis comes back.
 * Kafka is read back at the end and audited against every answer. */
#include "slt.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 20

static slt_ledger_t led;

/* Posts b and parses the 200 answer into br. */
static int post(const slt_stack_t *s, const slt_batch_t *b, slt_batch_resp_t *br, const char *what)
{
    slt_http_resp_t resp;
    char err[256];
    long status = slt_post_batch(s, b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
    int ok = status == 200 &&
             slt_batch_resp_parse(resp.body, resp.body_len, br, err, sizeof(err)) == 0;
    SLT_CHECK(ok, "%s: HTTP %ld %.300s", what, status, resp.status ? resp.body : resp.error);
    slt_http_resp_dispose(&resp);
    return ok;
}

static void expect_all(const slt_batch_t *b)
{
    for (size_t i = 0; i < slt_batch_len(b); i++)
        slt_ledger_expect(&led, slt_batch_event(b, i), SLT_TENANT_A);
}

static void test_resend(const slt_stack_t *s)
{
    slt_batch_t b;
    slt_batch_resp_t br;

    slt_batch_init(&b);
    slt_batch_add_n(&b, N);
    if (post(s, &b, &br, "first send")) {
        SLT_CHECK(br.accepted == N, "first send: %ld accepted, want %d", br.accepted, N);
        slt_batch_resp_dispose(&br);
    }
    expect_all(&b);
    if (post(s, &b, &br, "resend")) {
        SLT_CHECK(br.accepted == 0 && br.duplicate == N && br.n_events == N,
                  "resend: accepted %ld duplicate %ld listed %zu, want 0/%d/%d", br.accepted,
                  br.duplicate, br.n_events, N, N);
        for (size_t k = 0; k < br.n_events; k++)
            SLT_CHECK(strcmp(br.events[k].status, "duplicate") == 0 && br.events[k].code == NULL,
                      "resend: event %ld is '%s'", br.events[k].i, br.events[k].status);
        slt_batch_resp_dispose(&br);
    }
    slt_batch_dispose(&b);
}

static void test_in_batch_repeats(const slt_stack_t *s)
{
    slt_batch_t b;
    slt_batch_resp_t br;
    json_t *same, *other;

    slt_batch_init(&b);
    slt_batch_add_n(&b, 3);
    same = json_deep_copy(slt_batch_event(&b, 1));
    other = json_deep_copy(slt_batch_event(&b, 1));
    json_object_set_new(other, "ts", json_integer(json_integer_value(json_object_get(other, "ts")) + 1));
    slt_batch_add_value(&b, same);
    slt_batch_add_value(&b, other);
    if (post(s, &b, &br, "repeats")) {
        const slt_outcome_t *o3 = slt_batch_resp_find(&br, 3), *o4 = slt_batch_resp_find(&br, 4);
        SLT_CHECK(br.accepted == 3 && br.duplicate == 2, "repeats: accepted %ld duplicate %ld",
                  br.accepted, br.duplicate);
        SLT_CHECK(o3 && strcmp(o3->status, "duplicate") == 0 && o3->code == NULL,
                  "repeat with the same payload is a plain duplicate");
        SLT_CHECK(o4 && strcmp(o4->status, "duplicate") == 0 && o4->code &&
                      strcmp(o4->code, "id_conflict") == 0,
                  "repeat with another payload is duplicate/id_conflict");
        slt_batch_resp_dispose(&br);
    }
    for (size_t i = 0; i < 3; i++)
        slt_ledger_expect(&led, slt_batch_event(&b, i), SLT_TENANT_A);
    /* an id_conflict is reported, not collapsed into the first: it was not stored */
    slt_batch_dispose(&b);
}

static void test_failed_write_releases_the_claim(const slt_stack_t *s)
{
    slt_batch_t b;
    slt_batch_resp_t br;
    long retried = 0;

    slt_batch_init(&b);
    slt_batch_add_n(&b, N);
    for (size_t i = 0; i < N; i++) /* one user: one partition, one ProduceRequest */
        json_object_set_new(slt_batch_event(&b, i), "user_id", json_string("u-failing-write"));
    /* the next Produce request fails with MSG_SIZE_TOO_LARGE (10): not retried by librdkafka */
    SLT_REQUIRE(slt_broker_control(s, "produce-errors 1 10") == 0, "error injected");
    {
        slt_http_resp_t resp;
        long st = slt_post_batch(s, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
        char err[256];
        if (st == 200 && slt_batch_resp_parse(resp.body, resp.body_len, &br, err, sizeof(err)) == 0) {
            retried = br.retry;
            SLT_CHECK(br.accepted + br.retry == N, "failed write: %.300s", resp.body);
            for (size_t i = 0; i < N; i++) {
                const slt_outcome_t *o = slt_batch_resp_find(&br, (long)i);
                if (o == NULL)
                    slt_ledger_expect(&led, slt_batch_event(&b, i), SLT_TENANT_A);
            }
            slt_batch_resp_dispose(&br);
        } else {
            /* a 503 (producer_fatal) stores nothing */
            SLT_CHECK(st == 503, "failed write: HTTP %ld %.300s", st,
                      resp.status ? resp.body : resp.error);
            retried = N;
        }
        slt_http_resp_dispose(&resp);
    }
    SLT_CHECK(retried > 0, "the injected error failed the write");
    slt_note("failed write: %ld of %d events to retry", retried, N);
    /* the honest retry: everything that was not accepted is accepted now, exactly once */
    if (post(s, &b, &br, "resend after the failed write")) {
        SLT_CHECK(br.accepted == retried && br.duplicate == N - retried,
                  "resend after failure: accepted %ld duplicate %ld, want %ld/%ld", br.accepted,
                  br.duplicate, retried, N - retried);
        for (size_t i = 0; i < N; i++) {
            const slt_outcome_t *o = slt_batch_resp_find(&br, (long)i);
            if (o == NULL)
                slt_ledger_expect(&led, slt_batch_event(&b, i), SLT_TENANT_A);
        }
        slt_batch_resp_dispose(&br);
    }
    slt_batch_dispose(&b);
}

static void test_two_gateways(const slt_stack_t *s)
{
    slt_stack_t s2;
    enum { ROUNDS = 10 };
    long accepted_twice = 0, never = 0;

    SLT_REQUIRE(slt_second_gateway_start(s, &s2, "gateway2") == 0, "second gateway starts");
    for (int r = 0; r < ROUNDS; r++) {
        slt_batch_t b;
        slt_post_t p1, p2;
        slt_http_req_t reqs[2];
        slt_http_resp_t resps[2];
        slt_batch_resp_t br[2];
        char err[256];
        int ok[2];

        slt_batch_init(&b);
        slt_batch_add_n(&b, N);
        slt_post_prepare(&p1, s, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2);
        slt_post_prepare(&p2, &s2, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2);
        reqs[0] = p1.req;
        reqs[1] = p2.req;
        slt_http_many_join(slt_http_many_start(reqs, 2), resps);
        for (int k = 0; k < 2; k++) {
            ok[k] = resps[k].status == 200 && slt_batch_resp_parse(resps[k].body,
                                                                   resps[k].body_len, &br[k],
                                                                   err, sizeof(err)) == 0;
            SLT_CHECK(ok[k], "round %d gateway %d: HTTP %ld", r, k + 1, resps[k].status);
        }
        if (ok[0] && ok[1]) {
            for (size_t i = 0; i < N; i++) {
                int acc = (slt_batch_resp_find(&br[0], (long)i) == NULL) +
                          (slt_batch_resp_find(&br[1], (long)i) == NULL);
                if (acc == 2)
                    accepted_twice++;
                else if (acc == 0)
                    never++;
                if (acc >= 1)
                    slt_ledger_expect(&led, slt_batch_event(&b, i), SLT_TENANT_A);
                else
                    slt_ledger_forbid(&led, slt_batch_event_id(&b, i), "neither gateway accepted");
            }
            slt_batch_resp_dispose(&br[0]);
            slt_batch_resp_dispose(&br[1]);
        }
        for (int k = 0; k < 2; k++)
            slt_http_resp_dispose(&resps[k]);
        slt_post_dispose(&p1);
        slt_post_dispose(&p2);
        slt_batch_dispose(&b);
    }
    SLT_CHECK(accepted_twice == 0, "%ld events accepted by both gateways", accepted_twice);
    slt_note("two gateways: %d rounds, %ld events accepted by neither (in_flight both ways)",
             ROUNDS, never);
    SLT_CHECK(slt_gateway_stop(&s2, 15000) == 0, "second gateway stops with exit 0");
}

static void test_redis_outage(slt_stack_t *s)
{
    slt_batch_t b, c;
    slt_batch_resp_t br;

    SLT_REQUIRE(slt_redis_kill(s) == 0, "redis killed");
    slt_batch_init(&b);
    slt_batch_add_n(&b, N);
    if (post(s, &b, &br, "during the outage")) {
        SLT_CHECK(br.accepted == N, "outage, policy open: %ld accepted, want %d", br.accepted, N);
        slt_batch_resp_dispose(&br);
    }
    expect_all(&b);
    SLT_CHECK(slt_wait_readyz(s, 200, "\"dedup\":\"degraded\"", 10000), "/readyz reports dedup degraded");
    /* without Redis the Bloom filter still knows what this gateway accepted; as it can only be
     * sure of "new", a "maybe seen" is answered retry (not duplicate: a false positive must not
     * drop a new event), and nothing is written twice */
    if (post(s, &b, &br, "resend during the outage")) {
        SLT_CHECK(br.accepted == 0 && br.retry == N, "outage resend: accepted %ld retry %ld",
                  br.accepted, br.retry);
        for (size_t k = 0; k < br.n_events; k++)
            SLT_CHECK(br.events[k].code && strcmp(br.events[k].code, "dedup_unavailable") == 0,
                      "outage resend: event %ld code '%s'", br.events[k].i,
                      br.events[k].code ? br.events[k].code : "(none)");
        slt_batch_resp_dispose(&br);
    }

    SLT_REQUIRE(slt_redis_restart(s) == 0, "redis restarted");
    SLT_CHECK(slt_wait_readyz(s, 200, "\"dedup\":\"ok\"", 15000), "/readyz reports dedup ok again");
    slt_batch_init(&c);
    slt_batch_add_n(&c, N);
    if (post(s, &c, &br, "after the outage")) {
        SLT_CHECK(br.accepted == N, "after outage: %ld accepted", br.accepted);
        slt_batch_resp_dispose(&br);
    }
    expect_all(&c);
    if (post(s, &c, &br, "resend after the outage")) {
        SLT_CHECK(br.duplicate == N, "after outage resend: %ld duplicate", br.duplicate);
        slt_batch_resp_dispose(&br);
    }
    slt_batch_dispose(&b);
    slt_batch_dispose(&c);
}

static void test_redis_killed_mid_run(slt_stack_t *s)
{
    enum { BATCHES = 40 };
    static slt_batch_t b[BATCHES];
    static slt_post_t p[BATCHES];
    static slt_http_req_t reqs[BATCHES];
    static slt_http_resp_t resps[BATCHES];
    long accepted = 0, retried = 0, doubles = 0, done_before;

    for (int k = 0; k < BATCHES; k++) {
        slt_batch_init(&b[k]);
        slt_batch_add_n(&b[k], N);
        if (k % 5 == 4) /* resends of an earlier batch of this run */
            for (size_t i = 0; i < N; i++)
                slt_batch_add_value(&b[k], json_deep_copy(slt_batch_event(&b[k - 1], i)));
        slt_post_prepare(&p[k], s, &b[k], SLT_WRITE_KEY_A, SLT_AUTH_BEARER,
                         k % 2 ? SLT_HTTP_2 : SLT_HTTP_1_1);
        reqs[k] = p[k].req;
    }
    slt_http_many_t *many = slt_http_many_start(reqs, BATCHES);
    SLT_CHECK(slt_http_many_wait(many, 5, SIZE_MAX, 20000), "batches under way");
    done_before = (long)slt_http_many_done(many);
    SLT_REQUIRE(slt_redis_kill(s) == 0, "redis killed mid-run");
    slt_http_many_join(many, resps);

    /* per event id over the whole run (copies race: either may win): accepted at most once,
     * and answered duplicate only when some copy was accepted */
    json_t *tally = json_object(); /* event_id -> [accepted, duplicate, index of batch, i] */
    for (int k = 0; k < BATCHES; k++) {
        slt_batch_resp_t br;
        char err[256];
        size_t n = slt_batch_len(&b[k]);
        if (resps[k].status != 200 ||
            slt_batch_resp_parse(resps[k].body, resps[k].body_len, &br, err, sizeof(err)) != 0) {
            SLT_CHECK(0, "mid-run batch %d: HTTP %ld", k, resps[k].status);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            const slt_outcome_t *o = slt_batch_resp_find(&br, (long)i);
            const char *id = slt_batch_event_id(&b[k], i);
            json_t *t = json_object_get(tally, id);
            if (t == NULL)
                json_object_set_new(tally, id, t = json_pack("[iiii]", 0, 0, k, (int)i));
            if (o == NULL) {
                accepted++;
                json_array_set_new(t, 0, json_integer(json_integer_value(json_array_get(t, 0)) + 1));
            } else if (strcmp(o->status, "duplicate") == 0) {
                json_array_set_new(t, 1, json_integer(json_integer_value(json_array_get(t, 1)) + 1));
            } else {
                SLT_CHECK(strcmp(o->status, "retry") == 0, "mid-run batch %d event %zu: '%s'", k,
                          i, o->status);
                retried++;
            }
        }
        slt_batch_resp_dispose(&br);
    }
    {
        const char *id;
        json_t *t;
        json_object_foreach(tally, id, t) {
            json_int_t acc = json_integer_value(json_array_get(t, 0));
            json_int_t dup = json_integer_value(json_array_get(t, 1));
            int k = (int)json_integer_value(json_array_get(t, 2));
            size_t i = (size_t)json_integer_value(json_array_get(t, 3));
            /* a copy racing one whose lease died with Redis may be written too: fail-open
             * writes what it cannot check, marked dedup=degraded (the ledger checks the mark) */
            SLT_CHECK(dup == 0 || acc >= 1, "event %s answered duplicate but never accepted", id);
            if (acc > 1)
                doubles++;
            if (acc >= 1)
                slt_ledger_expect_degraded_copies(&led, slt_batch_event(&b[k], i), SLT_TENANT_A);
            else
                slt_ledger_forbid(&led, id, "only ever answered retry while Redis died");
        }
    }
    json_decref(tally);
    slt_note("redis killed after %ld of %d batches were answered: %ld events accepted, %ld retry, "
             "%ld written twice (marked degraded)",
             done_before, BATCHES, accepted, retried, doubles);
    for (int k = 0; k < BATCHES; k++) {
        slt_http_resp_dispose(&resps[k]);
        slt_post_dispose(&p[k]);
        slt_batch_dispose(&b[k]);
    }
    SLT_REQUIRE(slt_redis_restart(s) == 0, "redis restarted");
    SLT_CHECK(slt_wait_readyz(s, 200, "\"dedup\":\"ok\"", 15000), "dedup ok again");
}

int main(void)
{
    slt_init("test_dedup", 170);
    slt_stack_t s;
    SLT_REQUIRE(slt_stack_start(&s, NULL) == 0, "the stack starts");
    slt_ledger_init(&led);
    int64_t t0 = slt_wall_ms();

    test_resend(&s);
    test_in_batch_repeats(&s);
    test_failed_write_releases_the_claim(&s);
    test_two_gateways(&s);
    test_redis_outage(&s);
    test_redis_killed_mid_run(&s);

    int64_t t1 = slt_wall_ms();
    slt_kafka_recs_t recs;
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", slt_ledger_n_expected(&led), 1500,
                                      30000, &recs) == 0,
                "topic events is readable");
    slt_ledger_verify(&led, &recs, t0, t1, NULL);
    SLT_CHECK(recs.n == slt_ledger_n_expected(&led), "events holds %zu records, want %zu", recs.n,
              slt_ledger_n_expected(&led));
    {
        size_t degraded = 0;
        for (size_t i = 0; i < recs.n; i++) {
            const char *d = slt_kafka_rec_header(&recs.recs[i], "dedup");
            degraded += d != NULL && strcmp(d, "degraded") == 0;
        }
        /* the outage batch, plus whatever of the mid-run batches went through without Redis */
        SLT_CHECK(degraded >= N, "%zu records marked dedup=degraded, want at least %d", degraded,
                  N);
    }
    slt_kafka_recs_dispose(&recs);
    /* the id_conflict was reported, counted and copied to the dead-letter topic */
    {
        slt_kafka_recs_t dlq;
        size_t conflicts = 0;
        SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events.dlq", 1, 1000, 15000, &dlq) == 0,
                    "topic events.dlq is readable");
        for (size_t i = 0; i < dlq.n; i++) {
            const char *code = slt_kafka_rec_header(&dlq.recs[i], "dlq.code");
            const char *stage = slt_kafka_rec_header(&dlq.recs[i], "dlq.stage");
            if (code && strcmp(code, "id_conflict") == 0) {
                conflicts++;
                SLT_CHECK(stage && strcmp(stage, "dedup") == 0, "id_conflict dead letter stage");
                SLT_CHECK(slt_kafka_rec_header(&dlq.recs[i], "event_id") != NULL,
                          "id_conflict dead letter names its event_id");
            }
        }
        SLT_CHECK(conflicts == 1, "events.dlq: %zu id_conflict records, want 1", conflicts);
        slt_kafka_recs_dispose(&dlq);
    }
    slt_ledger_dispose(&led);
    slt_stack_stop(&s);
    return slt_finish();
}
