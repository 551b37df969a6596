/* Unit tests for common/sl_config.c: typed parsing, bounds, the file/env/argv sources, their
 * precedence, passthrough keys, help and effective output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sl_config.h"

typedef struct {
    char *name;
    char *write_key;
    char *tls_cert;
    int64_t max_events;
    int64_t offset;
    int is_gzip;
    uint64_t max_body_bytes;
    uint64_t buffer_bytes;
    int64_t timeout_ms;
    int level;
} conf_t;

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

static const sl_cfg_field_t fields[] = {
    {"gateway.name", SL_CFG_STR, offsetof(conf_t, name), "sluice", 0, -1, NULL, "Instance name."},
    {"gateway.write_key", SL_CFG_STR, offsetof(conf_t, write_key), "dev-key", 0, -1, NULL,
     "Write key for the dev source."},
    {"gateway.tls_cert", SL_CFG_STR, offsetof(conf_t, tls_cert), NULL, 0, -1, NULL,
     "TLS certificate path."},
    {"gateway.max_events", SL_CFG_INT, offsetof(conf_t, max_events), "1000", 1, 100000, NULL,
     "Maximum events in one batch."},
    {"gateway.offset", SL_CFG_INT, offsetof(conf_t, offset), "0", 1, 0, NULL, "Unbounded."},
    {"gateway.gzip", SL_CFG_BOOL, offsetof(conf_t, is_gzip), "on", 0, -1, NULL, "Accept gzip."},
    {"gateway.max_body_bytes", SL_CFG_SIZE, offsetof(conf_t, max_body_bytes), "1MiB", 1,
     64 * 1024 * 1024, NULL, "Largest body."},
    {"gateway.buffer_bytes", SL_CFG_SIZE, offsetof(conf_t, buffer_bytes), "0", 1, 0, NULL,
     "Unbounded size."},
    {"gateway.timeout_ms", SL_CFG_MS, offsetof(conf_t, timeout_ms), "15s", 0, 3600000, NULL,
     "Request timeout."},
    {"log.level", SL_CFG_ENUM, offsetof(conf_t, level), "info", 0, -1, levels, "Minimum level."},
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

typedef struct {
    sl_config_t *cfg;
    conf_t conf;
    char err[512];
    char path[64];
    int has_file;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->cfg = sl_config_create();
    assert_int_equal(sl_config_add_section(fx->cfg, "gateway", fields, N_FIELDS, &fx->conf, fx->err,
                                           sizeof(fx->err)),
                     0);
    assert_int_equal(sl_config_add_passthrough(fx->cfg, "kafka.", "librdkafka properties."), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    sl_config_destroy(fx->cfg);
    if (fx->has_file)
        unlink(fx->path);
    free(fx);
    return 0;
}

static int set(fixture_t *fx, const char *key, const char *value)
{
    fx->err[0] = '\0';
    return sl_config_set(fx->cfg, key, value, "--set", fx->err, sizeof(fx->err));
}

static const char *write_temp(fixture_t *fx, const char *content)
{
    strcpy(fx->path, "/tmp/test_sl_config_XXXXXX");
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    fx->has_file = 1;
    size_t len = strlen(content);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    return fx->path;
}

static int load_file(fixture_t *fx, const char *content)
{
    fx->err[0] = '\0';
    return sl_config_load_file(fx->cfg, write_temp(fx, content), fx->err, sizeof(fx->err));
}

static int load_env(fixture_t *fx, char *const *envp)
{
    fx->err[0] = '\0';
    return sl_config_load_env(fx->cfg, envp, fx->err, sizeof(fx->err));
}

/* Runs sl_config_load_args with argv (NULL-terminated) and returns what it printed (malloc'd). */
static char *run_args(fixture_t *fx, char **argv, char *const *envp, sl_config_action_t *action)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    fx->err[0] = '\0';
    *action =
        sl_config_load_args(fx->cfg, "sluice", argc, argv, envp, out, fx->err, sizeof(fx->err));
    fclose(out);
    return buf;
}

static char *effective(const sl_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    sl_config_print_effective(cfg, out);
    fclose(out);
    return buf;
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("expected \"%s\" in \"%s\"", (needle), (hay));                                \
    } while (0)

#define assert_not_contains(hay, needle)                                                           \
    do {                                                                                           \
        if (strstr((hay), (needle)) != NULL)                                                       \
            fail_msg("did not expect \"%s\" in \"%s\"", (needle), (hay));                          \
    } while (0)

/* Expects `rc == -1` and errbuf equal to before + the temp file path + after. */
static void assert_file_error(fixture_t *fx, int rc, const char *before, const char *after)
{
    char want[512];
    assert_int_equal(rc, -1);
    snprintf(want, sizeof(want), "%s%s%s", before, fx->path, after);
    assert_string_equal(fx->err, want);
}

/* ---- registration and defaults ----------------------------------------------------------- */

static void test_defaults_applied(void **state)
{
    fixture_t *fx = *state;
    assert_string_equal(fx->conf.name, "sluice");
    assert_string_equal(fx->conf.write_key, "dev-key");
    assert_null(fx->conf.tls_cert);
    assert_int_equal(fx->conf.max_events, 1000);
    assert_int_equal(fx->conf.offset, 0);
    assert_int_equal(fx->conf.is_gzip, 1);
    assert_int_equal(fx->conf.max_body_bytes, 1048576);
    assert_int_equal(fx->conf.buffer_bytes, 0);
    assert_int_equal(fx->conf.timeout_ms, 15000);
    assert_int_equal(fx->conf.level, 1);
}

