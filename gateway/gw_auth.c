/* Write keys: parsing the configured key:tenant map, extracting a presented key from a header
 * or the query string, and the constant-time lookup. */
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_int.h"

int gw_auth_init(gw_auth_t *auth, const char *spec, char *errbuf, size_t errlen)
{
    const char *p = spec;
    size_t cap = 1;

    memset(auth, 0, sizeof(*auth));
    for (const char *c = spec; *c; c++)
        cap += *c == ',';
    auth->tenants = calloc(cap, sizeof(*auth->tenants));
    if (auth->tenants == NULL)
        abort();
    while (*p != '\0') {
        const char *end = strchr(p, ','), *colon;
        size_t len;
        if (end == NULL)
            end = p + strlen(p);
        len = (size_t)(end - p);
        colon = memchr(p, ':', len);
        if (colon == NULL || colon == p || colon + 1 == end) {
            snprintf(errbuf, errlen,
                     "auth.write_keys: entry %zu is not key:tenant (keys are not printed)",
                     auth->n + 1);
            goto Fail;
        }
        gw_tenant_t *t = &auth->tenants[auth->n];
        SHA256((const unsigned char *)p, (size_t)(colon - p), t->key_sha256);
        for (size_t i = 0; i < auth->n; i++)
            if (memcmp(auth->tenants[i].key_sha256, t->key_sha256, 32) == 0) {
                snprintf(errbuf, errlen, "auth.write_keys: entry %zu repeats a key", auth->n + 1);
                goto Fail;
            }
        t->tenant = strndup(colon + 1, (size_t)(end - colon - 1));
        auth->n++;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
Fail:
    gw_auth_dispose(auth);
    return -1;
}

void gw_auth_dispose(gw_auth_t *auth)
{
    for (size_t i = 0; i < auth->n; i++)
        free(auth->tenants[i].tenant);
    free(auth->tenants);
    memset(auth, 0, sizeof(*auth));
}

const gw_tenant_t *gw_auth_lookup(const gw_auth_t *auth, const char *key, size_t len)
{
    unsigned char digest[32];
    const gw_tenant_t *found = NULL;

    SHA256((const unsigned char *)key, len, digest);
    /* compare against every entry so timing does not reveal which one matched */
    for (size_t i = 0; i < auth->n; i++)
        if (CRYPTO_memcmp(auth->tenants[i].key_sha256, digest, 32) == 0)
            found = &auth->tenants[i];
    return found;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64 with optional padding. Returns decoded length or -1. */
static int b64_decode(const char *in, size_t len, char *out, size_t cap)
{
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;

    while (len > 0 && in[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    return (int)n;
}

static int has_prefix_ci(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && strncasecmp(s, prefix, n) == 0;
}

int gw_auth_from_header(const char *value, size_t len, char *out, size_t cap)
{
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (has_prefix_ci(value, len, "Bearer ")) {
        size_t off = 7;
        while (off < len && value[off] == ' ')
            off++;
        if (off == len || len - off > cap)
            return -1;
        memcpy(out, value + off, len - off);
        return (int)(len - off);
    }
    if (has_prefix_ci(value, len, "Basic ")) {
        size_t off = 6;
        int n;
        char *colon;
        while (off < len && value[off] == ' ')
            off++;
        n = b64_decode(value + off, len - off, out, cap);
        if (n <= 0)
            return -1;
        /* user:password with the key as user and an empty password (Segment's convention) */
        colon = memchr(out, ':', (size_t)n);
        if (colon != NULL)
            n = (int)(colon - out);
        return n > 0 ? n : -1;
    }
    return -1;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int gw_auth_from_query(const char *query, size_t len, char *out, size_t cap)
{
    static const char name[] = "write_key=";
    const char *p = query, *end = query + len;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        if ((size_t)(stop - p) >= sizeof(name) - 1 && memcmp(p, name, sizeof(name) - 1) == 0) {
            size_t n = 0;
            for (p += sizeof(name) - 1; p < stop; p++) {
                int c = (unsigned char)*p;
                if (c == '%') {
                    int hi, lo;
                    if (stop - p < 3 || (hi = hex_value((unsigned char)p[1])) < 0 ||
                        (lo = hex_value((unsigned char)p[2])) < 0)
                        return -1;
                    c = hi << 4 | lo;
                    p += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (n >= cap)
                    return -1;
                out[n++] = (char)c;
            }
            return n > 0 ? (int)n : -1;
        }
        p = stop + 1;
    }
    return 0;
}
