/* Integration: hostile input and slow clients. Every case gets its documented answer (status and
 * machine code, or a closed connection) and is counted in /metrics, the gateway never crashes,
 * hangs or leaks (ASan in CI), and an honest client is served throughout:
 *  - bodies: malformed JSON, invalid UTF-8, NUL bytes, huge / non-integer numbers, 1,000,000-deep
 *    nesting, duplicate keys, wrong Content-Type, unknown Content-Encoding, gzip bomb, truncated
 *    gzip (HTTP/1.1 and HTTP/2, with per-code counters checked);
 *  - framing: Content-Length + Transfer-Encoding and two Content-Lengths on HTTP/1.1 (raw socket:
 *    400 conflicting_framing, connection closed, the smuggled request never answered);
 *  - header floods: HTTP/1.1 over 100 headers and a 500 KB head (h2o: 400 and close), HTTP/2 a
 *    header block over h2o's 408 KB limit (stream refused or connection closed);
 *  - slowloris: HTTP/1.1 head trickled byte by byte, HTTP/1.1 body trickled (cut by
 *    gateway.header_timeout), HTTP/2 body and header trickle (cut by gateway.body_timeout). */
#include "slt.h"
#include "slt_raw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define HEADER_TIMEOUT_MS 2000
#define BODY_TIMEOUT_MS 2000
/* a cut must come after the timeout and before this much slack (loaded ASan machine) */
#define CUT_SLACK_MS 3000
#define AUTH "Authorization: Bearer " SLT_WRITE_KEY_A

static long metric_code(const slt_stack_t *s, const char *code)
{
    char sample[128];
    snprintf(sample, sizeof(sample), "sluice_errors_total{code=\"%s\"}", code);
    return slt_gateway_metric(s, sample);
}

