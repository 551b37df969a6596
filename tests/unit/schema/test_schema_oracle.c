/* Oracle check of the transcoder: valid events for every default schema (schema/defaults) and for
 * a schema using every Avro type are encoded, decoded again with avro-c and compared with
 * jansson's parse of the same JSON (schema_oracle.h). Also: every default schema compiles and its
 * avro-c schema is the one the encoder used. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "schema.h"
#include "schema_oracle.h"

static char *read_default(const char *subject, size_t *len)
{
    char path[4096];
    const char *self = __FILE__, *cut = strstr(self, "tests/unit/schema/");
    FILE *f;
    long n;
    char *text;

    snprintf(path, sizeof(path), "%.*sschema/defaults/%s.avsc", (int)(cut ? cut - self : 0), self,
             subject);
    f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    text = malloc((size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return text;
}

/* Encodes each event with s and checks it against the oracle. */
static void check_events(const char *schema_text, const schema_t *s, const char *const *events,
                         size_t nevents)
{
    static const char *const skip_names[] = {"schema_version"};
    const schema_skip_t skip = {skip_names, 1};
    for (size_t i = 0; i < nevents; i++) {
        uint8_t out[4096];
        schema_error_t e;
        char msg[256];
        json_error_t jerr;
        json_t *ev;
        ssize_t n = schema_encode_json(s, events[i], strlen(events[i]), &skip, out, sizeof(out),
                                       &e);
        if (n < 0)
            fail_msg("event %zu refused: %s at '%s': %s", i, sl_err_code(e.code), e.path,
                     e.detail);
        ev = json_loads(events[i], JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!ev)
            fail_msg("event %zu: jansson: %s", i, jerr.text);
        if (oracle_check(schema_text, schema_avro(s), schema_id(s), out, (size_t)n, ev,
                         skip_names, 1, msg, sizeof(msg)) != 0)
            fail_msg("event %zu: %s", i, msg);
        json_decref(ev);
    }
}

static void check_subject(const char *subject, const char *const *events, size_t n)
{
    size_t len;
    char *text = read_default(subject, &len), err[256];
    schema_t *s = schema_compile_avro(text, len, 100, err, sizeof(err));
    if (!s)
        fail_msg("%s: %s", subject, err);
    check_events(text, s, events, n);
    schema_destroy(s);
    free(text);
}

#define ENV(type) "\"event_id\":\"9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11\",\"event_type\":\"" type "\""

static void test_page_view(void **state)
{
    static const char *const ev[] = {
        "{" ENV("page_view") ",\"ts\":1763999999000,\"user_id\":\"u-123\",\"session_id\":\"s-9\","
        "\"page_id\":42,\"properties\":{\"url\":\"/pricing\",\"referrer\":null,\"title\":"
        "\"Pricing\",\"latency_ms\":87}}",
        /* optional members absent, members out of order, escapes and non-ASCII text */
        "{\"properties\":{\"title\":\"Caf\\u00e9 \\ud83d\\ude00 \\\"x\\\"\",\"url\":\"/a\\/b\"},"
        "\"user_id\":\"\xe9\x9d\x92\",\"ts\":-5," ENV("page_view") "}",
        /* the envelope's schema_version is skipped */
        "{\"schema_version\":2," ENV("page_view") ",\"ts\":0,\"user_id\":\"u\",\"session_id\":null,"
        "\"page_id\":null,\"properties\":{\"url\":\"\",\"latency_ms\":-2147483648,\"referrer\":"
        "\"https://r.example/\"}}",
        "{" ENV("page_view") ",\"ts\":9223372036854775807,\"user_id\":\"u\",\"page_id\":"
        "-9223372036854775808,\"properties\":{\"url\":\"\\u0000\",\"latency_ms\":2147483647}}",
    };
    check_subject("page_view", ev, sizeof(ev) / sizeof(ev[0]));
}

static void test_other_defaults(void **state)
{
    static const char *const click[] = {
        "{" ENV("click") ",\"ts\":1,\"user_id\":\"u\",\"properties\":{\"url\":\"/\",\"element\":"
        "\"#buy\",\"x\":10,\"y\":null}}",
        "{\"properties\":{\"y\":-3,\"element\":\"a\",\"url\":\"/x\"}," ENV("click") ",\"ts\":2,"
        "\"user_id\":\"u\",\"session_id\":\"s\"}",
    };
    static const char *const cart[] = {
        "{" ENV("add_to_cart") ",\"ts\":1,\"user_id\":\"u\",\"properties\":{\"product_id\":\"p1\","
        "\"quantity\":3,\"price_cents\":1999}}",
    };
    static const char *const purchase[] = {
        "{" ENV("purchase") ",\"ts\":1,\"user_id\":\"u\",\"page_id\":7,\"properties\":{\"order_id\":"
        "\"o-1\",\"revenue_cents\":123456789012,\"currency\":\"EUR\"}}",
    };
    static const char *const api[] = {
        "{" ENV("api_request") ",\"ts\":1,\"user_id\":\"svc\",\"properties\":{\"endpoint\":\"/v1\","
        "\"method\":\"GET\",\"status\":200,\"latency_ms\":12.875}}",
        "{" ENV("api_request") ",\"ts\":1,\"user_id\":\"svc\",\"properties\":{\"endpoint\":\"/v1\","
        "\"method\":\"GET\",\"status\":500,\"latency_ms\":3}}",
        "{" ENV("api_request") ",\"ts\":1,\"user_id\":\"svc\",\"properties\":{\"endpoint\":\"/v1\","
        "\"method\":\"GET\",\"status\":500,\"latency_ms\":1.7976931348623157e308}}",
        "{" ENV("api_request") ",\"ts\":1,\"user_id\":\"svc\",\"properties\":{\"endpoint\":\"/v1\","
        "\"method\":\"GET\",\"status\":500,\"latency_ms\":0.1e-5}}",
    };
    check_subject("click", click, sizeof(click) / sizeof(click[0]));
    check_subject("add_to_cart", cart, sizeof(cart) / sizeof(cart[0]));
    check_subject("purchase", purchase, sizeof(purchase) / sizeof(purchase[0]));
    check_subject("api_request", api, sizeof(api) / sizeof(api[0]));
}

