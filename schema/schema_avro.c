/* The hot path: one JSON event -> Confluent framing + Avro binary, in a single pass of the
 * common/sl_json.h pull scanner directed by the compiled program (schema_int.h). Values are
 * written straight into the caller's buffer in the order the members arrive; a record whose
 * members came out of schema order is reassembled once at its closing brace. No DOM, no
 * allocation for records of up to 32 fields and maps of up to 16 keys. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_int.h"
#include "sl_json.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "float/double are copied as little-endian bytes: port put_float/put_double first"
#endif

enum { SEG_FIELD, SEG_INDEX, SEG_KEY };

/* One step of the path to the value being encoded, kept per nesting level so an error can name
 * where it happened without any cost on the success path beyond two stores. */
typedef struct {
    const char *name; /* SEG_FIELD / SEG_KEY: raw member name (not NUL-terminated) */
    size_t len;
    uint64_t index; /* SEG_INDEX */
    int kind;
} seg_t;

typedef struct {
    const schema_t *s;
    const schema_skip_t *skip;
    uint8_t *out;
    size_t pos, cap;
    schema_error_t *e;
    sl_json_t j;
    seg_t seg[SCHEMA_MAX_DEPTH + 2];
} enc_t;

/* ---- errors (cold) ---- */

/* Paths hold member names as written in the event (valid JSON string content, escapes kept), so
 * the gateway can put them in a JSON string as they are. Truncation must keep that true: cut
 * before an escape (a surrogate pair counts as one) or a UTF-8 sequence that would be split. */
static void path_trim(char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)p[i];
        size_t n = 1;
        if (ch == '\\') {
            n = 2;
            if (i + 1 < len && p[i + 1] == 'u') {
                n = 6;
                /* \uD800-\uDBFF: the low half follows */
                char c3 = i + 3 < len ? (char)(p[i + 3] | 0x20) : 0;
                if ((p[i + 2] | 0x20) == 'd' && (c3 == '8' || c3 == '9' || c3 == 'a' || c3 == 'b'))
                    n = 12;
            }
        } else if (ch >= 0xF0) {
            n = 4;
        } else if (ch >= 0xE0) {
            n = 3;
        } else if (ch >= 0xC0) {
            n = 2;
        }
        if (i + n > len)
            break;
        i += n;
    }
    p[i] = '\0';
}

static void build_path(enc_t *c, unsigned lvl)
{
    char *p = c->e->path;
    size_t cap = sizeof(c->e->path), off = 0;

    p[0] = '\0';
    for (unsigned i = 0; i < lvl && off + 1 < cap; i++) {
        const seg_t *g = &c->seg[i];
        int k;
        if (g->kind == SEG_INDEX)
            k = snprintf(p + off, cap - off, "[%llu]", (unsigned long long)g->index);
        else
            k = snprintf(p + off, cap - off, "%s%.*s", off ? "." : "",
                         (int)(g->len < cap ? g->len : cap), g->name);
        if (k < 0)
            break;
        off += (size_t)k;
    }
    if (off >= cap)
        off = cap - 1;
    p[off] = '\0';
    path_trim(p, off);
}

__attribute__((format(printf, 4, 5))) static int fail(enc_t *c, sl_err_t code, unsigned lvl,
                                                      const char *fmt, ...)
{
    va_list ap;
    c->e->code = code;
    build_path(c, lvl);
    va_start(ap, fmt);
    vsnprintf(c->e->detail, sizeof(c->e->detail), fmt, ap);
    va_end(ap);
    return -1;
}

static const char *kind_name(sl_json_tok_t t)
{
    switch (t) {
    case SL_JSON_NULL:
        return "null";
    case SL_JSON_TRUE:
    case SL_JSON_FALSE:
        return "boolean";
    case SL_JSON_NUMBER:
        return "number";
    case SL_JSON_STRING:
        return "string";
    case SL_JSON_OBJ_BEGIN:
        return "object";
    case SL_JSON_ARR_BEGIN:
        return "array";
    default:
        return "nothing";
    }
}

/* The scanner stopped: classify its message into a per-event code. */
static int scan_err(enc_t *c, unsigned lvl)
{
    const char *msg = c->j.err ? c->j.err : "unexpected token";
    if (strcmp(msg, "nesting too deep") == 0)
        return fail(c, SL_ERR_TOO_DEEP, lvl, "nested deeper than %d levels", SCHEMA_MAX_DEPTH);
    if (strcmp(msg, "invalid UTF-8 in string") == 0 || strcmp(msg, "lone surrogate") == 0)
        return fail(c, SL_ERR_BAD_UTF8, lvl, "%s at byte %zu", msg, c->j.err_pos);
    return fail(c, SL_ERR_BAD_JSON, lvl, "%s at byte %zu", msg, c->j.err_pos);
}

