/* Unit tests for the Avro half of schema/schema_binary.c and the Confluent framing: avro-c is the
 * oracle (random values it writes must validate, with the same event_id/user_id), hand-written
 * bytes cover every failure, and the transcoder's own output (schema_encode_json) validates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <cmocka.h>

#include "binary_fixtures.h"
#include "schema.h"

static schema_t *compile(const char *text)
{
    char err[256];
    schema_t *s = schema_compile_avro(text, strlen(text), 42, err, sizeof(err));
    if (!s)
        fail_msg("compile: %s", err);
    return s;
}

/* ---- the framing ---- */

static void test_frame(void **state)
{
    static const uint8_t rec[] = {0x00, 0x01, 0x02, 0x03, 0x04, 'x'};
    uint32_t id = 0;
    const uint8_t *payload = NULL;
    size_t len = 99;

    assert_int_equal(schema_frame_parse(rec, sizeof(rec), &id, &payload, &len), 0);
    assert_int_equal(id, 0x01020304u);
    assert_ptr_equal(payload, rec + 5);
    assert_int_equal(len, 1);
    assert_int_equal(schema_frame_parse(rec, 5, &id, &payload, &len), 0); /* empty payload */
    assert_int_equal(len, 0);
    assert_int_equal(schema_frame_parse(rec, 4, &id, &payload, &len), -1);
    assert_int_equal(schema_frame_parse(rec, 0, &id, &payload, &len), -1);
    assert_int_equal(schema_frame_parse(NULL, 0, &id, &payload, &len), -1);
    assert_int_equal(schema_frame_parse((const uint8_t *)"\x01\0\0\0\x01x", 6, &id, &payload, &len),
                     -1); /* magic byte must be 0 */
}

/* ---- random values written by avro-c ---- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void rnd_str(char *out, size_t cap)
{
    static const char *const parts[] = {"a", "Z", "0", "-", "é", "€", "😀", " ", "/", "ü"};
    size_t n = rnd() % 10;
    out[0] = '\0';
    for (size_t i = 0; i < n && strlen(out) + 5 < cap; i++)
        strcat(out, parts[rnd() % 10]);
}

static void fill(avro_value_t *v, int depth)
{
    avro_schema_t sc = avro_value_get_schema(v);
    char buf[64];
    size_t n;

    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        assert_int_equal(avro_value_set_null(v), 0);
        break;
    case AVRO_BOOLEAN:
        assert_int_equal(avro_value_set_boolean(v, (int)(rnd() % 2)), 0);
        break;
    case AVRO_INT32: /* extremes too: 5-byte varints */
        assert_int_equal(
            avro_value_set_int(v, rnd() % 4 ? (int32_t)(rnd() % 200) - 100 : (int32_t)rnd()), 0);
        break;
    case AVRO_INT64:
        assert_int_equal(
            avro_value_set_long(v, rnd() % 4 ? (int64_t)(rnd() % 200) - 100 : (int64_t)rnd()), 0);
        break;
    case AVRO_FLOAT:
        assert_int_equal(avro_value_set_float(v, (float)rnd()), 0);
        break;
    case AVRO_DOUBLE:
        assert_int_equal(avro_value_set_double(v, (double)rnd()), 0);
        break;
    case AVRO_STRING:
        rnd_str(buf, sizeof(buf));
        assert_int_equal(avro_value_set_string(v, buf), 0);
        break;
    case AVRO_BYTES:
        n = rnd() % 9;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)rnd(); /* not UTF-8: bytes are not checked */
        assert_int_equal(avro_value_set_bytes(v, buf, n), 0);
        break;
    case AVRO_FIXED:
        n = (size_t)avro_schema_fixed_size(sc);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)rnd();
        assert_int_equal(avro_value_set_fixed(v, buf, n), 0);
        break;
    case AVRO_ENUM:
        assert_int_equal(
            avro_value_set_enum(v, (int)(rnd() % (uint64_t)avro_schema_enum_number_of_symbols(sc))),
            0);
        break;
    case AVRO_ARRAY:
        n = depth > 4 ? 0 : rnd() % 4;
        for (size_t i = 0; i < n; i++) {
            avro_value_t item;
            assert_int_equal(avro_value_append(v, &item, NULL), 0);
            fill(&item, depth + 1);
        }
        break;
    case AVRO_MAP:
        n = depth > 4 ? 0 : rnd() % 4;
        for (size_t i = 0; i < n; i++) {
            avro_value_t item;
            char key[32];
            snprintf(key, sizeof(key), "k%zu€", i);
            assert_int_equal(avro_value_add(v, key, &item, NULL, NULL), 0);
            fill(&item, depth + 1);
        }
        break;
    case AVRO_RECORD:
        assert_int_equal(avro_value_get_size(v, &n), 0);
        for (size_t i = 0; i < n; i++) {
            avro_value_t f;
            assert_int_equal(avro_value_get_by_index(v, i, &f, NULL), 0);
            fill(&f, depth + 1);
        }
        break;
    case AVRO_UNION: {
        avro_value_t br;
        size_t nb = avro_schema_union_size(sc);
        /* deep down, take branch 0 (null in every recursive union here) so values end */
        int pick = depth > 6 ? 0 : (int)(rnd() % nb);
        assert_int_equal(avro_value_set_branch(v, pick, &br), 0);
        fill(&br, depth + 1);
        break;
    }
    default:
        fail_msg("type %d not handled", avro_value_get_type(v));
    }
}

