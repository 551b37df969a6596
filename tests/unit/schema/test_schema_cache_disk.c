/* Unit tests for the registry cache's snapshot (schema/schema_cache_disk.c through the cache):
 * create, fetch, destroy, re-create with the registry down -> hits from disk; corrupt,
 * truncated, foreign and oversized snapshot files are logged and survived; a bad cache_dir is a
 * create error. */
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

#include "schema_cache.h"
#include "schema_cache_fakes.h"
#include "schema_cache_int.h"

#define PV_V1 "{\"type\":\"record\",\"name\":\"page_view\",\"fields\":[]}"
#define PV_V2 "{\"type\":\"record\",\"name\":\"page_view\",\"fields\":[{\"name\":\"x\"}]}"
#define CLICK "{\"type\":\"record\",\"name\":\"click\",\"fields\":[]}"
#define WAIT_MS 5000

typedef struct {
    char dir[64];
    char file[128];
} tmpdir_t;

static void tmpdir_make(tmpdir_t *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/sl-schema-cache-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->file, sizeof(t->file), "%s/%s", t->dir, SC_DISK_FILE);
}

static void tmpdir_remove(tmpdir_t *t)
{
    char p[160];
    unlink(t->file);
    snprintf(p, sizeof(p), "%s.tmp", t->file);
    unlink(p);
    rmdir(t->dir);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(1 << 20);
    assert_non_null(f);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void write_all(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Fills a snapshot through a live cache: page_view v1 then v2 (latest), click v1, id 3. */
static void populate(tmpdir_t *t)
{
    harness_t h;
    schema_cache_hit_t hit;

    harness_init(&h);
    h.s.cache_dir = t->dir;
    fake_reg_add(&h.reg, "page_view", 1, 7, PV_V1);
    fake_reg_add(&h.reg, "click", 1, 3, CLICK);
    assert_non_null(harness_start(&h));
    assert_int_equal(harness_lookup_wait(&h, "page_view", 0, &hit), SCHEMA_CACHE_HIT);
    fake_reg_add(&h.reg, "page_view", 2, 9, PV_V2);
    advance(&h, 30000);
    schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL); /* refresh to v2 */
    {
        uint64_t end = mono_ms() + WAIT_MS;
        while (mono_ms() < end &&
               (schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL) != SCHEMA_CACHE_HIT ||
                hit.id != 9))
            nap_1ms();
    }
    assert_int_equal(hit.id, 9);
    assert_int_equal(harness_lookup_wait(&h, "click", 0, &hit), SCHEMA_CACHE_HIT);
    harness_dispose(&h);
}

/* A cache on `dir` with the registry down. */
static void start_offline(harness_t *h, tmpdir_t *t)
{
    harness_init(h);
    h->s.cache_dir = t->dir;
    h->reg.down = 1;
    assert_non_null(harness_start(h));
}

static void test_restart_with_registry_down_serves_from_disk(void **state)
{
    tmpdir_t t;
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;

    tmpdir_make(&t);
    populate(&t);
    start_offline(&h, &t);
    assert_true(schema_cache_is_warm(h.c));
    /* no PENDING: answered from the snapshot at once, latest marked possibly stale */
    assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                     SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 9);
    assert_int_equal(hit.version, 2);
    assert_int_equal(hit.is_stale, 1);
    assert_string_equal(((fake_compiled_t *)hit.compiled)->text, PV_V2);
    assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 1, &hit, NULL, NULL),
                     SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 7);
    assert_int_equal(hit.is_stale, 0); /* (subject, N) -> id never changes */
    assert_int_equal(schema_cache_lookup(h.c, "click", 5, 0, &hit, NULL, NULL), SCHEMA_CACHE_HIT);
    assert_int_equal(schema_cache_lookup_id(h.c, 3, &hit, NULL, NULL), SCHEMA_CACHE_HIT);
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.schemas, 3);
    assert_int_equal(st.subjects, 5);
    assert_true(st.stale_hits >= 1);

    /* registry back: the refresh confirms it and the stale mark goes */
    fake_reg_add(&h.reg, "page_view", 2, 9, PV_V2);
    fake_reg_set(&h.reg, &h.reg.down, 0);
    advance(&h, 1000); /* past the failed refresh's backoff */
    {
        uint64_t end = mono_ms() + WAIT_MS;
        do {
            assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                             SCHEMA_CACHE_HIT);
            if (!hit.is_stale)
                break;
            nap_1ms();
        } while (mono_ms() < end);
    }
    assert_int_equal(hit.is_stale, 0);
    assert_int_equal(hit.id, 9);
    harness_dispose(&h);
    assert_int_equal(atomic_load(&h.fc.destroyed), atomic_load(&h.fc.compiled));

    /* compaction at load kept every record: a third start sees the same */
    start_offline(&h, &t);
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.schemas, 3);
    assert_int_equal(st.subjects, 5);
    harness_dispose(&h);
    tmpdir_remove(&t);
}

static void test_truncated_snapshot_keeps_the_prefix(void **state)
{
    tmpdir_t t;
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;
    size_t len;
    char *data;

    tmpdir_make(&t);
    populate(&t);
    data = read_all(t.file, &len);
    /* a crash in the middle of the last append (click's latest mapping) */
    write_all(t.file, data, len - 3);
    start_offline(&h, &t);
    assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                     SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 9);
    assert_int_equal(schema_cache_lookup(h.c, "click", 5, 1, &hit, NULL, NULL), SCHEMA_CACHE_HIT);
    /* the torn record is gone, the rest is served */
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.subjects, 4);
    harness_dispose(&h);

    /* every cut point: never a crash, never more than was written */
    for (size_t cut = 0; cut < len; cut += 11) {
        write_all(t.file, data, cut);
        start_offline(&h, &t);
        schema_cache_stats(h.c, &st);
        assert_true(st.schemas <= 3 && st.subjects <= 5);
        harness_dispose(&h);
        assert_int_equal(atomic_load(&h.fc.destroyed), atomic_load(&h.fc.compiled));
    }
    free(data);
    tmpdir_remove(&t);
}

