/* schema_cache: the gateway's cache of the schema registry. Maps (subject, latest | version N)
 * and schema ids to compiled schemas without ever blocking the caller: lookups read lock-free
 * tables, misses are fetched by the cache's own threads (libcurl, blocking there) and the caller
 * is called back. Persisted to disk so a registry outage plus a restart keeps known event types
 * flowing. See schema/README.md, "Registry cache". (To be folded into schema/schema.h.) */
#ifndef SCHEMA_CACHE_H
#define SCHEMA_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "sl_config.h"
#include "sl_metrics.h"

/* Longest subject the cache accepts; a longer one is answered NEGATIVE without a fetch. */
#define SCHEMA_CACHE_MAX_SUBJECT_BYTES 255

typedef struct schema_cache schema_cache_t;

/* How the cache compiles, fetches and tells time. compile and destroy are required; the rest
 * are optional seams (unit tests pass fakes; the gateway passes NULL for them).
 * Every function here may be called from any of the cache's fetch threads, concurrently, and
 * (compile, destroy) from schema_cache_create / schema_cache_destroy's thread. */
typedef struct {
    /* Builds the compiled form of `schema_text` (not NUL-terminated; `len` bytes) whose
     * schemaType is `type` ("AVRO", "PROTOBUF", "JSON") and registry id `id`. Returns NULL with
     * a message in errbuf when the text is not a schema the gateway can use. */
    void *(*compile)(void *ctx, const char *schema_text, size_t len, const char *type, uint32_t id,
                     char *errbuf, size_t errlen);
    /* Frees what compile returned (only at schema_cache_destroy, or when two threads compiled
     * the same id at once). */
    void (*destroy)(void *ctx, void *compiled);
    void *ctx;

    /* Replaces the HTTP client: performs GET registry_url + `path` (path is already
     * URL-escaped, e.g. "/subjects/page_view/versions/latest") and appends the response body
     * to `body` (bounded: sl_buf_append sets body->overflow past the limit). Returns the HTTP
     * status, or -1 when the registry could not be reached (errbuf says why). NULL: libcurl. */
    int (*fetch)(void *fetch_ctx, const char *path, sl_buf_t *body, char *errbuf, size_t errlen);
    void *fetch_ctx;

    /* Monotonic clock in ms used for every TTL. NULL: CLOCK_MONOTONIC_COARSE. */
    uint64_t (*now_ms)(void *clock_ctx);
    void *clock_ctx;
} schema_cache_ops_t;

/* Settings, registered as the schema.* config keys (schema_cache_config_register; `--help`
 * lists them with their bounds). Tests may fill one by hand: strings are only read. */
typedef struct {
    char *registry_url;        /* schema.registry_url: base URL, no trailing '/' needed */
    char *cache_dir;           /* schema.cache_dir: where the snapshot lives; NULL/"" = none */
    int64_t latest_ttl_ms;     /* (subject, latest) is served this long before a refresh */
    int64_t negative_ttl_ms;   /* "not found" answers are remembered this long */
    int64_t retry_backoff_ms;  /* after a failed fetch, UNAVAILABLE without a new fetch */
    int64_t fetch_timeout_ms;  /* whole HTTP request to the registry */
    int64_t fetch_threads;     /* threads doing the (blocking) fetches */
    int64_t max_subjects;      /* cached (subject, latest) + (subject, N) keys */
    int64_t max_schemas;       /* cached schema ids */
    uint64_t max_schema_bytes; /* longest schema text accepted (and response ~2x that) */
    int64_t max_negative;      /* remembered unknown keys + keys being fetched */
    int64_t max_waiters;       /* callbacks registered by PENDING lookups, all keys */
} schema_cache_settings_t;

/* Registers the schema.* keys into cfg with `s` as their storage (see sl_config_add_section). */
int schema_cache_config_register(sl_config_t *cfg, schema_cache_settings_t *s, char *errbuf,
                                 size_t errlen);
/* Fills `s` with the defaults of the table (for tests and tools without a config). The
 * strings point at static text: do not pass this `s` to sl_config_destroy's ownership. */
void schema_cache_settings_defaults(schema_cache_settings_t *s);

