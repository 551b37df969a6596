/* One client connection: non-blocking TCP, TLS (ALPN h2 or http/1.1), the bytes waiting for
 * the socket, the requests in flight (oldest first), request timeouts and reconnection with
 * backoff. The protocol halves are lg_h1.c and lg_h2.c. Runs on its worker's thread only. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "lg_int.h"

#define READ_CHUNK 65536
#define MAX_PENDING_OUT (1u << 20) /* no new request while this much waits for the socket */

void lg_conn_init(lg_conn_t *c, lg_worker_t *w)
{
    memset(c, 0, sizeof(*c));
    c->w = w;
    c->fd = -1;
    c->state = LG_CS_IDLE;
    c->max_inflight = w->conf->is_h1 ? 1 : w->conf->streams;
}

static void set_interest(lg_conn_t *c, uint32_t mask)
{
    struct epoll_event ev = {.events = mask, .data.ptr = c};
    if (c->fd < 0 || mask == c->ev_mask)
        return;
    if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->ev_mask = mask;
}

static void schedule_reconnect(lg_conn_t *c)
{
    c->backoff_ms = c->backoff_ms == 0 ? 50 : c->backoff_ms * 2;
    if (c->backoff_ms > 2000)
        c->backoff_ms = 2000;
    c->reconnect_ns = lg_now_ns() + (uint64_t)c->backoff_ms * 1000000u;
}

void lg_conn_track(lg_conn_t *c, lg_job_t *job)
{
    job->conn = c;
    job->next = NULL;
    job->prev = c->jobs_tail;
    if (c->jobs_tail != NULL)
        c->jobs_tail->next = job;
    else
        c->jobs = job;
    c->jobs_tail = job;
    c->inflight++;
}

void lg_conn_untrack(lg_conn_t *c, lg_job_t *job)
{
    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        c->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    else
        c->jobs_tail = job->prev;
    job->prev = job->next = NULL;
    job->conn = NULL;
    job->last_conn = c;
    c->inflight--;
}

void lg_conn_close(lg_conn_t *c, int why)
{
    lg_job_t *jobs = c->jobs;

    if (c->h2 != NULL)
        lg_h2_close(c); /* detaches the jobs from their streams first */
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->ssl = NULL;
    c->fd = -1;
    c->ev_mask = 0;
    c->out.len = c->out_off = 0;
    c->in.len = 0;
    c->is_goaway = 0;
    c->max_inflight = c->w->conf->is_h1 ? 1 : c->w->conf->streams;
    if (c->state != LG_CS_IDLE)
        schedule_reconnect(c);
    c->state = LG_CS_IDLE;
    c->jobs = c->jobs_tail = NULL;
    c->inflight = 0;
    while (jobs != NULL) {
        lg_job_t *next = jobs->next;
        /* a request not completely handed over cannot have been processed */
        int job_why =
            why != LG_FAIL_REFUSED && jobs->wire_off < jobs->body->wire_len ? LG_FAIL_REFUSED : why;
        jobs->prev = jobs->next = NULL;
        jobs->conn = NULL;
        lg_worker_on_failure(c->w, jobs, job_why);
        jobs = next;
    }
}

void lg_conn_dispose(lg_conn_t *c)
{
    lg_conn_close(c, LG_FAIL_REFUSED);
    lg_buf_dispose(&c->out);
    lg_buf_dispose(&c->in);
}

static void on_ready(lg_conn_t *c)
{
    c->state = LG_CS_READY;
    c->backoff_ms = 0;
    c->w->st.connects++;
    set_interest(c, EPOLLIN);
}

void lg_conn_start(lg_conn_t *c)
{
    const lg_run_t *run = c->w->run;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    int one = 1;

    c->connect_ns = lg_now_ns();
    c->fd = socket(run->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        goto Fail;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&run->addr, run->addr_len) != 0 &&
        errno != EINPROGRESS)
        goto Fail;
    if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        goto Fail;
    c->ev_mask = EPOLLOUT;
    c->state = LG_CS_CONNECTING;
    return;
Fail:
    c->w->st.conn_errors++;
    c->state = LG_CS_CONNECTING; /* so that close schedules the reconnect */
    lg_conn_close(c, LG_FAIL_REFUSED);
}

