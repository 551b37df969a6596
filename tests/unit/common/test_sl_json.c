/* Unit tests for the strict JSON pull scanner (common/sl_json.c): token streams and spans, every
 * error class with its message and offset, UTF-8 and escape edge cases, depth limits, skip,
 * unescape and the number conversions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sl_json.h"

#define LIT(s) (s), (sizeof(s) - 1)

/* One expected token: kind, [start, end) and, for KEY/STRING/NUMBER, the span text. */
typedef struct {
    sl_json_tok_t tok;
    size_t start, end;
    const char *text;
} exp_tok_t;

static void expect_tokens(const char *in, size_t len, const exp_tok_t *exp, size_t n)
{
    sl_json_t j;
    sl_json_init(&j, in, len, 64);
    for (size_t i = 0; i < n; i++) {
        sl_json_tok_t t = sl_json_next(&j);
        if (t != exp[i].tok)
            fail_msg("token %zu: got %d want %d (err %s at %zu)", i, (int)t, (int)exp[i].tok,
                     j.err ? j.err : "-", j.err_pos);
        assert_int_equal(j.tok_start, exp[i].start);
        assert_int_equal(j.tok_end, exp[i].end);
        if (exp[i].text) {
            assert_int_equal(j.str_len, strlen(exp[i].text));
            assert_memory_equal(j.str, exp[i].text, j.str_len);
        }
    }
    assert_int_equal(sl_json_next(&j), SL_JSON_END);
    assert_int_equal(sl_json_next(&j), SL_JSON_END);
    assert_null(j.err);
}

/* Scans to the end; returns NULL if the document is valid, else the error (position in *pos). */
static const char *scan_all_depth(const char *in, size_t len, unsigned max_depth, size_t *pos)
{
    sl_json_t j;
    sl_json_tok_t t;
    sl_json_init(&j, in, len, max_depth);
    while ((t = sl_json_next(&j)) > SL_JSON_END)
        ;
    if (t == SL_JSON_END) {
        assert_int_equal(j.tok_start, len);
        return NULL;
    }
    assert_non_null(j.err);
    /* errors are sticky and do not move */
    assert_int_equal(sl_json_next(&j), SL_JSON_ERROR);
    assert_int_equal(sl_json_next(&j), SL_JSON_ERROR);
    assert_true(j.err_pos <= len);
    if (pos)
        *pos = j.err_pos;
    return j.err;
}

static const char *scan_all(const char *in, size_t len, size_t *pos)
{
    return scan_all_depth(in, len, SL_JSON_MAX_DEPTH_LIMIT, pos);
}

typedef struct {
    const char *in;
    size_t len;
    const char *err; /* NULL: valid */
    size_t pos;
} case_t;

/* clang-format off */
#define OK(s) {(s), sizeof(s) - 1, NULL, 0}
#define BAD(s, e, p) {(s), sizeof(s) - 1, (e), (p)}
/* clang-format on */

static void run_cases(const case_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t pos = (size_t)-1;
        const char *err = scan_all(c[i].in, c[i].len, &pos);
        if (c[i].err == NULL) {
            if (err)
                fail_msg("case %zu %.*s: unexpected error \"%s\" at %zu", i, (int)c[i].len, c[i].in,
                         err, pos);
            continue;
        }
        if (!err)
            fail_msg("case %zu %.*s: accepted, want \"%s\"", i, (int)c[i].len, c[i].in, c[i].err);
        if (strcmp(err, c[i].err) != 0 || pos != c[i].pos)
            fail_msg("case %zu %.*s: got \"%s\" at %zu, want \"%s\" at %zu", i, (int)c[i].len,
                     c[i].in, err, pos, c[i].err, c[i].pos);
    }
}

#define RUN_CASES(arr) run_cases((arr), sizeof(arr) / sizeof((arr)[0]))

static void test_nested_token_sequence(void **state)
{
    static const char in[] = "{\"a\":[1,{\"b\":null}],\"c\":\"x\\ny\",\"d\":{}}";
    static const exp_tok_t exp[] = {
        {SL_JSON_OBJ_BEGIN, 0, 1, NULL},   {SL_JSON_KEY, 1, 4, "a"},
        {SL_JSON_ARR_BEGIN, 5, 6, NULL},   {SL_JSON_NUMBER, 6, 7, "1"},
        {SL_JSON_OBJ_BEGIN, 8, 9, NULL},   {SL_JSON_KEY, 9, 12, "b"},
        {SL_JSON_NULL, 13, 17, NULL},      {SL_JSON_OBJ_END, 17, 18, NULL},
        {SL_JSON_ARR_END, 18, 19, NULL},   {SL_JSON_KEY, 20, 23, "c"},
        {SL_JSON_STRING, 24, 30, "x\\ny"}, {SL_JSON_KEY, 31, 34, "d"},
        {SL_JSON_OBJ_BEGIN, 35, 36, NULL}, {SL_JSON_OBJ_END, 36, 37, NULL},
        {SL_JSON_OBJ_END, 37, 38, NULL},
    };
    expect_tokens(LIT(in), exp, sizeof(exp) / sizeof(exp[0]));
}