/* avro-c's own reading of a top-level string (or ["null","string"]) field; NULL when null. */
static const char *avro_str(avro_value_t *rec, const char *name, size_t *len)
{
    avro_value_t f, br;
    const char *s;
    assert_int_equal(avro_value_get_by_name(rec, name, &f, NULL), 0);
    if (avro_value_get_type(&f) == AVRO_UNION) {
        assert_int_equal(avro_value_get_current_branch(&f, &br), 0);
        if (avro_value_get_type(&br) == AVRO_NULL)
            return NULL;
        f = br;
    }
    assert_int_equal(avro_value_get_string(&f, &s, len), 0);
    (*len)--; /* avro-c counts the NUL */
    return s;
}

static void expect_same(const schema_slice_t *sl, const char *s, size_t len)
{
    if (!s) {
        assert_null(sl->ptr);
        return;
    }
    assert_non_null(sl->ptr);
    assert_int_equal(sl->len, len);
    assert_memory_equal(sl->ptr, s, len);
}

static void test_random_values_differential(void **state)
{
    schema_t *s = compile(binary_avro_all_types);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema_avro(s));
    avro_value_t v;
    static char buf[1 << 16];

    assert_non_null(iface);
    assert_int_equal(avro_generic_value_new(iface, &v), 0);
    for (int iter = 0; iter < 3000; iter++) {
        avro_writer_t w = avro_writer_memory(buf, sizeof(buf));
        schema_extract_t x;
        schema_error_t e;
        size_t len, slen;
        const char *str;

        avro_value_reset(&v);
        fill(&v, 0);
        assert_int_equal(avro_value_write(w, &v), 0);
        len = (size_t)avro_writer_tell(w);
        avro_writer_free(w);
        if (schema_validate_binary(s, (const uint8_t *)buf, len, &x, &e) != 0)
            fail_msg("iteration %d refused: %s at '%s': %s", iter, sl_err_code(e.code), e.path,
                     e.detail);
        str = avro_str(&v, "event_id", &slen);
        expect_same(&x.event_id, str, slen);
        str = avro_str(&v, "event_type", &slen);
        expect_same(&x.event_type, str, slen);
        str = avro_str(&v, "user_id", &slen);
        expect_same(&x.user_id, str, slen);
        /* any strict prefix is refused, and so is a byte too many */
        for (size_t cut = 0; cut < len; cut += 1 + len / 24) {
            if (schema_validate_binary(s, (const uint8_t *)buf, cut, NULL, &e) == 0)
                fail_msg("iteration %d: prefix of %zu/%zu bytes accepted", iter, cut, len);
        }
        buf[len] = 0;
        assert_int_equal(schema_validate_binary(s, (const uint8_t *)buf, len + 1, NULL, &e), -1);
        assert_int_equal(e.code, SL_ERR_BAD_RECORD);
    }
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    schema_destroy(s);
}

/* ---- hand-written failures, one small schema per type ---- */

static size_t put_long(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

/* {"f": <type>} as a record */
static schema_t *one_field(const char *type)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"f\",\"type\":%s}]}",
             type);
    return compile(text);
}

