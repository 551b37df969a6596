/* Unit tests for the Protobuf half of schema/schema_binary.c: compiling protoc's serialized
 * FileDescriptorProto, then validating payloads that protobuf-c encodes (random valid values,
 * differential on the extracted envelope) and hand-written ones for every failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event3.pb-c.h"
#include "pb_write.h"
#include "schema.h"

/* The FileDescriptorProto inside protoc's FileDescriptorSet (field 1) in SL_PROTO_GEN/name. */
static uint8_t *load_desc(const char *name, size_t *len)
{
    char path[512];
    uint8_t *buf, *out;
    long size;
    FILE *f;
    size_t i = 0, n, shift = 0;
    uint64_t v = 0;

    snprintf(path, sizeof(path), "%s/%s", SL_PROTO_GEN, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size > 2);
    rewind(f);
    buf = malloc((size_t)size);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    assert_int_equal(buf[i++], 0x0A); /* field 1, length-delimited */
    do {
        v |= (uint64_t)(buf[i] & 0x7F) << shift;
        shift += 7;
    } while (buf[i++] & 0x80);
    n = (size_t)v;
    assert_true(i + n <= (size_t)size);
    out = malloc(n);
    memcpy(out, buf + i, n);
    free(buf);
    *len = n;
    return out;
}

static schema_t *compile_file(const char *name, uint32_t id)
{
    char err[256];
    size_t len;
    uint8_t *d = load_desc(name, &len);
    schema_t *s = schema_compile_protobuf(d, len, id, err, sizeof(err));
    if (!s)
        fail_msg("compile %s: %s", name, err);
    free(d);
    return s;
}

/* Validates [prefix][body]; prefix NULL means Confluent's [0] (the single byte 0). */
static int check(const schema_t *s, const uint8_t *prefix, size_t plen, const pbw_t *body,
                 schema_extract_t *x, schema_error_t *e)
{
    static uint8_t buf[PBW_CAP + 16];
    static const uint8_t zero = 0;
    if (!prefix)
        prefix = &zero, plen = 1;
    memcpy(buf, prefix, plen);
    memcpy(buf + plen, body->b, body->n);
    return schema_validate_binary(s, buf, plen + body->n, x, e);
}

#define EXPECT_FAIL(s, w, code_, path_)                                                            \
    do {                                                                                           \
        schema_error_t e_;                                                                         \
        assert_int_equal(check(s, NULL, 0, w, NULL, &e_), -1);                                     \
        if (e_.code != (code_) || strcmp(e_.path, path_) != 0)                                     \
            fail_msg("got %s at '%s' (%s), want %s at '%s'", sl_err_code(e_.code), e_.path,        \
                     e_.detail, sl_err_code(code_), path_);                                        \
        assert_true(e_.detail[0] != '\0');                                                         \
    } while (0)

#define EXPECT_OK(s, w)                                                                            \
    do {                                                                                           \
        schema_error_t e_;                                                                         \
        if (check(s, NULL, 0, w, NULL, &e_) != 0)                                                  \
            fail_msg("refused: %s at '%s': %s", sl_err_code(e_.code), e_.path, e_.detail);         \
    } while (0)

static void test_compile(void **state)
{
    schema_t *s = compile_file("event3.desc", 7);
    schema_t *s2 = compile_file("event2.desc", 8);
    uint8_t out[64];
    schema_error_t e;

    assert_int_equal(schema_kind(s), SCHEMA_KIND_PROTOBUF);
    assert_int_equal(schema_id(s), 7);
    assert_string_equal(schema_name(s), "sluice.test.Event");
    assert_null(schema_avro(s));
    assert_string_equal(schema_name(s2), "sluice.test2.Ev2");
    /* the JSON transcoder must refuse a Protobuf schema, not walk an empty program */
    assert_int_equal(schema_encode_json(s, "{}", 2, NULL, out, sizeof(out), &e), -1);
    assert_int_not_equal(e.code, SL_ERR_OK);
    schema_destroy(s);
    schema_destroy(s2);
    schema_destroy(NULL);
}

