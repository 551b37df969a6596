/* The registry store: ids and versions, identical re-registration, every compatibility level
 * and its transitive variant, the check operation, configs, limits, and durability: log replay
 * after a restart, a torn last line, a corrupt line, the data-dir lock. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "reg_int.h"
#include "sl_log.h"

#define REC(fields) "{\"type\":\"record\",\"name\":\"A\",\"fields\":[" fields "]}"
#define F_A "{\"name\":\"a\",\"type\":\"string\"}"
#define F_A_DEF "{\"name\":\"a\",\"type\":\"string\",\"default\":\"x\"}"
#define F_A_INT_DEF "{\"name\":\"a\",\"type\":\"int\",\"default\":0}"
#define F_B_REQ "{\"name\":\"b\",\"type\":\"int\"}"
#define F_B_DEF "{\"name\":\"b\",\"type\":\"int\",\"default\":3}"

typedef struct {
    char dir[64];
    reg_store_conf_t conf;
    reg_store_t *st;
} fx_t;

static reg_store_t *open_store(fx_t *fx)
{
    char errbuf[512] = "";
    reg_store_t *st = reg_store_open(&fx->conf, errbuf, sizeof(errbuf));
    if (st == NULL)
        fail_msg("open: %s", errbuf);
    return st;
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sluice-regtest-XXXXXX");
    if (fx == NULL || mkdtemp(fx->dir) == NULL)
        return -1;
    fx->conf = (reg_store_conf_t){.data_dir = fx->dir,
                                  .default_level = REG_LEVEL_BACKWARD,
                                  .max_schema_bytes = 1 << 20,
                                  .max_schemas = 1000,
                                  .max_subjects = 100,
                                  .max_versions = 100,
                                  .protoc = "protoc",
                                  .protoc_timeout_ms = 10000};
    fx->st = open_store(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    char path[128];
    reg_store_destroy(fx->st);
    snprintf(path, sizeof(path), "%s/registry.log", fx->dir);
    unlink(path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static reg_err_t reg(fx_t *fx, const char *subject, const char *schema, int32_t *id,
                     int32_t *version, reg_msg_t *msg)
{
    reg_schema_info_t info;
    reg_msg_t local = {{0}};
    reg_err_t err = reg_store_register(fx->st, subject, REG_AVRO, schema, strlen(schema), 0, &info,
                                       msg ? msg : &local);
    if (err == REG_ERR_OK) {
        if (id)
            *id = info.id;
        if (version)
            *version = info.version;
    }
    return err;
}

static void set_level(fx_t *fx, const char *subject, reg_level_t level)
{
    reg_msg_t msg = {{0}};
    assert_int_equal(reg_store_set_level(fx->st, subject, level, &msg), REG_ERR_OK);
}

static void test_ids_and_identical(void **state)
{
    fx_t *fx = *state;
    int32_t id, v;
    reg_schema_info_t info;
    reg_msg_t msg = {{0}};

    assert_int_equal(reg(fx, "s", REC(F_A), &id, &v, NULL), REG_ERR_OK);
    assert_int_equal(id, 1);
    assert_int_equal(v, 1);
    /* the same schema, written differently: the same id and no new version */
    assert_int_equal(reg(fx, "s",
                         "{ \"fields\": [ {\"type\":\"string\", \"name\":\"a\"} ], "
                         "\"name\":\"A\", \"type\":\"record\" }",
                         &id, &v, NULL),
                     REG_ERR_OK);
    assert_int_equal(id, 1);
    assert_int_equal(v, 1);
    /* the same schema under another subject reuses the global id */
    assert_int_equal(reg(fx, "t", REC(F_A), &id, &v, NULL), REG_ERR_OK);
    assert_int_equal(id, 1);
    assert_int_equal(v, 1);
    assert_int_equal(reg(fx, "s", REC(F_A "," F_B_DEF), &id, &v, NULL), REG_ERR_OK);
    assert_int_equal(id, 2);
    assert_int_equal(v, 2);
    /* lookup (POST /subjects/{s}) */
    assert_int_equal(
        reg_store_lookup(fx->st, "s", REG_AVRO, REC(F_A), strlen(REC(F_A)), &info, &msg),
        REG_ERR_OK);
    assert_int_equal(info.id, 1);
    assert_int_equal(info.version, 1);
    assert_string_equal(info.subject, "s");
    assert_int_equal(reg_store_lookup(fx->st, "t", REG_AVRO, REC(F_A "," F_B_DEF),
                                      strlen(REC(F_A "," F_B_DEF)), &info, &msg),
                     REG_ERR_SCHEMA_NOT_FOUND);
    assert_int_equal(
        reg_store_lookup(fx->st, "nope", REG_AVRO, REC(F_A), strlen(REC(F_A)), &info, &msg),
        REG_ERR_SUBJECT_NOT_FOUND);
}

