/* POST /v1/batch: the request path, top to bottom. Each step either answers the request or
 * hands on: admission (backpressure), framing, authentication, parse, schemas (registry cache,
 * async on a miss) + validation and Avro encoding, dedup claim (Redis, async), produce (Kafka,
 * async); the answer is sent when the last delivery report comes back to this loop thread,
 * after the dedup commit is sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_batch_int.h"
#include "sl_log.h"

/* Dead letters written without a batch to report to (a 400 body) that Kafka did not take. */
static _Atomic uint64_t unattached_dlq_failed;

static void on_req_dispose(void *p)
{
    struct batch_guard *g = p;
    if (g->batch != NULL) {
        g->batch->req = NULL;
        g->batch->guard = NULL;
    }
}

static void *pool_alloc(void *actx, size_t n)
{
    return h2o_mem_alloc_pool(actx, n);
}

static int header_is(h2o_req_t *req, const h2o_token_t *token, h2o_iovec_t *value)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i < 0)
        return 0;
    *value = req->headers.entries[i].value;
    return 1;
}

/* h2o 2.2.5 has no token for Origin */
static int origin_is(h2o_req_t *req, h2o_iovec_t *value)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (i < 0)
        return 0;
    *value = req->headers.entries[i].value;
    return 1;
}

/* The body's kind from its Content-Type (parameters such as charset allowed): JSON
 * (application/json, or text/plain from navigator.sendBeacon), a binary RecordBatch
 * (application/x-protobuf), or -1 for anything else. */
enum { BODY_JSON, BODY_BINARY };
static int body_kind(h2o_req_t *req)
{
    static const struct {
        const char *type;
        int kind;
    } accepted[] = {{"application/json", BODY_JSON},
                    {"text/plain", BODY_JSON},
                    {"application/x-protobuf", BODY_BINARY}};
    h2o_iovec_t ct;
    if (!header_is(req, H2O_TOKEN_CONTENT_TYPE, &ct))
        return -1;
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        size_t n = strlen(accepted[i].type);
        if (ct.len >= n && strncasecmp(ct.base, accepted[i].type, n) == 0 &&
            (ct.len == n || ct.base[n] == ';' || ct.base[n] == ' '))
            return accepted[i].kind;
    }
    return -1;
}

/* Access-Control-Allow-Origin: "*" while some tenant takes any origin; otherwise the request's
 * Origin echoed when some tenant lists it (a preflight does not say which tenant it is for; the
 * POST itself is checked against its own tenant's list in handle_post). */
static void add_cors_headers(gw_server_t *srv, h2o_req_t *req)
{
    h2o_iovec_t origin;

    if (srv->auth.any_origin_anywhere) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL,
                       H2O_STRLIT("*"));
        return;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
    if (origin_is(req, &origin) &&
        gw_auth_allows_origin(&srv->auth, origin.base, origin.len))
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL,
                       origin.base, origin.len);
}

/* The caller has already added Access-Control-Allow-Origin (it goes on every answer). */
static int send_preflight(h2o_req_t *req)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-methods"),
                          0, NULL, H2O_STRLIT("POST"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-headers"),
                          0, NULL, H2O_STRLIT("authorization, content-type, content-encoding"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-max-age"), 0,
                          NULL, H2O_STRLIT("86400"));
    req->res.status = 204;
    req->res.reason = "No Content";
    h2o_send_inline(req, "", 0);
    return 0;
}

/* Answers with an error and counts it: every early exit of the request path goes through here. */
static int reject(gw_server_t *srv, h2o_req_t *req, sl_err_t err, const char *detail)
{
    gw_metrics_count_status(&gw_current_thread->metrics, sl_err_status(err));
    gw_send_error(srv, req, err, detail);
    return 0;
}

/* 429: the pipeline (or the tenant's rate) cannot take this batch now. Nothing is stored. */
static int shed(gw_server_t *srv, h2o_req_t *req, gw_shed_t cause, int64_t wait_ns)
{
    char detail[96];

    sl_counter_add(&gw_current_thread->metrics.shed[cause], 1);
    gw_metrics_count_status(&gw_current_thread->metrics, 429);
    if (cause == GW_SHED_TENANT_RATE) {
        /* the tenant's own wait: whole seconds, rounded up (earlier would be refused) */
        gw_send_error_retry_after(srv, req, SL_ERR_RATE_LIMITED, NULL,
                                  wait_ns > 0 ? (int)((wait_ns + 999999999) / 1000000000) : 1);
        return 0;
    }
    snprintf(detail, sizeof(detail), "pipeline saturated (%s)", gw_shed_name(cause));
    gw_send_error_retry_after(srv, req, SL_ERR_OVERLOADED, detail,
                              gw_admit_shed(srv, (int64_t)sl_now_ns()));
    return 0;
}

