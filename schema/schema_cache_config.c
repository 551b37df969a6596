/* The registry cache's configuration table (schema.* keys). */
#include <stddef.h>
#include <string.h>

#include "schema_cache.h"

#define F(key, type, field, def, min, max, doc)                                                    \
    {key, type, offsetof(schema_cache_settings_t, field), def, min, max, NULL, doc}

static const sl_cfg_field_t cache_fields[] = {
    F("schema.registry_url", SL_CFG_STR, registry_url, "http://127.0.0.1:8081", 1, 0,
      "schema registry base URL (Confluent REST API)"),
    F("schema.cache_dir", SL_CFG_STR, cache_dir, NULL, 1, 0,
      "directory for the registry cache snapshot (unset: not persisted; then a registry outage "
      "plus a restart stops ingest)"),
    F("schema.latest_ttl_ms", SL_CFG_MS, latest_ttl_ms, "30s", 100, 24LL * 3600 * 1000,
      "(subject, latest) is refreshed in the background after this; the old answer is served "
      "meanwhile"),
    F("schema.negative_ttl_ms", SL_CFG_MS, negative_ttl_ms, "5s", 100, 3600000,
      "how long an unknown subject / version / id is answered schema_not_found without asking"),
    F("schema.retry_backoff_ms", SL_CFG_MS, retry_backoff_ms, "1s", 1, 600000,
      "after a failed registry request, how long the key is answered unavailable (503)"),
    F("schema.fetch_timeout_ms", SL_CFG_MS, fetch_timeout_ms, "2s", 10, 120000,
      "timeout of one registry request (connect included)"),
    F("schema.fetch_threads", SL_CFG_INT, fetch_threads, "2", 1, 64,
      "threads doing the blocking registry requests"),
    F("schema.max_subjects", SL_CFG_INT, max_subjects, "10000", 2, 10000000,
      "cached (subject, latest) and (subject, version) keys; beyond, new keys answer 503"),
    F("schema.max_schemas", SL_CFG_INT, max_schemas, "10000", 1, 10000000,
      "cached schema ids (compiled schemas are kept for the life of the process)"),
    F("schema.max_schema_bytes", SL_CFG_SIZE, max_schema_bytes, "256KiB", 16, 64LL << 20,
      "longest schema text accepted from the registry"),
    F("schema.max_negative", SL_CFG_INT, max_negative, "10000", 2, 10000000,
      "remembered unknown keys plus keys being fetched (oldest forgotten first)"),
    F("schema.max_waiters", SL_CFG_INT, max_waiters, "100000", 1, 100000000,
      "lookups waiting for a fetch, all keys together; beyond, lookups answer 503"),
};

#define N_FIELDS (sizeof(cache_fields) / sizeof(cache_fields[0]))

int schema_cache_config_register(sl_config_t *cfg, schema_cache_settings_t *s, char *errbuf,
                                 size_t errlen)
{
    return sl_config_add_section(cfg, "schema", cache_fields, N_FIELDS, s, errbuf, errlen);
}

void schema_cache_settings_defaults(schema_cache_settings_t *s)
{
    /* the defaults, kept equal to the table above (test_schema_cache_config checks it) */
    memset(s, 0, sizeof(*s));
    s->registry_url = (char *)"http://127.0.0.1:8081";
    s->cache_dir = NULL;
    s->latest_ttl_ms = 30000;
    s->negative_ttl_ms = 5000;
    s->retry_backoff_ms = 1000;
    s->fetch_timeout_ms = 2000;
    s->fetch_threads = 2;
    s->max_subjects = 10000;
    s->max_schemas = 10000;
    s->max_schema_bytes = 256 * 1024;
    s->max_negative = 10000;
    s->max_waiters = 100000;
}