static void test_reads_and_errors(void **state)
{
    fx_t *fx = *state;
    reg_schema_info_t info;
    reg_msg_t msg = {{0}};
    const char **names;
    int32_t count;

    assert_int_equal(reg(fx, "b", REC(F_A), NULL, NULL, NULL), REG_ERR_OK);
    assert_int_equal(reg(fx, "a", REC(F_A "," F_B_DEF), NULL, NULL, NULL), REG_ERR_OK);
    assert_int_equal(reg_store_subjects(fx->st, &names), 2);
    assert_string_equal(names[0], "a");
    assert_string_equal(names[1], "b");
    free(names);
    assert_int_equal(reg_store_versions(fx->st, "b", &count, &msg), REG_ERR_OK);
    assert_int_equal(count, 1);
    assert_int_equal(reg_store_version(fx->st, "a", -1, &info, &msg), REG_ERR_OK);
    assert_int_equal(info.id, 2);
    assert_string_equal(info.schema, REC(F_A "," F_B_DEF));
    assert_int_equal(reg_store_version(fx->st, "a", 2, &info, &msg), REG_ERR_VERSION_NOT_FOUND);
    assert_int_equal(reg_store_version(fx->st, "a", 0, &info, &msg), REG_ERR_INVALID_VERSION);
    assert_int_equal(reg_store_version(fx->st, "zz", 1, &info, &msg), REG_ERR_SUBJECT_NOT_FOUND);
    assert_int_equal(reg_store_by_id(fx->st, 2, &info, &msg), REG_ERR_OK);
    assert_int_equal(reg_store_by_id(fx->st, 3, &info, &msg), REG_ERR_SCHEMA_NOT_FOUND);
    assert_int_equal(reg_store_by_id(fx->st, 0, &info, &msg), REG_ERR_SCHEMA_NOT_FOUND);
    assert_int_equal(reg(fx, "a", "{\"type\":\"recor\"}", NULL, NULL, NULL),
                     REG_ERR_INVALID_SCHEMA);
    assert_int_equal(reg(fx, "", REC(F_A), NULL, NULL, NULL), REG_ERR_BAD_REQUEST);
    assert_int_equal(reg(fx, "a\n", REC(F_A), NULL, NULL, NULL), REG_ERR_BAD_REQUEST);
    assert_int_equal(
        reg_store_register(fx->st, "a", REG_AVRO, REC(F_A), strlen(REC(F_A)), 1, &info, &msg),
        REG_ERR_INVALID_SCHEMA); /* references */
    /* registry.max_schema_bytes */
    reg_store_destroy(fx->st);
    fx->conf.max_schema_bytes = 10;
    fx->st = open_store(fx);
    assert_int_equal(reg(fx, "a", REC(F_A), NULL, NULL, NULL), REG_ERR_TOO_LARGE);
}