static sl_err_t retry_code(const gw_slot_t *s)
{
    return s->err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? SL_ERR_QUEUE_FULL : SL_ERR_KAFKA_FAILED;
}

/* The final outcome of a slot, and the code behind it. */
static gw_outcome_t slot_outcome(const gw_slot_t *s, sl_err_t *code)
{
    if (s->dead_letter && s->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* "invalid" promises the event is in the dead-letter topic: it is not, so resend */
        *code = SL_ERR_KAFKA_FAILED;
        return GW_OUT_RETRY;
    }
    if (s->state != SLOT_KAFKA) {
        *code = (sl_err_t)s->code;
        return (gw_outcome_t)s->state;
    }
    if (s->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        *code = SL_ERR_OK;
        return GW_OUT_ACCEPTED;
    }
    *code = retry_code(s);
    return GW_OUT_RETRY;
}

typedef struct {
    size_t n[GW_OUT__COUNT];
    int nothing_stored_by_fatal; /* every failure was a fatal producer error before sending */
} gw_outcomes_t;

static void count_outcomes(gw_batch_t *b, gw_metrics_t *m, gw_outcomes_t *o)
{
    int all_failures_unsent_fatal = 1, any_failure = 0;

    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < b->n; i++) {
        const gw_slot_t *s = &b->slots[i];
        sl_err_t code;
        gw_outcome_t out = slot_outcome(s, &code);
        o->n[out]++;
        if (code != SL_ERR_OK)
            sl_counter_add(&m->codes[code], 1);
        if (s->dead_letter) {
            if (s->err == RD_KAFKA_RESP_ERR_NO_ERROR)
                sl_counter_add(&m->dlq_records[s->code], 1);
            else
                sl_counter_add(&m->dlq_failed, 1);
        }
        if (s->state == SLOT_KAFKA && out == GW_OUT_RETRY) {
            any_failure = 1;
            if (!s->is_fatal || !s->not_persisted)
                all_failures_unsent_fatal = 0;
        }
    }
    /* 503 promises that nothing of the batch was stored: only when no event was accepted and
     * every failure is known not to have reached Kafka */
    o->nothing_stored_by_fatal =
        any_failure && o->n[GW_OUT_ACCEPTED] == 0 && all_failures_unsent_fatal;
    for (int k = 0; k < GW_OUT__COUNT; k++)
        sl_counter_add(&m->events[k], o->n[k]);
}

static void append_event_id(sl_buf_t *out, const gw_event_t *ev)
{
    if (ev->event_id == NULL)
        return;
    sl_buf_append(out, ",\"event_id\":\"", 13);
    sl_buf_json_escape(out, ev->event_id, ev->event_id_len, 64);
    sl_buf_append(out, "\"", 1);
}

static void append_detail(sl_buf_t *out, const char *detail)
{
    sl_buf_append(out, ",\"detail\":\"", 11);
    sl_buf_json_escape(out, detail, strlen(detail), 256);
    sl_buf_append(out, "\"", 1);
}

