/* sluice-registry: a Confluent Schema Registry compatible store (subjects, versions, global
 * schema ids, compatibility levels) kept durable in an append-only JSON-lines log, and its
 * HTTP front end. See schema/registry/README.md.
 *
 * Threading: none of this is synchronised. The process runs one h2o loop thread that owns the
 * store; tests drive the store from their main thread. */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "sl_config.h"

/* ---------------------------------------------------------------------------------------------
 * Errors: Confluent's error_code, with the HTTP status it travels with
 * ------------------------------------------------------------------------------------------- */

/* X(ENUM, error_code, http_status) */
#define REG_ERR_LIST(X)                                                                            \
    X(OK, 0, 200)                                                                                  \
    X(BAD_REQUEST, 400, 400) /* body is not a JSON object of the expected shape */                 \
    X(NOT_FOUND, 404, 404)   /* no such endpoint */                                                \
    X(METHOD_NOT_ALLOWED, 405, 405)                                                                \
    X(INCOMPATIBLE, 409, 409) /* the schema breaks the subject's compatibility level */            \
    X(SUBJECT_NOT_FOUND, 40401, 404)                                                               \
    X(VERSION_NOT_FOUND, 40402, 404)                                                               \
    X(SCHEMA_NOT_FOUND, 40403, 404)                                                                \
    X(SUBJECT_CONFIG_NOT_FOUND, 40408, 404) /* no subject-level compatibility set */               \
    X(INVALID_SCHEMA, 42201, 422)                                                                  \
    X(INVALID_VERSION, 42202, 422)                                                                 \
    X(INVALID_LEVEL, 42203, 422)                                                                   \
    X(TOO_LARGE, 413, 413) /* a configured bound (schemas, subjects, bytes) */                     \
    X(STORE, 50001, 500)   /* the log could not be written or synced */

typedef enum {
#define REG_ERR_ENUM(e, code, status) REG_ERR_##e,
    REG_ERR_LIST(REG_ERR_ENUM)
#undef REG_ERR_ENUM
        REG_ERR__COUNT
} reg_err_t;

/* Confluent's error_code (40401...) and the HTTP status for err. */
int reg_err_code(reg_err_t err);
int reg_err_status(reg_err_t err);

/* ---------------------------------------------------------------------------------------------
 * Schema types and compatibility levels
 * ------------------------------------------------------------------------------------------- */

typedef enum { REG_AVRO = 0, REG_PROTOBUF = 1 } reg_type_t;

#define REG_LEVEL_LIST(X)                                                                          \
    X(BACKWARD)                                                                                    \
    X(BACKWARD_TRANSITIVE) X(FORWARD) X(FORWARD_TRANSITIVE) X(FULL) X(FULL_TRANSITIVE) X(NONE)

typedef enum {
#define REG_LEVEL_ENUM(l) REG_LEVEL_##l,
    REG_LEVEL_LIST(REG_LEVEL_ENUM)
#undef REG_LEVEL_ENUM
        REG_LEVEL__COUNT
} reg_level_t;

/* NULL-terminated level names in enum order (also the enum of registry.compatibility). */
extern const char *const reg_level_names[];
/* Parses a level name (any case). Returns 0, or -1 when it is none of them. */
int reg_level_parse(const char *name, reg_level_t *out);
/* "AVRO" / "PROTOBUF" */
const char *reg_type_name(reg_type_t type);
/* Parses a schemaType (NULL: AVRO). Returns 0, or -1 for anything else (JSON is not served). */
int reg_type_parse(const char *name, reg_type_t *out);

/* ---------------------------------------------------------------------------------------------
 * Configuration (registry.*, log.level)
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    char *listen;              /* host:port, plain HTTP/1.1 */
    char *data_dir;            /* holds registry.log */
    int compatibility;         /* reg_level_t: the global level until PUT /config changes it */
    uint64_t max_body_bytes;   /* a request body */
    uint64_t max_schema_bytes; /* one schema's text */
    int64_t max_schemas;       /* distinct schema ids */
    int64_t max_subjects;
    int64_t max_versions; /* per subject */
    char *protoc;         /* the protoc binary turning .proto text into a descriptor */
    int64_t protoc_timeout_ms;
    int log_level;
} reg_config_t;

/* Registers the registry's keys into cfg with defaults applied to *rc. */
int reg_config_register(sl_config_t *cfg, reg_config_t *rc, char *errbuf, size_t errlen);

/* ---------------------------------------------------------------------------------------------
 * The store: everything the REST API reads and writes, durable in DATA_DIR/registry.log
 * ------------------------------------------------------------------------------------------- */

typedef struct reg_store reg_store_t;

typedef struct {
    const char *data_dir;
    reg_level_t default_level; /* global level when the log holds no global config record */
    size_t max_schema_bytes, max_schemas, max_subjects, max_versions;
    const char *protoc; /* path or name looked up in PATH */
    int64_t protoc_timeout_ms;
} reg_store_conf_t;

