/* Unit tests for tools/dlq/dlq_time.c: epoch ms, RFC 3339 (offsets, fractions, leap days and
 * seconds), relative times, and refusals with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dlq.h"

static const int64_t NOW = 1764064800000; /* 2025-11-25T10:00:00Z */

static int64_t ok(const char *s)
{
    int64_t v = -42;
    char err[200] = "";
    assert_int_equal(dlq_time_parse(s, NOW, &v, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    return v;
}

static void refused(const char *s)
{
    int64_t v = -42;
    char err[200] = "";
    assert_int_equal(dlq_time_parse(s, NOW, &v, err, sizeof(err)), -1);
    assert_int_equal(v, -42);
    assert_non_null(strstr(err, "bad time"));
}

static void test_epoch_ms(void **state)
{
    (void)state;
    assert_int_equal(ok("1764000000000"), 1764000000000);
    assert_int_equal(ok("0"), 0);
    assert_int_equal(ok("now"), NOW);
    refused("12345678901234567"); /* 17 digits */
    refused("");
    refused(NULL);
}

static void test_rfc3339(void **state)
{
    (void)state;
    assert_int_equal(ok("2025-11-25T10:00:00Z"), NOW);
    assert_int_equal(ok("2025-11-25t10:00:00z"), NOW);
    assert_int_equal(ok("2025-11-25 10:00:00Z"), NOW);
    assert_int_equal(ok("2025-11-25T10:00:00.5Z"), NOW + 500);
    assert_int_equal(ok("2025-11-25T10:00:00.123456789Z"), NOW + 123);
    assert_int_equal(ok("2025-11-25T11:30:00+01:30"), NOW);
    assert_int_equal(ok("2025-11-25T08:00:00-02:00"), NOW);
    assert_int_equal(ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(ok("1969-12-31T23:59:59Z"), -1000);
    assert_int_equal(ok("2024-02-29T00:00:00Z"), 1709164800000);
    assert_int_equal(ok("2000-03-01T00:00:00Z"), 951868800000);
    /* a leap second is the end of the 59th second */
    assert_int_equal(ok("2016-12-31T23:59:60Z"), 1483228799999);
    refused("2025-02-29T00:00:00Z"); /* not a leap year */
    refused("1900-02-29T00:00:00Z");
    refused("2025-13-01T00:00:00Z");
    refused("2025-11-31T00:00:00Z");
    refused("2025-11-25T24:00:00Z");
    refused("2025-11-25T10:00:00");   /* no offset: ambiguous */
    refused("2025-11-25T10:00:00.Z"); /* empty fraction */
    refused("2025-11-25T10:00:00Zjunk");
    refused("2025-11-25");
    refused("2025-11-25T10:00:00+1:00");
}

static void test_relative(void **state)
{
    (void)state;
    assert_int_equal(ok("-15m"), NOW - 15 * 60000);
    assert_int_equal(ok("-2h"), NOW - 2 * 3600000);
    assert_int_equal(ok("-1d"), NOW - 86400000);
    assert_int_equal(ok("-1w"), NOW - 7 * 86400000LL);
    assert_int_equal(ok("-30s"), NOW - 30000);
    assert_int_equal(ok("-500ms"), NOW - 500);
    assert_int_equal(ok("-999999999d"), NOW - 999999999LL * 86400000);
    refused("-1000000000d"); /* 10 digits: bounded so it cannot overflow */
    refused("-15");
    refused("-m");
    refused("-15y");
    refused("+15m");
    refused("-15mm");
}

static void test_format(void **state)
{
    (void)state;
    char buf[40];
    assert_string_equal(dlq_time_format(NOW + 7, buf, sizeof(buf)), "2025-11-25T10:00:00.007Z");
    assert_string_equal(dlq_time_format(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epoch_ms),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_relative),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
