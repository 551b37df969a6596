/* Edge protection that h2o 2.2.5 lacks: the HTTP/2 Rapid Reset guard (CVE-2023-44487), a stall
 * check for HTTP/2 requests that trickle in, and a refusal of ambiguous HTTP/1.1 framing
 * (Content-Length with Transfer-Encoding). Runs on each loop thread; see gateway/README.md. */
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "gw_int.h" /* h2o.h first: http2_internal.h relies on its types */
#include "sl_log.h"

#include <h2o/http2.h>
#include <h2o/http2_internal.h>

/* How often every HTTP/2 connection of a loop is looked at. Streams opened without ever reaching
 * a handler (HEADERS without END_STREAM, then RST_STREAM) are only seen here. */
#define GUARD_SWEEP_MS 100
/* For a while after an accept, new connections are looked for this often, so the per-frame hook
 * is in place before a flood on a new connection has run for long. */
#define GUARD_FAST_MS 5
#define GUARD_FAST_FOR_MS 1000
/* A connection sent GOAWAY that is still there this long after: its socket is shut down, so h2o
 * sees a read/write error and closes it itself (a peer that stopped reading never lets the
 * GOAWAY write complete). */
#define GUARD_GOAWAY_GRACE_MS 1000
/* Tracking is indexed by file descriptor: fds above this are not tracked (logged once). */
#define GUARD_MAX_FDS (1u << 20)

const char *const gw_close_reason_names[GW_CLOSE__COUNT] = {
#define GW_CLOSE_NAME(e, name) name,
    GW_CLOSE_LIST(GW_CLOSE_NAME)
#undef GW_CLOSE_NAME
};

/* What the guard remembers about one HTTP/2 connection, in the slot of its socket's fd. A slot
 * whose conn_id differs from the connection's belongs to an earlier connection on that fd. */
struct gw_guard_conn {
    uint64_t conn_id; /* h2o's process-wide connection id; 0: slot unused */
    uint64_t window_start_ms;
    uint64_t stall_since_ms; /* a request is arriving and nothing progressed since; 0: not */
    uint64_t goaway_at_ms;   /* when the guard sent GOAWAY; 0: not yet */
    uint32_t window_base;    /* pull_stream_ids.max_open when the window started */
    uint32_t seen_open, seen_processed; /* progress markers at the last look */
    int tripped_rapid_reset; /* over the stream budget: the next frame closes the connection */
    /* h2o's frame parser for this connection's current state, called by guard_read_expect */
    ssize_t (*read_expect)(h2o_http2_conn_t *conn, const uint8_t *src, size_t len,
                           const char **err_desc);
};

int gw_guard_http1_head_check(const char *head, size_t len)
{
    size_t n_cl = 0, n_te = 0, pos = 0;

    /* skip the request line; header lines follow, each "name: value\r\n", until an empty line */
    while (pos < len && head[pos] != '\n')
        pos++;
    pos++;
    while (pos < len) {
        const char *line = head + pos;
        size_t rest = len - pos, line_len = 0;
        while (line_len < rest && line[line_len] != '\n')
            line_len++;
        if (line_len == 0 || (line_len == 1 && line[0] == '\r'))
            break; /* end of the head */
        if (line_len >= 15 && strncasecmp(line, "content-length:", 15) == 0)
            n_cl++;
        else if (line_len >= 18 && strncasecmp(line, "transfer-encoding:", 18) == 0)
            n_te++;
        pos += line_len + 1;
    }
    /* RFC 9112 6.3: both headers, or two Content-Lengths, mean the message boundary depends on
     * who reads it: the request smuggling setup. h2o 2.2.5 picks Transfer-Encoding and keeps the
     * connection; we refuse and close. */
    return (n_te > 0 && n_cl > 0) || n_cl > 1 ? -1 : 0;
}

static size_t guard_capacity(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > GUARD_MAX_FDS)
        return GUARD_MAX_FDS;
    return (size_t)rl.rlim_cur;
}

static ssize_t guard_read_expect(h2o_http2_conn_t *conn, const uint8_t *src, size_t len,
                                 const char **err_desc);

/* The slot of an HTTP/2 connection, reset when it belonged to an earlier connection; NULL when
 * the fd is out of the table. */
