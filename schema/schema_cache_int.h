/* Private to schema_cache*.c: the libcurl client and the on-disk snapshot log. */
#ifndef SCHEMA_CACHE_INT_H
#define SCHEMA_CACHE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "sl_metrics.h"

/* ---- schema_cache_http.c: one blocking libcurl handle per fetch thread ---- */

/* Global libcurl init/cleanup, reference counted (curl_global_init is not safe to race). */
void sc_http_global_ref(void);
void sc_http_global_unref(void);
/* Returns a handle (never NULL: aborts on OOM like the rest of our small allocations). */
void *sc_http_new(void);
void sc_http_free(void *h);
/* GET base_url + path within timeout_ms; the body goes to `body` (bounded by body->max: past
 * it body->overflow is set and the transfer cut). Returns the HTTP status (also when the body
 * was cut), or -1 with errbuf set (unreachable, timeout). */
int sc_http_get(void *h, const char *base_url, const char *path, int64_t timeout_ms, sl_buf_t *body,
                char *errbuf, size_t errlen);
/* Percent-encodes `s` (everything but RFC 3986 unreserved bytes) into out; returns the length,
 * or -1 when it does not fit in outlen (including the NUL). */
int sc_url_escape(const char *s, size_t n, char *out, size_t outlen);

/* ---- schema_cache_disk.c: the snapshot, an append-only log of checksummed records ---- */

typedef enum {
    SC_DISK_SCHEMA = 'S',  /* id, type, payload = schema text */
    SC_DISK_VERSION = 'V', /* id, version, payload = subject: (subject, version) -> id */
    SC_DISK_LATEST = 'L',  /* version, payload = subject: latest of subject is that version */
} sc_disk_kind_t;

typedef struct {
    sc_disk_kind_t kind;
    uint32_t id;
    int32_t version;
    const char *type; /* SCHEMA only ("AVRO"...); else NULL */
    const char *payload;
    size_t len;
} sc_disk_rec_t;

typedef struct sc_disk sc_disk_t;

/* Creates `dir` if needed (one level) and checks it is writable. NULL with errbuf set if not. */
sc_disk_t *sc_disk_open(const char *dir, char *errbuf, size_t errlen);
void sc_disk_close(sc_disk_t *d);
/* Reads the snapshot (at most max_bytes; a bigger file is ignored with a log line), calls
 * on_rec for every valid record in order, stops at the first corrupt or truncated one (logged),
 * then rewrites the file atomically (temp + fsync + rename) with only the records on_rec
 * accepted (returned 1), and opens it for appending. Returns the number of accepted records,
 * or -1 when the rewritten file cannot be written (then persistence is off, logged). */
long sc_disk_load(sc_disk_t *d, uint64_t max_bytes,
                  int (*on_rec)(void *arg, const sc_disk_rec_t *r), void *arg,
                  uint64_t max_payload_bytes);
/* Appends records (one write + fdatasync); thread-safe. 0, or -1 (logged by the caller). */
int sc_disk_append(sc_disk_t *d, const sc_disk_rec_t *recs, size_t n);
/* Encodes one record onto b (exposed for the tests that forge snapshots). */
void sc_disk_encode(sl_buf_t *b, const sc_disk_rec_t *r);
/* The snapshot's file name inside the cache dir. */
#define SC_DISK_FILE "schema-cache.log"

#endif