static void test_whitespace_and_spans(void **state)
{
    static const char in[] = " \t\r\n{ \"k\" :\n[ true , false,-1.5e+3 ] , \"e\":[ ] }\n ";
    static const exp_tok_t exp[] = {
        {SL_JSON_OBJ_BEGIN, 4, 5, NULL},   {SL_JSON_KEY, 6, 9, "k"},
        {SL_JSON_ARR_BEGIN, 12, 13, NULL}, {SL_JSON_TRUE, 14, 18, NULL},
        {SL_JSON_FALSE, 21, 26, NULL},     {SL_JSON_NUMBER, 27, 34, "-1.5e+3"},
        {SL_JSON_ARR_END, 35, 36, NULL},   {SL_JSON_KEY, 39, 42, "e"},
        {SL_JSON_ARR_BEGIN, 43, 44, NULL}, {SL_JSON_ARR_END, 45, 46, NULL},
        {SL_JSON_OBJ_END, 47, 48, NULL},
    };
    expect_tokens(LIT(in), exp, sizeof(exp) / sizeof(exp[0]));
}

static void test_depth_and_escape_flag(void **state)
{
    static const char in[] = "{\"a\\u0041\":[\"plain\",\"t\\t\"]}";
    sl_json_t j;
    sl_json_init(&j, LIT(in), 8);
    assert_int_equal(sl_json_depth(&j), 0);
    assert_int_equal(sl_json_next(&j), SL_JSON_OBJ_BEGIN);
    assert_int_equal(sl_json_depth(&j), 1);
    assert_int_equal(sl_json_next(&j), SL_JSON_KEY);
    assert_true(j.str_has_escapes);
    assert_int_equal(sl_json_next(&j), SL_JSON_ARR_BEGIN);
    assert_int_equal(sl_json_depth(&j), 2);
    assert_int_equal(sl_json_next(&j), SL_JSON_STRING);
    assert_false(j.str_has_escapes);
    assert_true(SL_JSON_EQ(j.str, j.str_len, "plain"));
    assert_int_equal(sl_json_next(&j), SL_JSON_STRING);
    assert_true(j.str_has_escapes);
    assert_int_equal(sl_json_next(&j), SL_JSON_ARR_END);
    assert_int_equal(sl_json_depth(&j), 1);
    assert_int_equal(sl_json_next(&j), SL_JSON_OBJ_END);
    assert_int_equal(sl_json_depth(&j), 0);
    assert_int_equal(sl_json_next(&j), SL_JSON_END);
}

/* A caller copies a whole value by slicing from OBJ_BEGIN's tok_start to OBJ_END's tok_end. */
static void test_slice_whole_value(void **state)
{
    static const char in[] = "{\"id\":1,\"properties\": {\"url\":\"/a\",\"n\":[1,{}]} ,\"z\":0}";
    sl_json_t j;
    size_t start;
    sl_json_init(&j, LIT(in), 16);
    assert_int_equal(sl_json_next(&j), SL_JSON_OBJ_BEGIN);
    assert_int_equal(sl_json_next(&j), SL_JSON_KEY);
    assert_int_equal(sl_json_next(&j), SL_JSON_NUMBER);
    assert_int_equal(sl_json_next(&j), SL_JSON_KEY);
    assert_true(SL_JSON_EQ(j.str, j.str_len, "properties"));
    assert_int_equal(sl_json_next(&j), SL_JSON_OBJ_BEGIN);
    start = j.tok_start;
    assert_int_equal(sl_json_skip(&j, SL_JSON_OBJ_BEGIN), 0);
    assert_int_equal(j.tok_end - start, strlen("{\"url\":\"/a\",\"n\":[1,{}]}"));
    assert_memory_equal(in + start, "{\"url\":\"/a\",\"n\":[1,{}]}", j.tok_end - start);
    assert_int_equal(sl_json_next(&j), SL_JSON_KEY);
    assert_true(SL_JSON_EQ(j.str, j.str_len, "z"));
}

static void test_top_level_scalars(void **state)
{
    static const struct {
        const char *in;
        sl_json_tok_t tok;
        const char *text;
    } c[] = {
        {"0", SL_JSON_NUMBER, "0"},      {" -12.5e-3 ", SL_JSON_NUMBER, "-12.5e-3"},
        {"\"s\"", SL_JSON_STRING, "s"},  {"\"\"", SL_JSON_STRING, ""},
        {"true", SL_JSON_TRUE, NULL},    {"false\n", SL_JSON_FALSE, NULL},
        {"\tnull", SL_JSON_NULL, NULL},  {"[]", SL_JSON_ARR_BEGIN, NULL},
        {"{}", SL_JSON_OBJ_BEGIN, NULL},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        sl_json_t j;
        sl_json_tok_t t;
        sl_json_init(&j, c[i].in, strlen(c[i].in), 4);
        t = sl_json_next(&j);
        assert_int_equal(t, c[i].tok);
        if (c[i].text) {
            assert_int_equal(j.str_len, strlen(c[i].text));
            assert_memory_equal(j.str, c[i].text, j.str_len);
        }
        assert_int_equal(sl_json_skip(&j, t), 0);
        assert_int_equal(sl_json_next(&j), SL_JSON_END);
        assert_int_equal(j.tok_start, strlen(c[i].in));
        assert_int_equal(sl_json_next(&j), SL_JSON_END);
    }
}