/* The 200 body: counts, then only the events that were not accepted. */
static void render_result(gw_batch_t *b, sl_buf_t *out, const gw_outcomes_t *o)
{
    int first = 1;

    sl_buf_printf(out,
                  "{\"accepted\":%zu,\"duplicate\":%zu,\"invalid\":%zu,\"retry\":%zu,\"events\":[",
                  o->n[GW_OUT_ACCEPTED], o->n[GW_OUT_DUPLICATE], o->n[GW_OUT_INVALID],
                  o->n[GW_OUT_RETRY]);
    for (size_t i = 0; i < b->n; i++) {
        const gw_slot_t *s = &b->slots[i];
        const gw_event_t *ev = &b->doc.events[i];
        sl_err_t code;
        gw_outcome_t out_i = slot_outcome(s, &code);

        if (out_i == GW_OUT_ACCEPTED)
            continue;
        sl_buf_printf(out, "%s{\"i\":%zu", first ? "" : ",", i);
        first = 0;
        append_event_id(out, ev);
        switch (out_i) {
        case GW_OUT_INVALID:
            sl_buf_printf(out, ",\"status\":\"invalid\",\"code\":\"%s\",\"path\":\"%s\"",
                          sl_err_code(code), ev->err_path != NULL ? ev->err_path : "");
            append_detail(out, ev->err_detail);
            break;
        case GW_OUT_DUPLICATE:
            sl_buf_append(out, ",\"status\":\"duplicate\"", 21);
            if (code != SL_ERR_OK) { /* id_conflict: same id, different payload */
                sl_buf_printf(out, ",\"code\":\"%s\"", sl_err_code(code));
                append_detail(out, sl_err_message(code));
            }
            break;
        default:
            sl_buf_printf(out, ",\"status\":\"retry\",\"code\":\"%s\"", sl_err_code(code));
            append_detail(out, s->state == SLOT_KAFKA || s->dead_letter ? rd_kafka_err2str(s->err)
                                                                       : sl_err_message(code));
            break;
        }
        sl_buf_append(out, "}", 1);
    }
    sl_buf_append(out, "]}", 2);
}

/* Commits what Kafka acked and releases the other leases (invariant 3: a failed write never
 * marks an event as seen). */
static void batch_finish_dedup(gw_batch_t *b)
{
    unsigned char stored[b->n > 0 ? b->n : 1];

    if (b->claim == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        stored[i] = b->slots[i].state == SLOT_KAFKA && b->slots[i].err == RD_KAFKA_RESP_ERR_NO_ERROR;
    dedup_finish(b->thr->dedup, b->claim, stored);
    b->claim = NULL;
}

/* Runs on the owning loop thread once no Redis or Kafka answer is outstanding. */
void gw_batch_finish(gw_batch_t *b)
{
    gw_server_t *srv = b->srv;
    gw_metrics_t *m = &b->thr->metrics;
    gw_outcomes_t o;

    uint64_t delivery_us = b->produce_ns != 0 ? (sl_now_ns() - b->produce_ns) / 1000 : 0;

    batch_finish_dedup(b);
    count_outcomes(b, m, &o);
    gw_admit_leave(srv, b->admitted_events, b->kq_messages, b->kq_bytes, delivery_us);
    if (b->produce_ns != 0)
        sl_hist_observe(&m->delivery_latency, delivery_us);
    if (b->req == NULL) {
        sl_counter_add(&m->batches_detached, 1);
    } else if (b->refused != SL_ERR_OK || o.nothing_stored_by_fatal) {
        b->guard->batch = NULL;
        reject(srv, b->req, b->refused != SL_ERR_OK ? b->refused : SL_ERR_PRODUCER_FATAL, NULL);
    } else {
        sl_buf_t out;
        b->guard->batch = NULL;
        sl_buf_init(&out, 256 + b->n * 768);
        render_result(b, &out, &o);
        gw_metrics_count_status(m, 200);
        gw_send_json(b->req, 200, out.data, out.len, 0);
        sl_buf_dispose(&out);
    }
    sl_hist_observe(&m->request_latency, (sl_now_ns() - b->start_ns) / 1000);
    atomic_fetch_sub(&srv->inflight_bytes, b->held_bytes);
    free(b->items);
    free(b->ids);
    free(b->values);
    free(b);
    gw_inflight_add(srv, -1);
}

uint64_t gw_batch_unattached_dlq_failed(void)
{
    return atomic_load(&unattached_dlq_failed);
}

void gw_batch_on_delivery(void *opaque, rd_kafka_resp_err_t err, int is_fatal,
                          int not_persisted)
{
    gw_slot_t *slot = opaque;
    gw_batch_t *b;

    if (slot == NULL) { /* a dead letter nobody waits for */
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            atomic_fetch_add(&unattached_dlq_failed, 1);
        return;
    }
    b = slot->batch;
    slot->err = err;
    slot->is_fatal = (unsigned char)is_fatal;
    slot->not_persisted = (unsigned char)not_persisted;
    if (atomic_fetch_sub(&b->pending, 1) == 1)
        h2o_multithread_send_message(&b->thr->done_receiver, &b->msg);
}

void gw_batch_on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        gw_batch_finish(H2O_STRUCT_FROM_MEMBER(gw_batch_t, msg, msg));
    }
}