static int bad_type(enc_t *c, const snode_t *n, sl_json_tok_t t, unsigned lvl)
{
    if (t == SL_JSON_ERROR)
        return scan_err(c, lvl);
    return fail(c, SL_ERR_BAD_TYPE, lvl, "expected %s, got %s", n->desc, kind_name(t));
}

static int too_large(enc_t *c, unsigned lvl)
{
    return fail(c, SL_ERR_EVENT_TOO_LARGE, lvl, "Avro encoding over %zu bytes", c->cap);
}

/* Room for n more bytes, or event_too_large. */
static inline int ensure(enc_t *c, size_t n, unsigned lvl)
{
    if (__builtin_expect(c->cap - c->pos < n, 0))
        return too_large(c, lvl);
    return 0;
}

/* ---- scalars ---- */

/* Appends a zigzag varint, needing only as many bytes as it takes. */
static inline int put_long(enc_t *c, int64_t v, unsigned lvl)
{
    uint8_t tmp[10];
    size_t n;
    if (__builtin_expect(c->cap - c->pos >= 10, 1)) {
        c->pos += schema_put_long(c->out + c->pos, v);
        return 0;
    }
    n = schema_put_long(tmp, v);
    if (ensure(c, n, lvl))
        return -1;
    memcpy(c->out + c->pos, tmp, n);
    c->pos += n;
    return 0;
}

static inline size_t long_len(uint64_t zz)
{
    size_t n = 1;
    while (zz >= 0x80) {
        zz >>= 7;
        n++;
    }
    return n;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* JSON number text (grammar already checked) -> correctly rounded double. Fast path (Clinger):
 * when the digits fit in 53 bits and the power of ten is at most 22, both operands are exact and
 * one IEEE operation rounds correctly; otherwise strtod. Returns 0, or -1 when it overflows. */
static int num_double(const char *s, size_t len, double *out)
{
    size_t i = 0;
    uint64_t m = 0;
    int e10 = 0, neg = 0;
    double d;

    if (s[0] == '-') {
        neg = 1;
        i++;
    }
    for (; i < len && (unsigned)(s[i] - '0') < 10; i++) {
        if (m >= 100000000000000000ULL)
            goto Slow;
        m = m * 10 + (uint64_t)(s[i] - '0');
    }
    if (i < len && s[i] == '.') {
        for (i++; i < len && (unsigned)(s[i] - '0') < 10; i++) {
            if (m >= 100000000000000000ULL)
                goto Slow;
            m = m * 10 + (uint64_t)(s[i] - '0');
            e10--;
        }
    }
    if (i < len && (s[i] | 0x20) == 'e') {
        int eneg = 0, ev = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        for (; i < len && (unsigned)(s[i] - '0') < 10; i++) {
            if (ev > 100000)
                goto Slow;
            ev = ev * 10 + (s[i] - '0');
        }
        e10 += eneg ? -ev : ev;
    }
    if (i != len || m > (1ULL << 53) || e10 < -22 || e10 > 22)
        goto Slow;
    d = (double)m;
    d = e10 < 0 ? d / pow10_exact[-e10] : d * pow10_exact[e10];
    *out = neg ? -d : d;
    return 0;
Slow:
    return sl_json_to_double(s, len, out);
}

static int enc_integer(enc_t *c, const snode_t *n, sl_json_tok_t t, unsigned lvl)
{
    int64_t v;
    int rc;

    if (t != SL_JSON_NUMBER)
        return bad_type(c, n, t, lvl);
    rc = sl_json_to_i64(c->j.str, c->j.str_len, &v);
    if (rc == -1)
        return fail(c, SL_ERR_BAD_TYPE, lvl,
                    "expected %s, got a number with a fraction or exponent", n->desc);
    if (rc != 0 || (n->type == SN_INT && (v < INT32_MIN || v > INT32_MAX)))
        return fail(c, SL_ERR_OUT_OF_RANGE, lvl, "outside the range of %s", n->desc);
    if (n->logical == LT_TIME_MILLIS && (v < 0 || v >= 86400000))
        return fail(c, SL_ERR_OUT_OF_RANGE, lvl, "time-millis outside 0..86399999");
    if (n->logical == LT_TIME_MICROS && (v < 0 || v >= 86400000000LL))
        return fail(c, SL_ERR_OUT_OF_RANGE, lvl, "time-micros outside 0..86399999999");
    return put_long(c, v, lvl);
}

static int enc_real(enc_t *c, const snode_t *n, sl_json_tok_t t, unsigned lvl)
{
    double d;

    if (t != SL_JSON_NUMBER)
        return bad_type(c, n, t, lvl);
    if (num_double(c->j.str, c->j.str_len, &d) != 0)
        return fail(c, SL_ERR_OUT_OF_RANGE, lvl, "outside the range of %s", n->desc);
    if (ensure(c, n->type == SN_FLOAT ? 4 : 8, lvl))
        return -1;
    if (n->type == SN_FLOAT) {
        float f;
        /* at or past FLT_MAX + half an ulp rounds to infinity (and the cast would be UB) */
        if (fabs(d) >= 0x1.ffffffp127)
            return fail(c, SL_ERR_OUT_OF_RANGE, lvl, "outside the range of float");
        f = (float)d;
        memcpy(c->out + c->pos, &f, 4);
        c->pos += 4;
    } else {
        memcpy(c->out + c->pos, &d, 8);
        c->pos += 8;
    }
    return 0;
}

static int is_hex(unsigned char ch)
{
    return (unsigned)(ch - '0') < 10 || (unsigned)((ch | 0x20) - 'a') < 6;
}

/* 8-4-4-4-12 hex digits, either case. */
static int is_uuid(const uint8_t *p, size_t n)
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (p[i] != '-')
                return 0;
        } else if (!is_hex(p[i])) {
            return 0;
        }
    }
    return 1;
}

