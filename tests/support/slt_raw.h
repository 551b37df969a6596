/* slt_raw: raw client connections for protocol-abuse tests: plain TCP or TLS (OpenSSL, ALPN,
 * no certificate check) with deadline-bounded reads and writes, and an HTTP/2 frame writer and
 * reader, so a test can send what no well-behaved client library would (reset floods, trickled
 * bytes, conflicting framing). One connection per thread; different connections may be used
 * from different threads. */
#ifndef SLT_RAW_H
#define SLT_RAW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct slt_raw slt_raw_t;

/* Connects to 127.0.0.1:port; with tls, does the TLS handshake offering ALPN alpn (e.g. "h2",
 * NULL: none). Returns NULL (with a note) on failure or after timeout_ms. */
slt_raw_t *slt_raw_connect(int port, int tls, const char *alpn, int timeout_ms);
/* Writes all len bytes within timeout_ms. Returns 0, or -1 when the peer closed or failed, or
 * -2 at the deadline. */
int slt_raw_write(slt_raw_t *c, const void *buf, size_t len, int timeout_ms);
/* Reads what is there (waits up to timeout_ms for the first byte; 0: do not wait). Returns the
 * byte count, 0 when the peer closed (EOF, reset, TLS close), -2 at the deadline. */
ssize_t slt_raw_read(slt_raw_t *c, void *buf, size_t cap, int timeout_ms);
/* Reads and discards until the peer closes (returns 1) or timeout_ms passes (returns 0). */
int slt_raw_wait_closed(slt_raw_t *c, int timeout_ms);
void slt_raw_close(slt_raw_t *c);

/* ---- HTTP/2 (RFC 9113) ---- */
enum {
    SLT_H2_DATA = 0,
    SLT_H2_HEADERS = 1,
    SLT_H2_RST_STREAM = 3,
    SLT_H2_SETTINGS = 4,
    SLT_H2_PING = 6,
    SLT_H2_GOAWAY = 7,
    SLT_H2_WINDOW_UPDATE = 8,
    SLT_H2_CONTINUATION = 9,
};
enum { SLT_H2_END_STREAM = 0x1, SLT_H2_ACK = 0x1, SLT_H2_END_HEADERS = 0x4 };

/* Appends one frame (9-byte header + payload) at out; returns its size. */
size_t slt_h2_frame(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream_id,
                    const void *payload, size_t len);
/* The client connection preface followed by an empty SETTINGS frame; returns its size. */
size_t slt_h2_preface(uint8_t *out);
/* An HPACK header block (every field a literal without indexing, so no table state) for
 * method, https, path, authority 127.0.0.1, then the NULL-terminated name/value pairs in extra
 * (may be NULL). Returns its size; cap must hold it (about 64 + the strings). */
size_t slt_h2_header_block(uint8_t *out, size_t cap, const char *method, const char *path,
                           const char *const *extra);

/* Incoming frames, reassembled from a connection's bytes. */
typedef struct {
    uint8_t buf[1 << 16];
    size_t len;
    size_t skip; /* payload bytes still to drop of a frame too big for buf */
    int saw_goaway;
    uint32_t goaway_error;
    size_t n_headers, n_rst, n_settings; /* frames of those types seen */
} slt_h2_reader_t;
/* Feeds bytes; frames bigger than the buffer are skipped over. */
void slt_h2_reader_feed(slt_h2_reader_t *r, const uint8_t *data, size_t len);

#endif
