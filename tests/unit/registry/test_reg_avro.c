/* Avro in the registry: what avro-c 1.11.1's own resolver says (documented divergences from the
 * specification), and that our resolution walk follows the specification instead; validity
 * checks avro-c skips; the canonical form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <avro.h>
#include <cmocka.h>

#include "reg_int.h"

#define REC(fields) "{\"type\":\"record\",\"name\":\"A\",\"fields\":[" fields "]}"
#define F_A "{\"name\":\"a\",\"type\":\"string\"}"
#define F_B_REQ "{\"name\":\"b\",\"type\":\"int\"}"
#define F_B_DEF "{\"name\":\"b\",\"type\":\"int\",\"default\":3}"
#define ENUM2 "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]}"
#define ENUM1 "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"]}"
#define ENUM1_DEF "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"U\"],\"default\":\"U\"}"

static reg_avro_t *parse(const char *text)
{
    reg_msg_t err = {{0}};
    reg_avro_t *a = reg_avro_parse(text, strlen(text), &err);
    if (a == NULL)
        fail_msg("parse failed: %s", err.msg);
    return a;
}

/* Our verdict: can data written with w be read with r? */
static int reads(const char *w, const char *r, reg_msg_t *why)
{
    reg_avro_t *aw = parse(w), *ar = parse(r);
    int ok = reg_avro_can_read(aw, ar, "test", why);
    reg_avro_destroy(aw);
    reg_avro_destroy(ar);
    return ok;
}

/* avro-c's verdict through avro_resolved_writer_new. */
static int avroc_reads(const char *w, const char *r)
{
    avro_schema_t sw, sr;
    avro_value_iface_t *iface;
    assert_int_equal(avro_schema_from_json_length(w, strlen(w), &sw), 0);
    assert_int_equal(avro_schema_from_json_length(r, strlen(r), &sr), 0);
    iface = avro_resolved_writer_new(sw, sr);
    if (iface != NULL)
        avro_value_iface_decref(iface);
    avro_schema_decref(sw);
    avro_schema_decref(sr);
    return iface != NULL;
}

static void test_avroc_divergences(void **state)
{
    (void)state;
    /* what the brief asked to verify: a new required field is rejected by avro-c */
    assert_false(avroc_reads(REC(F_A), REC(F_A "," F_B_REQ)));
    /* too strict: a new field WITH a default is also rejected (avro-c ignores defaults) */
    assert_false(avroc_reads(REC(F_A), REC(F_A "," F_B_DEF)));
    /* too strict: string <-> bytes promotion is refused */
    assert_false(avroc_reads("\"string\"", "\"bytes\""));
    /* too lenient: a writer enum symbol the reader lacks is accepted */
    assert_true(avroc_reads(ENUM2, ENUM1));
    /* too lenient: a writer union branch the reader cannot take is accepted */
    assert_true(avroc_reads("[\"null\",\"string\",\"int\"]", "[\"null\",\"string\"]"));
    /* agreed with the spec */
    assert_true(avroc_reads("\"int\"", "\"long\""));
    assert_false(avroc_reads("\"long\"", "\"int\""));
}

static void test_ours_follows_spec(void **state)
{
    reg_msg_t why = {{0}};
    (void)state;
    assert_false(reads(REC(F_A), REC(F_A "," F_B_REQ), &why));
    assert_non_null(strstr(why.msg, "/b"));
    assert_non_null(strstr(why.msg, "no default"));
    assert_true(reads(REC(F_A), REC(F_A "," F_B_DEF), &why));
    assert_true(reads(REC(F_A "," F_B_REQ), REC(F_A), &why)); /* reader ignores extra fields */
    assert_true(reads("\"string\"", "\"bytes\"", &why));
    assert_true(reads("\"bytes\"", "\"string\"", &why));
    memset(&why, 0, sizeof(why));
    assert_false(reads(ENUM2, ENUM1, &why));
    assert_non_null(strstr(why.msg, "symbol Y"));
    assert_true(reads(ENUM2, ENUM1_DEF, &why)); /* unknown symbols read as the default */
    assert_true(reads(ENUM1, ENUM2, &why));
    assert_false(reads("[\"null\",\"string\",\"int\"]", "[\"null\",\"string\"]", &why));
    assert_true(reads("[\"null\",\"string\"]", "[\"null\",\"string\",\"int\"]", &why));
    assert_true(reads("\"string\"", "[\"null\",\"string\"]", &why));
    assert_false(reads("[\"null\",\"string\"]", "\"string\"", &why));
    assert_true(reads("\"int\"", "\"long\"", &why));
    assert_true(reads("\"int\"", "\"double\"", &why));
    assert_true(reads("\"float\"", "\"double\"", &why));
    assert_false(reads("\"long\"", "\"int\"", &why));
    assert_false(reads("\"double\"", "\"float\"", &why));
    assert_false(
        reads(REC(F_A), "{\"type\":\"record\",\"name\":\"B\",\"fields\":[" F_A "]}", &why));
    assert_false(reads("{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}",
                       "{\"type\":\"fixed\",\"name\":\"F\",\"size\":8}", &why));
    assert_true(reads("{\"type\":\"array\",\"items\":\"int\"}",
                      "{\"type\":\"array\",\"items\":\"long\"}", &why));
    assert_false(reads("{\"type\":\"map\",\"values\":\"long\"}",
                       "{\"type\":\"map\",\"values\":\"int\"}", &why));
}