/* Writes the current KEY/STRING token as an Avro string (length, then the decoded UTF-8 bytes);
 * *data_off and *data_len locate the bytes in the output. */
static int put_string(enc_t *c, unsigned lvl, size_t *data_off, size_t *data_len)
{
    const char *s = c->j.str;
    size_t len = c->j.str_len, vl = long_len((uint64_t)len << 1), vn, dn;
    uint8_t *p;

    /* exact without escapes; with escapes the raw length bounds the decoded one */
    if (ensure(c, vl + len, lvl))
        return -1;
    p = c->out + c->pos;
    if (!c->j.str_has_escapes) {
        vn = schema_put_long(p, (int64_t)len);
        memcpy(p + vn, s, len);
        dn = len;
    } else {
        /* decoding never grows: decode after room for the raw length's varint, then close up */
        dn = sl_json_unescape(s, len, (char *)p + vl);
        vn = schema_put_long(p, (int64_t)dn);
        if (vn != vl)
            memmove(p + vn, p + vl, dn);
    }
    *data_off = c->pos + vn;
    *data_len = dn;
    c->pos += vn + dn;
    return 0;
}

static int enc_string(enc_t *c, const snode_t *n, sl_json_tok_t t, unsigned lvl)
{
    size_t off, len;

    if (t != SL_JSON_STRING)
        return bad_type(c, n, t, lvl);
    if (put_string(c, lvl, &off, &len))
        return -1;
    if (n->logical == LT_UUID && !is_uuid(c->out + off, len))
        return fail(c, SL_ERR_BAD_UUID, lvl, "expected a UUID (8-4-4-4-12 hex digits)");
    return 0;
}

static inline int b64_val(unsigned char ch)
{
    if ((unsigned)(ch - 'A') < 26)
        return ch - 'A';
    if ((unsigned)(ch - 'a') < 26)
        return ch - 'a' + 26;
    if ((unsigned)(ch - '0') < 10)
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

/* Base64 (standard or URL-safe alphabet, padding optional) in[0..n) -> out, which may equal in
 * (each group is read before its bytes are written, and output trails input). Returns the
 * decoded length or -1. */
static long b64_decode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i = 0, o = 0, rem;
    int v[4];

    if (n && in[n - 1] == '=') {
        if (n % 4)
            return -1;
        n--;
        if (n && in[n - 1] == '=')
            n--;
    }
    rem = n % 4;
    if (rem == 1)
        return -1;
    for (; i + 4 <= n; i += 4) {
        uint32_t w;
        for (int k = 0; k < 4; k++)
            if ((v[k] = b64_val(in[i + k])) < 0)
                return -1;
        w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(w >> 16);
        out[o++] = (uint8_t)(w >> 8);
        out[o++] = (uint8_t)w;
    }
    if (rem) {
        uint32_t w = 0;
        for (size_t k = 0; k < rem; k++) {
            if ((v[k] = b64_val(in[i + k])) < 0)
                return -1;
            w |= (uint32_t)v[k] << (18 - 6 * k);
        }
        out[o++] = (uint8_t)(w >> 16);
        if (rem == 3)
            out[o++] = (uint8_t)(w >> 8);
    }
    return (long)o;
}

/* Decimal text s[0..len) ([-]digits[.digits][(e|E)[+|-]digits]) -> the unscaled value at `scale`
 * as 16 bytes of big-endian two's complement. No rounding: digits beyond the scale must be zeros.
 * Returns 0; -1 not a number; -2 too many decimal places; -3 more than `precision` digits. */