/* The registry serves descriptors base64: decoding them gives the same schema. */
static void test_base64(void **state)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len, n = 0;
    uint8_t *d = load_desc("event3.desc", &len);
    char *b64 = malloc(len / 3 * 4 + 8);
    uint8_t *back = malloc(len + 3);
    char err[128];
    schema_t *s;
    uint8_t small[2];

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < len ? (uint32_t)d[i + 1] << 8 : 0) |
                     (i + 2 < len ? d[i + 2] : 0);
        b64[n++] = tab[v >> 18];
        b64[n++] = tab[(v >> 12) & 63];
        b64[n++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        b64[n++] = i + 2 < len ? tab[v & 63] : '=';
    }
    assert_int_equal(schema_base64_decode(b64, n, back, len + 3), (ssize_t)len);
    assert_memory_equal(back, d, len);
    s = schema_compile_protobuf(back, len, 1, err, sizeof(err));
    assert_non_null(s);
    schema_destroy(s);
    assert_int_equal(schema_base64_decode("aGk=", 4, small, 2), 2);
    assert_memory_equal(small, "hi", 2);
    assert_int_equal(schema_base64_decode("aGk", 3, small, 2), 2);
    assert_int_equal(schema_base64_decode("aGk=", 4, small, 1), -1);  /* too small */
    assert_int_equal(schema_base64_decode("a*k=", 4, small, 2), -1);  /* bad character */
    assert_int_equal(schema_base64_decode("aGkhZ", 5, small, 2), -1); /* dangling 6 bits */
    free(d);
    free(b64);
    free(back);
}

/* Builds a FileDescriptorProto by hand: one message "M" with the given fields. */
typedef struct {
    const char *name;
    uint32_t number;
    int label, type;
    const char *type_name;
} fdesc_t;

static void field_desc(pbw_t *m, const fdesc_t *f)
{
    pbw_t fd = {.n = 0};
    pbw_str(&fd, 1, f->name);
    pbw_uint(&fd, 3, f->number);
    pbw_uint(&fd, 4, (uint64_t)f->label);
    pbw_uint(&fd, 5, (uint64_t)f->type);
    if (f->type_name)
        pbw_str(&fd, 6, f->type_name);
    pbw_sub(m, 2, &fd);
}

static schema_t *compile_hand(const fdesc_t *fields, size_t n, int with_import, char *err,
                              size_t errlen)
{
    static pbw_t file, msg;
    file.n = msg.n = 0;
    pbw_str(&file, 1, "hand.proto");
    pbw_str(&file, 2, "h");
    if (with_import)
        pbw_str(&file, 3, "google/protobuf/timestamp.proto");
    pbw_str(&msg, 1, "M");
    for (size_t i = 0; i < n; i++)
        field_desc(&msg, &fields[i]);
    pbw_sub(&file, 4, &msg);
    pbw_str(&file, 12, "proto3");
    return schema_compile_protobuf(file.b, file.n, 1, err, errlen);
}

