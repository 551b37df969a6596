/* HTTP/2 client half on libnghttp2: many streams per connection. nghttp2 reads and writes
 * memory only (mem_recv / mem_send); lg_conn.c moves the bytes through TLS. Callbacks never
 * touch the connection's lifetime: they hand finished requests to the worker, which only
 * queues work. */
#include <stdio.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "lg_int.h"

#define MAX_RESP_BYTES (1u << 20)
#define PUMP_LIMIT (512u << 10) /* stop taking frames from nghttp2 past this much unsent */

static ssize_t on_read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user_data)
{
    /* the stream's user data, not src: a cancelled request's job is gone */
    lg_job_t *job = nghttp2_session_get_stream_user_data(s, stream_id);
    size_t left;
    if (job == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    left = job->body->wire_len - job->wire_off;
    if (len > left)
        len = left;
    memcpy(buf, job->body->wire + job->wire_off, len);
    job->wire_off += len;
    if (job->wire_off == job->body->wire_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)len;
}

static int parse_int(const uint8_t *v, size_t n)
{
    int x = 0;
    if (n == 0 || n > 6)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    lg_job_t *job;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    job = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (job == NULL)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = parse_int(value, valuelen);
        job->status = st >= 200 && st < 600 ? st : 0; /* 1xx: the real answer follows */
    } else if (namelen == 11 && memcmp(name, "retry-after", 11) == 0) {
        job->retry_after_s = parse_int(value, valuelen);
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                   size_t len, void *user_data)
{
    lg_job_t *job = nghttp2_session_get_stream_user_data(s, stream_id);
    if (job == NULL)
        return 0;
    if (job->resp.len + len > MAX_RESP_BYTES) {
        job->is_resp_truncated = 1;
        return 0;
    }
    lg_buf_append(&job->resp, data, len);
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user_data)
{
    lg_conn_t *c = user_data;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        c->is_goaway = 1;
    } else if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        uint32_t max =
            nghttp2_session_get_remote_settings(s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        c->max_inflight = c->w->conf->streams;
        if (max < (uint32_t)c->max_inflight)
            c->max_inflight = (int)max;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    lg_conn_t *c = user_data;
    lg_job_t *job = nghttp2_session_get_stream_user_data(s, stream_id);
    if (job == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(s, stream_id, NULL);
    lg_conn_untrack(c, job);
    if (error_code == NGHTTP2_NO_ERROR && job->status != 0) {
        lg_worker_on_answer(c->w, job);
    } else if (error_code == NGHTTP2_REFUSED_STREAM || job->wire_off < job->body->wire_len) {
        lg_worker_on_failure(c->w, job, LG_FAIL_REFUSED); /* never processed */
    } else {
        c->w->st.conn_errors++;
        lg_worker_on_failure(c->w, job, LG_FAIL_CONN);
    }
    return 0;
}

int lg_h2_open(lg_conn_t *c)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session *s;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
    };
    int rc;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    rc = nghttp2_session_client_new(&s, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0)
        return -1;
    c->h2 = s;
    if (nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0)
        return -1;
    return 0;
}

void lg_h2_close(lg_conn_t *c)
{
    /* the caller fails the jobs: unhook them so that no callback sees them again */
    for (lg_job_t *job = c->jobs; job != NULL; job = job->next)
        if (job->stream_id > 0)
            nghttp2_session_set_stream_user_data(c->h2, job->stream_id, NULL);
    nghttp2_session_del(c->h2);
    c->h2 = NULL;
}

#define NV(n, v, vlen)                                                                             \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), NGHTTP2_NV_FLAG_NONE                \
    }

int lg_h2_submit(lg_conn_t *c, lg_job_t *job)
{
    const lg_conf_t *conf = c->w->conf;
    const lg_run_t *run = c->w->run;
    const char *auth = run->auth[job->body->tenant];
    char clen[24];
    int clen_n = snprintf(clen, sizeof(clen), "%zu", job->body->wire_len);
    nghttp2_nv nva[] = {
        NV(":method", "POST", 4),
        NV(":scheme", conf->is_tls ? "https" : "http", conf->is_tls ? 5 : 4),
        NV(":authority", conf->authority, strlen(conf->authority)),
        NV(":path", conf->path, strlen(conf->path)),
        NV("content-type", "application/json", 16),
        NV("authorization", auth, strlen(auth)),
        NV("content-length", clen, (size_t)clen_n),
        NV("user-agent", "sluice-load/0.1", 15),
        NV("content-encoding", "gzip", 4),
    };
    size_t n = sizeof(nva) / sizeof(nva[0]) - (conf->is_gzip ? 0 : 1);
    nghttp2_data_provider prd = {.source.ptr = job, .read_callback = on_read_body};
    int32_t id = nghttp2_submit_request(c->h2, NULL, nva, n, &prd, job);

    if (id < 0) {
        lg_conn_untrack(c, job);
        lg_worker_on_failure(c->w, job, LG_FAIL_REFUSED);
        return -1;
    }
    job->stream_id = id;
    return 0;
}

int lg_h2_on_read(lg_conn_t *c, const uint8_t *data, size_t n)
{
    ssize_t rv = nghttp2_session_mem_recv(c->h2, data, n);
    if (rv < 0) {
        fprintf(stderr, "sluice-load: HTTP/2: %s\n", nghttp2_strerror((int)rv));
        return -1;
    }
    return 0;
}

int lg_h2_pump(lg_conn_t *c)
{
    while (c->out.len - c->out_off < PUMP_LIMIT) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        lg_buf_append(&c->out, data, (size_t)n);
    }
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
        c->is_goaway = 1; /* the session is over: lg_conn_handle reconnects when idle */
    return 0;
}

void lg_h2_cancel(lg_conn_t *c, lg_job_t *job)
{
    nghttp2_session_set_stream_user_data(c->h2, job->stream_id, NULL);
    nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, job->stream_id, NGHTTP2_CANCEL);
}
