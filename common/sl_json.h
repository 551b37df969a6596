/* A strict, allocation-free JSON pull scanner (RFC 8259). The hot path walks tokens directly;
 * nothing builds a DOM. Strings are validated (UTF-8, escapes, no control characters) while
 * scanning and handed out as spans into the input. */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SL_JSON_MAX_DEPTH_LIMIT 256 /* hard ceiling for sl_json_init's max_depth */

typedef enum {
    SL_JSON_ERROR = -1, /* j->err / j->err_pos say what and where; further calls keep returning it */
    SL_JSON_END = 0,    /* the single top-level value ended, followed only by whitespace */
    SL_JSON_OBJ_BEGIN,
    SL_JSON_OBJ_END,
    SL_JSON_ARR_BEGIN,
    SL_JSON_ARR_END,
    SL_JSON_KEY,        /* an object member name: span in str/str_len (raw, without quotes) */
    SL_JSON_STRING,     /* span in str/str_len (raw, without quotes) */
    SL_JSON_NUMBER,     /* span in str/str_len, grammar-checked */
    SL_JSON_TRUE,
    SL_JSON_FALSE,
    SL_JSON_NULL,
} sl_json_tok_t;

typedef struct {
    /* input */
    const char *buf;
    size_t len;
    size_t pos;
    /* current token */
    const char *str;     /* KEY/STRING: bytes between the quotes, escapes not decoded;
                            NUMBER: the number's text */
    size_t str_len;
    int str_has_escapes; /* KEY/STRING contains a backslash: use sl_json_unescape */
    size_t tok_start;    /* offset of the token's first byte (the opening quote, '{', '[', digit...) */
    size_t tok_end;      /* offset one past the token's last byte (after '}' for OBJ_END) */
    /* errors */
    const char *err;     /* static message, e.g. "invalid UTF-8 in string" */
    size_t err_pos;
    /* private */
    unsigned _depth, _max_depth;
    int _state;
    uint8_t _stack[SL_JSON_MAX_DEPTH_LIMIT / 8]; /* bit per level: 1 = object, 0 = array */
} sl_json_t;

/* Starts scanning buf[0..len). max_depth is clamped to [1, SL_JSON_MAX_DEPTH_LIMIT]; deeper
 * nesting is an error ("nesting too deep"), never recursion. */
void sl_json_init(sl_json_t *j, const char *buf, size_t len, unsigned max_depth);

/* Returns the next token. After a KEY the next token is that member's value. */
sl_json_tok_t sl_json_next(sl_json_t *j);

/* Skips the value whose first token was just returned (a scalar: nothing to do; OBJ_BEGIN /
 * ARR_BEGIN: scans to the matching end, validating everything; KEY: skips that member's value).
 * Returns 0, or -1 on a scan error (j->err says which). */
int sl_json_skip(sl_json_t *j, sl_json_tok_t first);

/* Current nesting depth (0 at top level, 1 inside the top-level container...). */
static inline unsigned sl_json_depth(const sl_json_t *j)
{
    return j->_depth;
}

/* Decodes a KEY/STRING span (already validated by the scanner) into out, which must hold at
 * least `len` bytes (decoding never grows; out may equal s). \u escapes become UTF-8, surrogate
 * pairs combined; \u0000 becomes a NUL byte. Malformed escapes in unvalidated input are copied
 * through (lone surrogates become U+FFFD), never read or written out of bounds.
 * Returns the decoded length. */
size_t sl_json_unescape(const char *s, size_t len, char *out);

/* Parses a NUMBER span as a signed 64-bit integer. Returns 0; -1 if it has a fraction or
 * exponent (not an integer); -2 if it is out of range. "1.0" and "1e3" are not integers. */
int sl_json_to_i64(const char *s, size_t len, int64_t *out);

/* Parses a NUMBER span as a double (strtod on a bounded copy; assumes the "C" numeric locale).
 * Returns 0, or -1 if the span is not a JSON number or overflows to infinity. */
int sl_json_to_double(const char *s, size_t len, double *out);

/* Compares a raw KEY/STRING span to a C string literal without decoding (escaped spans never
 * match: callers that care decode first). */
static inline int sl_json_eq(const char *s, size_t len, const char *lit, size_t lit_len)
{
    return len == lit_len && memcmp(s, lit, len) == 0;
}
#define SL_JSON_EQ(s, len, lit) sl_json_eq((s), (len), (lit), sizeof(lit) - 1)

#endif
