/* Strict RFC 8259 pull scanner: one state switch per token, no recursion, no allocation. String
 * bodies are skipped 16 bytes at a time (SSE2) or 8 (portable SWAR); only quotes, backslashes,
 * control bytes and non-ASCII bytes drop to the byte-wise path that validates escapes and UTF-8. */
#include "sl_json.h"

#include <math.h>
#include <stdlib.h>

#if defined(__GNUC__) && defined(__SSE2__)
#include <emmintrin.h>
#define SL_JSON_SSE2 1
#endif

enum {
    ST_START,       /* nothing read yet: a value must follow */
    ST_ARR_FIRST,   /* after '[': a value or ']' */
    ST_OBJ_FIRST,   /* after '{': a key or '}' */
    ST_AFTER_KEY,   /* after a key: ':' then a value */
    ST_AFTER_VALUE, /* after a complete value: ',' or the closing bracket, or the end at depth 0 */
    ST_END,
    ST_ERROR,
};

/* String body bytes: SC_PLAIN (0) for plain ASCII, else why the fast path has to stop. */
enum { SC_PLAIN, SC_QUOTE, SC_BACKSLASH, SC_CTRL, SC_HIGH };

/* clang-format off */
static const uint8_t str_class[256] = {
    3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3, /* 0x00 */
    0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0x20 '"' */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,0, /* 0x40 '\\' */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0x60 */
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4, 4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4, /* 0x80 */
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4, 4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4, 4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4, 4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
};
/* clang-format on */

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SL_JSON_SWAR_LE 1
#endif

static inline int is_ws(unsigned char c)
{
    /* bits 9 (\t), 10 (\n), 13 (\r) and 32 (space) */
    return c <= ' ' && ((0x100002600ULL >> c) & 1);
}

static inline int is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10;
}

static inline size_t skip_ws(const unsigned char *b, size_t p, size_t len)
{
    while (p < len && is_ws(b[p]))
        p++;
    return p;
}

/* Returns the offset of the first string byte at or after p that is not plain ASCII (a quote, a
 * backslash, < 0x20 or >= 0x80), or len. */
static inline size_t skip_plain(const unsigned char *b, size_t p, size_t len)
{
#ifdef SL_JSON_SSE2
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (len - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + p));
        /* signed compare: bytes >= 0x80 are negative, so "< 0x20" also catches them */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmplt_epi8(v, space));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits)
            return p + (unsigned)__builtin_ctz(bits);
        p += 16;
    }
#endif
    while (len - p >= 8) {
        uint64_t v, q, s, m;
        memcpy(&v, b + p, 8);
        q = v ^ (ONES * '"');
        s = v ^ (ONES * '\\');
        /* A byte's high bit is set if it is 0 in q or s, below 0x20, or >= 0x80. Borrows can only
         * set spurious bits above a byte that really matched, so the lowest flag is exact. */
        m = (((q - ONES) & ~q) | ((s - ONES) & ~s) | (v - ONES * 0x20) | v) & HIGHS;
        if (m) {
#ifdef SL_JSON_SWAR_LE
            return p + ((unsigned)__builtin_ctzll(m) >> 3);
#else
            break;
#endif
        }
        p += 8;
    }
    while (p < len && str_class[b[p]] == SC_PLAIN)
        p++;
    return p;
}

static sl_json_tok_t fail(sl_json_t *j, size_t pos, const char *msg)
{
    j->_state = ST_ERROR;
    j->err = msg;
    j->err_pos = pos;
    j->pos = pos;
    j->tok_start = j->tok_end = pos;
    j->str = NULL;
    j->str_len = 0;
    return SL_JSON_ERROR;
}

/* Length of the UTF-8 sequence at b[p] (a byte >= 0x80), 0 if the input ends inside a sequence
 * that is valid so far, -1 if it is not well-formed (RFC 3629: no overlongs, no surrogates, nothing
 * above U+10FFFF, no stray continuation bytes). */
static int utf8_seq_len(const unsigned char *b, size_t p, size_t len)
{
    unsigned c = b[p], need, lo = 0x80, hi = 0xBF, i;

    if (c < 0xC2)
        return -1; /* continuation byte, or C0/C1 (always overlong) */
    if (c < 0xE0) {
        need = 1;
    } else if (c < 0xF0) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F; /* U+D800..DFFF */
    } else if (c < 0xF5) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return -1;
    }
    for (i = 1; i <= need; i++) {
        unsigned d;
        if (p + i >= len)
            return 0;
        d = b[p + i];
        if (d < lo || d > hi)
            return -1;
        lo = 0x80;
        hi = 0xBF;
    }
    return (int)need + 1;
}