static void test_all_types(void **state)
{
    static const char *const ev[] = {
        "{}",
        "{\"i\":-7,\"l\":1234567890123,\"f\":1.25,\"d\":-0.001,\"b\":true,\"s\":\"x\\ny\","
        "\"by\":\"AAEC/w==\",\"fx\":\"3q2+7w==\",\"e\":\"BLUE\",\"a\":[1,-1,9007199254740993],"
        "\"m\":{\"k\":\"v\",\"n\":null,\"\\u00e9\":\"\"},\"o\":\"o\",\"u\":\"str\",\"ts\":1,"
        "\"dt\":19000,\"tm\":86399999,\"tu\":1,\"id\":\"9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11\","
        "\"dec\":\"-12345678.99\",\"decf\":3.1416,\"r\":{\"x\":1,\"tags\":[\"a\",\"b\"],"
        "\"child\":{\"child\":{\"x\":3}}},\"rs\":[{},{\"x\":2}],\"n\":null}",
        "{\"u\":5}",
        "{\"u\":5000000000}",
        "{\"u\":2.5}",
        "{\"u\":true}",
        "{\"u\":[1,2,3]}",
        "{\"u\":{\"a\":1}}",
        "{\"n\":null,\"rs\":[],\"r\":null,\"decf\":null,\"dec\":99999999.99,\"id\":null,\"o\":null}",
        "{\"decf\":\"-99999999999999.9999\",\"dec\":0,\"f\":3.4028234e38,\"d\":1e-320}",
        "{\"a\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,"
        "30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,"
        "59,60,61,62,63,64,65,66]}",
    };
    char err[256];
    schema_t *s = schema_compile_avro(oracle_all_types_schema, strlen(oracle_all_types_schema),
                                      0xfffffffe, err, sizeof(err));
    if (!s)
        fail_msg("%s", err);
    check_events(oracle_all_types_schema, s, ev, sizeof(ev) / sizeof(ev[0]));
    schema_destroy(s);
}

/* The oracle itself must notice a wrong value, a wrong branch, a missing byte and extra bytes. */
static void test_oracle_catches_mismatch(void **state)
{
    char err[256], msg[256];
    schema_t *s = schema_compile_avro(oracle_all_types_schema, strlen(oracle_all_types_schema), 9,
                                      err, sizeof(err));
    const char *ev = "{\"i\":3,\"o\":\"x\",\"by\":\"AQID\"}";
    const char *const others[] = {"{\"i\":4,\"o\":\"x\",\"by\":\"AQID\"}",
                                  "{\"i\":3,\"by\":\"AQID\"}", "{\"i\":3,\"o\":\"x\"}",
                                  "{\"i\":3,\"o\":\"x\",\"by\":\"AQID\",\"zz\":1}"};
    uint8_t out[512];
    schema_error_t e;
    ssize_t n;
    json_t *j;

    assert_non_null(s);
    n = schema_encode_json(s, ev, strlen(ev), NULL, out, sizeof(out), &e);
    assert_true(n > 0);
    j = json_loads(ev, 0, NULL);
    assert_int_equal(oracle_check(oracle_all_types_schema, schema_avro(s), 9, out, (size_t)n, j,
                                  NULL, 0, msg, sizeof(msg)),
                     0);
    assert_int_equal(oracle_check(oracle_all_types_schema, schema_avro(s), 9, out, (size_t)n - 1,
                                  j, NULL, 0, msg, sizeof(msg)),
                     -1);
    out[n] = 0;
    assert_int_equal(oracle_check(oracle_all_types_schema, schema_avro(s), 9, out, (size_t)n + 1,
                                  j, NULL, 0, msg, sizeof(msg)),
                     -1);
    assert_int_equal(oracle_check(oracle_all_types_schema, schema_avro(s), 8, out, (size_t)n, j,
                                  NULL, 0, msg, sizeof(msg)),
                     -1);
    json_decref(j);
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        j = json_loads(others[i], 0, NULL);
        assert_int_equal(oracle_check(oracle_all_types_schema, schema_avro(s), 9, out, (size_t)n,
                                      j, NULL, 0, msg, sizeof(msg)),
                         -1);
        json_decref(j);
    }
    schema_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_view),
        cmocka_unit_test(test_other_defaults),
        cmocka_unit_test(test_all_types),
        cmocka_unit_test(test_oracle_catches_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