/* An invalid event, or an event_id reused with another payload, is copied to the dead-letter
 * topic with its reason; the answer waits for that write too (API.md: "invalid: it is in
 * events.dlq"). */
static void batch_dead_letter(gw_batch_t *b, rd_kafka_t *rk, size_t i)
{
    const gw_event_t *ev = &b->doc.events[i];
    gw_slot_t *slot = &b->slots[i];
    h2o_iovec_t ct = h2o_iovec_init(NULL, 0);
    gw_dlq_record_t rec = {.value = ev->raw, .len = ev->raw_len, .code = (sl_err_t)slot->code,
                           .tenant = b->tenant->name, .received_at = b->received_at};

    if (slot->state == GW_OUT_INVALID) {
        rec.stage = slot->schema_stage ? "schema" : "envelope";
        rec.path = ev->err_path;
        rec.detail = ev->err_detail;
        if (ev->event_type != NULL)
            rec.schema_subject = ev->event_type, rec.schema_subject_len = ev->event_type_len;
        rec.schema_id = slot->schema_id;
        if (ev->event_id != NULL && gw_is_uuid(ev->event_id, ev->event_id_len))
            rec.event_id = ev->event_id, rec.event_id_len = ev->event_id_len;
    } else if (slot->code == SL_ERR_ID_CONFLICT) {
        rec.stage = "dedup";
        rec.path = "event_id";
        rec.detail = sl_err_message(SL_ERR_ID_CONFLICT);
        rec.event_id = ev->event_id, rec.event_id_len = ev->event_id_len;
    } else {
        return; /* plain duplicates and in-flight retries are not dead letters */
    }
    header_is(b->req, H2O_TOKEN_CONTENT_TYPE, &ct);
    rec.content_type = ct.base, rec.content_type_len = ct.len;
    slot->dead_letter = 1;
    atomic_fetch_add(&b->pending, 1);
    if (gw_dlq_produce(b->srv, rk, &rec, slot) != 0) {
        slot->err = RD_KAFKA_RESP_ERR__QUEUE_FULL;
        atomic_fetch_sub(&b->pending, 1);
    }
}

/* The gateway's best time for an event: the client's ts, moved by the client clock's offset
 * when sent_at shows that clock is off by more than clock.skew_threshold, and clamped to
 * received_at when still too far in the future. Returns "corrected", "clamped" or NULL (ts is
 * used as sent). */
static const char *event_time(const gw_config_t *gc, int64_t ts, int64_t sent_at,
                              int64_t received_at, int64_t *out)
{
    const char *how = NULL;
    int64_t skew = sent_at - received_at;

    *out = ts;
    if (sent_at > 0 && (skew > gc->clock_skew_threshold_ms || -skew > gc->clock_skew_threshold_ms)) {
        *out = ts - skew; /* received_at - (sent_at - ts) */
        how = "corrected";
    }
    if (*out > received_at + gc->clock_max_future_ms) {
        *out = received_at;
        how = "clamped";
    }
    return how;
}

/* Produces every SLOT_KAFKA event with its headers. Needs the request (event bytes live in its
 * pool): a batch whose client went away before this point is finished without producing. */
