/* Private to schema/registry/: the parsed forms of Avro and Protobuf schemas and the
 * compatibility checks between them. */
#ifndef REG_INT_H
#define REG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"

/* How deep a schema may nest (records in records, unions, arrays...). Deeper is invalid: every
 * walk over a schema is recursive and this bounds its stack. */
#define REG_MAX_SCHEMA_DEPTH 64

/* A bounded message being built: appends past the end are dropped (the text is cut). */
void reg_msg_add(reg_msg_t *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------------------------------------
 * Avro (reg_avro.c)
 * ------------------------------------------------------------------------------------------- */

typedef struct reg_avro reg_avro_t;

/* Parses and validates an Avro schema (avro-c's parser plus the checks avro-c 1.11 skips:
 * duplicate field names, duplicate union branches, defaults that do not match their type).
 * Returns NULL with the reason in err. */
reg_avro_t *reg_avro_parse(const char *text, size_t len, reg_msg_t *err);
void reg_avro_destroy(reg_avro_t *a);
/* The schema as served: compact JSON in the order written. Owned by a. */
const char *reg_avro_text(const reg_avro_t *a);
/* The identity used for "same schema": compact JSON with object keys sorted. Owned by a. */
const char *reg_avro_canonical(const reg_avro_t *a);
/* 1 when data written with `writer` can be read with `reader` (Avro's resolution rules), else
 * 0 with the reasons appended to why (prefixed with `what`). */
int reg_avro_can_read(const reg_avro_t *writer, const reg_avro_t *reader, const char *what,
                      reg_msg_t *why);

/* ---------------------------------------------------------------------------------------------
 * Protobuf (reg_proto.c)
 * ------------------------------------------------------------------------------------------- */

typedef struct reg_proto reg_proto_t;

/* Compiles .proto text with protoc (a subprocess in a private temporary directory, killed after
 * timeout_ms) into a FileDescriptorProto and parses that. Returns NULL with protoc's complaint
 * (or why protoc could not run) in err. */
reg_proto_t *reg_proto_compile(const char *protoc, int64_t timeout_ms, const char *text, size_t len,
                               reg_msg_t *err);
/* Rebuilds the parsed form from a serialized FileDescriptorProto (log replay: no protoc). */
reg_proto_t *reg_proto_from_descriptor(const uint8_t *desc, size_t len, reg_msg_t *err);
void reg_proto_destroy(reg_proto_t *p);
/* The serialized FileDescriptorProto. Owned by p. */
const uint8_t *reg_proto_descriptor(const reg_proto_t *p, size_t *len);
/* The rules of README.md "Protobuf compatibility": 1 when a reader using `reader` understands
 * messages written with `writer`, else 0 with reasons in why. */
int reg_proto_can_read(const reg_proto_t *writer, const reg_proto_t *reader, const char *what,
                       reg_msg_t *why);

/* Standard base64 (with padding) of data into out, which holds at least 4 * ((len + 2) / 3) + 1
 * bytes; returns the length written (NUL-terminated). */
size_t reg_base64_encode(const uint8_t *data, size_t len, char *out);
/* Decodes standard base64 into out (at least 3 * (len / 4) bytes). Returns the length, or -1
 * for a bad character or length. */
long reg_base64_decode(const char *s, size_t len, uint8_t *out);

#endif
