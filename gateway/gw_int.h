/* Private to gateway/: the server, its loop threads, the parsed batch, auth and metrics. */
#ifndef GW_INT_H
#define GW_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <openssl/ssl.h>

#include "dedup.h"
#include "gw.h"
#include "schema.h"
#include "sl_err.h"
#include "sl_kafka.h"
#include "sl_metrics.h"

/* ---- tenants and auth (gw_auth.c): write key -> tenant. Keys are kept only as SHA-256
 * digests and compared in constant time. ---- */

/* A rate limit as GCRA: one atomic "theoretical arrival time" per tenant, shared by all loop
 * threads, so a decision costs one compare-and-swap and never blocks. */
typedef struct {
    int64_t interval_ns;  /* ns per event; 0: unlimited */
    int64_t tolerance_ns; /* burst_events * interval_ns */
    _Atomic int64_t tat_ns;
} gw_rate_t;

void gw_rate_init(gw_rate_t *r, double events_per_s, int64_t burst_events);
/* Takes n events at now_ns. Returns 0 when admitted, else how long (ns) until n would be. */
int64_t gw_rate_take(gw_rate_t *r, int64_t n, int64_t now_ns);
/* 1 when not even one event would pass now (checked before the body is parsed). */
int gw_rate_is_exhausted(gw_rate_t *r, int64_t now_ns);

typedef struct {
    char *name;
    gw_rate_t rate;
    char **cors_origins; /* allowed Origin values (exact, case-insensitive) */
    size_t n_origins;
    int any_origin;      /* "*" listed, or no list given */
} gw_tenant_t;

typedef struct {
    unsigned char key_sha256[32];
    gw_tenant_t *tenant;
} gw_key_t;

typedef struct {
    gw_tenant_t **tenants;
    size_t n_tenants;
    gw_key_t *keys;
    size_t n_keys;
    int any_origin_anywhere; /* some tenant accepts every origin */
} gw_auth_t;

typedef struct {
    double rate_events_per_s; /* 0: unlimited */
    int64_t burst_events;
    int64_t min_burst_events; /* gateway.max_events: a full batch must be able to pass */
} gw_auth_defaults_t;

/* Loads the development map "key:tenant[,key:tenant...]" (plain keys, hashed at once) and the
 * tenants file (hashed keys, origins, rates; may be NULL or ""). Keys must be unique. Returns 0
 * or -1 with errbuf (never naming a key). */
int gw_auth_init(gw_auth_t *auth, const char *spec, const char *tenants_file,
                 const gw_auth_defaults_t *def, char *errbuf, size_t errlen);
void gw_auth_dispose(gw_auth_t *auth);
/* Returns the tenant for a presented key, or NULL. Every entry is compared. */
gw_tenant_t *gw_auth_lookup(const gw_auth_t *auth, const char *key, size_t len);
/* Whether the tenant accepts requests from this Origin. */
int gw_tenant_allows_origin(const gw_tenant_t *t, const char *origin, size_t len);
/* Whether any tenant does (a preflight does not say which tenant it is for). */
int gw_auth_allows_origin(const gw_auth_t *auth, const char *origin, size_t len);
/* Extracts the key from an Authorization value ("Bearer KEY" or "Basic base64(KEY:)") into out
 * (cap bytes). Returns the key length, or -1 when the value is not one of those forms. */
int gw_auth_from_header(const char *value, size_t len, char *out, size_t cap);
/* Finds write_key=... in a query string (without '?'), percent-decoding it into out. Returns
 * the key length, 0 when absent, -1 when malformed or too long. */
int gw_auth_from_query(const char *query, size_t len, char *out, size_t cap);

/* ---- body decoding and batch parsing (gw_parse.c): pure functions, no h2o ---- */
typedef void *(*gw_alloc_fn)(void *actx, size_t n);