static int decimal_parse(const char *s, size_t len, unsigned precision, unsigned scale,
                         uint8_t be[16])
{
    size_t i = 0, int_start, int_end, frac_start = 0, frac_end = 0;
    long exp = 0, ndig, first = -1, last = -1, point, q, k = 0;
    int neg = 0;
    unsigned __int128 v = 0;

    if (i < len && s[i] == '-') {
        neg = 1;
        i++;
    }
    int_start = i;
    while (i < len && (unsigned)(s[i] - '0') < 10)
        i++;
    int_end = i;
    if (int_end == int_start)
        return -1;
    if (i < len && s[i] == '.') {
        frac_start = ++i;
        while (i < len && (unsigned)(s[i] - '0') < 10)
            i++;
        frac_end = i;
        if (frac_end == frac_start)
            return -1;
    }
    if (i < len && (s[i] | 0x20) == 'e') {
        int eneg = 0;
        size_t e0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        e0 = i;
        for (; i < len && (unsigned)(s[i] - '0') < 10; i++)
            if (exp < 1000000)
                exp = exp * 10 + (s[i] - '0');
        if (i == e0)
            return -1;
        if (eneg)
            exp = -exp;
    }
    if (i != len)
        return -1;
    /* digit sequence = integer digits then fraction digits; find the first and last non-zero */
    ndig = (long)(int_end - int_start + frac_end - frac_start);
    for (long d = 0; d < ndig; d++) {
        size_t at = (size_t)d < int_end - int_start
                        ? int_start + (size_t)d
                        : frac_start + ((size_t)d - (int_end - int_start));
        if (s[at] != '0') {
            if (first < 0)
                first = d;
            last = d;
        }
    }
    memset(be, 0, 16);
    if (first < 0)
        return 0; /* zero, whatever its form */
    /* value = digits[first..last] * 10^point */
    point = exp - (long)(frac_end - frac_start) + (ndig - 1 - last);
    q = point + (long)scale;
    if (q < 0)
        return -2;
    if (last - first + 1 + q > (long)precision)
        return -3;
    for (long d = first; d <= last; d++) {
        size_t at = (size_t)d < int_end - int_start
                        ? int_start + (size_t)d
                        : frac_start + ((size_t)d - (int_end - int_start));
        v = v * 10 + (unsigned)(s[at] - '0');
    }
    for (; k < q; k++)
        v *= 10;
    if (neg)
        v = ~v + 1;
    for (int b = 15; b >= 0; b--) {
        be[b] = (uint8_t)v;
        v >>= 8;
    }
    return 0;
}

/* Decimal on bytes (minimal two's complement) or fixed (sign-extended to its size). */
static int enc_decimal(enc_t *c, const snode_t *n, sl_json_tok_t t, unsigned lvl)
{
    char buf[256];
    const char *s = c->j.str;
    size_t len = c->j.str_len, k = 0;
    uint8_t be[16];
    int rc;

    if (t != SL_JSON_NUMBER && t != SL_JSON_STRING)
        return bad_type(c, n, t, lvl);
    if (t == SL_JSON_STRING && c->j.str_has_escapes) {
        if (len > sizeof(buf))
            return fail(c, SL_ERR_BAD_VALUE, lvl, "expected a decimal number");
        len = sl_json_unescape(s, len, buf);
        s = buf;
    }
    rc = decimal_parse(s, len, n->precision, n->scale, be);
    if (rc == -1)
        return fail(c, SL_ERR_BAD_VALUE, lvl, "expected a decimal number");
    if (rc == -2)
        return fail(c, SL_ERR_BAD_VALUE, lvl, "more than %u decimal places", n->scale);
    if (rc == -3)
        return fail(c, SL_ERR_OUT_OF_RANGE, lvl, "more than %u digits", n->precision);
    if (n->type == SN_BYTES) {
        while (k < 15 &&
               ((be[k] == 0x00 && !(be[k + 1] & 0x80)) || (be[k] == 0xFF && (be[k + 1] & 0x80))))
            k++;
        if (ensure(c, 1 + 16 - k, lvl))
            return -1;
        c->pos += schema_put_long(c->out + c->pos, (int64_t)(16 - k));
        memcpy(c->out + c->pos, be + k, 16 - k);
        c->pos += 16 - k;
        return 0;
    }
    /* fixed: compile time made sure the size holds `precision` digits */
    if (ensure(c, n->count, lvl))
        return -1;
    if (n->count >= 16) {
        memset(c->out + c->pos, (be[0] & 0x80) ? 0xFF : 0x00, n->count - 16);
        memcpy(c->out + c->pos + n->count - 16, be, 16);
    } else {
        memcpy(c->out + c->pos, be + 16 - n->count, n->count);
    }
    c->pos += n->count;
    return 0;
}

