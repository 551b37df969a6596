/* A bounded libcurl request: the answer body is capped, Retry-After is captured. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dlq_int.h"

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    dlq_http_resp_t *r = arg;
    size_t n = size * nmemb;
    /* a body over the cap aborts the transfer (returning short makes curl fail it) */
    if (n > DLQ_HTTP_MAX_BODY_BYTES - r->len)
        return 0;
    char *grown = realloc(r->body, r->len + n + 1);
    if (grown == NULL)
        abort();
    r->body = grown;
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *arg)
{
    dlq_http_resp_t *r = arg;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        const char *v = data + sizeof(name) - 1;
        size_t vlen = n - (sizeof(name) - 1);
        while (vlen > 0 && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
            vlen--;
        if (vlen >= sizeof(r->retry_after))
            vlen = sizeof(r->retry_after) - 1;
        memcpy(r->retry_after, v, vlen);
        r->retry_after[vlen] = '\0';
    }
    return n;
}

int dlq_http_do(CURL *curl, const char *url, const struct curl_slist *headers, const char *body,
                size_t len, int timeout_ms, dlq_http_resp_t *r)
{
    memset(r, 0, sizeof(*r));
    r->body = calloc(1, 1);
    if (r->body == NULL)
        abort();
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        if (r->error[0] == '\0')
            snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(rc));
        if (rc == CURLE_WRITE_ERROR)
            snprintf(r->error, sizeof(r->error), "answer over %u bytes", DLQ_HTTP_MAX_BODY_BYTES);
        r->status = 0;
        return -1;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    return 0;
}

void dlq_http_resp_dispose(dlq_http_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}
