/* libFuzzer target for the binary batch reader (gateway/gw_parse_pb.c). Invariants: a parsed
 * batch's events and write key are slices of the body, within the limits; a refusal is one of
 * the documented codes with a detail. Differential: a body we accept must unpack with protobuf-c
 * (sluice.v1.RecordBatch from gateway/proto) to the same records, sent_at and write key. Also
 * built with replay_main.c to replay the corpus under ctest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_int.h"
#include "record_batch.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct {
    void *blocks[8];
    size_t n;
} arena_t;

static void *arena_alloc(void *actx, size_t n)
{
    arena_t *a = actx;
    CHECK(a->n < 8); /* the reader allocates at most the event array and one detail */
    a->blocks[a->n] = malloc(n ? n : 1);
    CHECK(a->blocks[a->n] != NULL);
    return a->blocks[a->n++];
}

static int inside(const void *p, size_t len, const uint8_t *data, size_t size)
{
    return (const uint8_t *)p >= data && (const uint8_t *)p + len <= data + size;
}

/* Whether an accepted body has a top-level group (protobuf-c cannot skip groups: such bodies
 * are not compared). The body was accepted, so its structure is sound. */
static int has_group(const uint8_t *p, size_t size)
{
    const uint8_t *end = p + size;
    while (p < end) {
        uint64_t tag = 0, v = 0;
        unsigned shift = 0;
        do {
            tag |= (uint64_t)(*p & 0x7F) << shift;
            shift += 7;
        } while (*p++ & 0x80);
        switch (tag & 7) {
        case 0:
            while (*p++ & 0x80)
                ;
            break;
        case 1:
            p += 8;
            break;
        case 5:
            p += 4;
            break;
        case 2:
            shift = 0;
            do {
                v |= (uint64_t)(*p & 0x7F) << shift;
                shift += 7;
            } while (*p++ & 0x80);
            p += v;
            break;
        default:
            return 1;
        }
    }
    return 0;
}

static void differential(const uint8_t *data, size_t size, const gw_batch_doc_t *doc)
{
    Sluice__V1__RecordBatch *b;

    if (has_group(data, size))
        return;
    b = sluice__v1__record_batch__unpack(NULL, size, data);
    if (!b) {
        fprintf(stderr, "accepted, protobuf-c cannot unpack it\n");
        abort();
    }
    CHECK(b->n_records == doc->n_events);
    for (size_t i = 0; i < b->n_records; i++) {
        CHECK(b->records[i].len == doc->events[i].raw_len);
        CHECK(b->records[i].len == 0 ||
              memcmp(b->records[i].data, doc->events[i].raw, b->records[i].len) == 0);
    }
    CHECK(b->sent_at == doc->sent_at);
    if (doc->write_key) {
        /* protobuf-c stops a string at an embedded NUL: compare what it kept */
        size_t n = strlen(b->write_key);
        CHECK(n <= doc->write_key_len && memcmp(b->write_key, doc->write_key, n) == 0);
    } else {
        CHECK(b->write_key[0] == '\0');
    }
    sluice__v1__record_batch__free_unpacked(b, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const gw_parse_limits_t limits = {
        .max_events = 50, .max_event_bytes = 256, .max_depth = 16};
    arena_t a = {{0}, 0};
    gw_batch_doc_t doc;
    sl_err_t err = gw_parse_pb_batch((const char *)data, size, &limits, arena_alloc, &a, &doc);

    if (err == SL_ERR_OK) {
        CHECK(doc.n_events <= limits.max_events);
        for (size_t i = 0; i < doc.n_events; i++) {
            const gw_event_t *ev = &doc.events[i];
            CHECK(inside(ev->raw, ev->raw_len, data, size));
            CHECK((ev->err == SL_ERR_EVENT_TOO_LARGE) == (ev->raw_len > limits.max_event_bytes));
        }
        CHECK(!doc.write_key || inside(doc.write_key, doc.write_key_len, data, size));
        CHECK(doc.sent_at >= 0);
        differential(data, size, &doc);
    } else {
        CHECK(err == SL_ERR_MALFORMED_PROTOBUF || err == SL_ERR_TOO_MANY_EVENTS ||
              err == SL_ERR_BAD_BATCH_FIELD);
        CHECK(doc.err_detail != NULL && doc.err_detail[0] != '\0');
    }
    for (size_t i = 0; i < a.n; i++)
        free(a.blocks[i]);
    return 0;
}