/* bytes / fixed as a base64 string (README: JSON mapping). */
static int enc_binary(enc_t *c, const snode_t *n, sl_json_tok_t t, unsigned lvl)
{
    size_t len = c->j.str_len, vl = 0;
    const uint8_t *src = (const uint8_t *)c->j.str;
    uint8_t *dst;
    long dn;

    if (n->logical == LT_DECIMAL)
        return enc_decimal(c, n, t, lvl);
    if (t != SL_JSON_STRING)
        return bad_type(c, n, t, lvl);
    if (n->type == SN_BYTES)
        vl = long_len((uint64_t)len << 1);
    /* room for the decoded bytes (at most 3 per 4 characters), or for the raw text when it must
     * be unescaped first */
    if (ensure(c, vl + (c->j.str_has_escapes ? len : (len + 3) / 4 * 3), lvl))
        return -1;
    dst = c->out + c->pos + vl;
    if (c->j.str_has_escapes) { /* JSON encoders often write "\/": decode, then base64 in place */
        len = sl_json_unescape(c->j.str, len, (char *)dst);
        src = dst;
    }
    dn = b64_decode(src, len, dst);
    if (dn < 0)
        return fail(c, SL_ERR_BAD_VALUE, lvl, "expected base64");
    if (n->type == SN_FIXED) {
        if ((size_t)dn != n->count)
            return fail(c, SL_ERR_BAD_VALUE, lvl, "expected %u bytes, got %ld", n->count, dn);
        c->pos += (size_t)dn;
        return 0;
    }
    {
        size_t vn = schema_put_long(c->out + c->pos, dn);
        if (vn != vl)
            memmove(c->out + c->pos + vn, dst, (size_t)dn);
        c->pos += vn + (size_t)dn;
    }
    return 0;
}

/* Name lookup for a member name or symbol written with escapes: decode first. Rare, so kept out
 * of line with its buffer. */
__attribute__((noinline)) static int find_escaped(const sname_tab_t *t, const char *s, size_t len)
{
    char buf[SCHEMA_MAX_NAME_BYTES * 6 + 6];
    if (len > sizeof(buf))
        return -1; /* each escape is at most 6 bytes for 1: cannot decode to a known name */
    return schema_name_find(t, buf, sl_json_unescape(s, len, buf));
}

static int enc_enum(enc_t *c, const snode_t *n, sl_json_tok_t t, unsigned lvl)
{
    int idx;
    if (t != SL_JSON_STRING)
        return bad_type(c, n, t, lvl);
    idx = c->j.str_has_escapes ? find_escaped(&n->names, c->j.str, c->j.str_len)
                               : schema_name_find(&n->names, c->j.str, c->j.str_len);
    if (idx < 0)
        return fail(c, SL_ERR_BAD_ENUM, lvl, "not a symbol of the enum");
    return put_long(c, idx, lvl);
}

/* ---- containers ---- */

static int enc_value(enc_t *c, const snode_t *n, sl_json_tok_t t, unsigned lvl);

/* Arrays and maps are one Avro block: count, items, then 0. The count is known only at the end,
 * so one byte is reserved (enough for up to 63 items) and the items are shifted if it needs
 * more. */
static int close_block(enc_t *c, size_t start, uint64_t count, unsigned lvl)
{
    size_t vl;
    if (count == 0) {
        c->out[start] = 0; /* the reserved byte becomes the end marker */
        return 0;
    }
    vl = long_len(count << 1);
    if (ensure(c, vl, lvl))
        return -1;
    if (vl > 1)
        memmove(c->out + start + vl, c->out + start + 1, c->pos - start - 1);
    c->pos += vl - 1;
    schema_put_long(c->out + start, (int64_t)count);
    c->out[c->pos++] = 0;
    return 0;
}

static int enc_array(enc_t *c, const snode_t *n, unsigned lvl)
{
    const snode_t *item = &c->s->nodes[n->child];
    size_t start = c->pos;
    uint64_t count = 0;

    if (ensure(c, 1, lvl))
        return -1;
    c->pos++;
    for (;;) {
        sl_json_tok_t t = sl_json_next(&c->j);
        if (t == SL_JSON_ARR_END)
            break;
        c->seg[lvl].kind = SEG_INDEX;
        c->seg[lvl].index = count;
        if (enc_value(c, item, t, lvl + 1))
            return -1;
        count++;
    }
    return close_block(c, start, count, lvl);
}

/* Map keys seen so far, to refuse duplicates (Avro readers would keep only one): a short list,
 * and past 16 keys an open-addressing table over it. Keys live in the output buffer. */
#define KEYS_LOCAL 16
typedef struct {
    uint32_t off, len, hash;
} mkey_t;
typedef struct {
    mkey_t local[KEYS_LOCAL];
    mkey_t *keys;
    size_t n, cap;
    uint32_t *tab; /* key index + 1 */
    size_t tmask;
} keyset_t;

static uint32_t key_hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void keyset_dispose(keyset_t *ks)
{
    if (ks->keys != ks->local)
        free(ks->keys);
    if (ks->tab)
        free(ks->tab);
}