static void batch_produce(gw_batch_t *b)
{
    gw_server_t *srv = b->srv;
    gw_metrics_t *m = &b->thr->metrics;
    char received[24];
    int received_len = snprintf(received, sizeof(received), "%lld", (long long)b->received_at);
    rd_kafka_t *rk;

    if (b->req == NULL) { /* nothing was promised: leases are released, nothing is written */
        for (size_t i = 0; i < b->n; i++)
            if (b->slots[i].state == SLOT_KAFKA)
                b->slots[i].state = GW_OUT_RETRY, b->slots[i].code = SL_ERR_OK;
        gw_batch_finish(b);
        return;
    }
    rk = sl_producer_acquire(srv->producer);
    atomic_store(&b->pending, 1); /* held by this function until every produce call is made */
    b->produce_ns = sl_now_ns();
    for (size_t i = 0; i < b->n; i++) {
        const gw_event_t *ev = &b->doc.events[i];
        gw_slot_t *slot = &b->slots[i];
        rd_kafka_headers_t *hdrs;
        rd_kafka_resp_err_t err;
        const char *clock;
        int64_t etime;

        if (slot->state != SLOT_KAFKA) {
            batch_dead_letter(b, rk, i);
            continue;
        }
        hdrs = rd_kafka_headers_new(7);
        if (b->is_binary) {
            /* the record's time is inside its encoding: no correction, no lateness sample */
        } else if ((clock = event_time(srv->gc, ev->ts, b->doc.sent_at, b->received_at,
                                       &etime)) != NULL) {
            char buf[24];
            int len = snprintf(buf, sizeof(buf), "%lld", (long long)etime);
            rd_kafka_header_add(hdrs, "event_time", 10, buf, len);
            rd_kafka_header_add(hdrs, "clock", 5, clock, -1);
            sl_counter_add(clock[1] == 'o' ? &m->clock_corrected_events : &m->clock_clamped_events,
                           1);
        }
        if (!b->is_binary)
            sl_hist_observe(&m->lateness_ms,
                            b->received_at > etime ? (uint64_t)(b->received_at - etime) : 0);
        rd_kafka_header_add(hdrs, "event_id", 8, ev->event_id, (ssize_t)ev->event_id_len);
        rd_kafka_header_add(hdrs, "tenant", 6, b->tenant->name, -1);
        rd_kafka_header_add(hdrs, "received_at", 11, received, received_len);
        rd_kafka_header_add(hdrs, "gateway", 7, srv->instance_id, -1);
        if (b->claim != NULL)
            rd_kafka_header_add(hdrs, "dedup", 5, b->degraded ? "degraded" : "redis", -1);
        atomic_fetch_add(&b->pending, 1);
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(srv->gc->topic),
                                RD_KAFKA_V_KEY(ev->user_id, ev->user_id_len),
                                RD_KAFKA_V_VALUE((b->values + slot->value_off), slot->value_len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(slot), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_headers_destroy(hdrs);
            slot->err = err;
            slot->is_fatal = err == RD_KAFKA_RESP_ERR__FATAL;
            slot->not_persisted = 1; /* never handed to librdkafka */
            atomic_fetch_sub(&b->pending, 1);
        } else {
            b->kq_messages++;
            b->kq_bytes += (int64_t)slot->value_len;
        }
    }
    gw_admit_produced(srv, b->kq_messages, b->kq_bytes);
    sl_producer_release(srv->producer);
    if (atomic_fetch_sub(&b->pending, 1) == 1)
        gw_batch_finish(b); /* nothing was produced, or every produce call failed at once */
}

/* The dedup verdicts are in (Redis answered, or the policy decided without it). */
static void on_claimed(void *arg, dedup_claim_t *claim, int degraded, int refused)
{
    gw_batch_t *b = arg;
    gw_metrics_t *m = &b->thr->metrics;

    b->claim = claim;
    b->degraded = degraded;
    if (refused)
        b->refused = SL_ERR_DEDUP_UNAVAILABLE;
    sl_hist_observe(&m->dedup_claim_latency, (sl_now_ns() - b->claim_ns) / 1000);
    if (refused) { /* nothing goes to Kafka: the events are answered by the 503 */
        sl_counter_add(&m->dedup_refused_batches, 1);
        for (size_t i = 0; i < b->n; i++)
            if (b->slots[i].state == SLOT_KAFKA)
                b->slots[i].state = GW_OUT_RETRY, b->slots[i].code = SL_ERR_DEDUP_UNAVAILABLE;
        gw_batch_finish(b);
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        gw_slot_t *slot = &b->slots[i];
        switch (b->items[i].verdict) {
        case DEDUP_NEW:
            break;
        case DEDUP_DEGRADED:
            sl_counter_add(&m->dedup_degraded_events, 1);
            break;
        case DEDUP_DUPLICATE:
            slot->state = GW_OUT_DUPLICATE, slot->code = SL_ERR_OK;
            break;
        case DEDUP_CONFLICT:
            slot->state = GW_OUT_DUPLICATE, slot->code = SL_ERR_ID_CONFLICT;
            break;
        case DEDUP_IN_FLIGHT:
            slot->state = GW_OUT_RETRY, slot->code = SL_ERR_IN_FLIGHT;
            break;
        case DEDUP_UNSURE:
            slot->state = GW_OUT_RETRY, slot->code = SL_ERR_DEDUP_UNAVAILABLE;
            break;
        case DEDUP_SKIP:
            break; /* invalid: its slot already says so */
        }
    }
    batch_produce(b);
}

