/* Raw TCP/TLS client connections and HTTP/2 frames for protocol-abuse tests (see slt_raw.h). */
#include "slt_raw.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "slt.h"

struct slt_raw {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int is_closed;
};

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - slt_now_ms();
    return left > 0 ? (int)left : 0;
}

/* Waits for the socket to become readable (POLLIN) or writable; 1, or 0 at the deadline. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    int rc;
    do {
        rc = poll(&p, 1, remaining_ms(deadline));
    } while (rc < 0 && errno == EINTR);
    return rc > 0;
}

slt_raw_t *slt_raw_connect(int port, int tls, const char *alpn, int timeout_ms)
{
    int64_t deadline = slt_now_ms() + timeout_ms;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    slt_raw_t *c = calloc(1, sizeof(*c));
    int one = 1;

    if (c == NULL)
        abort();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        goto Fail;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int err = 0;
        socklen_t elen = sizeof(err);
        if (errno != EINPROGRESS || !wait_fd(c->fd, POLLOUT, deadline) ||
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0)
            goto Fail;
    }
    if (!tls)
        return c;
    if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL || (c->ssl = SSL_new(c->ctx)) == NULL)
        goto Fail;
    SSL_set_verify(c->ssl, SSL_VERIFY_NONE,
                   NULL); /* the gateway's test certificate is self-signed */
    if (alpn != NULL) {
        unsigned char wire[64];
        size_t n = strlen(alpn);
        if (n + 1 > sizeof(wire))
            goto Fail;
        wire[0] = (unsigned char)n;
        memcpy(wire + 1, alpn, n);
        if (SSL_set_alpn_protos(c->ssl, wire, (unsigned)(n + 1)) != 0)
            goto Fail;
    }
    SSL_set_fd(c->ssl, c->fd);
    for (;;) {
        int rc = SSL_connect(c->ssl), e;
        if (rc == 1)
            break;
        e = SSL_get_error(c->ssl, rc);
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
            !wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
            goto Fail;
    }
    return c;
Fail:
    slt_note("raw connect to port %d failed (%s)", port, strerror(errno));
    ERR_clear_error();
    slt_raw_close(c);
    return NULL;
}

int slt_raw_write(slt_raw_t *c, const void *buf, size_t len, int timeout_ms)
{
    int64_t deadline = slt_now_ms() + timeout_ms;
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n;
        short wait_for = POLLOUT;
        if (c->is_closed)
            return -1;
        if (c->ssl != NULL) {
            int rc = SSL_write(c->ssl, p, (int)(len > INT32_MAX ? INT32_MAX : len));
            if (rc > 0) {
                n = rc;
            } else {
                int e = SSL_get_error(c->ssl, rc);
                ERR_clear_error();
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    c->is_closed = 1;
                    return -1;
                }
                n = 0;
                wait_for = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
            }
        } else {
            n = send(c->fd, p, len, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                c->is_closed = 1;
                return -1;
            }
            if (n < 0)
                n = 0;
        }
        p += n;
        len -= (size_t)n;
        if (len > 0 && n == 0 && !wait_fd(c->fd, wait_for, deadline))
            return -2;
    }
    return 0;
}

ssize_t slt_raw_read(slt_raw_t *c, void *buf, size_t cap, int timeout_ms)
{
    int64_t deadline = slt_now_ms() + timeout_ms;

    for (;;) {
        short wait_for = POLLIN;
        if (c->is_closed)
            return 0;
        if (c->ssl != NULL) {
            int rc = SSL_read(c->ssl, buf, (int)(cap > INT32_MAX ? INT32_MAX : cap));
            if (rc > 0)
                return rc;
            int e = SSL_get_error(c->ssl, rc);
            ERR_clear_error();
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                c->is_closed = 1; /* close_notify, EOF or a reset */
                return 0;
            }
            wait_for = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        } else {
            ssize_t n = recv(c->fd, buf, cap, 0);
            if (n > 0)
                return n;
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                c->is_closed = 1;
                return 0;
            }
        }
        if (!wait_fd(c->fd, wait_for, deadline))
            return -2;
    }
}

int slt_raw_wait_closed(slt_raw_t *c, int timeout_ms)
{
    int64_t deadline = slt_now_ms() + timeout_ms;
    uint8_t buf[16384];

    while (!c->is_closed) {
        ssize_t n = slt_raw_read(c, buf, sizeof(buf), remaining_ms(deadline));
        if (n == -2)
            return 0;
    }
    return 1;
}

