/* The one error table: every failure a client or operator can see has a stable machine code, an
 * HTTP status (for whole-request errors), a retryable flag and a default message. */
#ifndef SL_ERR_H
#define SL_ERR_H

/* X(ENUM, "machine_code", http_status, is_retryable, "default detail") */
#define SL_ERR_LIST(X)                                                                            \
    X(OK, "ok", 200, 0, "ok")                                                                     \
    /* whole-request errors */                                                                    \
    X(NOT_FOUND, "not_found", 404, 0, "no such endpoint")                                         \
    X(METHOD_NOT_ALLOWED, "method_not_allowed", 405, 0, "use POST (or OPTIONS for CORS)")         \
    X(UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", 415, 0,                                   \
      "Content-Type must be application/json or text/plain")                                     \
    X(UNSUPPORTED_ENCODING, "unsupported_encoding", 415, 0,                                       \
      "Content-Encoding must be identity or gzip")                                                \
    X(BODY_TOO_LARGE, "body_too_large", 413, 0, "request body over the limit")                    \
    X(DECOMPRESSED_TOO_LARGE, "decompressed_too_large", 413, 0,                                   \
      "decompressed body over the limit")                                                         \
    X(TOO_MANY_EVENTS, "too_many_events", 413, 0, "too many events in one batch")                 \
    X(MALFORMED_JSON, "malformed_json", 400, 0, "body is not valid JSON")                         \
    X(MALFORMED_GZIP, "malformed_gzip", 400, 0, "body is not valid gzip")                         \
    X(MALFORMED_PROTOBUF, "malformed_protobuf", 400, 0,                                           \
      "body is not a valid sluice.v1.RecordBatch")                                                \
    X(NOT_AN_OBJECT, "not_an_object", 400, 0, "body must be a JSON object")                       \
    X(MISSING_EVENTS, "missing_events", 400, 0, "body has no \"events\" array")                   \
    X(BAD_BATCH_FIELD, "bad_batch_field", 400, 0, "a batch field has the wrong type")             \
    X(CONFLICTING_FRAMING, "conflicting_framing", 400, 0,                                         \
      "Content-Length with Transfer-Encoding (or twice) is refused; connection closed")          \
    X(MISSING_WRITE_KEY, "missing_write_key", 401, 0, "no write key")                             \
    X(UNKNOWN_WRITE_KEY, "unknown_write_key", 401, 0, "write key not recognised")                 \
    X(DRAINING, "draining", 503, 1, "gateway is shutting down")                                   \
    X(NOT_READY, "not_ready", 503, 1, "gateway is not ready")                                     \
    X(PRODUCER_FATAL, "producer_fatal", 503, 1, "Kafka producer failed; batch not stored")        \
    X(DEDUP_UNAVAILABLE, "dedup_unavailable", 503, 1,                                             \
      "dedup store unreachable (policy closed); batch not stored")                                \
    X(SCHEMA_UNAVAILABLE, "schema_unavailable", 503, 1,                                           \
      "schema registry unreachable and the event types' schemas are not cached; batch not "       \
      "stored")                                                                                   \
    X(OVERLOADED, "overloaded", 429, 1, "pipeline saturated")                                     \
    X(RATE_LIMITED, "rate_limited", 429, 1, "tenant over its event rate")                         \
    X(ORIGIN_NOT_ALLOWED, "origin_not_allowed", 403, 0,                                           \
      "this write key does not accept requests from this Origin")                                 \
    X(INTERNAL, "internal", 500, 1, "internal error")                                             \
    /* per-event codes (status "invalid", or "retry" when retryable) */                           \
    X(EVENT_TOO_LARGE, "event_too_large", 200, 0, "event over the size limit")                    \
    X(EVENT_NOT_OBJECT, "not_object", 200, 0, "event must be a JSON object")                      \
    X(BAD_FRAMING, "bad_framing", 200, 0,                                                         \
      "record is not in Confluent wire format (0x00, 4-byte schema id)")                          \
    X(BAD_RECORD, "bad_record", 200, 0, "record does not decode against its schema")              \
    X(MISSING_FIELD, "missing_field", 200, 0, "required field missing")                           \
    X(BAD_TYPE, "bad_type", 200, 0, "field has the wrong type")                                   \
    X(BAD_UUID, "bad_uuid", 200, 0, "event_id must be a UUID string")                             \
    X(DUPLICATE_KEY, "duplicate_key", 200, 0, "a field appears twice")                            \
    X(BAD_VALUE, "bad_value", 200, 0, "field value out of range")                                 \
    X(UNKNOWN_FIELD, "unknown_field", 200, 0, "field is not in the schema")                       \
    X(OUT_OF_RANGE, "out_of_range", 200, 0, "number out of the range of its type")                \
    X(BAD_ENUM, "bad_enum", 200, 0, "not one of the enum's symbols")                              \
    X(BAD_UTF8, "bad_utf8", 200, 0, "string is not valid UTF-8")                                  \
    X(TOO_DEEP, "too_deep", 200, 0, "event nested too deeply")                                    \
    X(BAD_JSON, "bad_json", 200, 0, "event is not valid JSON")                                    \
    X(SCHEMA_NOT_FOUND, "schema_not_found", 200, 1,                                               \
      "no schema registered for this event_type (and schema_version); replayable once it is")     \
    X(KAFKA_FAILED, "kafka_failed", 200, 1, "write to Kafka failed")                              \
    X(QUEUE_FULL, "queue_full", 200, 1, "producer queue full")                                    \
    X(ID_CONFLICT, "id_conflict", 200, 0,                                                         \
      "this event_id was accepted earlier with a different payload")                              \
    X(IN_FLIGHT, "in_flight", 200, 1,                                                             \
      "the same event_id is being written by another request; resend later")

typedef enum {
#define SL_ERR_ENUM(e, code, status, retry, msg) SL_ERR_##e,
    SL_ERR_LIST(SL_ERR_ENUM)
#undef SL_ERR_ENUM
        SL_ERR__COUNT
} sl_err_t;

/* Stable machine code ("body_too_large"). */
const char *sl_err_code(sl_err_t err);
/* HTTP status for whole-request errors (200 for per-event codes). */
int sl_err_status(sl_err_t err);
/* Whether the client may resend (429/503; per-event "retry"). */
int sl_err_is_retryable(sl_err_t err);
/* Default human detail. */
const char *sl_err_message(sl_err_t err);

#endif