typedef struct {
    const char *raw; /* the event's JSON bytes (a slice of the body) */
    size_t raw_len;
    const char *event_id, *event_type, *user_id; /* decoded; valid when err == SL_ERR_OK */
    size_t event_id_len, event_type_len, user_id_len;
    int64_t ts;
    int32_t schema_version; /* pinned "schema_version", 0: the subject's latest */
    sl_err_t err;          /* SL_ERR_OK, or why the envelope is invalid */
    const char *err_path;  /* JSON path of the offending field ("user_id"), may be "" */
    const char *err_detail;
} gw_event_t;

typedef struct {
    gw_event_t *events;
    size_t n_events;
    const char *write_key; /* from the body, decoded; NULL if absent */
    size_t write_key_len;
    int64_t sent_at;       /* 0 if absent */
    const char *err_detail; /* for a whole-body error */
} gw_batch_doc_t;

typedef struct {
    size_t max_events;
    size_t max_event_bytes;
    unsigned max_depth;
} gw_parse_limits_t;

/* Returns 1 when the body starts with the gzip magic bytes. */
int gw_body_is_gzip(const char *body, size_t len);
/* Inflates a gzip body into scratch (scratch_cap bytes, which is also the limit). Returns
 * SL_ERR_OK with *out_len set, SL_ERR_DECOMPRESSED_TOO_LARGE, or SL_ERR_MALFORMED_GZIP.
 * Stops as soon as the limit is passed: a bomb costs at most scratch_cap bytes of work. */
sl_err_t gw_body_gunzip(const char *in, size_t len, char *scratch, size_t scratch_cap,
                        size_t *out_len);
/* Parses a batch: {"events":[...], "sent_at":N, "write_key":"..."} (other top-level members are
 * ignored). Whole-body problems return an error (malformed_json, not_an_object, missing_events,
 * bad_batch_field, too_many_events) with doc->err_detail; per-event envelope problems are
 * recorded in each event's err. Memory comes from alloc (the request pool). */
sl_err_t gw_parse_batch(const char *body, size_t len, const gw_parse_limits_t *limits,
                        gw_alloc_fn alloc, void *actx, gw_batch_doc_t *doc);
/* Parses a binary batch (application/x-protobuf): the protobuf wire format of
 * sluice.v1.RecordBatch { repeated bytes records = 1; int64 sent_at = 2; string write_key = 3; }.
 * Each record becomes one event with raw = the record's bytes (a slice of the body, Confluent
 * framed; gw_parse_pb.c does not decode it: schema_frame_parse + schema_validate_binary do, and
 * fill event_id/user_id/event_type). Unknown fields are skipped per wire type (groups nested up
 * to max_depth); a known field with the wrong wire type, a truncated or over-64-bit varint, a
 * length past the end -> malformed_protobuf; more than max_events records -> too_many_events;
 * negative sent_at -> bad_batch_field; a record over max_event_bytes -> that event's err is
 * event_too_large. A repeated sent_at/write_key: the last wins. No records is a valid, empty
 * batch. Memory comes from alloc (one array of exactly n_events). */
sl_err_t gw_parse_pb_batch(const char *body, size_t len, const gw_parse_limits_t *limits,
                           gw_alloc_fn alloc, void *actx, gw_batch_doc_t *doc);
/* 1 when s is a UUID in 8-4-4-4-12 hex form. */
int gw_is_uuid(const char *s, size_t len);

/* ---- metrics (gw_metrics.c): one shard per loop thread, single writer ---- */
#define GW_STATUS_LIST(X)                                                                          \
    X(200) X(204) X(400) X(401) X(403) X(404) X(405) X(413) X(415) X(429) X(500) X(503)
enum {
#define GW_STATUS_ENUM(s) GW_STATUS_##s,
    GW_STATUS_LIST(GW_STATUS_ENUM)
#undef GW_STATUS_ENUM
        GW_STATUS_OTHER,
    GW_STATUS__COUNT
};

typedef enum {
    GW_OUT_ACCEPTED,
    GW_OUT_DUPLICATE,
    GW_OUT_INVALID,
    GW_OUT_RETRY,
    GW_OUT__COUNT
} gw_outcome_t;