static void test_empty_and_whitespace_only(void **state)
{
    static const case_t c[] = {
        BAD("", "unexpected end of input", 0), BAD(" ", "unexpected end of input", 1),
        BAD(" \t\r\n ", "unexpected end of input", 5),
        /* only the four RFC 8259 whitespace bytes count */
        BAD("\v1", "unexpected character", 0), BAD("\f1", "unexpected character", 0),
        BAD("\xC2\xA0\x31", "unexpected character", 0), /* NBSP then "1" */
    };
    RUN_CASES(c);
}

static void test_trailing_garbage(void **state)
{
    static const case_t c[] = {
        BAD("1 2", "trailing characters after value", 2),
        BAD("{} x", "trailing characters after value", 3),
        BAD("[]]", "trailing characters after value", 2),
        BAD("{}{}", "trailing characters after value", 2),
        BAD("\"a\" \"b\"", "trailing characters after value", 4),
        BAD("null,", "trailing characters after value", 4),
        BAD("true\0", "trailing characters after value", 4),
        BAD("nullx", "unexpected character", 4),
        BAD("1x", "invalid number", 1),
        OK("{}  \r\n\t"),
    };
    RUN_CASES(c);
}

static void test_structure_errors(void **state)
{
    static const case_t c[] = {
        BAD("[1,]", "unexpected character", 3),
        BAD("{\"a\":1,}", "unexpected character", 7),
        BAD("[,1]", "unexpected character", 1),
        BAD("{,}", "unexpected character", 1),
        BAD("{\"a\" 1}", "unexpected character", 5),
        BAD("{\"a\"::1}", "unexpected character", 5),
        BAD("{\"a\":}", "unexpected character", 5),
        BAD("{1:2}", "unexpected character", 1),
        BAD("{null:2}", "unexpected character", 1),
        BAD("{\"a\":1 \"b\":2}", "unexpected character", 7),
        BAD("[1 2]", "unexpected character", 3),
        BAD("[1}", "unexpected character", 2),
        BAD("{\"a\":1]", "unexpected character", 6),
        BAD("[\"a\":1]", "unexpected character", 4),
        BAD("}", "unexpected character", 0),
        BAD("]", "unexpected character", 0),
        BAD("'a'", "unexpected character", 0),
        BAD("['a']", "unexpected character", 1),
        BAD("// c\n1", "unexpected character", 0),
        BAD("[1/* c */]", "unexpected character", 2),
        BAD("NaN", "unexpected character", 0),
        BAD("Infinity", "unexpected character", 0),
        BAD("[undefined]", "unexpected character", 1),
        BAD("tru", "unexpected end of input", 3),
        BAD("trUe", "unexpected character", 2),
        BAD("nul", "unexpected end of input", 3),
        BAD("True", "unexpected character", 0),
        BAD("falsey", "unexpected character", 5),
        BAD("[nulll]", "unexpected character", 5),
        BAD("\xEF\xBB\xBF{}", "unexpected character", 0), /* no BOM */
        BAD("[\xC3\xA9]", "unexpected character", 1),
        BAD("\0", "unexpected character", 0),
        BAD("[1,\0]", "unexpected character", 3),
        BAD("{\"a\"\0:1}", "unexpected character", 4),
    };
    RUN_CASES(c);
}

static void test_unexpected_end(void **state)
{
    static const case_t c[] = {
        BAD("[", "unexpected end of input", 1),
        BAD("{", "unexpected end of input", 1),
        BAD("{ ", "unexpected end of input", 2),
        BAD("{\"a\"", "unexpected end of input", 4),
        BAD("{\"a\":", "unexpected end of input", 5),
        BAD("{\"a\":1", "unexpected end of input", 6),
        BAD("{\"a\":1,", "unexpected end of input", 7),
        BAD("[1", "unexpected end of input", 2),
        BAD("[1,", "unexpected end of input", 3),
        BAD("[[[]]", "unexpected end of input", 5),
        BAD("[fals", "unexpected end of input", 5),
    };
    RUN_CASES(c);
}

static void test_numbers(void **state)
{
    static const case_t c[] = {
        /* clang-format off */
        OK("0"), OK("-0"), OK("1"), OK("-1"), OK("10"), OK("0.5"), OK("-0.5"), OK("1e5"),
        OK("1E5"), OK("1e+5"), OK("1e-5"), OK("0e0"), OK("-0.0E-00"), OK("1.5e10"),
        OK("123456789012345678901234567890"), OK("[0,-0,1.25,2e3]"), OK("{\"n\":-7}"),
        /* clang-format on */
        BAD("01", "invalid number", 1),
        BAD("-01", "invalid number", 2),
        BAD("00", "invalid number", 1),
        BAD("[01]", "invalid number", 2),
        BAD("-", "invalid number", 1),
        BAD("[-]", "invalid number", 2),
        BAD("-a", "invalid number", 1),
        BAD("- 1", "invalid number", 1),
        BAD("-Infinity", "invalid number", 1),
        BAD("1.", "invalid number", 2),
        BAD("[1.]", "invalid number", 3),
        BAD("1.e5", "invalid number", 2),
        BAD(".5", "unexpected character", 0),
        BAD("+1", "unexpected character", 0),
        BAD("1e", "invalid number", 2),
        BAD("1e+", "invalid number", 3),
        BAD("1E-x", "invalid number", 3),
        BAD("0x1F", "invalid number", 1),
        BAD("1.2.3", "invalid number", 3),
        BAD("1-2", "invalid number", 1),
        BAD("1e5e5", "invalid number", 3),
    };
    RUN_CASES(c);
}