static void expect(const char *type, const void *bytes, size_t len, sl_err_t code, const char *path)
{
    schema_t *s = one_field(type);
    schema_error_t e;
    int rc = schema_validate_binary(s, bytes, len, NULL, &e);
    if (code == SL_ERR_OK) {
        if (rc != 0)
            fail_msg("%s: refused: %s at '%s': %s", type, sl_err_code(e.code), e.path, e.detail);
    } else if (rc != -1 || e.code != code || strcmp(e.path, path) != 0) {
        fail_msg("%s: got rc %d %s at '%s' (%s), want %s at '%s'", type, rc, sl_err_code(e.code),
                 e.path, e.detail, sl_err_code(code), path);
    } else {
        assert_true(e.detail[0] != '\0');
    }
    schema_destroy(s);
}

#define B(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static void test_scalars(void **state)
{
    expect("\"int\"", B(0x02), SL_ERR_OK, "");
    expect("\"int\"", B(0xFE, 0xFF, 0xFF, 0xFF, 0x0F), SL_ERR_OK, ""); /* INT32_MAX */
    expect("\"int\"", B(0xFE, 0xFF, 0xFF, 0xFF, 0x1F), SL_ERR_OUT_OF_RANGE, "f");
    expect("\"int\"", B(0x80, 0x80, 0x80, 0x80, 0x80, 0x01), SL_ERR_BAD_RECORD, "f");
    expect("\"int\"", B(0x80), SL_ERR_BAD_RECORD, "f");
    expect("\"int\"", "", 0, SL_ERR_BAD_RECORD, "f");
    expect("\"long\"", B(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01), SL_ERR_OK,
           "");
    expect("\"long\"", B(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02),
           SL_ERR_BAD_RECORD, "f");
    expect("\"long\"", B(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00),
           SL_ERR_BAD_RECORD, "f");
    expect("{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}", B(0x02), SL_ERR_OK, "");
    expect("\"boolean\"", B(0x01), SL_ERR_OK, "");
    expect("\"boolean\"", B(0x02), SL_ERR_BAD_VALUE, "f");
    expect("\"boolean\"", "", 0, SL_ERR_BAD_RECORD, "f");
    expect("\"float\"", B(1, 2, 3, 4), SL_ERR_OK, "");
    expect("\"float\"", B(1, 2, 3), SL_ERR_BAD_RECORD, "f");
    expect("\"double\"", B(1, 2, 3, 4, 5, 6, 7, 8), SL_ERR_OK, "");
    expect("\"double\"", B(1, 2, 3, 4, 5, 6, 7), SL_ERR_BAD_RECORD, "f");
    expect("\"null\"", "", 0, SL_ERR_OK, "");
    expect("\"null\"", B(0), SL_ERR_BAD_RECORD, ""); /* trailing byte */
    expect("\"bytes\"", B(0x04, 0xFF, 0xFE), SL_ERR_OK, "");
    expect("\"bytes\"", B(0x06, 0xFF, 0xFE), SL_ERR_BAD_RECORD, "f");
    expect("\"bytes\"", B(0x01), SL_ERR_BAD_RECORD, "f"); /* length -1 */
    expect("\"string\"", B(0x06, 0xE2, 0x82, 0xAC), SL_ERR_OK, "");
    expect("\"string\"", B(0x04, 0xC0, 0x80), SL_ERR_BAD_UTF8, "f");             /* overlong */
    expect("\"string\"", B(0x06, 0xED, 0xA0, 0x80), SL_ERR_BAD_UTF8, "f");       /* surrogate */
    expect("\"string\"", B(0x08, 0xF4, 0x90, 0x80, 0x80), SL_ERR_BAD_UTF8, "f"); /* > U+10FFFF */
    expect("\"string\"", B(0x02, 0xE2), SL_ERR_BAD_UTF8, "f");                   /* cut */
    expect("\"string\"", B(0x03), SL_ERR_BAD_RECORD, "f");
    expect("\"string\"", B(0x10, 'a'), SL_ERR_BAD_RECORD, "f");
    expect("{\"type\":\"string\",\"logicalType\":\"uuid\"}", B(0x02, 'x'), SL_ERR_OK, "");
    expect("{\"type\":\"fixed\",\"name\":\"F\",\"size\":3}", B(1, 2, 3), SL_ERR_OK, "");
    expect("{\"type\":\"fixed\",\"name\":\"F\",\"size\":3}", B(1, 2), SL_ERR_BAD_RECORD, "f");
    expect("{\"type\":\"fixed\",\"name\":\"F\",\"size\":0}", "", 0, SL_ERR_OK, "");
    expect("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}", B(0x02), SL_ERR_OK, "");
    expect("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}", B(0x04), SL_ERR_BAD_ENUM,
           "f");
    expect("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}", B(0x01), SL_ERR_BAD_ENUM,
           "f");
}