/* Why a batch was answered 429 (gw_admit.c). */
#define GW_SHED_LIST(X)                                                                            \
    X(TENANT_RATE, "tenant_rate") X(INFLIGHT_EVENTS, "inflight_events")                           \
    X(QUEUE_MESSAGES, "queue_messages") X(QUEUE_BYTES, "queue_bytes")                              \
    X(DELIVERY_LATENCY, "delivery_latency") X(MEMORY, "memory")
typedef enum {
    GW_SHED_NONE,
#define GW_SHED_ENUM(e, name) GW_SHED_##e,
    GW_SHED_LIST(GW_SHED_ENUM)
#undef GW_SHED_ENUM
        GW_SHED__COUNT
} gw_shed_t;
const char *gw_shed_name(gw_shed_t cause);

/* Why the edge guard (gw_guard.c) closed a connection: X(ENUM, "metric label") */
#define GW_CLOSE_LIST(X)                                                                           \
    X(RAPID_RESET, "rapid_reset") X(STALLED, "stalled_request") X(BAD_FRAMING, "conflicting_framing")
typedef enum {
#define GW_CLOSE_ENUM(e, name) GW_CLOSE_##e,
    GW_CLOSE_LIST(GW_CLOSE_ENUM)
#undef GW_CLOSE_ENUM
        GW_CLOSE__COUNT
} gw_close_reason_t;
extern const char *const gw_close_reason_names[GW_CLOSE__COUNT];

typedef struct {
    sl_counter_t requests[GW_STATUS__COUNT]; /* batch requests by response status */
    sl_counter_t events[GW_OUT__COUNT];
    sl_counter_t codes[SL_ERR__COUNT];       /* whole-request errors and per-event codes */
    sl_counter_t bytes_in;
    sl_counter_t batches_detached;           /* client went away before the answer */
    sl_counter_t dlq_records[SL_ERR__COUNT]; /* dead letters written (Kafka acked), by code */
    sl_counter_t dlq_failed;                 /* dead letters Kafka did not take */
    sl_counter_t dedup_degraded_events;      /* produced with Redis unreachable (Bloom only) */
    sl_counter_t dedup_refused_batches;      /* 503: Redis unreachable, policy closed */
    sl_counter_t shed[GW_SHED__COUNT];       /* 429s by cause */
    sl_counter_t clock_corrected_events;     /* client clock off: event_time corrected */
    sl_counter_t clock_clamped_events;       /* event time in the future: clamped */
    sl_hist_t lateness_ms;                   /* received_at - event_time, in milliseconds */
    sl_counter_t conns_closed[GW_CLOSE__COUNT]; /* connections the guard closed, by reason */
    sl_hist_t dedup_claim_latency;
    sl_hist_t request_latency;
    sl_hist_t delivery_latency;
} gw_metrics_t;

void gw_metrics_count_status(gw_metrics_t *m, int status);

/* ---- server and threads ---- */
typedef struct gw_thread gw_thread_t;
typedef struct gw_guard_conn gw_guard_conn_t; /* gw_guard.c's per-connection record */

