/* Response helpers: JSON bodies, and the one function that turns an sl_err_t into an answer. */
#include <stdio.h>
#include <string.h>

#include "gw_int.h"

void gw_send_json(h2o_req_t *req, int status, const char *body, size_t len, int retry_after_s)
{
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : "";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    if (retry_after_s > 0) {
        char *v = h2o_mem_alloc_pool(&req->pool, 16);
        int n = snprintf(v, 16, "%d", retry_after_s);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v, (size_t)n);
    }
    h2o_send_inline(req, body, len);
}

void gw_send_error(gw_server_t *srv, h2o_req_t *req, sl_err_t err, const char *detail)
{
    gw_send_error_retry_after(srv, req, err, detail, (int)srv->gc->retry_after_s);
}

void gw_send_error_retry_after(gw_server_t *srv, h2o_req_t *req, sl_err_t err,
                               const char *detail, int retry_after_s)
{
    const gw_config_t *gc = srv->gc;
    int status = sl_err_status(err);
    sl_buf_t b;

    sl_buf_init(&b, 4096);
    sl_buf_printf(&b, "{\"error\":{\"code\":\"%s\",\"detail\":\"", sl_err_code(err));
    detail = detail != NULL ? detail : sl_err_message(err);
    sl_buf_json_escape(&b, detail, strlen(detail), 512);
    sl_buf_append(&b, "\"", 1);
    if (status == 413)
        sl_buf_printf(&b,
                      ",\"limits\":{\"max_body_bytes\":%llu,\"max_decompressed_bytes\":%llu,"
                      "\"max_events\":%lld,\"max_event_bytes\":%llu}",
                      (unsigned long long)gc->max_body_bytes,
                      (unsigned long long)gc->max_decompressed_bytes, (long long)gc->max_events,
                      (unsigned long long)gc->max_event_bytes);
    sl_buf_append(&b, "}}", 2);
    if (req->conn->ctx->globalconf == &srv->h2o_config)
        sl_counter_add(&gw_current_thread->metrics.codes[err], 1);
    gw_send_json(req, status, b.data, b.len,
                 sl_err_is_retryable(err) && (status == 429 || status == 503)
                     ? retry_after_s
                     : 0);
    sl_buf_dispose(&b);
}
