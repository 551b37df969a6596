/* schema/: compiled Avro event schemas and the schema-directed JSON -> Avro transcoder (Confluent
 * framing). See schema/README.md for the JSON mapping rules of every Avro type. */
#ifndef SCHEMA_H
#define SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <avro/schema.h>

#include "sl_err.h"

/* Nesting bound of an event: JSON levels (objects and arrays) including the event object itself.
 * Deeper input fails with `too_deep`; the encoder's recursion is bounded by it. */
#define SCHEMA_MAX_DEPTH 32

/* Bytes of Confluent framing before the Avro body: 0x00 and the 4-byte big-endian schema id. */
#define SCHEMA_FRAME_BYTES 5

/* Field names and enum symbols longer than this are refused when compiling. */
#define SCHEMA_MAX_NAME_BYTES 255

/* A compiled Avro record schema: immutable after schema_compile_avro, so any number of threads
 * may encode with it at once without locking. */
typedef struct schema schema_t;

/* Compiles an Avro schema (JSON text, need not be NUL-terminated) whose top-level type is a
 * record. avro-c validates the text; the result also holds a compact program for the encoder and
 * every field default pre-encoded. id is the registry id written into the Confluent framing.
 * Returns NULL and writes a message into errbuf on any error (invalid schema, a default that
 * does not match its type, unsupported decimal precision above 38). Any thread. */
schema_t *schema_compile_avro(const char *json, size_t len, uint32_t id, char *errbuf,
                              size_t errlen);

/* Frees the schema; accepts NULL. No encode may be running with it. */
void schema_destroy(schema_t *s);

/* The registry id given to schema_compile_avro. */
uint32_t schema_id(const schema_t *s);

/* Full name of the top-level record ("sluice.events.PageView"); owned by the schema. */
const char *schema_name(const schema_t *s);

/* The avro-c schema (borrowed: valid until schema_destroy; take a reference with
 * avro_schema_incref to keep it longer). For decoding, schema resolution and compatibility
 * checks; never used by schema_encode_json. */
avro_schema_t schema_avro(const schema_t *s);

/* Why an event was refused. code is one of the per-event codes of common/sl_err.h; path names
 * the offending value ("properties.revenue_cents", "items[3].sku"; empty for the event itself)
 * with member names and map keys as written in the event (escapes kept), cut to fit on an escape
 * and UTF-8 boundary, so it is valid JSON string content to embed as is; detail is short human
 * text ("expected long, got string") that never echoes the event's values. */
typedef struct {
    sl_err_t code;
    char path[128];
    char detail[128];
} schema_error_t;

/* Top-level members that belong to the envelope, not to the record (e.g. "schema_version"): the
 * encoder skips them (their values must still be valid JSON). Names are NUL-terminated and
 * compared to the raw member name. */
typedef struct {
    const char *const *names;
    size_t count;
} schema_skip_t;

/* Validates one JSON event (an object; plain JSON, not Avro's JSON encoding) against s and
 * writes the Confluent framing plus the Avro binary record into out[0..cap). skip may be NULL.
 * Returns the number of bytes written, or -1 with *e filled (e->code is never SL_ERR_OK then);
 * output too big for cap is `event_too_large`. On success e->code is SL_ERR_OK.
 * json and out must not overlap. Allocates nothing for the default schemas; the free tail of out
 * (beyond the bytes written) is used as scratch when an object's members arrive out of schema
 * order, so a cap of about twice the encoded size avoids a heap fallback. Any thread. */
ssize_t schema_encode_json(const schema_t *s, const char *json, size_t len,
                           const schema_skip_t *skip, uint8_t *out, size_t cap, schema_error_t *e);

/* ==== Binary records (schema_binary.c): Confluent framing, Avro binary and Protobuf validation.
 * A schema_t is type-tagged: schema_compile_avro makes SCHEMA_KIND_AVRO, schema_compile_protobuf
 * SCHEMA_KIND_PROTOBUF; schema_destroy, schema_id and schema_name take either. A Protobuf schema
 * has no avro-c schema (schema_avro returns NULL) and schema_encode_json refuses it. ==== */

typedef enum {
    SCHEMA_KIND_AVRO = 0,
    SCHEMA_KIND_PROTOBUF = 1,
} schema_kind_t;

schema_kind_t schema_kind(const schema_t *s);

/* Splits a record in Confluent wire format: byte 0x00, the 4-byte big-endian schema id, then
 * the payload (Avro binary, or Protobuf with its message-index prefix). *payload points into
 * rec. Returns 0, or -1 when rec is shorter than 5 bytes or does not start with 0x00. */
int schema_frame_parse(const uint8_t *rec, size_t len, uint32_t *id, const uint8_t **payload,
                       size_t *payload_len);

/* A slice of the record being validated (not NUL-terminated); ptr is NULL when absent. */
typedef struct {
    const char *ptr;
    size_t len;
} schema_slice_t;

/* Top-level string fields taken from a validated record (slices of the payload, valid UTF-8).
 * Avro: a field of type string, or a union whose string branch was written. Protobuf: a
 * singular `string` field of the top-level message (the last occurrence, as protobuf reads). */
typedef struct {
    schema_slice_t event_id, user_id, event_type;
} schema_extract_t;

/* Validates payload (the bytes after the 5-byte framing) against s, which must be the schema
 * of the id in the framing. Avro: the binary is walked per the schema; every byte must be used.
 * Protobuf: the message-index prefix selects the message, then every field present must have
 * its declared wire type (packed repeated scalars accepted), nested messages are checked
 * recursively, strings are UTF-8, closed (proto2) enum values are declared ones, proto2
 * required fields are present; unknown field numbers are skipped, as protobuf parsers do.
 * Nesting deeper than SCHEMA_MAX_DEPTH fails with too_deep. Returns 0 with *out filled (out
 * may be NULL), or -1 with *e filled: bad_record (truncated, over-long varint, wrong length,
 * trailing bytes, bad union/message index), bad_type (Protobuf wire type), bad_utf8, bad_enum,
 * out_of_range (an Avro int over 32 bits), bad_value (Avro boolean not 0/1), missing_field,
 * too_deep. e->path names fields and array/map positions, never values. Allocates nothing;
 * any thread. */
int schema_validate_binary(const schema_t *s, const uint8_t *payload, size_t len,
                           schema_extract_t *out, schema_error_t *e);

/* Compiles a Protobuf schema from its serialized google.protobuf.FileDescriptorProto (what the
 * registry serves, base64, at GET /schemas/ids/{id}?format=serialized; decode it with
 * schema_base64_decode). Every type name must resolve inside the file (the registry refuses
 * imports). Returns NULL with a message in errbuf when the bytes are not a descriptor this
 * reader understands. Any thread. */
schema_t *schema_compile_protobuf(const uint8_t *desc, size_t len, uint32_t id, char *errbuf,
                                  size_t errlen);

/* Decodes standard base64 (padding optional, no whitespace) into out[0..cap). Returns the byte
 * count, or -1 on a bad character or when out is too small (cap >= len / 4 * 3 + 3 suffices). */
ssize_t schema_base64_decode(const char *b64, size_t len, uint8_t *out, size_t cap);

#endif