/* Returns 0 if added, 1 if the key was already there, -1 out of memory. */
static int keyset_add(keyset_t *ks, const uint8_t *base, size_t off, size_t len)
{
    uint32_t h = key_hash(base + off, len);
    mkey_t *k;

    if (!ks->tab) {
        for (size_t i = 0; i < ks->n; i++) {
            k = &ks->keys[i];
            if (k->hash == h && k->len == len && memcmp(base + k->off, base + off, len) == 0)
                return 1;
        }
    } else {
        for (size_t s = h & ks->tmask; ks->tab[s]; s = (s + 1) & ks->tmask) {
            k = &ks->keys[ks->tab[s] - 1];
            if (k->hash == h && k->len == len && memcmp(base + k->off, base + off, len) == 0)
                return 1;
        }
    }
    if (ks->n == ks->cap) {
        size_t ncap = ks->cap * 2;
        mkey_t *p = ks->keys == ks->local ? malloc(ncap * sizeof(*p))
                                          : realloc(ks->keys, ncap * sizeof(*p));
        if (!p)
            return -1;
        if (ks->keys == ks->local)
            memcpy(p, ks->local, sizeof(ks->local));
        ks->keys = p;
        ks->cap = ncap;
    }
    ks->keys[ks->n].off = (uint32_t)off;
    ks->keys[ks->n].len = (uint32_t)len;
    ks->keys[ks->n].hash = h;
    ks->n++;
    if (ks->n > KEYS_LOCAL && (!ks->tab || ks->n * 2 > ks->tmask + 1)) {
        size_t size = 64;
        uint32_t *tab;
        while (size < ks->n * 4)
            size *= 2;
        tab = calloc(size, sizeof(*tab));
        if (!tab)
            return -1;
        free(ks->tab);
        ks->tab = tab;
        ks->tmask = size - 1;
        for (size_t i = 0; i < ks->n; i++) {
            size_t s = ks->keys[i].hash & ks->tmask;
            while (tab[s])
                s = (s + 1) & ks->tmask;
            tab[s] = (uint32_t)i + 1;
        }
    } else if (ks->tab) {
        size_t s = h & ks->tmask;
        while (ks->tab[s])
            s = (s + 1) & ks->tmask;
        ks->tab[s] = (uint32_t)ks->n;
    }
    return 0;
}

static int enc_map(enc_t *c, const snode_t *n, unsigned lvl)
{
    const snode_t *val = &c->s->nodes[n->child];
    size_t start = c->pos;
    uint64_t count = 0;
    keyset_t ks;
    int rc = -1;

    ks.keys = ks.local;
    ks.n = 0;
    ks.cap = KEYS_LOCAL;
    ks.tab = NULL;
    ks.tmask = 0;
    if (ensure(c, 1, lvl))
        return -1;
    c->pos++;
    for (;;) {
        sl_json_tok_t t = sl_json_next(&c->j);
        size_t kpos, klen;
        int dup;
        if (t == SL_JSON_OBJ_END)
            break;
        if (t != SL_JSON_KEY) {
            scan_err(c, lvl);
            goto Done;
        }
        c->seg[lvl].kind = SEG_KEY;
        c->seg[lvl].name = c->j.str;
        c->seg[lvl].len = c->j.str_len;
        if (put_string(c, lvl + 1, &kpos, &klen))
            goto Done;
        dup = keyset_add(&ks, c->out, kpos, klen);
        if (dup) {
            if (dup < 0)
                fail(c, SL_ERR_INTERNAL, lvl + 1, "out of memory");
            else
                fail(c, SL_ERR_DUPLICATE_KEY, lvl + 1, "map key appears twice");
            goto Done;
        }
        if (enc_value(c, val, sl_json_next(&c->j), lvl + 1))
            goto Done;
        count++;
    }
    rc = close_block(c, start, count, lvl);
Done:
    keyset_dispose(&ks);
    return rc;
}

static int is_skipped(const enc_t *c, const char *k, size_t len)
{
    if (!c->skip)
        return 0;
    for (size_t i = 0; i < c->skip->count; i++) {
        const char *nm = c->skip->names[i];
        if (nm && strncmp(nm, k, len) == 0 && nm[len] == '\0')
            return 1;
    }
    return 0;
}

enum { F_ABSENT, F_DEFAULTED, F_PRESENT };
typedef struct {
    uint32_t off, len; /* relative to the record's first byte */
    uint32_t state;
} slot_t;
#define SLOTS_LOCAL 32

static int missing(enc_t *c, const sfield_t *f, unsigned lvl)
{
    c->seg[lvl].kind = SEG_FIELD;
    c->seg[lvl].name = f->name;
    c->seg[lvl].len = f->name_len;
    return fail(c, SL_ERR_MISSING_FIELD, lvl + 1, "required field missing");
}

/* Members in schema order are encoded in place. A member that skips ahead gets the skipped
 * fields' defaults written first (so events that omit optional fields stay in place); one that
 * comes back to an earlier field makes the record out of order, and it is then reassembled in
 * schema order at its end, in the free tail of the output (or a heap buffer if that is short). */