static gw_guard_conn_t *guard_slot(gw_thread_t *thr, h2o_http2_conn_t *conn, uint64_t now)
{
    int fd = conn->sock != NULL ? h2o_socket_get_fd(conn->sock) : -1;
    gw_guard_conn_t *g;

    if (fd < 0)
        return NULL;
    if ((size_t)fd >= thr->guard_cap) {
        if (!thr->guard_overflow_logged) {
            thr->guard_overflow_logged = 1;
            SL_WARN("connection fd above the guard's table: not rate limited", "fd=%d cap=%zu", fd,
                    thr->guard_cap);
        }
        return NULL;
    }
    if (thr->guard == NULL && (thr->guard = calloc(thr->guard_cap, sizeof(*thr->guard))) == NULL)
        abort();
    g = &thr->guard[fd];
    if (g->conn_id != conn->super.id) {
        memset(g, 0, sizeof(*g));
        /* the first window starts with the connection: streams opened before the guard first
         * looked (a whole read's worth of a flood) count too */
        g->conn_id = conn->super.id;
        g->window_start_ms = now;
        g->window_base = 0;
        g->read_expect = conn->_read_expect;
        conn->_read_expect = guard_read_expect;
    }
    return g;
}

/* Counts and logs a connection the guard closes; the log line is rate limited per loop thread
 * (a reconnecting attacker must not flood the log). */
static void guard_count(gw_thread_t *thr, h2o_http2_conn_t *conn, gw_close_reason_t why,
                        uint64_t now)
{
    sl_counter_add(&thr->metrics.conns_closed[why], 1);
    if (now - thr->guard_log_ms < 1000) {
        thr->guard_log_suppressed++;
        return;
    }
    SL_WARN("closing HTTP/2 connection", "reason=%s conn=%llu streams=%u suppressed=%u",
            gw_close_reason_names[why], (unsigned long long)conn->super.id,
            conn->pull_stream_ids.max_open, thr->guard_log_suppressed);
    thr->guard_log_ms = now;
    thr->guard_log_suppressed = 0;
}

/* What h2o's own enqueue_goaway() does (lib/http2/connection.c, static there): queue GOAWAY and
 * move to HALF_CLOSED, where h2o ignores new HEADERS and closes the connection once its last
 * in-progress request is answered and the write has gone out. */
static void guard_goaway(gw_thread_t *thr, h2o_http2_conn_t *conn, gw_guard_conn_t *g,
                         gw_close_reason_t why, uint64_t now)
{
    static const char *const debug[GW_CLOSE__COUNT] = {"rapid reset", "request stalled",
                                                       "conflicting framing"};

    if (conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING || g->goaway_at_ms != 0)
        return;
    h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open,
                                  why == GW_CLOSE_RAPID_RESET ? H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM
                                                              : H2O_HTTP2_ERROR_NONE,
                                  h2o_iovec_init(debug[why], strlen(debug[why])));
    h2o_http2_conn_request_write(conn);
    conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
    g->goaway_at_ms = now;
    g->tripped_rapid_reset = why == GW_CLOSE_RAPID_RESET;
    guard_count(thr, conn, why, now);
}

static int over_budget(const gw_thread_t *thr, const h2o_http2_conn_t *conn,
                       const gw_guard_conn_t *g)
{
    uint32_t opened = (conn->pull_stream_ids.max_open - g->window_base + 1) / 2;
    return opened > (uint64_t)thr->srv->gc->h2_max_streams_per_s;
}

/* Outside h2o's frame parser (a handler, the sweep): past the stream budget, GOAWAY; else roll
 * the one-second window. Streams are counted by the highest client stream id, which includes
 * those reset before any handler ran. */
static void guard_check_streams(gw_thread_t *thr, h2o_http2_conn_t *conn, gw_guard_conn_t *g,
                                uint64_t now)
{
    if (over_budget(thr, conn, g)) {
        guard_goaway(thr, conn, g, GW_CLOSE_RAPID_RESET, now);
        return;
    }
    if (now - g->window_start_ms >= 1000) {
        g->window_start_ms = now;
        g->window_base = conn->pull_stream_ids.max_open;
    }
}

/* Installed as the connection's _read_expect: h2o's parse_input calls it once per frame, so a
 * flood is cut in the middle of a read (h2o 2.2.5 parses all it read in one go: a single read of
 * a reset flood can hold tens of thousands of streams). Returning an HTTP/2 error makes h2o send
 * GOAWAY with that code and close the connection itself (its own protocol-error path). */
