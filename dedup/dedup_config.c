/* dedup's configuration table: flat typed settings (dedup.*, redis.*) turned into dedup_conf_t. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedup.h"

#define F(key, type, field, def, min, max, doc)                                                    \
    {key, type, offsetof(dedup_settings_t, field), def, min, max, NULL, doc}

static const sl_cfg_field_t dedup_fields[] = {
    F("dedup.enabled", SL_CFG_BOOL, enabled, "true", 1, 0,
      "drop resends of an event_id (needs Redis)"),
    F("dedup.window", SL_CFG_MS, window_ms, "24h", 60000, 30LL * 24 * 3600 * 1000,
      "how long an accepted event_id is remembered"),
    F("dedup.lease", SL_CFG_MS, lease_ms, "60s", 1000, 3600000,
      "claim held while producing; keep it above kafka.message.timeout.ms"),
    {"dedup.policy", SL_CFG_ENUM, offsetof(dedup_settings_t, policy), "open", 1, 0,
     dedup_policy_names,
     "when Redis cannot answer: open (accept, Bloom filter only, marked degraded) or closed "
     "(503)"},
    {"dedup.layout", SL_CFG_ENUM, offsetof(dedup_settings_t, layout), "keys", 1, 0,
     dedup_layout_names,
     "Redis layout: keys (one key per event) or buckets (fields in hashes, ~5x denser; every "
     "replica must use the same layout, window and bucket count)"},
    F("dedup.buckets", SL_CFG_INT, buckets, "0", 0, 1000000000,
      "layout buckets: hashes per tenant and generation; 0 = dedup.bloom_expected / 100 "
      "(changing it, or dedup.window, forgets what Redis remembers)"),
    F("dedup.bloom_expected", SL_CFG_INT, bloom_expected, "10000000", 1000, 10000000000LL,
      "distinct events per window the Bloom filter is sized for"),
    F("dedup.bloom_fp_ppm", SL_CFG_INT, bloom_fp_ppm, "10000", 1, 200000,
      "Bloom false-positive rate at that load, per million (10000 = 1%)"),
    F("dedup.bloom_generations", SL_CFG_INT, bloom_generations, "4", 2, 64,
      "Bloom generations; each covers window / (generations - 1)"),
    F("dedup.bloom_max_bytes", SL_CFG_SIZE, bloom_max_bytes, "1GiB", 1 << 20, 64LL << 30,
      "refuse to start when the Bloom filter would need more"),
    F("redis.address", SL_CFG_STR, redis_address, "127.0.0.1:6379", 1, 0,
      "Redis for dedup: host:port or unix:/path/to/socket"),
    F("redis.connect_timeout", SL_CFG_MS, connect_timeout_ms, "1s", 10, 60000,
      "a connect taking longer fails and is retried"),
    F("redis.command_timeout", SL_CFG_MS, command_timeout_ms, "1s", 5, 60000,
      "a pipeline whose replies are not all in by then fails (and reconnects)"),
    F("redis.reconnect_min", SL_CFG_MS, reconnect_min_ms, "100ms", 1, 60000,
      "first reconnect backoff, doubling up to redis.reconnect_max"),
    F("redis.reconnect_max", SL_CFG_MS, reconnect_max_ms, "5s", 1, 600000,
      "longest reconnect backoff"),
    F("redis.breaker_failures", SL_CFG_INT, breaker_failures, "3", 1, 1000,
      "consecutive failures that open the circuit breaker"),
    F("redis.breaker_open", SL_CFG_MS, breaker_open_ms, "2s", 10, 600000,
      "while open, batches skip Redis at once (policy applies)"),
    F("redis.max_pending", SL_CFG_INT, max_pending, "4096", 1, 1000000,
      "pipelines waiting for replies per loop thread before new ones fail fast"),
};

int dedup_config_register(sl_config_t *cfg, dedup_settings_t *s, char *errbuf, size_t errlen)
{
    return sl_config_add_section(cfg, "dedup", dedup_fields,
                                 sizeof(dedup_fields) / sizeof(dedup_fields[0]), s, errbuf, errlen);
}

int dedup_conf_from_settings(const dedup_settings_t *s, dedup_conf_t *conf, char *errbuf,
                             size_t errlen)
{
    const char *addr = s->redis_address;
    const char *colon;

    memset(conf, 0, sizeof(*conf));
    conf->enabled = s->enabled;
    conf->window_ms = (uint64_t)s->window_ms;
    conf->lease_ms = (uint64_t)s->lease_ms;
    conf->policy = s->policy;
    conf->layout = s->layout;
    /* ~100 events per hash at the sizing load keeps each one a listpack (Redis packs a hash of
     * up to hash-max-listpack-entries = 128 fields) */
    conf->buckets =
        s->buckets > 0 ? (uint64_t)s->buckets : ((uint64_t)s->bloom_expected + 99) / 100;
    if (conf->buckets == 0)
        conf->buckets = 1;
    conf->bloom.expected_per_window = (uint64_t)s->bloom_expected;
    conf->bloom.fp_rate = (double)s->bloom_fp_ppm / 1e6;
    conf->bloom.generations = (unsigned)s->bloom_generations;
    conf->bloom.window_ms = (uint64_t)s->window_ms;
    conf->bloom.max_bytes = s->bloom_max_bytes;
    if (strncmp(addr, "unix:", 5) == 0) {
        conf->redis.unix_path = addr + 5;
    } else if ((colon = strrchr(addr, ':')) != NULL && colon != addr && atoi(colon + 1) > 0 &&
               atoi(colon + 1) < 65536 && (size_t)(colon - addr) < sizeof(conf->redis_host)) {
        memcpy(conf->redis_host, addr, (size_t)(colon - addr));
        conf->redis.host = conf->redis_host;
        conf->redis.port = atoi(colon + 1);
    } else {
        snprintf(errbuf, errlen, "redis.address: \"%s\" is not host:port or unix:/path", addr);
        return -1;
    }
    conf->redis.connect_timeout_ms = (uint64_t)s->connect_timeout_ms;
    conf->redis.command_timeout_ms = (uint64_t)s->command_timeout_ms;
    conf->redis.reconnect_min_ms = (uint64_t)s->reconnect_min_ms;
    conf->redis.reconnect_max_ms = (uint64_t)s->reconnect_max_ms;
    conf->redis.breaker_failures = (unsigned)s->breaker_failures;
    conf->redis.breaker_open_ms = (uint64_t)s->breaker_open_ms;
    conf->redis.max_pending = (size_t)s->max_pending;
    if (conf->lease_ms >= conf->window_ms) {
        snprintf(errbuf, errlen, "dedup.lease must be shorter than dedup.window");
        return -1;
    }
    return 0;
}
