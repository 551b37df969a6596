/* Reads the gateway's answers: the 200 batch result (only non-accepted events are listed) and
 * the error body of whole-request errors. A small strict walker, not a general JSON parser:
 * it understands objects, arrays, strings (escapes skipped), numbers and literals. */
#include <string.h>

#include "lg_int.h"

typedef struct {
    const char *p, *end;
    int depth;
} walker_t;

static void ws(walker_t *w)
{
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r'))
        w->p++;
}

static int expect(walker_t *w, char c)
{
    ws(w);
    if (w->p >= w->end || *w->p != c)
        return -1;
    w->p++;
    return 0;
}

static int peek(walker_t *w, char c)
{
    ws(w);
    return w->p < w->end && *w->p == c;
}

/* A string: [*s, *s + *len) are its raw bytes between the quotes (escapes left as they are). */
static int string(walker_t *w, const char **s, size_t *len)
{
    if (expect(w, '"') != 0)
        return -1;
    *s = w->p;
    while (w->p < w->end && *w->p != '"') {
        if (*w->p == '\\' && ++w->p >= w->end)
            return -1;
        w->p++;
    }
    if (w->p >= w->end)
        return -1;
    *len = (size_t)(w->p - *s);
    w->p++;
    return 0;
}

static int number(walker_t *w, long *v)
{
    long x = 0;
    int neg = 0, digits = 0;
    ws(w);
    if (w->p < w->end && *w->p == '-')
        neg = 1, w->p++;
    while (w->p < w->end && *w->p >= '0' && *w->p <= '9' && digits < 18)
        x = x * 10 + (*w->p++ - '0'), digits++;
    if (digits == 0)
        return -1;
    /* fractions and exponents are not expected where we read numbers; skip them */
    while (w->p < w->end && strchr("0123456789.eE+-", *w->p) != NULL)
        w->p++;
    *v = neg ? -x : x;
    return 0;
}

static int skip(walker_t *w);

/* Calls member(arg, key, keylen) positioned at each member's value; it must consume it. */
static int object(walker_t *w, int (*member)(walker_t *, void *, const char *, size_t), void *arg)
{
    if (expect(w, '{') != 0 || ++w->depth > 64)
        return -1;
    if (peek(w, '}')) {
        w->p++, w->depth--;
        return 0;
    }
    for (;;) {
        const char *k;
        size_t klen;
        if (string(w, &k, &klen) != 0 || expect(w, ':') != 0 || member(w, arg, k, klen) != 0)
            return -1;
        if (peek(w, ','))
            w->p++;
        else if (expect(w, '}') == 0)
            break;
        else
            return -1;
    }
    w->depth--;
    return 0;
}

static int skip_member(walker_t *w, void *arg, const char *k, size_t klen)
{
    return skip(w);
}

static int skip(walker_t *w)
{
    ws(w);
    if (w->p >= w->end)
        return -1;
    switch (*w->p) {
    case '{':
        return object(w, skip_member, NULL);
    case '[':
        if (++w->depth > 64)
            return -1;
        w->p++;
        if (peek(w, ']')) {
            w->p++, w->depth--;
            return 0;
        }
        for (;;) {
            if (skip(w) != 0)
                return -1;
            if (peek(w, ','))
                w->p++;
            else if (expect(w, ']') == 0)
                break;
            else
                return -1;
        }
        w->depth--;
        return 0;
    case '"': {
        const char *s;
        size_t n;
        return string(w, &s, &n);
    }
    default: {
        const char *start = w->p;
        while (w->p < w->end && strchr(",}] \t\r\n", *w->p) == NULL)
            w->p++;
        return w->p > start ? 0 : -1;
    }
    }
}

#define KEY_IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), (n)) == 0)

typedef struct {
    long i;
    int ans;
    const char *code;
    size_t code_len;
} item_t;

static int item_member(walker_t *w, void *arg, const char *k, size_t klen)
{
    item_t *it = arg;
    if (KEY_IS(k, klen, "i"))
        return number(w, &it->i);
    if (KEY_IS(k, klen, "status")) {
        const char *s;
        size_t n;
        if (string(w, &s, &n) != 0)
            return -1;
        if (KEY_IS(s, n, "accepted"))
            it->ans = LG_ANS_ACCEPTED;
        else if (KEY_IS(s, n, "duplicate"))
            it->ans = LG_ANS_DUPLICATE;
        else if (KEY_IS(s, n, "invalid"))
            it->ans = LG_ANS_INVALID;
        else if (KEY_IS(s, n, "retry"))
            it->ans = LG_ANS_RETRY;
        else
            return -1; /* an outcome this tool does not know: refuse to guess */
        return 0;
    }
    if (KEY_IS(k, klen, "code"))
        return string(w, &it->code, &it->code_len);
    return skip(w);
}

typedef struct {
    lg_resp_event_cb cb;
    void *arg;
    int has_events;
} batch_t;

static int batch_member(walker_t *w, void *arg, const char *k, size_t klen)
{
    batch_t *bt = arg;
    if (!KEY_IS(k, klen, "events"))
        return skip(w);
    bt->has_events = 1;
    if (expect(w, '[') != 0)
        return -1;
    if (peek(w, ']')) {
        w->p++;
        return 0;
    }
    for (;;) {
        item_t it = {.i = -1, .ans = -1};
        if (object(w, item_member, &it) != 0 || it.i < 0 || it.ans < 0)
            return -1;
        bt->cb(bt->arg, it.i, it.ans, it.code, it.code_len);
        if (peek(w, ','))
            w->p++;
        else
            return expect(w, ']');
    }
}

int lg_resp_parse_batch(const char *s, size_t n, lg_resp_event_cb cb, void *arg)
{
    walker_t w = {s, s + n, 0};
    batch_t bt = {cb, arg, 0};
    if (object(&w, batch_member, &bt) != 0 || !bt.has_events)
        return -1;
    ws(&w);
    return w.p == w.end ? 0 : -1;
}

typedef struct {
    char *out;
    size_t cap;
    int len;
} err_t;

static int error_inner(walker_t *w, void *arg, const char *k, size_t klen)
{
    err_t *e = arg;
    const char *s;
    size_t n;
    if (!KEY_IS(k, klen, "code"))
        return skip(w);
    if (string(w, &s, &n) != 0)
        return -1;
    if (n >= e->cap)
        n = e->cap - 1;
    memcpy(e->out, s, n);
    e->out[n] = '\0';
    e->len = (int)n;
    return 0;
}

static int error_outer(walker_t *w, void *arg, const char *k, size_t klen)
{
    if (!KEY_IS(k, klen, "error"))
        return skip(w);
    return object(w, error_inner, arg);
}

int lg_resp_error_code(const char *s, size_t n, char *out, size_t cap)
{
    walker_t w = {s, s + n, 0};
    err_t e = {out, cap, -1};
    if (cap == 0 || object(&w, error_outer, &e) != 0)
        return -1;
    return e.len;
}