static void test_bad_default_rejected(void **state)
{
    static const sl_cfg_field_t bad[] = {
        {"x.name", SL_CFG_STR, offsetof(conf_t, name), "n", 0, -1, NULL, ""},
        {"x.n", SL_CFG_INT, offsetof(conf_t, max_events), "0", 1, 10, NULL, ""},
    };
    conf_t c;
    char err[256];
    memset(&c, 0, sizeof(c));
    sl_config_t *cfg = sl_config_create();
    assert_int_equal(sl_config_add_section(cfg, "x", bad, 2, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "x.n: 0 is out of range [1, 10] (from default)");
    assert_null(c.name); /* the STR default applied before the failure was undone */
    /* nothing was registered */
    assert_int_equal(sl_config_set(cfg, "x.n", "5", "--set", err, sizeof(err)), -1);
    assert_string_equal(err, "x.n: unknown key (from --set)");
    sl_config_destroy(cfg);
    (void)state;
}

static void test_unparsable_default_rejected(void **state)
{
    static const sl_cfg_field_t bad[] = {
        {"x.level", SL_CFG_ENUM, offsetof(conf_t, level), "loud", 0, -1, levels, ""},
    };
    conf_t c;
    char err[256];
    sl_config_t *cfg = sl_config_create();
    assert_int_equal(sl_config_add_section(cfg, "x", bad, 1, &c, err, sizeof(err)), -1);
    assert_string_equal(err,
                        "x.level: \"loud\" is not one of debug, info, warn, error (from default)");
    sl_config_destroy(cfg);
    (void)state;
}

static void test_duplicate_key_rejected(void **state)
{
    fixture_t *fx = *state;
    static const sl_cfg_field_t dup[] = {
        {"gateway.name", SL_CFG_STR, 0, "x", 0, -1, NULL, ""},
    };
    char *other = NULL;
    assert_int_equal(
        sl_config_add_section(fx->cfg, "other", dup, 1, &other, fx->err, sizeof(fx->err)), -1);
    assert_string_equal(fx->err, "gateway.name: key registered twice");
    assert_null(other);
    assert_string_equal(fx->conf.name, "sluice");
}

static void test_env_name_collision_rejected(void **state)
{
    fixture_t *fx = *state;
    static const sl_cfg_field_t clash[] = {
        {"gateway.max.events", SL_CFG_INT, 0, "1", 0, -1, NULL, ""},
    };
    int64_t v = 0;
    assert_int_equal(
        sl_config_add_section(fx->cfg, "other", clash, 1, &v, fx->err, sizeof(fx->err)), -1);
    assert_string_equal(fx->err,
                        "gateway.max.events: same key or environment name as gateway.max_events");
}

static void test_table_errors_rejected(void **state)
{
    static const sl_cfg_field_t no_def[] = {
        {"x.n", SL_CFG_INT, 0, NULL, 0, -1, NULL, ""},
    };
    static const sl_cfg_field_t no_names[] = {
        {"x.e", SL_CFG_ENUM, 0, "a", 0, -1, NULL, ""},
    };
    static const sl_cfg_field_t twice[] = {
        {"x.a", SL_CFG_INT, 0, "1", 0, -1, NULL, ""},
        {"x.a", SL_CFG_INT, 0, "1", 0, -1, NULL, ""},
    };
    int64_t v;
    char err[256];
    sl_config_t *cfg = sl_config_create();
    assert_int_equal(sl_config_add_section(cfg, "x", no_def, 1, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "x.n: only string keys may have no default");
    assert_int_equal(sl_config_add_section(cfg, "x", no_names, 1, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "x.e: an enum needs enum_names");
    assert_int_equal(sl_config_add_section(cfg, "x", twice, 2, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "x.a: same key or environment name as x.a");
    sl_config_destroy(cfg);
    (void)state;
}

static void test_passthrough_prefix_checked(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(sl_config_add_passthrough(fx->cfg, "kafka.", "again"), -1);
    assert_int_equal(sl_config_add_passthrough(fx->cfg, "redis", "no dot"), -1);
    assert_int_equal(sl_config_add_passthrough(fx->cfg, ".", "empty"), -1);
    assert_int_equal(sl_config_add_passthrough(fx->cfg, NULL, "null"), -1);
    assert_int_equal(sl_config_add_passthrough(fx->cfg, "redis.", NULL), 0);
}

/* ---- STR and INT ------------------------------------------------------------------------- */

static void test_str_replaces_old(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "gateway.name", "edge-1"), 0);
    assert_string_equal(fx->conf.name, "edge-1");
    assert_int_equal(set(fx, "gateway.name", ""), 0); /* the old copy is freed (ASan checks) */
    assert_string_equal(fx->conf.name, "");
    assert_int_equal(set(fx, "gateway.tls_cert", "/etc/cert.pem"), 0);
    assert_string_equal(fx->conf.tls_cert, "/etc/cert.pem");
}

static void test_int_ok(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "gateway.max_events", "42"), 0);
    assert_int_equal(fx->conf.max_events, 42);
    assert_int_equal(set(fx, "gateway.max_events", "007"), 0);
    assert_int_equal(fx->conf.max_events, 7);
    assert_int_equal(set(fx, "gateway.offset", "-7"), 0);
    assert_int_equal(fx->conf.offset, -7);
    assert_int_equal(set(fx, "gateway.offset", "9223372036854775807"), 0);
    assert_true(fx->conf.offset == INT64_MAX);
    assert_int_equal(set(fx, "gateway.offset", "-9223372036854775808"), 0);
    assert_true(fx->conf.offset == INT64_MIN);
}

static void test_int_syntax_errors(void **state)
{
    fixture_t *fx = *state;
    static const char *const bad[] = {"12x", "",     "+5",  " 5",  "5 ",
                                      "-",   "0x10", "1e3", "1.0", "--1"};
    char want[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(set(fx, "gateway.max_events", bad[i]), -1);
        snprintf(want, sizeof(want), "gateway.max_events: \"%s\" is not an integer (from --set)",
                 bad[i]);
        assert_string_equal(fx->err, want);
    }
    assert_int_equal(fx->conf.max_events, 1000);
}

static void test_int_overflow(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "gateway.offset", "9223372036854775808"), -1);
    assert_string_equal(fx->err,
                        "gateway.offset: 9223372036854775808 does not fit in a 64-bit integer "
                        "(from --set)");
    assert_int_equal(set(fx, "gateway.offset", "-9223372036854775809"), -1);
    assert_contains(fx->err, "does not fit in a 64-bit integer");
    assert_int_equal(set(fx, "gateway.offset", "99999999999999999999999x"), -1);
    assert_contains(fx->err, "is not an integer"); /* junk wins over overflow */
    assert_int_equal(fx->conf.offset, 0);
}

static void test_int_bounds(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "gateway.max_events", "1"), 0);
    assert_int_equal(fx->conf.max_events, 1);
    assert_int_equal(set(fx, "gateway.max_events", "100000"), 0);
    assert_int_equal(fx->conf.max_events, 100000);
    assert_int_equal(set(fx, "gateway.max_events", "0"), -1);
    assert_string_equal(fx->err, "gateway.max_events: 0 is out of range [1, 100000] (from --set)");
    assert_int_equal(set(fx, "gateway.max_events", "100001"), -1);
    assert_string_equal(fx->err,
                        "gateway.max_events: 100001 is out of range [1, 100000] (from --set)");
    assert_int_equal(set(fx, "gateway.max_events", "-1"), -1);
    assert_string_equal(fx->err, "gateway.max_events: -1 is out of range [1, 100000] (from --set)");
    assert_int_equal(fx->conf.max_events, 100000); /* failed sets keep the old value */
}