static ssize_t guard_read_expect(h2o_http2_conn_t *conn, const uint8_t *src, size_t len,
                                 const char **err_desc)
{
    gw_thread_t *thr = gw_current_thread;
    gw_guard_conn_t *g = &thr->guard[h2o_socket_get_fd(conn->sock)];
    ssize_t ret;

    /* the slot was made for this connection when the hook was installed, and an fd names one
     * live connection at a time */
    if (g->conn_id != conn->super.id)
        abort();
    if (g->tripped_rapid_reset) {
        *err_desc = "rapid reset";
        return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
    }
    ret = g->read_expect(conn, src, len, err_desc);
    if (conn->_read_expect != guard_read_expect) { /* h2o moved to another parser state */
        g->read_expect = conn->_read_expect;
        conn->_read_expect = guard_read_expect;
    }
    if (ret >= 0 && g->goaway_at_ms == 0 && over_budget(thr, conn, g)) {
        uint64_t now = sl_now_ms();
        g->goaway_at_ms = now;
        g->tripped_rapid_reset = 1;
        guard_count(thr, conn, GW_CLOSE_RAPID_RESET, now);
        *err_desc = "rapid reset";
        return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
    }
    return ret;
}

/* A request whose headers or body trickle in: some stream is still receiving, none of ours is
 * in progress, and neither a new stream nor a completed request appeared for body_timeout. h2o
 * 2.2.5 resets its idle timer on every frame, so a byte a second keeps such a stream forever. */
static void guard_check_stall(gw_thread_t *thr, h2o_http2_conn_t *conn, gw_guard_conn_t *g,
                              uint64_t now)
{
    int receiving = conn->num_streams.pull.open > conn->num_streams.pull.half_closed &&
                    conn->num_streams.pull.half_closed == 0;

    if (!receiving || conn->pull_stream_ids.max_open != g->seen_open ||
        conn->pull_stream_ids.max_processed != g->seen_processed) {
        g->seen_open = conn->pull_stream_ids.max_open;
        g->seen_processed = conn->pull_stream_ids.max_processed;
        g->stall_since_ms = receiving ? now : 0;
        return;
    }
    if (g->stall_since_ms == 0)
        g->stall_since_ms = now;
    else if (now - g->stall_since_ms >= (uint64_t)thr->srv->gc->body_timeout_ms)
        guard_goaway(thr, conn, g, GW_CLOSE_STALLED, now);
}

static void guard_sweep_ctx(gw_thread_t *thr, h2o_context_t *ctx, uint64_t now)
{
    for (h2o_linklist_t *node = ctx->http2._conns.next; node != &ctx->http2._conns;
         node = node->next) {
        h2o_http2_conn_t *conn = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, node);
        gw_guard_conn_t *g;

        if (conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING ||
            (g = guard_slot(thr, conn, now)) == NULL)
            continue;
        if (g->goaway_at_ms != 0) {
            if (now - g->goaway_at_ms >= GUARD_GOAWAY_GRACE_MS && conn->sock != NULL) {
                /* h2o closes the connection itself on the resulting read or write error */
                shutdown(h2o_socket_get_fd(conn->sock), SHUT_RDWR);
                g->goaway_at_ms = now; /* once per grace period at most */
            }
            continue;
        }
        guard_check_streams(thr, conn, g, now);
        if (g->goaway_at_ms == 0)
            guard_check_stall(thr, conn, g, now);
    }
}

/* New connections are appended to ctx->http2._conns: walking back from the tail until a hooked
 * one finds every connection the guard has not seen yet. */
static void guard_hook_new(gw_thread_t *thr, h2o_context_t *ctx, uint64_t now)
{
    for (h2o_linklist_t *node = ctx->http2._conns.prev; node != &ctx->http2._conns;
         node = node->prev) {
        h2o_http2_conn_t *conn = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, node);
        gw_guard_conn_t *g;
        if (conn->_read_expect == guard_read_expect)
            break;
        if (conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING &&
            (g = guard_slot(thr, conn, now)) != NULL)
            guard_check_streams(thr, conn, g, now);
    }
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    gw_thread_t *thr = H2O_STRUCT_FROM_MEMBER(gw_thread_t, guard_sweep_entry, entry);
    uint64_t now = sl_now_ms();

    if (now - thr->guard_full_sweep_ms >= GUARD_SWEEP_MS) {
        thr->guard_full_sweep_ms = now;
        guard_sweep_ctx(thr, &thr->ctx, now);
        guard_sweep_ctx(thr, &thr->admin_ctx, now);
    } else {
        guard_hook_new(thr, &thr->ctx, now);
    }
    h2o_timeout_link(thr->loop,
                     now < thr->guard_fast_until_ms ? &thr->guard_fast : &thr->guard_sweep,
                     &thr->guard_sweep_entry);
}