static unsigned char *gzip_bytes(const void *data, size_t len, size_t *out_len)
{
    z_stream zs;
    size_t cap;
    unsigned char *out;

    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    cap = deflateBound(&zs, (uLong)len) + 64;
    if ((out = malloc(cap)) == NULL)
        abort();
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        abort();
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

/* One valid event with a fresh id and `extra` spliced in as further members (may be ""). */
static char *event_json(const char *extra)
{
    char id[37], *out;
    slt_uuid4(id);
    if (asprintf(&out,
                 "{\"event_id\":\"%s\",\"event_type\":\"page_view\",\"ts\":1763999999000,"
                 "\"user_id\":\"u-1\"%s}",
                 id, extra) < 0)
        abort();
    return out;
}

static char *batch_of(const char *event)
{
    char *out;
    if (asprintf(&out, "{\"sent_at\":1764000000000,\"events\":[%s]}", event) < 0)
        abort();
    return out;
}

typedef struct {
    const char *what;
    const char *const *headers;
    const void *body;
    size_t body_len;
    long status;
    const char *code;       /* whole-request code, or the one event's code in a 200 */
    const char *event_code; /* non-NULL: 200 with one event invalid with this code */
} body_case_t;

static void run_body_case(const slt_stack_t *s, const body_case_t *c, slt_http_version_t v)
{
    char url[200], what[160], err[256];
    slt_http_req_t req = {.method = "POST",
                          .url = slt_public_url(s, "/v1/batch", url, sizeof(url)),
                          .headers = c->headers,
                          .body = c->body,
                          .body_len = c->body_len,
                          .version = v};
    slt_http_resp_t resp;
    int64_t t0 = slt_now_ms();

    snprintf(what, sizeof(what), "%s (%s)", c->what, v == SLT_HTTP_2 ? "HTTP/2" : "HTTP/1.1");
    slt_http(&req, &resp);
    SLT_CHECK(slt_now_ms() - t0 < 5000, "%s: answered in %lld ms", what,
              (long long)(slt_now_ms() - t0));
    if (c->event_code == NULL) {
        if (slt_check_error(what, &resp, c->status, c->code))
            slt_note("ok: %s -> %ld %s", what, c->status, c->code);
    } else {
        slt_batch_resp_t r;
        SLT_CHECK(resp.status == 200, "%s: status %ld, want 200 (%.200s)", what, resp.status,
                  resp.body);
        if (resp.status == 200 &&
            slt_batch_resp_parse(resp.body, resp.body_len, &r, err, sizeof(err)) == 0) {
            const slt_outcome_t *o = slt_batch_resp_find(&r, 0);
            SLT_CHECK(r.invalid == 1 && o != NULL && strcmp(o->status, "invalid") == 0 &&
                          o->code != NULL && strcmp(o->code, c->event_code) == 0,
                      "%s: want the event invalid with %s, got %.300s", what, c->event_code,
                      resp.body);
            slt_note("ok: %s -> 200, event invalid %s", what, c->event_code);
            slt_batch_resp_dispose(&r);
        }
    }
    slt_http_resp_dispose(&resp);
}

/* A normal batch must be accepted whole (the honest client next to the abuse). */
static int honest_ok(const slt_stack_t *s)
{
    slt_batch_t b;
    slt_http_resp_t resp;
    int ok;
    slt_batch_init(&b);
    slt_batch_add_n(&b, 5);
    slt_post_batch(s, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
    ok = resp.status == 200 && strstr(resp.body, "\"accepted\":5") != NULL;
    slt_http_resp_dispose(&resp);
    slt_batch_dispose(&b);
    return ok;
}

static void body_suite(const slt_stack_t *s)
{
    static const char *const json[] = {"Content-Type: application/json", AUTH, NULL};
    static const char *const png[] = {"Content-Type: image/png", AUTH, NULL};
    static const char *const no_ct[] = {AUTH, NULL};
    static const char *const br[] = {"Content-Type: application/json", "Content-Encoding: br", AUTH,
                                     NULL};
    static const char *const gz[] = {"Content-Type: application/json", "Content-Encoding: gzip",
                                     AUTH, NULL};
    static const char bad_utf8[] = "{\"events\":[{\"event_id\":\"\xff\xfe\xfd\"}]}";
    static const char raw_nul[] = "{\"events\":[{\"user_id\":\"a\0b\"}]}";
    static const char nul_outside[] = "{\"events\":[]}\0";
    static const char malformed[] = "{\"events\":[{]}";
    static const char twice[] = "{\"events\":[],\"events\":[]}";
    char *ev_huge = event_json(",\"page_id\":123456789012345678901234567890");
    char *ev_float = event_json(",\"page_id\":1.5");
    char *ev_exp = event_json(",\"page_id\":1e400");
    char *ev_dup = event_json(",\"user_id\":\"u-2\"");
    char *b_huge = batch_of(ev_huge), *b_float = batch_of(ev_float), *b_exp = batch_of(ev_exp),
         *b_dup = batch_of(ev_dup);
    size_t deep_len = 1000000 + 16, bomb_plain_len = 10u << 20, bomb_len, good_gz_len;
    char *deep = malloc(deep_len), *bomb_plain = malloc(bomb_plain_len);
    char *good = batch_of(ev_huge); /* any body: only the gzip framing matters below */
    unsigned char *bomb, *good_gz;

    if (deep == NULL || bomb_plain == NULL)
        abort();
    memcpy(deep, "{\"events\":[", 11);
    memset(deep + 11, '[', deep_len - 11);
    memset(bomb_plain, ' ', bomb_plain_len);
    memcpy(bomb_plain, "{\"events\":[", 11);
    memcpy(bomb_plain + bomb_plain_len - 2, "]}", 2);
    bomb = gzip_bytes(bomb_plain, bomb_plain_len, &bomb_len);
    good_gz = gzip_bytes(good, strlen(good), &good_gz_len);

    const body_case_t cases[] = {
        {"malformed JSON", json, malformed, sizeof(malformed) - 1, 400, "malformed_json", NULL},
        {"invalid UTF-8 in a string", json, bad_utf8, sizeof(bad_utf8) - 1, 400, "malformed_json",
         NULL},
        {"raw NUL byte in a string", json, raw_nul, sizeof(raw_nul) - 1, 400, "malformed_json",
         NULL},
        {"NUL byte after the body", json, nul_outside, sizeof(nul_outside) - 1, 400,
         "malformed_json", NULL},
        {"1,000,000-deep nesting", json, deep, deep_len, 400, "malformed_json", NULL},
        {"\"events\" twice", json, twice, sizeof(twice) - 1, 400, "bad_batch_field", NULL},
        {"integer over 64 bits", json, b_huge, strlen(b_huge), 200, NULL, "bad_value"},
        {"non-integer number", json, b_float, strlen(b_float), 200, NULL, "bad_type"},
        {"number 1e400", json, b_exp, strlen(b_exp), 200, NULL, "bad_type"},
        {"duplicate key in an event", json, b_dup, strlen(b_dup), 200, NULL, "duplicate_key"},
        {"Content-Type image/png", png, good, strlen(good), 415, "unsupported_media_type", NULL},
        {"no Content-Type", no_ct, good, strlen(good), 415, "unsupported_media_type", NULL},
        {"Content-Encoding br", br, good, strlen(good), 415, "unsupported_encoding", NULL},
        {"gzip bomb (10 MiB inflated)", gz, bomb, bomb_len, 413, "decompressed_too_large", NULL},
        {"truncated gzip", gz, good_gz, good_gz_len / 2, 400, "malformed_gzip", NULL},
    };
    static const char *const counted[] = {"malformed_json",
                                          "bad_batch_field",
                                          "bad_value",
                                          "bad_type",
                                          "duplicate_key",
                                          "unsupported_media_type",
                                          "unsupported_encoding",
                                          "decompressed_too_large",
                                          "malformed_gzip"};
    size_t n_cases = sizeof(cases) / sizeof(cases[0]),
           n_counted = sizeof(counted) / sizeof(*counted);
    long before[16], want[16] = {0};

    for (size_t k = 0; k < n_counted; k++)
        before[k] = metric_code(s, counted[k]);
    for (size_t i = 0; i < n_cases; i++) {
        const char *code = cases[i].event_code != NULL ? cases[i].event_code : cases[i].code;
        run_body_case(s, &cases[i], SLT_HTTP_1_1);
        run_body_case(s, &cases[i], SLT_HTTP_2);
        for (size_t k = 0; k < n_counted; k++)
            want[k] += strcmp(counted[k], code) == 0 ? 2 : 0;
    }
    for (size_t k = 0; k < n_counted; k++) {
        long now = metric_code(s, counted[k]);
        SLT_CHECK(now - before[k] == want[k],
                  "sluice_errors_total{code=\"%s\"} grew by %ld, want %ld", counted[k],
                  now - before[k], want[k]);
    }
    SLT_CHECK(honest_ok(s), "an honest batch is accepted after the body suite");
    free(ev_huge), free(ev_float), free(ev_exp), free(ev_dup);
    free(b_huge), free(b_float), free(b_exp), free(b_dup);
    free(deep), free(bomb_plain), free(bomb), free(good_gz), free(good);
}

/* Sends an HTTP/1.1 request over TLS and reads until the peer closes (or 5 s). Returns what was
 * read (malloc'd) and whether the connection was closed. */
static char *h1_exchange(const slt_stack_t *s, const char *req, size_t len, int *closed)
{
    slt_raw_t *c = slt_raw_connect(s->http_port, 1, "http/1.1", 5000);
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(1, cap + 1);
    int64_t end = slt_now_ms() + 5000;

    *closed = 0;
    if (c == NULL || out == NULL) {
        SLT_CHECK(c != NULL, "raw HTTP/1.1 connection");
        slt_raw_close(c);
        return out;
    }
    slt_raw_write(c, req, len, 5000);
    while (slt_now_ms() < end && n < cap) {
        ssize_t got = slt_raw_read(c, out + n, cap - n, (int)(end - slt_now_ms()));
        if (got == 0) {
            *closed = 1;
            break;
        }
        if (got < 0)
            break;
        n += (size_t)got;
    }
    slt_raw_close(c);
    return out;
}

static int count_substr(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void framing_suite(const slt_stack_t *s)
{
    static const char cl_te[] = "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                "Content-Type: application/json\r\n" AUTH "\r\n"
                                "Content-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    static const char cl_cl[] = "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                "Content-Type: application/json\r\n" AUTH "\r\n"
                                "Content-Length: 13\r\ncontent-length: 0\r\n\r\n"
                                "{\"events\":[]}GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const char *const reqs[] = {cl_te, cl_cl};
    const size_t lens[] = {sizeof(cl_te) - 1, sizeof(cl_cl) - 1};
    const char *const names[] = {"Content-Length + Transfer-Encoding", "Content-Length twice"};
    long before = metric_code(s, "conflicting_framing");
    long closed_before =
        slt_gateway_metric(s, "sluice_conn_closed_total{reason=\"conflicting_framing\"}");

    for (int i = 0; i < 2; i++) {
        int closed;
        char *out = h1_exchange(s, reqs[i], lens[i], &closed);
        SLT_CHECK(strncmp(out, "HTTP/1.1 400", 12) == 0 && strstr(out, "conflicting_framing"),
                  "%s: 400 conflicting_framing, got %.120s", names[i], out);
        SLT_CHECK(count_substr(out, "HTTP/1.1 ") == 1,
                  "%s: exactly one response (the smuggled request is never answered): %d", names[i],
                  count_substr(out, "HTTP/1.1 "));
        SLT_CHECK(closed, "%s: the connection is closed after the 400", names[i]);
        slt_note("ok: %s -> 400 conflicting_framing, closed, nothing smuggled", names[i]);
        free(out);
    }
    SLT_CHECK(metric_code(s, "conflicting_framing") - before == 2,
              "sluice_errors_total{code=\"conflicting_framing\"} counts both");
    SLT_CHECK(slt_gateway_metric(s, "sluice_conn_closed_total{reason=\"conflicting_framing\"}") -
                      closed_before ==
                  2,
              "sluice_conn_closed_total{reason=\"conflicting_framing\"} counts both");
}

static void header_flood_suite(const slt_stack_t *s)
{
    /* HTTP/1.1: h2o 2.2.5 parses at most 100 headers and a 408 KB head (H2O_MAX_HEADERS,
     * H2O_MAX_REQLEN); past either it answers its plain 400 and closes */
    size_t cap = 600 * 1024, n;
    char *req = malloc(cap);
    int closed;
    char *out;

    if (req == NULL)
        abort();
    n = (size_t)snprintf(req, cap, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(req + n, cap - n, "X-Flood-%d: %d\r\n", i, i);
    n += (size_t)snprintf(req + n, cap - n, "\r\n");
    out = h1_exchange(s, req, n, &closed);
    SLT_CHECK(strncmp(out, "HTTP/1.1 400", 12) == 0 && closed,
              "HTTP/1.1 with 200 headers: 400 and closed, got %.80s (closed %d)", out, closed);
    slt_note("ok: HTTP/1.1 200 headers -> 400, closed");
    free(out);

    n = (size_t)snprintf(req, cap, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
    memset(req + n, 'a', 500 * 1024);
    n += 500 * 1024;
    n += (size_t)snprintf(req + n, cap - n, "\r\n\r\n");
    out = h1_exchange(s, req, n, &closed);
    SLT_CHECK(strncmp(out, "HTTP/1.1 400", 12) == 0 && closed,
              "HTTP/1.1 with a 500 KB header: 400 and closed, got %.80s (closed %d)", out, closed);
    slt_note("ok: HTTP/1.1 500 KB header -> 400, closed");
    free(out);

    /* HTTP/2: a 500 KB header block in HEADERS + CONTINUATION frames; h2o refuses the stream past
     * 408 KB (RST_STREAM) and closes on the frames that follow */
    {
        slt_raw_t *c = slt_raw_connect(s->http_port, 1, "h2", 5000);
        static uint8_t frame[16384 + 9];
        uint8_t block[256], rd[16384];
        slt_h2_reader_t *r = calloc(1, sizeof(*r));
        size_t blen = slt_h2_header_block(block, sizeof(block), "GET", "/healthz", NULL);
        size_t left = 500 * 1024;
        uint8_t filler[16384];
        int refused_or_closed = 0;
        int64_t end = slt_now_ms() + 5000;

        SLT_REQUIRE(c != NULL && r != NULL, "raw HTTP/2 connection");
        /* filler: one header literal spread over the frames: 0x00, name len 1 "x", value len
         * (HPACK integer), value bytes; h2o only sees a block too large */
        memset(filler, 'a', sizeof(filler));
        n = slt_h2_preface(frame);
        slt_raw_write(c, frame, n, 2000);
        n = slt_h2_frame(frame, SLT_H2_HEADERS, 0, 1, block, blen);
        slt_raw_write(c, frame, n, 2000);
        while (left > 0) {
            size_t chunk = left < sizeof(filler) ? left : sizeof(filler);
            left -= chunk;
            n = slt_h2_frame(frame, SLT_H2_CONTINUATION, left == 0 ? SLT_H2_END_HEADERS : 0, 1,
                             filler, chunk);
            if (slt_raw_write(c, frame, n, 2000) != 0)
                break;
        }
        while (slt_now_ms() < end && !refused_or_closed) {
            ssize_t got = slt_raw_read(c, rd, sizeof(rd), 200);
            if (got == 0)
                refused_or_closed = 1;
            else if (got > 0)
                slt_h2_reader_feed(r, rd, (size_t)got);
            if (r->n_rst > 0 || r->saw_goaway)
                refused_or_closed = 1;
        }
        SLT_CHECK(refused_or_closed && r->n_headers == 0,
                  "HTTP/2 500 KB header block: stream refused or connection closed, never "
                  "answered (rst %zu, goaway %d, headers %zu)",
                  r->n_rst, r->saw_goaway, r->n_headers);
        slt_note("ok: HTTP/2 500 KB header block -> rst %zu goaway %d", r->n_rst, r->saw_goaway);
        slt_raw_close(c);
        free(r);
    }
    free(req);
    SLT_CHECK(honest_ok(s), "an honest batch is accepted after the header floods");
}

/* Trickles `data` one byte every interval_ms over c until the gateway closes the connection;
 * posts an honest batch between bytes. Returns the ms from the first byte to the close, or -1
 * when still open after max_ms. */
static int64_t trickle(const slt_stack_t *s, slt_raw_t *c, const uint8_t *data, size_t len,
                       int interval_ms, int max_ms, int h2_stream, int *honest_bad)
{
    int64_t t0 = slt_now_ms();
    uint8_t rd[4096], frame[16];
    size_t i = 0;

    while (slt_now_ms() - t0 < max_ms) {
        int64_t next = slt_now_ms() + interval_ms;
        ssize_t got;
        int rc;
        if (h2_stream > 0) { /* one byte per DATA or CONTINUATION frame */
            size_t n =
                slt_h2_frame(frame, data[0], 0, (uint32_t)h2_stream, data + 1 + i % (len - 1), 1);
            rc = slt_raw_write(c, frame, n, 1000);
        } else {
            rc = slt_raw_write(c, data + i % len, 1, 1000);
        }
        i++;
        if (rc == -1)
            return slt_now_ms() - t0;
        if (!honest_ok(s))
            (*honest_bad)++;
        while ((got = slt_raw_read(c, rd, sizeof(rd),
                                   (int)(next > slt_now_ms() ? next - slt_now_ms() : 0))) > 0)
            ;
        if (got == 0)
            return slt_now_ms() - t0;
    }
    return -1;
}

static void slowloris_suite(const slt_stack_t *s)
{
    static const char head[] = "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaa";
    static const char body_head[] = "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    "Content-Type: application/json\r\n" AUTH "\r\n"
                                    "Content-Length: 1000\r\n\r\n";
    long stalled_before =
        slt_gateway_metric(s, "sluice_conn_closed_total{reason=\"stalled_request\"}");
    int honest_bad = 0;
    int64_t ms;
    slt_raw_t *c;

    /* HTTP/1.1 head, a byte every 250 ms: h2o's request timer is armed once, not per byte */
    c = slt_raw_connect(s->http_port, 1, "http/1.1", 5000);
    SLT_REQUIRE(c != NULL, "slowloris connection");
    ms = trickle(s, c, (const uint8_t *)head, sizeof(head) - 1, 250,
                 HEADER_TIMEOUT_MS + CUT_SLACK_MS, 0, &honest_bad);
    SLT_CHECK(ms >= HEADER_TIMEOUT_MS - 300 && ms < HEADER_TIMEOUT_MS + CUT_SLACK_MS,
              "HTTP/1.1 trickled head cut after %lld ms (header_timeout %d)", (long long)ms,
              HEADER_TIMEOUT_MS);
    slt_note("ok: HTTP/1.1 trickled head closed after %lld ms", (long long)ms);
    slt_raw_close(c);

    /* HTTP/1.1 body: complete head, then a body byte every 250 ms */
    c = slt_raw_connect(s->http_port, 1, "http/1.1", 5000);
    SLT_REQUIRE(c != NULL, "slow body connection");
    slt_raw_write(c, body_head, sizeof(body_head) - 1, 2000);
    ms = trickle(s, c, (const uint8_t *)"{", 1, 250, HEADER_TIMEOUT_MS + CUT_SLACK_MS, 0,
                 &honest_bad);
    SLT_CHECK(ms >= HEADER_TIMEOUT_MS - 300 && ms < HEADER_TIMEOUT_MS + CUT_SLACK_MS,
              "HTTP/1.1 trickled body cut after %lld ms", (long long)ms);
    slt_note("ok: HTTP/1.1 trickled body closed after %lld ms", (long long)ms);
    slt_raw_close(c);

    /* HTTP/2: body (DATA, one byte each) and head (CONTINUATION, one byte each) trickled */
    for (int kind = 0; kind < 2; kind++) {
        static const char *const hdrs[] = {"content-type", "application/json", "authorization",
                                           "Bearer " SLT_WRITE_KEY_A, NULL};
        uint8_t buf[512], block[256];
        const uint8_t data_bytes[] = {SLT_H2_DATA, ' ', ' '};
        const uint8_t cont_bytes[] = {SLT_H2_CONTINUATION, 0x40, 0x40};
        size_t blen = slt_h2_header_block(block, sizeof(block), "POST", "/v1/batch", hdrs), n;

        c = slt_raw_connect(s->http_port, 1, "h2", 5000);
        SLT_REQUIRE(c != NULL, "HTTP/2 slow connection");
        n = slt_h2_preface(buf);
        /* kind 0: whole head, no END_STREAM; kind 1: head without END_HEADERS */
        n += slt_h2_frame(buf + n, SLT_H2_HEADERS, kind == 0 ? SLT_H2_END_HEADERS : 0, 1, block,
                          blen);
        slt_raw_write(c, buf, n, 2000);
        ms = trickle(s, c, kind == 0 ? data_bytes : cont_bytes, 3, 250,
                     BODY_TIMEOUT_MS + CUT_SLACK_MS, 1, &honest_bad);
        SLT_CHECK(ms >= BODY_TIMEOUT_MS - 300 && ms < BODY_TIMEOUT_MS + CUT_SLACK_MS,
                  "HTTP/2 trickled %s cut after %lld ms (body_timeout %d)",
                  kind == 0 ? "body" : "head", (long long)ms, BODY_TIMEOUT_MS);
        slt_note("ok: HTTP/2 trickled %s closed after %lld ms", kind == 0 ? "body" : "head",
                 (long long)ms);
        slt_raw_close(c);
    }
    SLT_CHECK(slt_gateway_metric(s, "sluice_conn_closed_total{reason=\"stalled_request\"}") -
                      stalled_before ==
                  2,
              "sluice_conn_closed_total{reason=\"stalled_request\"} counts the two HTTP/2 cuts");
    SLT_CHECK(honest_bad == 0, "the honest client was served during the slow clients (%d bad)",
              honest_bad);
}

int main(void)
{
    static const char *const sets[] = {"gateway.header_timeout=2s", "gateway.body_timeout=2s",
                                       NULL};
    slt_stack_t s;
    char url[200];
    slt_http_resp_t resp;

    slt_init("test_hostile", 170);
    SLT_REQUIRE(slt_stack_start(&s, sets) == 0, "the stack starts");

    body_suite(&s);
    framing_suite(&s);
    header_flood_suite(&s);
    slowloris_suite(&s);

    SLT_CHECK(slt_http_get(slt_admin_url(&s, "/healthz", url, sizeof(url)), SLT_HTTP_1_1, &resp) ==
                  200,
              "gateway alive at the end (%ld)", resp.status);
    slt_http_resp_dispose(&resp);
    SLT_CHECK(honest_ok(&s), "an honest batch is accepted at the end");
    slt_stack_stop(&s);
    return slt_finish();
}
