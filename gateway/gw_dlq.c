/* The dead-letter topic: what the gateway refuses is kept, with the reason, for operators to
 * inspect and replay (API.md, "Topic events.dlq"). */
#include <stdio.h>
#include <string.h>

#include "gw_int.h"

int gw_dlq_produce(gw_server_t *srv, rd_kafka_t *rk, const gw_dlq_record_t *rec, void *opaque)
{
    char received[24];
    int received_len = snprintf(received, sizeof(received), "%lld", (long long)rec->received_at);
    size_t len = rec->len;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(12);
    size_t key_len = rec->event_id != NULL ? rec->event_id_len : 0;
    rd_kafka_resp_err_t err;

    if (len > srv->gc->dlq_max_value_bytes) {
        len = srv->gc->dlq_max_value_bytes;
        rd_kafka_header_add(hdrs, "dlq.truncated", -1, "true", 4);
    }
    rd_kafka_header_add(hdrs, "dlq.code", -1, sl_err_code(rec->code), -1);
    rd_kafka_header_add(hdrs, "dlq.stage", -1, rec->stage, -1);
    rd_kafka_header_add(hdrs, "dlq.path", -1, rec->path != NULL ? rec->path : "", -1);
    rd_kafka_header_add(hdrs, "dlq.detail", -1, rec->detail != NULL ? rec->detail : "", -1);
    rd_kafka_header_add(hdrs, "dlq.retryable", -1,
                        sl_err_is_retryable(rec->code) ? "true" : "false", -1);
    if (rec->tenant != NULL)
        rd_kafka_header_add(hdrs, "tenant", -1, rec->tenant, -1);
    if (rec->event_id != NULL)
        rd_kafka_header_add(hdrs, "event_id", -1, rec->event_id, (ssize_t)rec->event_id_len);
    rd_kafka_header_add(hdrs, "received_at", -1, received, received_len);
    if (rec->content_type != NULL)
        rd_kafka_header_add(hdrs, "content_type", -1, rec->content_type,
                            (ssize_t)rec->content_type_len);
    if (rec->schema_subject != NULL)
        rd_kafka_header_add(hdrs, "schema_subject", -1, rec->schema_subject,
                            (ssize_t)rec->schema_subject_len);
    if (rec->schema_id != 0) {
        char id[12];
        int n = snprintf(id, sizeof(id), "%u", rec->schema_id);
        rd_kafka_header_add(hdrs, "schema_id", -1, id, n);
    }
    rd_kafka_header_add(hdrs, "gateway", -1, srv->instance_id, -1);
    err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(srv->gc->dlq_topic),
                            RD_KAFKA_V_KEY(rec->event_id, key_len),
                            RD_KAFKA_V_VALUE((void *)rec->value, len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                            RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_headers_destroy(hdrs);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}