void gw_guard_on_accept(gw_thread_t *thr, h2o_socket_t *sock)
{
    int bytes = (int)thr->srv->gc->recv_buffer_bytes;

    /* h2o 2.2.5 reads a socket until it is empty and parses everything it read before any timer
     * runs: with the kernel's autotuned buffer (megabytes) one read of a reset flood can hold
     * tens of thousands of streams. A bounded buffer keeps each read's work small and the loop
     * fair to the other connections. */
    if (bytes > 0)
        setsockopt(h2o_socket_get_fd(sock), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    /* look for the HTTP/2 connection this may become (after its TLS handshake) at the fast pace */
    thr->guard_fast_until_ms = sl_now_ms() + GUARD_FAST_FOR_MS;
    if (h2o_timeout_is_linked(&thr->guard_sweep_entry) &&
        thr->guard_sweep_entry.registered_at + GUARD_SWEEP_MS >
            h2o_now(thr->loop) + GUARD_FAST_MS) {
        h2o_timeout_unlink(&thr->guard_sweep_entry);
        h2o_timeout_link(thr->loop, &thr->guard_fast, &thr->guard_sweep_entry);
    }
}

void gw_guard_thread_init(gw_thread_t *thr)
{
    thr->guard_cap = guard_capacity();
    thr->guard = NULL; /* allocated with the first HTTP/2 connection */
    h2o_timeout_init(thr->loop, &thr->guard_sweep, GUARD_SWEEP_MS);
    h2o_timeout_init(thr->loop, &thr->guard_fast, GUARD_FAST_MS);
    thr->guard_sweep_entry.cb = on_sweep;
    h2o_timeout_link(thr->loop, &thr->guard_sweep, &thr->guard_sweep_entry);
}

void gw_guard_thread_dispose(gw_thread_t *thr)
{
    if (thr->loop == NULL)
        return;
    h2o_timeout_unlink(&thr->guard_sweep_entry);
    h2o_timeout_dispose(thr->loop, &thr->guard_sweep);
    h2o_timeout_dispose(thr->loop, &thr->guard_fast);
    free(thr->guard);
    thr->guard = NULL;
}

/* HTTP/1.x: the head of the request being handled is still at the start of the socket's input
 * buffer (h2o consumes it only after the response), decrypted. */
static int http1_framing_ok(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL
                             ? req->conn->callbacks->get_socket(req->conn)
                             : NULL;
    size_t len;

    if (sock == NULL || sock->input == NULL)
        return 1;
    len = sock->input->size < H2O_MAX_REQLEN ? sock->input->size : H2O_MAX_REQLEN;
    return gw_guard_http1_head_check(sock->input->bytes, len) == 0;
}

int gw_guard_on_req(gw_server_t *srv, h2o_req_t *req)
{
    gw_thread_t *thr = gw_current_thread;

    if (req->version < 0x200) {
        if (http1_framing_ok(req))
            return 0;
        req->http1_is_persistent = 0; /* what follows the body cannot be trusted: close */
        sl_counter_add(&thr->metrics.conns_closed[GW_CLOSE_BAD_FRAMING], 1);
        gw_metrics_count_status(&thr->metrics, 400);
        gw_send_error(srv, req, SL_ERR_CONFLICTING_FRAMING, NULL);
        return 1;
    }
    {
        /* HTTP/2: every request is a chance to cut a flood before the next sweep */
        h2o_http2_conn_t *conn = (h2o_http2_conn_t *)req->conn;
        uint64_t now = sl_now_ms();
        gw_guard_conn_t *g;

        if (conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING &&
            (g = guard_slot(thr, conn, now)) != NULL && g->goaway_at_ms == 0)
            guard_check_streams(thr, conn, g, now);
    }
    return 0;
}
