/* Unit tests for common/sl_metrics.c, sl_err.c and sl_log.c's rate limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sl_err.h"
#include "sl_log.h"
#include "sl_metrics.h"

static void test_buf_is_bounded(void **state)
{
    sl_buf_t b;
    sl_buf_init(&b, 16);
    sl_buf_append(&b, "0123456789", 10);
    assert_int_equal(b.len, 10);
    assert_false(b.overflow);
    sl_buf_printf(&b, "%s", "abcdefghij"); /* would reach 20 > 16 */
    assert_true(b.overflow);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    sl_buf_dispose(&b);
}

static void test_buf_printf_long(void **state)
{
    sl_buf_t b;
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sl_buf_init(&b, 4096);
    sl_buf_printf(&b, "<%s>", big); /* longer than the formatter's stack buffer */
    assert_int_equal(b.len, 601);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[600], '>');
    sl_buf_dispose(&b);
}

static void test_json_escape(void **state)
{
    sl_buf_t b;
    sl_buf_init(&b, 256);
    sl_buf_json_escape(&b, "a\"b\\c\n\x01z", 8, 100);
    assert_string_equal(b.data, "a\\\"b\\\\c\\u000a\\u0001z");
    sl_buf_dispose(&b);
    sl_buf_init(&b, 256);
    sl_buf_json_escape(&b, "abcdef", 6, 3); /* truncated input */
    assert_string_equal(b.data, "abc");
    sl_buf_dispose(&b);
    sl_buf_init(&b, 256);
    sl_buf_json_escape(&b, "ab\xc3\xa9z", 5, 3); /* the cut would split the e-acute */
    assert_string_equal(b.data, "ab");
    sl_buf_dispose(&b);
}

static void test_histogram_render(void **state)
{
    sl_hist_t h1, h2;
    const sl_hist_t *hs[2] = {&h1, &h2};
    sl_buf_t b;

    memset(&h1, 0, sizeof(h1));
    memset(&h2, 0, sizeof(h2));
    sl_hist_observe(&h1, 50);       /* <= 100 µs */
    sl_hist_observe(&h1, 3000);     /* <= 5 ms */
    sl_hist_observe(&h2, 20000000); /* +Inf */
    sl_buf_init(&b, 1 << 16);
    sl_prom_hist(&b, "x_seconds", "help text", hs, 2);
    assert_non_null(strstr(b.data, "# TYPE x_seconds histogram\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{le=\"0.0025\"} 1\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{le=\"10\"} 2\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(b.data, "x_seconds_sum 20.003050\n"));
    assert_non_null(strstr(b.data, "x_seconds_count 3\n"));
    sl_buf_dispose(&b);
}

static void test_err_table(void **state)
{
    assert_string_equal(sl_err_code(SL_ERR_BODY_TOO_LARGE), "body_too_large");
    assert_int_equal(sl_err_status(SL_ERR_BODY_TOO_LARGE), 413);
    assert_int_equal(sl_err_status(SL_ERR_DRAINING), 503);
    assert_true(sl_err_is_retryable(SL_ERR_DRAINING));
    assert_false(sl_err_is_retryable(SL_ERR_MALFORMED_JSON));
    assert_string_equal(sl_err_code((sl_err_t)9999), "internal"); /* out of range is safe */
    /* every code is unique and non-empty */
    for (int i = 0; i < SL_ERR__COUNT; i++) {
        assert_true(strlen(sl_err_code((sl_err_t)i)) > 0);
        assert_true(strlen(sl_err_message((sl_err_t)i)) > 0);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(sl_err_code((sl_err_t)i), sl_err_code((sl_err_t)k));
    }
}

static void test_log_rate_limit(void **state)
{
    sl_log_limit_t lim = {0};
    assert_int_equal(sl_log_limit_pass(&lim, 60000), 1); /* first passes, 0 suppressed */
    assert_int_equal(sl_log_limit_pass(&lim, 60000), 0);
    assert_int_equal(sl_log_limit_pass(&lim, 60000), 0);
    /* once the interval is over, the next line reports the two it swallowed */
    atomic_store(&lim.next_ms, 0);
    assert_int_equal(sl_log_limit_pass(&lim, 60000), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_is_bounded),   cmocka_unit_test(test_buf_printf_long),
        cmocka_unit_test(test_json_escape),      cmocka_unit_test(test_histogram_render),
        cmocka_unit_test(test_err_table),        cmocka_unit_test(test_log_rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