static void test_compile_refusals(void **state)
{
    char err[256];
    static const uint8_t junk[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                   0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    static const uint8_t no_msg[] = {0x0A, 0x01, 'x'}; /* just a file name */
    const fdesc_t ok[] = {{"a", 1, 1, 9, NULL}, {"b", 2, 1, 11, ".h.M"}};
    const fdesc_t unresolved[] = {{"t", 1, 1, 11, ".google.protobuf.Timestamp"}};
    const fdesc_t dup[] = {{"a", 1, 1, 9, NULL}, {"b", 1, 1, 5, NULL}};
    const fdesc_t bad_type[] = {{"a", 1, 1, 19, NULL}};
    const fdesc_t bad_number[] = {{"a", 0, 1, 9, NULL}};
    const fdesc_t enum_as_msg[] = {{"a", 1, 1, 14, ".h.M"}};
    schema_t *s;

    assert_null(schema_compile_protobuf(NULL, 0, 1, err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(schema_compile_protobuf(junk, sizeof(junk), 1, err, sizeof(err)));
    assert_non_null(strstr(err, "FileDescriptorProto"));
    assert_null(schema_compile_protobuf(no_msg, sizeof(no_msg), 1, err, sizeof(err)));
    assert_non_null(strstr(err, "no message"));
    for (size_t cut = 1; cut < 20; cut++) { /* every truncation of a real descriptor */
        size_t len;
        uint8_t *d = load_desc("event3.desc", &len);
        s = schema_compile_protobuf(d, len - cut, 1, err, sizeof(err));
        schema_destroy(s); /* may be a shorter valid file; must not crash or leak */
        free(d);
    }
    s = compile_hand(ok, 2, 0, err, sizeof(err));
    assert_non_null(s); /* a recursive message is fine */
    schema_destroy(s);
    assert_null(compile_hand(ok, 2, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "imports"));
    assert_null(compile_hand(unresolved, 1, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "not in this file"));
    assert_null(compile_hand(dup, 2, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "twice"));
    assert_null(compile_hand(bad_type, 1, 0, err, sizeof(err)));
    assert_null(compile_hand(bad_number, 1, 0, err, sizeof(err)));
    assert_null(compile_hand(enum_as_msg, 1, 0, err, sizeof(err)));
}

/* ---- random valid payloads from protobuf-c ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static char *rnd_str(void)
{
    static const char *const parts[] = {"a", "Z", "0", "-", "é", "€", "😀", " ", "/", "ü"};
    size_t n = rnd() % 12;
    char *s = malloc(n * 4 + 1);
    s[0] = '\0';
    for (size_t i = 0; i < n; i++)
        strcat(s, parts[rnd() % 10]);
    return s;
}

static Sluice__Test__Props *rnd_props(int depth)
{
    Sluice__Test__Props *p = malloc(sizeof(*p));
    sluice__test__props__init(p);
    p->url = rnd_str();
    p->referrer = rnd_str();
    p->latency_ms = (int32_t)rnd();
    p->n_children = depth < 3 ? rnd() % 3 : 0;
    p->children = p->n_children ? malloc(p->n_children * sizeof(*p->children)) : NULL;
    for (size_t i = 0; i < p->n_children; i++)
        p->children[i] = rnd_props(depth + 1);
    return p;
}

static Sluice__Test__Event *rnd_event(void)
{
    Sluice__Test__Event *ev = malloc(sizeof(*ev));
    sluice__test__event__init(ev);
    ev->event_id = rnd_str();
    ev->event_type = rnd_str();
    ev->user_id = rnd_str();
    ev->session_id = rnd_str();
    ev->ts = (int64_t)rnd();
    if (rnd() % 2)
        ev->properties = rnd_props(0);
    ev->d = (double)rnd();
    ev->f = (float)rnd();
    ev->b = rnd() % 2;
    ev->raw.len = rnd() % 8;
    ev->raw.data = malloc(ev->raw.len + 1);
    for (size_t i = 0; i < ev->raw.len; i++)
        ev->raw.data[i] = (uint8_t)rnd(); /* bytes need not be UTF-8 */
    ev->u32 = (uint32_t)rnd();
    ev->u64 = rnd();
    ev->s32 = (int32_t)rnd();
    ev->s64 = (int64_t)rnd();
    ev->f32 = (uint32_t)rnd();
    ev->f64 = rnd();
    ev->sf32 = (int32_t)rnd();
    ev->sf64 = (int64_t)rnd();
    ev->color = (Sluice__Test__Event__Color)(rnd() % 3);
    ev->n_nums = rnd() % 6;
    ev->nums = malloc((ev->n_nums + 1) * sizeof(int32_t));
    for (size_t i = 0; i < ev->n_nums; i++)
        ev->nums[i] = (int32_t)rnd(); /* negatives are 10-byte varints */
    ev->n_tags = rnd() % 4;
    ev->tags = malloc((ev->n_tags + 1) * sizeof(char *));
    for (size_t i = 0; i < ev->n_tags; i++)
        ev->tags[i] = rnd_str();
    ev->n_counters = rnd() % 3;
    ev->counters = malloc((ev->n_counters + 1) * sizeof(*ev->counters));
    for (size_t i = 0; i < ev->n_counters; i++) {
        ev->counters[i] = malloc(sizeof(**ev->counters));
        sluice__test__event__counters_entry__init(ev->counters[i]);
        ev->counters[i]->key = rnd_str();
        ev->counters[i]->value = (int64_t)rnd();
    }
    ev->n_ds = rnd() % 4;
    ev->ds = malloc((ev->n_ds + 1) * sizeof(double));
    for (size_t i = 0; i < ev->n_ds; i++)
        ev->ds[i] = (double)rnd();
    ev->n_fx = rnd() % 4;
    ev->fx = malloc((ev->n_fx + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < ev->n_fx; i++)
        ev->fx[i] = (uint32_t)rnd();
    ev->n_inners = rnd() % 3;
    ev->inners = malloc((ev->n_inners + 1) * sizeof(*ev->inners));
    for (size_t i = 0; i < ev->n_inners; i++) {
        ev->inners[i] = malloc(sizeof(**ev->inners));
        sluice__test__event__inner__init(ev->inners[i]);
        ev->inners[i]->event_id = rnd_str();
        ev->inners[i]->user_id = rnd_str();
        ev->inners[i]->c = (Sluice__Test__Event__Color)(rnd() % 3);
    }
    ev->big = (int32_t)rnd();
    switch (rnd() % 3) {
    case 1:
        ev->choice_case = SLUICE__TEST__EVENT__CHOICE_NAME;
        ev->name = rnd_str();
        break;
    case 2:
        ev->choice_case = SLUICE__TEST__EVENT__CHOICE_NUMBER;
        ev->number = (int64_t)rnd();
        break;
    default:
        break;
    }
    return ev;
}

static void props_free(Sluice__Test__Props *p)
{
    for (size_t i = 0; i < p->n_children; i++)
        props_free(p->children[i]);
    free(p->children);
    free(p->url);
    free(p->referrer);
    free(p);
}

static void event_free(Sluice__Test__Event *ev)
{
    free(ev->event_id);
    free(ev->event_type);
    free(ev->user_id);
    free(ev->session_id);
    if (ev->properties)
        props_free(ev->properties);
    free(ev->raw.data);
    free(ev->nums);
    for (size_t i = 0; i < ev->n_tags; i++)
        free(ev->tags[i]);
    free(ev->tags);
    for (size_t i = 0; i < ev->n_counters; i++) {
        free(ev->counters[i]->key);
        free(ev->counters[i]);
    }
    free(ev->counters);
    free(ev->ds);
    free(ev->fx);
    for (size_t i = 0; i < ev->n_inners; i++) {
        free(ev->inners[i]->event_id);
        free(ev->inners[i]->user_id);
        free(ev->inners[i]);
    }
    free(ev->inners);
    if (ev->choice_case == SLUICE__TEST__EVENT__CHOICE_NAME)
        free(ev->name);
    free(ev);
}

/* A proto3 string field equal to "" is not written at all: then nothing is extracted. */
static void expect_slice(const schema_slice_t *sl, const char *want)
{
    if (want[0] == '\0') {
        assert_null(sl->ptr);
        return;
    }
    assert_non_null(sl->ptr);
    assert_int_equal(sl->len, strlen(want));
    assert_memory_equal(sl->ptr, want, sl->len);
}

static void test_random_events_differential(void **state)
{
    schema_t *s = compile_file("event3.desc", 7);
    static pbw_t w;

    for (int iter = 0; iter < 3000; iter++) {
        Sluice__Test__Event *ev = rnd_event();
        schema_extract_t x;
        schema_error_t e;
        size_t n = protobuf_c_message_get_packed_size(&ev->base);

        assert_true(n < PBW_CAP);
        w.n = protobuf_c_message_pack(&ev->base, w.b);
        assert_int_equal(w.n, n);
        if (check(s, NULL, 0, &w, &x, &e) != 0)
            fail_msg("iteration %d refused: %s at '%s': %s", iter, sl_err_code(e.code), e.path,
                     e.detail);
        expect_slice(&x.event_id, ev->event_id);
        expect_slice(&x.user_id, ev->user_id);
        expect_slice(&x.event_type, ev->event_type);
        /* the explicit [0] prefix (count 1, index 0) is the same message */
        {
            static const uint8_t idx0[] = {0x02, 0x00};
            assert_int_equal(check(s, idx0, 2, &w, NULL, &e), 0);
        }
        /* every prefix either validates (it ends between fields) or is refused cleanly */
        for (size_t cut = 0; cut < w.n; cut += 1 + w.n / 16) {
            pbw_t *p = malloc(sizeof(*p));
            p->n = cut;
            memcpy(p->b, w.b, cut);
            if (check(s, NULL, 0, p, NULL, &e) != 0)
                assert_true(e.code == SL_ERR_BAD_RECORD || e.code == SL_ERR_BAD_UTF8);
            free(p);
        }
        event_free(ev);
    }
    schema_destroy(s);
}

/* Nested message indexes select Event.Inner ([0, 0]) and Props ([1]). */
static void test_message_index(void **state)
{
    schema_t *s = compile_file("event3.desc", 7);
    static pbw_t w;
    schema_extract_t x;
    schema_error_t e;
    static const uint8_t inner[] = {0x04, 0x00, 0x00};          /* count 2: [0, 0] */
    static const uint8_t props[] = {0x02, 0x02};                /* count 1: [1] */
    static const uint8_t missing[] = {0x02, 0x04};              /* [2]: no third message */
    static const uint8_t missing_nested[] = {0x04, 0x02, 0x00}; /* [1, 0]: Props has none */
    static const uint8_t negative[] = {0x01};                   /* count -1 */
    static const uint8_t neg_index[] = {0x02, 0x01};            /* [-1] */
    static const uint8_t huge[] = {0xFE, 0x01};                 /* count 127 */
    static const uint8_t cut[] = {0x04, 0x00};                  /* count 2, one index */

    w.n = 0;
    pbw_str(&w, 1, "inner-id");
    pbw_str(&w, 2, "inner-user");
    pbw_uint(&w, 3, 2);
    assert_int_equal(check(s, inner, sizeof(inner), &w, &x, &e), 0);
    expect_slice(&x.event_id, "inner-id");
    expect_slice(&x.user_id, "inner-user");
    assert_null(x.event_type.ptr);
    /* the same bytes as Props: field 3 is latency_ms (varint) and 1, 2 strings: also valid */
    assert_int_equal(check(s, props, sizeof(props), &w, &x, &e), 0);
    assert_null(x.event_id.ptr);
    w.n = 0;
    pbw_uint(&w, 1, 5); /* Props.url as a varint */
    assert_int_equal(check(s, props, sizeof(props), &w, &x, &e), -1);
    assert_int_equal(e.code, SL_ERR_BAD_TYPE);
    assert_string_equal(e.path, "url");
    w.n = 0;
    assert_int_equal(check(s, missing, sizeof(missing), &w, NULL, &e), -1);
    assert_int_equal(e.code, SL_ERR_BAD_RECORD);
    assert_int_equal(check(s, missing_nested, sizeof(missing_nested), &w, NULL, &e), -1);
    assert_int_equal(check(s, negative, sizeof(negative), &w, NULL, &e), -1);
    assert_int_equal(check(s, neg_index, sizeof(neg_index), &w, NULL, &e), -1);
    assert_int_equal(check(s, huge, sizeof(huge), &w, NULL, &e), -1);
    assert_int_equal(check(s, cut, sizeof(cut), &w, NULL, &e), -1);
    assert_int_equal(e.code, SL_ERR_BAD_RECORD);
    assert_int_equal(schema_validate_binary(s, (const uint8_t *)"", 0, NULL, &e), -1);
    schema_destroy(s);
}

static void test_wire_failures(void **state)
{
    schema_t *s = compile_file("event3.desc", 7);
    static pbw_t w, sub, sub2;
    static const uint8_t bad_utf8[] = {'a', 0xC3, 0x28};
    static const uint8_t overlong[] = {0xC0, 0x80};
    static const uint8_t surrogate[] = {0xED, 0xA0, 0x80};
    static const uint8_t eleven[] = {0xA0, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x01};
    static const uint8_t tenth_big[] = {
        0x98, 0x80, 0x80, 0x80, 0x80, 0x80,
        0x80, 0x80, 0x80, 0x80, 0x02}; /* field 3 (ts) with bit 64 set */

    /* strings */
    w.n = 0;
    pbw_bytes(&w, 4, bad_utf8, sizeof(bad_utf8));
    EXPECT_FAIL(s, &w, SL_ERR_BAD_UTF8, "user_id");
    w.n = 0;
    pbw_bytes(&w, 1, overlong, sizeof(overlong));
    EXPECT_FAIL(s, &w, SL_ERR_BAD_UTF8, "event_id");
    w.n = 0;
    pbw_bytes(&w, 21, surrogate, sizeof(surrogate));
    EXPECT_FAIL(s, &w, SL_ERR_BAD_UTF8, "tags");
    w.n = 0;
    pbw_bytes(&w, 10, bad_utf8, sizeof(bad_utf8)); /* bytes: anything goes */
    EXPECT_OK(s, &w);
    /* wrong wire types */
    w.n = 0;
    pbw_uint(&w, 1, 1);
    EXPECT_FAIL(s, &w, SL_ERR_BAD_TYPE, "event_id");
    w.n = 0;
    pbw_str(&w, 3, "x");
    EXPECT_FAIL(s, &w, SL_ERR_BAD_TYPE, "ts");
    w.n = 0;
    pbw_fixed(&w, 7, 0, 4); /* double as fixed32 */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_TYPE, "d");
    w.n = 0;
    pbw_fixed(&w, 8, 0, 8); /* float as fixed64 */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_TYPE, "f");
    w.n = 0;
    pbw_uint(&w, 6, 0); /* message as varint */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_TYPE, "properties");
    w.n = 0;
    pbw_uint(&w, 300, 1); /* above the dense table: right type */
    EXPECT_OK(s, &w);
    w.n = 0;
    pbw_str(&w, 300, "x");
    EXPECT_FAIL(s, &w, SL_ERR_BAD_TYPE, "big");
    w.n = 0;
    pbw_str(&w, 9, ""); /* bool, length-delimited: not packable (not repeated) */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_TYPE, "b");
    /* nested paths */
    sub.n = 0;
    pbw_bytes(&sub, 1, bad_utf8, sizeof(bad_utf8));
    sub2.n = 0;
    pbw_sub(&sub2, 4, &sub); /* children { url: bad } */
    w.n = 0;
    pbw_sub(&w, 6, &sub2);
    EXPECT_FAIL(s, &w, SL_ERR_BAD_UTF8, "properties.children.url");
    /* truncations and malformed varints */
    w.n = 0;
    pbw_str(&w, 1, "abc");
    w.n--;
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "event_id");
    w.n = 0;
    pbw_tag(&w, 3, 0);
    pbw_raw(&w, "\x80", 1);
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "ts");
    w.n = 0;
    pbw_raw(&w, eleven, sizeof(eleven)); /* tag over 10 bytes */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "");
    w.n = 0;
    pbw_raw(&w, tenth_big, sizeof(tenth_big));
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "");
    w.n = 0;
    pbw_tag(&w, 3, 0);
    pbw_raw(&w, eleven + 1, sizeof(eleven) - 1); /* ts: 10 bytes, 10th = 1: fine */
    EXPECT_OK(s, &w);
    w.n = 0;
    pbw_tag(&w, 3, 0);
    pbw_raw(&w, tenth_big + 1, sizeof(tenth_big) - 1); /* ts: over 64 bits */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "ts");
    w.n = 0;
    pbw_tag(&w, 16, 1);
    pbw_raw(&w, "1234567", 7); /* fixed64 cut */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "f64");
    w.n = 0;
    pbw_tag(&w, 6, 2);
    pbw_varint(&w, 100); /* length past the end */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "properties");
    w.n = 0;
    pbw_raw(&w, "\x8A\x80\x80\x80\x80\x00\x00", 7); /* field 1 LEN, tag padded to 6 bytes */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "");
    w.n = 0;
    pbw_tag(&w, 10, 2);
    pbw_raw(&w, "\x80\x80\x80\x80\x80\x00", 6); /* bytes of length 0, padded to 6 bytes */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "raw");
    w.n = 0;
    pbw_raw(&w, "\x00", 1); /* field number 0 */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "");
    w.n = 0;
    pbw_tag(&w, 50, 6); /* wire types 6 and 7 do not exist */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "");
    w.n = 0;
    pbw_tag(&w, 50, 7);
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "");
    w.n = 0;
    pbw_tag(&w, 50, 4); /* end of a group never started */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "");
    schema_destroy(s);
}

