/* Integration: dedup.policy=closed. With Redis killed, /readyz goes 503 and batches get 503
 * dedup_unavailable with Retry-After, storing nothing; with Redis back, both recover. */
#include "slt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 10

int main(void)
{
    slt_init("test_dedup_closed", 120);
    const char *sets[] = {"dedup.policy=closed", NULL};
    slt_stack_t s;
    SLT_REQUIRE(slt_stack_start(&s, sets) == 0, "the stack starts");
    slt_ledger_t led;
    slt_ledger_init(&led);
    int64_t t0 = slt_wall_ms();
    slt_batch_t a, b, c;
    slt_http_resp_t resp;

    slt_batch_init(&a);
    slt_batch_add_n(&a, N);
    slt_post_batch(&s, &a, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
    slt_check_all_accepted("before the outage", &resp, N);
    slt_http_resp_dispose(&resp);
    for (size_t i = 0; i < N; i++)
        slt_ledger_expect(&led, slt_batch_event(&a, i), SLT_TENANT_A);

    SLT_REQUIRE(slt_redis_kill(&s) == 0, "redis killed");
    SLT_CHECK(slt_wait_readyz(&s, 503, NULL, 10000), "/readyz goes 503 without Redis");
    slt_batch_init(&b);
    slt_batch_add_n(&b, N);
    slt_post_batch(&s, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_1_1, &resp);
    slt_check_error("during the outage", &resp, 503, "dedup_unavailable");
    {
        char *ra = slt_http_resp_header(&resp, "Retry-After");
        SLT_CHECK(ra && atoi(ra) >= 1, "503 carries Retry-After");
        free(ra);
    }
    slt_http_resp_dispose(&resp);
    for (size_t i = 0; i < N; i++)
        slt_ledger_forbid(&led, slt_batch_event_id(&b, i), "answered 503 dedup_unavailable");

    SLT_REQUIRE(slt_redis_restart(&s) == 0, "redis restarted");
    SLT_CHECK(slt_wait_readyz(&s, 200, NULL, 15000), "/readyz back to 200 with Redis");
    slt_batch_init(&c);
    slt_batch_add_n(&c, N);
    slt_post_batch(&s, &c, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
    slt_check_all_accepted("after the outage", &resp, N);
    slt_http_resp_dispose(&resp);
    for (size_t i = 0; i < N; i++)
        slt_ledger_expect(&led, slt_batch_event(&c, i), SLT_TENANT_A);

    /* the gateway's own books agree: the refused batch is not counted as accepted */
    {
        long accepted = slt_gateway_metric(&s, "sluice_events_total{outcome=\"accepted\"}");
        SLT_CHECK(accepted == 2 * N, "metrics count %ld accepted, want %d", accepted, 2 * N);
    }

    int64_t t1 = slt_wall_ms();
    slt_kafka_recs_t recs;
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", slt_ledger_n_expected(&led), 1000,
                                      20000, &recs) == 0,
                "topic events is readable");
    slt_ledger_verify(&led, &recs, t0, t1, NULL);
    slt_kafka_recs_dispose(&recs);
    slt_batch_dispose(&a);
    slt_batch_dispose(&b);
    slt_batch_dispose(&c);
    slt_ledger_dispose(&led);
    slt_stack_stop(&s);
    return slt_finish();
}