/* ---- BOOL -------------------------------------------------------------------------------- */

static void test_bool_words(void **state)
{
    fixture_t *fx = *state;
    static const char *const yes[] = {"true", "1", "yes", "on", "TRUE", "Yes", "oN"};
    static const char *const no[] = {"false", "0", "no", "off", "FALSE", "No", "oFf"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        fx->conf.is_gzip = 0;
        assert_int_equal(set(fx, "gateway.gzip", yes[i]), 0);
        assert_int_equal(fx->conf.is_gzip, 1);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        fx->conf.is_gzip = 1;
        assert_int_equal(set(fx, "gateway.gzip", no[i]), 0);
        assert_int_equal(fx->conf.is_gzip, 0);
    }
}

static void test_bool_bad(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "gateway.gzip", "maybe"), -1);
    assert_string_equal(
        fx->err,
        "gateway.gzip: \"maybe\" is not a boolean (true/false, yes/no, on/off, 1/0) (from --set)");
    assert_int_equal(set(fx, "gateway.gzip", ""), -1);
    assert_int_equal(set(fx, "gateway.gzip", "2"), -1);
    assert_int_equal(set(fx, "gateway.gzip", "true "), -1);
    assert_int_equal(fx->conf.is_gzip, 1);
}

/* ---- SIZE -------------------------------------------------------------------------------- */

static void test_size_suffixes(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } cases[] = {
        {"0", 0},
        {"512", 512},
        {"7B", 7},
        {"2KB", 2000},
        {"3MB", 3000000},
        {"4GB", 4000000000},
        {"64KiB", 65536},
        {"4MiB", 4194304},
        {"5GiB", 5368709120},
        {"64 KiB", 65536},
        {"1 B", 1},
        {"18446744073709551615", UINT64_MAX},
        {"17179869183GiB", 17179869183ull << 30},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(set(fx, "gateway.buffer_bytes", cases[i].text), 0);
        assert_true(fx->conf.buffer_bytes == cases[i].bytes);
    }
}

static void test_size_syntax_errors(void **state)
{
    fixture_t *fx = *state;
    static const char *const bad[] = {"64  KiB", "64kib",  "64k",   "64K",  "64 ",
                                      "-1",      "1.5MiB", "KiB",   "",     " 64",
                                      "64KiBx",  "64TB",   "64 B ", "64\tB"};
    char want[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(set(fx, "gateway.buffer_bytes", bad[i]), -1);
        snprintf(want, sizeof(want),
                 "gateway.buffer_bytes: \"%s\" is not a size (bytes, optionally with one of B, KB, "
                 "MB, GB, KiB, MiB, GiB) (from --set)",
                 bad[i]);
        assert_string_equal(fx->err, want);
    }
    assert_int_equal(fx->conf.buffer_bytes, 0);
}

static void test_size_overflow(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "gateway.buffer_bytes", "18446744073709551616"), -1);
    assert_string_equal(fx->err,
                        "gateway.buffer_bytes: 18446744073709551616 does not fit in 64 bits "
                        "(from --set)");
    assert_int_equal(set(fx, "gateway.buffer_bytes", "17179869184GiB"), -1);
    assert_contains(fx->err, "17179869184GiB does not fit in 64 bits");
}

static void test_size_bounds(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "gateway.max_body_bytes", "64MiB"), 0);
    assert_int_equal(fx->conf.max_body_bytes, 67108864);
    assert_int_equal(set(fx, "gateway.max_body_bytes", "1"), 0);
    assert_int_equal(set(fx, "gateway.max_body_bytes", "0"), -1);
    assert_string_equal(fx->err,
                        "gateway.max_body_bytes: 0 is out of range [1, 67108864] (from --set)");
    assert_int_equal(set(fx, "gateway.max_body_bytes", "128MiB"), -1);
    assert_string_equal(fx->err, "gateway.max_body_bytes: 128MiB (134217728 bytes) is out of "
                                 "range [1, 67108864] (from --set)");
    assert_int_equal(set(fx, "gateway.max_body_bytes", "18446744073709551615"), -1);
    assert_contains(fx->err, "is out of range [1, 67108864]");
    assert_int_equal(fx->conf.max_body_bytes, 1);
}

/* ---- MS ---------------------------------------------------------------------------------- */

static void test_ms_suffixes(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"0", 0},       {"250", 250},    {"250ms", 250}, {"15s", 15000},
        {"2m", 120000}, {"1h", 3600000}, {"2 s", 2000},  {"0h", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(set(fx, "gateway.timeout_ms", cases[i].text), 0);
        assert_int_equal(fx->conf.timeout_ms, cases[i].ms);
    }
}

static void test_ms_syntax_errors(void **state)
{
    fixture_t *fx = *state;
    static const char *const bad[] = {"5d", "s",    "1.5s", "",     "ms",
                                      " 5", "5  s", "5S",   "5sec", "5 "};
    char want[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(set(fx, "gateway.timeout_ms", bad[i]), -1);
        snprintf(want, sizeof(want),
                 "gateway.timeout_ms: \"%s\" is not a duration (milliseconds, or a number with "
                 "ms, s, m or h) (from --set)",
                 bad[i]);
        assert_string_equal(fx->err, want);
    }
    assert_int_equal(fx->conf.timeout_ms, 15000);
}

static void test_ms_overflow_and_bounds(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "gateway.timeout_ms", "9223372036854775807h"), -1);
    assert_string_equal(fx->err, "gateway.timeout_ms: 9223372036854775807h does not fit in 64 "
                                 "bits of milliseconds (from --set)");
    assert_int_equal(set(fx, "gateway.timeout_ms", "99999999999999999999"), -1);
    assert_contains(fx->err, "does not fit in 64 bits of milliseconds");
    assert_int_equal(set(fx, "gateway.timeout_ms", "2h"), -1);
    assert_string_equal(fx->err, "gateway.timeout_ms: 2h (7200000 ms) is out of range "
                                 "[0, 3600000] (from --set)");
    assert_int_equal(set(fx, "gateway.timeout_ms", "-5"), -1);
    assert_string_equal(fx->err,
                        "gateway.timeout_ms: -5 is out of range [0, 3600000] (from --set)");
    assert_int_equal(set(fx, "gateway.timeout_ms", "-1s"), -1);
    assert_contains(fx->err, "-1s (-1000 ms) is out of range");
    assert_int_equal(fx->conf.timeout_ms, 15000);
}