/* Opens (creating when missing) data_dir/registry.log, takes an exclusive lock on it (a second
 * registry on the same directory fails), and replays it. A torn last line (no newline, or not
 * valid JSON) is logged, cut off the file and ignored; any other bad line is an error. Returns
 * NULL with errbuf set. conf's strings are copied. */
reg_store_t *reg_store_open(const reg_store_conf_t *conf, char *errbuf, size_t errlen);
/* Closes the log and frees everything; accepts NULL. */
void reg_store_destroy(reg_store_t *st);

/* What a read or write answers. Pointers are into the store, valid until the next write. */
typedef struct {
    int32_t id;
    int32_t version;     /* 0 when not about one subject's version */
    const char *subject; /* idem */
    reg_type_t type;
    const char *schema;        /* the schema text as registered (Avro: compact JSON) */
    const uint8_t *descriptor; /* Protobuf: serialized FileDescriptorProto; NULL for Avro */
    size_t descriptor_len;
} reg_schema_info_t;

/* Error detail buffers: messages name the subject/version/id, never echo schema text. */
typedef struct {
    char msg[512];
} reg_msg_t;

/* POST /subjects/{s}/versions. An identical schema (same type and canonical form) already under
 * s answers its id without a new version; one registered under another subject reuses its id.
 * Otherwise the subject's effective level is checked against its versions (409 with the reasons
 * in msg), the record is appended and fsync'd, then applied. `references` non-zero: refused
 * (42201, not supported). On success *out is filled (id, version, subject). */
reg_err_t reg_store_register(reg_store_t *st, const char *subject, reg_type_t type,
                             const char *schema, size_t schema_len, int has_references,
                             reg_schema_info_t *out, reg_msg_t *msg);
/* POST /subjects/{s}: is this schema registered under s? Fills subject, version, id, schema. */
reg_err_t reg_store_lookup(reg_store_t *st, const char *subject, reg_type_t type,
                           const char *schema, size_t schema_len, reg_schema_info_t *out,
                           reg_msg_t *msg);
/* GET /schemas/ids/{id} */
reg_err_t reg_store_by_id(reg_store_t *st, int32_t id, reg_schema_info_t *out, reg_msg_t *msg);
/* GET /subjects/{s}/versions/{n}; version -1 means latest. */
reg_err_t reg_store_version(reg_store_t *st, const char *subject, int32_t version,
                            reg_schema_info_t *out, reg_msg_t *msg);
/* Subject names, sorted (GET /subjects). *names is malloc'd (free it); the strings are the
 * store's. Subjects that only have a config are not listed. */
size_t reg_store_subjects(reg_store_t *st, const char ***names);
/* GET /subjects/{s}/versions: the count of versions (1..n), or an error. */
reg_err_t reg_store_versions(reg_store_t *st, const char *subject, int32_t *count, reg_msg_t *msg);

/* POST /compatibility/subjects/{s}/versions[/{n|latest}]: version > 0 or -1 (latest) checks
 * against that version with the level's direction; version 0 checks against every version the
 * level requires (the transitive ones: all). *is_compatible is set and the reasons (when not)
 * are in msg. NONE is always compatible. */
reg_err_t reg_store_check(reg_store_t *st, const char *subject, int32_t version, reg_type_t type,
                          const char *schema, size_t schema_len, int *is_compatible,
                          reg_msg_t *msg);

/* GET /config (subject NULL) or /config/{s}: REG_ERR_SUBJECT_CONFIG_NOT_FOUND when s has no
 * level of its own (unless default_to_global). */
reg_err_t reg_store_get_level(reg_store_t *st, const char *subject, int default_to_global,
                              reg_level_t *out, reg_msg_t *msg);
/* PUT /config or /config/{s}: appended and fsync'd before it applies. */
reg_err_t reg_store_set_level(reg_store_t *st, const char *subject, reg_level_t level,
                              reg_msg_t *msg);

/* ---------------------------------------------------------------------------------------------
 * The HTTP server
 * ------------------------------------------------------------------------------------------- */

typedef struct reg_server reg_server_t;

/* Binds the listener and sets up h2o; serves nothing until reg_server_run. Does not own st or
 * rc (they must outlive the server). Returns NULL with errbuf set. */
reg_server_t *reg_server_create(const reg_config_t *rc, reg_store_t *st, char *errbuf,
                                size_t errlen);
/* Runs the loop on the calling thread until SIGTERM or SIGINT (blocked by the caller and
 * delivered through a signalfd), then closes the listener and lets open answers flush. */
void reg_server_run(reg_server_t *srv);
/* Accepts NULL. */
void reg_server_destroy(reg_server_t *srv);

#endif
