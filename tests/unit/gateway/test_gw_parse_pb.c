/* Unit tests for gateway/gw_parse_pb.c: RecordBatch bodies encoded by protobuf-c (from
 * gateway/proto/record_batch.proto) and by hand for every malformation and limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_int.h"
#include "pb_write.h"
#include "record_batch.pb-c.h"

#define TEST_ARENA_BLOCKS 64 /* the reader allocates one array per batch */
#include "test_arena.h"

static const gw_parse_limits_t limits = {.max_events = 500, .max_event_bytes = 64, .max_depth = 32};

static sl_err_t parse(arena_t *a, const pbw_t *w, gw_batch_doc_t *doc)
{
    return gw_parse_pb_batch((const char *)w->b, w->n, &limits, arena_alloc, a, doc);
}

#define REC1 "\x00\x00\x00\x00\x07\x02\x61"
#define REC2 "\x00\x00\x00\x00\x08"

static void test_protobuf_c_batch(void **state)
{
    arena_t a = {0};
    gw_batch_doc_t doc;
    Sluice__V1__RecordBatch batch = SLUICE__V1__RECORD_BATCH__INIT;
    ProtobufCBinaryData recs[3] = {{7, (uint8_t *)REC1}, {5, (uint8_t *)REC2}, {0, NULL}};
    static pbw_t w;

    batch.n_records = 3;
    batch.records = recs;
    batch.sent_at = 1764000000000LL;
    batch.write_key = "wk-1";
    w.n = protobuf_c_message_pack(&batch.base, w.b);
    assert_int_equal(parse(&a, &w, &doc), SL_ERR_OK);
    assert_int_equal(doc.n_events, 3);
    assert_int_equal(doc.sent_at, 1764000000000LL);
    assert_int_equal(doc.write_key_len, 4);
    assert_memory_equal(doc.write_key, "wk-1", 4);
    assert_int_equal(doc.events[0].raw_len, 7);
    assert_memory_equal(doc.events[0].raw, REC1, 7);
    assert_true((const uint8_t *)doc.events[0].raw >= w.b &&
                (const uint8_t *)doc.events[0].raw < w.b + w.n); /* a slice, not a copy */
    assert_int_equal(doc.events[1].raw_len, 5);
    assert_int_equal(doc.events[2].raw_len, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(doc.events[i].err, SL_ERR_OK);
        assert_null(doc.events[i].event_id); /* filled by schema validation, not here */
    }
    arena_free(&a);
}

static void test_empty_and_unknown(void **state)
{
    arena_t a = {0};
    gw_batch_doc_t doc;
    static pbw_t w;

    w.n = 0;
    assert_int_equal(parse(&a, &w, &doc), SL_ERR_OK);
    assert_int_equal(doc.n_events, 0);
    assert_null(doc.write_key);
    assert_int_equal(doc.sent_at, 0);
    /* unknown fields of every wire type, nested groups too, are skipped */
    pbw_uint(&w, 9, 300);
    pbw_fixed(&w, 10, 1, 8);
    pbw_fixed(&w, 11, 1, 4);
    pbw_str(&w, 12, "ctx");
    pbw_tag(&w, 13, 3);
    pbw_uint(&w, 1, 1); /* field 1 inside an unknown group is not a record */
    pbw_tag(&w, 14, 3);
    pbw_tag(&w, 14, 4);
    pbw_tag(&w, 13, 4);
    pbw_bytes(&w, 1, REC2, 5);
    /* repeated singular fields: the last one wins */
    pbw_uint(&w, 2, 5);
    pbw_uint(&w, 2, 6);
    pbw_str(&w, 3, "a");
    pbw_str(&w, 3, "bb");
    assert_int_equal(parse(&a, &w, &doc), SL_ERR_OK);
    assert_int_equal(doc.n_events, 1);
    assert_int_equal(doc.sent_at, 6);
    assert_int_equal(doc.write_key_len, 2);
    assert_memory_equal(doc.write_key, "bb", 2);
    arena_free(&a);
}