static void test_nested_and_recursive(void **state)
{
    const char *v1 = "{\"type\":\"record\",\"name\":\"E\",\"fields\":[{\"name\":\"p\",\"type\":"
                     "{\"type\":\"record\",\"name\":\"P\",\"fields\":[{\"name\":\"x\",\"type\":"
                     "\"int\"}]}}]}";
    const char *v2 = "{\"type\":\"record\",\"name\":\"E\",\"fields\":[{\"name\":\"p\",\"type\":"
                     "{\"type\":\"record\",\"name\":\"P\",\"fields\":[{\"name\":\"x\",\"type\":"
                     "\"int\"},{\"name\":\"y\",\"type\":\"string\"}]}}]}";
    const char *list = "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\",\"type\":"
                       "\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}";
    const char *list2 = "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\",\"type\":"
                        "\"long\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}";
    reg_msg_t why = {{0}};
    (void)state;
    assert_false(reads(v1, v2, &why));
    assert_non_null(strstr(why.msg, "/p/y"));
    assert_true(reads(v2, v1, &why));
    assert_true(reads(list, list, &why)); /* terminates on the recursive type */
    assert_true(reads(list, list2, &why));
    assert_false(reads(list2, list, &why));
}

static void expect_invalid(const char *text, const char *needle)
{
    reg_msg_t err = {{0}};
    reg_avro_t *a = reg_avro_parse(text, strlen(text), &err);
    if (a != NULL)
        fail_msg("accepted: %s", text);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
}

static void test_invalid(void **state)
{
    char deep[16384];
    size_t o = 0;
    (void)state;
    expect_invalid("{\"type\":", "not JSON");
    expect_invalid(REC("{\"name\":\"a\",\"type\":\"strin\"}"), "Unknown Avro");
    /* avro-c accepts these three; the spec does not */
    expect_invalid(REC(F_A "," F_A), "twice");
    expect_invalid(REC("{\"name\":\"b\",\"type\":\"int\",\"default\":\"x\"}"), "default");
    expect_invalid(REC("{\"name\":\"b\",\"type\":[\"null\",\"int\"],\"default\":1}"), "default");
    expect_invalid("[\"int\",\"int\"]", "same type");
    expect_invalid("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"],\"default\":\"Q\"}",
                   "default");
    expect_invalid("{\"type\":\"record\",\"name\":\"1A\",\"fields\":[]}", "Invalid");
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(deep + o, sizeof(deep) - o, "{\"type\":\"array\",\"items\":");
    o += (size_t)snprintf(deep + o, sizeof(deep) - o, "\"int\"");
    for (int i = 0; i < 300; i++)
        deep[o++] = '}';
    deep[o] = 0;
    expect_invalid(deep, "deeper");
}

static void test_valid_defaults_and_canonical(void **state)
{
    const char *a = "{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"r\",\"type\":"
                    "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"x\",\"type\":"
                    "\"int\",\"default\":1}]},\"default\":{}},{\"name\":\"u\",\"type\":[\"null\","
                    "\"int\"],\"default\":null},{\"name\":\"m\",\"type\":{\"type\":\"map\","
                    "\"values\":\"long\"},\"default\":{\"k\":5}}]}";
    const char *b = "{ \"name\" : \"A\", \"type\":\"record\",\n \"fields\":[{\"type\":{\"fields\""
                    ":[{\"default\":1,\"type\":\"int\",\"name\":\"x\"}],\"name\":\"R\",\"type\":"
                    "\"record\"},\"name\":\"r\",\"default\":{}},{\"default\":null,\"name\":\"u\","
                    "\"type\":[\"null\",\"int\"]},{\"name\":\"m\",\"default\":{\"k\":5},\"type\":"
                    "{\"values\":\"long\",\"type\":\"map\"}}]}";
    reg_avro_t *pa = parse(a), *pb = parse(b);
    (void)state;
    assert_string_equal(reg_avro_canonical(pa), reg_avro_canonical(pb));
    assert_string_not_equal(reg_avro_text(pa), reg_avro_text(pb)); /* served as written */
    assert_null(strchr(reg_avro_text(pb), '\n'));
    reg_avro_destroy(pa);
    reg_avro_destroy(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avroc_divergences),
        cmocka_unit_test(test_ours_follows_spec),
        cmocka_unit_test(test_nested_and_recursive),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_valid_defaults_and_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