static int enc_record(enc_t *c, const snode_t *n, unsigned lvl)
{
    const sfield_t *f = c->s->fields + n->first;
    uint32_t nf = n->count, guess = 0, hi = 0;
    size_t start = c->pos;
    int in_order = 1, rc = -1;
    slot_t local[SLOTS_LOCAL], *slot = local;
    uint8_t *heap = NULL;

    if (nf > SLOTS_LOCAL) {
        slot = malloc(nf * sizeof(*slot));
        if (!slot)
            return fail(c, SL_ERR_INTERNAL, lvl, "out of memory");
    }
    memset(slot, 0, nf * sizeof(*slot));
    for (;;) {
        sl_json_tok_t t = sl_json_next(&c->j);
        const char *key = c->j.str;
        size_t klen = c->j.str_len;
        int fi;

        if (t == SL_JSON_OBJ_END)
            break;
        if (t != SL_JSON_KEY) {
            scan_err(c, lvl);
            goto Done;
        }
        if (__builtin_expect(c->j.str_has_escapes, 0))
            fi = find_escaped(&n->names, key, klen);
        else if (guess < nf && f[guess].name_len == klen &&
                 schema_name_eq(f[guess].name, key, klen))
            fi = (int)guess;
        else
            fi = schema_name_find(&n->names, key, klen);
        c->seg[lvl].kind = SEG_FIELD;
        c->seg[lvl].name = key;
        c->seg[lvl].len = klen;
        if (fi < 0) {
            if (lvl == 0 && is_skipped(c, key, klen)) {
                if (sl_json_skip(&c->j, SL_JSON_KEY) != 0) {
                    scan_err(c, lvl + 1);
                    goto Done;
                }
                continue;
            }
            fail(c, SL_ERR_UNKNOWN_FIELD, lvl + 1, "not a field of the schema");
            goto Done;
        }
        if (slot[fi].state == F_PRESENT) {
            fail(c, SL_ERR_DUPLICATE_KEY, lvl + 1, "field appears twice");
            goto Done;
        }
        if ((uint32_t)fi < hi) {
            in_order = 0;
        } else {
            if (in_order) {
                for (uint32_t k = hi; k < (uint32_t)fi; k++) {
                    if (!f[k].has_absent)
                        continue; /* missing, unless it comes later (out of order) */
                    if (ensure(c, f[k].absent_len, lvl))
                        goto Done;
                    slot[k].off = (uint32_t)(c->pos - start);
                    slot[k].len = f[k].absent_len;
                    slot[k].state = F_DEFAULTED;
                    memcpy(c->out + c->pos, f[k].absent, f[k].absent_len);
                    c->pos += f[k].absent_len;
                }
            }
            hi = (uint32_t)fi + 1;
        }
        slot[fi].off = (uint32_t)(c->pos - start);
        slot[fi].state = F_PRESENT;
        if (enc_value(c, &c->s->nodes[f[fi].node], sl_json_next(&c->j), lvl + 1))
            goto Done;
        slot[fi].len = (uint32_t)(c->pos - start - slot[fi].off);
        guess = (uint32_t)fi + 1;
    }
    if (in_order) {
        for (uint32_t i = 0; i < nf; i++) {
            if (slot[i].state != F_ABSENT)
                continue;
            if (i < hi || !f[i].has_absent) {
                missing(c, &f[i], lvl);
                goto Done;
            }
            if (ensure(c, f[i].absent_len, lvl))
                goto Done;
            memcpy(c->out + c->pos, f[i].absent, f[i].absent_len);
            c->pos += f[i].absent_len;
        }
    } else {
        size_t total = 0, o = 0;
        uint8_t *dst;
        for (uint32_t i = 0; i < nf; i++) {
            if (slot[i].state == F_PRESENT) {
                total += slot[i].len;
            } else if (f[i].has_absent) {
                total += f[i].absent_len;
            } else {
                missing(c, &f[i], lvl);
                goto Done;
            }
        }
        if (total > c->cap - start) {
            too_large(c, lvl);
            goto Done;
        }
        if (c->cap - c->pos >= total) {
            dst = c->out + c->pos;
        } else {
            heap = malloc(total ? total : 1); /* bounded by cap, checked above */
            if (!heap) {
                fail(c, SL_ERR_INTERNAL, lvl, "out of memory");
                goto Done;
            }
            dst = heap;
        }
        for (uint32_t i = 0; i < nf; i++) {
            if (slot[i].state == F_PRESENT) {
                memcpy(dst + o, c->out + start + slot[i].off, slot[i].len);
                o += slot[i].len;
            } else {
                memcpy(dst + o, f[i].absent, f[i].absent_len);
                o += f[i].absent_len;
            }
        }
        memmove(c->out + start, dst, total);
        c->pos = start + total;
    }
    rc = 0;
Done:
    if (heap)
        free(heap);
    if (slot != local)
        free(slot);
    return rc;
}

/* A JSON number in a union with several numeric branches: the first that takes it exactly (an
 * integer that fits int, then long; any number for float, double and decimal). */