#define EXPECT_MALFORMED(w_, why)                                                                  \
    do {                                                                                           \
        arena_t a_ = {0};                                                                          \
        gw_batch_doc_t d_;                                                                         \
        assert_int_equal(parse(&a_, w_, &d_), SL_ERR_MALFORMED_PROTOBUF);                          \
        assert_non_null(d_.err_detail);                                                            \
        if (!strstr(d_.err_detail, why))                                                           \
            fail_msg("detail '%s' lacks '%s'", d_.err_detail, why);                                \
        arena_free(&a_);                                                                           \
    } while (0)

static void test_malformed(void **state)
{
    static pbw_t w;
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x00};

    w.n = 0;
    pbw_uint(&w, 1, 5); /* records as a varint */
    EXPECT_MALFORMED(&w, "records (field 1)");
    w.n = 0;
    pbw_str(&w, 2, "x"); /* sent_at length-delimited */
    EXPECT_MALFORMED(&w, "sent_at (field 2)");
    w.n = 0;
    pbw_fixed(&w, 2, 1, 8);
    EXPECT_MALFORMED(&w, "sent_at (field 2)");
    w.n = 0;
    pbw_uint(&w, 3, 1);
    EXPECT_MALFORMED(&w, "write_key (field 3)");
    w.n = 0;
    pbw_tag(&w, 1, 3); /* records as a group */
    pbw_tag(&w, 1, 4);
    EXPECT_MALFORMED(&w, "records (field 1)");
    w.n = 0;
    pbw_tag(&w, 2, 0);
    pbw_raw(&w, "\x80\x80", 2);
    EXPECT_MALFORMED(&w, "truncated varint at byte 1");
    w.n = 0;
    pbw_tag(&w, 2, 0);
    pbw_raw(&w, eleven, sizeof(eleven));
    EXPECT_MALFORMED(&w, "varint over 64 bits");
    w.n = 0;
    pbw_raw(&w, eleven, sizeof(eleven)); /* as a tag */
    EXPECT_MALFORMED(&w, "varint over 64 bits");
    w.n = 0;
    pbw_tag(&w, 1, 2);
    pbw_varint(&w, 10);
    pbw_raw(&w, "abc", 3);
    EXPECT_MALFORMED(&w, "length past the end");
    w.n = 0;
    pbw_tag(&w, 1, 2);
    pbw_varint(&w, (uint64_t)1 << 34); /* a length that overflows any 32-bit sum */
    EXPECT_MALFORMED(&w, "length past the end");
    w.n = 0;
    pbw_tag(&w, 1, 2);
    pbw_raw(&w, "\x80\x80\x80\x80\x80\x00", 6); /* length 0 padded to 6 bytes */
    EXPECT_MALFORMED(&w, "length over 5 bytes");
    w.n = 0;
    pbw_raw(&w, "\x00", 1);
    EXPECT_MALFORMED(&w, "bad field tag");
    w.n = 0;
    pbw_varint(&w, (uint64_t)1 << 35); /* tag over 32 bits */
    EXPECT_MALFORMED(&w, "bad field tag");
    w.n = 0;
    pbw_raw(&w, "\x82\x82\x82\x82\x82\x00\x00", 7); /* a small tag padded to 6 bytes */
    EXPECT_MALFORMED(&w, "bad field tag");
    w.n = 0;
    pbw_tag(&w, 5, 6);
    EXPECT_MALFORMED(&w, "invalid wire type");
    w.n = 0;
    pbw_tag(&w, 5, 7);
    EXPECT_MALFORMED(&w, "invalid wire type");
    w.n = 0;
    pbw_tag(&w, 5, 4);
    EXPECT_MALFORMED(&w, "not started");
    w.n = 0;
    pbw_tag(&w, 5, 3);
    pbw_uint(&w, 1, 1);
    EXPECT_MALFORMED(&w, "group without its end");
    w.n = 0;
    pbw_tag(&w, 5, 3);
    pbw_tag(&w, 6, 4);
    EXPECT_MALFORMED(&w, "another field number");
    w.n = 0;
    pbw_tag(&w, 9, 1);
    pbw_raw(&w, "1234", 4);
    EXPECT_MALFORMED(&w, "truncated fixed-width");
    w.n = 0;
    pbw_tag(&w, 9, 5);
    pbw_raw(&w, "12", 2);
    EXPECT_MALFORMED(&w, "truncated fixed-width");
    /* unknown groups nested past max_depth */
    w.n = 0;
    for (int i = 0; i < 40; i++)
        pbw_tag(&w, 9, 3);
    for (int i = 0; i < 40; i++)
        pbw_tag(&w, 9, 4);
    EXPECT_MALFORMED(&w, "nested too deeply");
    /* a valid record after which the body is cut */
    w.n = 0;
    pbw_bytes(&w, 1, REC1, 7);
    w.n -= 1;
    EXPECT_MALFORMED(&w, "length past the end");
}