/* ---- ENUM and unknown keys ----------------------------------------------------------------- */

static void test_enum_ok(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "log.level", "warn"), 0);
    assert_int_equal(fx->conf.level, 2);
    assert_int_equal(set(fx, "log.level", "ERROR"), 0);
    assert_int_equal(fx->conf.level, 3);
    assert_int_equal(set(fx, "log.level", "Debug"), 0);
    assert_int_equal(fx->conf.level, 0);
}

static void test_enum_bad(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "log.level", "loud"), -1);
    assert_string_equal(fx->err,
                        "log.level: \"loud\" is not one of debug, info, warn, error (from --set)");
    assert_int_equal(set(fx, "log.level", ""), -1);
    assert_int_equal(set(fx, "log.level", "info "), -1);
    assert_int_equal(fx->conf.level, 1);
}

static void test_unknown_key_suggests(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "gateway.max_event", "5"), -1);
    assert_string_equal(fx->err, "gateway.max_event: unknown key (from --set); did you mean "
                                 "gateway.max_events?");
    assert_int_equal(set(fx, "log.levle", "info"), -1);
    assert_string_equal(fx->err, "log.levle: unknown key (from --set); did you mean log.level?");
}

static void test_unknown_key_far(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "completely.different", "5"), -1);
    assert_string_equal(fx->err, "completely.different: unknown key (from --set)");
    assert_int_equal(set(fx, "gateway.maximum_events", "5"), -1); /* 4 edits away */
    assert_string_equal(fx->err, "gateway.maximum_events: unknown key (from --set)");
}

static void test_set_null_arguments(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(sl_config_set(fx->cfg, "gateway.name", NULL, "x", fx->err, sizeof(fx->err)),
                     -1);
    assert_string_equal(fx->err, "gateway.name: no value (from x)");
    assert_int_equal(sl_config_set(fx->cfg, NULL, "v", "x", fx->err, sizeof(fx->err)), -1);
    /* a NULL errbuf is allowed */
    assert_int_equal(sl_config_set(fx->cfg, "log.level", "loud", "x", NULL, 0), -1);
    assert_int_equal(sl_config_set(fx->cfg, "log.level", "warn", NULL, NULL, 0), 0);
}

static void test_error_truncated_to_errlen(void **state)
{
    fixture_t *fx = *state;
    char small[16];
    assert_int_equal(sl_config_set(fx->cfg, "log.level", "loud", "--set", small, sizeof(small)),
                     -1);
    assert_string_equal(small, "log.level: \"lou");
}

/* ---- passthrough ------------------------------------------------------------------------- */

static void test_passthrough_order_and_override(void **state)
{
    fixture_t *fx = *state;
    const char *const *keys;
    const char *const *values;
    assert_int_equal(set(fx, "kafka.linger.ms", "5"), 0);
    assert_int_equal(set(fx, "kafka.acks", "all"), 0);
    assert_int_equal(set(fx, "kafka.linger.ms", "10"), 0);
    assert_int_equal(sl_config_passthrough(fx->cfg, "kafka.", &keys, &values), 2);
    assert_string_equal(keys[0], "linger.ms");
    assert_string_equal(values[0], "10");
    assert_string_equal(keys[1], "acks");
    assert_string_equal(values[1], "all");
}

static void test_passthrough_unknown_prefix(void **state)
{
    fixture_t *fx = *state;
    static const char *const sentinel[] = {"untouched", NULL};
    const char *const *keys = sentinel;
    const char *const *values = sentinel;
    assert_int_equal(sl_config_passthrough(fx->cfg, "redis.", &keys, &values), 0);
    assert_null(keys);
    assert_null(values);
    assert_int_equal(sl_config_passthrough(fx->cfg, "kafka.", NULL, NULL), 0);
}

static void test_passthrough_empty_name(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "kafka.", "1"), -1);
    assert_string_equal(fx->err, "kafka.: a name is needed after the prefix (from --set)");
}

static void test_typed_key_wins_over_passthrough(void **state)
{
    static const sl_cfg_field_t kf[] = {
        {"kafka.topic", SL_CFG_STR, 0, "events", 0, -1, NULL, "Topic."},
    };
    char *topic = NULL;
    char err[256];
    char *envp[] = {"SLUICE_KAFKA_TOPIC=from-env", "SLUICE_KAFKA_ACKS=all", NULL};
    sl_config_t *cfg = sl_config_create();
    assert_int_equal(sl_config_add_section(cfg, "kafka", kf, 1, &topic, err, sizeof(err)), 0);
    assert_int_equal(sl_config_add_passthrough(cfg, "kafka.", ""), 0);
    assert_int_equal(sl_config_set(cfg, "kafka.topic", "t1", "--set", err, sizeof(err)), 0);
    assert_string_equal(topic, "t1");
    assert_int_equal(sl_config_load_env(cfg, envp, err, sizeof(err)), 0);
    assert_string_equal(topic, "from-env");
    assert_int_equal(sl_config_passthrough(cfg, "kafka.", NULL, NULL), 1); /* acks only */
    sl_config_destroy(cfg);
    assert_null(topic);
    (void)state;
}

/* ---- file -------------------------------------------------------------------------------- */

static void test_file_basic(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_file(fx, "# comment line\n"
                                   "gateway.name = edge-1\n"
                                   "   gateway.max_events=77   \n"
                                   "log.level = warn # trailing comment\n"
                                   "\n"
                                   "   \t\n"
                                   "\t# indented comment\n"
                                   "gateway.timeout_ms = 2s\n"
                                   "gateway.max_body_bytes = 64 KiB\n"
                                   "kafka.linger.ms = 5\n"
                                   "gateway.gzip = off"),
                     0);
    assert_string_equal(fx->conf.name, "edge-1");
    assert_int_equal(fx->conf.max_events, 77);
    assert_int_equal(fx->conf.level, 2);
    assert_int_equal(fx->conf.timeout_ms, 2000);
    assert_int_equal(fx->conf.max_body_bytes, 65536);
    assert_int_equal(fx->conf.is_gzip, 0);
    const char *const *keys;
    const char *const *values;
    assert_int_equal(sl_config_passthrough(fx->cfg, "kafka.", &keys, &values), 1);
    assert_string_equal(keys[0], "linger.ms");
    assert_string_equal(values[0], "5");
}

