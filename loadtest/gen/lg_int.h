/* Private to loadtest/gen/: buffers, PRNG, the ledger and the event-id map, histograms,
 * statistics, batches and jobs, connections (HTTP/1.1 and HTTP/2 over TLS), workers. */
#ifndef LG_INT_H
#define LG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/ssl.h>
#include <zlib.h>

#include "lg.h"

/* ---- growable byte buffer (lg_util.c); allocation failure aborts (sizes are ours) ---- */
typedef struct {
    char *data;
    size_t len, cap;
} lg_buf_t;

void lg_buf_reserve(lg_buf_t *b, size_t extra);
void lg_buf_append(lg_buf_t *b, const void *p, size_t n);
void lg_buf_dispose(lg_buf_t *b);
/* Appends the decimal digits of v. */
void lg_buf_put_u64(lg_buf_t *b, uint64_t v);
/* string literals only: "" s "" refuses anything else at compile time */
#define LG_BUF_LIT(b, s) lg_buf_append((b), "" s "", sizeof(s) - 1)

void *lg_xmalloc(size_t n);
void *lg_xcalloc(size_t n, size_t size);
void *lg_xrealloc(void *p, size_t n);

static inline uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t lg_wall_ms(void);

/* ---- PRNG: xoshiro256**, one per worker, seeded through splitmix64 ---- */
typedef struct {
    uint64_t s[4];
} lg_rng_t;

void lg_rng_seed(lg_rng_t *r, uint64_t seed);
/* A seed from getrandom(2). */
uint64_t lg_rng_os_seed(void);

static inline uint64_t lg_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t lg_rng_next(lg_rng_t *r)
{
    uint64_t *s = r->s, out = lg_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = lg_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, n), n < 2^32. */