/* Registers v1.. under `level` on subject s: each expect is the outcome of one step. */
static void steps(fx_t *fx, const char *subject, reg_level_t level, const char *const *schemas,
                  const reg_err_t *expect, size_t n)
{
    set_level(fx, subject, level);
    for (size_t i = 0; i < n; i++) {
        reg_msg_t msg = {{0}};
        reg_err_t err = reg(fx, subject, schemas[i], NULL, NULL, &msg);
        if (err != expect[i])
            fail_msg("%s step %zu: got %d want %d (%s)", reg_level_names[level], i, (int)err,
                     (int)expect[i], msg.msg);
        if (err == REG_ERR_INCOMPATIBLE && strstr(msg.msg, "incompatible") == NULL)
            fail_msg("409 without a reason: %s", msg.msg);
    }
}

static void test_levels(void **state)
{
    fx_t *fx = *state;
    const reg_err_t OK = REG_ERR_OK, NO = REG_ERR_INCOMPATIBLE;

    /* BACKWARD: the new schema reads the latest's data */
    steps(fx, "bw", REG_LEVEL_BACKWARD,
          (const char *[]){REC(F_A), REC(F_A "," F_B_REQ), REC(F_A "," F_B_DEF), REC(F_B_DEF)},
          (reg_err_t[]){OK, NO, OK, OK}, 4);
    /* FORWARD: the latest reads the new schema's data */
    steps(fx, "fw", REG_LEVEL_FORWARD,
          (const char *[]){REC(F_A), REC(F_A "," F_B_REQ), REC(F_B_REQ), REC(F_A_DEF "," F_B_REQ)},
          (reg_err_t[]){OK, OK, NO, OK}, 4);
    /* FULL: both */
    steps(fx, "full", REG_LEVEL_FULL,
          (const char *[]){REC(F_A), REC(F_A "," F_B_REQ), REC(F_A "," F_B_DEF), REC(F_B_DEF)},
          (reg_err_t[]){OK, NO, OK, NO}, 4);
    /* NONE: anything */
    steps(fx, "none", REG_LEVEL_NONE, (const char *[]){REC(F_A), "\"int\"", REC(F_B_REQ)},
          (reg_err_t[]){OK, OK, OK}, 3);
}

/* Three steps each compatible with the one before, the third not with the first: the plain
 * level accepts it, the transitive one refuses it. */
static void test_transitive(void **state)
{
    fx_t *fx = *state;
    const reg_err_t OK = REG_ERR_OK, NO = REG_ERR_INCOMPATIBLE;
    /* BACKWARD: drop a (string), then bring it back as int with a default */
    const char *bw[] = {REC(F_A), REC(F_B_DEF), REC(F_B_DEF "," F_A_INT_DEF)};
    /* FORWARD and FULL: give a a default, then drop it */
    const char *fw[] = {REC(F_A "," F_B_DEF), REC(F_A_DEF "," F_B_DEF), REC(F_B_DEF)};

    steps(fx, "bw", REG_LEVEL_BACKWARD, bw, (reg_err_t[]){OK, OK, OK}, 3);
    steps(fx, "bwt", REG_LEVEL_BACKWARD_TRANSITIVE, bw, (reg_err_t[]){OK, OK, NO}, 3);
    steps(fx, "fw", REG_LEVEL_FORWARD, fw, (reg_err_t[]){OK, OK, OK}, 3);
    steps(fx, "fwt", REG_LEVEL_FORWARD_TRANSITIVE, fw, (reg_err_t[]){OK, OK, NO}, 3);
    steps(fx, "full", REG_LEVEL_FULL, fw, (reg_err_t[]){OK, OK, OK}, 3);
    steps(fx, "fullt", REG_LEVEL_FULL_TRANSITIVE, fw, (reg_err_t[]){OK, OK, NO}, 3);
}