static void test_file_quoting(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_file(fx, "gateway.name = \"a # not a comment\"   # but this is\n"
                                   "gateway.write_key = \"say \\\"hi\\\" \\\\ ok\"\n"
                                   "gateway.tls_cert = \"  padded  \"\n"),
                     0);
    assert_string_equal(fx->conf.name, "a # not a comment");
    assert_string_equal(fx->conf.write_key, "say \"hi\" \\ ok");
    assert_string_equal(fx->conf.tls_cert, "  padded  ");
}

static void test_file_empty_values(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_file(fx, "gateway.name = \"\"\ngateway.tls_cert =\n"), 0);
    assert_string_equal(fx->conf.name, "");
    assert_string_equal(fx->conf.tls_cert, "");
}

static void test_file_crlf_and_later_line_wins(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(load_file(fx, "gateway.max_events = 5\r\n"
                                   "log.level = debug\r\n"
                                   "gateway.max_events = 6\r\n"),
                     0);
    assert_int_equal(fx->conf.max_events, 6);
    assert_int_equal(fx->conf.level, 0);
}

static void test_file_line_without_equals(void **state)
{
    fixture_t *fx = *state;
    assert_file_error(fx, load_file(fx, "gateway.name = x\nthis is not valid\n"), "",
                      ":2: expected \"key = value\"");
}

static void test_file_hash_before_equals(void **state)
{
    fixture_t *fx = *state;
    assert_file_error(fx, load_file(fx, "gateway.name # = x\n"), "",
                      ":1: expected \"key = value\"");
}

static void test_file_missing_key(void **state)
{
    fixture_t *fx = *state;
    assert_file_error(fx, load_file(fx, "\n  = 5\n"), "", ":2: missing key before '='");
}

static void test_file_unknown_key(void **state)
{
    fixture_t *fx = *state;
    assert_file_error(fx, load_file(fx, "# x\n\ngateway.nmae = x\n"),
                      "gateway.nmae: unknown key (from ", ":3); did you mean gateway.name?");
}

static void test_file_bad_value(void **state)
{
    fixture_t *fx = *state;
    assert_file_error(fx, load_file(fx, "log.level = loud\n"),
                      "log.level: \"loud\" is not one of debug, info, warn, error (from ", ":1)");
}

static void test_file_quote_errors(void **state)
{
    fixture_t *fx = *state;
    assert_file_error(fx, load_file(fx, "gateway.name = \"abc\n"), "", ":1: missing closing quote");
    unlink(fx->path);
    assert_file_error(fx, load_file(fx, "gateway.name = \"abc\" def\n"), "",
                      ":1: unexpected text after the closing quote");
    unlink(fx->path);
    assert_file_error(fx, load_file(fx, "gateway.name = \"a\\nb\"\n"), "",
                      ":1: only \\\" and \\\\ may be escaped in quotes");
    unlink(fx->path);
    assert_file_error(fx, load_file(fx, "gateway.name = \"a\\\"\n"), "",
                      ":1: missing closing quote");
    assert_string_equal(fx->conf.name, "sluice");
}

static void test_file_missing(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(
        sl_config_load_file(fx->cfg, "/nonexistent/sluice.conf", fx->err, sizeof(fx->err)), -1);
    assert_string_equal(fx->err, "cannot open config file /nonexistent/sluice.conf: No such file "
                                 "or directory");
}

static void test_file_nul_byte(void **state)
{
    fixture_t *fx = *state;
    strcpy(fx->path, "/tmp/test_sl_config_XXXXXX");
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    fx->has_file = 1;
    assert_int_equal(write(fd, "gateway.name = a\0b\n", 19), 19);
    close(fd);
    assert_file_error(fx, sl_config_load_file(fx->cfg, fx->path, fx->err, sizeof(fx->err)), "",
                      ":1: NUL byte in line");
}

/* ---- environment ------------------------------------------------------------------------- */

static void test_env_maps_keys(void **state)
{
    fixture_t *fx = *state;
    char *envp[] = {"PATH=/bin",
                    "SLUICE_GATEWAY_MAX_EVENTS=42",
                    "SLUICE_GATEWAY_NAME=edge 1",
                    "SLUICE_CONFIG=/nonexistent",
                    "sluice_log_level=debug",
                    "SLUICE_NO_EQUALS_SIGN",
                    "SLUICE_LOG_LEVEL=error",
                    NULL};
    assert_int_equal(load_env(fx, envp), 0);
    assert_int_equal(fx->conf.max_events, 42);
    assert_string_equal(fx->conf.name, "edge 1");
    assert_int_equal(fx->conf.level, 3);
    assert_int_equal(load_env(fx, NULL), 0);
}

static void test_env_passthrough(void **state)
{
    fixture_t *fx = *state;
    char *envp[] = {"SLUICE_KAFKA_LINGER_MS=5", "SLUICE_KAFKA_SASL_PASSWORD=pw=with=equals", NULL};
    const char *const *keys;
    const char *const *values;
    assert_int_equal(load_env(fx, envp), 0);
    assert_int_equal(sl_config_passthrough(fx->cfg, "kafka.", &keys, &values), 2);
    assert_string_equal(keys[0], "linger.ms");
    assert_string_equal(values[0], "5");
    assert_string_equal(keys[1], "sasl.password");
    assert_string_equal(values[1], "pw=with=equals");
}

static void test_env_passthrough_empty_name(void **state)
{
    fixture_t *fx = *state;
    char *envp[] = {"SLUICE_KAFKA_=1", NULL};
    assert_int_equal(load_env(fx, envp), -1);
    assert_string_equal(fx->err,
                        "kafka.: a name is needed after the prefix (from env SLUICE_KAFKA_)");
}

static void test_env_unknown_suggests(void **state)
{
    fixture_t *fx = *state;
    char *envp[] = {"SLUICE_GATEWAY_MAX_EVENT=1", NULL};
    assert_int_equal(load_env(fx, envp), -1);
    assert_string_equal(fx->err, "SLUICE_GATEWAY_MAX_EVENT: no config key maps to this "
                                 "environment variable; did you mean SLUICE_GATEWAY_MAX_EVENTS?");
}

