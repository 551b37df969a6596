/* Unit tests for tools/dlq/dlq_stats.c: counts by code, tenant and code x tenant, first/last
 * timestamps, absent headers, the JSON form and the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dlq.h"

static void add(dlq_stats_t *st, const char *code, const char *tenant, int64_t ts)
{
    dlq_letter_t l;
    dlq_letter_init(&l);
    if (code != NULL)
        dlq_letter_set_header(&l, "dlq.code", code, strlen(code));
    if (tenant != NULL)
        dlq_letter_set_header(&l, "tenant", tenant, strlen(tenant));
    l.timestamp = ts;
    dlq_stats_add(st, &l);
    dlq_letter_dispose(&l);
}

static void test_counts(void **state)
{
    (void)state;
    dlq_stats_t *st = dlq_stats_create();
    add(st, "missing_field", "acme", 300);
    add(st, "missing_field", "acme", 100);
    add(st, "missing_field", "globex", 200);
    add(st, "bad_type", "acme", -1);
    add(st, NULL, NULL, 250);
    json_t *j = dlq_stats_json(st);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s,
                        "{\"by_code\":{\"(none)\":1,\"bad_type\":1,\"missing_field\":3},"
                        "\"by_code_tenant\":{\"(none)\":{\"(none)\":1},\"bad_type\":{\"acme\":1},"
                        "\"missing_field\":{\"acme\":2,\"globex\":1}},"
                        "\"by_tenant\":{\"(none)\":1,\"acme\":3,\"globex\":1},"
                        "\"first_timestamp\":100,\"last_timestamp\":300,\"total\":5}");
    free(s);
    json_decref(j);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dlq_stats_print(st, f);
    fclose(f);
    assert_non_null(strstr(buf, "dead letters: 5\n"));
    assert_non_null(strstr(buf, "first: 1970-01-01T00:00:00.100Z  last: 1970-01-01T00:00:00.300Z"));
    /* sorted by count: missing_field (3) before bad_type (1) */
    assert_true(strstr(buf, "missing_field") < strstr(buf, "bad_type"));
    assert_non_null(strstr(buf, "missing_field            acme                              2\n"));
    free(buf);
    dlq_stats_destroy(st);
}

static void test_empty(void **state)
{
    (void)state;
    dlq_stats_t *st = dlq_stats_create();
    json_t *j = dlq_stats_json(st);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 0);
    assert_true(json_is_null(json_object_get(j, "first_timestamp")));
    assert_int_equal(json_object_size(json_object_get(j, "by_code")), 0);
    json_decref(j);
    dlq_stats_destroy(st);
    dlq_stats_destroy(NULL);
}

static void test_distinct_keys_bounded(void **state)
{
    (void)state;
    dlq_stats_t *st = dlq_stats_create();
    char tenant[32];
    for (int i = 0; i < DLQ_MAX_STATS_KEYS + 50; i++) {
        snprintf(tenant, sizeof(tenant), "t%d", i);
        add(st, "bad_type", tenant, i);
    }
    json_t *j = dlq_stats_json(st);
    json_t *by_tenant = json_object_get(j, "by_tenant");
    assert_int_equal(json_object_size(by_tenant), DLQ_MAX_STATS_KEYS + 1);
    assert_int_equal(json_integer_value(json_object_get(by_tenant, "(other)")), 50);
    json_decref(j);
    dlq_stats_destroy(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_distinct_keys_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