static void test_string_escapes(void **state)
{
    static const case_t c[] = {
        OK("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""),
        OK("\"\\u0041\\u00e9\\u20AC\\uFFFF\\u0000\""),
        OK("\"\\uD83D\\uDE00\""),
        OK("\"\\udbff\\udfff\""),
        OK("\"a\x7f\x62\""), /* "a<DEL>b": DEL is not a control character for JSON */
        BAD("\"\\x\"", "invalid escape", 1),
        BAD("\"\\'\"", "invalid escape", 1),
        BAD("\"\\a\"", "invalid escape", 1),
        BAD("\"\\U0041\"", "invalid escape", 1),
        BAD("\"ab\\u12G4\"", "invalid escape", 3),
        BAD("\"\\u12\"", "invalid escape", 1),
        BAD("\"\\u\"", "invalid escape", 1),
        BAD("\"\\\0\"", "invalid escape", 1),
        BAD("\"\\uD800\\uZZZZ\"", "invalid escape", 7),
        BAD("\"\\", "unterminated string", 2),
        BAD("\"\\u00", "unterminated string", 5),
        BAD("\"\\uD800", "unterminated string", 7),
        BAD("\"\\uD800\\", "unterminated string", 8),
        BAD("\"\\uD800\\uDC", "unterminated string", 11),
    };
    RUN_CASES(c);
}

static void test_lone_surrogates(void **state)
{
    static const case_t c[] = {
        BAD("\"\\uDC00\"", "lone surrogate", 1),
        BAD("\"x\\uDFFF\\uD800\"", "lone surrogate", 2),
        BAD("\"\\uD800\"", "lone surrogate", 1),
        BAD("\"\\uD800x\"", "lone surrogate", 1),
        BAD("\"\\uDBFF\\n\"", "lone surrogate", 1),
        BAD("\"\\uD800\\u0041\"", "lone surrogate", 1),
        BAD("\"\\uD800\\uD800\"", "lone surrogate", 1),
        BAD("\"\\uD800\\uE000\"", "lone surrogate", 1),
        BAD("{\"\\uD834\":1}", "lone surrogate", 2),
    };
    RUN_CASES(c);
}

static void test_control_and_unterminated(void **state)
{
    static const case_t c[] = {
        BAD("\"a\nb\"", "control character in string", 2),
        BAD("\"\t\"", "control character in string", 1),
        BAD("\"abcdefghijklmnop\x1f\"", "control character in string", 17),
        BAD("\"ab\0cd\"", "control character in string", 3),
        BAD("{\"k\r\":1}", "control character in string", 3),
        BAD("\"abc", "unterminated string", 4),
        BAD("\"", "unterminated string", 1),
        BAD("[\"abcdefghijklmnopqrstuvwxyz", "unterminated string", 28),
        BAD("{\"key", "unterminated string", 5),
    };
    RUN_CASES(c);
}

static void test_utf8(void **state)
{
    static const case_t c[] = {
        OK("\"\xC2\x80\""),         /* U+0080, smallest 2-byte */
        OK("\"\xDF\xBF\""),         /* U+07FF */
        OK("\"\xE0\xA0\x80\""),     /* U+0800, smallest 3-byte */
        OK("\"\xED\x9F\xBF\""),     /* U+D7FF, just below the surrogates */
        OK("\"\xEE\x80\x80\""),     /* U+E000, just above */
        OK("\"\xEF\xBF\xBF\""),     /* U+FFFF */
        OK("\"\xF0\x90\x80\x80\""), /* U+10000, smallest 4-byte */
        OK("\"\xF4\x8F\xBF\xBF\""), /* U+10FFFF, the last code point */
        OK("\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE6\x97\xA5\xE6\x9C\xAC\""),
        BAD("\"\xC0\x80\"", "invalid UTF-8 in string", 1),
        BAD("\"\xC1\xBF\"", "invalid UTF-8 in string", 1),
        BAD("\"\xE0\x80\x80\"", "invalid UTF-8 in string", 1),
        BAD("\"\xE0\x9F\xBF\"", "invalid UTF-8 in string", 1),
        BAD("\"\xED\xA0\x80\"", "invalid UTF-8 in string", 1), /* U+D800 */
        BAD("\"\xED\xBF\xBF\"", "invalid UTF-8 in string", 1), /* U+DFFF */
        BAD("\"\xF0\x80\x80\x80\"", "invalid UTF-8 in string", 1),
        BAD("\"\xF0\x8F\xBF\xBF\"", "invalid UTF-8 in string", 1),
        BAD("\"\xF4\x90\x80\x80\"", "invalid UTF-8 in string", 1), /* U+110000 */
        BAD("\"\xF5\x80\x80\x80\"", "invalid UTF-8 in string", 1),
        BAD("\"\xFF\"", "invalid UTF-8 in string", 1),
        BAD("\"\xFE\"", "invalid UTF-8 in string", 1),
        BAD("\"ab\x80\"", "invalid UTF-8 in string", 3), /* stray continuation */
        BAD("\"\xC3\xA9\xA9\"", "invalid UTF-8 in string", 3),
        BAD("\"\xC2\x41\"", "invalid UTF-8 in string", 1),
        BAD("\"\xE2\x82\"", "invalid UTF-8 in string", 1),     /* truncated before the quote */
        BAD("\"\xF0\x9F\x98\"", "invalid UTF-8 in string", 1), /* truncated before the quote */
        BAD("\"0123456789\xE2\x82\"", "invalid UTF-8 in string", 11),
        BAD("{\"k\xC0\xAF\":1}", "invalid UTF-8 in string", 3),
        /* cut by the end of input: the string cannot close either */
        BAD("\"\xE2\x82", "unterminated string", 3),
        BAD("\"\xF0\x9F\x98", "unterminated string", 4),
        BAD("\"\xC3", "unterminated string", 2),
        BAD("\"\xE2\x41", "invalid UTF-8 in string", 1),
    };
    RUN_CASES(c);
}

/* Printable ASCII and DEL, never a quote or a backslash. */
static char plain_byte(size_t i)
{
    char c = (char)(0x20 + (i * 7) % 96); /* 0x20..0x7f */
    return c == '"' || c == '\\' ? 'x' : c;
}

/* The 8-byte fast path must stop at the exact byte, wherever it falls in the word. */
static void test_fast_path_offsets(void **state)
{
    static const char specials[] = {'"', '\\', '\n', '\x01', '\x1f', '\x80', '\xff', '\0'};
    char buf[64];
    for (size_t k = 0; k < 40; k++) {
        for (size_t s = 0; s < sizeof(specials); s++) {
            size_t len = 0, pos = 0;
            const char *err;
            sl_json_t j;
            buf[len++] = '"';
            for (size_t i = 0; i < k; i++)
                buf[len++] = plain_byte(i);
            buf[len++] = specials[s];
            memcpy(buf + len, "zz\"", 3);
            len += 3;
            err = scan_all(buf, len, &pos);
            switch (specials[s]) {
            case '"':
                assert_string_equal(err ? err : "-", "trailing characters after value");
                assert_int_equal(pos, k + 2);
                sl_json_init(&j, buf, len, 4);
                assert_int_equal(sl_json_next(&j), SL_JSON_STRING);
                assert_int_equal(j.str_len, k);
                assert_int_equal(j.tok_end, k + 2);
                break;
            case '\\':
                assert_string_equal(err ? err : "-", "invalid escape");
                assert_int_equal(pos, k + 1);
                break;
            case '\x80':
            case '\xff':
                assert_string_equal(err ? err : "-", "invalid UTF-8 in string");
                assert_int_equal(pos, k + 1);
                break;
            default:
                assert_string_equal(err ? err : "-", "control character in string");
                assert_int_equal(pos, k + 1);
                break;
            }
        }
    }
}

static void test_depth_limit(void **state)
{
    size_t pos;
    /* exactly at the limit is fine, one more level fails at the opening bracket */
    assert_null(scan_all_depth(LIT("[[[]]]"), 3, NULL));
    assert_null(scan_all_depth(LIT("{\"a\":{\"b\":[1]}}"), 3, NULL));
    assert_string_equal(scan_all_depth(LIT("[[[[]]]]"), 3, &pos), "nesting too deep");
    assert_int_equal(pos, 3);
    assert_string_equal(scan_all_depth(LIT("{\"a\":{\"b\":[{}]}}"), 3, &pos), "nesting too deep");
    assert_int_equal(pos, 11);
    /* 0 is clamped to 1; more than the hard limit is clamped to it */
    assert_null(scan_all_depth(LIT("[1]"), 0, NULL));
    assert_string_equal(scan_all_depth(LIT("[[]]"), 0, &pos), "nesting too deep");
    assert_int_equal(pos, 1);
}

/* Alternating objects and arrays up to the hard limit exercise every bit of the depth stack. */
static size_t build_alternating(char *buf, unsigned depth, int break_at)
{
    size_t n = 0;
    for (unsigned d = 0; d < depth; d++) {
        if (d % 2 == 0) {
            memcpy(buf + n, "{\"k\":", 5);
            n += 5;
        } else {
            buf[n++] = '[';
        }
    }
    buf[n++] = '1';
    for (unsigned d = depth; d-- > 0;) {
        char close = d % 2 == 0 ? '}' : ']';
        if ((int)d == break_at)
            close = close == '}' ? ']' : '}';
        buf[n++] = close;
    }
    return n;
}

static void test_depth_hard_limit_bit_stack(void **state)
{
    char *buf = malloc(8 * (SL_JSON_MAX_DEPTH_LIMIT + 2));
    size_t len, pos;
    assert_non_null(buf);
    len = build_alternating(buf, SL_JSON_MAX_DEPTH_LIMIT, -1);
    assert_null(scan_all_depth(buf, len, 100000, NULL));
    len = build_alternating(buf, SL_JSON_MAX_DEPTH_LIMIT + 1, -1);
    assert_string_equal(scan_all_depth(buf, len, 100000, &pos), "nesting too deep");
    /* a wrong closer at any level is caught, including levels that share a stack byte */
    for (int at = 0; at < SL_JSON_MAX_DEPTH_LIMIT; at += 37) {
        len = build_alternating(buf, SL_JSON_MAX_DEPTH_LIMIT, at);
        assert_string_equal(scan_all_depth(buf, len, SL_JSON_MAX_DEPTH_LIMIT, &pos),
                            "unexpected character");
    }
    free(buf);
}

/* A hostile million-deep document stops at the limit: no recursion, no scan of the rest. */
static void test_million_deep(void **state)
{
    const size_t n = 1000000;
    char *buf = malloc(n);
    size_t pos;
    assert_non_null(buf);
    memset(buf, '[', n);
    assert_string_equal(scan_all(buf, n, &pos), "nesting too deep");
    assert_int_equal(pos, SL_JSON_MAX_DEPTH_LIMIT);
    for (size_t i = 0; i + 5 <= n; i += 5)
        memcpy(buf + i, "{\"a\":", 5);
    assert_string_equal(scan_all_depth(buf, n, 64, &pos), "nesting too deep");
    assert_int_equal(pos, 64 * 5);
    free(buf);
}

static void test_skip(void **state)
{
    static const char in[] = "{\"a\":{\"x\":[1,2,{\"y\":\"z\"}],\"w\":{}},\"b\":[[],[[\"]\"]]],"
                             "\"c\":3,\"d\":\"s\",\"e\":[]}";
    sl_json_t j;
    sl_json_tok_t t;
    sl_json_init(&j, LIT(in), 16);
    assert_int_equal(sl_json_next(&j), SL_JSON_OBJ_BEGIN);
    assert_int_equal(sl_json_next(&j), SL_JSON_KEY);
    t = sl_json_next(&j);
    assert_int_equal(t, SL_JSON_OBJ_BEGIN);
    assert_int_equal(sl_json_skip(&j, t), 0);
    assert_int_equal(sl_json_depth(&j), 1);
    assert_int_equal(j.tok_end, strlen("{\"a\":{\"x\":[1,2,{\"y\":\"z\"}],\"w\":{}}"));
    /* skipping from a KEY skips that member's value */
    assert_int_equal(sl_json_next(&j), SL_JSON_KEY);
    assert_true(SL_JSON_EQ(j.str, j.str_len, "b"));
    assert_int_equal(sl_json_skip(&j, SL_JSON_KEY), 0);
    assert_int_equal(sl_json_next(&j), SL_JSON_KEY);
    assert_true(SL_JSON_EQ(j.str, j.str_len, "c"));
    assert_int_equal(sl_json_skip(&j, SL_JSON_KEY), 0);
    assert_int_equal(sl_json_next(&j), SL_JSON_KEY);
    t = sl_json_next(&j);
    assert_int_equal(t, SL_JSON_STRING);
    assert_int_equal(sl_json_skip(&j, t), 0); /* a scalar: nothing to do */
    assert_int_equal(sl_json_next(&j), SL_JSON_KEY);
    t = sl_json_next(&j);
    assert_int_equal(t, SL_JSON_ARR_BEGIN);
    assert_int_equal(sl_json_skip(&j, t), 0);
    assert_int_equal(sl_json_next(&j), SL_JSON_OBJ_END);
    assert_int_equal(sl_json_next(&j), SL_JSON_END);
}

static void test_skip_validates(void **state)
{
    static const char in[] = "[{\"a\":[1,2,]}, 3]";
    sl_json_t j;
    sl_json_tok_t t;
    sl_json_init(&j, LIT(in), 16);
    assert_int_equal(sl_json_next(&j), SL_JSON_ARR_BEGIN);
    t = sl_json_next(&j);
    assert_int_equal(sl_json_skip(&j, t), -1);
    assert_string_equal(j.err, "unexpected character");
    assert_int_equal(j.err_pos, 11);
    assert_int_equal(sl_json_next(&j), SL_JSON_ERROR);
    assert_int_equal(sl_json_skip(&j, SL_JSON_ERROR), -1);

    /* skipping the top-level value, and an unclosed one */
    sl_json_init(&j, LIT("[[1],{\"a\":[]}] "), 16);
    t = sl_json_next(&j);
    assert_int_equal(sl_json_skip(&j, t), 0);
    assert_int_equal(sl_json_next(&j), SL_JSON_END);
    sl_json_init(&j, LIT("[[1],{\"a\":[]}"), 16);
    t = sl_json_next(&j);
    assert_int_equal(sl_json_skip(&j, t), -1);
    assert_string_equal(j.err, "unexpected end of input");

    /* skipping a member whose value is malformed */
    sl_json_init(&j, LIT("{\"a\":}"), 16);
    assert_int_equal(sl_json_next(&j), SL_JSON_OBJ_BEGIN);
    assert_int_equal(sl_json_next(&j), SL_JSON_KEY);
    assert_int_equal(sl_json_skip(&j, SL_JSON_KEY), -1);
    assert_string_equal(j.err, "unexpected character");
    assert_int_equal(j.err_pos, 5);
}

static void unescape_eq(const char *raw, size_t raw_len, const char *want, size_t want_len)
{
    char out[128], inplace[128];
    size_t n;
    sl_json_t j;
    /* the raw text must be a valid string body first */
    char doc[140];
    assert_true(raw_len + 2 <= sizeof(doc));
    doc[0] = '"';
    memcpy(doc + 1, raw, raw_len);
    doc[raw_len + 1] = '"';
    sl_json_init(&j, doc, raw_len + 2, 1);
    assert_int_equal(sl_json_next(&j), SL_JSON_STRING);

    n = sl_json_unescape(j.str, j.str_len, out);
    assert_int_equal(n, want_len);
    assert_memory_equal(out, want, n);
    assert_true(n <= raw_len);
    memcpy(inplace, raw, raw_len);
    n = sl_json_unescape(inplace, raw_len, inplace);
    assert_int_equal(n, want_len);
    assert_memory_equal(inplace, want, n);
}

#define UNESC(raw, want) unescape_eq(LIT(raw), LIT(want))

static void test_unescape(void **state)
{
    UNESC("", "");
    UNESC("plain text", "plain text");
    UNESC("\\\"\\\\\\/\\b\\f\\n\\r\\t", "\"\\/\b\f\n\r\t");
    UNESC("a\\u0041b", "aAb");
    UNESC("\\u00e9\\u00E9", "\xC3\xA9\xC3\xA9");
    UNESC("\\u07FF\\u0800", "\xDF\xBF\xE0\xA0\x80");
    UNESC("\\u20AC", "\xE2\x82\xAC");
    UNESC("\\uFFFF", "\xEF\xBF\xBF");
    UNESC("\\uD83D\\uDE00", "\xF0\x9F\x98\x80");
    UNESC("x\\uD800\\uDC00y", "x\xF0\x90\x80\x80y");
    UNESC("\\uDBFF\\uDFFF", "\xF4\x8F\xBF\xBF");
    UNESC("\\u0000", "\0");
    UNESC("caf\xC3\xA9\\n", "caf\xC3\xA9\n");
    UNESC("long run before the escape \\t and after it",
          "long run before the escape \t and after it");
}

/* Unvalidated input must not crash or grow: it is passed through as documented. */
static void test_unescape_unvalidated(void **state)
{
    char out[32];
    size_t n;
    n = sl_json_unescape(LIT("a\\"), out);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "a\\", 2);
    n = sl_json_unescape(LIT("\\u12"), out);
    assert_true(n <= 4);
    n = sl_json_unescape(LIT("\\uDC00"), out);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\xEF\xBF\xBD", 3);
    n = sl_json_unescape(LIT("\\uD800\\u0041"), out);
    assert_int_equal(n, 4);
    assert_memory_equal(out,
                        "\xEF\xBF\xBD"
                        "A",
                        4);
    n = sl_json_unescape(LIT("\\q"), out);
    assert_int_equal(n, 1);
    assert_memory_equal(out, "q", 1);
}