/* >0 bytes, 0 would block, -1 error or end of stream */
static ssize_t io_read(lg_conn_t *c, void *buf, size_t n)
{
    if (c->ssl != NULL) {
        int r = SSL_read(c->ssl, buf, (int)n), e;
        if (r > 0)
            return r;
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return 0;
        if (e == SSL_ERROR_WANT_WRITE) {
            set_interest(c, EPOLLIN | EPOLLOUT);
            return 0;
        }
        ERR_clear_error();
        return -1;
    }
    ssize_t r = recv(c->fd, buf, n, 0);
    if (r > 0)
        return r;
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return -1;
}

static ssize_t io_write(lg_conn_t *c, const void *buf, size_t n)
{
    if (c->ssl != NULL) {
        int r = SSL_write(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n), e;
        if (r > 0)
            return r;
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return 0;
        ERR_clear_error();
        return -1;
    }
    ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL);
    if (r >= 0)
        return r;
    return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

int lg_conn_flush(lg_conn_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = io_write(c, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n < 0)
            return -1;
        if (n == 0) {
            set_interest(c, EPOLLIN | EPOLLOUT);
            return 0;
        }
        c->out_off += (size_t)n;
        c->w->st.bytes_sent += (uint64_t)n;
    }
    c->out.len = c->out_off = 0;
    set_interest(c, EPOLLIN);
    return 0;
}

static int alpn_ok(lg_conn_t *c)
{
    const unsigned char *p;
    unsigned int n;
    SSL_get0_alpn_selected(c->ssl, &p, &n);
    if (c->w->conf->is_h1)
        return n == 0 || (n == 8 && memcmp(p, "http/1.1", 8) == 0);
    return n == 2 && memcmp(p, "h2", 2) == 0;
}

static void handshake(lg_conn_t *c)
{
    int r = SSL_connect(c->ssl), e;
    if (r == 1) {
        if (!alpn_ok(c)) {
            fprintf(stderr, "sluice-load: the server did not agree to %s (ALPN)\n",
                    c->w->conf->is_h1 ? "http/1.1" : "h2");
            goto Fail;
        }
        on_ready(c);
        if (!c->w->conf->is_h1 && (lg_h2_open(c) != 0 || lg_h2_pump(c) != 0))
            goto Fail;
        if (lg_conn_flush(c) != 0)
            goto Fail;
        return;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        set_interest(c, EPOLLIN);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        set_interest(c, EPOLLOUT);
        return;
    }
    {
        unsigned long err = ERR_get_error();
        char msg[256];
        ERR_error_string_n(err, msg, sizeof(msg));
        if (c->w->st.conn_errors < 5)
            fprintf(stderr, "sluice-load: TLS handshake failed: %s\n", err != 0 ? msg : "closed");
        ERR_clear_error();
    }
Fail:
    c->w->st.conn_errors++;
    lg_conn_close(c, LG_FAIL_REFUSED);
}

static void on_connected(lg_conn_t *c)
{
    const lg_conf_t *conf = c->w->conf;
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        if (c->w->st.conn_errors < 5)
            fprintf(stderr, "sluice-load: connect to %s:%s: %s\n", conf->host, conf->port,
                    strerror(err != 0 ? err : errno));
        c->w->st.conn_errors++;
        lg_conn_close(c, LG_FAIL_REFUSED);
        return;
    }
    if (!conf->is_tls) {
        on_ready(c);
        if (!conf->is_h1 && (lg_h2_open(c) != 0 || lg_h2_pump(c) != 0 || lg_conn_flush(c) != 0))
            lg_conn_close(c, LG_FAIL_CONN);
        return;
    }
    c->ssl = SSL_new(lg_worker_ssl_ctx(c->w));
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        c->w->st.conn_errors++;
        lg_conn_close(c, LG_FAIL_REFUSED);
        return;
    }
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (conf->cacert != NULL) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        /* an IP address in the URL is checked against the certificate's IP SANs */
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, conf->host) != 1)
            SSL_set1_host(c->ssl, conf->host);
    }
    SSL_set_tlsext_host_name(c->ssl, conf->host);
    c->state = LG_CS_HANDSHAKE;
    handshake(c);
}