static void test_packed_unknown_enum(void **state)
{
    schema_t *s = compile_file("event3.desc", 7);
    static pbw_t w, p;

    /* nums (proto3: packed by default) also read unpacked, as protobuf parsers do */
    w.n = 0;
    pbw_uint(&w, 20, 1);
    pbw_uint(&w, 20, (uint64_t)-1);
    EXPECT_OK(s, &w);
    p.n = 0;
    pbw_varint(&p, 1);
    pbw_varint(&p, 300);
    w.n = 0;
    pbw_sub(&w, 20, &p);
    EXPECT_OK(s, &w);
    p.n = 0;
    pbw_varint(&p, 1);
    pbw_raw(&p, "\x80", 1); /* the last varint of the pack is cut */
    w.n = 0;
    pbw_sub(&w, 20, &p);
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "nums[1]");
    /* fx is declared [packed = false] and still reads packed */
    w.n = 0;
    pbw_bytes(&w, 26, "12345678", 8);
    EXPECT_OK(s, &w);
    w.n = 0;
    pbw_bytes(&w, 26, "12345", 5);
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "fx");
    w.n = 0;
    pbw_bytes(&w, 25, "1234567812345678", 16); /* ds: two doubles */
    EXPECT_OK(s, &w);
    w.n = 0;
    pbw_bytes(&w, 25, "1234", 4);
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "ds");
    /* open enum (proto3): any value */
    w.n = 0;
    pbw_uint(&w, 19, 77);
    EXPECT_OK(s, &w);
    /* unknown fields of every wire type are skipped, groups too (nested) */
    w.n = 0;
    pbw_uint(&w, 99, 5);
    pbw_fixed(&w, 98, 1, 8);
    pbw_fixed(&w, 97, 1, 4);
    pbw_str(&w, 96, "\xff not checked");
    pbw_tag(&w, 95, 3);
    pbw_uint(&w, 1, 1); /* inside the unknown group: field 1 is not event_id there */
    pbw_tag(&w, 94, 3);
    pbw_tag(&w, 94, 4);
    pbw_tag(&w, 95, 4);
    pbw_str(&w, 1, "id");
    EXPECT_OK(s, &w);
    w.n = 0;
    pbw_tag(&w, 95, 3);
    pbw_tag(&w, 94, 4); /* ends with the wrong number */
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "");
    w.n = 0;
    pbw_tag(&w, 95, 3); /* never ends */
    pbw_uint(&w, 1, 1);
    EXPECT_FAIL(s, &w, SL_ERR_BAD_RECORD, "");
    /* the last occurrence of a singular string wins, as protobuf reads it */
    {
        schema_extract_t x;
        schema_error_t e;
        w.n = 0;
        pbw_str(&w, 1, "first");
        pbw_str(&w, 1, "second");
        assert_int_equal(check(s, NULL, 0, &w, &x, &e), 0);
        expect_slice(&x.event_id, "second");
    }
    schema_destroy(s);
}