static void i64_eq(const char *s, int want_rc, int64_t want)
{
    int64_t v = 12345;
    int rc = sl_json_to_i64(s, strlen(s), &v);
    if (rc != want_rc)
        fail_msg("%s: rc %d want %d", s, rc, want_rc);
    if (rc == 0)
        assert_true(v == want);
    else
        assert_true(v == 12345); /* untouched on failure */
}

static void test_to_i64(void **state)
{
    i64_eq("0", 0, 0);
    i64_eq("-0", 0, 0);
    i64_eq("7", 0, 7);
    i64_eq("-42", 0, -42);
    i64_eq("1700000000123", 0, INT64_C(1700000000123));
    i64_eq("9223372036854775807", 0, INT64_MAX);
    i64_eq("-9223372036854775808", 0, INT64_MIN);
    i64_eq("9223372036854775808", -2, 0);
    i64_eq("-9223372036854775809", -2, 0);
    i64_eq("18446744073709551616", -2, 0);
    i64_eq("99999999999999999999999999999999", -2, 0);
    i64_eq("1.0", -1, 0);
    i64_eq("1e3", -1, 0);
    i64_eq("1E3", -1, 0);
    i64_eq("-0.0", -1, 0);
    i64_eq("99999999999999999999.5", -1, 0);
    i64_eq("99999999999999999999e1", -1, 0);
    i64_eq("", -1, 0);
    i64_eq("-", -1, 0);
    i64_eq("abc", -1, 0);
}

