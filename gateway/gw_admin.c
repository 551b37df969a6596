/* Liveness, readiness, Prometheus metrics and the test-only fault injection endpoint. */
#include <stdio.h>
#include <string.h>

#include "gw_int.h"
#include "sl_log.h"

/* What this loop thread's Redis connection says about dedup: "off", "ok" or "degraded". */
static const char *dedup_state(const gw_server_t *srv)
{
    const gw_thread_t *thr = gw_current_thread;
    if (srv->dedup == NULL)
        return "off";
    return thr != NULL && thr->dedup != NULL && dedup_thread_redis_up(thr->dedup) ? "ok"
                                                                                 : "degraded";
}

int gw_server_is_ready(gw_server_t *srv, const char **why)
{
    if (atomic_load(&srv->draining)) {
        *why = "draining";
        return 0;
    }
    /* with dedup fail-closed, a loop without Redis answers every batch 503 */
    if (srv->dedup != NULL && srv->gc->dedup.policy == DEDUP_FAIL_CLOSED &&
        strcmp(dedup_state(srv), "ok") != 0) {
        *why = "redis unavailable (dedup.policy=closed)";
        return 0;
    }
    /* events can only be validated with schemas: from the registry, or the disk snapshot */
    if (!schema_cache_is_warm(srv->schemas)) {
        *why = "schema cache not warm (registry not reached yet, no snapshot)";
        return 0;
    }
    /* queues with headroom: nothing past 90% of a backpressure limit */
    if (atomic_load(&srv->inflight_events) > srv->gc->bp_max_inflight_events / 10 * 9 ||
        atomic_load(&srv->kq_messages) > srv->gc->bp_queue_max_messages / 10 * 9 ||
        atomic_load(&srv->kq_bytes) > (int64_t)(srv->gc->bp_queue_max_bytes / 10 * 9)) {
        *why = "pipeline near a backpressure limit";
        return 0;
    }
    /* no headroom: 90% of the memory batches may hold while waiting for Kafka is taken */
    if (atomic_load(&srv->inflight_bytes) > srv->gc->max_inflight_bytes / 10 * 9) {
        *why = "in-flight batches near gateway.max_inflight_bytes";
        return 0;
    }
    return sl_producer_is_ready(srv->producer, why);
}

static int send_readyz(gw_server_t *srv, h2o_req_t *req)
{
    const char *why = NULL, *dedup = dedup_state(srv);
    char body[256];
    int n;

    if (gw_server_is_ready(srv, &why)) {
        n = snprintf(body, sizeof(body), "{\"ready\":true,\"dedup\":\"%s\"}", dedup);
        gw_send_json(req, 200, body, (size_t)n, 0);
    } else {
        n = snprintf(body, sizeof(body), "{\"ready\":false,\"reason\":\"%s\",\"dedup\":\"%s\"}",
                     why, dedup);
        gw_send_json(req, 503, body, (size_t)n, (int)srv->gc->retry_after_s);
    }
    return 0;
}

static const char *const outcome_names[GW_OUT__COUNT] = {"accepted", "duplicate", "invalid",
                                                          "retry"};
static const int status_codes[GW_STATUS__COUNT] = {
#define GW_STATUS_VALUE(s) s,
    GW_STATUS_LIST(GW_STATUS_VALUE)
#undef GW_STATUS_VALUE
        0};

/* Sums one counter over every thread's shard. */
#define SUM(srv, field)                                                                            \
    ({                                                                                             \
        uint64_t sum_ = 0;                                                                         \
        for (size_t t_ = 0; t_ < (srv)->n_threads; t_++)                                           \
            sum_ += sl_counter_get(&(srv)->threads[t_].metrics.field);                             \
        sum_;                                                                                      \
    })

