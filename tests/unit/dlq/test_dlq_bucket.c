/* Unit tests for tools/dlq/dlq_bucket.c with a hand-driven clock: burst, refill, the wait it
 * predicts, clamping, a clock going backwards, unlimited, and the long-run rate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dlq.h"

static void test_burst_then_wait(void **state)
{
    (void)state;
    dlq_bucket_t b;
    dlq_bucket_init(&b, 100, 10, 0); /* 100 events/s, burst 10 */
    assert_int_equal(dlq_bucket_take(&b, 10, 0), 0);
    /* empty: 5 tokens take 50 ms at 100/s; nothing is taken meanwhile */
    assert_int_equal(dlq_bucket_take(&b, 5, 0), 50000);
    assert_int_equal(dlq_bucket_take(&b, 5, 49000) > 0, 1);
    assert_int_equal(dlq_bucket_take(&b, 5, 50000), 0);
    assert_int_equal(dlq_bucket_take(&b, 1, 50000), 10000);
}

static void test_refill_caps_at_burst(void **state)
{
    (void)state;
    dlq_bucket_t b;
    dlq_bucket_init(&b, 10, 5, 0);
    assert_int_equal(dlq_bucket_take(&b, 5, 0), 0);
    /* an hour idle refills only the burst */
    assert_int_equal(dlq_bucket_take(&b, 5, 3600LL * 1000000), 0);
    assert_true(dlq_bucket_take(&b, 1, 3600LL * 1000000) > 0);
}

static void test_over_burst_is_clamped(void **state)
{
    (void)state;
    dlq_bucket_t b;
    dlq_bucket_init(&b, 2, 4, 0);
    /* asking for more than the bucket holds must not wait forever */
    assert_int_equal(dlq_bucket_take(&b, 100, 0), 0);
    assert_int_equal(dlq_bucket_take(&b, 100, 0), 2000000);
}

static void test_clock_backwards_and_unlimited(void **state)
{
    (void)state;
    dlq_bucket_t b;
    dlq_bucket_init(&b, 1, 1, 1000000);
    assert_int_equal(dlq_bucket_take(&b, 1, 1000000), 0);
    assert_int_equal(dlq_bucket_take(&b, 1, 0), 1000000); /* no refill from the past */
    dlq_bucket_init(&b, 0, 1, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(dlq_bucket_take(&b, 500, 0), 0);
}

static void test_long_run_rate(void **state)
{
    (void)state;
    /* 50 events/s in batches of 7 for 10 simulated seconds: 500 (+ the first burst) events */
    dlq_bucket_t b;
    int64_t now = 0, sent = 0;
    dlq_bucket_init(&b, 50, 7, 0);
    while (now < 10 * 1000000LL) {
        int64_t wait = dlq_bucket_take(&b, 7, now);
        if (wait == 0)
            sent += 7;
        else
            now += wait;
    }
    assert_true(sent >= 500 && sent <= 507 + 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_wait),
        cmocka_unit_test(test_refill_caps_at_burst),
        cmocka_unit_test(test_over_burst_is_clamped),
        cmocka_unit_test(test_clock_backwards_and_unlimited),
        cmocka_unit_test(test_long_run_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