static void test_check(void **state)
{
    fx_t *fx = *state;
    reg_msg_t msg = {{0}};
    int ok = -1;
    const char *v3 = REC(F_B_DEF "," F_A_INT_DEF);

    assert_int_equal(reg(fx, "s", REC(F_A), NULL, NULL, NULL), REG_ERR_OK);
    assert_int_equal(reg(fx, "s", REC(F_B_DEF), NULL, NULL, NULL), REG_ERR_OK);
    /* against latest: compatible; against version 1: not; all (BACKWARD: latest only) */
    assert_int_equal(reg_store_check(fx->st, "s", -1, REG_AVRO, v3, strlen(v3), &ok, &msg),
                     REG_ERR_OK);
    assert_true(ok);
    assert_int_equal(reg_store_check(fx->st, "s", 1, REG_AVRO, v3, strlen(v3), &ok, &msg),
                     REG_ERR_OK);
    assert_false(ok);
    assert_non_null(strstr(msg.msg, "/a"));
    set_level(fx, "s", REG_LEVEL_BACKWARD_TRANSITIVE);
    memset(&msg, 0, sizeof(msg));
    assert_int_equal(reg_store_check(fx->st, "s", 0, REG_AVRO, v3, strlen(v3), &ok, &msg),
                     REG_ERR_OK);
    assert_false(ok);
    assert_int_equal(reg_store_check(fx->st, "s", 3, REG_AVRO, v3, strlen(v3), &ok, &msg),
                     REG_ERR_VERSION_NOT_FOUND);
    assert_int_equal(reg_store_check(fx->st, "x", -1, REG_AVRO, v3, strlen(v3), &ok, &msg),
                     REG_ERR_SUBJECT_NOT_FOUND);
    assert_int_equal(reg_store_check(fx->st, "s", -1, REG_AVRO, "{", 1, &ok, &msg),
                     REG_ERR_INVALID_SCHEMA);
    /* nothing was registered by checking */
    int32_t count;
    assert_int_equal(reg_store_versions(fx->st, "s", &count, &msg), REG_ERR_OK);
    assert_int_equal(count, 2);
}

static void test_config(void **state)
{
    fx_t *fx = *state;
    reg_msg_t msg = {{0}};
    reg_level_t level;

    assert_int_equal(reg_store_get_level(fx->st, NULL, 0, &level, &msg), REG_ERR_OK);
    assert_int_equal(level, REG_LEVEL_BACKWARD);
    assert_int_equal(reg_store_get_level(fx->st, "s", 0, &level, &msg),
                     REG_ERR_SUBJECT_CONFIG_NOT_FOUND);
    assert_int_equal(reg_store_get_level(fx->st, "s", 1, &level, &msg), REG_ERR_OK);
    assert_int_equal(level, REG_LEVEL_BACKWARD);
    set_level(fx, NULL, REG_LEVEL_NONE);
    set_level(fx, "s", REG_LEVEL_FULL_TRANSITIVE);
    assert_int_equal(reg_store_get_level(fx->st, NULL, 0, &level, &msg), REG_ERR_OK);
    assert_int_equal(level, REG_LEVEL_NONE);
    assert_int_equal(reg_store_get_level(fx->st, "s", 0, &level, &msg), REG_ERR_OK);
    assert_int_equal(level, REG_LEVEL_FULL_TRANSITIVE);
    /* a config alone does not make a subject */
    const char **names;
    assert_int_equal(reg_store_subjects(fx->st, &names), 0);
    free(names);
    assert_int_equal(reg_level_parse("full_transitive", &level), 0);
    assert_int_equal(level, REG_LEVEL_FULL_TRANSITIVE);
    assert_int_equal(reg_level_parse("SIDEWAYS", &level), -1);
}