static void test_depth(void **state)
{
    schema_t *s = compile_file("event3.desc", 7);
    static const uint8_t props[] = {0x02, 0x02}; /* [1]: Props */
    pbw_t *lvl = malloc(sizeof(*lvl)), *next = malloc(sizeof(*next));
    schema_error_t e;

    for (int depth = 1; depth <= 40; depth++) {
        /* Props nested `depth` levels through children (field 4) */
        lvl->n = 0;
        pbw_str(lvl, 1, "/x");
        for (int i = 1; i < depth; i++) {
            next->n = 0;
            pbw_sub(next, 4, lvl);
            memcpy(lvl, next, sizeof(*lvl));
        }
        int rc = check(s, props, sizeof(props), lvl, NULL, &e);
        if (depth <= SCHEMA_MAX_DEPTH) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(e.code, SL_ERR_TOO_DEEP);
            assert_true(strncmp(e.path, "children.children.", 18) == 0);
        }
    }
    /* unknown groups nested past the bound */
    lvl->n = 0;
    for (int i = 0; i < 40; i++)
        pbw_tag(lvl, 90, 3);
    for (int i = 0; i < 40; i++)
        pbw_tag(lvl, 90, 4);
    assert_int_equal(check(s, NULL, 0, lvl, NULL, &e), -1);
    assert_int_equal(e.code, SL_ERR_TOO_DEEP);
    free(lvl);
    free(next);
    schema_destroy(s);
}

