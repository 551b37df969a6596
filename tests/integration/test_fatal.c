/* Integration: a librdkafka fatal error (injected through POST /debug/kafka-fatal on the admin
 * listener) while batches are in flight. /readyz must go 503 and come back to 200 (producer
 * recreated); any 503 must carry Retry-After and store nothing; batches after recovery are
 * accepted and land in Kafka; resending what was not accepted yields every event exactly once. */
#include "slt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_INFLIGHT 20
#define BATCH_EVENTS 50

typedef struct {
    const char *url;
    long want;
    long last_status;
    char last_body[1024];
} readyz_t;

static int cond_readyz(void *arg)
{
    readyz_t *r = arg;
    slt_http_req_t req = {.method = "GET", .url = r->url, .timeout_ms = 2000};
    slt_http_resp_t resp;
    r->last_status = slt_http(&req, &resp);
    snprintf(r->last_body, sizeof(r->last_body), "%s", resp.status ? resp.body : resp.error);
    slt_http_resp_dispose(&resp);
    return r->last_status == r->want;
}

/* Posts b and requires every event accepted. */
static void post_all_accepted(const slt_stack_t *s, slt_ledger_t *led, const slt_batch_t *b,
                              const char *key, const char *tenant, slt_http_version_t v,
                              const char *what)
{
    slt_http_resp_t resp;
    slt_post_batch(s, b, key, SLT_AUTH_BEARER, v, &resp);
    if (slt_check_all_accepted(what, &resp, slt_batch_len(b)) && led)
        for (size_t i = 0; i < slt_batch_len(b); i++)
            slt_ledger_expect(led, slt_batch_event(b, i), tenant);
    slt_http_resp_dispose(&resp);
}

/* Diagnostics: for each batch in flight at the fault, how many of its events reached Kafka. */
static void report_inflight_in_kafka(const slt_kafka_recs_t *recs, const slt_batch_t *batches,
                                     const slt_http_resp_t *resps, size_t n)
{
    json_t *seen = json_object();
    for (size_t i = 0; i < recs->n; i++) {
        const char *eid = slt_kafka_rec_header(&recs->recs[i], "event_id");
        if (eid)
            json_object_set_new(seen, eid, json_true());
    }
    for (size_t k = 0; k < n; k++) {
        size_t found = 0;
        for (size_t i = 0; i < slt_batch_len(&batches[k]); i++)
            found += json_object_get(seen, slt_batch_event_id(&batches[k], i)) != NULL;
        slt_note("in-flight batch %zu: HTTP %ld, %zu/%zu of its events in Kafka", k,
                 resps[k].status, found, slt_batch_len(&batches[k]));
    }
    json_decref(seen);
}