static int pick_number(enc_t *c, const snode_t *u)
{
    int64_t v;
    int rc = sl_json_to_i64(c->j.str, c->j.str_len, &v);
    for (uint32_t i = 0; i < u->count; i++) {
        const snode_t *b = &c->s->nodes[c->s->branches[u->first + i]];
        switch ((snode_type_t)b->type) {
        case SN_INT:
            if (rc == 0 && v >= INT32_MIN && v <= INT32_MAX)
                return (int)i;
            break;
        case SN_LONG:
            if (rc == 0)
                return (int)i;
            break;
        case SN_FLOAT:
        case SN_DOUBLE:
            return (int)i;
        case SN_BYTES:
        case SN_FIXED:
            if (b->logical == LT_DECIMAL)
                return (int)i;
            break;
        default:
            break;
        }
    }
    return -1;
}

static int enc_union(enc_t *c, const snode_t *u, sl_json_tok_t t, unsigned lvl)
{
    int b;
    switch (t) {
    case SL_JSON_NULL:
        b = u->br_null;
        break;
    case SL_JSON_TRUE:
    case SL_JSON_FALSE:
        b = u->br_bool;
        break;
    case SL_JSON_STRING:
        b = u->br_string;
        break;
    case SL_JSON_NUMBER:
        b = u->br_number == -2 ? pick_number(c, u) : u->br_number;
        break;
    case SL_JSON_OBJ_BEGIN:
        b = u->br_object;
        break;
    case SL_JSON_ARR_BEGIN:
        b = u->br_array;
        break;
    default:
        b = -1;
        break;
    }
    if (b < 0)
        return bad_type(c, u, t, lvl);
    if (put_long(c, b, lvl))
        return -1;
    return enc_value(c, &c->s->nodes[c->s->branches[u->first + (uint32_t)b]], t, lvl);
}

static int enc_value(enc_t *c, const snode_t *n, sl_json_tok_t t, unsigned lvl)
{
    switch ((snode_type_t)n->type) {
    case SN_STRING:
        return enc_string(c, n, t, lvl);
    case SN_LONG:
    case SN_INT:
        return enc_integer(c, n, t, lvl);
    case SN_UNION:
        return enc_union(c, n, t, lvl);
    case SN_RECORD:
        if (t != SL_JSON_OBJ_BEGIN)
            return bad_type(c, n, t, lvl);
        return enc_record(c, n, lvl);
    case SN_NULL:
        if (t != SL_JSON_NULL)
            return bad_type(c, n, t, lvl);
        return 0;
    case SN_BOOLEAN:
        if (t != SL_JSON_TRUE && t != SL_JSON_FALSE)
            return bad_type(c, n, t, lvl);
        if (ensure(c, 1, lvl))
            return -1;
        c->out[c->pos++] = t == SL_JSON_TRUE;
        return 0;
    case SN_FLOAT:
    case SN_DOUBLE:
        return enc_real(c, n, t, lvl);
    case SN_BYTES:
    case SN_FIXED:
        return enc_binary(c, n, t, lvl);
    case SN_ENUM:
        return enc_enum(c, n, t, lvl);
    case SN_ARRAY:
        if (t != SL_JSON_ARR_BEGIN)
            return bad_type(c, n, t, lvl);
        return enc_array(c, n, lvl);
    case SN_MAP:
        if (t != SL_JSON_OBJ_BEGIN)
            return bad_type(c, n, t, lvl);
        return enc_map(c, n, lvl);
    }
    return fail(c, SL_ERR_INTERNAL, lvl, "corrupt schema program");
}

ssize_t schema_encode_json(const schema_t *s, const char *json, size_t len,
                           const schema_skip_t *skip, uint8_t *out, size_t cap, schema_error_t *e)
{
    enc_t c;
    sl_json_tok_t t;

    c.s = s;
    c.skip = skip;
    c.out = out;
    c.cap = cap;
    c.pos = 0;
    c.e = e;
    e->code = SL_ERR_OK;
    e->path[0] = '\0';
    e->detail[0] = '\0';
    if (s->kind != SCHEMA_KIND_AVRO) /* a Protobuf schema has no program to transcode with */
        return fail(&c, SL_ERR_BAD_TYPE, 0, "schema %u is not Avro", (unsigned)s->id);
    if (cap < SCHEMA_FRAME_BYTES)
        return too_large(&c, 0);
    out[0] = 0;
    out[1] = (uint8_t)(s->id >> 24);
    out[2] = (uint8_t)(s->id >> 16);
    out[3] = (uint8_t)(s->id >> 8);
    out[4] = (uint8_t)s->id;
    c.pos = SCHEMA_FRAME_BYTES;
    sl_json_init(&c.j, json, len, SCHEMA_MAX_DEPTH);
    t = sl_json_next(&c.j);
    if (t == SL_JSON_ERROR)
        return scan_err(&c, 0);
    if (t != SL_JSON_OBJ_BEGIN)
        return fail(&c, SL_ERR_EVENT_NOT_OBJECT, 0, "expected an object, got %s", kind_name(t));
    if (enc_record(&c, &s->nodes[s->root], 0))
        return -1;
    if (sl_json_next(&c.j) != SL_JSON_END)
        return scan_err(&c, 0);
    return (ssize_t)c.pos;
}
