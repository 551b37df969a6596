/* Unit tests for schema compilation (schema/schema_compile.c): what is refused and with which
 * message, named types and recursion, the accessors, and that errbuf may be small or absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "schema.h"

static void expect_refused(const char *json, const char *msg_part)
{
    char err[256];
    schema_t *s = schema_compile_avro(json, strlen(json), 1, err, sizeof(err));
    if (s)
        fail_msg("accepted: %s", json);
    if (!strstr(err, msg_part))
        fail_msg("%s: message '%s' lacks '%s'", json, err, msg_part);
}

#define REC(fields) "{\"type\":\"record\",\"name\":\"R\",\"fields\":[" fields "]}"

static void test_refused(void **state)
{
    expect_refused("", "invalid Avro schema");
    expect_refused("{", "invalid Avro schema");
    expect_refused("\"int\"", "must be a record");
    expect_refused("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}", "must be a record");
    expect_refused(REC("{\"name\":\"a\",\"type\":\"nosuch\"}"), "invalid Avro schema");
    expect_refused(REC("{\"name\":\"a\",\"type\":\"int\",\"default\":\"x\"}"),
                   "field \"a\": default does not match type int");
    expect_refused(REC("{\"name\":\"a\",\"type\":\"int\",\"default\":2147483648}"), "type int");
    expect_refused(REC("{\"name\":\"a\",\"type\":\"string\",\"default\":null}"), "type string");
    expect_refused(REC("{\"name\":\"a\",\"type\":[\"null\",\"int\"],\"default\":1}"), "type null");
    expect_refused(REC("{\"name\":\"a\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":2},"
                       "\"default\":\"abc\"}"),
                   "not 2 bytes");
    expect_refused(REC("{\"name\":\"a\",\"type\":\"bytes\",\"default\":\"\\u0100\"}"),
                   "above 255");
    expect_refused(REC("{\"name\":\"a\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":"
                       "[\"A\"]},\"default\":\"B\"}"),
                   "not a symbol");
    expect_refused(REC("{\"name\":\"a\",\"type\":{\"type\":\"record\",\"name\":\"Q\",\"fields\":"
                       "[{\"name\":\"q\",\"type\":\"int\"}]},\"default\":{}}"),
                   "lacks record field \"q\"");
    expect_refused(REC("{\"name\":\"a\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\","
                       "\"precision\":40}}"),
                   "precision 40 above 38");
    {
        char big[1024];
        char name[300];
        memset(name, 'n', 299);
        name[299] = '\0';
        snprintf(big, sizeof(big), REC("{\"name\":\"%s\",\"type\":\"int\"}"), name);
        expect_refused(big, "longer than 255");
    }
}

static void test_errbuf_optional(void **state)
{
    char tiny[4];
    assert_null(schema_compile_avro("{", 1, 1, NULL, 0));
    assert_null(schema_compile_avro("{", 1, 1, tiny, sizeof(tiny)));
    assert_int_equal(strlen(tiny), 3);
    assert_null(schema_compile_avro(NULL, 0, 1, tiny, sizeof(tiny)));
}

static void test_named_and_recursive(void **state)
{
    const char *js =
        "{\"type\":\"record\",\"name\":\"Node\",\"namespace\":\"a.b\",\"fields\":["
        "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"K\",\"symbols\":[\"X\",\"Y\"]}},"
        "{\"name\":\"kind2\",\"type\":\"K\",\"default\":\"Y\"},"
        "{\"name\":\"kids\",\"type\":{\"type\":\"array\",\"items\":\"a.b.Node\"},\"default\":[]}]}";
    char err[256];
    schema_t *s = schema_compile_avro(js, strlen(js), 42, err, sizeof(err));
    const char *ev = "{\"kind\":\"X\",\"kids\":[{\"kind\":\"Y\",\"kind2\":\"X\"}]}";
    uint8_t out[64];
    schema_error_t e;
    static const uint8_t want[] = {0, 0, 0, 0, 42, 0x00, 0x02, 0x02, 0x02, 0x00, 0x00, 0x00};

    if (!s)
        fail_msg("%s", err);
    assert_string_equal(schema_name(s), "a.b.Node");
    assert_int_equal(schema_id(s), 42);
    assert_int_equal(avro_typeof(schema_avro(s)), AVRO_RECORD);
    assert_int_equal(schema_encode_json(s, ev, strlen(ev), NULL, out, sizeof(out), &e),
                     sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    schema_destroy(s);
}

static void test_ignored_logical_types(void **state)
{
    /* unknown and invalid logical types fall back to the base type (Avro spec) */
    const char *js = REC("{\"name\":\"a\",\"type\":{\"type\":\"string\",\"logicalType\":\"nope\"}},"
                         "{\"name\":\"b\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":1,"
                         "\"logicalType\":\"decimal\",\"precision\":10}}");
    char err[256];
    schema_t *s = schema_compile_avro(js, strlen(js), 1, err, sizeof(err));
    const char *ev = "{\"a\":\"free text\",\"b\":\"/w==\"}";
    uint8_t out[64];
    schema_error_t e;
    if (!s)
        fail_msg("%s", err);
    assert_int_equal(schema_encode_json(s, ev, strlen(ev), NULL, out, sizeof(out), &e),
                     5 + 1 + 9 + 1);
    assert_int_equal(out[15], 0xff);
    schema_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_errbuf_optional),
        cmocka_unit_test(test_named_and_recursive),
        cmocka_unit_test(test_ignored_logical_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
