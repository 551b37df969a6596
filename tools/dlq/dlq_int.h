/* Private to tools/dlq/: the small libcurl wrapper shared by the registry client and the
 * replay sender. */
#ifndef DLQ_INT_H
#define DLQ_INT_H

#include <stddef.h>

#include <curl/curl.h>

/* Longest answer body kept (registry schemas, gateway batch answers); longer is an error. */
#define DLQ_HTTP_MAX_BODY_BYTES (4u << 20)

typedef struct {
    long status; /* 0 when the request did not complete */
    char *body;  /* malloc'd, NUL-terminated (never NULL after dlq_http_do) */
    size_t len;
    char retry_after[32];        /* the Retry-After header's value, "" when absent */
    char error[CURL_ERROR_SIZE]; /* transport error text when status is 0 */
} dlq_http_resp_t;

/* One request on a reused easy handle (keep-alive). body NULL means GET, else POST of
 * body[0..len) with the given headers. Returns 0 when an HTTP answer arrived (any status), -1 on
 * a transport error or an answer over DLQ_HTTP_MAX_BODY_BYTES (r->error says which). Dispose r
 * with dlq_http_resp_dispose. */
int dlq_http_do(CURL *curl, const char *url, const struct curl_slist *headers, const char *body,
                size_t len, int timeout_ms, dlq_http_resp_t *r);
void dlq_http_resp_dispose(dlq_http_resp_t *r);

#endif