/* proto2: required fields, closed enums, groups. */
static void test_proto2(void **state)
{
    schema_t *s = compile_file("event2.desc", 8);
    static pbw_t w, g, sub, sub2;
    static const uint8_t sub_idx[] = {0x02, 0x02}; /* [1]: Sub */
    schema_extract_t x;
    schema_error_t e;

    w.n = 0;
    pbw_str(&w, 1, "id");
    pbw_str(&w, 2, "u");
    assert_int_equal(check(s, NULL, 0, &w, &x, &e), 0);
    expect_slice(&x.event_id, "id");
    expect_slice(&x.user_id, "u");
    w.n = 0;
    pbw_str(&w, 1, "id");
    EXPECT_FAIL(s, &w, SL_ERR_MISSING_FIELD, "user_id");
    w.n = 0;
    pbw_str(&w, 2, "u");
    pbw_str(&w, 1, "");
    EXPECT_OK(s, &w); /* proto2 presence: an empty required string is present */
    /* closed enum: 1, 2 and -5 (a 10-byte varint) only */
    pbw_uint(&w, 3, 2);
    EXPECT_OK(s, &w);
    pbw_uint(&w, 3, (uint64_t)-5);
    EXPECT_OK(s, &w);
    pbw_uint(&w, 3, 3);
    EXPECT_FAIL(s, &w, SL_ERR_BAD_ENUM, "kind");
    /* the group: required y inside it */
    w.n = 0;
    pbw_str(&w, 1, "id");
    pbw_str(&w, 2, "u");
    pbw_tag(&w, 4, 3);
    pbw_uint(&w, 5, 1);
    pbw_str(&w, 6, "y");
    pbw_tag(&w, 4, 4);
    pbw_uint(&w, 7, 3);
    EXPECT_OK(s, &w);
    g.n = 0;
    pbw_str(&g, 1, "id");
    pbw_str(&g, 2, "u");
    pbw_tag(&g, 4, 3);
    pbw_uint(&g, 5, 1);
    pbw_tag(&g, 4, 4);
    EXPECT_FAIL(s, &g, SL_ERR_MISSING_FIELD, "grp.y");
    g.n = 0;
    pbw_str(&g, 1, "id");
    pbw_str(&g, 2, "u");
    pbw_tag(&g, 4, 3);
    pbw_str(&g, 6, "y");
    EXPECT_FAIL(s, &g, SL_ERR_BAD_RECORD, "grp");
    g.n = 0;
    pbw_str(&g, 1, "id");
    pbw_str(&g, 2, "u");
    pbw_tag(&g, 4, 3);
    pbw_str(&g, 6, "y");
    pbw_tag(&g, 5, 4); /* closes with another number */
    EXPECT_FAIL(s, &g, SL_ERR_BAD_RECORD, "grp");
    g.n = 0;
    pbw_str(&g, 1, "id");
    pbw_str(&g, 2, "u");
    pbw_str(&g, 4, "y"); /* group field, length-delimited */
    EXPECT_FAIL(s, &g, SL_ERR_BAD_TYPE, "grp");
    /* required inside a nested optional message */
    sub2.n = 0;
    sub.n = 0;
    pbw_uint(&sub, 1, 1);
    pbw_sub(&sub, 2, &sub2); /* next {} lacks n */
    w.n = 0;
    pbw_str(&w, 1, "id");
    pbw_str(&w, 2, "u");
    pbw_sub(&w, 8, &sub);
    EXPECT_FAIL(s, &w, SL_ERR_MISSING_FIELD, "sub.next.n");
    /* unpacked repeated in proto2, and packed */
    w.n = 0;
    pbw_str(&w, 1, "id");
    pbw_str(&w, 2, "u");
    pbw_uint(&w, 7, 1);
    pbw_bytes(&w, 7, "\x01\x02\x03", 3);
    EXPECT_OK(s, &w);
    /* Sub as the record's message */
    sub.n = 0;
    pbw_uint(&sub, 1, 9);
    assert_int_equal(check(s, sub_idx, sizeof(sub_idx), &sub, NULL, &e), 0);
    sub.n = 0;
    assert_int_equal(check(s, sub_idx, sizeof(sub_idx), &sub, NULL, &e), -1);
    assert_int_equal(e.code, SL_ERR_MISSING_FIELD);
    assert_string_equal(e.path, "n");
    schema_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_compile_refusals),
        cmocka_unit_test(test_random_events_differential),
        cmocka_unit_test(test_message_index),
        cmocka_unit_test(test_wire_failures),
        cmocka_unit_test(test_packed_unknown_enum),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_proto2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
