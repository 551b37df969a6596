/* libFuzzer target for common/sl_json.c: scans the input three ways (every token, skipping
 * containers, a small depth limit) and checks that spans, decoding and number conversion stay
 * in bounds and agree with each other. Also built with replay_main.c to replay the corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct {
    int is_ok;
    const char *err;
    size_t err_pos;
    unsigned max_depth_seen;
} outcome_t;

static int is_json_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Decoded strings of a validated span must be well-formed UTF-8 with no surrogates. Written
 * independently of the scanner's validator, as a decode-to-code-point loop. */
static int utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if ((s[i] & 0xE0) == 0xC0) {
            cp = s[i] & 0x1F;
            k = 1;
        } else if ((s[i] & 0xF0) == 0xE0) {
            cp = s[i] & 0x0F;
            k = 2;
        } else if ((s[i] & 0xF8) == 0xF0) {
            cp = s[i] & 0x07;
            k = 3;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0;
        for (size_t m = 1; m <= k; m++) {
            if ((s[i + m] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + m] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static void check_string(const sl_json_t *j, const uint8_t *data)
{
    char *out;
    size_t n;

    CHECK(j->tok_end - j->tok_start >= 2);
    CHECK(data[j->tok_start] == '"' && data[j->tok_end - 1] == '"');
    CHECK(j->str == (const char *)data + j->tok_start + 1);
    CHECK(j->str_len == j->tok_end - j->tok_start - 2);
    CHECK(!j->str_has_escapes == !memchr(j->str, '\\', j->str_len));
    CHECK(utf8_ok((const uint8_t *)j->str, j->str_len));

    /* exactly str_len bytes, so ASan sees any write past the promised bound */
    out = malloc(j->str_len ? j->str_len : 1);
    CHECK(out != NULL);
    n = sl_json_unescape(j->str, j->str_len, out);
    CHECK(n <= j->str_len);
    if (!j->str_has_escapes)
        CHECK(n == j->str_len && memcmp(out, j->str, n) == 0);
    CHECK(utf8_ok((const uint8_t *)out, n));
    free(out);
}

static void check_number(const sl_json_t *j, const uint8_t *data)
{
    int64_t v = 0;
    double d;
    int rc, is_int = 1;
    char buf[32];

    CHECK(j->str == (const char *)data + j->tok_start);
    CHECK(j->str_len == j->tok_end - j->tok_start && j->str_len > 0);
    for (size_t i = 0; i < j->str_len; i++)
        if (j->str[i] == '.' || j->str[i] == 'e' || j->str[i] == 'E')
            is_int = 0;
    rc = sl_json_to_i64(j->str, j->str_len, &v);
    if (!is_int) {
        CHECK(rc == -1);
    } else if (rc == 0) {
        /* the value prints back as the same text ("-0" is 0) */
        snprintf(buf, sizeof(buf), "%lld", (long long)v);
        if (j->str_len == 2 && memcmp(j->str, "-0", 2) == 0)
            CHECK(v == 0);
        else
            CHECK(strlen(buf) == j->str_len && memcmp(buf, j->str, j->str_len) == 0);
    } else {
        CHECK(rc == -2);
        CHECK(j->str_len >= 19);
    }
    rc = sl_json_to_double(j->str, j->str_len, &d);
    CHECK(rc == 0 || rc == -1);
}

/* Pass 1: every token, with per-token invariants. */
static outcome_t scan_tokens(const uint8_t *data, size_t size)
{
    outcome_t o = {0, NULL, 0, 0};
    sl_json_t j;
    sl_json_tok_t t, prev = SL_JSON_END;
    size_t last_end = 0;
    unsigned depth = 0;

    sl_json_init(&j, (const char *)data, size, SL_JSON_MAX_DEPTH_LIMIT);
    for (;;) {
        t = sl_json_next(&j);
        if (t == SL_JSON_ERROR) {
            CHECK(j.err != NULL);
            CHECK(j.err_pos <= size);
            CHECK(j.err_pos >= last_end);
            CHECK(sl_json_next(&j) == SL_JSON_ERROR);
            CHECK(sl_json_skip(&j, SL_JSON_OBJ_BEGIN) == -1);
            o.err = j.err;
            o.err_pos = j.err_pos;
            return o;
        }
        CHECK(j.tok_start <= j.tok_end && j.tok_end <= size);
        CHECK(j.tok_start >= last_end);
        for (size_t i = last_end; i < j.tok_start; i++) /* only separators between tokens */
            CHECK(is_json_ws(data[i]) || data[i] == ',' || data[i] == ':');
        last_end = j.tok_end;
        switch (t) {
        case SL_JSON_END:
            CHECK(depth == 0 && j.tok_start == size);
            CHECK(sl_json_next(&j) == SL_JSON_END);
            o.is_ok = 1;
            return o;
        case SL_JSON_OBJ_BEGIN:
        case SL_JSON_ARR_BEGIN:
            CHECK(data[j.tok_start] == (t == SL_JSON_OBJ_BEGIN ? '{' : '['));
            CHECK(j.tok_end == j.tok_start + 1);
            depth++;
            if (depth > o.max_depth_seen)
                o.max_depth_seen = depth;
            break;
        case SL_JSON_OBJ_END:
        case SL_JSON_ARR_END:
            CHECK(data[j.tok_start] == (t == SL_JSON_OBJ_END ? '}' : ']'));
            CHECK(j.tok_end == j.tok_start + 1);
            CHECK(depth > 0);
            depth--;
            break;
        case SL_JSON_KEY:
            CHECK(prev != SL_JSON_KEY);
            check_string(&j, data);
            break;
        case SL_JSON_STRING:
            check_string(&j, data);
            break;
        case SL_JSON_NUMBER:
            check_number(&j, data);
            break;
        case SL_JSON_TRUE:
            CHECK(j.tok_end - j.tok_start == 4 && memcmp(data + j.tok_start, "true", 4) == 0);
            break;
        case SL_JSON_FALSE:
            CHECK(j.tok_end - j.tok_start == 5 && memcmp(data + j.tok_start, "false", 5) == 0);
            break;
        case SL_JSON_NULL:
            CHECK(j.tok_end - j.tok_start == 4 && memcmp(data + j.tok_start, "null", 4) == 0);
            break;
        default:
            CHECK(0);
        }
        CHECK(sl_json_depth(&j) == depth);
        prev = t;
    }
}

/* Pass 2: skip every other container (and every member whose key is odd-length): skip must
 * validate exactly as much as the full scan, so the outcome is identical. */
static void scan_skipping(const uint8_t *data, size_t size, const outcome_t *full)
{
    sl_json_t j;
    sl_json_tok_t t;
    unsigned n = 0;

    sl_json_init(&j, (const char *)data, size, SL_JSON_MAX_DEPTH_LIMIT);
    for (;;) {
        t = sl_json_next(&j);
        if (t == SL_JSON_ERROR || t == SL_JSON_END)
            break;
        if ((t == SL_JSON_OBJ_BEGIN || t == SL_JSON_ARR_BEGIN) && (n++ & 1)) {
            size_t start = j.tok_start;
            unsigned depth = sl_json_depth(&j);
            if (sl_json_skip(&j, t) != 0) {
                t = SL_JSON_ERROR;
                break;
            }
            CHECK(sl_json_depth(&j) == depth - 1);
            CHECK(j.tok_end > start && j.tok_end <= size);
            CHECK(data[j.tok_end - 1] == (t == SL_JSON_OBJ_BEGIN ? '}' : ']'));
        } else if (t == SL_JSON_KEY && (j.str_len & 1)) {
            unsigned depth = sl_json_depth(&j);
            if (sl_json_skip(&j, t) != 0) {
                t = SL_JSON_ERROR;
                break;
            }
            CHECK(sl_json_depth(&j) == depth);
        }
    }
    if (full->is_ok) {
        CHECK(t == SL_JSON_END);
    } else {
        CHECK(t == SL_JSON_ERROR);
        CHECK(j.err == full->err && j.err_pos == full->err_pos);
    }
}

/* Pass 3: a small depth limit accepts exactly the valid documents that fit in it. */
static void scan_shallow(const uint8_t *data, size_t size, const outcome_t *full)
{
    unsigned limit = 1 + (unsigned)(size % 8);
    sl_json_t j;
    sl_json_tok_t t;

    sl_json_init(&j, (const char *)data, size, limit);
    while ((t = sl_json_next(&j)) > SL_JSON_END)
        CHECK(sl_json_depth(&j) <= limit);
    if (full->is_ok && full->max_depth_seen <= limit)
        CHECK(t == SL_JSON_END);
    else if (full->is_ok)
        CHECK(t == SL_JSON_ERROR && strcmp(j.err, "nesting too deep") == 0);
    else
        CHECK(t == SL_JSON_ERROR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome_t full = scan_tokens(data, size);
    scan_skipping(data, size, &full);
    scan_shallow(data, size, &full);
    return 0;
}