/* Builds the batch: a slot per event, those with an invalid envelope decided now. */
static gw_batch_t *batch_new(gw_server_t *srv, h2o_req_t *req, const gw_batch_doc_t *doc)
{
    size_t n = doc->n_events;
    gw_batch_t *b = calloc(1, sizeof(*b) + n * sizeof(gw_slot_t));

    if (b == NULL)
        return NULL;
    b->srv = srv;
    b->thr = gw_current_thread;
    b->req = req;
    b->doc = *doc;
    b->n = n;
    for (size_t i = 0; i < n; i++) {
        const gw_event_t *ev = &doc->events[i];
        b->slots[i].batch = b;
        if (ev->err != SL_ERR_OK)
            b->slots[i].state = GW_OUT_INVALID, b->slots[i].code = (unsigned char)ev->err;
        else
            b->slots[i].state = SLOT_KAFKA;
    }
    return b;
}

/* Dedup claim for the events still bound for Kafka (an item each, with its own copy of the
 * event id: the claim can outlive the request), or straight to produce without dedup. */
void gw_batch_claim(gw_batch_t *b)
{
    size_t ids_len = 0;
    char *p;

    if (b->srv->dedup == NULL) {
        batch_produce(b);
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->slots[i].state == SLOT_KAFKA)
            ids_len += b->doc.events[i].event_id_len;
    b->items = calloc(b->n > 0 ? b->n : 1, sizeof(dedup_item_t));
    p = b->ids = malloc(ids_len > 0 ? ids_len : 1);
    if (b->items == NULL || b->ids == NULL)
        abort();
    for (size_t i = 0; i < b->n; i++) {
        const gw_event_t *ev = &b->doc.events[i];
        dedup_item_t *it = &b->items[i];
        if (b->slots[i].state != SLOT_KAFKA) {
            it->verdict = DEDUP_SKIP;
            continue;
        }
        memcpy(p, ev->event_id, ev->event_id_len);
        it->event_id = p;
        it->event_id_len = ev->event_id_len;
        it->fingerprint = dedup_fingerprint(ev->raw, ev->raw_len);
        it->verdict = DEDUP_NEW;
        p += ev->event_id_len;
    }
    b->claim_ns = sl_now_ns();
    dedup_claim(b->thr->dedup, b->tenant->name, b->items, b->n, on_claimed, b);
}

/* The write key the request carries outside its body. Returns 1 with *tenant set, 0 when there
 * is none (the body may carry one), or answers 401 and returns -1. */
static int auth_from_request(gw_server_t *srv, h2o_req_t *req, gw_tenant_t **tenant)
{
    char key[256];
    h2o_iovec_t auth;
    int key_len;

    if (header_is(req, H2O_TOKEN_AUTHORIZATION, &auth)) {
        if ((key_len = gw_auth_from_header(auth.base, auth.len, key, sizeof(key))) < 0)
            return reject(srv, req, SL_ERR_UNKNOWN_WRITE_KEY,
                          "Authorization must be Bearer KEY or Basic base64(KEY:)"), -1;
    } else if (req->query_at != SIZE_MAX) {
        if ((key_len = gw_auth_from_query(req->path.base + req->query_at + 1,
                                          req->path.len - req->query_at - 1, key, sizeof(key))) < 0)
            return reject(srv, req, SL_ERR_UNKNOWN_WRITE_KEY, "malformed write_key in the query"),
                   -1;
    } else {
        return 0;
    }
    if (key_len == 0)
        return 0;
    if ((*tenant = gw_auth_lookup(&srv->auth, key, (size_t)key_len)) == NULL)
        return reject(srv, req, SL_ERR_UNKNOWN_WRITE_KEY, NULL), -1;
    return 1;
}

/* An unusable body still goes to the dead-letter topic (API.md), cut to
 * producer.dlq_max_value_bytes; nobody waits for that write (the 400 is answered at once). */
