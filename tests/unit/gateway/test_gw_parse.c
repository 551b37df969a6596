/* Unit tests for gateway/gw_parse.c: batch structure, envelope checks, limits, gzip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "gw_int.h"

#include "test_arena.h"

static const gw_parse_limits_t limits = {.max_events = 500, .max_event_bytes = 32768,
                                         .max_depth = 32};

#define GOOD_EVENT(id, user)                                                                      \
    "{\"event_id\":\"" id "\",\"event_type\":\"page_view\",\"ts\":1763999999000,"                 \
    "\"user_id\":\"" user "\",\"session_id\":\"s-9\",\"page_id\":42,"                             \
    "\"properties\":{\"url\":\"/pricing\",\"referrer\":null,\"nested\":[1,{\"a\":2}]}}"
#define ID1 "9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11"
#define ID2 "0b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a12"

static sl_err_t parse(arena_t *a, const char *body, gw_batch_doc_t *doc)
{
    return gw_parse_batch(body, strlen(body), &limits, arena_alloc, a, doc);
}

static void test_valid_batch(void **state)
{
    arena_t a = {0};
    gw_batch_doc_t doc;
    const char *body = "{\"sent_at\":1764000000000,\"write_key\":\"k\\u0031\",\"context\":{\"x\":[1]},"
                       "\"events\":[" GOOD_EVENT(ID1, "u-1") "," GOOD_EVENT(ID2, "u\\\"2") "]}";

    assert_int_equal(parse(&a, body, &doc), SL_ERR_OK);
    assert_int_equal(doc.n_events, 2);
    assert_int_equal(doc.sent_at, 1764000000000LL);
    assert_int_equal(doc.write_key_len, 2);
    assert_memory_equal(doc.write_key, "k1", 2);
    assert_int_equal(doc.events[0].err, SL_ERR_OK);
    assert_int_equal(doc.events[0].ts, 1763999999000LL);
    assert_int_equal(doc.events[0].event_id_len, 36);
    assert_memory_equal(doc.events[0].event_id, ID1, 36);
    assert_memory_equal(doc.events[0].user_id, "u-1", 3);
    assert_memory_equal(doc.events[0].event_type, "page_view", 9);
    /* raw slices are exactly the event objects */
    assert_int_equal(doc.events[0].raw_len, strlen(GOOD_EVENT(ID1, "u-1")));
    assert_memory_equal(doc.events[0].raw, GOOD_EVENT(ID1, "u-1"), doc.events[0].raw_len);
    /* escaped user_id is decoded */
    assert_int_equal(doc.events[1].user_id_len, 3);
    assert_memory_equal(doc.events[1].user_id, "u\"2", 3);
    arena_free(&a);
}

static void test_empty_events(void **state)
{
    arena_t a = {0};
    gw_batch_doc_t doc;
    assert_int_equal(parse(&a, "{\"events\":[]}", &doc), SL_ERR_OK);
    assert_int_equal(doc.n_events, 0);
    assert_null(doc.write_key);
    arena_free(&a);
}

static void test_whole_body_errors(void **state)
{
    static const struct {
        const char *body;
        sl_err_t err;
    } cases[] = {
        {"", SL_ERR_MALFORMED_JSON},
        {"not json", SL_ERR_MALFORMED_JSON},
        {"{\"events\":[{]}", SL_ERR_MALFORMED_JSON},
        {"{\"events\":[]} trailing", SL_ERR_MALFORMED_JSON},
        {"{\"events\":[\"\xff\"]}", SL_ERR_MALFORMED_JSON},
        {"[1,2]", SL_ERR_NOT_AN_OBJECT},
        {"\"events\"", SL_ERR_NOT_AN_OBJECT},
        {"{}", SL_ERR_MISSING_EVENTS},
        {"{\"events\":{}}", SL_ERR_MISSING_EVENTS},
        {"{\"events\":[],\"events\":[]}", SL_ERR_BAD_BATCH_FIELD},
        {"{\"write_key\":5,\"events\":[]}", SL_ERR_BAD_BATCH_FIELD},
        {"{\"sent_at\":\"now\",\"events\":[]}", SL_ERR_BAD_BATCH_FIELD},
        {"{\"sent_at\":1.5,\"events\":[]}", SL_ERR_BAD_BATCH_FIELD},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        arena_t a = {0};
        gw_batch_doc_t doc;
        sl_err_t err = parse(&a, cases[i].body, &doc);
        if (err != cases[i].err)
            fail_msg("case %zu (%s): got %s, want %s", i, cases[i].body, sl_err_code(err),
                     sl_err_code(cases[i].err));
        assert_non_null(doc.err_detail);
        assert_true(strlen(doc.err_detail) > 0);
        arena_free(&a);
    }
}

