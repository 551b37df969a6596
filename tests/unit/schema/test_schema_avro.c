/* Unit tests for the JSON -> Avro transcoder (schema/schema_avro.c): exact bytes for every Avro
 * type (zigzag varints, strings, union indexes, array/map blocks, defaults, logical types),
 * members out of schema order, and every failure code with its path and detail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "schema.h"

#define B(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})
#define EMPTY ((const uint8_t *)""), 0

static schema_t *compile(const char *json)
{
    char err[256];
    schema_t *s = schema_compile_avro(json, strlen(json), 7, err, sizeof(err));
    if (!s)
        fail_msg("compile failed: %s", err);
    return s;
}

/* A record with one field "v" of the given type (JSON text). */
static schema_t *one(const char *type)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"v\","
                               "\"type\":%s}]}",
             type);
    return compile(buf);
}

static void hexdump(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "%s:", what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
}

/* Encodes json and compares the Avro body (after the 5 framing bytes) with exp. */
static void expect_enc(const schema_t *s, const char *json, const uint8_t *exp, size_t n)
{
    uint8_t out[4096];
    schema_error_t e;
    ssize_t r = schema_encode_json(s, json, strlen(json), NULL, out, sizeof(out), &e);
    if (r < 0)
        fail_msg("%s: %s at '%s': %s", json, sl_err_code(e.code), e.path, e.detail);
    assert_int_equal(e.code, SL_ERR_OK);
    assert_int_equal(out[0], 0);
    if ((size_t)r != n + SCHEMA_FRAME_BYTES || memcmp(out + SCHEMA_FRAME_BYTES, exp, n) != 0) {
        hexdump("want", exp, n);
        hexdump("got ", out + SCHEMA_FRAME_BYTES, (size_t)r - SCHEMA_FRAME_BYTES);
        fail_msg("%s: wrong bytes", json);
    }
}

/* Encoding json fails with code at path, and the detail contains detail_part (if given). */
static void expect_err(const schema_t *s, const char *json, sl_err_t code, const char *path,
                       const char *detail_part)
{
    uint8_t out[4096];
    schema_error_t e;
    ssize_t r = schema_encode_json(s, json, strlen(json), NULL, out, sizeof(out), &e);
    if (r >= 0)
        fail_msg("%s: accepted, want %s", json, sl_err_code(code));
    if (e.code != code || strcmp(e.path, path) != 0)
        fail_msg("%s: got %s at '%s' (%s), want %s at '%s'", json, sl_err_code(e.code), e.path,
                 e.detail, sl_err_code(code), path);
    assert_true(e.detail[0] != '\0');
    if (detail_part && !strstr(e.detail, detail_part))
        fail_msg("%s: detail '%s' lacks '%s'", json, e.detail, detail_part);
}

static void test_framing(void **state)
{
    char err[128];
    const char *js = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}";
    schema_t *s = schema_compile_avro(js, strlen(js), 0x01020304, err, sizeof(err));
    uint8_t out[16];
    schema_error_t e;
    assert_non_null(s);
    assert_int_equal(schema_id(s), 0x01020304);
    assert_string_equal(schema_name(s), "R");
    assert_non_null(schema_avro(s));
    assert_int_equal(schema_encode_json(s, "{}", 2, NULL, out, sizeof(out), &e), 5);
    assert_memory_equal(out, ((const uint8_t[]){0, 1, 2, 3, 4}), 5);
    assert_int_equal(e.code, SL_ERR_OK);
    /* not even room for the framing */
    assert_int_equal(schema_encode_json(s, "{}", 2, NULL, out, 4, &e), -1);
    assert_int_equal(e.code, SL_ERR_EVENT_TOO_LARGE);
    schema_destroy(s);
    schema_destroy(NULL);
}

