/* The gateway's configuration table: every key, its type, default, bounds and meaning. */
#include <stddef.h>

#include "gw.h"
#include "sl_log.h"

#define F(key, type, field, def, min, max, doc)                                                    \
    {key, type, offsetof(gw_config_t, field), def, min, max, NULL, doc}

static const sl_cfg_field_t gw_fields[] = {
    F("gateway.listen", SL_CFG_STR, listen, "0.0.0.0:8443", 1, 0, "public HTTPS listener"),
    F("gateway.admin_listen", SL_CFG_STR, admin_listen, "127.0.0.1:9464", 1, 0,
      "admin listener (plain HTTP: /metrics, /healthz, /readyz)"),
    F("gateway.threads", SL_CFG_INT, threads, "0", 0, 256, "loop threads (0: one per CPU)"),
    F("gateway.max_body_bytes", SL_CFG_SIZE, max_body_bytes, "1MiB", 1024, 256LL << 20,
      "largest request body as sent (compressed)"),
    F("gateway.max_decompressed_bytes", SL_CFG_SIZE, max_decompressed_bytes, "4MiB", 1024,
      1LL << 30, "largest body after gzip decompression"),
    F("gateway.max_events", SL_CFG_INT, max_events, "500", 1, 100000, "events per batch"),
    F("gateway.max_event_bytes", SL_CFG_SIZE, max_event_bytes, "32KiB", 64, 16LL << 20,
      "largest single event (JSON bytes)"),
    F("gateway.max_json_depth", SL_CFG_INT, max_json_depth, "32", 4, 256,
      "deepest JSON nesting accepted"),
    F("gateway.max_inflight_bytes", SL_CFG_SIZE, max_inflight_bytes, "256MiB", 1LL << 20,
      64LL << 30, "request bytes all batches waiting for Kafka may hold; past it: 429"),
    F("gateway.max_streams_per_connection", SL_CFG_INT, max_streams_per_conn, "32", 1, 256,
      "HTTP/2 requests one connection may have in progress"),
    F("gateway.h2_max_streams_per_sec", SL_CFG_INT, h2_max_streams_per_s, "5000", 10, 1000000,
      "HTTP/2 streams one connection may open per second (Rapid Reset guard); past it: GOAWAY"),
    F("gateway.recv_buffer_bytes", SL_CFG_SIZE, recv_buffer_bytes, "256KiB", 0, 64LL << 20,
      "kernel receive buffer of a public connection (bounds the frames parsed per read); 0: auto"),
    F("gateway.header_timeout", SL_CFG_MS, header_timeout_ms, "10s", 100, 600000,
      "HTTP/1.1: time to receive a whole request (head and body), and keep-alive idle time"),
    F("gateway.body_timeout", SL_CFG_MS, body_timeout_ms, "30s", 200, 600000,
      "HTTP/2: a request still arriving without progress this long closes its connection"),
    F("gateway.idle_timeout", SL_CFG_MS, idle_timeout_ms, "10s", 100, 3600000,
      "HTTP/2: a connection with no request in progress and no frame this long is closed"),
    F("gateway.drain_timeout", SL_CFG_MS, drain_timeout_ms, "30s", 0, 600000,
      "on SIGTERM, how long in-flight batches may take to finish"),
    F("gateway.retry_after", SL_CFG_INT, retry_after_s, "1", 1, 3600,
      "seconds in Retry-After on 429 and 503 answers"),
    F("gateway.instance_id", SL_CFG_STR, instance_id, "", 1, 0,
      "this gateway's name in logs and headers (default: hostname)"),
    F("tls.cert_file", SL_CFG_STR, tls_cert_file, "", 1, 0,
      "PEM certificate chain; empty: generate a self-signed one at start"),
    F("tls.key_file", SL_CFG_STR, tls_key_file, "", 1, 0, "PEM private key for tls.cert_file"),
    F("tls.self_signed_out", SL_CFG_STR, tls_self_signed_out, "", 1, 0,
      "write the generated self-signed certificate here (for curl --cacert)"),
    F("auth.write_keys", SL_CFG_STR, write_keys, "", 1, 0,
      "development write keys and their tenants: key:tenant[,key:tenant...]"),
    F("auth.tenants_file", SL_CFG_STR, tenants_file, "", 1, 0,
      "JSON file of tenants: SHA-256 of their write keys, CORS origins, rate limits"),
    F("tenants.default_rate", SL_CFG_INT, default_rate_eps, "0", 0, 1000000000,
      "events per second per tenant when its entry sets none (0: unlimited)"),
    F("tenants.default_burst", SL_CFG_INT, default_burst_events, "0", 0, 1000000000,
      "burst in events for tenants.default_rate (0: one second of the rate)"),
    F("backpressure.queue_max_messages", SL_CFG_INT, bp_queue_max_messages, "200000", 1,
      100000000, "Kafka producer queue high-water mark in events (sent, not yet acked): 429"),
    F("backpressure.queue_max_bytes", SL_CFG_SIZE, bp_queue_max_bytes, "128MiB", 1LL << 20,
      16LL << 30, "Kafka producer queue high-water mark in bytes: 429"),
    F("backpressure.max_delivery_latency", SL_CFG_MS, bp_max_delivery_latency_ms, "2s", 10,
      600000, "smoothed Kafka delivery time per batch above which new batches get 429"),
    F("backpressure.max_inflight_events", SL_CFG_INT, bp_max_inflight_events, "20000", 500,
      100000000, "events admitted and not yet answered, all loops together: past it, 429 "
      "(size it to the build and machine: gateway/README.md, Backpressure)"),
    F("backpressure.max_retry_after", SL_CFG_INT, bp_max_retry_after_s, "30", 1, 3600,
      "seconds: Retry-After on 429 grows with demand over capacity up to this"),
    F("clock.skew_threshold", SL_CFG_MS, clock_skew_threshold_ms, "60s", 0, 86400000LL * 365,
      "|sent_at - received_at| above which events get a corrected time (header event_time)"),
    F("clock.max_future", SL_CFG_MS, clock_max_future_ms, "1h", 0, 86400000LL * 365,
      "event times later than received_at + this are clamped to received_at"),
    F("producer.topic", SL_CFG_STR, topic, "events", 1, 0, "Kafka topic for accepted events"),
    F("producer.dlq_topic", SL_CFG_STR, dlq_topic, "events.dlq", 1, 0,
      "dead-letter topic: invalid events, id conflicts, unusable bodies"),
    F("producer.dlq_max_value_bytes", SL_CFG_SIZE, dlq_max_value_bytes, "64KiB", 1024, 16LL << 20,
      "a dead letter's value is cut to this many bytes (header dlq.truncated=true)"),
    F("producer.health_interval", SL_CFG_MS, kafka_health_interval_ms, "1s", 100, 60000,
      "how often Kafka metadata is checked for /readyz"),
    F("producer.flush_timeout", SL_CFG_MS, flush_timeout_ms, "10s", 0, 600000,
      "at shutdown, how long the producer may take to deliver what it holds"),
    {"log.level", SL_CFG_ENUM, offsetof(gw_config_t, log_level), "info", 1, 0,
     sl_log_level_names, "log threshold"},
    F("debug.fault_injection", SL_CFG_BOOL, debug_fault_injection, "false", 1, 0,
      "enable POST /debug/kafka-fatal on the admin listener (tests only)"),
    F("debug.null_pipeline", SL_CFG_BOOL, debug_null_pipeline, "false", 1, 0,
      "benchmarks only: POST /v1/batch answers 200 without parsing or storing anything"),
};

int gw_config_register(sl_config_t *cfg, gw_config_t *gc, char *errbuf, size_t errlen)
{
    if (sl_config_add_section(cfg, "gateway", gw_fields, sizeof(gw_fields) / sizeof(gw_fields[0]),
                              gc, errbuf, errlen) != 0 ||
        dedup_config_register(cfg, &gc->dedup, errbuf, errlen) != 0 ||
        schema_cache_config_register(cfg, &gc->schema, errbuf, errlen) != 0)
        return -1;
    return sl_config_add_passthrough(cfg, "kafka.",
                                     "librdkafka producer properties, e.g. "
                                     "kafka.bootstrap.servers=127.0.0.1:9092");
}
