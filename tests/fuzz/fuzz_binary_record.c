/* libFuzzer target for binary records (schema/schema_binary.c): the Confluent framing, then the
 * payload validated against a fixed schema chosen by the schema id (id % 3): an Avro record
 * using every type, the proto3 test schema, the proto2 test schema (tests/unit/schema/proto).
 * Differential where an independent decoder exists: an Avro payload we accept must be read by
 * avro-c to its last byte with the same event_id/user_id/event_type; a proto3 payload we accept
 * must unpack with protobuf-c to the same strings. Refusals must carry a code and a detail.
 * Also built with replay_main.c to replay the corpus under ctest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "binary_fixtures.h"
#include "event3.pb-c.h"
#include "schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The FileDescriptorProto inside protoc's FileDescriptorSet SL_PROTO_GEN/name. */
static schema_t *load_pb(const char *name, uint32_t id)
{
    char path[512], err[256];
    uint8_t buf[16384];
    size_t n, i = 1, shift = 0;
    uint64_t len = 0;
    schema_t *s;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", SL_PROTO_GEN, name);
    f = fopen(path, "rb");
    CHECK(f != NULL);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    CHECK(n > 2 && n < sizeof(buf) && buf[0] == 0x0A);
    do {
        len |= (uint64_t)(buf[i] & 0x7F) << shift;
        shift += 7;
    } while (buf[i++] & 0x80);
    CHECK(i + len <= n);
    s = schema_compile_protobuf(buf + i, (size_t)len, id, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "%s: %s\n", name, err);
        abort();
    }
    return s;
}

static schema_t *schemas[3];
static avro_value_iface_t *avro_iface;

static void init(void)
{
    char err[256];
    if (schemas[0])
        return;
    schemas[0] = schema_compile_avro(binary_avro_all_types, strlen(binary_avro_all_types), 0, err,
                                     sizeof(err));
    CHECK(schemas[0] != NULL);
    avro_iface = avro_generic_class_from_schema(schema_avro(schemas[0]));
    CHECK(avro_iface != NULL);
    schemas[1] = load_pb("event3.desc", 1);
    schemas[2] = load_pb("event2.desc", 2);
}

static int slice_inside(const schema_slice_t *sl, const uint8_t *p, size_t len)
{
    if (!sl->ptr)
        return sl->len == 0;
    return (const uint8_t *)sl->ptr >= p && (const uint8_t *)sl->ptr + sl->len <= p + len;
}

/* protobuf-c's strings stop at the first NUL (valid UTF-8, so we keep the whole field) */
static void check_cstr(const schema_slice_t *sl, const char *s)
{
    size_t n = strlen(s);
    const char *nul;
    if (n == 0 && !sl->ptr)
        return;
    CHECK(sl->ptr && sl->len >= n && memcmp(sl->ptr, s, n) == 0);
    nul = memchr(sl->ptr, 0, sl->len);
    CHECK(nul ? (size_t)(nul - sl->ptr) == n : sl->len == n);
}

static void check_slice(const schema_slice_t *sl, const char *s, size_t len)
{
    if (!s || len == 0) { /* absent or empty: a proto3 "" is not written */
        CHECK(!sl->ptr || sl->len == len);
        return;
    }
    CHECK(sl->ptr && sl->len == len && memcmp(sl->ptr, s, len) == 0);
}

static const char *avro_field_str(avro_value_t *rec, const char *name, size_t *len)
{
    avro_value_t f, br;
    const char *s;
    CHECK(avro_value_get_by_name(rec, name, &f, NULL) == 0);
    if (avro_value_get_type(&f) == AVRO_UNION) {
        CHECK(avro_value_get_current_branch(&f, &br) == 0);
        if (avro_value_get_type(&br) != AVRO_STRING)
            return NULL;
        f = br;
    }
    CHECK(avro_value_get_string(&f, &s, len) == 0);
    (*len)--; /* avro-c counts the NUL */
    return s;
}

