/* Protobuf in the registry: protoc as a bounded subprocess (valid text, a syntax error, a protoc
 * that hangs), the descriptor reader, the compatibility rules of README.md, base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "reg_int.h"
#include "sl_log.h"

#define V1                                                                                         \
    "syntax = \"proto3\";\npackage t;\nmessage Ev {\n  string id = 1;\n  int32 n = 2;\n"           \
    "  repeated string tags = 3;\n  message In { int64 x = 1; }\n  In in = 4;\n}\n"

static reg_proto_t *compile(const char *text)
{
    reg_msg_t err = {{0}};
    reg_proto_t *p = reg_proto_compile("protoc", 10000, text, strlen(text), &err);
    if (p == NULL)
        fail_msg("protoc: %s", err.msg);
    return p;
}

static int reads(const char *w, const char *r, reg_msg_t *why)
{
    reg_proto_t *pw = compile(w), *pr = compile(r);
    int ok = reg_proto_can_read(pw, pr, "test", why);
    reg_proto_destroy(pw);
    reg_proto_destroy(pr);
    return ok;
}

static void test_compile_and_descriptor(void **state)
{
    reg_proto_t *p = compile(V1), *q;
    reg_msg_t err = {{0}}, why = {{0}};
    const uint8_t *d;
    size_t len;
    (void)state;
    d = reg_proto_descriptor(p, &len);
    assert_true(len > 20);
    assert_non_null(memmem(d, len, "Ev", 2));
    /* replay path: the descriptor alone gives the same parsed form */
    q = reg_proto_from_descriptor(d, len, &err);
    assert_non_null(q);
    assert_true(reg_proto_can_read(p, q, "x", &why));
    reg_proto_destroy(q);
    /* a truncated descriptor is refused, not misread */
    assert_null(reg_proto_from_descriptor(d, len - 3, &err));
    reg_proto_destroy(p);
}

static void test_invalid_text(void **state)
{
    reg_msg_t err = {{0}};
    const char *bad = "syntax = \"proto3\";\nmessage M { strin a = 1; }\n";
    (void)state;
    assert_null(reg_proto_compile("protoc", 10000, bad, strlen(bad), &err));
    assert_non_null(strstr(err.msg, "Invalid schema: schema.proto:2"));
    assert_null(strstr(err.msg, "/tmp")); /* our temporary directory is not in the answer */
    memset(&err, 0, sizeof(err));
    assert_null(reg_proto_compile("/nonexistent/protoc", 10000, V1, strlen(V1), &err));
    assert_non_null(strstr(err.msg, "cannot run"));
}

static void test_protoc_timeout(void **state)
{
    char dir[] = "/tmp/sluice-regproto-XXXXXX", path[128];
    reg_msg_t err = {{0}};
    FILE *f;
    uint64_t t0;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/protoc", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\nexec sleep 30\n", f);
    fclose(f);
    chmod(path, 0700);
    t0 = sl_now_ms();
    assert_null(reg_proto_compile(path, 300, V1, strlen(V1), &err));
    assert_non_null(strstr(err.msg, "did not finish within 300 ms"));
    assert_true(sl_now_ms() - t0 < 5000);
    unlink(path);
    rmdir(dir);
}

static void test_rules(void **state)
{
    reg_msg_t why = {{0}};
    (void)state;
    /* adding and removing fields, renaming: fine */
    assert_true(reads(V1,
                      "syntax = \"proto3\";\npackage t;\nmessage Ev {\n  string ident = 1;\n"
                      "  repeated string tags = 3;\n  message In { int64 x = 1; }\n  In in = 4;\n"
                      "  double extra = 9;\n}\n",
                      &why));
    /* int32 -> int64: the same varint encoding */
    assert_true(reads(V1,
                      "syntax = \"proto3\";\npackage t;\nmessage Ev {\n  string id = 1;\n"
                      "  int64 n = 2;\n  repeated string tags = 3;\n  message In { int64 x = 1; }"
                      "\n  In in = 4;\n}\n",
                      &why));
    /* int32 -> string: not */
    assert_false(reads(V1,
                       "syntax = \"proto3\";\npackage t;\nmessage Ev {\n  string id = 1;\n"
                       "  string n = 2;\n  repeated string tags = 3;\n  message In { int64 x = 1;"
                       " }\n  In in = 4;\n}\n",
                       &why));
    assert_non_null(strstr(why.msg, "field 2 of t.Ev"));
    /* repeated -> singular */
    memset(&why, 0, sizeof(why));
    assert_false(reads(V1,
                       "syntax = \"proto3\";\npackage t;\nmessage Ev {\n  string id = 1;\n"
                       "  int32 n = 2;\n  string tags = 3;\n  message In { int64 x = 1; }\n"
                       "  In in = 4;\n}\n",
                       &why));
    assert_non_null(strstr(why.msg, "repeated"));
    /* a nested message removed */
    memset(&why, 0, sizeof(why));
    assert_false(reads(V1,
                       "syntax = \"proto3\";\npackage t;\nmessage Ev {\n  string id = 1;\n"
                       "  int32 n = 2;\n  repeated string tags = 3;\n}\n",
                       &why));
    assert_non_null(strstr(why.msg, "t.Ev.In was removed"));
    /* proto2: a new required field the writer never sends */
    memset(&why, 0, sizeof(why));
    assert_false(reads("syntax = \"proto2\";\nmessage M { optional string a = 1; }\n",
                       "syntax = \"proto2\";\nmessage M { optional string a = 1; "
                       "required int32 b = 2; }\n",
                       &why));
    assert_non_null(strstr(why.msg, "required field 2"));
}

static void test_base64(void **state)
{
    const uint8_t data[] = {0, 1, 2, 0xfe, 0xff, 'a', 'b'};
    char enc[32];
    uint8_t dec[32];
    (void)state;
    for (size_t n = 0; n <= sizeof(data); n++) {
        size_t el = reg_base64_encode(data, n, enc);
        assert_int_equal(el, 4 * ((n + 2) / 3));
        assert_int_equal(reg_base64_decode(enc, el, dec), (long)n);
        assert_memory_equal(dec, data, n);
    }
    reg_base64_encode((const uint8_t *)"Man", 3, enc);
    assert_string_equal(enc, "TWFu");
    assert_int_equal(reg_base64_decode("TW=u", 4, dec), -1);
    assert_int_equal(reg_base64_decode("TWF", 3, dec), -1);
    assert_int_equal(reg_base64_decode("T!Fu", 4, dec), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_and_descriptor),
        cmocka_unit_test(test_invalid_text),
        cmocka_unit_test(test_protoc_timeout),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_base64),
    };
    sl_log_init(SL_LOG_WARN, "test");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