static void render_metrics(gw_server_t *srv, sl_buf_t *b)
{
    const sl_hist_t *hists[256];
    size_t nt = srv->n_threads < 256 ? srv->n_threads : 256;
    char labels[96];
    const char *why;

    sl_prom_header(b, "sluice_http_requests_total", "counter",
                   "POST /v1/batch requests by response status");
    for (size_t i = 0; i < GW_STATUS__COUNT; i++) {
        if (status_codes[i] != 0)
            snprintf(labels, sizeof(labels), "status=\"%d\"", status_codes[i]);
        else
            snprintf(labels, sizeof(labels), "status=\"other\"");
        sl_prom_value(b, "sluice_http_requests_total", labels, SUM(srv, requests[i]));
    }
    sl_prom_header(b, "sluice_events_total", "counter", "events by outcome");
    for (size_t i = 0; i < GW_OUT__COUNT; i++) {
        snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome_names[i]);
        sl_prom_value(b, "sluice_events_total", labels, SUM(srv, events[i]));
    }
    sl_prom_header(b, "sluice_errors_total", "counter",
                   "rejected requests and not-accepted events by machine code");
    for (size_t i = 1; i < SL_ERR__COUNT; i++) {
        snprintf(labels, sizeof(labels), "code=\"%s\"", sl_err_code((sl_err_t)i));
        sl_prom_value(b, "sluice_errors_total", labels, SUM(srv, codes[i]));
    }
    sl_prom_header(b, "sluice_dead_letters_total", "counter",
                   "records written to the dead-letter topic, by code");
    for (size_t i = 1; i < SL_ERR__COUNT; i++) {
        uint64_t v = SUM(srv, dlq_records[i]);
        if (v == 0)
            continue; /* only codes that happened: the family stays short */
        snprintf(labels, sizeof(labels), "code=\"%s\"", sl_err_code((sl_err_t)i));
        sl_prom_value(b, "sluice_dead_letters_total", labels, v);
    }
    sl_prom_header(b, "sluice_dead_letters_failed_total", "counter",
                   "dead letters Kafka did not take");
    sl_prom_value(b, "sluice_dead_letters_failed_total", NULL,
                  SUM(srv, dlq_failed) + gw_batch_unattached_dlq_failed());
    sl_prom_header(b, "sluice_bytes_in_total", "counter", "request body bytes received");
    sl_prom_value(b, "sluice_bytes_in_total", NULL, SUM(srv, bytes_in));
    sl_prom_header(b, "sluice_batches_detached_total", "counter",
                   "batches whose client went away before the answer");
    sl_prom_value(b, "sluice_batches_detached_total", NULL, SUM(srv, batches_detached));
    sl_prom_header(b, "sluice_conn_closed_total", "counter",
                   "connections closed by the edge guard, by reason");
    for (size_t i = 0; i < GW_CLOSE__COUNT; i++) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", gw_close_reason_names[i]);
        sl_prom_value(b, "sluice_conn_closed_total", labels, SUM(srv, conns_closed[i]));
    }
    for (size_t t = 0; t < nt; t++)
        hists[t] = &srv->threads[t].metrics.request_latency;
    sl_prom_hist(b, "sluice_request_duration_seconds", "batch request latency (handler to answer)",
                 hists, nt);
    for (size_t t = 0; t < nt; t++)
        hists[t] = &srv->threads[t].metrics.delivery_latency;
    sl_prom_hist(b, "sluice_kafka_delivery_seconds",
                 "first produce to last delivery report, per batch", hists, nt);
    for (size_t t = 0; t < nt; t++)
        hists[t] = &srv->threads[t].metrics.dedup_claim_latency;
    sl_prom_hist(b, "sluice_dedup_claim_seconds",
                 "Redis round trip of a batch's claim (one pipeline)", hists, nt);
    sl_prom_header(b, "sluice_dedup_degraded_events_total", "counter",
                   "events produced while Redis was unreachable (Bloom filter only)");
    sl_prom_value(b, "sluice_dedup_degraded_events_total", NULL, SUM(srv, dedup_degraded_events));
    sl_prom_header(b, "sluice_dedup_refused_batches_total", "counter",
                   "batches answered 503: Redis unreachable and dedup.policy=closed");
    sl_prom_value(b, "sluice_dedup_refused_batches_total", NULL, SUM(srv, dedup_refused_batches));
    sl_prom_header(b, "sluice_shed_total", "counter", "batches answered 429, by cause");
    for (size_t i = 1; i < GW_SHED__COUNT; i++) {
        snprintf(labels, sizeof(labels), "cause=\"%s\"", gw_shed_name((gw_shed_t)i));
        sl_prom_value(b, "sluice_shed_total", labels, SUM(srv, shed[i]));
    }
    sl_prom_header(b, "sluice_clock_adjusted_events_total", "counter",
                   "events whose event_time header differs from ts: client clock corrected, or "
                   "clamped from the future");
    sl_prom_value(b, "sluice_clock_adjusted_events_total", "how=\"corrected\"",
                  SUM(srv, clock_corrected_events));
    sl_prom_value(b, "sluice_clock_adjusted_events_total", "how=\"clamped\"",
                  SUM(srv, clock_clamped_events));
    for (size_t t = 0; t < nt; t++)
        hists[t] = &srv->threads[t].metrics.lateness_ms;
    sl_prom_hist_scaled(b, "sluice_event_lateness_seconds",
                        "received_at minus event time, per event sent to Kafka", hists, nt, 1e3);
    sl_prom_header(b, "sluice_pipeline_events", "gauge",
                   "events admitted and not yet answered (backpressure.max_inflight_events)");
    sl_prom_value(b, "sluice_pipeline_events", NULL,
                  (uint64_t)atomic_load(&srv->inflight_events));
    sl_prom_header(b, "sluice_kafka_pending_events", "gauge",
                   "events produced whose batch is still waiting for acks "
                   "(backpressure.queue_max_messages)");
    sl_prom_value(b, "sluice_kafka_pending_events", NULL, (uint64_t)atomic_load(&srv->kq_messages));
    sl_prom_header(b, "sluice_kafka_pending_bytes", "gauge",
                   "bytes of those events (backpressure.queue_max_bytes)");
    sl_prom_value(b, "sluice_kafka_pending_bytes", NULL, (uint64_t)atomic_load(&srv->kq_bytes));
    sl_prom_header(b, "sluice_kafka_delivery_smoothed_seconds", "gauge",
                   "smoothed produce-to-ack time per batch (backpressure.max_delivery_latency)");
    sl_prom_gauge(b, "sluice_kafka_delivery_smoothed_seconds", NULL,
                  atomic_load(&srv->delivery_ewma_us) / 1e6);
    sl_prom_header(b, "sluice_kafka_queue_messages", "gauge", "messages held by the producer");
    sl_prom_value(b, "sluice_kafka_queue_messages", NULL,
                  (uint64_t)sl_producer_queue_len(srv->producer));
    sl_prom_header(b, "sluice_kafka_producer_generation", "gauge",
                   "times the producer was recreated after a fatal error");
    sl_prom_value(b, "sluice_kafka_producer_generation", NULL,
                  sl_producer_generation(srv->producer));
    sl_prom_header(b, "sluice_inflight_batches", "gauge", "batches waiting for Kafka");
    sl_prom_value(b, "sluice_inflight_batches", NULL, (uint64_t)atomic_load(&srv->inflight));
    schema_cache_render_metrics(srv->schemas, b);
    sl_prom_header(b, "sluice_ready", "gauge", "1 when /readyz answers 200");
    sl_prom_value(b, "sluice_ready", NULL, (uint64_t)gw_server_is_ready(srv, &why));
}

