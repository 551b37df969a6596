/* Unit tests for gateway/gw_admit.c: the backpressure signals and the Retry-After they set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gw_int.h"

static gw_config_t gc;
static gw_server_t srv;

static int setup(void **state)
{
    memset(&gc, 0, sizeof(gc));
    memset(&srv, 0, sizeof(srv));
    gc.bp_max_inflight_events = 1000;
    gc.bp_queue_max_messages = 500;
    gc.bp_queue_max_bytes = 1 << 20;
    gc.bp_max_delivery_latency_ms = 100;
    gc.retry_after_s = 1;
    gc.bp_max_retry_after_s = 30;
    srv.gc = &gc;
    return 0;
}

static void test_signals(void **state)
{
    assert_int_equal(gw_admit_pipeline(&srv), GW_SHED_NONE);
    /* in-flight events: the limit itself is already too many */
    gw_admit_enter(&srv, 999);
    assert_int_equal(gw_admit_pipeline(&srv), GW_SHED_NONE);
    gw_admit_enter(&srv, 1);
    assert_int_equal(gw_admit_pipeline(&srv), GW_SHED_INFLIGHT_EVENTS);
    gw_admit_leave(&srv, 1000, 0, 0, 0);
    assert_int_equal(gw_admit_pipeline(&srv), GW_SHED_NONE);
    /* queue depth in messages, then in bytes */
    gw_admit_produced(&srv, 500, 1000);
    assert_int_equal(gw_admit_pipeline(&srv), GW_SHED_QUEUE_MESSAGES);
    gw_admit_leave(&srv, 0, 500, 1000, 1000);
    gw_admit_produced(&srv, 10, 1 << 20);
    assert_int_equal(gw_admit_pipeline(&srv), GW_SHED_QUEUE_BYTES);
    gw_admit_leave(&srv, 0, 10, 1 << 20, 1000);
    assert_int_equal(gw_admit_pipeline(&srv), GW_SHED_NONE);
    assert_string_equal(gw_shed_name(GW_SHED_QUEUE_BYTES), "queue_bytes");
}

/* The smoothed delivery time sheds only while something is queued: with nothing in flight no
 * sample could ever bring the average down again. */
static void test_delivery_latency(void **state)
{
    for (int i = 0; i < 40; i++) { /* batches taking 500 ms against a 100 ms bound */
        gw_admit_produced(&srv, 1, 100);
        gw_admit_leave(&srv, 0, 1, 100, 500000);
    }
    assert_true(atomic_load(&srv.delivery_ewma_us) > 400000);
    assert_int_equal(gw_admit_pipeline(&srv), GW_SHED_NONE); /* queue empty */
    gw_admit_produced(&srv, 1, 100);
    assert_int_equal(gw_admit_pipeline(&srv), GW_SHED_DELIVERY_LATENCY);
    for (int i = 0; i < 40; i++) { /* fast batches bring it back under the bound */
        gw_admit_produced(&srv, 1, 100);
        gw_admit_leave(&srv, 0, 1, 100, 1000);
    }
    assert_int_equal(gw_admit_pipeline(&srv), GW_SHED_NONE);
}

/* Retry-After: gateway.retry_after until a full second of shedding was measured, then demand
 * over capacity on average (spread over [1, 2 x - 1]), capped by backpressure.max_retry_after. */
static void test_retry_after(void **state)
{
    int64_t t = 5000000000LL;
    int ra;

    atomic_store(&srv.window_start_ns, t);
    assert_int_equal(gw_admit_shed(&srv, t), 1);
    /* this second: 100 admitted, 300 shed (one above): demand 4x what was taken */
    for (int i = 0; i < 100; i++)
        gw_admit_enter(&srv, 0);
    for (int i = 0; i < 298; i++)
        gw_admit_shed(&srv, t + 1000);
    ra = gw_admit_shed(&srv, t + 1000000001LL); /* rolls the window, then counts itself */
    assert_in_range(ra, 1, 7);
    {
        /* the spread: mean 4 (demand 4x), every value of [1, 7] drawn */
        int seen[8] = {0}, sum = 0;
        for (int i = 0; i < 7000; i++) {
            int v = gw_admit_shed(&srv, t + 1000000002LL);
            assert_in_range(v, 1, 7);
            seen[v]++, sum += v;
        }
        for (int v = 1; v <= 7; v++)
            assert_true(seen[v] > 0);
        assert_in_range(sum / 7000, 3, 4);
    }
    /* a second with nothing admitted and much shed: capped */
    for (int i = 0; i < 5000; i++)
        gw_admit_shed(&srv, t + 1500000000LL);
    {
        int max = 0;
        for (int i = 0; i < 1000; i++) {
            ra = gw_admit_shed(&srv, t + 2100000000LL);
            max = ra > max ? ra : max;
        }
        assert_in_range(max, 50, 59); /* 30 on average: [1, 59] */
    }
    /* a quiet second (one shed, the one that rolled it): back to the configured value */
    gw_admit_shed(&srv, t + 3200000000LL); /* rolls the second of the 1000 above */
    ra = gw_admit_shed(&srv, t + 4300000000LL);
    assert_int_equal(ra, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_signals, setup),
        cmocka_unit_test_setup(test_delivery_latency, setup),
        cmocka_unit_test_setup(test_retry_after, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