struct gw_thread {
    gw_server_t *srv;
    size_t idx;
    pthread_t tid;
    h2o_evloop_t *loop;
    h2o_context_t ctx;       /* public TLS listener */
    h2o_context_t admin_ctx; /* admin listener */
    h2o_accept_ctx_t accept_ctx, admin_accept_ctx;
    h2o_socket_t *listener, *admin_listener;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t done_receiver;    /* batches whose deliveries all arrived */
    h2o_multithread_receiver_t schema_receiver;  /* batches whose schema fetch finished */
    h2o_multithread_receiver_t control_receiver; /* drain / stop */
    h2o_multithread_message_t drain_msg, stop_msg;
    int listen_fd, admin_fd; /* bound by gw_server_create, handed to the loop at start */
    int stop;
    int released; /* its h2o state was disposed on exit (else abandoned to process exit) */
    char *scratch; /* gzip inflate buffer, max_decompressed_bytes, used synchronously */
    uint8_t *encode_buf; /* one event's Avro value (and the encoder's scratch), synchronously */
    size_t encode_cap;
    dedup_thread_t *dedup; /* this loop's Redis connection, NULL without dedup */
    gw_metrics_t metrics;
    /* gw_guard.c: per-fd records of this loop's HTTP/2 connections (allocated with the first
     * one, guard_cap slots = RLIMIT_NOFILE, at most 2^20) and the periodic sweep over them */
    gw_guard_conn_t *guard;
    size_t guard_cap;
    int guard_overflow_logged;
    uint64_t guard_log_ms; /* last "closing" log line; repeats within a second are counted */
    unsigned guard_log_suppressed;
    h2o_timeout_t guard_sweep, guard_fast; /* the entry is in one: fast for a while after accepts */
    h2o_timeout_entry_t guard_sweep_entry;
    uint64_t guard_full_sweep_ms, guard_fast_until_ms;
};

struct gw_server {
    const gw_config_t *gc;
    h2o_globalconf_t h2o_config, admin_config;
    h2o_hostconf_t *host, *admin_host;
    SSL_CTX *ssl_ctx;
    sl_producer_t *producer;
    dedup_t *dedup; /* NULL when dedup.enabled is false */
    schema_cache_t *schemas; /* the registry cache: subject/version/id -> compiled schema */
    _Atomic int schemas_closing; /* set before the cache is destroyed: late callbacks ignored */
    gw_auth_t auth;
    gw_thread_t *threads;
    size_t n_threads;
    pthread_barrier_t started; /* gw_server_start returns once every loop is listening */
    int started_threads;       /* the loops ran (and release their own state on exit) */
    char instance_id[64];
    _Atomic int draining;
    _Atomic long inflight; /* batches between on_req and their answer (or detach) */
    _Atomic uint64_t inflight_bytes; /* request bytes pinned by batches waiting for Kafka */
    /* backpressure signals (gw_admit.c), written by every loop thread */
    _Atomic int64_t inflight_events; /* admitted, not yet answered */
    _Atomic int64_t kq_messages, kq_bytes; /* produced by batches whose acks are not all back */
    _Atomic uint64_t delivery_ewma_us;     /* smoothed produce -> last ack per batch */
    /* batches admitted and shed in the current second, and the Retry-After the last full
     * second called for (gw_admit_retry_after) */
    _Atomic int64_t window_start_ns;
    _Atomic int64_t window_admitted, window_shed;
    _Atomic int retry_after_s;
    pthread_mutex_t drain_mu;
    pthread_cond_t drain_cv;
};

/* gw_tls.c: the TLS context (TLS 1.2+, Mozilla intermediate ciphers, ALPN h2 + http/1.1). */
SSL_CTX *gw_tls_create(const gw_config_t *gc, char *errbuf, size_t errlen);

/* gw_http.c: the one place an error becomes a response. */
void gw_send_json(h2o_req_t *req, int status, const char *body, size_t len, int retry_after_s);
void gw_send_error(gw_server_t *srv, h2o_req_t *req, sl_err_t err, const char *detail);
/* The same with an explicit Retry-After (seconds, > 0) instead of gateway.retry_after. */
void gw_send_error_retry_after(gw_server_t *srv, h2o_req_t *req, sl_err_t err,
                               const char *detail, int retry_after_s);
/* the loop thread running the caller (set once at thread start) */
extern _Thread_local gw_thread_t *gw_current_thread;

/* gw_batch.c: POST/OPTIONS /v1/batch, and the Kafka delivery hand-off. */
int gw_batch_on_req(gw_server_t *srv, h2o_req_t *req);
void gw_batch_on_delivery(void *opaque, rd_kafka_resp_err_t err, int is_fatal,
                          int not_persisted);
