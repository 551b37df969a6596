/* The HTTPS edge: accepts batches of events, validates them, and answers only once Kafka has
 * acked every accepted event. One h2o event loop per thread; see gateway/README.md. */
#ifndef GW_H
#define GW_H

#include <stddef.h>
#include <stdint.h>

#include "dedup.h"
#include "schema_cache.h"
#include "sl_config.h"

typedef struct {
    char *listen;              /* public TLS listener host:port */
    char *admin_listen;        /* plain-HTTP admin listener host:port */
    int64_t threads;           /* loop threads; 0 = one per online CPU */
    uint64_t max_body_bytes;   /* request body as received */
    uint64_t max_decompressed_bytes;
    int64_t max_events;        /* events per batch */
    uint64_t max_event_bytes;  /* one event's JSON */
    int64_t max_json_depth;
    uint64_t max_inflight_bytes; /* request memory held by batches waiting for Kafka; past it 429 */
    int64_t max_streams_per_conn; /* HTTP/2 concurrent requests per connection */
    uint64_t recv_buffer_bytes; /* SO_RCVBUF of public connections; 0: the kernel's autotuning */
    int64_t h2_max_streams_per_s; /* HTTP/2 streams one connection may open per second */
    int64_t header_timeout_ms; /* HTTP/1.1: the whole request (head and body) and keep-alive idle */
    int64_t body_timeout_ms;   /* HTTP/2: a request arriving with no progress this long */
    int64_t idle_timeout_ms;   /* HTTP/2: a connection with no frame and no request this long */
    int64_t drain_timeout_ms;  /* SIGTERM: how long in-flight batches may take */
    int64_t retry_after_s;     /* Retry-After on 429 and 503 */
    char *instance_id;         /* names this gateway in logs and Kafka headers; default hostname */
    char *tls_cert_file, *tls_key_file;
    char *tls_self_signed_out; /* where to write the generated certificate (PEM), if any */
    char *write_keys;          /* "key:tenant,key:tenant" (development) */
    char *tenants_file;        /* JSON: hashed keys, CORS origins, rate limits per tenant */
    int64_t default_rate_eps;  /* tenant rate limit in events/s when the file sets none; 0: off */
    int64_t default_burst_events;
    /* backpressure: past any of these, POST /v1/batch answers 429 before parsing */
    int64_t bp_queue_max_messages; /* events produced, not yet acked by Kafka */
    uint64_t bp_queue_max_bytes;
    int64_t bp_max_delivery_latency_ms; /* smoothed produce -> ack time per batch */
    int64_t bp_max_inflight_events;     /* events admitted and not yet answered */
    int64_t bp_max_retry_after_s;       /* Retry-After grows with overload up to this */
    /* client clocks */
    int64_t clock_skew_threshold_ms; /* |sent_at - received_at| past this: corrected time */
    int64_t clock_max_future_ms;     /* event time past received_at + this is clamped */
    char *topic;               /* Kafka topic for accepted events */
    char *dlq_topic;           /* the dead-letter topic */
    uint64_t dlq_max_value_bytes; /* a dead letter's value is cut here (e.g. a 400 body) */
    int64_t kafka_health_interval_ms;
    int64_t flush_timeout_ms;  /* producer flush at shutdown */
    int log_level;
    int debug_fault_injection; /* enables POST /debug/kafka-fatal on the admin listener */
    int debug_null_pipeline;   /* benchmarks: POST /v1/batch answers 200 at once, doing nothing */
    dedup_settings_t dedup;    /* dedup.*, redis.* (dedup's own table) */
    schema_cache_settings_t schema; /* schema.* (the registry cache's own table) */
} gw_config_t;

/* Registers the gateway's keys (gateway.*, tls.*, auth.*, producer.*, log.*, debug.*), dedup's
 * (dedup.*, redis.*) and the kafka.* passthrough into cfg, with defaults applied to *gc. */
int gw_config_register(sl_config_t *cfg, gw_config_t *gc, char *errbuf, size_t errlen);

typedef struct gw_server gw_server_t;

/* Builds everything (TLS context, Kafka producer, listeners bound) without serving yet. Returns
 * NULL with errbuf set. Reads but does not own gc and cfg (they must outlive the server). */
gw_server_t *gw_server_create(const gw_config_t *gc, const sl_config_t *cfg, char *errbuf,
                              size_t errlen);
/* Starts the loop threads. Returns 0 or -1. */
int gw_server_start(gw_server_t *srv);
/* Blocks the calling (main) thread until SIGTERM or SIGINT, then drains: readiness false,
 * listeners closed, in-flight batches finished (up to drain_timeout_ms), loop threads stopped.
 * Signals must be blocked in every thread before gw_server_start (gw_server_block_signals). */
void gw_server_wait_and_drain(gw_server_t *srv);
/* Blocks SIGTERM, SIGINT and SIGPIPE's default action for this and all later threads. */
void gw_server_block_signals(void);
/* Flushes the producer and frees everything. Returns the number of Kafka messages that could
 * not be delivered at shutdown (0 is clean). Accepts NULL. */
int gw_server_destroy(gw_server_t *srv);

#endif
