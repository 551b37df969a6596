/* The schema step of POST /v1/batch (gateway/README.md, request path steps 6 and 7): each
 * event's schema from the registry cache (asynchronously on a miss: the cache's fetch thread
 * calls back, an h2o_multithread message brings the batch back to its loop), then JSON events
 * are validated and encoded to Confluent-framed Avro and binary records are decoded against the
 * schema of their framing id; refused events become invalid with the schema's code, path and
 * detail. Then gw_batch_claim. */
#include <stdlib.h>
#include <string.h>

#include "gw_batch_int.h"

/* An event refused by its schema: invalid, with the schema's code, path and detail (copied
 * into the request's pool: the answer and the dead letter read them). */
static void slot_schema_invalid(gw_batch_t *b, size_t i, sl_err_t code, const char *path,
                                const char *detail)
{
    gw_event_t *ev = &b->doc.events[i];
    b->slots[i].state = GW_OUT_INVALID;
    b->slots[i].code = (unsigned char)code;
    b->slots[i].schema_stage = 1;
    ev->err = code;
    ev->err_path = h2o_strdup(&b->req->pool, path, SIZE_MAX).base;
    ev->err_detail = h2o_strdup(&b->req->pool, detail, SIZE_MAX).base;
}

/* Appends one Kafka value to batch->values and points the slot at it. */
static void batch_add_value(gw_batch_t *b, gw_slot_t *slot, const void *value, size_t n)
{
    if (b->values_len + n > b->values_cap) {
        size_t cap = b->values_cap > 0 ? b->values_cap * 2 : 4096;
        while (cap < b->values_len + n)
            cap *= 2;
        if ((b->values = realloc(b->values, cap)) == NULL)
            abort();
        b->values_cap = cap;
    }
    memcpy(b->values + b->values_len, value, n);
    slot->value_off = (uint32_t)b->values_len;
    slot->value_len = (uint32_t)n;
    b->values_len += n;
}

/* Encodes every event that has its schema into batch->values (Confluent framing + Avro): an
 * event its schema refuses becomes invalid with the encoder's code, path and detail. */
static void batch_encode(gw_batch_t *b)
{
    static const char *const skip_names[] = {"schema_version"};
    static const schema_skip_t skip = {skip_names, 1};
    gw_thread_t *thr = b->thr;
    size_t before = b->values_cap;

    if (thr->encode_buf == NULL) {
        /* the encoder also uses the free tail as scratch for members out of schema order */
        thr->encode_cap = 2 * (size_t)b->srv->gc->max_event_bytes + 4096;
        if ((thr->encode_buf = malloc(thr->encode_cap)) == NULL)
            abort();
    }
    for (size_t i = 0; i < b->n; i++) {
        gw_slot_t *slot = &b->slots[i];
        const gw_event_t *ev = &b->doc.events[i];
        schema_error_t e;
        ssize_t n;

        if (slot->state != SLOT_KAFKA)
            continue;
        n = schema_encode_json(slot->schema, ev->raw, ev->raw_len, &skip, thr->encode_buf,
                               thr->encode_cap, &e);
        if (n < 0) {
            slot_schema_invalid(b, i, e.code, e.path, e.detail);
            continue;
        }
        batch_add_value(b, slot, thr->encode_buf, (size_t)n);
    }
    /* held until the answer, like the body: counted against gateway.max_inflight_bytes */
    atomic_fetch_add(&b->srv->inflight_bytes, b->values_cap - before);
    b->held_bytes += b->values_cap - before;
}

/* Binary batches: each record is decoded against the schema of its id (Avro or Protobuf) and
 * must carry the envelope (a UUID event_id, a user_id), taken from the decoded record; the
 * record's bytes are forwarded unchanged. */
static void batch_check_records(gw_batch_t *b)
{
    size_t before = b->values_cap;

    for (size_t i = 0; i < b->n; i++) {
        gw_slot_t *slot = &b->slots[i];
        gw_event_t *ev = &b->doc.events[i];
        const uint8_t *payload;
        size_t payload_len;
        uint32_t id;
        schema_extract_t x;
        schema_error_t e;

        if (slot->state != SLOT_KAFKA)
            continue;
        schema_frame_parse((const uint8_t *)ev->raw, ev->raw_len, &id, &payload, &payload_len);
        if (schema_validate_binary(slot->schema, payload, payload_len, &x, &e) != 0) {
            slot_schema_invalid(b, i, e.code, e.path, e.detail);
            continue;
        }
        ev->event_id = x.event_id.ptr, ev->event_id_len = x.event_id.len;
        ev->user_id = x.user_id.ptr, ev->user_id_len = x.user_id.len;
        ev->event_type = x.event_type.ptr, ev->event_type_len = x.event_type.len;
        if (ev->event_id == NULL || !gw_is_uuid(ev->event_id, ev->event_id_len)) {
            slot_schema_invalid(b, i, ev->event_id == NULL ? SL_ERR_MISSING_FIELD : SL_ERR_BAD_UUID,
                                "event_id", "the record needs a UUID string field event_id");
            continue;
        }
        if (ev->user_id == NULL || ev->user_id_len == 0) {
            slot_schema_invalid(b, i, SL_ERR_MISSING_FIELD, "user_id",
                                "the record needs a non-empty string field user_id");
            continue;
        }
        batch_add_value(b, slot, ev->raw, ev->raw_len);
    }
    atomic_fetch_add(&b->srv->inflight_bytes, b->values_cap - before);
    b->held_bytes += b->values_cap - before;
}