static void test_env_unknown(void **state)
{
    fixture_t *fx = *state;
    char *envp[] = {"SLUICE_X=1", NULL};
    assert_int_equal(load_env(fx, envp), -1);
    assert_string_equal(fx->err, "SLUICE_X: no config key maps to this environment variable");
    char *kafka_no_underscore[] = {"SLUICE_KAFKA=1", NULL};
    assert_int_equal(load_env(fx, kafka_no_underscore), -1);
    assert_contains(fx->err, "SLUICE_KAFKA: no config key maps to this environment variable");
}

static void test_env_bad_value(void **state)
{
    fixture_t *fx = *state;
    char *envp[] = {"SLUICE_LOG_LEVEL=loud", NULL};
    assert_int_equal(load_env(fx, envp), -1);
    assert_string_equal(
        fx->err,
        "log.level: \"loud\" is not one of debug, info, warn, error (from env SLUICE_LOG_LEVEL)");
    char *range[] = {"SLUICE_GATEWAY_MAX_EVENTS=0", NULL};
    assert_int_equal(load_env(fx, range), -1);
    assert_string_equal(fx->err, "gateway.max_events: 0 is out of range [1, 100000] (from env "
                                 "SLUICE_GATEWAY_MAX_EVENTS)");
}

/* ---- command line ------------------------------------------------------------------------ */

static void test_args_none(void **state)
{
    fixture_t *fx = *state;
    char *argv[] = {"sluice", NULL};
    sl_config_action_t action;
    char *out = run_args(fx, argv, NULL, &action);
    assert_int_equal(action, SL_CONFIG_RUN);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(fx->conf.max_events, 1000);
}

static void test_args_set_forms(void **state)
{
    fixture_t *fx = *state;
    char *argv[] = {
        "sluice",           "--set", "gateway.max_events=5", "--set=log.level=warn", "--set",
        "gateway.name=a=b", NULL};
    sl_config_action_t action;
    free(run_args(fx, argv, NULL, &action));
    assert_int_equal(action, SL_CONFIG_RUN);
    assert_int_equal(fx->conf.max_events, 5);
    assert_int_equal(fx->conf.level, 2);
    assert_string_equal(fx->conf.name, "a=b");
}

static void test_args_config_forms(void **state)
{
    fixture_t *fx = *state;
    const char *path = write_temp(fx, "gateway.max_events = 11\n");
    char opt[128];
    snprintf(opt, sizeof(opt), "--config=%s", path);
    char *argv1[] = {"sluice", "--config", (char *)path, NULL};
    char *argv2[] = {"sluice", opt, "--set", "log.level=debug", NULL};
    sl_config_action_t action;
    free(run_args(fx, argv1, NULL, &action));
    assert_int_equal(action, SL_CONFIG_RUN);
    assert_int_equal(fx->conf.max_events, 11);
    fx->conf.max_events = 0;
    free(run_args(fx, argv2, NULL, &action));
    assert_int_equal(action, SL_CONFIG_RUN);
    assert_int_equal(fx->conf.max_events, 11);
    assert_int_equal(fx->conf.level, 0);
}

static void test_args_sluice_config_env(void **state)
{
    fixture_t *fx = *state;
    const char *path = write_temp(fx, "gateway.name = from-file\n");
    char env_config[128];
    snprintf(env_config, sizeof(env_config), "SLUICE_CONFIG=%s", path);
    char *envp[] = {env_config, NULL};
    char *argv[] = {"sluice", NULL};
    sl_config_action_t action;
    free(run_args(fx, argv, envp, &action));
    assert_int_equal(action, SL_CONFIG_RUN);
    assert_string_equal(fx->conf.name, "from-file");
}

static void test_args_config_beats_sluice_config(void **state)
{
    fixture_t *fx = *state;
    const char *path = write_temp(fx, "gateway.name = from-flag\n");
    char *envp[] = {"SLUICE_CONFIG=/nonexistent/sluice.conf", NULL};
    char *argv[] = {"sluice", "--config", (char *)path, NULL};
    sl_config_action_t action;
    free(run_args(fx, argv, envp, &action));
    assert_int_equal(action, SL_CONFIG_RUN);
    assert_string_equal(fx->conf.name, "from-flag");
}

static void test_args_precedence(void **state)
{
    fixture_t *fx = *state;
    const char *path = write_temp(fx, "gateway.max_events = 10\n"
                                      "gateway.name = file\n"
                                      "log.level = debug\n"
                                      "gateway.timeout_ms = 1s\n"
                                      "kafka.linger.ms = 5\n"
                                      "kafka.acks = all\n");
    char *envp[] = {"SLUICE_GATEWAY_MAX_EVENTS=20", "SLUICE_LOG_LEVEL=warn",
                    "SLUICE_KAFKA_LINGER_MS=10", NULL};
    /* --set comes first in argv but is applied last */
    char *argv[] = {
        "sluice",     "--set", "gateway.max_events=30", "--set", "kafka.acks=1", "--config",
        (char *)path, NULL};
    sl_config_action_t action;
    const char *const *keys;
    const char *const *values;
    free(run_args(fx, argv, envp, &action));
    assert_int_equal(action, SL_CONFIG_RUN);
    assert_int_equal(fx->conf.max_events, 30); /* --set > env > file */
    assert_int_equal(fx->conf.level, 2);       /* env > file */
    assert_string_equal(fx->conf.name, "file");
    assert_int_equal(fx->conf.timeout_ms, 1000);
    assert_int_equal(sl_config_passthrough(fx->cfg, "kafka.", &keys, &values), 2);
    assert_string_equal(keys[0], "linger.ms");
    assert_string_equal(values[0], "10");
    assert_string_equal(keys[1], "acks");
    assert_string_equal(values[1], "1");
}

static void test_args_errors(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        char *argv[5];
        const char *err;
    } cases[] = {
        {{"sluice", "--bogus", NULL}, "unknown argument \"--bogus\" (see --help)"},
        {{"sluice", "positional", NULL}, "unknown argument \"positional\" (see --help)"},
        {{"sluice", "--configx", NULL}, "unknown argument \"--configx\" (see --help)"},
        {{"sluice", "--set", NULL}, "--set needs a value"},
        {{"sluice", "--config", NULL}, "--config needs a value"},
        {{"sluice", "--config=", NULL}, "--config needs a value"},
        {{"sluice", "--set", "novalue", NULL}, "--set novalue: expected key=value"},
        {{"sluice", "--set==5", NULL}, "--set =5: expected key=value"},
        {{"sluice", "--config", "a", "--config=b", NULL}, "--config given twice"},
        {{"sluice", "--set", "gateway.max_events=0", NULL},
         "gateway.max_events: 0 is out of range [1, 100000] (from --set)"},
        {{"sluice", "--set", "nope=1", NULL}, "nope: unknown key (from --set)"},
        {{"sluice", "--config", "/nonexistent/x.conf", NULL},
         "cannot open config file /nonexistent/x.conf: No such file or directory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_config_action_t action;
        char *out = run_args(fx, (char **)cases[i].argv, NULL, &action);
        assert_int_equal(action, SL_CONFIG_ERROR);
        assert_string_equal(fx->err, cases[i].err);
        assert_string_equal(out, "");
        free(out);
    }
}