void slt_raw_close(slt_raw_t *c)
{
    if (c == NULL)
        return;
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    if (c->ctx != NULL)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

size_t slt_h2_frame(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream_id,
                    const void *payload, size_t len)
{
    out[0] = (uint8_t)(len >> 16);
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)len;
    out[3] = type;
    out[4] = flags;
    out[5] = (uint8_t)((stream_id >> 24) & 0x7f);
    out[6] = (uint8_t)(stream_id >> 16);
    out[7] = (uint8_t)(stream_id >> 8);
    out[8] = (uint8_t)stream_id;
    if (len > 0)
        memcpy(out + 9, payload, len);
    return 9 + len;
}

size_t slt_h2_preface(uint8_t *out)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    memcpy(out, preface, sizeof(preface) - 1);
    return sizeof(preface) - 1 +
           slt_h2_frame(out + sizeof(preface) - 1, SLT_H2_SETTINGS, 0, 0, NULL, 0);
}

/* HPACK integer with an n-bit prefix (RFC 7541 5.1); first byte's high bits from `flags`. */
static size_t hpack_int(uint8_t *out, uint8_t flags, int prefix_bits, size_t v)
{
    size_t max = ((size_t)1 << prefix_bits) - 1, n = 0;
    if (v < max) {
        out[n++] = (uint8_t)(flags | v);
        return n;
    }
    out[n++] = (uint8_t)(flags | max);
    v -= max;
    while (v >= 128) {
        out[n++] = (uint8_t)(0x80 | (v & 0x7f));
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* "Literal Header Field without Indexing -- New Name" (RFC 7541 6.2.2), no Huffman. */
static size_t hpack_literal(uint8_t *out, const char *name, const char *value)
{
    size_t n = 0, nl = strlen(name), vl = strlen(value);
    out[n++] = 0x00;
    n += hpack_int(out + n, 0, 7, nl);
    memcpy(out + n, name, nl);
    n += nl;
    n += hpack_int(out + n, 0, 7, vl);
    memcpy(out + n, value, vl);
    return n + vl;
}

size_t slt_h2_header_block(uint8_t *out, size_t cap, const char *method, const char *path,
                           const char *const *extra)
{
    size_t need = 64 + strlen(method) + strlen(path), n = 0;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        need += 16 + strlen(extra[i]);
    if (need > cap)
        abort(); /* a test bug: the caller's buffer is too small */
    n += hpack_literal(out + n, ":method", method);
    n += hpack_literal(out + n, ":scheme", "https");
    n += hpack_literal(out + n, ":path", path);
    n += hpack_literal(out + n, ":authority", "127.0.0.1");
    for (size_t i = 0; extra != NULL && extra[i] != NULL && extra[i + 1] != NULL; i += 2)
        n += hpack_literal(out + n, extra[i], extra[i + 1]);
    return n;
}

void slt_h2_reader_feed(slt_h2_reader_t *r, const uint8_t *data, size_t len)
{
    while (len > 0) {
        size_t take;
        if (r->skip > 0) {
            take = len < r->skip ? len : r->skip;
            r->skip -= take, data += take, len -= take;
            continue;
        }
        take = sizeof(r->buf) - r->len < len ? sizeof(r->buf) - r->len : len;
        memcpy(r->buf + r->len, data, take);
        r->len += take, data += take, len -= take;
        /* consume every complete frame in the buffer */
        while (r->len >= 9) {
            size_t flen = (size_t)r->buf[0] << 16 | (size_t)r->buf[1] << 8 | r->buf[2];
            uint8_t type = r->buf[3];
            if (9 + flen > sizeof(r->buf)) { /* bigger than the buffer: drop it */
                r->skip = 9 + flen - r->len;
                r->len = 0;
                break;
            }
            if (r->len < 9 + flen)
                break; /* wait for the rest of the frame */
            if (type == SLT_H2_GOAWAY && flen >= 8) {
                r->saw_goaway = 1;
                r->goaway_error = (uint32_t)r->buf[13] << 24 | (uint32_t)r->buf[14] << 16 |
                                  (uint32_t)r->buf[15] << 8 | r->buf[16];
            }
            r->n_headers += type == SLT_H2_HEADERS;
            r->n_rst += type == SLT_H2_RST_STREAM;
            r->n_settings += type == SLT_H2_SETTINGS;
            memmove(r->buf, r->buf + 9 + flen, r->len - 9 - flen);
            r->len -= 9 + flen;
        }
    }
}