static void test_unions_arrays_maps(void **state)
{
    uint8_t b[64];
    size_t n;

    expect("[\"null\",\"string\"]", B(0x00), SL_ERR_OK, "");
    expect("[\"null\",\"string\"]", B(0x02, 0x02, 'a'), SL_ERR_OK, "");
    expect("[\"null\",\"string\"]", B(0x04), SL_ERR_BAD_VALUE, "f");
    expect("[\"null\",\"string\"]", B(0x01), SL_ERR_BAD_VALUE, "f");
    expect("[\"null\",\"string\"]", B(0x02, 0x02, 0xFF), SL_ERR_BAD_UTF8, "f");
    /* arrays: positive blocks, several blocks, negative counts with their byte size */
    expect("{\"type\":\"array\",\"items\":\"int\"}", B(0x00), SL_ERR_OK, "");
    expect("{\"type\":\"array\",\"items\":\"int\"}", B(0x04, 0x02, 0x04, 0x02, 0x06, 0x00),
           SL_ERR_OK, "");
    expect("{\"type\":\"array\",\"items\":\"int\"}", B(0x03, 0x04, 0x02, 0x04, 0x00), SL_ERR_OK,
           "");
    expect("{\"type\":\"array\",\"items\":\"int\"}", B(0x03, 0x06, 0x02, 0x04, 0x00),
           SL_ERR_BAD_RECORD, "f"); /* byte size 3, items used 2 */
    expect("{\"type\":\"array\",\"items\":\"int\"}", B(0x03, 0x40, 0x02, 0x04, 0x00),
           SL_ERR_BAD_RECORD, "f"); /* byte size past the end */
    expect("{\"type\":\"array\",\"items\":\"int\"}", B(0x04, 0x02), SL_ERR_BAD_RECORD, "f[1]");
    expect("{\"type\":\"array\",\"items\":\"int\"}", B(0x02, 0x02), SL_ERR_BAD_RECORD, "f");
    expect("{\"type\":\"array\",\"items\":\"string\"}", B(0x04, 0x00, 0x02, 0xFF, 0x00),
           SL_ERR_BAD_UTF8, "f[1]");
    /* INT64_MIN as a block count */
    n = put_long(b, INT64_MIN);
    expect("{\"type\":\"array\",\"items\":\"int\"}", b, n, SL_ERR_BAD_RECORD, "f");
    /* a huge count of zero-byte items is refused, not spun through */
    n = put_long(b, (int64_t)1 << 60);
    b[n++] = 0;
    expect("{\"type\":\"array\",\"items\":\"null\"}", b, n, SL_ERR_BAD_RECORD, "f");
    n = put_long(b, 1000);
    b[n++] = 0;
    expect("{\"type\":\"array\",\"items\":\"null\"}", b, n, SL_ERR_OK, "");
    /* maps: keys are strings, checked too */
    expect("{\"type\":\"map\",\"values\":\"int\"}", B(0x02, 0x02, 'k', 0x02, 0x00), SL_ERR_OK, "");
    expect("{\"type\":\"map\",\"values\":\"int\"}", B(0x02, 0x02, 0xFF, 0x02, 0x00),
           SL_ERR_BAD_UTF8, "f[0]");
    expect("{\"type\":\"map\",\"values\":\"int\"}", B(0x04, 0x02, 'k', 0x02, 0x02, 'l', 0x80),
           SL_ERR_BAD_RECORD, "f[1]");
    expect("{\"type\":\"map\",\"values\":\"int\"}", B(0x01, 0x08, 0x02, 'k', 0x02, 0x00),
           SL_ERR_BAD_RECORD, "f"); /* byte size 4, entry used 3 */
    expect("{\"type\":\"map\",\"values\":\"int\"}", B(0x01, 0x06, 0x02, 'k', 0x02, 0x00), SL_ERR_OK,
           "");
}