static void test_args_env_error(void **state)
{
    fixture_t *fx = *state;
    char *envp[] = {"SLUICE_BOGUS=1", NULL};
    char *argv[] = {"sluice", NULL};
    sl_config_action_t action;
    free(run_args(fx, argv, envp, &action));
    assert_int_equal(action, SL_CONFIG_ERROR);
    assert_string_equal(fx->err, "SLUICE_BOGUS: no config key maps to this environment variable");
}

static void test_args_help(void **state)
{
    fixture_t *fx = *state;
    /* help wins, and does not read the (missing) file */
    char *argv[] = {"sluice", "--config", "/nonexistent/x.conf", "--help", NULL};
    sl_config_action_t action;
    char *out = run_args(fx, argv, NULL, &action);
    assert_int_equal(action, SL_CONFIG_EXIT_OK);
    static const char head[] =
        "usage: sluice [--config FILE] [--set key=value]... [--check-config]\n\n[gateway]\n";
    assert_memory_equal(out, head, sizeof(head) - 1);
    assert_contains(out, "  gateway.max_events (int; default 1000; range [1, 100000]; env "
                         "SLUICE_GATEWAY_MAX_EVENTS)\n      Maximum events in one batch.\n");
    free(out);

    char *argv_h[] = {"sluice", "-h", NULL};
    out = run_args(fx, argv_h, NULL, &action);
    assert_int_equal(action, SL_CONFIG_EXIT_OK);
    assert_memory_equal(out, head, sizeof(head) - 1);
    free(out);
}

static void test_help_lists_every_key(void **state)
{
    fixture_t *fx = *state;
    char *out = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&out, &len);
    sl_config_print_help(fx->cfg, fp);
    fclose(fp);
    for (size_t i = 0; i < N_FIELDS; i++) {
        char want[128];
        snprintf(want, sizeof(want), "  %s (", fields[i].key);
        assert_contains(out, want);
    }
    assert_contains(out, "  gateway.name (string; default \"sluice\"; env SLUICE_GATEWAY_NAME)\n"
                         "      Instance name.\n");
    assert_contains(out, "  gateway.tls_cert (string; no default; env SLUICE_GATEWAY_TLS_CERT)\n");
    assert_contains(out, "  gateway.offset (int; default 0; env SLUICE_GATEWAY_OFFSET)\n");
    assert_contains(out, "  gateway.gzip (bool; default on; env SLUICE_GATEWAY_GZIP)\n");
    assert_contains(out, "  gateway.max_body_bytes (size; default 1MiB; range [1, 67108864]; env "
                         "SLUICE_GATEWAY_MAX_BODY_BYTES)\n");
    assert_contains(out, "  gateway.timeout_ms (ms; default 15s; range [0, 3600000]; env "
                         "SLUICE_GATEWAY_TIMEOUT_MS)\n");
    assert_contains(out, "  log.level (enum; default info; one of debug, info, warn, error; env "
                         "SLUICE_LOG_LEVEL)\n      Minimum level.\n");
    assert_contains(out, "[kafka.*]\n  kafka.<name> (passed through; env SLUICE_KAFKA_<NAME> with "
                         "'_' for '.')\n      librdkafka properties.\n");
    free(out);
}

static void test_args_check_config(void **state)
{
    fixture_t *fx = *state;
    char *argv[] = {"sluice",
                    "--check-config",
                    "--set",
                    "gateway.name=my edge",
                    "--set=kafka.sasl.password=hunter2",
                    "--set",
                    "kafka.linger.ms=5",
                    NULL};
    sl_config_action_t action;
    char *out = run_args(fx, argv, NULL, &action);
    assert_int_equal(action, SL_CONFIG_EXIT_OK);
    assert_memory_equal(out, "config ok\n", 10);
    assert_contains(out, "\ngateway.name = \"my edge\"\n");
    assert_contains(out, "\ngateway.write_key = <redacted>\n");
    assert_contains(out, "\ngateway.max_events = 1000\n");
    assert_contains(out, "\nkafka.sasl.password = <redacted>\n");
    assert_contains(out, "\nkafka.linger.ms = 5\n");
    assert_not_contains(out, "hunter2");
    assert_not_contains(out, "dev-key");
    free(out);
}

static void test_args_check_config_error(void **state)
{
    fixture_t *fx = *state;
    char *argv[] = {"sluice", "--check-config", "--set", "log.level=loud", NULL};
    sl_config_action_t action;
    char *out = run_args(fx, argv, NULL, &action);
    assert_int_equal(action, SL_CONFIG_ERROR);
    assert_string_equal(fx->err,
                        "log.level: \"loud\" is not one of debug, info, warn, error (from --set)");
    assert_string_equal(out, "");
    free(out);
}

/* ---- effective output -------------------------------------------------------------------- */

static void test_effective_defaults(void **state)
{
    fixture_t *fx = *state;
    char *out = effective(fx->cfg);
    assert_string_equal(out, "gateway.name = sluice\n"
                             "gateway.write_key = <redacted>\n"
                             "# gateway.tls_cert is unset\n"
                             "gateway.max_events = 1000\n"
                             "gateway.offset = 0\n"
                             "gateway.gzip = true\n"
                             "gateway.max_body_bytes = 1048576\n"
                             "gateway.buffer_bytes = 0\n"
                             "gateway.timeout_ms = 15000\n"
                             "log.level = info\n");
    free(out);
}

static void test_effective_redaction(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "kafka.ssl.key.password", "p1"), 0);
    assert_int_equal(set(fx, "kafka.sasl.SECRET", "p2"), 0);
    assert_int_equal(set(fx, "kafka.ApiKey", "p3"), 0);
    assert_int_equal(set(fx, "kafka.client.id", "visible"), 0);
    char *out = effective(fx->cfg);
    assert_contains(out, "kafka.ssl.key.password = <redacted>\n");
    assert_contains(out, "kafka.sasl.SECRET = <redacted>\n");
    assert_contains(out, "kafka.ApiKey = <redacted>\n");
    assert_contains(out, "kafka.client.id = visible\n");
    assert_not_contains(out, "p1");
    assert_not_contains(out, "p2");
    assert_not_contains(out, "p3");
    free(out);
}