static void dead_letter_body(gw_server_t *srv, h2o_req_t *req, h2o_iovec_t body,
                             const gw_tenant_t *tenant, int64_t received_at, sl_err_t err,
                             const char *detail)
{
    h2o_iovec_t ct = h2o_iovec_init(NULL, 0);
    gw_dlq_record_t rec = {.value = body.base, .len = body.len, .code = err, .stage = "parse",
                           .detail = detail, .tenant = tenant != NULL ? tenant->name : NULL,
                           .received_at = received_at};
    rd_kafka_t *rk;

    header_is(req, H2O_TOKEN_CONTENT_TYPE, &ct);
    rec.content_type = ct.base, rec.content_type_len = ct.len;
    rk = sl_producer_acquire(srv->producer);
    if (gw_dlq_produce(srv, rk, &rec, NULL) != 0)
        atomic_fetch_add(&unattached_dlq_failed, 1);
    sl_producer_release(srv->producer);
}

/* Whether `bytes` more of request memory may be held until Kafka answers (invariant 5: every
 * batch waiting for Kafka pins its request's pool). Takes the bytes when it may. */
static int take_memory(gw_server_t *srv, uint64_t bytes)
{
    uint64_t now = atomic_fetch_add(&srv->inflight_bytes, bytes) + bytes;
    if (now <= srv->gc->max_inflight_bytes)
        return 1;
    atomic_fetch_sub(&srv->inflight_bytes, bytes);
    return 0;
}

/* POST /v1/batch after admission. Returns 1 when the batch went to Kafka (gw_batch_finish answers
 * later), 0 when it was answered here. */
