/* Unit tests for tools/dlq/dlq_filter.c: --code/--tenant sets, the time window, absent headers,
 * the bound on values, and which letters replay takes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dlq.h"

static void letter(dlq_letter_t *l, const char *code, const char *tenant, int64_t ts)
{
    dlq_letter_init(l);
    if (code != NULL)
        dlq_letter_set_header(l, "dlq.code", code, strlen(code));
    if (tenant != NULL)
        dlq_letter_set_header(l, "tenant", tenant, strlen(tenant));
    l->timestamp = ts;
}

static void test_empty_filter_passes_everything(void **state)
{
    (void)state;
    dlq_filter_t f;
    dlq_letter_t l;
    dlq_filter_init(&f);
    letter(&l, NULL, NULL, -1);
    assert_true(dlq_filter_match(&f, &l));
    dlq_letter_dispose(&l);
}

static void test_codes_and_tenants(void **state)
{
    (void)state;
    dlq_filter_t f;
    dlq_letter_t a, b, c, none;
    dlq_filter_init(&f);
    assert_int_equal(dlq_filter_add_code(&f, "missing_field"), 0);
    assert_int_equal(dlq_filter_add_code(&f, "bad_type"), 0);
    assert_int_equal(dlq_filter_add_tenant(&f, "acme"), 0);
    letter(&a, "missing_field", "acme", 1);
    letter(&b, "bad_type", "globex", 1);
    letter(&c, "bad_uuid", "acme", 1);
    letter(&none, NULL, NULL, 1);
    assert_true(dlq_filter_match(&f, &a));
    assert_false(dlq_filter_match(&f, &b));    /* tenant */
    assert_false(dlq_filter_match(&f, &c));    /* code */
    assert_false(dlq_filter_match(&f, &none)); /* no header: not a match for a filter on it */
    dlq_letter_dispose(&a);
    dlq_letter_dispose(&b);
    dlq_letter_dispose(&c);
    dlq_letter_dispose(&none);
}

static void test_time_window(void **state)
{
    (void)state;
    dlq_filter_t f;
    dlq_letter_t l;
    dlq_filter_init(&f);
    f.since_ms = 1000;
    f.until_ms = 2000;
    int64_t ts[] = {999, 1000, 1500, 2000, 2001, -1};
    int want[] = {0, 1, 1, 1, 0, 0};
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
        letter(&l, "x", "t", ts[i]);
        assert_int_equal(dlq_filter_match(&f, &l), want[i]);
        dlq_letter_dispose(&l);
    }
}

static void test_value_bound(void **state)
{
    (void)state;
    dlq_filter_t f;
    dlq_filter_init(&f);
    for (int i = 0; i < DLQ_MAX_FILTER_VALUES; i++)
        assert_int_equal(dlq_filter_add_tenant(&f, "t"), 0);
    assert_int_equal(dlq_filter_add_tenant(&f, "t"), -1);
    assert_int_equal(f.n_tenants, DLQ_MAX_FILTER_VALUES);
}

static void test_replay_selects(void **state)
{
    (void)state;
    dlq_letter_t l;
    letter(&l, "schema_not_found", "t", 1);
    dlq_letter_set_header(&l, "dlq.stage", "schema", 6);
    dlq_letter_set_header(&l, "dlq.retryable", "true", 4);
    assert_true(dlq_replay_selects(&l, 0));
    assert_true(dlq_replay_selects(&l, 1));
    dlq_letter_set_header(&l, "dlq.retryable", "false", 5);
    assert_false(dlq_replay_selects(&l, 0));
    assert_true(dlq_replay_selects(&l, 1));
    /* a whole request body is never an event to resend, even with --all */
    dlq_letter_set_header(&l, "dlq.stage", "parse", 5);
    dlq_letter_set_header(&l, "dlq.retryable", "true", 4);
    assert_false(dlq_replay_selects(&l, 0));
    assert_false(dlq_replay_selects(&l, 1));
    dlq_letter_dispose(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_filter_passes_everything),
        cmocka_unit_test(test_codes_and_tenants),
        cmocka_unit_test(test_time_window),
        cmocka_unit_test(test_value_bound),
        cmocka_unit_test(test_replay_selects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