static void avro_differential(const uint8_t *p, size_t len, const schema_extract_t *x)
{
    avro_reader_t r = avro_reader_memory((const char *)p, (int64_t)len);
    avro_value_t v;
    const char *s;
    size_t n;

    CHECK(avro_generic_value_new(avro_iface, &v) == 0);
    if (avro_value_read(r, &v) != 0) {
        fprintf(stderr, "accepted, avro-c cannot read it: %s\n", avro_strerror());
        abort();
    }
    {
        char extra; /* the memory reader has no EOF test: a further byte must not be there */
        CHECK(avro_read(r, &extra, 1) != 0);
    }
    s = avro_field_str(&v, "event_id", &n);
    check_slice(&x->event_id, s, s ? n : 0);
    s = avro_field_str(&v, "event_type", &n);
    check_slice(&x->event_type, s, s ? n : 0);
    s = avro_field_str(&v, "user_id", &n);
    check_slice(&x->user_id, s, s ? n : 0);
    avro_value_decref(&v);
    avro_reader_free(r);
}

/* Whether an accepted proto3 message holds a group anywhere (protobuf-c cannot read groups, so
 * those inputs are not compared). kind: 0 Event, 1 Props, 2 a message without nested ones. The
 * input was accepted, so the structure is sound and this walk needs no bounds beyond len. */
static int has_group(const uint8_t *p, size_t len, int kind, int depth)
{
    const uint8_t *end = p + len;
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
        case 2: {
            uint32_t num = (uint32_t)(tag >> 3);
            int sub = kind == 0 && num == 6                   ? 1
                      : kind == 0 && (num == 22 || num == 27) ? 2
                      : kind == 1 && num == 4                 ? 1
                                                              : -1;
            shift = 0;
            do {
                v |= (uint64_t)(*p & 0x7F) << shift;
                shift += 7;
            } while (*p++ & 0x80);
            if (sub >= 0 && depth < 64 && has_group(p, (size_t)v, sub, depth + 1))
                return 1;
            p += v;
            break;
        }
        default:
            return 1; /* 3 or 4: a group */
        }
    }
    return 0;
}

static void pb_differential(const uint8_t *p, size_t len, const schema_extract_t *x)
{
    Sluice__Test__Event *ev;

    if (len == 0 || p[0] != 0) /* only [0] (Event) is compared */
        return;
    if (has_group(p + 1, len - 1, 0, 0))
        return;
    ev = sluice__test__event__unpack(NULL, len - 1, p + 1);
    if (!ev) {
        fprintf(stderr, "accepted, protobuf-c cannot unpack it\n");
        abort();
    }
    check_cstr(&x->event_id, ev->event_id);
    check_cstr(&x->user_id, ev->user_id);
    check_cstr(&x->event_type, ev->event_type);
    sluice__test__event__free_unpacked(ev, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t id;
    const uint8_t *payload;
    size_t len;
    schema_extract_t x;
    schema_error_t e;
    const schema_t *s;
    int rc;

    init();
    if (schema_frame_parse(data, size, &id, &payload, &len) != 0) {
        CHECK(size < SCHEMA_FRAME_BYTES || data[0] != 0);
        return 0;
    }
    CHECK(payload == data + SCHEMA_FRAME_BYTES && len == size - SCHEMA_FRAME_BYTES);
    s = schemas[id % 3];
    rc = schema_validate_binary(s, payload, len, &x, &e);
    CHECK(memchr(e.path, 0, sizeof(e.path)) != NULL);
    CHECK(memchr(e.detail, 0, sizeof(e.detail)) != NULL);
    if (rc != 0) {
        CHECK(rc == -1 && e.code != SL_ERR_OK && e.detail[0] != '\0');
        return 0;
    }
    CHECK(e.code == SL_ERR_OK);
    CHECK(slice_inside(&x.event_id, payload, len));
    CHECK(slice_inside(&x.user_id, payload, len));
    CHECK(slice_inside(&x.event_type, payload, len));
    if (id % 3 == 0)
        avro_differential(payload, len, &x);
    else if (id % 3 == 1)
        pb_differential(payload, len, &x);
    return 0;
}