static int handle_post(gw_server_t *srv, h2o_req_t *req, uint64_t start_ns)
{
    const gw_config_t *gc = srv->gc;
    gw_thread_t *thr = gw_current_thread;
    int64_t received_at = sl_wall_ms();
    gw_parse_limits_t limits = {(size_t)gc->max_events, (size_t)gc->max_event_bytes,
                                (unsigned)gc->max_json_depth};
    h2o_iovec_t body = req->entity, encoding;
    gw_tenant_t *tenant = NULL;
    uint64_t held = 0;
    gw_batch_doc_t doc;
    gw_batch_t *b;
    gw_shed_t cause;
    h2o_iovec_t origin;
    int64_t wait_ns;
    int kind;
    sl_err_t err;
    const char *why;

    if (!sl_producer_is_ready(srv->producer, &why))
        return reject(srv, req, SL_ERR_NOT_READY, why);

    /* framing: content type, size, encoding */
    if (body.base == NULL)
        body = h2o_iovec_init("", 0);
    sl_counter_add(&thr->metrics.bytes_in, body.len);
    if ((kind = body_kind(req)) < 0)
        return reject(srv, req, SL_ERR_UNSUPPORTED_MEDIA_TYPE, NULL);
    if (body.len > gc->max_body_bytes)
        return reject(srv, req, SL_ERR_BODY_TOO_LARGE, NULL);
    if (header_is(req, H2O_TOKEN_CONTENT_ENCODING, &encoding) &&
        !h2o_lcstris(encoding.base, encoding.len, H2O_STRLIT("gzip")) &&
        !h2o_lcstris(encoding.base, encoding.len, H2O_STRLIT("identity")))
        return reject(srv, req, SL_ERR_UNSUPPORTED_ENCODING, NULL);

    /* backpressure before any decompression or parsing: overload must cost little */
    if ((cause = gw_admit_pipeline(srv)) != GW_SHED_NONE)
        return shed(srv, req, cause, 0);

    /* a key in the header or query is checked before any decompression or parsing, and so is
     * its tenant's rate when not even one more event would pass */
    if (auth_from_request(srv, req, &tenant) < 0)
        return 0;
    if (tenant != NULL && gw_rate_is_exhausted(&tenant->rate, (int64_t)start_ns))
        return shed(srv, req, GW_SHED_TENANT_RATE, gw_rate_take(&tenant->rate, 1, (int64_t)start_ns));

    held = body.len;
    if (!take_memory(srv, held))
        return shed(srv, req, GW_SHED_MEMORY, 0);
    if (gw_body_is_gzip(body.base, body.len)) { /* by header or by magic bytes (beacons) */
        size_t n;
        if (thr->scratch == NULL && (thr->scratch = malloc(gc->max_decompressed_bytes)) == NULL)
            goto Internal;
        if ((err = gw_body_gunzip(body.base, body.len, thr->scratch, gc->max_decompressed_bytes,
                                  &n)) != SL_ERR_OK) {
            if (sl_err_status(err) == 400)
                dead_letter_body(srv, req, body, tenant, received_at, err, NULL);
            goto Reject;
        }
        if (!take_memory(srv, n)) {
            atomic_fetch_sub(&srv->inflight_bytes, held);
            return shed(srv, req, GW_SHED_MEMORY, 0);
        }
        held += n;
        /* the batch outlives this call (its answer waits for Kafka): copy out of scratch */
        body = h2o_strdup(&req->pool, thr->scratch, n);
    }

    /* parse: envelope checks per event (JSON) or the records' slices (binary), limits; then
     * the body's write_key if still needed */
    err = kind == BODY_BINARY
              ? gw_parse_pb_batch(body.base, body.len, &limits, pool_alloc, &req->pool, &doc)
              : gw_parse_batch(body.base, body.len, &limits, pool_alloc, &req->pool, &doc);
    if (err != SL_ERR_OK) {
        atomic_fetch_sub(&srv->inflight_bytes, held);
        if (sl_err_status(err) == 400)
            dead_letter_body(srv, req, body, tenant, received_at, err, doc.err_detail);
        return reject(srv, req, err, doc.err_detail);
    }
    if (tenant == NULL) {
        if (doc.write_key == NULL || doc.write_key_len == 0) {
            err = SL_ERR_MISSING_WRITE_KEY;
            goto Reject;
        }
        if ((tenant = gw_auth_lookup(&srv->auth, doc.write_key, doc.write_key_len)) == NULL) {
            err = SL_ERR_UNKNOWN_WRITE_KEY;
            goto Reject;
        }
    }
    if (origin_is(req, &origin) &&
        !gw_tenant_allows_origin(tenant, origin.base, origin.len)) {
        err = SL_ERR_ORIGIN_NOT_ALLOWED;
        goto Reject;
    }
    /* the tenant's rate, charged for every event of the batch (decided here, never waited on) */
    if ((wait_ns = gw_rate_take(&tenant->rate, (int64_t)doc.n_events, (int64_t)start_ns)) > 0) {
        atomic_fetch_sub(&srv->inflight_bytes, held);
        return shed(srv, req, GW_SHED_TENANT_RATE, wait_ns);
    }

    /* schemas, then dedup claim, then produce; gw_batch_finish answers when every delivery
     * report is back */
    if ((b = batch_new(srv, req, &doc)) == NULL)
        goto Internal;
    b->tenant = tenant;
    b->is_binary = kind == BODY_BINARY;
    b->received_at = received_at;
    b->admitted_events = (int64_t)b->n;
    gw_admit_enter(srv, b->admitted_events);
    b->start_ns = start_ns;
    b->held_bytes = held;
    b->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*b->guard), on_req_dispose);
    b->guard->batch = b;
    gw_batch_resolve(b);
    return 1;

Internal:
    err = SL_ERR_INTERNAL;
Reject:
    atomic_fetch_sub(&srv->inflight_bytes, held);
    return reject(srv, req, err, NULL);
}

int gw_batch_on_req(gw_server_t *srv, h2o_req_t *req)
{
    uint64_t start_ns = sl_now_ns();

    add_cors_headers(srv, req); /* on every answer, the preflight's included */
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS")))
        return send_preflight(req);
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("POST, OPTIONS"));
        return reject(srv, req, SL_ERR_METHOD_NOT_ALLOWED, NULL);
    }
    if (srv->gc->debug_null_pipeline) { /* the HTTP ceiling for benchmarks: same listener, no work */
        gw_metrics_count_status(&gw_current_thread->metrics, 200);
        gw_send_json(req, 200, H2O_STRLIT("{\"accepted\":0,\"duplicate\":0,\"invalid\":0,\"retry\":0,"
                                          "\"events\":[]}"), 0);
        return 0;
    }
    /* counted before the draining flag is read, so the drain never misses a batch */
    gw_inflight_add(srv, 1);
    if (atomic_load(&srv->draining)) {
        reject(srv, req, SL_ERR_DRAINING, NULL);
        gw_inflight_add(srv, -1);
        return 0;
    }
    if (handle_post(srv, req, start_ns) == 0)
        gw_inflight_add(srv, -1);
    return 0;
}
