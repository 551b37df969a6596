/* Unit tests for gateway/gw_auth.c: the key map, header and query extraction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "gw_int.h"

static const gw_auth_defaults_t no_limit = {0, 0, 500};

static void test_lookup(void **state)
{
    gw_auth_t auth;
    char err[256];
    const gw_tenant_t *t;

    assert_int_equal(gw_auth_init(&auth, "k1:tenant-a,key-two:tenant-b", NULL, &no_limit, err, sizeof(err)), 0);
    assert_int_equal(auth.n_keys, 2);
    assert_int_equal(auth.n_tenants, 2);
    t = gw_auth_lookup(&auth, "key-two", 7);
    assert_non_null(t);
    assert_string_equal(t->name, "tenant-b");
    assert_string_equal(gw_auth_lookup(&auth, "k1", 2)->name, "tenant-a");
    assert_null(gw_auth_lookup(&auth, "k", 1));
    assert_null(gw_auth_lookup(&auth, "k1x", 3));
    assert_null(gw_auth_lookup(&auth, "", 0));
    gw_auth_dispose(&auth);

    assert_int_equal(gw_auth_init(&auth, "", NULL, &no_limit, err, sizeof(err)), 0);
    assert_int_equal(auth.n_keys, 0);
    assert_null(gw_auth_lookup(&auth, "k1", 2));
    gw_auth_dispose(&auth);
}

/* Two keys of one tenant share one tenant (and so one rate bucket). */
static void test_one_tenant_many_keys(void **state)
{
    gw_auth_t auth;
    char err[256];

    assert_int_equal(gw_auth_init(&auth, "k1:acme,k2:acme,k3:beta", NULL, &no_limit, err,
                                  sizeof(err)),
                     0);
    assert_int_equal(auth.n_tenants, 2);
    assert_ptr_equal(gw_auth_lookup(&auth, "k1", 2), gw_auth_lookup(&auth, "k2", 2));
    gw_auth_dispose(&auth);
}