/* Creates the cache: loads and compiles the snapshot in cache_dir (if any; a corrupt or
 * truncated snapshot is logged and the readable part used), starts the fetch threads, and has
 * them ask the registry for its subjects in the background (warming the cache). Never blocks
 * on the registry. `ops` is copied. Returns NULL with errbuf set on bad settings or an
 * unusable cache_dir. */
schema_cache_t *schema_cache_create(const schema_cache_settings_t *s, const schema_cache_ops_t *ops,
                                    char *errbuf, size_t errlen);
/* Stops and joins the fetch threads, then calls the callback of every lookup still PENDING
 * (on the calling thread; those callbacks must not call into the cache any more), then frees
 * every compiled schema. Accepts NULL. No lookup may run concurrently or afterwards. */
void schema_cache_destroy(schema_cache_t *c);

typedef enum {
    SCHEMA_CACHE_HIT = 0,     /* *hit filled */
    SCHEMA_CACHE_NEGATIVE,    /* the registry says no such subject / version / id (or the
                               * schema cannot be compiled): answer schema_not_found */
    SCHEMA_CACHE_UNAVAILABLE, /* registry unreachable and nothing cached, or a bound is
                               * reached: answer 503 / retry */
    SCHEMA_CACHE_PENDING,     /* a fetch is under way; cb(arg) will be called once */
} schema_cache_status_t;

/* "hit", "negative", "unavailable", "pending". */
const char *schema_cache_status_name(schema_cache_status_t st);

typedef struct {
    void *compiled;   /* owned by the cache, never freed or moved before schema_cache_destroy:
                       * keep the raw pointer as long as you like */
    uint32_t id;      /* registry schema id (the Confluent framing id) */
    int32_t version;  /* subject version; 0 for lookups by id */
    const char *type; /* "AVRO", "PROTOBUF" or "JSON" (static storage) */
    int is_stale;     /* latest mapping read from the disk snapshot and not yet confirmed by
                       * the registry (it is being refreshed) */
} schema_cache_hit_t;

/* Completion callback of a PENDING lookup: called exactly once, without any cache lock held,
 * from a fetch thread when the fetch finished (whatever its outcome: look up again then), or
 * from schema_cache_destroy if the cache goes away first. It must be quick (forward to your
 * loop thread, e.g. with h2o_multithread_send_message) and must not assume the request that
 * looked up is still alive (keep it refcounted / detachable). */
typedef void (*schema_cache_cb_t)(void *arg);

/* Resolves `subject` (event_type; any bytes, `subject_len` long) at `version` (0 = latest,
 * N >= 1 = pinned). Non-blocking (a miss takes a mutex held only for table work, never for
 * I/O), callable from any number of threads at once. On HIT fills *hit. On PENDING, when cb is
 * not NULL it is registered (see schema_cache_cb_t); with cb NULL the fetch still runs. When
 * schema.max_waiters callbacks are already registered the answer is UNAVAILABLE instead of
 * PENDING. A stale latest entry is a HIT while its refresh runs. An empty or over-long subject
 * or a negative version is NEGATIVE without a request. */
schema_cache_status_t schema_cache_lookup(schema_cache_t *c, const char *subject,
                                          size_t subject_len, int32_t version,
                                          schema_cache_hit_t *hit, schema_cache_cb_t cb, void *arg);
/* The same for a schema id (binary batches carry the id in their Confluent framing). */
schema_cache_status_t schema_cache_lookup_id(schema_cache_t *c, uint32_t id,
                                             schema_cache_hit_t *hit, schema_cache_cb_t cb,
                                             void *arg);

/* Readiness: 1 once the snapshot loaded at least one schema or the registry answered once. */
int schema_cache_is_warm(const schema_cache_t *c);

/* Counters, summed over shards at call time (any thread). */
typedef struct {
    uint64_t hits, stale_hits; /* stale_hits are also counted in hits */
    uint64_t misses_pending, misses_negative, misses_unavailable;
    uint64_t fetches, fetch_errors, compile_errors, refreshes, persist_errors, full;
    uint64_t subjects, schemas, negative; /* entries cached now */
} schema_cache_stats_t;

void schema_cache_stats(const schema_cache_t *c, schema_cache_stats_t *out);

/* Appends the cache's metrics as Prometheus text (sluice_schema_cache_*, sluice_schema_
 * registry_*) for the gateway's /metrics. Any thread. */
void schema_cache_render_metrics(const schema_cache_t *c, sl_buf_t *b);

#endif