static void test_limits(void **state)
{
    arena_t a = {0};
    gw_batch_doc_t doc;
    static pbw_t w;
    gw_parse_limits_t few = limits;
    uint8_t big[65];

    /* one record too many: refused before any event array is allocated */
    few.max_events = 3;
    w.n = 0;
    for (int i = 0; i < 4; i++)
        pbw_bytes(&w, 1, REC2, 5);
    assert_int_equal(gw_parse_pb_batch((const char *)w.b, w.n, &few, arena_alloc, &a, &doc),
                     SL_ERR_TOO_MANY_EVENTS);
    assert_int_equal(a.n, 0);
    w.n = 0;
    for (int i = 0; i < 3; i++)
        pbw_bytes(&w, 1, REC2, 5);
    assert_int_equal(gw_parse_pb_batch((const char *)w.b, w.n, &few, arena_alloc, &a, &doc),
                     SL_ERR_OK);
    assert_int_equal(doc.n_events, 3);
    arena_free(&a);
    /* one oversized record: only that event is invalid */
    memset(big, 'x', sizeof(big));
    w.n = 0;
    pbw_bytes(&w, 1, REC2, 5);
    pbw_bytes(&w, 1, big, sizeof(big));
    pbw_bytes(&w, 1, big, 64); /* exactly the limit */
    assert_int_equal(parse(&a, &w, &doc), SL_ERR_OK);
    assert_int_equal(doc.n_events, 3);
    assert_int_equal(doc.events[0].err, SL_ERR_OK);
    assert_int_equal(doc.events[1].err, SL_ERR_EVENT_TOO_LARGE);
    assert_non_null(doc.events[1].err_detail);
    assert_int_equal(doc.events[1].raw_len, 65);
    assert_int_equal(doc.events[2].err, SL_ERR_OK);
    arena_free(&a);
    /* negative sent_at (ten-byte two's complement) */
    w.n = 0;
    pbw_uint(&w, 2, (uint64_t)-1);
    assert_int_equal(parse(&a, &w, &doc), SL_ERR_BAD_BATCH_FIELD);
    assert_non_null(doc.err_detail);
    arena_free(&a);
}

/* Every prefix of a valid batch either parses (it ends between fields) or is malformed; never
 * anything else, and never a read past the end (ASan). */
static void test_prefixes(void **state)
{
    static pbw_t w;
    w.n = 0;
    pbw_uint(&w, 2, 1764000000000ULL);
    pbw_str(&w, 3, "key");
    pbw_bytes(&w, 1, REC1, 7);
    pbw_tag(&w, 20, 3);
    pbw_fixed(&w, 1, 7, 8);
    pbw_tag(&w, 20, 4);
    pbw_bytes(&w, 1, REC2, 5);
    for (size_t cut = 0; cut <= w.n; cut++) {
        arena_t a = {0};
        gw_batch_doc_t doc;
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any overrun */
        memcpy(copy, w.b, cut);
        sl_err_t err = gw_parse_pb_batch((const char *)copy, cut, &limits, arena_alloc, &a, &doc);
        assert_true(err == SL_ERR_OK || err == SL_ERR_MALFORMED_PROTOBUF);
        if (cut == w.n) {
            assert_int_equal(err, SL_ERR_OK);
            assert_int_equal(doc.n_events, 2);
        }
        free(copy);
        arena_free(&a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protobuf_c_batch), cmocka_unit_test(test_empty_and_unknown),
        cmocka_unit_test(test_malformed),        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