static void on_readable(lg_conn_t *c)
{
    char buf[READ_CHUNK];
    for (;;) {
        ssize_t n = io_read(c, buf, sizeof(buf));
        int rc;
        if (n == 0)
            break;
        if (n < 0) {
            if (c->inflight > 0)
                c->w->st.conn_errors++;
            lg_conn_close(c, LG_FAIL_CONN);
            return;
        }
        if (c->h2 != NULL) {
            rc = lg_h2_on_read(c, (const uint8_t *)buf, (size_t)n);
        } else {
            lg_buf_append(&c->in, buf, (size_t)n);
            rc = lg_h1_on_read(c);
        }
        if (rc != 0) {
            /* rc 1: the server closes the connection after an answer (nothing in flight) */
            if (rc < 0)
                c->w->st.conn_errors++;
            lg_conn_close(c, LG_FAIL_CONN);
            if (rc > 0)
                c->reconnect_ns = lg_now_ns();
            return;
        }
    }
}

void lg_conn_handle(lg_conn_t *c, uint32_t events)
{
    switch (c->state) {
    case LG_CS_CONNECTING:
        on_connected(c);
        return;
    case LG_CS_HANDSHAKE:
        handshake(c);
        return;
    case LG_CS_READY:
        break;
    default:
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLOUT))
        on_readable(c); /* also on EPOLLOUT: TLS may have wanted to write during a read */
    if (c->state != LG_CS_READY)
        return;
    if ((c->h2 != NULL && lg_h2_pump(c) != 0) || lg_conn_flush(c) != 0) {
        c->w->st.conn_errors++;
        lg_conn_close(c, LG_FAIL_CONN);
        return;
    }
    /* HTTP/2: after GOAWAY, reconnect once the last stream is done */
    if (c->is_goaway && c->inflight == 0) {
        lg_conn_close(c, LG_FAIL_REFUSED);
        c->reconnect_ns = lg_now_ns();
    }
}

int lg_conn_has_room(const lg_conn_t *c)
{
    return c->state == LG_CS_READY && !c->is_goaway && c->inflight < c->max_inflight &&
           c->out.len - c->out_off < MAX_PENDING_OUT;
}

void lg_conn_submit(lg_conn_t *c, lg_job_t *job)
{
    job->sent_ns = lg_now_ns();
    job->wire_off = 0;
    job->status = job->retry_after_s = 0;
    job->resp.len = 0;
    job->is_resp_truncated = 0;
    lg_conn_track(c, job);
    c->w->st.requests++;
    c->w->tick.requests++;
    c->w->st.events_sent += job->body->n;
    if (c->h2 == NULL) {
        lg_h1_write_request(c, job);
    } else if (lg_h2_submit(c, job) != 0) {
        c->is_goaway = 1; /* the session takes no new stream: replace it once idle */
        return;
    }
    if ((c->h2 != NULL && lg_h2_pump(c) != 0) || lg_conn_flush(c) != 0) {
        c->w->st.conn_errors++;
        lg_conn_close(c, LG_FAIL_CONN);
    }
}

void lg_conn_check(lg_conn_t *c, uint64_t now_ns)
{
    uint64_t limit = (uint64_t)c->w->conf->timeout_ms * 1000000u;

    if (c->state == LG_CS_IDLE) {
        if (now_ns >= c->reconnect_ns)
            lg_conn_start(c);
        return;
    }
    if (c->state != LG_CS_READY) {
        /* connect and handshake share the request timeout */
        if (c->connect_ns + limit < now_ns) {
            c->w->st.conn_errors++;
            lg_conn_close(c, LG_FAIL_REFUSED);
        }
        return;
    }
    if (c->is_goaway && c->inflight == 0) {
        lg_conn_close(c, LG_FAIL_REFUSED);
        c->reconnect_ns = now_ns;
        return;
    }
    /* the list is in send order: only its head can be the oldest */
    while (c->jobs != NULL && c->jobs->sent_ns + limit < now_ns) {
        lg_job_t *job = c->jobs;
        if (c->h2 == NULL) { /* HTTP/1.1 cannot cancel a request but by closing */
            lg_conn_close(c, LG_FAIL_TIMEOUT);
            return;
        }
        lg_h2_cancel(c, job);
        lg_conn_untrack(c, job);
        lg_worker_on_failure(c->w, job, LG_FAIL_TIMEOUT);
    }
    if (c->h2 != NULL && (lg_h2_pump(c) != 0 || lg_conn_flush(c) != 0)) {
        c->w->st.conn_errors++;
        lg_conn_close(c, LG_FAIL_CONN);
    }
}
