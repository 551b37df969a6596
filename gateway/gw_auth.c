/* Write keys: parsing the configured key:tenant map, extracting a presented key from a header
 * or the query string, and the constant-time lookup. */
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "gw_int.h"

/* The bucket: GCRA (a token bucket kept as one "theoretical arrival time"), so a tenant's
 * state is a single atomic shared by every loop thread. */
void gw_rate_init(gw_rate_t *r, double events_per_s, int64_t burst_events)
{
    r->interval_ns = events_per_s > 0 ? (int64_t)(1e9 / events_per_s) : 0;
    if (events_per_s > 0 && r->interval_ns == 0)
        r->interval_ns = 1; /* faster than one event per ns: as good as unlimited */
    r->tolerance_ns = r->interval_ns * burst_events;
    atomic_init(&r->tat_ns, 0);
}

int64_t gw_rate_take(gw_rate_t *r, int64_t n, int64_t now_ns)
{
    int64_t tat, next;

    if (r->interval_ns == 0)
        return 0;
    tat = atomic_load_explicit(&r->tat_ns, memory_order_relaxed);
    do {
        next = (tat > now_ns ? tat : now_ns) + n * r->interval_ns;
        if (next - now_ns > r->tolerance_ns)
            return next - now_ns - r->tolerance_ns;
    } while (!atomic_compare_exchange_weak_explicit(&r->tat_ns, &tat, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 0;
}

int gw_rate_is_exhausted(gw_rate_t *r, int64_t now_ns)
{
    return r->interval_ns != 0 && atomic_load_explicit(&r->tat_ns, memory_order_relaxed) - now_ns +
                                          r->interval_ns >
                                      r->tolerance_ns;
}

static gw_tenant_t *tenant_add(gw_auth_t *auth, const char *name, size_t len,
                               const gw_auth_defaults_t *def)
{
    gw_tenant_t *t;
    for (size_t i = 0; i < auth->n_tenants; i++)
        if (strlen(auth->tenants[i]->name) == len && memcmp(auth->tenants[i]->name, name, len) == 0)
            return auth->tenants[i];
    if ((auth->n_tenants & (auth->n_tenants + 1)) == 0 || auth->n_tenants == 0) {
        size_t cap = auth->n_tenants == 0 ? 4 : (auth->n_tenants + 1) * 2;
        auth->tenants = realloc(auth->tenants, cap * sizeof(*auth->tenants));
    }
    t = calloc(1, sizeof(*t));
    if (auth->tenants == NULL || t == NULL)
        abort();
    t->name = strndup(name, len);
    gw_rate_init(&t->rate, def->rate_events_per_s, def->burst_events);
    auth->tenants[auth->n_tenants++] = t;
    return t;
}

static int key_add(gw_auth_t *auth, const unsigned char digest[32], gw_tenant_t *t,
                   const char *where, char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < auth->n_keys; i++)
        if (memcmp(auth->keys[i].key_sha256, digest, 32) == 0) {
            snprintf(errbuf, errlen, "%s: a write key appears twice (keys are not printed)",
                     where);
            return -1;
        }
    auth->keys = realloc(auth->keys, (auth->n_keys + 1) * sizeof(*auth->keys));
    if (auth->keys == NULL)
        abort();
    memcpy(auth->keys[auth->n_keys].key_sha256, digest, 32);
    auth->keys[auth->n_keys++].tenant = t;
    return 0;
}

/* "key:tenant[,key:tenant...]": plain keys for development, hashed here and never kept. */
static int parse_spec(gw_auth_t *auth, const char *spec, const gw_auth_defaults_t *def,
                      char *errbuf, size_t errlen)
{
    const char *p = spec;
    size_t entry = 0;

    while (*p != '\0') {
        const char *end = strchr(p, ','), *colon;
        unsigned char digest[32];
        size_t len;
        if (end == NULL)
            end = p + strlen(p);
        len = (size_t)(end - p);
        colon = memchr(p, ':', len);
        entry++;
        if (colon == NULL || colon == p || colon + 1 == end) {
            snprintf(errbuf, errlen,
                     "auth.write_keys: entry %zu is not key:tenant (keys are not printed)", entry);
            return -1;
        }
        SHA256((const unsigned char *)p, (size_t)(colon - p), digest);
        if (key_add(auth, digest,
                    tenant_add(auth, colon + 1, (size_t)(end - colon - 1), def), "auth.write_keys",
                    errbuf, errlen) != 0)
            return -1;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

static int hex_value(unsigned char c);

static int parse_sha256_hex(const char *s, unsigned char out[32])
{
    if (strlen(s) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        int hi = hex_value((unsigned char)s[2 * i]), lo = hex_value((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* The tenants file (gateway/README.md, "Tenants"):
 * {"tenants": {"NAME": {"write_keys_sha256": [hex...], "cors_origins": [...],
 *                       "rate_events_per_s": N, "burst_events": N}}} */
static int parse_file(gw_auth_t *auth, const char *path, const gw_auth_defaults_t *def,
                      char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), *tenants, *tv;
    const char *name;
    int rc = -1;

    if (root == NULL) {
        snprintf(errbuf, errlen, "auth.tenants_file %s: line %d: %s", path, jerr.line, jerr.text);
        return -1;
    }
    if (!json_is_object(tenants = json_object_get(root, "tenants"))) {
        snprintf(errbuf, errlen, "auth.tenants_file %s: needs an object \"tenants\"", path);
        goto Done;
    }
    json_object_foreach(tenants, name, tv) {
        static const char *const known[] = {"write_keys_sha256", "cors_origins",
                                            "rate_events_per_s", "burst_events"};
        gw_auth_defaults_t td = *def;
        json_t *keys = json_object_get(tv, "write_keys_sha256"), *v;
        json_t *origins = json_object_get(tv, "cors_origins");
        const char *member;
        gw_tenant_t *t;
        size_t i;

        if (!json_is_object(tv) || !json_is_array(keys) || json_array_size(keys) == 0) {
            snprintf(errbuf, errlen,
                     "auth.tenants_file: tenant \"%s\" needs a non-empty write_keys_sha256 array",
                     name);
            goto Done;
        }
        json_object_foreach(tv, member, v) {
            size_t k = 0;
            while (k < sizeof(known) / sizeof(known[0]) && strcmp(known[k], member) != 0)
                k++;
            if (k == sizeof(known) / sizeof(known[0])) {
                snprintf(errbuf, errlen,
                         "auth.tenants_file: tenant \"%s\": unknown member \"%s\" (allowed: "
                         "write_keys_sha256, cors_origins, rate_events_per_s, burst_events)",
                         name, member);
                goto Done;
            }
        }
        if ((v = json_object_get(tv, "rate_events_per_s")) != NULL) {
            if (!json_is_number(v) || json_number_value(v) < 0) {
                snprintf(errbuf, errlen, "auth.tenants_file: tenant \"%s\": rate_events_per_s "
                                         "must be a number >= 0 (0: unlimited)", name);
                goto Done;
            }
            td.rate_events_per_s = json_number_value(v);
            td.burst_events = (int64_t)td.rate_events_per_s;
        }
        if ((v = json_object_get(tv, "burst_events")) != NULL) {
            if (!json_is_integer(v) || json_integer_value(v) < 1) {
                snprintf(errbuf, errlen,
                         "auth.tenants_file: tenant \"%s\": burst_events must be an integer >= 1",
                         name);
                goto Done;
            }
            td.burst_events = json_integer_value(v);
        }
        if (td.rate_events_per_s > 0 && td.burst_events < td.min_burst_events) {
            snprintf(errbuf, errlen,
                     "auth.tenants_file: tenant \"%s\": burst_events %lld is below "
                     "gateway.max_events %lld (a full batch could never pass)",
                     name, (long long)td.burst_events, (long long)td.min_burst_events);
            goto Done;
        }
        for (i = 0; i < auth->n_tenants; i++)
            if (strcmp(auth->tenants[i]->name, name) == 0)
                break;
        if (i < auth->n_tenants) {
            snprintf(errbuf, errlen, "auth.tenants_file: tenant \"%s\" is also in auth.write_keys",
                     name);
            goto Done;
        }
        t = tenant_add(auth, name, strlen(name), &td);
        json_array_foreach(keys, i, v) {
            unsigned char digest[32];
            if (!json_is_string(v) || parse_sha256_hex(json_string_value(v), digest) != 0) {
                snprintf(errbuf, errlen,
                         "auth.tenants_file: tenant \"%s\": write_keys_sha256[%zu] is not 64 hex "
                         "digits (printf KEY | sha256sum)", name, i);
                goto Done;
            }
            if (key_add(auth, digest, t, "auth.tenants_file", errbuf, errlen) != 0)
                goto Done;
        }
        if (origins != NULL) {
            if (!json_is_array(origins)) {
                snprintf(errbuf, errlen,
                         "auth.tenants_file: tenant \"%s\": cors_origins must be an array", name);
                goto Done;
            }
            t->cors_origins = calloc(json_array_size(origins) + 1, sizeof(char *));
            json_array_foreach(origins, i, v) {
                if (!json_is_string(v) || json_string_length(v) == 0) {
                    snprintf(errbuf, errlen,
                             "auth.tenants_file: tenant \"%s\": cors_origins[%zu] must be a "
                             "non-empty string (\"*\" or \"https://host[:port]\")", name, i);
                    goto Done;
                }
                if (strcmp(json_string_value(v), "*") == 0)
                    t->any_origin = 1;
                t->cors_origins[t->n_origins++] = strdup(json_string_value(v));
            }
        } else {
            t->any_origin = 1;
        }
    }
    rc = 0;
Done:
    json_decref(root);
    return rc;
}

int gw_auth_init(gw_auth_t *auth, const char *spec, const char *tenants_file,
                 const gw_auth_defaults_t *def, char *errbuf, size_t errlen)
{
    memset(auth, 0, sizeof(*auth));
    if (parse_spec(auth, spec, def, errbuf, errlen) != 0)
        goto Fail;
    for (size_t i = 0; i < auth->n_tenants; i++)
        auth->tenants[i]->any_origin = 1; /* development keys: any origin */
    if (tenants_file != NULL && tenants_file[0] != '\0' &&
        parse_file(auth, tenants_file, def, errbuf, errlen) != 0)
        goto Fail;
    for (size_t i = 0; i < auth->n_tenants; i++)
        auth->any_origin_anywhere |= auth->tenants[i]->any_origin;
    return 0;
Fail:
    gw_auth_dispose(auth);
    return -1;
}

void gw_auth_dispose(gw_auth_t *auth)
{
    for (size_t i = 0; i < auth->n_tenants; i++) {
        gw_tenant_t *t = auth->tenants[i];
        for (size_t k = 0; k < t->n_origins; k++)
            free(t->cors_origins[k]);
        free(t->cors_origins);
        free(t->name);
        free(t);
    }
    free(auth->tenants);
    free(auth->keys);
    memset(auth, 0, sizeof(*auth));
}

gw_tenant_t *gw_auth_lookup(const gw_auth_t *auth, const char *key, size_t len)
{
    unsigned char digest[32];
    gw_tenant_t *found = NULL;

    SHA256((const unsigned char *)key, len, digest);
    /* compare against every entry so timing does not reveal which one matched */
    for (size_t i = 0; i < auth->n_keys; i++)
        if (CRYPTO_memcmp(auth->keys[i].key_sha256, digest, 32) == 0)
            found = auth->keys[i].tenant;
    return found;
}

int gw_tenant_allows_origin(const gw_tenant_t *t, const char *origin, size_t len)
{
    if (t->any_origin)
        return 1;
    for (size_t i = 0; i < t->n_origins; i++)
        if (strlen(t->cors_origins[i]) == len && strncasecmp(t->cors_origins[i], origin, len) == 0)
            return 1;
    return 0;
}

int gw_auth_allows_origin(const gw_auth_t *auth, const char *origin, size_t len)
{
    if (auth->any_origin_anywhere)
        return 1;
    for (size_t i = 0; i < auth->n_tenants; i++)
        if (gw_tenant_allows_origin(auth->tenants[i], origin, len))
            return 1;
    return 0;
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
