/* HTTP/1.1 keep-alive client half: one request in flight per connection; answers framed by
 * Content-Length or chunked encoding. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lg_int.h"

#define MAX_HEADER_BYTES 65536
#define MAX_BODY_BYTES (4u << 20)

void lg_h1_write_request(lg_conn_t *c, lg_job_t *job)
{
    const lg_conf_t *conf = c->w->conf;
    const lg_body_t *body = job->body;
    lg_buf_t *b = &c->out;

    lg_buf_reserve(b, 512 + body->wire_len);
    LG_BUF_LIT(b, "POST ");
    lg_buf_append(b, conf->path, strlen(conf->path));
    LG_BUF_LIT(b, " HTTP/1.1\r\nHost: ");
    lg_buf_append(b, conf->authority, strlen(conf->authority));
    LG_BUF_LIT(b, "\r\nAuthorization: Bearer ");
    lg_buf_append(b, conf->tenants[body->tenant].key, strlen(conf->tenants[body->tenant].key));
    LG_BUF_LIT(b, "\r\nContent-Type: application/json\r\nUser-Agent: sluice-load/0.1\r\n");
    if (conf->is_gzip)
        LG_BUF_LIT(b, "Content-Encoding: gzip\r\n");
    LG_BUF_LIT(b, "Content-Length: ");
    lg_buf_put_u64(b, body->wire_len);
    LG_BUF_LIT(b, "\r\n\r\n");
    lg_buf_append(b, body->wire, body->wire_len);
    job->wire_off = body->wire_len;
}

/* Finds "\r\n\r\n"; returns the offset just past it, or 0. */
static size_t header_end(const char *p, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
            return i + 1;
    return 0;
}

static int header_is(const char *line, size_t len, const char *name, const char **value,
                     size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return 0;
    line += n + 1, len -= n + 1;
    while (len > 0 && (*line == ' ' || *line == '\t'))
        line++, len--;
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    *value = line, *vlen = len;
    return 1;
}

static long parse_num(const char *s, size_t n, int base)
{
    char tmp[24];
    char *end;
    long v;
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    v = strtol(tmp, &end, base);
    return end == tmp || v < 0 ? -1 : v;
}

/* Decodes a chunked body starting at p. Returns the bytes consumed (trailers included), 0 when
 * incomplete, -1 when malformed. */
static long dechunk(const char *p, size_t n, lg_buf_t *out)
{
    size_t off = 0;
    for (;;) {
        const char *eol = memchr(p + off, '\n', n - off);
        size_t line_len;
        long size;
        if (eol == NULL)
            return n - off > 64 ? -1 : 0;
        line_len = (size_t)(eol - (p + off));
        if (line_len == 0 || p[off + line_len - 1] != '\r')
            return -1;
        {
            const char *semi = memchr(p + off, ';', line_len - 1);
            size = parse_num(p + off, semi != NULL ? (size_t)(semi - (p + off)) : line_len - 1, 16);
        }
        if (size < 0 || (size_t)size > MAX_BODY_BYTES)
            return -1;
        off += line_len + 1;
        if (size == 0) { /* trailers until an empty line */
            for (;;) {
                const char *t = memchr(p + off, '\n', n - off);
                if (t == NULL)
                    return 0;
                if (t == p + off + 1 && p[off] == '\r')
                    return (long)(off + 2);
                off = (size_t)(t - p) + 1;
            }
        }
        if (n - off < (size_t)size + 2)
            return 0;
        if (out->len + (size_t)size > MAX_BODY_BYTES)
            return -1;
        lg_buf_append(out, p + off, (size_t)size);
        off += (size_t)size + 2;
    }
}

/* One response from the front of c->in. Returns the bytes it took, 0 if incomplete, -1 when
 * malformed. Sets *is_close when the server will close the connection. */
static long parse_one(lg_conn_t *c, lg_job_t *job, int *is_close)
{
    const char *p = c->in.data, *line, *eol, *value;
    size_t n = c->in.len, hlen = header_end(p, n < MAX_HEADER_BYTES ? n : MAX_HEADER_BYTES), vlen;
    long clen = -1, status;
    int is_chunked = 0;

    if (hlen == 0)
        return n >= MAX_HEADER_BYTES ? -1 : 0;
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (status = parse_num(p + 9, 3, 10)) < 100)
        return -1;
    if (p[7] == '0')
        *is_close = 1; /* an HTTP/1.0 answer */
    for (line = (const char *)memchr(p, '\n', hlen) + 1; line < p + hlen - 2; line = eol + 1) {
        size_t len;
        eol = memchr(line, '\n', (size_t)(p + hlen - line));
        len = (size_t)(eol - line) - 1;
        if (header_is(line, len, "content-length", &value, &vlen)) {
            if ((clen = parse_num(value, vlen, 10)) < 0 || clen > (long)MAX_BODY_BYTES)
                return -1;
        } else if (header_is(line, len, "transfer-encoding", &value, &vlen)) {
            is_chunked = vlen >= 7 && strncasecmp(value + vlen - 7, "chunked", 7) == 0;
        } else if (header_is(line, len, "retry-after", &value, &vlen)) {
            job->retry_after_s = (int)parse_num(value, vlen, 10);
        } else if (header_is(line, len, "connection", &value, &vlen)) {
            if (vlen == 5 && strncasecmp(value, "close", 5) == 0)
                *is_close = 1;
        }
    }
    if (status < 200) /* 1xx: an interim answer, the real one follows */
        return (long)hlen;
    job->status = (int)status;
    job->resp.len = 0;
    if (is_chunked) {
        long used = dechunk(p + hlen, n - hlen, &job->resp);
        if (used <= 0) {
            job->resp.len = 0;
            return used;
        }
        return (long)hlen + used;
    }
    if (clen < 0) /* no length: the body runs to the end of the connection; we do not do that */
        return -1;
    if (n - hlen < (size_t)clen)
        return 0;
    lg_buf_append(&job->resp, p + hlen, (size_t)clen);
    return (long)hlen + clen;
}

int lg_h1_on_read(lg_conn_t *c)
{
    while (c->in.len > 0) {
        lg_job_t *job = c->jobs;
        int is_close = 0;
        long used;

        if (job == NULL)
            return -1; /* an answer nobody asked for */
        used = parse_one(c, job, &is_close);
        if (used < 0)
            return -1;
        if (used == 0)
            return 0;
        memmove(c->in.data, c->in.data + used, c->in.len - (size_t)used);
        c->in.len -= (size_t)used;
        if (job->status == 0)
            continue; /* it was a 1xx */
        lg_conn_untrack(c, job);
        lg_worker_on_answer(c->w, job);
        if (is_close)
            return 1;
    }
    return 0;
}