static void test_effective_quoting(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        const char *value, *line;
    } cases[] = {
        {"plain", "gateway.name = plain\n"},
        {"", "gateway.name = \"\"\n"},
        {"two words", "gateway.name = \"two words\"\n"},
        {"x#y", "gateway.name = \"x#y\"\n"},
        {"a \"b\" \\ c", "gateway.name = \"a \\\"b\\\" \\\\ c\"\n"},
        {"k=v", "gateway.name = k=v\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(set(fx, "gateway.name", cases[i].value), 0);
        char *out = effective(fx->cfg);
        assert_contains(out, cases[i].line);
        free(out);
    }
}

static void test_effective_round_trip(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(set(fx, "gateway.name", "a \"quoted\" # name"), 0);
    assert_int_equal(set(fx, "gateway.max_events", "77"), 0);
    assert_int_equal(set(fx, "gateway.offset", "-9223372036854775808"), 0);
    assert_int_equal(set(fx, "gateway.gzip", "no"), 0);
    assert_int_equal(set(fx, "gateway.max_body_bytes", "3MiB"), 0);
    assert_int_equal(set(fx, "gateway.buffer_bytes", "18446744073709551615"), 0);
    assert_int_equal(set(fx, "gateway.timeout_ms", "1h"), 0);
    assert_int_equal(set(fx, "log.level", "error"), 0);
    assert_int_equal(set(fx, "kafka.client.id", "my client"), 0);
    char *out = effective(fx->cfg);
    write_temp(fx, out);
    free(out);

    conf_t c;
    sl_config_t *cfg = sl_config_create();
    assert_int_equal(
        sl_config_add_section(cfg, "gateway", fields, N_FIELDS, &c, fx->err, sizeof(fx->err)), 0);
    assert_int_equal(sl_config_add_passthrough(cfg, "kafka.", ""), 0);
    assert_int_equal(sl_config_load_file(cfg, fx->path, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c.name, fx->conf.name);
    assert_string_equal(c.write_key, "<redacted>"); /* secrets do not round-trip, by design */
    assert_null(c.tls_cert);
    assert_true(c.max_events == fx->conf.max_events);
    assert_true(c.offset == fx->conf.offset);
    assert_int_equal(c.is_gzip, fx->conf.is_gzip);
    assert_true(c.max_body_bytes == fx->conf.max_body_bytes);
    assert_true(c.buffer_bytes == fx->conf.buffer_bytes);
    assert_true(c.timeout_ms == fx->conf.timeout_ms);
    assert_int_equal(c.level, fx->conf.level);
    const char *const *values;
    assert_int_equal(sl_config_passthrough(cfg, "kafka.", NULL, &values), 1);
    assert_string_equal(values[0], "my client");
    sl_config_destroy(cfg);
}

/* ---- destroy ----------------------------------------------------------------------------- */

static void test_destroy_null(void **state)
{
    sl_config_destroy(NULL);
    (void)state;
}

static void test_destroy_clears_strings(void **state)
{
    conf_t c;
    char err[256];
    sl_config_t *cfg = sl_config_create();
    assert_int_equal(sl_config_add_section(cfg, "gateway", fields, N_FIELDS, &c, err, sizeof(err)),
                     0);
    assert_int_equal(sl_config_add_passthrough(cfg, "kafka.", "doc"), 0);
    assert_int_equal(sl_config_set(cfg, "kafka.acks", "all", "--set", err, sizeof(err)), 0);
    assert_int_equal(sl_config_set(cfg, "gateway.tls_cert", "/c", "--set", err, sizeof(err)), 0);
    sl_config_destroy(cfg);
    assert_null(c.name);
    assert_null(c.write_key);
    assert_null(c.tls_cert);
    (void)state;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults_applied),
        T(test_bad_default_rejected),
        T(test_unparsable_default_rejected),
        T(test_duplicate_key_rejected),
        T(test_env_name_collision_rejected),
        T(test_table_errors_rejected),
        T(test_passthrough_prefix_checked),
        T(test_str_replaces_old),
        T(test_int_ok),
        T(test_int_syntax_errors),
        T(test_int_overflow),
        T(test_int_bounds),
        T(test_bool_words),
        T(test_bool_bad),
        T(test_size_suffixes),
        T(test_size_syntax_errors),
        T(test_size_overflow),
        T(test_size_bounds),
        T(test_ms_suffixes),
        T(test_ms_syntax_errors),
        T(test_ms_overflow_and_bounds),
        T(test_enum_ok),
        T(test_enum_bad),
        T(test_unknown_key_suggests),
        T(test_unknown_key_far),
        T(test_set_null_arguments),
        T(test_error_truncated_to_errlen),
        T(test_passthrough_order_and_override),
        T(test_passthrough_unknown_prefix),
        T(test_passthrough_empty_name),
        T(test_typed_key_wins_over_passthrough),
        T(test_file_basic),
        T(test_file_quoting),
        T(test_file_empty_values),
        T(test_file_crlf_and_later_line_wins),
        T(test_file_line_without_equals),
        T(test_file_hash_before_equals),
        T(test_file_missing_key),
        T(test_file_unknown_key),
        T(test_file_bad_value),
        T(test_file_quote_errors),
        T(test_file_missing),
        T(test_file_nul_byte),
        T(test_env_maps_keys),
        T(test_env_passthrough),
        T(test_env_passthrough_empty_name),
        T(test_env_unknown_suggests),
        T(test_env_unknown),
        T(test_env_bad_value),
        T(test_args_none),
        T(test_args_set_forms),
        T(test_args_config_forms),
        T(test_args_sluice_config_env),
        T(test_args_config_beats_sluice_config),
        T(test_args_precedence),
        T(test_args_errors),
        T(test_args_env_error),
        T(test_args_help),
        T(test_help_lists_every_key),
        T(test_args_check_config),
        T(test_args_check_config_error),
        T(test_effective_defaults),
        T(test_effective_redaction),
        T(test_effective_quoting),
        T(test_effective_round_trip),
        T(test_destroy_null),
        T(test_destroy_clears_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