static void test_paths_and_depth(void **state)
{
    schema_t *s = compile("{\"type\":\"record\",\"name\":\"N\",\"fields\":["
                          "{\"name\":\"v\",\"type\":\"int\"},"
                          "{\"name\":\"next\",\"type\":[\"null\",\"N\"]}]}");
    uint8_t b[256];
    size_t n = 0;
    schema_error_t e;

    /* v=1, next -> {v=1, next -> {v: cut}} */
    b[n++] = 0x02, b[n++] = 0x02, b[n++] = 0x02, b[n++] = 0x02;
    assert_int_equal(schema_validate_binary(s, b, n, NULL, &e), -1);
    assert_int_equal(e.code, SL_ERR_BAD_RECORD);
    assert_string_equal(e.path, "next.next.v");
    /* depth: records nested through the union */
    for (int depth = 1; depth < 40; depth++) {
        n = 0;
        for (int i = 0; i < depth - 1; i++)
            b[n++] = 0x02, b[n++] = 0x02; /* v=1, next = branch 1 */
        b[n++] = 0x02, b[n++] = 0x00;     /* v=1, next = null */
        int rc = schema_validate_binary(s, b, n, NULL, &e);
        if (depth <= SCHEMA_MAX_DEPTH) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(e.code, SL_ERR_TOO_DEEP);
        }
    }
    schema_destroy(s);
    /* arrays of arrays */
    s = one_field("{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":\"int\"}}");
    n = 0;
    b[n++] = 0x04, b[n++] = 0x00, b[n++] = 0x02, b[n++] = 0x80; /* [[], [<cut int>]] */
    assert_int_equal(schema_validate_binary(s, b, n, NULL, &e), -1);
    assert_string_equal(e.path, "f[1][0]");
    n = 0;
    b[n++] = 0x04, b[n++] = 0x00, b[n++] = 0x02, b[n++] = 0x02, b[n++] = 0xFF; /* block cut */
    assert_int_equal(schema_validate_binary(s, b, n, NULL, &e), -1);
    assert_string_equal(e.path, "f[1]");
    schema_destroy(s);
}

/* The transcoder's output (JSON -> Avro) validates, with the same envelope. */
static void test_transcoder_output(void **state)
{
    char path[512], *text;
    FILE *f;
    long size;
    schema_t *s;
    uint8_t out[1024];
    schema_error_t e;
    schema_extract_t x;
    ssize_t n;
    uint32_t id;
    const uint8_t *payload;
    size_t plen;
    static const char ev[] =
        "{\"event_id\":\"9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11\",\"event_type\":\"page_view\","
        "\"ts\":1763999999000,\"user_id\":\"u-123\",\"session_id\":\"s-9\",\"page_id\":42,"
        "\"properties\":{\"url\":\"/pricing\",\"referrer\":null,\"title\":\"Pricing\","
        "\"latency_ms\":87}}";

    snprintf(path, sizeof(path), "%s/schema/defaults/page_view.avsc", SL_SOURCE_DIR);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    text = malloc((size_t)size);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    s = schema_compile_avro(text, (size_t)size, 1234, NULL, 0);
    assert_non_null(s);
    assert_int_equal(schema_kind(s), SCHEMA_KIND_AVRO);
    n = schema_encode_json(s, ev, strlen(ev), NULL, out, sizeof(out), &e);
    assert_true(n > 0);
    assert_int_equal(schema_frame_parse(out, (size_t)n, &id, &payload, &plen), 0);
    assert_int_equal(id, 1234);
    assert_int_equal(schema_validate_binary(s, payload, plen, &x, &e), 0);
    expect_same(&x.event_id, "9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11", 36);
    expect_same(&x.user_id, "u-123", 5);
    expect_same(&x.event_type, "page_view", 9);
    /* a wrong byte deep inside: properties.latency_ms (["null","int"], 87) ends the record */
    out[n - 3] = 0x08; /* branch 4 of 2 */
    assert_int_equal(schema_validate_binary(s, payload, plen, &x, &e), -1);
    assert_string_equal(e.path, "properties.latency_ms");
    free(text);
    schema_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame),           cmocka_unit_test(test_random_values_differential),
        cmocka_unit_test(test_scalars),         cmocka_unit_test(test_unions_arrays_maps),
        cmocka_unit_test(test_paths_and_depth), cmocka_unit_test(test_transcoder_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
