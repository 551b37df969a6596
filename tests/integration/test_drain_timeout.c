/* Integration: SIGTERM while a batch waits for Kafka longer than gateway.drain_timeout (linger
 * 3 s, drain 300 ms). The gateway must purge what Kafka has not acked, answer the batch (its
 * events "retry": never written), and exit 0. Regression: the producer used to be flushed after
 * the loops were gone, and the late delivery report wrote into a freed message queue (SEGV). */
#include "slt.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define BATCH_EVENTS 20

/* true once the gateway reports a batch waiting for Kafka */
static int batch_in_flight(void *arg)
{
    return slt_gateway_metric(arg, "sluice_inflight_batches") == 1;
}

int main(void)
{
    slt_init("test_drain_timeout", 120);
    const char *sets[] = {"kafka.linger.ms=3000", "gateway.drain_timeout=300ms", NULL};
    slt_stack_t s;
    SLT_REQUIRE(slt_stack_start(&s, sets) == 0, "the stack starts");
    slt_ledger_t led;
    slt_ledger_init(&led);
    int64_t t0 = slt_wall_ms();

    slt_batch_t b;
    slt_post_t post;
    slt_http_resp_t resp;
    slt_batch_init(&b);
    slt_batch_add_n(&b, BATCH_EVENTS);
    slt_post_prepare(&post, &s, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2);
    slt_http_many_t *m = slt_http_many_start(&post.req, 1);
    SLT_REQUIRE(slt_poll_until(batch_in_flight, &s, 10000), "the batch is waiting for Kafka");

    SLT_CHECK(slt_proc_signal(&s.gateway, SIGTERM) == 0, "SIGTERM sent to the gateway");
    int exited = slt_proc_wait(&s.gateway, 15000);
    char st[64];
    SLT_CHECK(exited, "gateway exits within 15 s of SIGTERM");
    if (exited)
        SLT_CHECK(WIFEXITED(s.gateway.exit_status) && WEXITSTATUS(s.gateway.exit_status) == 0,
                  "gateway exit after SIGTERM: %s, want exit 0",
                  slt_wait_status_str(s.gateway.exit_status, st, sizeof(st)));
    SLT_CHECK(slt_proc_log_contains(&s.gateway, "drain timeout: purging"),
              "the gateway logged the purge");
    slt_http_many_join(m, &resp);

    /* the client got an answer: every event accepted or retry, nothing lost in between */
    SLT_CHECK(resp.status == 200, "batch answered HTTP %ld, want 200: %s", resp.status,
              resp.status ? resp.body : resp.error);
    if (resp.status == 200) {
        slt_batch_resp_t br;
        char err[256];
        SLT_REQUIRE(slt_batch_resp_parse(resp.body, resp.body_len, &br, err, sizeof(err)) == 0,
                    "200 body parses: %s", err);
        SLT_CHECK(br.accepted + br.retry == BATCH_EVENTS, "counts add up: %.300s", resp.body);
        SLT_CHECK(br.retry > 0, "the purge left events to retry: %.300s", resp.body);
        for (size_t i = 0; i < BATCH_EVENTS; i++) {
            const slt_outcome_t *o = slt_batch_resp_find(&br, (long)i);
            if (o == NULL)
                slt_ledger_expect(&led, slt_batch_event(&b, i), SLT_TENANT_A);
            else
                slt_ledger_forbid(&led, slt_batch_event_id(&b, i),
                                  "purged while lingering: never written");
        }
        slt_note("answer: %lld accepted, %lld retry", (long long)br.accepted, (long long)br.retry);
        slt_batch_resp_dispose(&br);
    }

    int64_t t1 = slt_wall_ms();
    slt_kafka_recs_t recs;
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", slt_ledger_n_expected(&led), 1000,
                                      15000, &recs) == 0,
                "topic events is readable");
    slt_ledger_verify(&led, &recs, t0, t1, NULL);
    slt_kafka_recs_dispose(&recs);

    slt_http_resp_dispose(&resp);
    slt_post_dispose(&post);
    slt_batch_dispose(&b);
    slt_ledger_dispose(&led);
    slt_stack_stop(&s);
    return slt_finish();
}
