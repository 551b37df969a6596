/* Unit tests for gateway/gw_auth.c: the key map, header and query extraction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gw_int.h"

static void test_lookup(void **state)
{
    gw_auth_t auth;
    char err[256];
    const gw_tenant_t *t;

    assert_int_equal(gw_auth_init(&auth, "k1:tenant-a,key-two:tenant-b", err, sizeof(err)), 0);
    assert_int_equal(auth.n, 2);
    t = gw_auth_lookup(&auth, "key-two", 7);
    assert_non_null(t);
    assert_string_equal(t->tenant, "tenant-b");
    assert_string_equal(gw_auth_lookup(&auth, "k1", 2)->tenant, "tenant-a");
    assert_null(gw_auth_lookup(&auth, "k", 1));
    assert_null(gw_auth_lookup(&auth, "k1x", 3));
    assert_null(gw_auth_lookup(&auth, "", 0));
    gw_auth_dispose(&auth);

    assert_int_equal(gw_auth_init(&auth, "", err, sizeof(err)), 0);
    assert_int_equal(auth.n, 0);
    assert_null(gw_auth_lookup(&auth, "k1", 2));
    gw_auth_dispose(&auth);
}

static void test_bad_specs_never_print_keys(void **state)
{
    static const char *const bad[] = {"secretkey", "secretkey:", ":tenant", "a:b,,c:d",
                                      "secretkey:a,secretkey:b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_auth_t auth;
        char err[256] = "";
        assert_int_equal(gw_auth_init(&auth, bad[i], err, sizeof(err)), -1);
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
        cmocka_unit_test(test_bad_specs_never_print_keys),
        cmocka_unit_test(test_header_forms),
        cmocka_unit_test(test_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