static int send_metrics(gw_server_t *srv, h2o_req_t *req)
{
    sl_buf_t b;
    sl_buf_init(&b, 1 << 20);
    render_metrics(srv, &b);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4"));
    h2o_send_inline(req, b.data, b.len);
    sl_buf_dispose(&b);
    return 0;
}

int gw_admin_on_req(gw_server_t *srv, h2o_req_t *req, int is_admin_listener)
{
    h2o_iovec_t path = req->path_normalized;

    if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
        gw_send_json(req, 200, H2O_STRLIT("{\"status\":\"ok\"}"), 0);
        return 0;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/readyz")))
        return send_readyz(srv, req);
    if (is_admin_listener && h2o_memis(path.base, path.len, H2O_STRLIT("/metrics")))
        return send_metrics(srv, req);
    if (is_admin_listener && srv->gc->debug_fault_injection &&
        h2o_memis(path.base, path.len, H2O_STRLIT("/debug/kafka-fatal")) &&
        h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        int rc = sl_producer_inject_fatal(srv->producer);
        SL_WARN("fault injection: kafka producer fatal error", "rc=%d", rc);
        gw_send_json(req, rc == 0 ? 200 : 500, H2O_STRLIT("{\"injected\":\"kafka-fatal\"}"), 0);
        return 0;
    }
    gw_send_error(srv, req, SL_ERR_NOT_FOUND, NULL);
    return 0;
}