static void test_corrupt_snapshot_is_ignored_from_the_bad_record(void **state)
{
    tmpdir_t t;
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;
    size_t len;
    char *data, *p;

    tmpdir_make(&t);
    populate(&t);
    data = read_all(t.file, &len);
    /* flip one byte inside click's schema text: its CRC no longer matches */
    p = memmem(data, len, "\"click\"", 7);
    assert_non_null(p);
    p[2] ^= 0x20;
    write_all(t.file, data, len);
    start_offline(&h, &t);
    assert_int_equal(schema_cache_lookup(h.c, "page_view", 9, 0, &hit, NULL, NULL),
                     SCHEMA_CACHE_HIT);
    assert_int_equal(harness_lookup_wait(&h, "click", 0, &hit), SCHEMA_CACHE_UNAVAILABLE);
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.schemas, 2);
    harness_dispose(&h);

    /* a header digit changed (length): caught as well */
    p = memmem(data, len, "\nL 0 2 - 9 ", 11);
    assert_non_null(p);
    p[0] ^= 0x20; /* "\n" -> "*": the previous record's terminator is gone */
    write_all(t.file, data, len);
    start_offline(&h, &t);
    schema_cache_stats(h.c, &st);
    assert_true(st.subjects < 5);
    harness_dispose(&h);
    free(data);

    /* garbage and a foreign file: ignored, not warm, nothing served */
    write_all(t.file, "\x00\xff garbage\nS 1 0 AVRO 99999999 0\n", 33);
    start_offline(&h, &t);
    assert_false(schema_cache_is_warm(h.c));
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.schemas, 0);
    harness_dispose(&h);
    write_all(t.file, "sluice-schema-cache 1\nS 1 0 AVRO 99999999 00000000\n", 51);
    start_offline(&h, &t);
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.schemas, 0);
    harness_dispose(&h);
    tmpdir_remove(&t);
}

static void test_forged_records_are_checked(void **state)
{
    tmpdir_t t;
    harness_t h;
    schema_cache_stats_t st;
    sl_buf_t b;
    const char *big = "{\"type\":\"BAD\"}";
    sc_disk_rec_t recs[] = {
        /* a mapping to an id that is not in the file: skipped */
        {SC_DISK_VERSION, 42, 1, NULL, "orphan", 6},
        /* a latest record without its pinned version: skipped */
        {SC_DISK_LATEST, 0, 3, NULL, "orphan", 6},
        /* a schema the compiler refuses: skipped */
        {SC_DISK_SCHEMA, 5, 0, "AVRO", big, strlen(big)},
        /* an unknown schema type: skipped */
        {SC_DISK_SCHEMA, 6, 0, "XML", CLICK, strlen(CLICK)},
        /* good ones after the bad ones still load */
        {SC_DISK_SCHEMA, 3, 0, "AVRO", CLICK, strlen(CLICK)},
        {SC_DISK_VERSION, 3, 1, NULL, "click", 5},
        {SC_DISK_LATEST, 0, 1, NULL, "click", 5},
    };
    schema_cache_hit_t hit;

    tmpdir_make(&t);
    sl_buf_init(&b, 1 << 16);
    sl_buf_append(&b, "sluice-schema-cache 1\n", 22);
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
        sc_disk_encode(&b, &recs[i]);
    write_all(t.file, b.data, b.len);
    sl_buf_dispose(&b);
    start_offline(&h, &t);
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.schemas, 1);
    assert_int_equal(st.subjects, 2);
    assert_int_equal(schema_cache_lookup(h.c, "click", 5, 0, &hit, NULL, NULL), SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 3);
    harness_dispose(&h);
    tmpdir_remove(&t);
}

static void test_bounds_apply_to_the_snapshot(void **state)
{
    tmpdir_t t;
    harness_t h;
    schema_cache_stats_t st;

    tmpdir_make(&t);
    populate(&t);
    harness_init(&h);
    h.s.cache_dir = t.dir;
    h.reg.down = 1;
    h.s.max_schemas = 1;
    h.s.max_subjects = 2;
    assert_non_null(harness_start(&h));
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.schemas, 1);
    assert_true(st.subjects <= 2);
    harness_dispose(&h);
    assert_int_equal(atomic_load(&h.fc.destroyed), atomic_load(&h.fc.compiled));
    tmpdir_remove(&t);
}

static void test_unusable_cache_dir_is_a_create_error(void **state)
{
    tmpdir_t t;
    harness_t h;
    char dir[200], err[256] = "";

    tmpdir_make(&t);
    write_all(t.file, "x", 1);
    /* a path below a regular file can never be a directory */
    snprintf(dir, sizeof(dir), "%s/sub", t.file);
    harness_init(&h);
    h.s.cache_dir = dir;
    assert_null(schema_cache_create(&h.s, &h.ops, err, sizeof(err)));
    assert_non_null(strstr(err, "schema.cache_dir"));
    harness_dispose(&h);
    tmpdir_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_with_registry_down_serves_from_disk),
        cmocka_unit_test(test_truncated_snapshot_keeps_the_prefix),
        cmocka_unit_test(test_corrupt_snapshot_is_ignored_from_the_bad_record),
        cmocka_unit_test(test_forged_records_are_checked),
        cmocka_unit_test(test_bounds_apply_to_the_snapshot),
        cmocka_unit_test(test_unusable_cache_dir_is_a_create_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