static void test_restart(void **state)
{
    fx_t *fx = *state;
    reg_schema_info_t info;
    reg_msg_t msg = {{0}};
    reg_level_t level;
    int32_t id;

    assert_int_equal(reg(fx, "s", REC(F_A), NULL, NULL, NULL), REG_ERR_OK);
    assert_int_equal(reg(fx, "s", REC(F_A "," F_B_DEF), NULL, NULL, NULL), REG_ERR_OK);
    assert_int_equal(reg(fx, "t", REC(F_A), NULL, NULL, NULL), REG_ERR_OK);
    set_level(fx, "t", REG_LEVEL_FORWARD);
    set_level(fx, NULL, REG_LEVEL_FULL);
    reg_store_destroy(fx->st);
    fx->st = open_store(fx);

    assert_int_equal(reg_store_version(fx->st, "s", 2, &info, &msg), REG_ERR_OK);
    assert_int_equal(info.id, 2);
    assert_int_equal(reg_store_version(fx->st, "t", -1, &info, &msg), REG_ERR_OK);
    assert_int_equal(info.id, 1);
    assert_int_equal(info.version, 1);
    assert_int_equal(reg_store_get_level(fx->st, "t", 0, &level, &msg), REG_ERR_OK);
    assert_int_equal(level, REG_LEVEL_FORWARD);
    assert_int_equal(reg_store_get_level(fx->st, NULL, 0, &level, &msg), REG_ERR_OK);
    assert_int_equal(level, REG_LEVEL_FULL);
    /* ids continue after the replayed ones; identical schemas still match */
    assert_int_equal(reg(fx, "u", REC(F_B_REQ), &id, NULL, NULL), REG_ERR_OK);
    assert_int_equal(id, 3);
    assert_int_equal(reg(fx, "u2", REC(F_A "," F_B_DEF), &id, NULL, NULL), REG_ERR_OK);
    assert_int_equal(id, 2);
}

static void append_raw(fx_t *fx, const char *bytes)
{
    char path[128];
    int fd;
    snprintf(path, sizeof(path), "%s/registry.log", fx->dir);
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, strlen(bytes)), (ssize_t)strlen(bytes));
    close(fd);
}

static off_t log_size(fx_t *fx)
{
    char path[128];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/registry.log", fx->dir);
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_size;
}

static void test_torn_last_line(void **state)
{
    fx_t *fx = *state;
    reg_schema_info_t info;
    reg_msg_t msg = {{0}};
    off_t good;
    int32_t id;

    assert_int_equal(reg(fx, "s", REC(F_A), NULL, NULL, NULL), REG_ERR_OK);
    reg_store_destroy(fx->st);
    fx->st = NULL;
    good = log_size(fx);
    /* a crash half-way through a write: no newline */
    append_raw(fx, "{\"op\":\"register\",\"subject\":\"s\",\"vers");
    fx->st = open_store(fx);
    assert_int_equal(log_size(fx), good); /* cut off */
    assert_int_equal(reg_store_version(fx->st, "s", -1, &info, &msg), REG_ERR_OK);
    assert_int_equal(info.version, 1);
    assert_int_equal(reg(fx, "s", REC(F_A "," F_B_DEF), &id, NULL, NULL), REG_ERR_OK);
    assert_int_equal(id, 2);
    reg_store_destroy(fx->st);
    fx->st = open_store(fx);
    assert_int_equal(reg_store_version(fx->st, "s", 2, &info, &msg), REG_ERR_OK);
    assert_int_equal(info.id, 2);
}

static void test_corrupt_and_locked(void **state)
{
    fx_t *fx = *state;
    char errbuf[512] = "";

    assert_int_equal(reg(fx, "s", REC(F_A), NULL, NULL, NULL), REG_ERR_OK);
    /* a second store on the same directory */
    assert_null(reg_store_open(&fx->conf, errbuf, sizeof(errbuf)));
    assert_non_null(strstr(errbuf, "another sluice-registry"));
    reg_store_destroy(fx->st);
    fx->st = NULL;
    /* a bad line followed by a good one is corruption, not a torn write */
    append_raw(fx, "garbage\n{\"op\":\"config\",\"level\":\"FULL\"}\n");
    assert_null(reg_store_open(&fx->conf, errbuf, sizeof(errbuf)));
    assert_non_null(strstr(errbuf, ":2: corrupt record"));
}

int main(void)
{
    sl_log_init(SL_LOG_WARN, "test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ids_and_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transitive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_last_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_and_locked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
