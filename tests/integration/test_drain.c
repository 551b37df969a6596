/* Integration: SIGTERM while ~40 batches are in flight. The gateway must exit 0 within 30 s;
 * every event it reported accepted must be in `events` exactly once; a 503 (draining) batch must
 * have stored nothing; batches that died with a connection error may or may not be stored, but
 * never twice. */
#include "slt.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define N_BATCHES 40
#define BATCH_EVENTS 50

int main(void)
{
    slt_init("test_drain", 170);
    slt_stack_t s;
    SLT_REQUIRE(slt_stack_start(&s, NULL) == 0, "the stack starts");
    slt_ledger_t led;
    slt_ledger_init(&led);
    int64_t t0 = slt_wall_ms();

    /* Warm up: the producer is connected and a batch goes through. */
    {
        slt_batch_t b;
        slt_batch_init(&b);
        slt_batch_add_n(&b, 10);
        slt_http_resp_t resp;
        slt_post_batch(&s, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
        SLT_REQUIRE(slt_check_all_accepted("warm-up batch", &resp, 10), "warm-up accepted");
        for (size_t i = 0; i < slt_batch_len(&b); i++)
            slt_ledger_expect(&led, slt_batch_event(&b, i), SLT_TENANT_A);
        slt_http_resp_dispose(&resp);
        slt_batch_dispose(&b);
    }

    static slt_batch_t batches[N_BATCHES];
    static slt_post_t posts[N_BATCHES];
    static slt_http_req_t reqs[N_BATCHES];
    static slt_http_resp_t resps[N_BATCHES];
    for (size_t k = 0; k < N_BATCHES; k++) {
        slt_batch_init(&batches[k]);
        slt_batch_add_n(&batches[k], BATCH_EVENTS);
        slt_post_prepare(&posts[k], &s, &batches[k], k % 2 ? SLT_WRITE_KEY_B : SLT_WRITE_KEY_A,
                         SLT_AUTH_BEARER, k % 4 < 2 ? SLT_HTTP_1_1 : SLT_HTTP_2);
        reqs[k] = posts[k].req;
    }

    /* SIGTERM once requests are really in flight: some bodies fully sent, or a first answer */
    slt_http_many_t *many = slt_http_many_start(reqs, N_BATCHES);
    SLT_CHECK(slt_http_many_wait(many, 1, N_BATCHES / 4, 20000),
              "requests got going within 20 s (uploaded %zu, done %zu)",
              slt_http_many_uploaded(many), slt_http_many_done(many));
    size_t done_at_term = slt_http_many_done(many);
    size_t uploaded_at_term = slt_http_many_uploaded(many);
    SLT_CHECK(slt_proc_signal(&s.gateway, SIGTERM) == 0, "SIGTERM sent to the gateway");
    int64_t t_term = slt_now_ms();
    slt_note("SIGTERM with %zu/%d requests answered, %zu bodies fully sent", done_at_term,
             N_BATCHES, uploaded_at_term);
    if (done_at_term >= N_BATCHES)
        slt_note("WARNING: every request had been answered before SIGTERM: drain not exercised");

    int exited = slt_proc_wait(&s.gateway, 30000);
    int64_t exit_ms = slt_now_ms() - t_term;
    char st[64];
    SLT_CHECK(exited, "gateway exits within 30 s of SIGTERM");
    if (exited) {
        SLT_CHECK(WIFEXITED(s.gateway.exit_status) && WEXITSTATUS(s.gateway.exit_status) == 0,
                  "gateway exit after SIGTERM: %s, want exit 0",
                  slt_wait_status_str(s.gateway.exit_status, st, sizeof(st)));
        slt_note("gateway exited (%s) %lld ms after SIGTERM",
                 slt_wait_status_str(s.gateway.exit_status, st, sizeof(st)), (long long)exit_ms);
    }
    slt_http_many_join(many, resps);

    size_t n_ok = 0, n_503 = 0, n_conn = 0, n_other = 0, n_accepted = 0, n_retry = 0;
    size_t n_maybe_events = 0;
    for (size_t k = 0; k < N_BATCHES; k++) {
        const slt_http_resp_t *r = &resps[k];
        const char *tenant = k % 2 ? SLT_TENANT_B : SLT_TENANT_A;
        char what[64];
        snprintf(what, sizeof(what), "batch %zu", k);
        if (r->status == 200) {
            n_ok++;
            slt_batch_resp_t br;
            char err[256];
            if (slt_batch_resp_parse(r->body, r->body_len, &br, err, sizeof(err)) != 0) {
                SLT_CHECK(0, "%s: 200 body unusable: %s: %.300s", what, err, r->body);
                /* Unknown outcome: nothing can be expected, duplicates are still caught */
                for (size_t i = 0; i < BATCH_EVENTS; i++)
                    slt_ledger_maybe(&led, slt_batch_event(&batches[k], i), tenant);
                continue;
            }
            SLT_CHECK(br.duplicate == 0 && br.invalid == 0,
                      "%s: fresh valid events reported duplicate/invalid: %.300s", what, r->body);
            SLT_CHECK(br.accepted + br.retry == BATCH_EVENTS && br.n_events == (size_t)br.retry,
                      "%s: counts do not add up: %.300s", what, r->body);
            for (size_t i = 0; i < BATCH_EVENTS; i++) {
                const slt_outcome_t *o = slt_batch_resp_find(&br, (long)i);
                const json_t *ev = slt_batch_event(&batches[k], i);
                if (!o) {
                    slt_ledger_expect(&led, ev, tenant);
                    n_accepted++;
                } else if (strcmp(o->status, "retry") == 0) {
                    slt_ledger_forbid(&led, slt_batch_event_id(&batches[k], i),
                                      "reported retry (not stored) in a 200 during drain");
                    n_retry++;
                } else {
                    SLT_CHECK(0, "%s: event %zu unexpectedly '%s'", what, i, o->status);
                    slt_ledger_maybe(&led, ev, tenant);
                }
            }
            slt_batch_resp_dispose(&br);
        } else if (r->status == 503) {
            n_503++;
            slt_check_error(what, r, 503, "draining");
            char *ra = slt_http_resp_header(r, "Retry-After");
            SLT_CHECK(ra && atoi(ra) >= 1, "%s: 503 without a Retry-After (seconds) header", what);
            free(ra);
            for (size_t i = 0; i < BATCH_EVENTS; i++)
                slt_ledger_forbid(&led, slt_batch_event_id(&batches[k], i),
                                  "its batch was answered 503 (stores nothing)");
        } else if (r->status == 0) {
            n_conn++;
            slt_note("%s: connection error: %s", what, r->error);
            for (size_t i = 0; i < BATCH_EVENTS; i++)
                slt_ledger_maybe(&led, slt_batch_event(&batches[k], i), tenant);
            n_maybe_events += BATCH_EVENTS;
        } else {
            n_other++;
            SLT_CHECK(0, "%s: unexpected HTTP %ld: %.300s", what, r->status, r->body);
            for (size_t i = 0; i < BATCH_EVENTS; i++)
                slt_ledger_maybe(&led, slt_batch_event(&batches[k], i), tenant);
        }
    }
    slt_note("responses: %zu x 200 (%zu events accepted, %zu retry), %zu x 503, %zu connection "
             "errors, %zu other",
             n_ok, n_accepted, n_retry, n_503, n_conn, n_other);

    int64_t t1 = slt_wall_ms();
    size_t n_expected = slt_ledger_n_expected(&led);
    slt_kafka_recs_t recs;
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", n_expected, 2000, 30000, &recs) == 0,
                "topic events is readable");
    size_t maybe_seen = 0;
    slt_ledger_verify(&led, &recs, t0, t1, &maybe_seen);
    slt_note("events: %zu records: %zu accepted events (incl. warm-up) + %zu of %zu events whose "
             "request failed in transit",
             recs.n, n_expected, maybe_seen, n_maybe_events);
    SLT_CHECK(recs.n >= n_expected, "topic events has %zu records, fewer than the %zu accepted",
              recs.n, n_expected);
    slt_kafka_recs_dispose(&recs);

    for (size_t k = 0; k < N_BATCHES; k++) {
        slt_http_resp_dispose(&resps[k]);
        slt_post_dispose(&posts[k]);
        slt_batch_dispose(&batches[k]);
    }
    slt_ledger_dispose(&led);
    slt_stack_stop(&s);
    return slt_finish();
}
