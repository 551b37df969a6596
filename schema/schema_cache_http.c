/* The registry cache's HTTP client: blocking libcurl GETs, run only on the cache's fetch
 * threads, with a bounded response body. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "schema_cache_int.h"

static pthread_mutex_t global_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned global_refs;

void sc_http_global_ref(void)
{
    pthread_mutex_lock(&global_mu);
    if (global_refs++ == 0)
        curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_unlock(&global_mu);
}

void sc_http_global_unref(void)
{
    pthread_mutex_lock(&global_mu);
    if (global_refs > 0 && --global_refs == 0)
        curl_global_cleanup();
    pthread_mutex_unlock(&global_mu);
}

void *sc_http_new(void)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        abort();
    return h;
}

void sc_http_free(void *h)
{
    if (h != NULL)
        curl_easy_cleanup(h);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    sl_buf_t *b = arg;
    size_t n = size * nmemb;
    sl_buf_append(b, data, n);
    /* returning less than n makes curl abort the transfer: the bound holds on the wire too */
    return b->overflow ? 0 : n;
}

int sc_http_get(void *h, const char *base_url, const char *path, int64_t timeout_ms, sl_buf_t *body,
                char *errbuf, size_t errlen)
{
    CURL *curl = h;
    char url[2048], cerr[CURL_ERROR_SIZE] = "";
    size_t blen = strlen(base_url);
    long status = 0;
    CURLcode rc;

    /* "http://host:8081/" + "/subjects/..." must not become "//subjects" */
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    if (snprintf(url, sizeof(url), "%.*s%s", (int)blen, base_url, path) >= (int)sizeof(url)) {
        snprintf(errbuf, errlen, "registry URL too long");
        return -1;
    }
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM on a threaded process */
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "sluice-schema-cache");
    rc = curl_easy_perform(curl);
    if (body->overflow) {
        /* the status line came before the body we cut: the caller decides what it means */
        snprintf(errbuf, errlen, "registry response over %zu bytes", body->max);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        return status > 0 ? (int)status : -1;
    }
    if (rc != CURLE_OK) {
        snprintf(errbuf, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    return (int)status;
}

int sc_url_escape(const char *s, size_t n, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (o + (plain ? 1 : 3) >= outlen)
            return -1;
        if (plain) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    if (o >= outlen)
        return -1;
    out[o] = '\0';
    return (int)o;
}