static void on_schema_fetched(void *arg);

/* Finds each event's schema: subject event_type, latest or the pinned schema_version. A miss
 * is fetched by the cache's own threads; this step then resumes from on_schema_fetched on the
 * loop thread. Unknown subjects make the event invalid (schema_not_found, replayable); a
 * registry that cannot be reached with nothing cached makes it retry - or the whole batch 503
 * when that is most of it (a gateway-side fault must not read as bad data). */
void gw_batch_resolve(gw_batch_t *b)
{
    size_t candidates = 0, unavailable = 0;

    if (b->req == NULL) { /* the client went away during a fetch: nothing was promised */
        for (size_t i = 0; i < b->n; i++)
            if (b->slots[i].state == SLOT_KAFKA)
                b->slots[i].state = GW_OUT_RETRY, b->slots[i].code = SL_ERR_OK;
        gw_batch_finish(b);
        return;
    }
    for (; b->resolve_next < b->n; b->resolve_next++) {
        size_t i = b->resolve_next;
        gw_slot_t *slot = &b->slots[i];
        const gw_event_t *ev = &b->doc.events[i];
        schema_cache_hit_t hit;
        schema_cache_status_t st;

        if (slot->state != SLOT_KAFKA)
            continue;
        if (b->is_binary) { /* the record names its schema by id in its framing */
            uint32_t id;
            const uint8_t *payload;
            size_t payload_len;
            if (schema_frame_parse((const uint8_t *)ev->raw, ev->raw_len, &id, &payload,
                                   &payload_len) != 0) {
                slot_schema_invalid(b, i, SL_ERR_BAD_FRAMING, "",
                                    "expected 0x00, a 4-byte schema id, then the record");
                continue;
            }
            st = schema_cache_lookup_id(b->srv->schemas, id, &hit, on_schema_fetched, b);
        } else {
            st = schema_cache_lookup(b->srv->schemas, ev->event_type, ev->event_type_len,
                                     ev->schema_version, &hit, on_schema_fetched, b);
        }
        switch (st) {
        case SCHEMA_CACHE_HIT:
            slot->schema = hit.compiled;
            slot->schema_id = hit.id;
            break;
        case SCHEMA_CACHE_NEGATIVE:
            slot_schema_invalid(b, i, SL_ERR_SCHEMA_NOT_FOUND, b->is_binary ? "" : "event_type",
                                b->is_binary ? "no schema with the id in the record's framing"
                                : ev->schema_version != 0
                                    ? "no such schema_version for this event_type"
                                    : "no schema registered for this event_type");
            break;
        case SCHEMA_CACHE_UNAVAILABLE:
            slot->state = GW_OUT_RETRY, slot->code = SL_ERR_SCHEMA_UNAVAILABLE;
            break;
        case SCHEMA_CACHE_PENDING:
            return; /* on_schema_fetched brings the batch back here, at the same event */
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        unsigned char code = b->slots[i].code;
        if (b->slots[i].state == SLOT_KAFKA || code == SL_ERR_SCHEMA_UNAVAILABLE ||
            (b->slots[i].schema_stage && code == SL_ERR_SCHEMA_NOT_FOUND))
            candidates++;
        unavailable += b->slots[i].state == GW_OUT_RETRY && code == SL_ERR_SCHEMA_UNAVAILABLE;
    }
    if (unavailable > 0 && unavailable * 2 >= candidates) {
        for (size_t i = 0; i < b->n; i++)
            if (b->slots[i].state == SLOT_KAFKA)
                b->slots[i].state = GW_OUT_RETRY, b->slots[i].code = SL_ERR_SCHEMA_UNAVAILABLE;
        b->refused = SL_ERR_SCHEMA_UNAVAILABLE;
        gw_batch_finish(b);
        return;
    }
    if (b->is_binary)
        batch_check_records(b);
    else
        batch_encode(b);
    gw_batch_claim(b);
}

/* A fetch thread: the schema a batch waits for was fetched (or failed). Hands the batch back to
 * its loop thread. */
static void on_schema_fetched(void *arg)
{
    gw_batch_t *b = arg;
    if (atomic_load(&b->srv->schemas_closing))
        return;
    h2o_multithread_send_message(&b->thr->schema_receiver, &b->schema_msg);
}

void gw_batch_on_schema(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        gw_batch_resolve(H2O_STRUCT_FROM_MEMBER(gw_batch_t, schema_msg, msg));
    }
}
