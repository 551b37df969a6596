/* Unit tests for the pure parts of tools/dlq/dlq_replay.c: reading the gateway's 200 answer
 * (only the events not accepted are listed), Retry-After, result names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dlq.h"

static int parse(const char *body, size_t n, dlq_gw_outcome_t *outs, char *err)
{
    return dlq_gw_response_parse(body, strlen(body), n, outs, err, 160);
}

static void test_outcomes(void **state)
{
    (void)state;
    dlq_gw_outcome_t outs[4];
    char err[160] = "";
    const char *body = "{\"accepted\":1,\"duplicate\":1,\"invalid\":1,\"retry\":1,\"events\":["
                       "{\"i\":0,\"event_id\":\"a\",\"status\":\"duplicate\"},"
                       "{\"i\":2,\"event_id\":\"c\",\"status\":\"invalid\",\"code\":\"bad_type\","
                       "\"path\":\"properties.x\",\"detail\":\"expected int\"},"
                       "{\"i\":3,\"event_id\":\"d\",\"status\":\"retry\",\"code\":\"in_flight\"}]}";
    assert_int_equal(parse(body, 4, outs, err), 0);
    assert_string_equal(outs[0].status, "duplicate");
    assert_string_equal(outs[1].status, ""); /* not listed: accepted */
    assert_string_equal(outs[2].status, "invalid");
    assert_string_equal(outs[2].code, "bad_type");
    assert_string_equal(outs[2].path, "properties.x");
    assert_string_equal(outs[2].detail, "expected int");
    assert_string_equal(outs[3].status, "retry");
    assert_string_equal(outs[3].code, "in_flight");
    /* everything accepted */
    assert_int_equal(parse("{\"accepted\":4,\"events\":[]}", 4, outs, err), 0);
    for (int i = 0; i < 4; i++)
        assert_string_equal(outs[i].status, "");
}

static void test_bad_answers(void **state)
{
    (void)state;
    dlq_gw_outcome_t outs[2];
    char err[160];
    const char *bad[] = {
        "",
        "not json",
        "[]",
        "{\"accepted\":2}",
        "{\"events\":{}}",
        "{\"events\":[{\"i\":2,\"status\":\"invalid\"}]}", /* index out of the batch */
        "{\"events\":[{\"i\":-1,\"status\":\"invalid\"}]}",
        "{\"events\":[{\"i\":\"0\",\"status\":\"invalid\"}]}",
        "{\"events\":[{\"i\":0}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(parse(bad[i], 2, outs, err), -1);
        assert_true(strlen(err) > 0);
    }
    /* long fields are cut, never overflow */
    char body[1024];
    char longcode[600];
    memset(longcode, 'c', sizeof(longcode) - 1);
    longcode[sizeof(longcode) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"events\":[{\"i\":0,\"status\":\"invalid\",\"code\":\"%s\"}]}",
             longcode);
    assert_int_equal(parse(body, 2, outs, err), 0);
    assert_int_equal(strlen(outs[0].code), sizeof(outs[0].code) - 1);
}

static void test_retry_after(void **state)
{
    (void)state;
    assert_int_equal(dlq_retry_after_ms("3", 500, 60000), 3000);
    assert_int_equal(dlq_retry_after_ms("0", 500, 60000), 0);
    assert_int_equal(dlq_retry_after_ms("", 500, 60000), 500);
    assert_int_equal(dlq_retry_after_ms(NULL, 500, 60000), 500);
    assert_int_equal(dlq_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 500, 60000), 500);
    assert_int_equal(dlq_retry_after_ms("-1", 500, 60000), 500);
    assert_int_equal(dlq_retry_after_ms("3600", 500, 60000), 60000);
    assert_int_equal(dlq_retry_after_ms("99999999999999", 500, 60000), 500);
}

static void test_result_names(void **state)
{
    (void)state;
    assert_string_equal(dlq_result_name(DLQ_R_WOULD_ACCEPT), "would_accept");
    assert_string_equal(dlq_result_name(DLQ_R_ACCEPTED), "accepted");
    assert_string_equal(dlq_result_name(DLQ_R_DUPLICATE), "duplicate");
    assert_string_equal(dlq_result_name(DLQ_R_INVALID), "invalid");
    assert_string_equal(dlq_result_name(DLQ_R_FAILED), "failed");
    assert_string_equal(dlq_result_name(DLQ_R__COUNT), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcomes),
        cmocka_unit_test(test_bad_answers),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_result_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