static void test_to_i64_from_scanner(void **state)
{
    static const char in[] = "[-9223372036854775808,9223372036854775807,1.0,1e3,-0]";
    static const int rc[] = {0, 0, -1, -1, 0};
    static const int64_t val[] = {INT64_MIN, INT64_MAX, 0, 0, 0};
    sl_json_t j;
    sl_json_init(&j, LIT(in), 2);
    assert_int_equal(sl_json_next(&j), SL_JSON_ARR_BEGIN);
    for (size_t i = 0; i < 5; i++) {
        int64_t v = 0;
        assert_int_equal(sl_json_next(&j), SL_JSON_NUMBER);
        assert_int_equal(sl_json_to_i64(j.str, j.str_len, &v), rc[i]);
        if (rc[i] == 0)
            assert_true(v == val[i]);
    }
}

static void test_to_double(void **state)
{
    double d = 0;
    char longnum[300];
    assert_int_equal(sl_json_to_double(LIT("1.5"), &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(sl_json_to_double(LIT("-0.25e2"), &d), 0);
    assert_true(d == -25.0);
    assert_int_equal(sl_json_to_double(LIT("123"), &d), 0);
    assert_true(d == 123.0);
    assert_int_equal(sl_json_to_double(LIT("1e-400"), &d), 0); /* underflow rounds to 0 */
    assert_true(d == 0.0);
    /* the span is bounded: the following byte is not read */
    assert_int_equal(sl_json_to_double("2.5e3", 3, &d), 0);
    assert_true(d == 2.5);
    assert_int_equal(sl_json_to_double(LIT("1e999"), &d), -1);
    assert_int_equal(sl_json_to_double(LIT("0x10"), &d), -1);
    assert_int_equal(sl_json_to_double(LIT("inf"), &d), -1);
    assert_int_equal(sl_json_to_double(LIT("nan"), &d), -1);
    assert_int_equal(sl_json_to_double(LIT(" 1"), &d), -1);
    assert_int_equal(sl_json_to_double(LIT(""), &d), -1);
    assert_int_equal(sl_json_to_double(LIT("1.5x"), &d), -1);
    /* longer than the stack copy */
    memset(longnum, '0', sizeof(longnum));
    longnum[0] = '0';
    longnum[1] = '.';
    longnum[sizeof(longnum) - 1] = '5';
    assert_int_equal(sl_json_to_double(longnum, sizeof(longnum), &d), 0);
    assert_true(d > 0 && d < 1e-290);
}

/* A realistic batch: every event is walked member by member, unknown members skipped. */
static void test_batch_walk(void **state)
{
    static const char ev[] =
        "{\"event_id\":\"1b4e28ba-2fa1-11d2-883f-0016d3cca427\",\"event_type\":\"page_view\","
        "\"ts\":1700000000123,\"props\":{\"url\":\"https://e.com/a?b=c\",\"n\":[1,2.5,null]}}";
    char buf[4096];
    size_t len = 0;
    sl_json_t j;
    sl_json_tok_t t;
    int events = 0;
    memcpy(buf + len, "{\"events\":[", 11);
    len += 11;
    for (int i = 0; i < 10; i++) {
        if (i)
            buf[len++] = ',';
        memcpy(buf + len, ev, sizeof(ev) - 1);
        len += sizeof(ev) - 1;
    }
    memcpy(buf + len, "]}", 2);
    len += 2;

    sl_json_init(&j, buf, len, 32);
    assert_int_equal(sl_json_next(&j), SL_JSON_OBJ_BEGIN);
    assert_int_equal(sl_json_next(&j), SL_JSON_KEY);
    assert_int_equal(sl_json_next(&j), SL_JSON_ARR_BEGIN);
    while ((t = sl_json_next(&j)) == SL_JSON_OBJ_BEGIN) {
        int64_t ts = 0;
        events++;
        while ((t = sl_json_next(&j)) == SL_JSON_KEY) {
            if (SL_JSON_EQ(j.str, j.str_len, "ts")) {
                assert_int_equal(sl_json_next(&j), SL_JSON_NUMBER);
                assert_int_equal(sl_json_to_i64(j.str, j.str_len, &ts), 0);
            } else {
                assert_int_equal(sl_json_skip(&j, t), 0);
            }
        }
        assert_int_equal(t, SL_JSON_OBJ_END);
        assert_true(ts == INT64_C(1700000000123));
    }
    assert_int_equal(t, SL_JSON_ARR_END);
    assert_int_equal(events, 10);
    assert_int_equal(sl_json_next(&j), SL_JSON_OBJ_END);
    assert_int_equal(sl_json_next(&j), SL_JSON_END);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_token_sequence),
        cmocka_unit_test(test_whitespace_and_spans),
        cmocka_unit_test(test_depth_and_escape_flag),
        cmocka_unit_test(test_slice_whole_value),
        cmocka_unit_test(test_top_level_scalars),
        cmocka_unit_test(test_empty_and_whitespace_only),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_unexpected_end),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_lone_surrogates),
        cmocka_unit_test(test_control_and_unterminated),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_fast_path_offsets),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_depth_hard_limit_bit_stack),
        cmocka_unit_test(test_million_deep),
        cmocka_unit_test(test_skip),
        cmocka_unit_test(test_skip_validates),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_unescape_unvalidated),
        cmocka_unit_test(test_to_i64),
        cmocka_unit_test(test_to_i64_from_scanner),
        cmocka_unit_test(test_to_double),
        cmocka_unit_test(test_batch_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
