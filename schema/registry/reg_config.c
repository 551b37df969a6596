/* The registry's configuration table: every key, its type, default, bounds and meaning. */
#include <stddef.h>

#include "registry.h"
#include "sl_log.h"

#define F(key, type, field, def, min, max, doc)                                                    \
    {                                                                                              \
        key, type, offsetof(reg_config_t, field), def, min, max, NULL, doc                         \
    }

static const sl_cfg_field_t reg_fields[] = {
    F("registry.listen", SL_CFG_STR, listen, "127.0.0.1:8081", 1, 0,
      "HTTP listener host:port (plain HTTP/1.1)"),
    F("registry.data_dir", SL_CFG_STR, data_dir, "./registry-data", 1, 0,
      "directory of registry.log, the append-only store (created when missing)"),
    {"registry.compatibility", SL_CFG_ENUM, offsetof(reg_config_t, compatibility), "BACKWARD", 1, 0,
     reg_level_names, "global compatibility level until PUT /config changes it"},
    F("registry.max_body_bytes", SL_CFG_SIZE, max_body_bytes, "2MiB", 1024, 64LL << 20,
      "largest request body (a schema JSON-escaped inside {\"schema\": ...})"),
    F("registry.max_schema_bytes", SL_CFG_SIZE, max_schema_bytes, "1MiB", 64, 16LL << 20,
      "largest schema text"),
    F("registry.max_schemas", SL_CFG_INT, max_schemas, "100000", 1, 10000000,
      "distinct schemas (global ids) the registry holds"),
    F("registry.max_subjects", SL_CFG_INT, max_subjects, "10000", 1, 1000000, "subjects"),
    F("registry.max_versions", SL_CFG_INT, max_versions, "1000", 1, 100000, "versions per subject"),
    F("registry.protoc", SL_CFG_STR, protoc, "protoc", 1, 0,
      "protoc binary (path, or a name looked up in PATH) compiling Protobuf schemas"),
    F("registry.protoc_timeout", SL_CFG_MS, protoc_timeout_ms, "10s", 100, 600000,
      "protoc is killed after this long (the schema is then refused with 50001)"),
    {"log.level", SL_CFG_ENUM, offsetof(reg_config_t, log_level), "info", 1, 0, sl_log_level_names,
     "log threshold"},
};

int reg_config_register(sl_config_t *cfg, reg_config_t *rc, char *errbuf, size_t errlen)
{
    return sl_config_add_section(cfg, "registry", reg_fields,
                                 sizeof(reg_fields) / sizeof(reg_fields[0]), rc, errbuf, errlen);
}