static inline int hex_val(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The four hex digits at b[p..p+4): the code unit, -1 if one is not a hex digit, -2 if the input
 * ends first. */
static long hex4(const unsigned char *b, size_t p, size_t len)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h;
        if (p + i >= len)
            return -2;
        h = hex_val(b[p + i]);
        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    return v;
}

/* Scans the string whose opening quote is at q; on success the span is set and the token kind is
 * returned, the caller sets the next state. */
static sl_json_tok_t scan_string(sl_json_t *j, size_t q, sl_json_tok_t kind)
{
    const unsigned char *b = (const unsigned char *)j->buf;
    size_t len = j->len, p = q + 1;
    int has_escapes = 0;

    for (;;) {
        long u;
        int n;

        p = skip_plain(b, p, len);
        if (p >= len)
            return fail(j, len, "unterminated string");
        if (b[p] == '"') { /* the common case: tested before the table lookup */
            j->str = j->buf + q + 1;
            j->str_len = p - q - 1;
            j->str_has_escapes = has_escapes;
            j->tok_start = q;
            j->tok_end = j->pos = p + 1;
            return kind;
        }
        switch (str_class[b[p]]) {
        case SC_BACKSLASH:
            has_escapes = 1;
            if (p + 1 >= len)
                return fail(j, len, "unterminated string");
            switch (b[p + 1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                p += 2;
                continue;
            case 'u':
                break;
            default:
                return fail(j, p, "invalid escape");
            }
            u = hex4(b, p + 2, len);
            if (u == -2)
                return fail(j, len, "unterminated string");
            if (u < 0)
                return fail(j, p, "invalid escape");
            if (u >= 0xDC00 && u <= 0xDFFF)
                return fail(j, p, "lone surrogate");
            if (u < 0xD800 || u > 0xDBFF) {
                p += 6;
                continue;
            }
            /* a high surrogate: the low half must follow as \uDC00..\uDFFF */
            if (p + 6 >= len)
                return fail(j, len, "unterminated string");
            if (b[p + 6] != '\\')
                return fail(j, p, "lone surrogate");
            if (p + 7 >= len)
                return fail(j, len, "unterminated string");
            if (b[p + 7] != 'u')
                return fail(j, p, "lone surrogate");
            u = hex4(b, p + 8, len);
            if (u == -2)
                return fail(j, len, "unterminated string");
            if (u < 0)
                return fail(j, p + 6, "invalid escape");
            if (u < 0xDC00 || u > 0xDFFF)
                return fail(j, p, "lone surrogate");
            p += 12;
            continue;
        case SC_CTRL:
            return fail(j, p, "control character in string");
        default: /* SC_HIGH */
            n = utf8_seq_len(b, p, len);
            if (n == 0)
                return fail(j, len, "unterminated string");
            if (n < 0)
                return fail(j, p, "invalid UTF-8 in string");
            p += (size_t)n;
            continue;
        }
    }
}

static inline int is_number_tail(unsigned char c)
{
    unsigned char l = c | 0x20;
    return is_digit(c) || c == '.' || c == '+' || c == '-' || (l >= 'a' && l <= 'z');
}

static sl_json_tok_t scan_number(sl_json_t *j, size_t start)
{
    const unsigned char *b = (const unsigned char *)j->buf;
    size_t len = j->len, p = start;

    if (b[p] == '-')
        p++;
    if (p >= len || !is_digit(b[p]))
        return fail(j, p, "invalid number");
    if (b[p] == '0') {
        p++;
    } else {
        do
            p++;
        while (p < len && is_digit(b[p]));
    }
    if (p < len && b[p] == '.') {
        p++;
        if (p >= len || !is_digit(b[p]))
            return fail(j, p, "invalid number");
        do
            p++;
        while (p < len && is_digit(b[p]));
    }
    if (p < len && (b[p] | 0x20) == 'e') {
        p++;
        if (p < len && (b[p] == '+' || b[p] == '-'))
            p++;
        if (p >= len || !is_digit(b[p]))
            return fail(j, p, "invalid number");
        do
            p++;
        while (p < len && is_digit(b[p]));
    }
    /* "01", "1.2.3", "0x1F", "1-2": report the number, not whatever comes after it */
    if (p < len && is_number_tail(b[p]))
        return fail(j, p, "invalid number");
    j->str = j->buf + start;
    j->str_len = p - start;
    j->str_has_escapes = 0;
    j->tok_start = start;
    j->tok_end = j->pos = p;
    return SL_JSON_NUMBER;
}

static sl_json_tok_t scan_literal(sl_json_t *j, size_t start, const char *lit, size_t n,
                                  sl_json_tok_t kind)
{
    const unsigned char *b = (const unsigned char *)j->buf;
    size_t len = j->len;

    if (len - start < n || memcmp(b + start, lit, n) != 0) {
        for (size_t i = 0; i < n; i++) {
            if (start + i >= len)
                return fail(j, len, "unexpected end of input");
            if (b[start + i] != (unsigned char)lit[i])
                return fail(j, start + i, "unexpected character");
        }
    }
    if (start + n < len && is_number_tail(b[start + n]))
        return fail(j, start + n, "unexpected character");
    j->str = NULL;
    j->str_len = 0;
    j->str_has_escapes = 0;
    j->tok_start = start;
    j->tok_end = j->pos = start + n;
    return kind;
}

void sl_json_init(sl_json_t *j, const char *buf, size_t len, unsigned max_depth)
{
    memset(j, 0, sizeof(*j));
    j->buf = buf;
    j->len = len;
    if (max_depth < 1)
        max_depth = 1;
    if (max_depth > SL_JSON_MAX_DEPTH_LIMIT)
        max_depth = SL_JSON_MAX_DEPTH_LIMIT;
    j->_max_depth = max_depth;
    j->_state = ST_START;
}

static inline sl_json_tok_t structural(sl_json_t *j, size_t p, sl_json_tok_t kind, int state)
{
    j->str = NULL;
    j->str_len = 0;
    j->str_has_escapes = 0;
    j->tok_start = p;
    j->tok_end = j->pos = p + 1;
    j->_state = state;
    return kind;
}

sl_json_tok_t sl_json_next(sl_json_t *j)
{
    const unsigned char *b = (const unsigned char *)j->buf;
    size_t len = j->len, p = j->pos;
    sl_json_tok_t t;
    unsigned d;

    switch (j->_state) {
    case ST_AFTER_VALUE:
        p = skip_ws(b, p, len);
        d = j->_depth;
        if (d == 0) {
            if (p < len)
                return fail(j, p, "trailing characters after value");
            j->_state = ST_END;
            j->str = NULL;
            j->str_len = 0;
            j->tok_start = j->tok_end = j->pos = p;
            return SL_JSON_END;
        }
        if (p >= len)
            return fail(j, p, "unexpected end of input");
        d--;
        if ((j->_stack[d >> 3] >> (d & 7)) & 1) {
            if (b[p] == ',') {
                p = skip_ws(b, p + 1, len);
                goto key;
            }
            if (b[p] == '}')
                goto close;
        } else {
            if (b[p] == ',') {
                p = skip_ws(b, p + 1, len);
                goto value;
            }
            if (b[p] == ']')
                goto close;
        }
        return fail(j, p, "unexpected character");
    case ST_START:
        p = skip_ws(b, p, len);
        goto value;
    case ST_ARR_FIRST:
        p = skip_ws(b, p, len);
        if (p < len && b[p] == ']')
            goto close;
        goto value;
    case ST_OBJ_FIRST:
        p = skip_ws(b, p, len);
        if (p < len && b[p] == '}')
            goto close;
        goto key;
    case ST_AFTER_KEY:
        p = skip_ws(b, p, len);
        if (p >= len)
            return fail(j, p, "unexpected end of input");
        if (b[p] != ':')
            return fail(j, p, "unexpected character");
        p = skip_ws(b, p + 1, len);
        goto value;
    case ST_END:
        return SL_JSON_END;
    default:
        return SL_JSON_ERROR;
    }

key:
    if (p >= len)
        return fail(j, p, "unexpected end of input");
    if (b[p] != '"')
        return fail(j, p, "unexpected character");
    t = scan_string(j, p, SL_JSON_KEY);
    if (t == SL_JSON_KEY)
        j->_state = ST_AFTER_KEY;
    return t;

close:
    /* the closing bracket at p matches the container on top of the stack (checked above) */
    d = --j->_depth;
    return structural(j, p,
                      ((j->_stack[d >> 3] >> (d & 7)) & 1) ? SL_JSON_OBJ_END : SL_JSON_ARR_END,
                      ST_AFTER_VALUE);

value:
    if (p >= len)
        return fail(j, p, "unexpected end of input");
    switch (b[p]) {
    case '"':
        t = scan_string(j, p, SL_JSON_STRING);
        break;
    case '{':
    case '[':
        d = j->_depth;
        if (d >= j->_max_depth)
            return fail(j, p, "nesting too deep");
        j->_depth = d + 1;
        if (b[p] == '{') {
            j->_stack[d >> 3] |= (uint8_t)(1u << (d & 7));
            return structural(j, p, SL_JSON_OBJ_BEGIN, ST_OBJ_FIRST);
        }
        j->_stack[d >> 3] &= (uint8_t) ~(1u << (d & 7));
        return structural(j, p, SL_JSON_ARR_BEGIN, ST_ARR_FIRST);
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        t = scan_number(j, p);
        break;
    case 't':
        t = scan_literal(j, p, "true", 4, SL_JSON_TRUE);
        break;
    case 'f':
        t = scan_literal(j, p, "false", 5, SL_JSON_FALSE);
        break;
    case 'n':
        t = scan_literal(j, p, "null", 4, SL_JSON_NULL);
        break;
    default:
        return fail(j, p, "unexpected character");
    }
    if (t != SL_JSON_ERROR)
        j->_state = ST_AFTER_VALUE;
    return t;
}

int sl_json_skip(sl_json_t *j, sl_json_tok_t first)
{
    unsigned target;
    sl_json_tok_t t;

    switch (first) {
    case SL_JSON_ERROR:
        return -1;
    case SL_JSON_KEY:
        /* skipping a member: its value is the next token */
        first = sl_json_next(j);
        if (first == SL_JSON_ERROR)
            return -1;
        if (first != SL_JSON_OBJ_BEGIN && first != SL_JSON_ARR_BEGIN)
            return 0;
        break;
    case SL_JSON_OBJ_BEGIN:
    case SL_JSON_ARR_BEGIN:
        break;
    default:
        return 0;
    }
    if (j->_depth == 0)
        return -1; /* no container is open: not called right after its first token */
    /* the container just opened is at depth - 1 once it closes */
    target = j->_depth - 1;
    do {
        t = sl_json_next(j);
        if (t == SL_JSON_ERROR || t == SL_JSON_END)
            return -1;
    } while (j->_depth != target || (t != SL_JSON_OBJ_END && t != SL_JSON_ARR_END));
    return 0;
}

/* Writes code point cp as UTF-8 to out; returns the byte count. */
static size_t put_utf8(char *out, unsigned long cp)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t sl_json_unescape(const char *s, size_t len, char *out)
{
    const unsigned char *b = (const unsigned char *)s;
    size_t i = 0, o = 0;

    while (i < len) {
        const char *bs = memchr(s + i, '\\', len - i);
        size_t run = bs ? (size_t)(bs - (s + i)) : len - i;
        long u, lo;

        memmove(out + o, s + i, run);
        i += run;
        o += run;
        if (i >= len)
            break;
        /* b[i] is a backslash. The scanner has validated the span; anything malformed here (a
         * caller passing unvalidated bytes) is copied through or becomes U+FFFD, and the output
         * still never outgrows the input. */
        if (i + 1 >= len) {
            out[o++] = '\\';
            i++;
            break;
        }
        switch (b[i + 1]) {
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u':
            u = hex4(b, i + 2, len);
            if (u < 0) {
                out[o++] = '\\';
                i++;
                continue;
            }
            i += 6;
            if (u >= 0xD800 && u <= 0xDBFF && i + 1 < len && b[i] == '\\' && b[i + 1] == 'u' &&
                (lo = hex4(b, i + 2, len)) >= 0xDC00 && lo <= 0xDFFF) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            } else if (u >= 0xD800 && u <= 0xDFFF) {
                u = 0xFFFD;
            }
            o += put_utf8(out + o, (unsigned long)u);
            continue;
        default: /* '"', '\\', '/' (and anything invalid) stand for themselves */
            out[o++] = s[i + 1];
            break;
        }
        i += 2;
    }
    return o;
}