static void test_malformed_detail_has_position(void **state)
{
    arena_t a = {0};
    gw_batch_doc_t doc;
    assert_int_equal(parse(&a, "{\"events\":[1,]}", &doc), SL_ERR_MALFORMED_JSON);
    assert_non_null(strstr(doc.err_detail, "at byte 13"));
    arena_free(&a);
}

static void test_deep_nesting_is_rejected_without_recursion(void **state)
{
    arena_t a = {0};
    gw_batch_doc_t doc;
    size_t n = 1000000;
    char *body = malloc(n + 64);
    size_t len = (size_t)sprintf(body, "{\"events\":[");
    memset(body + len, '[', n);
    len += n;
    assert_int_equal(gw_parse_batch(body, len, &limits, arena_alloc, &a, &doc),
                     SL_ERR_MALFORMED_JSON);
    assert_non_null(strstr(doc.err_detail, "nesting too deep"));
    free(body);
    arena_free(&a);
}

/* Each case is one event; the expected code and path of its envelope problem. */
static void test_envelope_errors(void **state)
{
    static const struct {
        const char *event;
        sl_err_t err;
        const char *path;
    } cases[] = {
        {"5", SL_ERR_EVENT_NOT_OBJECT, ""},
        {"[1,2]", SL_ERR_EVENT_NOT_OBJECT, ""},
        {"null", SL_ERR_EVENT_NOT_OBJECT, ""},
        {"{\"event_type\":\"a\",\"ts\":1,\"user_id\":\"u\"}", SL_ERR_MISSING_FIELD, "event_id"},
        {"{\"event_id\":\"" ID1 "\",\"ts\":1,\"user_id\":\"u\"}", SL_ERR_MISSING_FIELD,
         "event_type"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"user_id\":\"u\"}", SL_ERR_MISSING_FIELD,
         "ts"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":1}", SL_ERR_MISSING_FIELD,
         "user_id"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":1,\"user_id\":\"\"}",
         SL_ERR_MISSING_FIELD, "user_id"},
        {"{\"event_id\":\"not-a-uuid\",\"event_type\":\"a\",\"ts\":1,\"user_id\":\"u\"}",
         SL_ERR_BAD_UUID, "event_id"},
        {"{\"event_id\":\"9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a1g\",\"event_type\":\"a\",\"ts\":1,"
         "\"user_id\":\"u\"}",
         SL_ERR_BAD_UUID, "event_id"},
        {"{\"event_id\":7,\"event_type\":\"a\",\"ts\":1,\"user_id\":\"u\"}", SL_ERR_BAD_TYPE,
         "event_id"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":\"1\",\"user_id\":\"u\"}",
         SL_ERR_BAD_TYPE, "ts"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":1.5,\"user_id\":\"u\"}",
         SL_ERR_BAD_TYPE, "ts"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":-1,\"user_id\":\"u\"}",
         SL_ERR_BAD_VALUE, "ts"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":99999999999999999999,"
         "\"user_id\":\"u\"}",
         SL_ERR_BAD_VALUE, "ts"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":1,\"user_id\":[\"u\"]}",
         SL_ERR_BAD_TYPE, "user_id"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":1,\"user_id\":\"u\","
         "\"session_id\":5}",
         SL_ERR_BAD_TYPE, "session_id"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":1,\"user_id\":\"u\","
         "\"page_id\":\"x\"}",
         SL_ERR_BAD_TYPE, "page_id"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":1,\"user_id\":\"u\","
         "\"properties\":[]}",
         SL_ERR_BAD_TYPE, "properties"},
        {"{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":1,\"user_id\":\"u\","
         "\"user_id\":\"v\"}",
         SL_ERR_DUPLICATE_KEY, "user_id"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        arena_t a = {0};
        gw_batch_doc_t doc;
        char body[1024];
        snprintf(body, sizeof(body), "{\"events\":[" GOOD_EVENT(ID2, "ok") ",%s]}",
                 cases[i].event);
        assert_int_equal(parse(&a, body, &doc), SL_ERR_OK);
        assert_int_equal(doc.n_events, 2);
        assert_int_equal(doc.events[0].err, SL_ERR_OK);
        if (doc.events[1].err != cases[i].err || strcmp(doc.events[1].err_path, cases[i].path))
            fail_msg("case %zu (%s): got %s at '%s', want %s at '%s'", i, cases[i].event,
                     sl_err_code(doc.events[1].err), doc.events[1].err_path,
                     sl_err_code(cases[i].err), cases[i].path);
        assert_non_null(doc.events[1].err_detail);
        /* the slice covers the whole event, even an invalid one */
        assert_int_equal(doc.events[1].raw_len, strlen(cases[i].event));
        arena_free(&a);
    }
}

/* A name with escapes is the field it decodes to: otherwise "event_\u0069d" could carry an
 * unchecked id past the envelope checks to every JSON reader downstream (review finding). */
static void test_escaped_names_are_decoded(void **state)
{
    arena_t a = {0};
    gw_batch_doc_t doc;
    const char *body =
        "{\"\\u0065vents\":["
        "{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":1,\"user_id\":\"u\","
        "\"event_\\u0069d\":\"NOT-A-UUID\"},"
        "{\"event_\\u0069d\":\"" ID2 "\",\"event_type\":\"a\",\"ts\":1,"
        "\"us\\u0065r_id\":\"u\\u00e9\"},"
        "{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":1,\"user_id\":\"u\","
        "\"user_\\u0069d\":\"someone-else\"}]}";

    assert_int_equal(parse(&a, body, &doc), SL_ERR_OK);
    assert_int_equal(doc.n_events, 3);
    assert_int_equal(doc.events[0].err, SL_ERR_DUPLICATE_KEY);
    assert_string_equal(doc.events[0].err_path, "event_id");
    assert_int_equal(doc.events[1].err, SL_ERR_OK);
    assert_memory_equal(doc.events[1].event_id, ID2, 36);
    assert_int_equal(doc.events[1].user_id_len, 3);
    assert_memory_equal(doc.events[1].user_id, "u\xc3\xa9", 3);
    assert_int_equal(doc.events[2].err, SL_ERR_DUPLICATE_KEY);
    assert_string_equal(doc.events[2].err_path, "user_id");
    arena_free(&a);
}

static void test_optional_nulls_are_fine(void **state)
{
    arena_t a = {0};
    gw_batch_doc_t doc;
    const char *body = "{\"events\":[{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":0,"
                       "\"user_id\":\"u\",\"session_id\":null,\"page_id\":null,"
                       "\"schema_version\":3,\"extra\":{\"deep\":[[[]]]}}]}";
    assert_int_equal(parse(&a, body, &doc), SL_ERR_OK);
    assert_int_equal(doc.events[0].err, SL_ERR_OK);
    arena_free(&a);
}

static void test_event_limits(void **state)
{
    arena_t a = {0};
    gw_batch_doc_t doc;
    gw_parse_limits_t small = {.max_events = 2, .max_event_bytes = 300, .max_depth = 32};
    char big[1024], body[2048];

    /* an event over max_event_bytes is invalid on its own; the rest of the batch proceeds */
    snprintf(big, sizeof(big),
             "{\"event_id\":\"" ID1 "\",\"event_type\":\"a\",\"ts\":1,\"user_id\":\"u\","
             "\"properties\":{\"pad\":\"%0400d\"}}",
             0);
    snprintf(body, sizeof(body), "{\"events\":[%s," GOOD_EVENT(ID2, "u") "]}", big);
    assert_int_equal(gw_parse_batch(body, strlen(body), &small, arena_alloc, &a, &doc), SL_ERR_OK);
    assert_int_equal(doc.events[0].err, SL_ERR_EVENT_TOO_LARGE);
    assert_int_equal(doc.events[1].err, SL_ERR_OK);
    arena_free(&a);

    snprintf(body, sizeof(body), "{\"events\":[1,2,3]}");
    assert_int_equal(gw_parse_batch(body, strlen(body), &small, arena_alloc, &a, &doc),
                     SL_ERR_TOO_MANY_EVENTS);
    arena_free(&a);
}

static void test_many_events_grow(void **state)
{
    arena_t a = {0};
    gw_batch_doc_t doc;
    size_t n = 500, cap = n * 300 + 64, len;
    char *body = malloc(cap);

    len = (size_t)sprintf(body, "{\"events\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(body + len, "%s" GOOD_EVENT(ID1, "u"), i ? "," : "");
    len += (size_t)sprintf(body + len, "]}");
    assert_int_equal(gw_parse_batch(body, len, &limits, arena_alloc, &a, &doc), SL_ERR_OK);
    assert_int_equal(doc.n_events, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(doc.events[i].err, SL_ERR_OK);
    free(body);
    arena_free(&a);
}

static void test_uuid(void **state)
{
    assert_true(gw_is_uuid(ID1, 36));
    assert_true(gw_is_uuid("9B2F3A4E-6C1D-4E8A-9F00-2B7C5D1E0A11", 36));
    assert_false(gw_is_uuid(ID1, 35));
    assert_false(gw_is_uuid("9b2f3a4e06c1d-4e8a-9f00-2b7c5d1e0a11", 36));
    assert_false(gw_is_uuid("9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a1z", 36));
}

static size_t gzip(const char *in, size_t len, char *out, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    deflateEnd(&zs);
    return zs.total_out;
}

static void test_gunzip(void **state)
{
    const char *text = "{\"events\":[]}";
    char gz[256], out[64];
    size_t n = gzip(text, strlen(text), gz, sizeof(gz)), out_len;

    assert_true(gw_body_is_gzip(gz, n));
    assert_false(gw_body_is_gzip(text, strlen(text)));
    assert_int_equal(gw_body_gunzip(gz, n, out, sizeof(out), &out_len), SL_ERR_OK);
    assert_int_equal(out_len, strlen(text));
    assert_memory_equal(out, text, out_len);
    /* truncated stream and trailing junk are malformed */
    assert_int_equal(gw_body_gunzip(gz, n - 5, out, sizeof(out), &out_len), SL_ERR_MALFORMED_GZIP);
    memcpy(gz + n, "xx", 2);
    assert_int_equal(gw_body_gunzip(gz, n + 2, out, sizeof(out), &out_len), SL_ERR_MALFORMED_GZIP);
    /* corrupt checksum */
    gz[n - 6] ^= 0x55;
    assert_int_equal(gw_body_gunzip(gz, n, out, sizeof(out), &out_len), SL_ERR_MALFORMED_GZIP);
}

static void test_gunzip_bomb_stops_at_cap(void **state)
{
    size_t plain = 64 << 20, cap = 4 << 20, out_len = 0;
    char *zeros = calloc(1, plain), *gz = malloc(1 << 20), *out = malloc(cap);
    size_t n = gzip(zeros, plain, gz, 1 << 20);

    assert_true(n < 100 * 1024); /* ~1000:1 */
    assert_int_equal(gw_body_gunzip(gz, n, out, cap, &out_len), SL_ERR_DECOMPRESSED_TOO_LARGE);
    assert_true(out_len <= cap);
    free(zeros);
    free(gz);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_batch),
        cmocka_unit_test(test_empty_events),
        cmocka_unit_test(test_whole_body_errors),
        cmocka_unit_test(test_malformed_detail_has_position),
        cmocka_unit_test(test_deep_nesting_is_rejected_without_recursion),
        cmocka_unit_test(test_envelope_errors),
        cmocka_unit_test(test_escaped_names_are_decoded),
        cmocka_unit_test(test_optional_nulls_are_fine),
        cmocka_unit_test(test_event_limits),
        cmocka_unit_test(test_many_events_grow),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_gunzip),
        cmocka_unit_test(test_gunzip_bomb_stops_at_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
