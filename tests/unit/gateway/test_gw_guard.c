/* Unit tests for gateway/gw_guard.c's pure part: the HTTP/1.1 head check that refuses
 * ambiguous framing (Content-Length with Transfer-Encoding, or Content-Length twice). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gw_int.h"

static int check(const char *head)
{
    return gw_guard_http1_head_check(head, strlen(head));
}

static void test_plain_heads_pass(void **state)
{
    assert_int_equal(check("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(check("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde"), 0);
    assert_int_equal(check("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 0);
    /* LF-only line ends, as h2o's parser accepts them */
    assert_int_equal(check("POST / HTTP/1.1\nContent-Length: 1\n\nx"), 0);
    /* names that only contain the words are other headers */
    assert_int_equal(check("GET / HTTP/1.1\r\nX-Content-Length: 1\r\nContent-Length: 1\r\n\r\n"),
                     0);
    assert_int_equal(check(""), 0);
    assert_int_equal(check("GET / HTTP/1.1"), 0);
}

static void test_conflicts_refused(void **state)
{
    assert_int_equal(check("POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
                           "\r\n"),
                     -1);
    assert_int_equal(check("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n"
                           "\r\n"),
                     -1);
    assert_int_equal(check("POST / HTTP/1.1\r\nContent-Length: 4\r\nCONTENT-LENGTH: 4\r\n\r\n"),
                     -1);
    /* h2o lowercases names in place before the handler runs: still found */
    assert_int_equal(check("POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"),
                     -1);
}

static void test_body_is_not_head(void **state)
{
    /* header-looking lines after the empty line are body (or the next request): not counted */
    assert_int_equal(check("POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\n"
                           "Transfer-Encoding: chunked\r\nContent-Length: 1\r\n"),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_heads_pass),
        cmocka_unit_test(test_conflicts_refused),
        cmocka_unit_test(test_body_is_not_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