int sl_json_to_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    int neg = 0, overflow = 0;
    uint64_t v = 0, limit;

    if (i < len && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i >= len || !is_digit((unsigned char)s[i]))
        return -1;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len && is_digit((unsigned char)s[i]); i++) {
        unsigned digit = (unsigned)(s[i] - '0');
        if (v > (limit - digit) / 10)
            overflow = 1;
        else
            v = v * 10 + digit;
    }
    if (i != len)
        return -1; /* a fraction or an exponent: not an integer, whatever its size */
    if (overflow)
        return -2;
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

int sl_json_to_double(const char *s, size_t len, double *out)
{
    char local[128];
    char *copy = local, *end;
    double v;
    int rc = -1;

    /* strtod also takes hex, "inf", "nan", leading spaces: only the JSON alphabet gets through */
    if (len == 0 || !(s[0] == '-' || is_digit((unsigned char)s[0])))
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_digit(c) && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-')
            return -1;
    }
    if (len >= sizeof(local)) {
        /* very long numbers (many digits) are rare and off the hot path */
        copy = malloc(len + 1);
        if (!copy)
            return -1;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    v = strtod(copy, &end);
    if (end == copy + len && !isinf(v) && !isnan(v)) {
        *out = v;
        rc = 0;
    }
    if (copy != local)
        free(copy);
    return rc;
}
