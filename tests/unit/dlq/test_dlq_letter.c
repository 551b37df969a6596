/* Unit tests for tools/dlq/dlq_letter.c: Kafka headers -> letter -> the JSON record of `tail`
 * (every field of API.md), UTF-8 vs base64 values, hostile header bytes, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dlq.h"

static void hdr(dlq_letter_t *l, const char *name, const char *value)
{
    dlq_letter_set_header(l, name, value, value != NULL ? strlen(value) : 0);
}

/* The letter the gateway writes for an event without user_id (gateway/gw_dlq.c). */
static void gateway_letter(dlq_letter_t *l)
{
    dlq_letter_init(l);
    l->partition = 3;
    l->offset = 17;
    l->timestamp = 1764000000123;
    hdr(l, "dlq.code", "missing_field");
    hdr(l, "dlq.stage", "envelope");
    hdr(l, "dlq.path", "user_id");
    hdr(l, "dlq.detail", "required");
    hdr(l, "dlq.retryable", "false");
    hdr(l, "tenant", "acme");
    hdr(l, "event_id", "9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11");
    hdr(l, "received_at", "1764000000100");
    hdr(l, "content_type", "application/json");
    hdr(l, "gateway", "gw-1");
    hdr(l, "x-unknown", "ignored");
    const char *v = "{\"event_id\":\"9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11\"}";
    dlq_letter_set_value(l, v, strlen(v));
}

static void test_record_fields(void **state)
{
    (void)state;
    dlq_letter_t l;
    gateway_letter(&l);
    json_t *j = dlq_letter_to_json(&l);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(
        s, "{\"partition\":3,\"offset\":17,\"timestamp\":1764000000123,\"code\":\"missing_field\","
           "\"stage\":\"envelope\",\"path\":\"user_id\",\"detail\":\"required\","
           "\"retryable\":false,\"tenant\":\"acme\","
           "\"event_id\":\"9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11\",\"received_at\":1764000000100,"
           "\"content_type\":\"application/json\",\"schema_subject\":null,\"schema_id\":null,"
           "\"gateway\":\"gw-1\",\"truncated\":false,"
           "\"value\":\"{\\\"event_id\\\":\\\"9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11\\\"}\"}");
    free(s);
    json_decref(j);
    dlq_letter_dispose(&l);
    assert_null(l.code);
    assert_int_equal(l.retryable, -1);
}

static void test_schema_headers_and_truncated(void **state)
{
    (void)state;
    dlq_letter_t l;
    gateway_letter(&l);
    hdr(&l, "dlq.retryable", "true");
    hdr(&l, "schema_subject", "page_view");
    hdr(&l, "schema_id", "42");
    hdr(&l, "dlq.truncated", "true");
    hdr(&l, "dlq.code", "schema_not_found"); /* a repeated header keeps the last value */
    json_t *j = dlq_letter_to_json(&l);
    assert_true(json_is_true(json_object_get(j, "retryable")));
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_string_equal(json_string_value(json_object_get(j, "schema_subject")), "page_view");
    assert_int_equal(json_integer_value(json_object_get(j, "schema_id")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "code")), "schema_not_found");
    json_decref(j);
    /* numbers that are not numbers: schema_id null, received_at kept as the text it was */
    hdr(&l, "schema_id", "4x");
    hdr(&l, "received_at", "yesterday");
    hdr(&l, "dlq.retryable", "TRUE");
    j = dlq_letter_to_json(&l);
    assert_true(json_is_null(json_object_get(j, "schema_id")));
    assert_string_equal(json_string_value(json_object_get(j, "received_at")), "yesterday");
    assert_true(json_is_null(json_object_get(j, "retryable")));
    json_decref(j);
    dlq_letter_dispose(&l);
}

static void test_binary_value_is_base64(void **state)
{
    (void)state;
    dlq_letter_t l;
    dlq_letter_init(&l);
    const uint8_t v[] = {0x00, 0x00, 0x00, 0x00, 0x2a, 0xff, 0xfe};
    dlq_letter_set_value(&l, v, sizeof(v));
    json_t *j = dlq_letter_to_json(&l);
    assert_null(json_object_get(j, "value"));
    assert_string_equal(json_string_value(json_object_get(j, "value_base64")), "AAAAACr//g==");
    assert_true(json_is_null(json_object_get(j, "code")));
    assert_true(json_is_null(json_object_get(j, "timestamp")));
    json_decref(j);
    /* a NULL value stays null; an empty one is the empty string */
    dlq_letter_set_value(&l, NULL, 0);
    j = dlq_letter_to_json(&l);
    assert_true(json_is_null(json_object_get(j, "value")));
    json_decref(j);
    dlq_letter_set_value(&l, "", 0);
    j = dlq_letter_to_json(&l);
    assert_string_equal(json_string_value(json_object_get(j, "value")), "");
    json_decref(j);
    dlq_letter_dispose(&l);
}

static void test_hostile_headers(void **state)
{
    (void)state;
    dlq_letter_t l;
    dlq_letter_init(&l);
    /* not UTF-8: replaced, the record still prints */
    dlq_letter_set_header(&l, "tenant",
                          "a\xff"
                          "b",
                          3);
    /* a NUL inside a header value ends the text there */
    dlq_letter_set_header(&l, "dlq.path", "x\0y", 3);
    /* oversized: cut to the bound */
    char *big = malloc(DLQ_MAX_HEADER_BYTES * 2);
    memset(big, 'd', DLQ_MAX_HEADER_BYTES * 2);
    dlq_letter_set_header(&l, "dlq.detail", big, DLQ_MAX_HEADER_BYTES * 2);
    free(big);
    dlq_letter_set_header(&l, "event_id", NULL, 0);
    dlq_letter_set_header(&l, NULL, "v", 1);
    json_t *j = dlq_letter_to_json(&l);
    assert_string_equal(json_string_value(json_object_get(j, "tenant")), "a\xef\xbf\xbd"
                                                                         "b");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "x");
    assert_int_equal(strlen(json_string_value(json_object_get(j, "detail"))), DLQ_MAX_HEADER_BYTES);
    assert_true(json_is_null(json_object_get(j, "event_id")));
    json_decref(j);
    dlq_letter_dispose(&l);
}

static void test_utf8_and_base64(void **state)
{
    (void)state;
    assert_true(dlq_utf8_is_valid((const uint8_t *)"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
    assert_false(dlq_utf8_is_valid((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
    assert_false(dlq_utf8_is_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
    assert_false(dlq_utf8_is_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(dlq_utf8_is_valid((const uint8_t *)"\xe2\x82", 2));         /* cut */
    assert_true(dlq_utf8_is_valid((const uint8_t *)"", 0));
    const char *cases[][2] = {{"", ""},
                              {"f", "Zg=="},
                              {"fo", "Zm8="},
                              {"foo", "Zm9v"},
                              {"foob", "Zm9vYg=="},
                              {"fooba", "Zm9vYmE="},
                              {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *b = dlq_base64((const uint8_t *)cases[i][0], strlen(cases[i][0]));
        assert_string_equal(b, cases[i][1]);
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_fields),
        cmocka_unit_test(test_schema_headers_and_truncated),
        cmocka_unit_test(test_binary_value_is_base64),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_utf8_and_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