static inline uint32_t lg_rng_below(lg_rng_t *r, uint32_t n)
{
    return (uint32_t)(((lg_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [0, 1). */
static inline double lg_rng_unit(lg_rng_t *r)
{
    return (double)(lg_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ---- event ids: 16 bytes, UUIDv4 ---- */
typedef struct {
    uint8_t b[16];
} lg_id_t;

void lg_uuid_v4(lg_rng_t *r, lg_id_t *id);
/* Writes the 36-character canonical form (no NUL). */
void lg_uuid_format(const lg_id_t *id, char out[36]);
/* Parses 36 characters with dashes, or the 32 hex digits this tool sends as a bad event_id.
 * Returns 0, or -1. */
int lg_uuid_parse(const char *s, size_t len, lg_id_t *id);

/* ---- ledger entries and the event-id map (lg_util.c); one writer thread each ---- */

/* Ledger flags (lg_entry_t.l.flags) */
enum {
    LG_F_MADE_INVALID = 1, /* generated invalid on purpose */
    LG_F_DUPLICATE = 2,    /* some answer said duplicate */
    LG_F_INVALID = 4,      /* some answer said invalid */
    LG_F_REJECTED = 8,     /* a whole-request 4xx (final) */
    LG_F_EXHAUSTED = 16,   /* resends ran out */
    LG_F_AMBIGUOUS = 32,   /* a send ended without an answer (the gateway may have stored it) */
    LG_F_ID_CONFLICT = 64, /* answered duplicate/id_conflict: we never change a payload */
};

/* Audit flags (lg_entry_t.a.flags) */
enum {
    LG_A_MATCHED = 1, /* some ledger has this id */
};

typedef struct {
    lg_id_t id; /* in the map, all zero marks an empty slot (a UUIDv4 never is) */
    union {
        struct {
            uint32_t user;
            uint8_t tenant, flags, n_accepted, attempts;
        } l; /* ledger: what the gateway answered for this event */
        struct {
            uint16_t n_events, n_dlq;
            uint8_t tenant, flags;
        } a; /* audit: what the consumer saw */
    };
} lg_entry_t;

_Static_assert(sizeof(lg_entry_t) == 24, "ledger entries stay compact");

/* The ledger: every generated event, append-only in chunks so entries never move. Batches
 * carry their events' indices, so an answer updates its entries without a lookup; only the
 * audit joins by id (through its map of what it read). */
#define LG_LEDGER_CHUNK_BITS 16
typedef struct {
    lg_entry_t **chunks;
    size_t n_chunks;
    uint32_t n;
} lg_ledger_t;

/* Appends a zeroed entry; returns its index and sets *e. */
uint32_t lg_ledger_add(lg_ledger_t *l, lg_entry_t **e);
void lg_ledger_dispose(lg_ledger_t *l);

static inline lg_entry_t *lg_ledger_at(const lg_ledger_t *l, uint32_t i)
{
    return &l->chunks[i >> LG_LEDGER_CHUNK_BITS][i & ((1u << LG_LEDGER_CHUNK_BITS) - 1)];
}

/* Open addressing (linear probing) keyed by the 16-byte id: the audit's count of what it read
 * per event. Grows at 70% load. */
typedef struct {
    lg_entry_t *slots;
    size_t cap, n; /* cap is a power of two */
} lg_idmap_t;

void lg_idmap_init(lg_idmap_t *m, size_t initial_cap);
void lg_idmap_dispose(lg_idmap_t *m);
lg_entry_t *lg_idmap_get(const lg_idmap_t *m, const lg_id_t *id);
/* Returns the entry for id, inserting a zeroed one (then *is_new = 1); NULL for the all-zero
 * id, which marks empty slots. */
lg_entry_t *lg_idmap_put(lg_idmap_t *m, const lg_id_t *id, int *is_new);

/* ---- log-linear latency histogram in microseconds (lg_stats.c): ~1.6% resolution ---- */
#define LG_HIST_SUB_BITS 7
#define LG_HIST_BUCKETS ((64 - LG_HIST_SUB_BITS + 2) << (LG_HIST_SUB_BITS - 1))

typedef struct {
    uint64_t count, sum_us, max_us;
    uint64_t b[LG_HIST_BUCKETS];
} lg_hist_t;

void lg_hist_record(lg_hist_t *h, uint64_t us);
void lg_hist_merge(lg_hist_t *dst, const lg_hist_t *src);
/* The value at quantile q (0..1) in microseconds: the upper edge of its bucket, capped at max. */
uint64_t lg_hist_quantile(const lg_hist_t *h, double q);

/* ---- small name -> count tables for error and event codes ---- */
#define LG_CODES_MAX 24
typedef struct {
    char name[LG_CODES_MAX][32];
    uint64_t n[LG_CODES_MAX];
    int used;
    uint64_t other;
} lg_codes_t;

void lg_codes_add(lg_codes_t *c, const char *name, size_t len, uint64_t n);
void lg_codes_merge(lg_codes_t *dst, const lg_codes_t *src);

/* ---- statistics, one set per worker (single writer), merged for reports ---- */
enum { LG_ANS_ACCEPTED, LG_ANS_DUPLICATE, LG_ANS_INVALID, LG_ANS_RETRY, LG_ANS__COUNT };

typedef struct {
    uint64_t batches, events, events_invalid;    /* generated originals */
    uint64_t dup_copies, retry_batches, skipped; /* skipped: open loop, queue full */
    uint64_t requests, events_sent, bytes_sent;  /* every attempt */
    uint64_t http[600];                          /* answers by status */
    uint64_t conn_errors, timeouts, refused, bad_responses, connects;
    uint64_t resends, exhausted_batches;
    uint64_t ans[LG_ANS__COUNT]; /* per-event answers, every attempt */
    uint64_t accepted_twice, invalid_accepted, unexpected_invalid, id_conflicts;
    uint64_t abandoned_jobs;
    lg_codes_t req_codes; /* whole-request error codes */
    lg_codes_t ev_codes;  /* per-event codes (retry reasons, invalid reasons) */
    lg_hist_t lat;        /* per request, from its intended send time */
    lg_hist_t batch_lat;  /* per batch, from its first intended send to its final answer */
} lg_stats_t;

void lg_stats_merge(lg_stats_t *dst, const lg_stats_t *src);

/* ---- batches (lg_event.c) ---- */

/* One batch payload: built once, sent as is by every copy and resend (same bytes, same ids). */
typedef struct {
    int refs;
    uint8_t tenant;
    uint16_t n;
    uint32_t *idx;    /* n ledger indices (the worker's ledger) */
    uint32_t *ev_off; /* offset of event i's JSON in json */
    uint32_t *ev_len;
    char *json; /* {"sent_at":…,"events":[…]} */
    size_t json_len;
    char *wire; /* json, or its gzip */
    size_t wire_len;
} lg_body_t;

typedef struct lg_worker lg_worker_t;

/* Generates a batch of fresh events for a tenant; records every event in the worker's ledger. */
lg_body_t *lg_body_generate(lg_worker_t *w, int tenant);
/* A batch of already-sent events (per-event `retry`), from their exact JSON bytes. */
lg_body_t *lg_body_from_events(lg_worker_t *w, int tenant, const uint32_t *idx, char *const *events,
                               const uint32_t *lens, size_t n);
void lg_body_release(lg_body_t *body);

/* ---- jobs: one logical send of a body with its resends ---- */
enum { LG_JOB_ORIGINAL, LG_JOB_DUP, LG_JOB_RETRY };

typedef struct lg_conn lg_conn_t;

typedef struct lg_job {
    lg_body_t *body;
    uint64_t first_due_ns; /* intended time of the first attempt */
    uint64_t due_ns;       /* intended time of this attempt (latency counts from here) */
    uint64_t sent_ns;
    uint8_t kind, attempts;
    /* in flight */
    lg_conn_t *conn;
    lg_conn_t *last_conn; /* the connection of its last attempt (kept after the answer) */
    struct lg_job *prev, *next; /* the connection's in-flight list, or the ready queue */
    int32_t stream_id;
    int status, retry_after_s;
    size_t wire_off; /* request body bytes handed to the transport */
    lg_buf_t resp;
    int is_resp_truncated;
} lg_job_t;

/* ---- connections (lg_conn.c, lg_h1.c, lg_h2.c) ---- */
enum { LG_CS_IDLE, LG_CS_CONNECTING, LG_CS_HANDSHAKE, LG_CS_READY };

/* Why a request ended without an answer */
enum {
    LG_FAIL_CONN,    /* connection error after the request was (maybe) sent: ambiguous */
    LG_FAIL_TIMEOUT, /* no answer in time: ambiguous */
    LG_FAIL_REFUSED, /* never processed (refused stream, not written yet): safe */
};

struct lg_conn {
    lg_worker_t *w;
    int fd, state;
    SSL *ssl;
    uint32_t ev_mask; /* epoll interest */
    int inflight, max_inflight;
    uint64_t paused_until_ns; /* --sdk-pause: no new request before this */
    lg_job_t *jobs; /* in flight, oldest first */
    lg_job_t *jobs_tail;
    lg_buf_t out; /* bytes waiting for the socket */
    size_t out_off;
    lg_buf_t in; /* HTTP/1.1 response bytes */
    void *h2;    /* nghttp2_session */
    int is_goaway;
    uint64_t connect_ns, reconnect_ns;
    uint32_t backoff_ms;
};

void lg_conn_init(lg_conn_t *c, lg_worker_t *w);
void lg_conn_start(lg_conn_t *c);
void lg_conn_handle(lg_conn_t *c, uint32_t events);
int lg_conn_has_room(const lg_conn_t *c);
void lg_conn_submit(lg_conn_t *c, lg_job_t *job);
void lg_conn_check(lg_conn_t *c, uint64_t now_ns); /* timeouts, reconnects */
/* Closes the connection; its in-flight jobs fail with `why`. */
void lg_conn_close(lg_conn_t *c, int why);
void lg_conn_dispose(lg_conn_t *c);

/* transport for the protocol halves (lg_conn.c) */
void lg_conn_track(lg_conn_t *c, lg_job_t *job); /* adds to the in-flight list */
void lg_conn_untrack(lg_conn_t *c, lg_job_t *job);
int lg_conn_flush(lg_conn_t *c); /* 0, or -1: connection broken */

/* HTTP/1.1 (lg_h1.c) */
void lg_h1_write_request(lg_conn_t *c, lg_job_t *job);
/* Parses responses from c->in; 0, or -1: protocol error or the server closes */
int lg_h1_on_read(lg_conn_t *c);

/* HTTP/2 (lg_h2.c) */
int lg_h2_open(lg_conn_t *c);
void lg_h2_close(lg_conn_t *c);
int lg_h2_submit(lg_conn_t *c, lg_job_t *job);
int lg_h2_on_read(lg_conn_t *c, const uint8_t *data, size_t n);
int lg_h2_pump(lg_conn_t *c); /* moves nghttp2's output into c->out */
void lg_h2_cancel(lg_conn_t *c, lg_job_t *job);

/* ---- response bodies (lg_resp.c) ---- */
typedef void (*lg_resp_event_cb)(void *arg, long i, int ans, const char *code, size_t code_len);
/* Walks a 200 body: calls cb for every listed (non-accepted) event. Returns 0, or -1. */
int lg_resp_parse_batch(const char *s, size_t n, lg_resp_event_cb cb, void *arg);
/* Copies error.code of a whole-request error body into out. Returns its length, or -1. */
int lg_resp_error_code(const char *s, size_t n, char *out, size_t cap);

/* ---- workers (lg_worker.c) ---- */

/* an event waiting to be resent after a per-event `retry` */
typedef struct {
    uint64_t due_ns;
    char *json;
    uint32_t idx, len; /* ledger index, JSON length */
    uint8_t tenant;
} lg_retry_t;

struct lg_worker {
    int idx;
    const lg_conf_t *conf;
    lg_run_t *run;
    pthread_t thr;
    int ep;
    lg_rng_t rng;
    lg_conn_t *conns;
    int n_conns, rr;
    lg_ledger_t ledger;
    /* scheduling */
    lg_job_t *ready, *ready_tail;
    size_t n_ready;
    lg_job_t **heap;
    size_t n_heap, heap_cap;
    lg_retry_t *retries;
    size_t n_retries, retries_cap;
    uint64_t retry_next_ns;
    int inflight;
    int is_generating, is_unreachable;
    uint64_t end_ns, gen_end_ns, drain_deadline_ns, next_intended_ns, interval_ns, gen_limit;
    uint64_t next_housekeeping_ns, record_from_ns;
    /* batch building */
    z_stream z;
    int has_z;
    lg_buf_t scratch;
    lg_stats_t st;   /* whole run */
    lg_stats_t tick; /* since the last progress publication */
};

lg_worker_t *lg_worker_create(lg_run_t *run, const lg_conf_t *conf, int idx, char *errbuf,
                              size_t errlen);
void lg_worker_destroy(lg_worker_t *w);
void *lg_worker_main(void *arg);

/* from the connections: an answer, or a failure without one. The job leaves the connection. */
void lg_worker_on_answer(lg_worker_t *w, lg_job_t *job);
void lg_worker_on_failure(lg_worker_t *w, lg_job_t *job, int why);
/* a connection became ready: the loop dispatches on its next turn */
SSL_CTX *lg_worker_ssl_ctx(const lg_worker_t *w);

/* ---- the run (lg_run.c) ---- */
struct lg_run {
    const lg_conf_t *conf;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *auth[LG_MAX_TENANTS]; /* "Bearer KEY" per tenant */
    SSL_CTX *ssl_ctx;
    lg_worker_t **workers;
    int n_workers;
    atomic_int is_stopping; /* SIGINT: stop generating */
    atomic_int n_running;
    uint64_t start_ns, end_ns;
    pthread_mutex_t mu; /* guards `tick` */
    lg_stats_t tick;    /* published by workers, printed by the progress loop */
    lg_stats_t total;   /* filled when the workers are done */
};

/* Called by a worker every housekeeping turn (50 ms): adds its tick stats to the run's. */
void lg_run_publish(lg_run_t *run, lg_stats_t *tick);

/* ---- audit results (lg_audit.c) ---- */
typedef struct {
    int is_complete;
    char incomplete_why[200];
    uint64_t records, dlq_records, records_without_id;
    uint64_t expected_present, expected_absent;
    uint64_t lost, lost_answered_duplicate, duplicated, present_never_accepted, present_unconfirmed,
        unknown, wrong_tenant, invalid, invalid_in_dlq, invalid_not_in_dlq;
    double seconds_after_run;
} lg_audit_result_t;

/* Compares what the consumer saw with the ledgers. Only after lg_audit_finish. */
void lg_audit_reconcile(lg_audit_t *a, lg_worker_t *const *workers, int n, lg_audit_result_t *res);

/* ---- reports (lg_report.c) ---- */
void lg_report_progress(const lg_conf_t *conf, const lg_stats_t *tick, double elapsed_s,
                        double tick_s);

#endif