int main(void)
{
    slt_init("test_fatal", 170);
    const char *const sets[] = {"debug.fault_injection=true", NULL};
    slt_stack_t s;
    SLT_REQUIRE(slt_stack_start(&s, sets) == 0, "the stack starts");
    char url[200];
    /* `now` ledger: what must be in Kafka right after recovery; `all`: after the resends */
    slt_ledger_t now, all;
    slt_ledger_init(&now);
    slt_ledger_init(&all);
    int64_t t0 = slt_wall_ms();

    for (int k = 0; k < 2; k++) {
        slt_batch_t b;
        slt_batch_init(&b);
        slt_batch_add_n(&b, BATCH_EVENTS);
        post_all_accepted(&s, &now, &b, SLT_WRITE_KEY_A, SLT_TENANT_A, SLT_HTTP_2,
                          "batch before the fault");
        for (size_t i = 0; i < slt_batch_len(&b); i++)
            slt_ledger_expect(&all, slt_batch_event(&b, i), SLT_TENANT_A);
        slt_batch_dispose(&b);
    }

    /* Batches in flight when the fault hits */
    static slt_batch_t batches[N_INFLIGHT];
    static slt_post_t posts[N_INFLIGHT];
    static slt_http_req_t reqs[N_INFLIGHT];
    static slt_http_resp_t resps[N_INFLIGHT];
    for (size_t k = 0; k < N_INFLIGHT; k++) {
        slt_batch_init(&batches[k]);
        slt_batch_add_n(&batches[k], BATCH_EVENTS);
        slt_post_prepare(&posts[k], &s, &batches[k], SLT_WRITE_KEY_B, SLT_AUTH_BEARER,
                         k % 2 ? SLT_HTTP_2 : SLT_HTTP_1_1);
        reqs[k] = posts[k].req;
    }
    slt_http_many_t *many = slt_http_many_start(reqs, N_INFLIGHT);
    SLT_CHECK(slt_http_many_wait(many, 1, 5, 20000), "requests got going within 20 s");

    slt_http_req_t fault = {.method = "POST",
                            .url = slt_admin_url(&s, "/debug/kafka-fatal", url, sizeof(url)),
                            .body = "",
                            .body_len = 0};
    slt_http_resp_t fresp;
    long fstatus = slt_http(&fault, &fresp);
    int64_t t_fault = slt_now_ms();
    SLT_CHECK(fstatus >= 200 && fstatus < 300, "POST /debug/kafka-fatal: HTTP %ld: %s", fstatus,
              fresp.status ? fresp.body : fresp.error);
    slt_http_resp_dispose(&fresp);
    slt_note("fault injected with %zu/%d in-flight requests answered", slt_http_many_done(many),
             N_INFLIGHT);

    /* /readyz: 503 (with a JSON body naming what is not ready), then 200 again */
    readyz_t rz = {.url = slt_admin_url(&s, "/readyz", url, sizeof(url)), .want = 503};
    int saw_503 = slt_poll_until(cond_readyz, &rz, 10000);
    SLT_CHECK(saw_503, "/readyz did not go 503 within 10 s of the fatal error (last: %ld %s)",
              rz.last_status, rz.last_body);
    if (saw_503) {
        json_error_t je;
        json_t *j = json_loads(rz.last_body, 0, &je);
        SLT_CHECK(j != NULL, "/readyz 503 body is not JSON: %s", rz.last_body);
        json_decref(j);
        slt_note("/readyz 503 after %lld ms: %s", (long long)(slt_now_ms() - t_fault),
                 rz.last_body);
    }
    rz.want = 200;
    int recovered = slt_poll_until(cond_readyz, &rz, 30000);
    SLT_CHECK(recovered, "/readyz not back to 200 within 30 s (last: %ld %s)", rz.last_status,
              rz.last_body);
    slt_note("/readyz back to 200 %lld ms after the fault", (long long)(slt_now_ms() - t_fault));
    SLT_CHECK(slt_proc_is_running(&s.gateway), "the gateway survived the fatal error");

    slt_http_many_join(many, resps);

    /* What was not accepted is resent afterwards, as an SDK would */
    slt_batch_t resend;
    slt_batch_init(&resend);
    size_t n_ok = 0, n_503 = 0, n_conn = 0, n_accepted = 0, n_retry = 0;
    for (size_t k = 0; k < N_INFLIGHT; k++) {
        const slt_http_resp_t *r = &resps[k];
        char what[64];
        snprintf(what, sizeof(what), "in-flight batch %zu", k);
        for (size_t i = 0; i < BATCH_EVENTS; i++)
            slt_ledger_expect(&all, slt_batch_event(&batches[k], i), SLT_TENANT_B);
        if (r->status == 200) {
            n_ok++;
            slt_batch_resp_t br;
            char err[256];
            if (slt_batch_resp_parse(r->body, r->body_len, &br, err, sizeof(err)) != 0) {
                SLT_CHECK(0, "%s: 200 body unusable: %s: %.300s", what, err, r->body);
                continue;
            }
            SLT_CHECK(br.duplicate == 0 && br.invalid == 0,
                      "%s: fresh valid events reported duplicate/invalid: %.300s", what, r->body);
            for (size_t i = 0; i < BATCH_EVENTS; i++) {
                const slt_outcome_t *o = slt_batch_resp_find(&br, (long)i);
                json_t *ev = slt_batch_event(&batches[k], i);
                if (!o) {
                    slt_ledger_expect(&now, ev, SLT_TENANT_B);
                    n_accepted++;
                } else {
                    SLT_CHECK(strcmp(o->status, "retry") == 0, "%s: event %zu is '%s'", what, i,
                              o->status);
                    slt_ledger_forbid(&now, slt_batch_event_id(&batches[k], i),
                                      "reported retry (not stored) at the fatal error");
                    slt_batch_add_value(&resend, json_incref(ev));
                    n_retry++;
                }
            }
            slt_batch_resp_dispose(&br);
        } else if (r->status == 503) {
            n_503++;
            char *ra = slt_http_resp_header(r, "Retry-After");
            SLT_CHECK(ra && atoi(ra) >= 1, "%s: 503 without a Retry-After (seconds) header", what);
            free(ra);
            char *code = NULL, *detail = NULL, err[256];
            if (slt_error_body_parse(r->body, r->body_len, &code, &detail, err, sizeof(err)) == 0)
                SLT_CHECK(strcmp(code, "producer_fatal") == 0 || strcmp(code, "not_ready") == 0,
                          "%s: 503 code '%s', want producer_fatal (or not_ready)", what, code);
            else
                SLT_CHECK(0, "%s: 503 body: %s: %.300s", what, err, r->body);
            free(code);
            free(detail);
            for (size_t i = 0; i < BATCH_EVENTS; i++) {
                slt_ledger_forbid(&now, slt_batch_event_id(&batches[k], i),
                                  "its batch was answered 503 (stores nothing)");
                slt_batch_add_value(&resend, json_incref(slt_batch_event(&batches[k], i)));
            }
        } else {
            /* A connection error must not happen (the gateway keeps running); resend anyway */
            if (r->status == 0)
                n_conn++;
            SLT_CHECK(0, "%s: HTTP %ld %s", what, r->status, r->status ? r->body : r->error);
            for (size_t i = 0; i < BATCH_EVENTS; i++) {
                slt_ledger_maybe(&now, slt_batch_event(&batches[k], i), SLT_TENANT_B);
                slt_batch_add_value(&resend, json_incref(slt_batch_event(&batches[k], i)));
            }
        }
    }
    slt_note("in flight at the fault: %zu x 200 (%zu accepted, %zu retry), %zu x 503, %zu "
             "connection errors",
             n_ok, n_accepted, n_retry, n_503, n_conn);

    /* After recovery: fresh batches are accepted */
    for (int k = 0; k < 4; k++) {
        slt_batch_t b;
        slt_batch_init(&b);
        slt_batch_add_n(&b, BATCH_EVENTS);
        post_all_accepted(&s, &now, &b, SLT_WRITE_KEY_A, SLT_TENANT_A,
                          k % 2 ? SLT_HTTP_2 : SLT_HTTP_1_1, "batch after recovery");
        for (size_t i = 0; i < slt_batch_len(&b); i++)
            slt_ledger_expect(&all, slt_batch_event(&b, i), SLT_TENANT_A);
        slt_batch_dispose(&b);
    }

    /* Kafka now: exactly the accepted events; nothing of a 503 or retry */
    int64_t t1 = slt_wall_ms();
    slt_kafka_recs_t recs;
    size_t n_now = slt_ledger_n_expected(&now);
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", n_now, 1500, 30000, &recs) == 0,
                "topic events is readable");
    slt_note("events after recovery: %zu records, %zu accepted events", recs.n, n_now);
    slt_ledger_verify(&now, &recs, t0, t1, NULL);
    report_inflight_in_kafka(&recs, batches, resps, N_INFLIGHT);
    slt_kafka_recs_dispose(&recs);

    /* Resend what was not accepted (in batches of at most 500): then every event exactly once */
    size_t n_resend = slt_batch_len(&resend);
    for (size_t off = 0; off < n_resend; off += 500) {
        slt_batch_t part;
        slt_batch_init(&part);
        for (size_t i = off; i < n_resend && i < off + 500; i++)
            slt_batch_add_value(&part, json_incref(slt_batch_event(&resend, i)));
        post_all_accepted(&s, NULL, &part, SLT_WRITE_KEY_B, SLT_TENANT_B, SLT_HTTP_2,
                          "resend of what was not accepted");
        slt_batch_dispose(&part);
    }
    slt_batch_dispose(&resend);
    t1 = slt_wall_ms();
    size_t n_all = slt_ledger_n_expected(&all);
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", n_all, 1500, 30000, &recs) == 0,
                "topic events is readable");
    slt_note("events after resending %zu events: %zu records, %zu expected", n_resend, recs.n,
             n_all);
    SLT_CHECK(recs.n == n_all, "topic events has %zu records, want exactly %zu", recs.n, n_all);
    slt_ledger_verify(&all, &recs, t0, t1, NULL);
    slt_kafka_recs_dispose(&recs);

    for (size_t k = 0; k < N_INFLIGHT; k++) {
        slt_http_resp_dispose(&resps[k]);
        slt_post_dispose(&posts[k]);
        slt_batch_dispose(&batches[k]);
    }
    slt_ledger_dispose(&now);
    slt_ledger_dispose(&all);
    slt_stack_stop(&s);
    return slt_finish();
}