static char *write_file(const char *text)
{
    char *path = strdup("/tmp/sluice-test-tenants-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* a well-formed digest (of no key in particular) for the error cases */
#define KEY1_SHA "2d7e4c0c7f8a4ba5f8bc1b0c5e43e5f8b4d5c7c2d1a5e8f5b2e3c8d7a6b5c4d3"

static void test_tenants_file(void **state)
{
    char hex1[65], hex2[65], text[1024], err[256];
    unsigned char d[32];
    gw_auth_t auth;
    gw_tenant_t *t;
    char *path;

    SHA256((const unsigned char *)"file-key-1", 10, d);
    for (int i = 0; i < 32; i++)
        sprintf(hex1 + 2 * i, "%02x", d[i]);
    SHA256((const unsigned char *)"file-key-2", 10, d);
    for (int i = 0; i < 32; i++)
        sprintf(hex2 + 2 * i, "%02X", d[i]); /* upper case is fine too */
    snprintf(text, sizeof(text),
             "{\"tenants\": {\"shop\": {\"write_keys_sha256\": [\"%s\", \"%s\"],"
             " \"cors_origins\": [\"https://shop.example\"], \"rate_events_per_s\": 1000,"
             " \"burst_events\": 2000}, \"open\": {\"write_keys_sha256\": [\"%s\"]}}}",
             hex1, hex2, "0000000000000000000000000000000000000000000000000000000000000001");
    path = write_file(text);
    assert_int_equal(gw_auth_init(&auth, "dev:devtenant", path, &no_limit, err, sizeof(err)), 0);
    assert_int_equal(auth.n_tenants, 3);
    t = gw_auth_lookup(&auth, "file-key-1", 10);
    assert_non_null(t);
    assert_string_equal(t->name, "shop");
    assert_ptr_equal(gw_auth_lookup(&auth, "file-key-2", 10), t);
    assert_true(gw_tenant_allows_origin(t, "https://shop.example", 20));
    assert_true(gw_tenant_allows_origin(t, "HTTPS://SHOP.EXAMPLE", 20));
    assert_false(gw_tenant_allows_origin(t, "https://evil.example", 20));
    assert_int_equal(t->rate.interval_ns, 1000000);
    assert_int_equal(t->rate.tolerance_ns, 2000LL * 1000000);
    /* "open" lists no origins: any; the dev key's tenant takes any origin too */
    assert_true(auth.any_origin_anywhere);
    assert_true(gw_auth_allows_origin(&auth, "https://evil.example", 20));
    gw_auth_dispose(&auth);
    unlink(path);
    free(path);
}

static void test_tenants_file_errors(void **state)
{
    static const struct {
        const char *text, *expect;
    } bad[] = {
        {"{", "line"},
        {"{\"tenant\": {}}", "needs an object"},
        {"{\"tenants\": {\"a\": {\"write_keys_sha256\": []}}}", "non-empty"},
        {"{\"tenants\": {\"a\": {\"write_keys_sha256\": [\"abc\"]}}}", "64 hex"},
        {"{\"tenants\": {\"a\": {\"write_keys_sha256\": [\"" KEY1_SHA "\"], \"rate\": 5}}}",
         "unknown member"},
        {"{\"tenants\": {\"a\": {\"write_keys_sha256\": [\"" KEY1_SHA "\"],"
         " \"rate_events_per_s\": 10, \"burst_events\": 10}}}",
         "below gateway.max_events"},
        {"{\"tenants\": {\"a\": {\"write_keys_sha256\": [\"" KEY1_SHA "\"]},"
         " \"b\": {\"write_keys_sha256\": [\"" KEY1_SHA "\"]}}}",
         "appears twice"},
        {"{\"tenants\": {\"a\": {\"write_keys_sha256\": [\"" KEY1_SHA "\"],"
         " \"cors_origins\": [\"\"]}}}",
         "cors_origins[0]"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_auth_t auth;
        char err[256] = "";
        char *path = write_file(bad[i].text);
        assert_int_equal(gw_auth_init(&auth, "", path, &no_limit, err, sizeof(err)), -1);
        if (strstr(err, bad[i].expect) == NULL)
            fail_msg("case %zu: \"%s\" does not mention \"%s\"", i, err, bad[i].expect);
        unlink(path);
        free(path);
    }
    /* a missing file is an error too */
    {
        gw_auth_t auth;
        char err[256] = "";
        assert_int_equal(gw_auth_init(&auth, "", "/nonexistent/tenants.json", &no_limit, err,
                                      sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "auth.tenants_file"));
    }
}

/* GCRA: a burst passes at once, the next event waits one interval, time refills. */
static void test_rate(void **state)
{
    gw_rate_t r;
    int64_t t0 = 1000000000000LL, wait;

    gw_rate_init(&r, 100, 50); /* 100 events/s: 10 ms each, burst 50 */
    assert_false(gw_rate_is_exhausted(&r, t0));
    assert_int_equal(gw_rate_take(&r, 49, t0), 0);
    assert_false(gw_rate_is_exhausted(&r, t0)); /* one event left */
    assert_int_equal(gw_rate_take(&r, 1, t0), 0);
    assert_true(gw_rate_is_exhausted(&r, t0));
    wait = gw_rate_take(&r, 1, t0);
    assert_int_equal(wait, 10000000); /* one event = 10 ms */
    assert_true(gw_rate_is_exhausted(&r, t0 + 1));
    assert_int_equal(gw_rate_take(&r, 1, t0 + 10000000), 0);
    /* 100 ms later 10 events came back; a batch of 20 waits for the 11 it lacks (the bucket
     * was 1 event past full) */
    assert_int_equal(gw_rate_take(&r, 20, t0 + 100000000), 110000000);
    /* after a quiet second the full burst is back, not more */
    assert_int_equal(gw_rate_take(&r, 50, t0 + 2000000000LL), 0);
    assert_true(gw_rate_take(&r, 1, t0 + 2000000000LL) > 0);
    /* 0 events/s: unlimited */
    gw_rate_init(&r, 0, 0);
    assert_int_equal(gw_rate_take(&r, 1000000, t0), 0);
    assert_false(gw_rate_is_exhausted(&r, t0));
}

static void test_bad_specs_never_print_keys(void **state)
{
    static const char *const bad[] = {"secretkey", "secretkey:", ":tenant", "a:b,,c:d",
                                      "secretkey:a,secretkey:b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_auth_t auth;
        char err[256] = "";
        assert_int_equal(gw_auth_init(&auth, bad[i], NULL, &no_limit, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "auth.write_keys"));
        assert_null(strstr(err, "secretkey"));
    }
}

static void test_header_forms(void **state)
{
    char key[64];
    int n;

    n = gw_auth_from_header("Bearer abc123", 13, key, sizeof(key));
    assert_int_equal(n, 6);
    assert_memory_equal(key, "abc123", 6);
    n = gw_auth_from_header("bearer   abc123  ", 17, key, sizeof(key));
    assert_int_equal(n, 6);
    /* base64("abc123:") = YWJjMTIzOg== */
    n = gw_auth_from_header("Basic YWJjMTIzOg==", 18, key, sizeof(key));
    assert_int_equal(n, 6);
    assert_memory_equal(key, "abc123", 6);
    /* base64("abc123") without the colon, and without padding */
    n = gw_auth_from_header("Basic YWJjMTIz", 14, key, sizeof(key));
    assert_int_equal(n, 6);
    assert_memory_equal(key, "abc123", 6);
    assert_int_equal(gw_auth_from_header("Token abc", 9, key, sizeof(key)), -1);
    assert_int_equal(gw_auth_from_header("Bearer ", 7, key, sizeof(key)), -1);
    assert_int_equal(gw_auth_from_header("Basic !!!!", 10, key, sizeof(key)), -1);
    assert_int_equal(gw_auth_from_header("Basic Og==", 10, key, sizeof(key)), -1); /* ":" */
    /* longer than the buffer */
    assert_int_equal(gw_auth_from_header("Bearer abcdefgh", 15, key, 4), -1);
}

static void test_query(void **state)
{
    char key[64];
    const char *q;
    int n;

    q = "a=1&write_key=abc%2F1+2&b=2";
    n = gw_auth_from_query(q, strlen(q), key, sizeof(key));
    assert_int_equal(n, 7);
    assert_memory_equal(key, "abc/1 2", 7);
    q = "write_key=k";
    assert_int_equal(gw_auth_from_query(q, strlen(q), key, sizeof(key)), 1);
    q = "other=1&xwrite_key=k";
    assert_int_equal(gw_auth_from_query(q, strlen(q), key, sizeof(key)), 0);
    q = "write_key=%zz";
    assert_int_equal(gw_auth_from_query(q, strlen(q), key, sizeof(key)), -1);
    q = "write_key=";
    assert_int_equal(gw_auth_from_query(q, strlen(q), key, sizeof(key)), -1);
    q = "write_key=abcdef";
    assert_int_equal(gw_auth_from_query(q, strlen(q), key, 3), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_one_tenant_many_keys),
        cmocka_unit_test(test_tenants_file),
        cmocka_unit_test(test_tenants_file_errors),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_bad_specs_never_print_keys),
        cmocka_unit_test(test_header_forms),
        cmocka_unit_test(test_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