static void test_int_long(void **state)
{
    schema_t *i = one("\"int\""), *l = one("\"long\"");
    expect_enc(i, "{\"v\":0}", B(0x00));
    expect_enc(i, "{\"v\":-1}", B(0x01));
    expect_enc(i, "{\"v\":1}", B(0x02));
    expect_enc(i, "{\"v\":63}", B(0x7e));
    expect_enc(i, "{\"v\":64}", B(0x80, 0x01));
    expect_enc(i, "{\"v\":-64}", B(0x7f));
    expect_enc(i, "{\"v\":-65}", B(0x81, 0x01));
    expect_enc(i, "{\"v\":2147483647}", B(0xfe, 0xff, 0xff, 0xff, 0x0f));
    expect_enc(i, "{\"v\":-2147483648}", B(0xff, 0xff, 0xff, 0xff, 0x0f));
    expect_enc(i, "{\"v\":-0}", B(0x00));
    expect_err(i, "{\"v\":2147483648}", SL_ERR_OUT_OF_RANGE, "v", "int");
    expect_err(i, "{\"v\":-2147483649}", SL_ERR_OUT_OF_RANGE, "v", NULL);
    expect_err(i, "{\"v\":1.5}", SL_ERR_BAD_TYPE, "v", "fraction");
    expect_err(i, "{\"v\":1.0}", SL_ERR_BAD_TYPE, "v", NULL);
    expect_err(i, "{\"v\":1e3}", SL_ERR_BAD_TYPE, "v", NULL);
    expect_err(i, "{\"v\":\"1\"}", SL_ERR_BAD_TYPE, "v", "expected int, got string");
    expect_err(i, "{\"v\":true}", SL_ERR_BAD_TYPE, "v", "got boolean");
    expect_err(i, "{\"v\":null}", SL_ERR_BAD_TYPE, "v", "got null");
    expect_err(i, "{\"v\":[1]}", SL_ERR_BAD_TYPE, "v", "got array");

    expect_enc(l, "{\"v\":9223372036854775807}",
               B(0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
    expect_enc(l, "{\"v\":-9223372036854775808}",
               B(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
    expect_enc(l, "{\"v\":1732500000123}", B(0xf6, 0xb5, 0xe0, 0x90, 0xec, 0x64));
    expect_err(l, "{\"v\":9223372036854775808}", SL_ERR_OUT_OF_RANGE, "v", "long");
    expect_err(l, "{\"v\":-9223372036854775809}", SL_ERR_OUT_OF_RANGE, "v", NULL);
    expect_err(l, "{\"v\":123456789012345678901234567890123}", SL_ERR_OUT_OF_RANGE, "v", NULL);
    expect_err(l, "{\"v\":1e400}", SL_ERR_BAD_TYPE, "v", NULL);
    expect_err(l, "{\"v\":{}}", SL_ERR_BAD_TYPE, "v", "expected long, got object");
    schema_destroy(i);
    schema_destroy(l);
}

static void test_float_double(void **state)
{
    schema_t *f = one("\"float\""), *d = one("\"double\"");
    expect_enc(f, "{\"v\":1.5}", B(0x00, 0x00, 0xc0, 0x3f));
    expect_enc(f, "{\"v\":-2}", B(0x00, 0x00, 0x00, 0xc0));
    expect_enc(f, "{\"v\":3.4028234e38}", B(0xff, 0xff, 0x7f, 0x7f));
    expect_err(f, "{\"v\":1e39}", SL_ERR_OUT_OF_RANGE, "v", "float");
    expect_err(f, "{\"v\":\"1.5\"}", SL_ERR_BAD_TYPE, "v", "expected float, got string");
    expect_enc(d, "{\"v\":1.5}", B(0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f));
    expect_enc(d, "{\"v\":0.1}", B(0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f));
    expect_enc(d, "{\"v\":3}", B(0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x40));
    expect_enc(d, "{\"v\":-0.0}", B(0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80));
    expect_enc(d, "{\"v\":30e-1}", B(0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x40));
    /* slow path (strtod): more digits than 2^53, and a big exponent */
    expect_enc(d, "{\"v\":1.7976931348623157e308}",
               B(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0x7f));
    expect_enc(d, "{\"v\":0.30000000000000000000001}",
               B(0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0xd3, 0x3f));
    expect_err(d, "{\"v\":1e400}", SL_ERR_OUT_OF_RANGE, "v", "double");
    schema_destroy(f);
    schema_destroy(d);
}

static void test_boolean_null(void **state)
{
    schema_t *b = one("\"boolean\""), *n = one("\"null\"");
    expect_enc(b, "{\"v\":true}", B(0x01));
    expect_enc(b, "{\"v\":false}", B(0x00));
    expect_err(b, "{\"v\":1}", SL_ERR_BAD_TYPE, "v", "expected boolean, got number");
    expect_enc(n, "{\"v\":null}", EMPTY);
    expect_err(n, "{\"v\":0}", SL_ERR_BAD_TYPE, "v", "expected null");
    schema_destroy(b);
    schema_destroy(n);
}

static void test_string(void **state)
{
    schema_t *s = one("\"string\"");
    char buf[256];
    expect_enc(s, "{\"v\":\"abc\"}", B(0x06, 'a', 'b', 'c'));
    expect_enc(s, "{\"v\":\"\"}", B(0x00));
    expect_enc(s, "{\"v\":\"a\\nb\"}", B(0x06, 'a', '\n', 'b'));
    expect_enc(s, "{\"v\":\"\\u00e9\"}", B(0x04, 0xc3, 0xa9));
    expect_enc(s, "{\"v\":\"\xc3\xa9\"}", B(0x04, 0xc3, 0xa9));
    expect_enc(s, "{\"v\":\"\\ud83d\\ude00\"}", B(0x08, 0xf0, 0x9f, 0x98, 0x80));
    expect_enc(s, "{\"v\":\"\\u0000\"}", B(0x02, 0x00));
    expect_enc(s, "{\"v\":\"\\\"\\\\\\/\"}", B(0x06, '"', '\\', '/'));
    /* 66 raw bytes (a 2-byte length) decode to 11 (a 1-byte length): the bytes move up */
    snprintf(buf, sizeof(buf), "{\"v\":\"%s\"}",
             "\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041");
    expect_enc(s, buf, B(0x16, 'A', 'A', 'A', 'A', 'A', 'A', 'A', 'A', 'A', 'A', 'A'));
    /* 64 bytes: a two-byte length */
    {
        uint8_t exp[66];
        memset(buf, 0, sizeof(buf));
        strcpy(buf, "{\"v\":\"");
        memset(buf + 6, 'x', 64);
        strcpy(buf + 70, "\"}");
        exp[0] = 0x80;
        exp[1] = 0x01;
        memset(exp + 2, 'x', 64);
        expect_enc(s, buf, exp, sizeof(exp));
    }
    expect_err(s, "{\"v\":\"\xff\"}", SL_ERR_BAD_UTF8, "v", "UTF-8");
    expect_err(s, "{\"v\":\"\xc0\xaf\"}", SL_ERR_BAD_UTF8, "v", NULL);   /* overlong */
    expect_err(s, "{\"v\":\"\xed\xa0\x80\"}", SL_ERR_BAD_UTF8, "v", NULL); /* surrogate */
    expect_err(s, "{\"v\":\"\\ud800\"}", SL_ERR_BAD_UTF8, "v", "surrogate");
    expect_err(s, "{\"v\":\"a\tb\"}", SL_ERR_BAD_JSON, "v", "control");
    expect_err(s, "{\"v\":\"\\x\"}", SL_ERR_BAD_JSON, "v", "escape");
    expect_err(s, "{\"v\":5}", SL_ERR_BAD_TYPE, "v", "expected string, got number");
    schema_destroy(s);
}

static void test_bytes_fixed(void **state)
{
    schema_t *b = one("\"bytes\""), *f = one("{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}");
    expect_enc(b, "{\"v\":\"AQID\"}", B(0x06, 0x01, 0x02, 0x03));
    expect_enc(b, "{\"v\":\"AQI=\"}", B(0x04, 0x01, 0x02));
    expect_enc(b, "{\"v\":\"AQI\"}", B(0x04, 0x01, 0x02));
    expect_enc(b, "{\"v\":\"AQ==\"}", B(0x02, 0x01));
    expect_enc(b, "{\"v\":\"\"}", B(0x00));
    expect_enc(b, "{\"v\":\"-_8=\"}", B(0x04, 0xfb, 0xff));        /* URL-safe alphabet */
    expect_enc(b, "{\"v\":\"\\/w==\"}", B(0x02, 0xff));            /* "\/" is "/" */
    expect_err(b, "{\"v\":\"A\"}", SL_ERR_BAD_VALUE, "v", "base64");
    expect_err(b, "{\"v\":\"A*==\"}", SL_ERR_BAD_VALUE, "v", "base64");
    expect_err(b, "{\"v\":\"AQI==\"}", SL_ERR_BAD_VALUE, "v", "base64");
    expect_err(b, "{\"v\":[1]}", SL_ERR_BAD_TYPE, "v", "expected bytes, got array");
    expect_enc(f, "{\"v\":\"AQIDBA==\"}", B(0x01, 0x02, 0x03, 0x04));
    expect_enc(f, "{\"v\":\"AQIDBA\"}", B(0x01, 0x02, 0x03, 0x04));
    expect_err(f, "{\"v\":\"AQID\"}", SL_ERR_BAD_VALUE, "v", "expected 4 bytes, got 3");
    expect_err(f, "{\"v\":\"AQIDBAU=\"}", SL_ERR_BAD_VALUE, "v", "got 5");
    schema_destroy(b);
    schema_destroy(f);
}

static void test_enum(void **state)
{
    schema_t *s = one("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"C\"]}");
    expect_enc(s, "{\"v\":\"A\"}", B(0x00));
    expect_enc(s, "{\"v\":\"B\"}", B(0x02));
    expect_enc(s, "{\"v\":\"\\u0043\"}", B(0x04));
    expect_err(s, "{\"v\":\"D\"}", SL_ERR_BAD_ENUM, "v", "symbol");
    expect_err(s, "{\"v\":\"a\"}", SL_ERR_BAD_ENUM, "v", NULL);
    expect_err(s, "{\"v\":1}", SL_ERR_BAD_TYPE, "v", "expected enum, got number");
    schema_destroy(s);
}

static void test_array(void **state)
{
    schema_t *s = one("{\"type\":\"array\",\"items\":\"int\"}");
    char buf[1024];
    uint8_t exp[80];
    size_t off = 0;
    expect_enc(s, "{\"v\":[]}", B(0x00));
    expect_enc(s, "{\"v\":[1,2]}", B(0x04, 0x02, 0x04, 0x00));
    expect_enc(s, "{\"v\":[ -1 ]}", B(0x02, 0x01, 0x00));
    /* 64 items: the count needs two bytes, so the items move up one */
    off = (size_t)snprintf(buf, sizeof(buf), "{\"v\":[");
    for (int i = 0; i < 64; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s1", i ? "," : "");
    snprintf(buf + off, sizeof(buf) - off, "]}");
    exp[0] = 0x80;
    exp[1] = 0x01;
    memset(exp + 2, 0x02, 64);
    exp[66] = 0x00;
    expect_enc(s, buf, exp, 67);
    expect_err(s, "{\"v\":[1,2,\"x\"]}", SL_ERR_BAD_TYPE, "v[2]", "expected int, got string");
    expect_err(s, "{\"v\":{}}", SL_ERR_BAD_TYPE, "v", "expected array, got object");
    expect_err(s, "{\"v\":[1,]}", SL_ERR_BAD_JSON, "v[1]", NULL);
    schema_destroy(s);
}

static void test_map(void **state)
{
    schema_t *s = one("{\"type\":\"map\",\"values\":\"long\"}");
    char buf[2048];
    size_t off;
    expect_enc(s, "{\"v\":{}}", B(0x00));
    expect_enc(s, "{\"v\":{\"a\":1}}", B(0x02, 0x02, 'a', 0x02, 0x00));
    expect_enc(s, "{\"v\":{\"a\":1,\"bc\":-1}}",
               B(0x04, 0x02, 'a', 0x02, 0x04, 'b', 'c', 0x01, 0x00));
    expect_enc(s, "{\"v\":{\"\\u00e9\":0}}", B(0x02, 0x04, 0xc3, 0xa9, 0x00, 0x00));
    expect_err(s, "{\"v\":{\"a\":1,\"a\":2}}", SL_ERR_DUPLICATE_KEY, "v.a", "twice");
    /* an escaped spelling of the same key is the same key */
    expect_err(s, "{\"v\":{\"a\":1,\"\\u0061\":2}}", SL_ERR_DUPLICATE_KEY, "v.\\u0061", NULL);
    expect_err(s, "{\"v\":{\"a\":\"x\"}}", SL_ERR_BAD_TYPE, "v.a", "expected long, got string");
    expect_err(s, "{\"v\":[]}", SL_ERR_BAD_TYPE, "v", "expected map, got array");
    /* 40 keys (past the short list, into the hash table), then a repeat of one of them */
    off = (size_t)snprintf(buf, sizeof(buf), "{\"v\":{");
    for (int i = 0; i < 40; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s\"k%d\":%d", i ? "," : "", i, i);
    snprintf(buf + off, sizeof(buf) - off, "}}");
    {
        uint8_t out[1024];
        schema_error_t e;
        assert_true(schema_encode_json(s, buf, strlen(buf), NULL, out, sizeof(out), &e) > 0);
    }
    snprintf(buf + off, sizeof(buf) - off, ",\"k17\":0}}");
    expect_err(s, buf, SL_ERR_DUPLICATE_KEY, "v.k17", NULL);
    schema_destroy(s);
}

static void test_union(void **state)
{
    schema_t *ns = one("[\"null\",\"string\"]"), *sn = one("[\"string\",\"null\"]");
    schema_t *multi = one("[\"int\",\"long\",\"double\",\"string\"]");
    schema_t *rec = one("[\"null\",{\"type\":\"record\",\"name\":\"P\",\"fields\":[{\"name\":"
                        "\"x\",\"type\":\"int\"}]}]");
    expect_enc(ns, "{\"v\":null}", B(0x00));
    expect_enc(ns, "{\"v\":\"x\"}", B(0x02, 0x02, 'x'));
    expect_enc(ns, "{}", B(0x00)); /* absent: no default needed, the union has null */
    expect_err(ns, "{\"v\":5}", SL_ERR_BAD_TYPE, "v", "expected null or string, got number");
    expect_enc(sn, "{}", B(0x02));
    expect_enc(sn, "{\"v\":\"x\"}", B(0x00, 0x02, 'x'));
    expect_enc(multi, "{\"v\":1}", B(0x00, 0x02));
    expect_enc(multi, "{\"v\":3000000000}", B(0x02, 0x80, 0xf8, 0x82, 0xad, 0x16));
    expect_enc(multi, "{\"v\":1.5}", B(0x04, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f));
    expect_err(multi, "{\"v\":1e400}", SL_ERR_OUT_OF_RANGE, "v", "double");
    expect_enc(multi, "{\"v\":\"s\"}", B(0x06, 0x02, 's'));
    expect_err(multi, "{\"v\":true}", SL_ERR_BAD_TYPE, "v",
               "expected int, long, double or string, got boolean");
    expect_err(multi, "{}", SL_ERR_MISSING_FIELD, "v", NULL);
    expect_enc(rec, "{\"v\":{\"x\":1}}", B(0x02, 0x02));
    expect_enc(rec, "{\"v\":null}", B(0x00));
    expect_err(rec, "{\"v\":{\"x\":\"1\"}}", SL_ERR_BAD_TYPE, "v.x", "expected int, got string");
    expect_err(rec, "{\"v\":[]}", SL_ERR_BAD_TYPE, "v", "expected null or record, got array");
    schema_destroy(ns);
    schema_destroy(sn);
    schema_destroy(multi);
    schema_destroy(rec);
}

static void test_defaults(void **state)
{
    schema_t *s = compile(
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
        "{\"name\":\"i\",\"type\":\"int\",\"default\":7},"
        "{\"name\":\"s\",\"type\":\"string\",\"default\":\"hi\"},"
        "{\"name\":\"u\",\"type\":[\"int\",\"null\"],\"default\":5},"
        "{\"name\":\"b\",\"type\":\"bytes\",\"default\":\"\\u00ff\"},"
        "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"int\"},\"default\":[1,2]},"
        "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"boolean\"},\"default\":{\"k\":true}},"
        "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]},"
        "\"default\":\"Y\"},"
        "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":2},\"default\":\"ab\"},"
        "{\"name\":\"d\",\"type\":\"double\",\"default\":1},"
        "{\"name\":\"r\",\"type\":{\"type\":\"record\",\"name\":\"Q\",\"fields\":["
        "{\"name\":\"q\",\"type\":\"long\"},{\"name\":\"o\",\"type\":[\"null\",\"int\"]}]},"
        "\"default\":{\"q\":-1}}]}");
    expect_enc(s, "{}",
               B(0x0e, 0x04, 'h', 'i', 0x00, 0x0a, 0x02, 0xff, 0x04, 0x02, 0x04, 0x00, 0x02, 0x02,
                 'k', 0x01, 0x00, 0x02, 'a', 'b', 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x01, 0x00));
    /* given members replace their defaults, in place when in order */
    expect_enc(s, "{\"s\":\"\",\"d\":2}",
               B(0x0e, 0x00, 0x00, 0x0a, 0x02, 0xff, 0x04, 0x02, 0x04, 0x00, 0x02, 0x02, 'k',
                 0x01, 0x00, 0x02, 'a', 'b', 0, 0, 0, 0, 0, 0, 0x00, 0x40, 0x01, 0x00));
    /* and out of order: e first, then i */
    expect_enc(s, "{\"e\":\"X\",\"u\":null,\"i\":1}",
               B(0x02, 0x04, 'h', 'i', 0x02, 0x02, 0xff, 0x04, 0x02, 0x04, 0x00, 0x02, 0x02, 'k',
                 0x01, 0x00, 0x00, 'a', 'b', 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x01, 0x00));
    schema_destroy(s);
}

static const char three[] = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                            "{\"name\":\"a\",\"type\":\"int\"},"
                            "{\"name\":\"b\",\"type\":\"int\",\"default\":9},"
                            "{\"name\":\"c\",\"type\":\"string\"}]}";

static void test_member_order(void **state)
{
    schema_t *s = compile(three);
    expect_enc(s, "{\"a\":1,\"b\":2,\"c\":\"x\"}", B(0x02, 0x04, 0x02, 'x'));
    expect_enc(s, "{\"c\":\"x\",\"b\":2,\"a\":1}", B(0x02, 0x04, 0x02, 'x'));
    expect_enc(s, "{\"b\":2,\"c\":\"x\",\"a\":1}", B(0x02, 0x04, 0x02, 'x'));
    expect_enc(s, "{\"a\":1,\"c\":\"x\"}", B(0x02, 0x12, 0x02, 'x'));     /* gap: default */
    expect_enc(s, "{\"c\":\"x\",\"a\":1}", B(0x02, 0x12, 0x02, 'x'));
    expect_enc(s, "{\"a\":1,\"c\":\"x\",\"b\":3}", B(0x02, 0x06, 0x02, 'x')); /* late b */
    expect_enc(s, " { \"a\" : 1 , \"c\" : \"x\" } ", B(0x02, 0x12, 0x02, 'x'));
    expect_err(s, "{\"a\":1}", SL_ERR_MISSING_FIELD, "c", "missing");
    expect_err(s, "{\"c\":\"x\"}", SL_ERR_MISSING_FIELD, "a", NULL);
    expect_err(s, "{\"b\":1,\"c\":\"x\"}", SL_ERR_MISSING_FIELD, "a", NULL);
    expect_err(s, "{\"a\":1,\"a\":1,\"c\":\"x\"}", SL_ERR_DUPLICATE_KEY, "a", "twice");
    expect_err(s, "{\"a\":1,\"c\":\"x\",\"b\":3,\"b\":3}", SL_ERR_DUPLICATE_KEY, "b", NULL);
    expect_err(s, "{\"a\":1,\"zz\":1,\"c\":\"x\"}", SL_ERR_UNKNOWN_FIELD, "zz", "not a field");
    expect_enc(s, "{\"\\u0061\":1,\"c\":\"x\"}", B(0x02, 0x12, 0x02, 'x')); /* escaped name */
    schema_destroy(s);
}

static void test_wide_record(void **state)
{
    /* 40 fields: past the on-stack slots; members given in reverse order */
    char js[4096], ev[1024];
    size_t o = 0, e = 0;
    uint8_t exp[40];
    schema_t *s;
    o += (size_t)snprintf(js + o, sizeof(js) - o, "{\"type\":\"record\",\"name\":\"W\",\"fields\":[");
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(js + o, sizeof(js) - o, "%s{\"name\":\"f%d\",\"type\":\"int\"}",
                              i ? "," : "", i);
    snprintf(js + o, sizeof(js) - o, "]}");
    s = compile(js);
    e += (size_t)snprintf(ev + e, sizeof(ev) - e, "{");
    for (int i = 39; i >= 0; i--)
        e += (size_t)snprintf(ev + e, sizeof(ev) - e, "%s\"f%d\":%d", i == 39 ? "" : ",", i, i);
    snprintf(ev + e, sizeof(ev) - e, "}");
    for (int i = 0; i < 40; i++)
        exp[i] = (uint8_t)(i * 2);
    expect_enc(s, ev, exp, sizeof(exp));
    schema_destroy(s);
}

static const char nested[] =
    "{\"type\":\"record\",\"name\":\"Ev\",\"fields\":["
    "{\"name\":\"properties\",\"type\":{\"type\":\"record\",\"name\":\"P\",\"fields\":["
    "{\"name\":\"revenue_cents\",\"type\":\"long\"}]}},"
    "{\"name\":\"items\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
    "\"name\":\"Item\",\"fields\":[{\"name\":\"sku\",\"type\":\"string\"}]}},\"default\":[]}]}";

static void test_paths_and_event_errors(void **state)
{
    schema_t *s = compile(nested);
    uint8_t out[64];
    schema_error_t e;
    const char *ok = "{\"properties\":{\"revenue_cents\":5},\"items\":[{\"sku\":\"a\"}]}";
    const char *skip_names[] = {"schema_version"};
    schema_skip_t skip = {skip_names, 1};
    const char *with_version = "{\"schema_version\":{\"x\":[1,2]},\"properties\":"
                               "{\"revenue_cents\":5}}";
    const char *nested_version = "{\"properties\":{\"revenue_cents\":5,\"schema_version\":1}}";

    expect_enc(s, ok, B(0x0a, 0x02, 0x02, 'a', 0x00));
    expect_err(s, "{\"properties\":{\"revenue_cents\":\"5\"}}", SL_ERR_BAD_TYPE,
               "properties.revenue_cents", "expected long, got string");
    expect_err(s,
               "{\"properties\":{\"revenue_cents\":5},\"items\":[{\"sku\":\"a\"},{\"sku\":\"b\"},"
               "{\"sku\":\"c\"},{\"sku\":4}]}",
               SL_ERR_BAD_TYPE, "items[3].sku", "expected string, got number");
    expect_err(s, "{\"properties\":{}}", SL_ERR_MISSING_FIELD, "properties.revenue_cents", NULL);
    expect_err(s, "{\"properties\":{\"revenue_cents\":1,\"x\":2}}", SL_ERR_UNKNOWN_FIELD,
               "properties.x", NULL);
    expect_err(s, "[]", SL_ERR_EVENT_NOT_OBJECT, "", "expected an object, got array");
    expect_err(s, "\"x\"", SL_ERR_EVENT_NOT_OBJECT, "", NULL);
    expect_err(s, "", SL_ERR_BAD_JSON, "", NULL);
    expect_err(s, "{\"properties\":{\"revenue_cents\":5}", SL_ERR_BAD_JSON, "", "end of input");
    expect_err(s, "{\"properties\":{\"revenue_cents\":5}} x", SL_ERR_BAD_JSON, "", "trailing");
    expect_err(s, "{\"properties\":{\"revenue_cents\":05}}", SL_ERR_BAD_JSON,
               "properties.revenue_cents", "number");
    /* a NUL byte inside the input (the length says so) */
    assert_int_equal(schema_encode_json(s, "{\"properties\"\0:{}}", 17, NULL, out, sizeof(out), &e),
                     -1);
    assert_int_equal(e.code, SL_ERR_BAD_JSON);
    /* envelope members are skipped only at the top level */
    expect_err(s, with_version, SL_ERR_UNKNOWN_FIELD, "schema_version", NULL);
    assert_int_equal(schema_encode_json(s, with_version, strlen(with_version), &skip, out,
                                        sizeof(out), &e),
                     5 + 2);
    assert_int_equal(schema_encode_json(s, nested_version, strlen(nested_version), &skip, out,
                                        sizeof(out), &e),
                     -1);
    assert_int_equal(e.code, SL_ERR_UNKNOWN_FIELD);
    assert_string_equal(e.path, "properties.schema_version");
    /* output over cap: every prefix of the buffer is too small, none overflows */
    for (size_t cap = 0; cap < 10; cap++) {
        uint8_t *tight = malloc(cap ? cap : 1);
        assert_int_equal(schema_encode_json(s, ok, strlen(ok), NULL, tight, cap, &e),
                         cap >= 10 ? 10 : -1);
        assert_int_equal(e.code, SL_ERR_EVENT_TOO_LARGE);
        free(tight);
    }
    schema_destroy(s);
}

static void test_depth(void **state)
{
    schema_t *s = compile("{\"type\":\"record\",\"name\":\"N\",\"fields\":["
                          "{\"name\":\"n\",\"type\":[\"null\",\"N\"]}]}");
    char buf[512];
    size_t o = 0;
    /* 31 levels fit (the event object is level 1)... */
    for (int i = 0; i < 31; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "{\"n\":");
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "{\"n\":null}");
    for (int i = 0; i < 31; i++)
        buf[o++] = '}';
    buf[o] = '\0';
    {
        uint8_t out[256];
        schema_error_t e;
        ssize_t r = schema_encode_json(s, buf, strlen(buf), NULL, out, sizeof(out), &e);
        assert_int_equal(r, 5 + 32);
    }
    /* ...33 do not */
    o = 0;
    for (int i = 0; i < 32; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "{\"n\":");
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "{\"n\":null}");
    for (int i = 0; i < 32; i++)
        buf[o++] = '}';
    buf[o] = '\0';
    {
        uint8_t out[256];
        schema_error_t e;
        assert_int_equal(schema_encode_json(s, buf, strlen(buf), NULL, out, sizeof(out), &e), -1);
        assert_int_equal(e.code, SL_ERR_TOO_DEEP);
        assert_true(strncmp(e.path, "n.n.n.n", 7) == 0);
    }
    schema_destroy(s);
}

static void test_logical(void **state)
{
    schema_t *ts = one("{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}");
    schema_t *date = one("{\"type\":\"int\",\"logicalType\":\"date\"}");
    schema_t *tm = one("{\"type\":\"int\",\"logicalType\":\"time-millis\"}");
    schema_t *tu = one("{\"type\":\"long\",\"logicalType\":\"time-micros\"}");
    schema_t *uuid = one("{\"type\":\"string\",\"logicalType\":\"uuid\"}");
    schema_t *dec = one("{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":5,"
                        "\"scale\":2}");
    schema_t *decf = one("{\"type\":\"fixed\",\"name\":\"D\",\"size\":4,"
                         "\"logicalType\":\"decimal\",\"precision\":9}");
    schema_t *decf2 = one("{\"type\":\"fixed\",\"name\":\"D\",\"size\":20,"
                          "\"logicalType\":\"decimal\",\"precision\":9}");
    schema_t *bad = one("{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":2,"
                        "\"scale\":3}"); /* invalid: the logical type is ignored (spec) */
    schema_t *opt = one("[\"null\",{\"type\":\"bytes\",\"logicalType\":\"decimal\","
                        "\"precision\":4,\"scale\":1}]");

    expect_enc(ts, "{\"v\":1732500000123}", B(0xf6, 0xb5, 0xe0, 0x90, 0xec, 0x64));
    expect_err(ts, "{\"v\":\"2024-11-25T00:00:00Z\"}", SL_ERR_BAD_TYPE, "v", "expected long");
    expect_enc(date, "{\"v\":-1}", B(0x01));
    expect_enc(tm, "{\"v\":86399999}", B(0xfe, 0xef, 0xb2, 0x52));
    expect_err(tm, "{\"v\":86400000}", SL_ERR_OUT_OF_RANGE, "v", "time-millis");
    expect_err(tm, "{\"v\":-1}", SL_ERR_OUT_OF_RANGE, "v", NULL);
    expect_err(tu, "{\"v\":86400000000}", SL_ERR_OUT_OF_RANGE, "v", "time-micros");
    expect_enc(tu, "{\"v\":0}", B(0x00));
    expect_enc(uuid, "{\"v\":\"9b2f3a4e-6c1d-4e8a-9f00-2b7C5D1E0A11\"}",
               B(0x48, '9', 'b', '2', 'f', '3', 'a', '4', 'e', '-', '6', 'c', '1', 'd', '-', '4',
                 'e', '8', 'a', '-', '9', 'f', '0', '0', '-', '2', 'b', '7', 'C', '5', 'D', '1',
                 'E', '0', 'A', '1', '1'));
    expect_err(uuid, "{\"v\":\"9b2f3a4e6c1d4e8a9f002b7c5d1e0a11\"}", SL_ERR_BAD_UUID, "v", "UUID");
    expect_err(uuid, "{\"v\":\"9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a1g\"}", SL_ERR_BAD_UUID, "v",
               NULL);
    expect_enc(dec, "{\"v\":12.34}", B(0x04, 0x04, 0xd2));
    expect_enc(dec, "{\"v\":\"12.34\"}", B(0x04, 0x04, 0xd2));
    expect_enc(dec, "{\"v\":1.5}", B(0x04, 0x00, 0x96));
    expect_enc(dec, "{\"v\":-0.01}", B(0x02, 0xff));
    expect_enc(dec, "{\"v\":-1.28}", B(0x02, 0x80));
    expect_enc(dec, "{\"v\":-1.29}", B(0x04, 0xff, 0x7f));
    expect_enc(dec, "{\"v\":1.230000}", B(0x02, 0x7b));
    expect_enc(dec, "{\"v\":1e2}", B(0x04, 0x27, 0x10));
    expect_enc(dec, "{\"v\":0}", B(0x02, 0x00));
    expect_enc(dec, "{\"v\":-0.000}", B(0x02, 0x00));
    expect_enc(dec, "{\"v\":999.99}", B(0x06, 0x01, 0x86, 0x9f));
    expect_err(dec, "{\"v\":1000}", SL_ERR_OUT_OF_RANGE, "v", "more than 5 digits");
    expect_err(dec, "{\"v\":1.234}", SL_ERR_BAD_VALUE, "v", "more than 2 decimal places");
    expect_err(dec, "{\"v\":\"12a\"}", SL_ERR_BAD_VALUE, "v", "decimal");
    expect_err(dec, "{\"v\":\"\"}", SL_ERR_BAD_VALUE, "v", NULL);
    expect_err(dec, "{\"v\":1e999999999}", SL_ERR_OUT_OF_RANGE, "v", NULL);
    expect_err(dec, "{\"v\":1e-999999999}", SL_ERR_BAD_VALUE, "v", NULL);
    expect_err(dec, "{\"v\":true}", SL_ERR_BAD_TYPE, "v", "expected decimal, got boolean");
    expect_enc(decf, "{\"v\":-2}", B(0xff, 0xff, 0xff, 0xfe));
    expect_enc(decf, "{\"v\":999999999}", B(0x3b, 0x9a, 0xc9, 0xff));
    expect_enc(decf2, "{\"v\":\"-999999999\"}",
               B(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                 0xff, 0xff, 0xc4, 0x65, 0x36, 0x01));
    expect_enc(bad, "{\"v\":\"AQ==\"}", B(0x02, 0x01));
    expect_enc(opt, "{\"v\":\"1.5\"}", B(0x02, 0x02, 0x0f));
    expect_enc(opt, "{\"v\":2}", B(0x02, 0x02, 0x14));
    expect_enc(opt, "{}", B(0x00));
    schema_destroy(ts);
    schema_destroy(date);
    schema_destroy(tm);
    schema_destroy(tu);
    schema_destroy(uuid);
    schema_destroy(dec);
    schema_destroy(decf);
    schema_destroy(decf2);
    schema_destroy(bad);
    schema_destroy(opt);
}

static void test_out_of_order_scratch(void **state)
{
    /* the reorder scratch does not fit in the free tail: the heap fallback gives the same bytes */
    schema_t *s = compile(three);
    const char *ev = "{\"c\":\"xxxxxxxxxxxxxxxxxxxx\",\"a\":1}";
    uint8_t roomy[256], *tight;
    schema_error_t e;
    ssize_t n = schema_encode_json(s, ev, strlen(ev), NULL, roomy, sizeof(roomy), &e);
    if (n < 0)
        fail_msg("%s at %s: %s", sl_err_code(e.code), e.path, e.detail);
    assert_int_equal(n, 5 + 1 + 1 + 1 + 20);
    tight = malloc((size_t)n);
    assert_int_equal(schema_encode_json(s, ev, strlen(ev), NULL, tight, (size_t)n, &e), n);
    assert_memory_equal(tight, roomy, (size_t)n);
    assert_int_equal(schema_encode_json(s, ev, strlen(ev), NULL, tight, (size_t)n - 1, &e), -1);
    assert_int_equal(e.code, SL_ERR_EVENT_TOO_LARGE);
    free(tight);
    schema_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing),      cmocka_unit_test(test_int_long),
        cmocka_unit_test(test_float_double), cmocka_unit_test(test_boolean_null),
        cmocka_unit_test(test_string),       cmocka_unit_test(test_bytes_fixed),
        cmocka_unit_test(test_enum),         cmocka_unit_test(test_array),
        cmocka_unit_test(test_map),          cmocka_unit_test(test_union),
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_member_order),
        cmocka_unit_test(test_wide_record),  cmocka_unit_test(test_paths_and_event_errors),
        cmocka_unit_test(test_depth),        cmocka_unit_test(test_logical),
        cmocka_unit_test(test_out_of_order_scratch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