void gw_batch_on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
void gw_batch_on_schema(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
/* Fire-and-forget dead letters (400 bodies) that Kafka did not take. */
uint64_t gw_batch_unattached_dlq_failed(void);

/* gw_dlq.c: one record for the dead-letter topic (headers per API.md). The value is cut to
 * producer.dlq_max_value_bytes (header dlq.truncated). opaque is the delivery opaque: a batch
 * slot, or NULL for fire-and-forget records. Returns 0 when queued, -1 when refused at once. */
typedef struct {
    const char *value;
    size_t len;
    sl_err_t code;
    const char *stage;  /* "parse", "envelope", "schema", "dedup" */
    const char *path, *detail;
    const char *tenant; /* NULL when unknown */
    const char *event_id;
    size_t event_id_len;
    int64_t received_at;
    const char *content_type;
    size_t content_type_len;
    const char *schema_subject; /* the event_type, when known */
    size_t schema_subject_len;
    uint32_t schema_id; /* 0: unknown */
} gw_dlq_record_t;
int gw_dlq_produce(gw_server_t *srv, rd_kafka_t *rk, const gw_dlq_record_t *rec, void *opaque);

/* gw_admin.c: /healthz, /readyz, /metrics, /debug/kafka-fatal. */
int gw_admin_on_req(gw_server_t *srv, h2o_req_t *req, int is_admin_listener);
int gw_server_is_ready(gw_server_t *srv, const char **why);

/* gw_admit.c: backpressure. Whether the pipeline can take another batch, asked before the
 * body is parsed (cheap: a few atomic loads). */
gw_shed_t gw_admit_pipeline(gw_server_t *srv);
/* A batch of n events to Kafka entered / left the pipeline (queue depth and in-flight events);
 * delivery_us is its produce -> last ack time (0 when it produced nothing). */
void gw_admit_enter(gw_server_t *srv, int64_t events);
/* A batch was shed (429). Returns the Retry-After to send: on average gateway.retry_after
 * times the last second's demand over capacity (batches asked for / batches taken), at most
 * backpressure.max_retry_after, drawn uniformly from [1, 2 * that - 1] so that clients told
 * together do not come back together. */
int gw_admit_shed(gw_server_t *srv, int64_t now_ns);
void gw_admit_produced(gw_server_t *srv, int64_t messages, int64_t bytes);
void gw_admit_leave(gw_server_t *srv, int64_t events, int64_t messages, int64_t bytes,
                    uint64_t delivery_us);

/* gw_guard.c: edge protection h2o 2.2.5 lacks, on the loop thread. gw_guard_on_req runs first
 * for every request on either listener: it answers an HTTP/1.1 request whose head has both
 * Content-Length and Transfer-Encoding (or two Content-Lengths) with 400 conflicting_framing and
 * closes the connection (returns 1), and on HTTP/2 checks the connection's stream budget
 * (gateway.h2_max_streams_per_sec; past it GOAWAY ENHANCE_YOUR_CALM). A sweep every 100 ms does
 * the same for connections whose streams never reach a handler, and closes HTTP/2 connections
 * whose incoming request made no progress for gateway.body_timeout. */
int gw_guard_on_req(gw_server_t *srv, h2o_req_t *req);
/* A new public connection: caps its kernel receive buffer (gateway.recv_buffer_bytes), which
 * bounds how many frames h2o can parse in one go before timers (the sweep) run again. */
void gw_guard_on_accept(gw_thread_t *thr, h2o_socket_t *sock);
void gw_guard_thread_init(gw_thread_t *thr);    /* after the loop exists; on the loop thread */
void gw_guard_thread_dispose(gw_thread_t *thr); /* on the loop thread; accepts never-started */
/* Pure check of an HTTP/1.x request head (request line, header lines, empty line; len bytes).
 * Returns -1 when it has Content-Length and Transfer-Encoding, or Content-Length twice. */
int gw_guard_http1_head_check(const char *head, size_t len);

/* in-flight accounting used by the drain */
void gw_inflight_add(gw_server_t *srv, long delta);

#endif
