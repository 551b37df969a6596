/* Binary records: Confluent framing, an allocation-free Avro binary walker driven by the compiled
 * program of schema_int.h, and a Protobuf validator driven by a small program compiled from a
 * serialized FileDescriptorProto (read with our own wire-format reader: descriptor.proto is
 * itself protobuf). Validation reads each byte once; paths are built only on failure. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_int.h"

/* ---- shared: errors, UTF-8 ---- */

__attribute__((format(printf, 3, 4))) static int bin_fail(schema_error_t *e, sl_err_t code,
                                                          const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    e->path[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
    va_end(ap);
    return -1;
}

/* Puts comp in front of the path while unwinding from a failure (cold): fields join with '.',
 * positions ("[3]") attach directly. What does not fit is cut from the innermost end. */
static int path_prepend(schema_error_t *e, const char *comp, size_t len)
{
    char tmp[sizeof(e->path)];
    size_t cap = sizeof(e->path) - 1, old = strlen(e->path), off = 0;
    int dot = old > 0 && e->path[0] != '[';

    if (len > cap)
        len = cap;
    memcpy(tmp, comp, len);
    off = len;
    if (dot && off < cap)
        tmp[off++] = '.';
    if (old > cap - off)
        old = cap - off;
    memcpy(tmp + off, e->path, old);
    off += old;
    /* a field name cut mid-sequence must not leave invalid UTF-8 in a JSON answer */
    while (off > 0 && off == cap && ((unsigned char)tmp[off - 1] & 0x80))
        off--;
    tmp[off] = '\0';
    memcpy(e->path, tmp, off + 1);
    return -1;
}

static int path_index(schema_error_t *e, uint64_t i)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "[%llu]", (unsigned long long)i);
    return path_prepend(e, b, (size_t)n);
}

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF. ASCII runs are
 * checked eight bytes at a time, which is most of an analytics event. */
static int utf8_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (p[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
            if (i + 2 >= n || p[i + 1] < lo || p[i + 1] > hi || (p[i + 2] & 0xC0) != 0x80)
                return 0;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
            if (i + 3 >= n || p[i + 1] < lo || p[i + 1] > hi || (p[i + 2] & 0xC0) != 0x80 ||
                (p[i + 3] & 0xC0) != 0x80)
                return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* Base-128 varint of at most max_bytes bytes (10 for 64 bits: the 10th may only carry bit 63).
 * Returns the byte count, or 0 when truncated or over-long. */
static inline size_t get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    size_t avail = (size_t)(end - p);
    if (avail > 0 && p[0] < 0x80) { /* most values: lengths, small ints, tags */
        *v = p[0];
        return 1;
    }
    for (size_t i = 0; i < 10 && i < avail; i++) {
        uint8_t b = p[i];
        if (i == 9 && b > 1)
            return 0;
        r |= (uint64_t)(b & 0x7F) << (7 * i);
        if (b < 0x80) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

/* A protobuf length: a varint of at most 5 bytes (protobuf readers take lengths as 32-bit) whose
 * value fits in what is left. Returns the varint's byte count, or 0. */
static inline size_t get_pb_len(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    size_t n = get_varint(p, end, v);
    if (n == 0 || n > 5 || *v > (uint64_t)(end - p - n))
        return 0;
    return n;
}

int schema_frame_parse(const uint8_t *rec, size_t len, uint32_t *id, const uint8_t **payload,
                       size_t *payload_len)
{
    if (!rec || len < SCHEMA_FRAME_BYTES || rec[0] != 0)
        return -1;
    *id = (uint32_t)rec[1] << 24 | (uint32_t)rec[2] << 16 | (uint32_t)rec[3] << 8 | rec[4];
    *payload = rec + SCHEMA_FRAME_BYTES;
    *payload_len = len - SCHEMA_FRAME_BYTES;
    return 0;
}

schema_kind_t schema_kind(const schema_t *s)
{
    return (schema_kind_t)s->kind;
}

/* ---- Avro binary ---- */

typedef struct {
    const schema_t *s;
    const uint8_t *p, *end;
    /* Items left for the whole record. An array of zero-byte items (null, an empty record) costs
     * no input per item, so a block count of 2^62 would otherwise spin: arrays and maps may hold
     * at most 2 * payload bytes + 4096 items in total. */
    uint64_t items_left;
    schema_error_t *e;
} av_t;

static int av_long(av_t *c, int64_t *v)
{
    uint64_t z;
    size_t n = get_varint(c->p, c->end, &z);
    if (n == 0)
        return bin_fail(c->e, SL_ERR_BAD_RECORD,
                        c->p == c->end ? "truncated: long expected" : "long: over-long varint");
    c->p += n;
    *v = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    return 0;
}

static int av_int(av_t *c, int32_t *v)
{
    uint64_t z;
    size_t n = get_varint(c->p, c->end, &z);
    if (n == 0)
        return bin_fail(c->e, SL_ERR_BAD_RECORD,
                        c->p == c->end ? "truncated: int expected" : "int: over-long varint");
    if (n > 5)
        return bin_fail(c->e, SL_ERR_BAD_RECORD, "int: varint over 5 bytes");
    if (z > 0xFFFFFFFFu)
        return bin_fail(c->e, SL_ERR_OUT_OF_RANGE, "int: value over 32 bits");
    c->p += n;
    *v = (int32_t)((uint32_t)(z >> 1) ^ -(uint32_t)(z & 1));
    return 0;
}

/* A length (bytes, string, block byte size) that must fit in what is left. */
static int av_len(av_t *c, const char *what, size_t *len)
{
    int64_t n;
    if (av_long(c, &n))
        return -1;
    if (n < 0)
        return bin_fail(c->e, SL_ERR_BAD_RECORD, "%s: negative length", what);
    if ((uint64_t)n > (uint64_t)(c->end - c->p))
        return bin_fail(c->e, SL_ERR_BAD_RECORD, "%s: length %lld past the end", what,
                        (long long)n);
    *len = (size_t)n;
    return 0;
}

static int av_string(av_t *c, const uint8_t **str, size_t *len)
{
    if (av_len(c, "string", len))
        return -1;
    if (!utf8_ok(c->p, *len))
        return bin_fail(c->e, SL_ERR_BAD_UTF8, "string is not valid UTF-8");
    *str = c->p;
    c->p += *len;
    return 0;
}

static int av_value(av_t *c, uint32_t node, unsigned depth);

/* Array items or map entries: blocks of (count, [byte size when count < 0], items) up to a
 * zero count. */
static int av_blocks(av_t *c, const snode_t *n, unsigned depth)
{
    uint64_t index = 0;
    int is_map = n->type == SN_MAP;

    for (;;) {
        int64_t count;
        size_t size = 0;
        int has_size = 0;
        const uint8_t *start;

        if (av_long(c, &count))
            return -1;
        if (count == 0)
            return 0;
        if (count < 0) {
            if (count == INT64_MIN)
                return bin_fail(c->e, SL_ERR_BAD_RECORD, "block count out of range");
            count = -count;
            if (av_len(c, "block", &size))
                return -1;
            has_size = 1;
        }
        if ((uint64_t)count > c->items_left)
            return bin_fail(c->e, SL_ERR_BAD_RECORD,
                            "block of %lld items: more than the record can hold", (long long)count);
        c->items_left -= (uint64_t)count;
        start = c->p;
        for (int64_t i = 0; i < count; i++, index++) {
            if (is_map) {
                const uint8_t *k;
                size_t klen;
                if (av_string(c, &k, &klen))
                    return path_index(c->e, index);
            }
            if (av_value(c, n->child, depth + 1))
                return path_index(c->e, index);
        }
        /* the byte size lets readers skip a block unread: it must be the truth */
        if (has_size && (size_t)(c->p - start) != size)
            return bin_fail(c->e, SL_ERR_BAD_RECORD, "block byte size %zu, items used %zu", size,
                            (size_t)(c->p - start));
    }
}

static int av_value(av_t *c, uint32_t node, unsigned depth)
{
    const snode_t *n = &c->s->nodes[node];
    const schema_t *s = c->s;

    switch ((snode_type_t)n->type) {
    case SN_NULL:
        return 0;
    case SN_BOOLEAN:
        if (c->p == c->end)
            return bin_fail(c->e, SL_ERR_BAD_RECORD, "truncated: boolean expected");
        if (*c->p > 1)
            return bin_fail(c->e, SL_ERR_BAD_VALUE, "boolean byte %u is not 0 or 1", *c->p);
        c->p++;
        return 0;
    case SN_INT: {
        int32_t v;
        return av_int(c, &v);
    }
    case SN_LONG: {
        int64_t v;
        return av_long(c, &v);
    }
    case SN_FLOAT:
    case SN_DOUBLE: {
        size_t w = n->type == SN_FLOAT ? 4 : 8;
        if ((size_t)(c->end - c->p) < w)
            return bin_fail(c->e, SL_ERR_BAD_RECORD, "truncated: %s expected",
                            n->type == SN_FLOAT ? "float" : "double");
        c->p += w;
        return 0;
    }
    case SN_BYTES: {
        size_t len;
        if (av_len(c, "bytes", &len))
            return -1;
        c->p += len;
        return 0;
    }
    case SN_STRING: {
        const uint8_t *str;
        size_t len;
        return av_string(c, &str, &len);
    }
    case SN_FIXED:
        if ((size_t)(c->end - c->p) < n->count)
            return bin_fail(c->e, SL_ERR_BAD_RECORD, "truncated: fixed(%u) expected", n->count);
        c->p += n->count;
        return 0;
    case SN_ENUM: {
        int32_t v;
        if (av_int(c, &v))
            return -1;
        if (v < 0 || (uint32_t)v >= n->count)
            return bin_fail(c->e, SL_ERR_BAD_ENUM, "enum index %d, the enum has %u symbols", v,
                            n->count);
        return 0;
    }
    case SN_ARRAY:
    case SN_MAP:
        if (depth >= SCHEMA_MAX_DEPTH)
            return bin_fail(c->e, SL_ERR_TOO_DEEP, "nested deeper than %d", SCHEMA_MAX_DEPTH);
        return av_blocks(c, n, depth);
    case SN_RECORD:
        if (depth >= SCHEMA_MAX_DEPTH)
            return bin_fail(c->e, SL_ERR_TOO_DEEP, "nested deeper than %d", SCHEMA_MAX_DEPTH);
        for (uint32_t i = 0; i < n->count; i++) {
            const sfield_t *f = &s->fields[n->first + i];
            if (av_value(c, f->node, depth + 1))
                return path_prepend(c->e, f->name, f->name_len);
        }
        return 0;
    case SN_UNION: {
        int64_t b;
        if (av_long(c, &b))
            return -1;
        if (b < 0 || (uint64_t)b >= n->count)
            return bin_fail(c->e, SL_ERR_BAD_VALUE, "union branch %lld, the union has %u",
                            (long long)b, n->count);
        return av_value(c, s->branches[n->first + b], depth);
    }
    }
    return bin_fail(c->e, SL_ERR_INTERNAL, "unknown node type %u", n->type);
}

/* The top-level record: like av_value's SN_RECORD, plus the envelope strings. */
static int av_root(av_t *c, schema_extract_t *out)
{
    const schema_t *s = c->s;
    const snode_t *root = &s->nodes[s->root];

    for (uint32_t i = 0; i < root->count; i++) {
        const sfield_t *f = &s->fields[root->first + i];
        uint32_t node = f->node;
        schema_slice_t *slot = NULL;
        const uint8_t *str;
        size_t len;

        if (f->name_len == 8 && memcmp(f->name, "event_id", 8) == 0)
            slot = &out->event_id;
        else if (f->name_len == 7 && memcmp(f->name, "user_id", 7) == 0)
            slot = &out->user_id;
        else if (f->name_len == 10 && memcmp(f->name, "event_type", 10) == 0)
            slot = &out->event_type;
        if (slot && s->nodes[node].type == SN_UNION) {
            const snode_t *u = &s->nodes[node];
            int64_t b;
            if (av_long(c, &b))
                return path_prepend(c->e, f->name, f->name_len);
            if (b < 0 || (uint64_t)b >= u->count) {
                bin_fail(c->e, SL_ERR_BAD_VALUE, "union branch %lld, the union has %u",
                         (long long)b, u->count);
                return path_prepend(c->e, f->name, f->name_len);
            }
            node = s->branches[u->first + b];
        }
        if (slot && s->nodes[node].type == SN_STRING) {
            if (av_string(c, &str, &len))
                return path_prepend(c->e, f->name, f->name_len);
            slot->ptr = (const char *)str;
            slot->len = len;
        } else if (av_value(c, node, 1)) {
            return path_prepend(c->e, f->name, f->name_len);
        }
    }
    return 0;
}

static int avro_validate(const schema_t *s, const uint8_t *p, size_t len, schema_extract_t *out,
                         schema_error_t *e)
{
    av_t c = {s, p, p + len, 2 * (uint64_t)len + 4096, e};

    if (av_root(&c, out))
        return -1;
    if (c.p != c.end)
        return bin_fail(e, SL_ERR_BAD_RECORD, "%zu trailing bytes after the record",
                        (size_t)(c.end - c.p));
    return 0;
}

/* ---- Protobuf: the compiled descriptor ---- */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

/* FieldDescriptorProto.Type */
enum {
    PT_DOUBLE = 1,
    PT_FLOAT,
    PT_INT64,
    PT_UINT64,
    PT_INT32,
    PT_FIXED64,
    PT_FIXED32,
    PT_BOOL,
    PT_STRING,
    PT_GROUP,
    PT_MESSAGE,
    PT_BYTES,
    PT_UINT32,
    PT_ENUM,
    PT_SFIXED32,
    PT_SFIXED64,
    PT_SINT32,
    PT_SINT64
};

static const char *const pt_names[] = {"?",        "double",   "float",   "int64",  "uint64",
                                       "int32",    "fixed64",  "fixed32", "bool",   "string",
                                       "group",    "message",  "bytes",   "uint32", "enum",
                                       "sfixed32", "sfixed64", "sint32",  "sint64"};

static const uint8_t pt_wire[] = {0,         WT_I64, WT_I32,    WT_VARINT, WT_VARINT,
                                  WT_VARINT, WT_I64, WT_I32,    WT_VARINT, WT_LEN,
                                  WT_SGROUP, WT_LEN, WT_LEN,    WT_VARINT, WT_VARINT,
                                  WT_I32,    WT_I64, WT_VARINT, WT_VARINT};

#define PB_MAX_FIELD 536870911u /* 2^29 - 1 */
#define PB_DENSE_MAX 256        /* field numbers below this are found by direct index */
#define PB_MAX_DESC_BYTES (4u << 20)
#define PB_MAX_FIELDS 4096 /* per message */

typedef struct {
    uint32_t number;
    uint8_t type, label, wire, packable;
    int32_t ref;      /* message (PT_MESSAGE, PT_GROUP) or enum (PT_ENUM) index; -1 */
    int32_t req_bit;  /* bit in the message's required mask, -1 */
    const char *name; /* in the schema's copy of the descriptor */
    uint32_t name_len;
    const char *type_name; /* ".pkg.Msg", resolved into ref at the end of compiling */
    uint32_t type_name_len;
} pbf_t;

typedef struct {
    char *full_name; /* ".pkg.Outer.Inner" */
    uint32_t first_field, nfields;
    int32_t first_child, next_sibling; /* nested messages, in declaration order (message index) */
    uint64_t req_mask;
    uint16_t dense[PB_DENSE_MAX]; /* field number -> field index + 1 */
    int32_t extract[3];           /* event_id, user_id, event_type: field index or -1 */
} pbm_t;

typedef struct {
    char *full_name;
    int32_t *values; /* sorted */
    uint32_t nvalues;
    uint8_t is_closed;
} pbe_t;

struct schema_pb {
    uint8_t *desc;
    size_t desc_len;
    pbm_t *msgs;
    uint32_t nmsgs, cap_msgs;
    pbf_t *fields;
    uint32_t nfields, cap_fields;
    pbe_t *enums;
    uint32_t nenums, cap_enums;
    int32_t first_top;
    int is_proto3;
};

void schema_pb_destroy(struct schema_pb *pb)
{
    if (!pb)
        return;
    for (uint32_t i = 0; i < pb->nmsgs; i++)
        free(pb->msgs[i].full_name);
    for (uint32_t i = 0; i < pb->nenums; i++) {
        free(pb->enums[i].full_name);
        free(pb->enums[i].values);
    }
    free(pb->msgs);
    free(pb->fields);
    free(pb->enums);
    free(pb->desc);
    free(pb);
}

typedef struct {
    const uint8_t *p, *end;
} wr_t;

/* One field of a protobuf message being read: number, wire type, and its value (varint or
 * fixed value in v; a length-delimited value or group body in sub). Returns 1, 0 at the end,
 * -1 when malformed. Groups inside descriptors are skipped like any unknown field. */
static int wr_next(wr_t *w, uint32_t *num, int *wt, uint64_t *v, wr_t *sub, unsigned depth);

static int wr_skip_group(wr_t *w, uint32_t num, unsigned depth)
{
    for (;;) {
        uint32_t n;
        int wt;
        uint64_t v;
        wr_t sub;
        if (depth >= SCHEMA_MAX_DEPTH)
            return -1;
        int rc = wr_next(w, &n, &wt, &v, &sub, depth + 1);
        if (rc <= 0)
            return -1; /* the end came before the END_GROUP */
        if (wt == WT_EGROUP)
            return n == num ? 0 : -1;
    }
}

static int wr_next(wr_t *w, uint32_t *num, int *wt, uint64_t *v, wr_t *sub, unsigned depth)
{
    uint64_t tag;
    size_t n;

    if (w->p == w->end)
        return 0;
    if ((n = get_varint(w->p, w->end, &tag)) == 0 || n > 5 || tag > 0xFFFFFFFFu)
        return -1;
    w->p += n;
    *num = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    if (*num == 0)
        return -1;
    switch (*wt) {
    case WT_VARINT:
        if ((n = get_varint(w->p, w->end, v)) == 0)
            return -1;
        w->p += n;
        return 1;
    case WT_I64:
    case WT_I32: {
        size_t k = *wt == WT_I64 ? 8 : 4;
        if ((size_t)(w->end - w->p) < k)
            return -1;
        *v = 0;
        memcpy(v, w->p, k); /* little-endian hosts only; only used as "present" here */
        w->p += k;
        return 1;
    }
    case WT_LEN:
        if ((n = get_pb_len(w->p, w->end, v)) == 0)
            return -1;
        w->p += n;
        sub->p = w->p;
        sub->end = w->p + *v;
        w->p += *v;
        return 1;
    case WT_SGROUP:
        sub->p = w->p;
        if (wr_skip_group(w, *num, depth) != 0)
            return -1;
        sub->end = w->p;
        return 1;
    case WT_EGROUP:
        return 1;
    default:
        return -1;
    }
}

typedef struct {
    struct schema_pb *pb;
    char *errbuf;
    size_t errlen;
} pc_t;

__attribute__((format(printf, 2, 3))) static int pc_fail(pc_t *pc, const char *fmt, ...)
{
    va_list ap;
    if (pc->errbuf && pc->errlen && pc->errbuf[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(pc->errbuf, pc->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Grows a pb array by one slot (zeroed); the descriptor's size bounds the count. */
static void *pc_slot(pc_t *pc, void **arr, uint32_t *n, uint32_t *cap, size_t elem)
{
    if (*n == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 8;
        void *p = realloc(*arr, (size_t)ncap * elem);
        if (!p) {
            pc_fail(pc, "out of memory");
            return NULL;
        }
        *arr = p;
        *cap = ncap;
    }
    void *slot = (char *)*arr + (size_t)(*n)++ * elem;
    memset(slot, 0, elem);
    return slot;
}

static char *join_name(const char *scope, const uint8_t *name, size_t len)
{
    size_t sl = strlen(scope);
    char *r = malloc(sl + len + 2);
    if (!r)
        return NULL;
    memcpy(r, scope, sl);
    r[sl] = '.';
    memcpy(r + sl + 1, name, len);
    r[sl + 1 + len] = '\0';
    return r;
}

/* Finds the value of string field `want` (name) of a descriptor message. */
static int pc_name(wr_t m, uint32_t want, const uint8_t **name, size_t *len)
{
    uint32_t num;
    int wt, rc;
    uint64_t v;
    wr_t sub;
    *name = NULL;
    *len = 0;
    while ((rc = wr_next(&m, &num, &wt, &v, &sub, 0)) == 1) {
        if (num == want && wt == WT_LEN) {
            *name = sub.p;
            *len = (size_t)(sub.end - sub.p);
        }
    }
    return rc;
}

static int pc_enum(pc_t *pc, wr_t m, const char *scope)
{
    struct schema_pb *pb = pc->pb;
    const uint8_t *name;
    size_t len;
    uint32_t num, cap = 0;
    int wt, rc;
    uint64_t v;
    wr_t sub;
    pbe_t *en;

    if (pc_name(m, 1, &name, &len) < 0 || !name || len == 0)
        return pc_fail(pc, "an enum has no name");
    en = pc_slot(pc, (void **)&pb->enums, &pb->nenums, &pb->cap_enums, sizeof(*en));
    if (!en || !(en->full_name = join_name(scope, name, len)))
        return pc_fail(pc, "out of memory");
    en->is_closed = !pb->is_proto3;
    while ((rc = wr_next(&m, &num, &wt, &v, &sub, 0)) == 1) {
        uint32_t vn;
        int vwt, vrc, has_number = 0;
        uint64_t vv;
        wr_t vsub;
        int32_t number = 0;
        if (num != 2 || wt != WT_LEN) /* EnumDescriptorProto.value */
            continue;
        while ((vrc = wr_next(&sub, &vn, &vwt, &vv, &vsub, 0)) == 1) {
            if (vn == 2 && vwt == WT_VARINT) /* EnumValueDescriptorProto.number */
                number = (int32_t)(uint32_t)vv, has_number = 1;
        }
        if (vrc < 0 || !has_number)
            return pc_fail(pc, "enum %s: a value without a number", en->full_name);
        if (en->nvalues == cap) {
            uint32_t ncap = cap ? cap * 2 : 8;
            int32_t *p = realloc(en->values, ncap * sizeof(*p));
            if (!p)
                return pc_fail(pc, "out of memory");
            en->values = p;
            cap = ncap;
        }
        en->values[en->nvalues++] = number;
    }
    if (rc < 0)
        return pc_fail(pc, "enum %s: malformed", en->full_name);
    return 0;
}

static int pc_field(pc_t *pc, pbm_t *msg, wr_t f)
{
    pbf_t *fd;
    uint32_t num;
    int wt, rc, has_number = 0, has_type = 0;
    uint64_t v;
    wr_t sub;

    fd = pc_slot(pc, (void **)&pc->pb->fields, &pc->pb->nfields, &pc->pb->cap_fields, sizeof(*fd));
    if (!fd)
        return -1;
    fd->ref = -1;
    fd->req_bit = -1;
    fd->label = 1;
    while ((rc = wr_next(&f, &num, &wt, &v, &sub, 0)) == 1) {
        if (num == 1 && wt == WT_LEN) {
            fd->name = (const char *)sub.p;
            fd->name_len = (uint32_t)(sub.end - sub.p);
        } else if (num == 3 && wt == WT_VARINT) {
            fd->number = (uint32_t)v;
            has_number = v >= 1 && v <= PB_MAX_FIELD;
        } else if (num == 4 && wt == WT_VARINT) {
            fd->label = (uint8_t)(v >= 1 && v <= 3 ? v : 0);
        } else if (num == 5 && wt == WT_VARINT) {
            fd->type = (uint8_t)(v >= 1 && v <= 18 ? v : 0);
            has_type = fd->type != 0;
        } else if (num == 6 && wt == WT_LEN) {
            fd->type_name = (const char *)sub.p;
            fd->type_name_len = (uint32_t)(sub.end - sub.p);
        }
    }
    if (rc < 0 || !fd->name || fd->name_len == 0)
        return pc_fail(pc, "message %s: a malformed field", msg->full_name);
    if (!has_number || !has_type || fd->label == 0)
        return pc_fail(pc, "message %s: field %.*s has no valid number, type or label",
                       msg->full_name, (int)fd->name_len, fd->name);
    fd->wire = pt_wire[fd->type];
    fd->packable = fd->label == 3 && fd->wire != WT_LEN && fd->wire != WT_SGROUP;
    return 0;
}

static long pc_message(pc_t *pc, wr_t m, const char *scope, unsigned depth)
{
    struct schema_pb *pb = pc->pb;
    const uint8_t *name;
    size_t len;
    uint32_t num, mi;
    int wt, rc;
    uint64_t v;
    wr_t sub, it;
    pbm_t *msg;
    int32_t last_child = -1;

    if (depth >= SCHEMA_MAX_DEPTH)
        return pc_fail(pc, "messages nested deeper than %d", SCHEMA_MAX_DEPTH);
    if (pc_name(m, 1, &name, &len) < 0 || !name || len == 0)
        return pc_fail(pc, "a message has no name");
    msg = pc_slot(pc, (void **)&pb->msgs, &pb->nmsgs, &pb->cap_msgs, sizeof(*msg));
    if (!msg)
        return -1;
    mi = pb->nmsgs - 1;
    msg->first_child = msg->next_sibling = -1;
    msg->extract[0] = msg->extract[1] = msg->extract[2] = -1;
    if (!(msg->full_name = join_name(scope, name, len)))
        return pc_fail(pc, "out of memory");
    /* fields first, so they are contiguous in pb->fields before any nested message's */
    msg->first_field = pb->nfields;
    it = m;
    while ((rc = wr_next(&it, &num, &wt, &v, &sub, 0)) == 1) {
        if (num == 2 && wt == WT_LEN && pc_field(pc, &pb->msgs[mi], sub) != 0)
            return -1;
    }
    if (rc < 0)
        return pc_fail(pc, "message %s: malformed", pb->msgs[mi].full_name);
    pb->msgs[mi].nfields = pb->nfields - pb->msgs[mi].first_field;
    it = m;
    while ((rc = wr_next(&it, &num, &wt, &v, &sub, 0)) == 1) {
        if (num == 3 && wt == WT_LEN) { /* nested_type */
            /* full_name is its own allocation: it stays put when pb->msgs grows */
            long child = pc_message(pc, sub, pb->msgs[mi].full_name, depth + 1);
            if (child < 0)
                return -1;
            /* pb->msgs may have moved: index, never hold pointers across the recursion */
            if (last_child < 0)
                pb->msgs[mi].first_child = (int32_t)child;
            else
                pb->msgs[last_child].next_sibling = (int32_t)child;
            last_child = (int32_t)child;
        } else if (num == 4 && wt == WT_LEN) { /* enum_type */
            if (pc_enum(pc, sub, pb->msgs[mi].full_name) != 0)
                return -1;
        }
    }
    return mi;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int name_is(const char *full, const char *s, size_t len)
{
    return strlen(full) == len && memcmp(full, s, len) == 0;
}

/* Type names are resolved through full names sorted once (tag 0: message, 1: enum), so a big
 * descriptor costs n log n, not messages x fields. */
typedef struct {
    const char *name;
    int32_t idx;
    int is_enum;
} pc_name_t;

static int cmp_name(const void *a, const void *b)
{
    const pc_name_t *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : x->is_enum - y->is_enum;
}

static const pc_name_t *find_name(const pc_name_t *tab, size_t n, const char *s, size_t len)
{
    size_t lo = 0, hi = n;
    if (memchr(s, '\0', len)) /* strncmp would stop early and read past a shorter name */
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strncmp(tab[mid].name, s, len);
        if (r == 0 && tab[mid].name[len] != '\0')
            r = 1; /* tab[mid] is longer: it sorts after s */
        if (r == 0)
            return &tab[mid];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int pc_link_names(pc_t *pc, const pc_name_t *tab, size_t ntab);

/* Resolves type names, builds the lookup tables and required masks. */
static int pc_link(pc_t *pc)
{
    struct schema_pb *pb = pc->pb;
    size_t ntab = (size_t)pb->nmsgs + pb->nenums;
    pc_name_t *tab = malloc((ntab ? ntab : 1) * sizeof(*tab));
    int rc;

    if (!tab)
        return pc_fail(pc, "out of memory");
    for (uint32_t i = 0; i < pb->nmsgs; i++)
        tab[i] = (pc_name_t){pb->msgs[i].full_name, (int32_t)i, 0};
    for (uint32_t i = 0; i < pb->nenums; i++)
        tab[pb->nmsgs + i] = (pc_name_t){pb->enums[i].full_name, (int32_t)i, 1};
    qsort(tab, ntab, sizeof(*tab), cmp_name);
    for (size_t i = 1; i < ntab; i++) {
        if (strcmp(tab[i - 1].name, tab[i].name) == 0) {
            pc_fail(pc, "type %s declared twice", tab[i].name + 1);
            free(tab);
            return -1;
        }
    }
    rc = pc_link_names(pc, tab, ntab);
    free(tab);
    return rc;
}

static int pc_link_names(pc_t *pc, const pc_name_t *tab, size_t ntab)
{
    struct schema_pb *pb = pc->pb;
    static const char *const extract_names[3] = {"event_id", "user_id", "event_type"};

    for (uint32_t i = 0; i < pb->nenums; i++)
        qsort(pb->enums[i].values, pb->enums[i].nvalues, sizeof(int32_t), cmp_i32);
    for (uint32_t mi = 0; mi < pb->nmsgs; mi++) {
        pbm_t *m = &pb->msgs[mi];
        int nreq = 0;
        /* bounds the duplicate-number check below (quadratic) and the 16-bit dense slots */
        if (m->nfields > PB_MAX_FIELDS)
            return pc_fail(pc, "message %s: over %d fields", m->full_name + 1, PB_MAX_FIELDS);
        for (uint32_t k = 0; k < m->nfields; k++) {
            pbf_t *f = &pb->fields[m->first_field + k];
            for (uint32_t j = 0; j < k; j++) {
                if (pb->fields[m->first_field + j].number == f->number)
                    return pc_fail(pc, "message %s: field number %u twice", m->full_name + 1,
                                   f->number);
            }
            if (f->type == PT_MESSAGE || f->type == PT_GROUP || f->type == PT_ENUM) {
                const pc_name_t *t;
                if (!f->type_name)
                    return pc_fail(pc, "message %s: field %.*s has no type name", m->full_name + 1,
                                   (int)f->name_len, f->name);
                t = find_name(tab, ntab, f->type_name, f->type_name_len);
                if (t && t->is_enum == (f->type == PT_ENUM))
                    f->ref = t->idx;
                if (f->ref < 0)
                    return pc_fail(pc, "message %s: type %.*s of field %.*s is not in this file",
                                   m->full_name + 1, (int)f->type_name_len, f->type_name,
                                   (int)f->name_len, f->name);
            }
            if (f->label == 2) {
                if (nreq == 64)
                    return pc_fail(pc, "message %s: over 64 required fields", m->full_name + 1);
                f->req_bit = nreq++;
                m->req_mask |= 1ull << f->req_bit;
            }
            if (f->number < PB_DENSE_MAX)
                m->dense[f->number] = (uint16_t)(k + 1);
            for (int x = 0; x < 3; x++) {
                if (f->type == PT_STRING && f->label != 3 &&
                    name_is(extract_names[x], f->name, f->name_len))
                    m->extract[x] = (int32_t)k;
            }
        }
    }
    return 0;
}

schema_t *schema_compile_protobuf(const uint8_t *desc, size_t len, uint32_t id, char *errbuf,
                                  size_t errlen)
{
    schema_t *s = calloc(1, sizeof(*s));
    struct schema_pb *pb = calloc(1, sizeof(*pb));
    pc_t pc = {pb, errbuf, errlen};
    const uint8_t *pkg = NULL;
    size_t pkg_len = 0;
    char *scope = NULL;
    uint32_t num;
    int wt, rc;
    uint64_t v;
    wr_t w, sub;
    int32_t last_top = -1;

    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (!s || !pb) {
        pc_fail(&pc, "out of memory");
        goto Fail;
    }
    s->kind = SCHEMA_KIND_PROTOBUF;
    s->id = id;
    s->pb = pb;
    pb->first_top = -1;
    if (!desc || len == 0 || len > PB_MAX_DESC_BYTES) {
        pc_fail(&pc, "descriptor must be 1 to %u bytes", PB_MAX_DESC_BYTES);
        goto Fail;
    }
    /* the compiled program points at names inside the descriptor: keep our own copy */
    if (!(pb->desc = malloc(len))) {
        pc_fail(&pc, "out of memory");
        goto Fail;
    }
    memcpy(pb->desc, desc, len);
    pb->desc_len = len;
    /* pass 1: package and syntax decide the names and enum semantics used by pass 2 */
    w = (wr_t){pb->desc, pb->desc + len};
    while ((rc = wr_next(&w, &num, &wt, &v, &sub, 0)) == 1) {
        if (num == 2 && wt == WT_LEN)
            pkg = sub.p, pkg_len = (size_t)(sub.end - sub.p);
        else if (num == 12 && wt == WT_LEN)
            pb->is_proto3 = (size_t)(sub.end - sub.p) == 6 && memcmp(sub.p, "proto3", 6) == 0;
        else if (num == 3 && wt == WT_LEN) {
            pc_fail(&pc, "imports are not supported (dependency %.*s)", (int)(sub.end - sub.p),
                    (const char *)sub.p);
            goto Fail;
        }
    }
    if (rc < 0) {
        pc_fail(&pc, "not a serialized FileDescriptorProto");
        goto Fail;
    }
    scope = pkg_len ? join_name("", pkg, pkg_len) : strdup("");
    if (!scope) {
        pc_fail(&pc, "out of memory");
        goto Fail;
    }
    w = (wr_t){pb->desc, pb->desc + len};
    while ((rc = wr_next(&w, &num, &wt, &v, &sub, 0)) == 1) {
        if (num == 4 && wt == WT_LEN) { /* message_type */
            long mi = pc_message(&pc, sub, scope, 0);
            if (mi < 0)
                goto Fail;
            if (last_top < 0)
                pb->first_top = (int32_t)mi;
            else
                pb->msgs[last_top].next_sibling = (int32_t)mi;
            last_top = (int32_t)mi;
        } else if (num == 5 && wt == WT_LEN) { /* enum_type */
            if (pc_enum(&pc, sub, scope) != 0)
                goto Fail;
        }
    }
    if (pb->first_top < 0) {
        pc_fail(&pc, "the file declares no message");
        goto Fail;
    }
    if (pc_link(&pc) != 0)
        goto Fail;
    /* schema_name: the first message, which message index [0] selects */
    if (!(s->fullname = strdup(pb->msgs[pb->first_top].full_name + 1))) {
        pc_fail(&pc, "out of memory");
        goto Fail;
    }
    free(scope);
    return s;
Fail:
    free(scope);
    if (s)
        schema_destroy(s); /* frees pb through s->pb */
    else
        schema_pb_destroy(pb);
    return NULL;
}

/* ---- Protobuf: validating a payload ---- */

typedef struct {
    const struct schema_pb *pb;
    const uint8_t *end; /* of the payload, for bounds of nested reads */
    schema_error_t *e;
} pv_t;

static const pbf_t *pv_field(const struct schema_pb *pb, const pbm_t *m, uint32_t number)
{
    if (number < PB_DENSE_MAX) {
        unsigned k = m->dense[number];
        return k ? &pb->fields[m->first_field + k - 1] : NULL;
    }
    for (uint32_t k = 0; k < m->nfields; k++) { /* large numbers are rare: a short scan */
        if (pb->fields[m->first_field + k].number == number)
            return &pb->fields[m->first_field + k];
    }
    return NULL;
}

static int enum_has(const pbe_t *en, int32_t v)
{
    uint32_t lo = 0, hi = en->nvalues;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (en->values[mid] == v)
            return 1;
        if (en->values[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int pv_path(schema_error_t *e, const pbf_t *f)
{
    return path_prepend(e, f->name, f->name_len);
}

static int pv_message(pv_t *c, const pbm_t *m, const uint8_t **pp, const uint8_t *end,
                      unsigned depth, uint32_t group, schema_extract_t *out);

/* Skips an unknown field's value (wire type wt) at *pp. */
static int pv_skip(pv_t *c, uint32_t num, int wt, const uint8_t **pp, const uint8_t *end,
                   unsigned depth)
{
    const uint8_t *p = *pp;
    uint64_t v;
    size_t n;

    switch (wt) {
    case WT_VARINT:
        if ((n = get_varint(p, end, &v)) == 0)
            return bin_fail(c->e, SL_ERR_BAD_RECORD, "field %u: bad varint", num);
        p += n;
        break;
    case WT_I64:
    case WT_I32:
        n = wt == WT_I64 ? 8 : 4;
        if ((size_t)(end - p) < n)
            return bin_fail(c->e, SL_ERR_BAD_RECORD, "field %u: truncated", num);
        p += n;
        break;
    case WT_LEN:
        if ((n = get_pb_len(p, end, &v)) == 0)
            return bin_fail(c->e, SL_ERR_BAD_RECORD, "field %u: bad length", num);
        p += n + v;
        break;
    case WT_SGROUP: {
        /* an unknown group: walk it as a message without fields, so its own nesting is checked */
        static const pbm_t empty = {.first_child = -1, .next_sibling = -1, .extract = {-1, -1, -1}};
        if (depth >= SCHEMA_MAX_DEPTH)
            return bin_fail(c->e, SL_ERR_TOO_DEEP, "nested deeper than %d", SCHEMA_MAX_DEPTH);
        if (pv_message(c, &empty, &p, end, depth + 1, num, NULL))
            return -1;
        break;
    }
    default:
        return bin_fail(c->e, SL_ERR_BAD_RECORD, "field %u: invalid wire type %d", num, wt);
    }
    *pp = p;
    return 0;
}

/* One scalar of f's type (not LEN, not group) at *pp. */
static int pv_scalar(pv_t *c, const pbf_t *f, const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    uint64_t v;
    size_t n;

    if (f->wire == WT_VARINT) {
        if ((n = get_varint(p, end, &v)) == 0)
            return bin_fail(c->e, SL_ERR_BAD_RECORD, "%s: %s", pt_names[f->type],
                            p == end ? "truncated" : "over-long varint");
        /* closed (proto2) enums: protobuf parsers would move an unknown value to the unknown
         * fields; for an event it is a value the schema does not allow */
        if (f->type == PT_ENUM && c->pb->enums[f->ref].is_closed &&
            !enum_has(&c->pb->enums[f->ref], (int32_t)(uint32_t)v))
            return bin_fail(c->e, SL_ERR_BAD_ENUM, "%d is not a value of %s", (int32_t)(uint32_t)v,
                            c->pb->enums[f->ref].full_name + 1);
        *pp = p + n;
        return 0;
    }
    n = f->wire == WT_I64 ? 8 : 4;
    if ((size_t)(end - p) < n)
        return bin_fail(c->e, SL_ERR_BAD_RECORD, "%s: truncated", pt_names[f->type]);
    *pp = p + n;
    return 0;
}

static int pv_message(pv_t *c, const pbm_t *m, const uint8_t **pp, const uint8_t *end,
                      unsigned depth, uint32_t group, schema_extract_t *out)
{
    const struct schema_pb *pb = c->pb;
    const uint8_t *p = *pp;
    uint64_t seen = 0;

    for (;;) {
        uint64_t tag, v;
        uint32_t num;
        int wt;
        size_t n;
        const pbf_t *f;

        if (p == end) {
            if (group)
                return bin_fail(c->e, SL_ERR_BAD_RECORD, "group %u has no end", group);
            break;
        }
        /* a tag is a uint32 varint: at most 5 bytes, as protobuf readers require */
        if ((n = get_varint(p, end, &tag)) == 0 || n > 5 || tag > 0xFFFFFFFFu)
            return bin_fail(c->e, SL_ERR_BAD_RECORD, "bad field tag");
        p += n;
        num = (uint32_t)(tag >> 3);
        wt = (int)(tag & 7);
        if (num == 0)
            return bin_fail(c->e, SL_ERR_BAD_RECORD, "field number 0");
        if (wt == WT_EGROUP) {
            if (num != group)
                return bin_fail(c->e, SL_ERR_BAD_RECORD, "end of group %u outside it", num);
            break;
        }
        f = pv_field(pb, m, num);
        if (!f) { /* unknown field: accepted and skipped, as every protobuf reader does */
            if (pv_skip(c, num, wt, &p, end, depth))
                return -1;
            continue;
        }
        if (f->req_bit >= 0)
            seen |= 1ull << f->req_bit;
        if (wt == f->wire) {
            switch (wt) {
            case WT_LEN: {
                const uint8_t *sub;
                if ((n = get_pb_len(p, end, &v)) == 0) {
                    bin_fail(c->e, SL_ERR_BAD_RECORD, "%s: bad length", pt_names[f->type]);
                    return pv_path(c->e, f);
                }
                sub = p + n;
                p = sub + v;
                if (f->type == PT_STRING) {
                    if (!utf8_ok(sub, (size_t)v)) {
                        bin_fail(c->e, SL_ERR_BAD_UTF8, "string is not valid UTF-8");
                        return pv_path(c->e, f);
                    }
                    if (out) {
                        size_t k = (size_t)(f - &pb->fields[m->first_field]);
                        schema_slice_t *slot = (int32_t)k == m->extract[0]   ? &out->event_id
                                               : (int32_t)k == m->extract[1] ? &out->user_id
                                               : (int32_t)k == m->extract[2] ? &out->event_type
                                                                             : NULL;
                        if (slot)
                            slot->ptr = (const char *)sub, slot->len = (size_t)v;
                    }
                } else if (f->type == PT_MESSAGE) {
                    if (depth + 1 >= SCHEMA_MAX_DEPTH) {
                        bin_fail(c->e, SL_ERR_TOO_DEEP, "nested deeper than %d", SCHEMA_MAX_DEPTH);
                        return pv_path(c->e, f);
                    }
                    if (pv_message(c, &pb->msgs[f->ref], &sub, p, depth + 1, 0, NULL))
                        return pv_path(c->e, f);
                }
                break;
            }
            case WT_SGROUP:
                if (depth + 1 >= SCHEMA_MAX_DEPTH) {
                    bin_fail(c->e, SL_ERR_TOO_DEEP, "nested deeper than %d", SCHEMA_MAX_DEPTH);
                    return pv_path(c->e, f);
                }
                if (pv_message(c, &pb->msgs[f->ref], &p, end, depth + 1, num, NULL))
                    return pv_path(c->e, f);
                break;
            default:
                if (pv_scalar(c, f, &p, end))
                    return pv_path(c->e, f);
            }
        } else if (wt == WT_LEN && f->packable) {
            const uint8_t *q, *qend;
            if ((n = get_pb_len(p, end, &v)) == 0) {
                bin_fail(c->e, SL_ERR_BAD_RECORD, "packed %s: bad length", pt_names[f->type]);
                return pv_path(c->e, f);
            }
            q = p + n;
            qend = q + v;
            p = qend;
            if (f->wire != WT_VARINT && v % (f->wire == WT_I64 ? 8 : 4) != 0) {
                bin_fail(c->e, SL_ERR_BAD_RECORD,
                         "packed %s: %llu bytes is not a whole number "
                         "of values",
                         pt_names[f->type], (unsigned long long)v);
                return pv_path(c->e, f);
            }
            for (uint64_t i = 0; q < qend; i++) {
                if (pv_scalar(c, f, &q, qend)) {
                    path_index(c->e, i);
                    return pv_path(c->e, f);
                }
            }
        } else {
            bin_fail(c->e, SL_ERR_BAD_TYPE, "expected %s (wire type %d), got wire type %d",
                     pt_names[f->type], f->wire, wt);
            return pv_path(c->e, f);
        }
    }
    if ((seen & m->req_mask) != m->req_mask) {
        for (uint32_t k = 0; k < m->nfields; k++) {
            const pbf_t *f = &pb->fields[m->first_field + k];
            if (f->req_bit >= 0 && !(seen & (1ull << f->req_bit))) {
                bin_fail(c->e, SL_ERR_MISSING_FIELD, "required field missing");
                return pv_path(c->e, f);
            }
        }
    }
    *pp = p;
    return 0;
}

static int pb_validate(const schema_t *s, const uint8_t *p, size_t len, schema_extract_t *out,
                       schema_error_t *e)
{
    const struct schema_pb *pb = s->pb;
    const uint8_t *end = p + len;
    pv_t c = {pb, end, e};
    uint64_t z;
    int64_t count;
    size_t n;
    int32_t mi = pb->first_top;

    /* Confluent's message-index prefix: zigzag count, then that many zigzag indexes walking
     * from the file's messages into nested ones; a count of 0 alone means [0] */
    if ((n = get_varint(p, end, &z)) == 0)
        return bin_fail(e, SL_ERR_BAD_RECORD, "bad message-index count");
    p += n;
    count = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    if (count < 0 || count > SCHEMA_MAX_DEPTH)
        return bin_fail(e, SL_ERR_BAD_RECORD, "message-index count %lld out of range",
                        (long long)count);
    for (int64_t i = 0; i < count; i++) {
        int64_t idx;
        if ((n = get_varint(p, end, &z)) == 0)
            return bin_fail(e, SL_ERR_BAD_RECORD, "bad message index");
        p += n;
        idx = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
        if (i > 0)
            mi = pb->msgs[mi].first_child;
        for (int64_t k = 0; k < idx && mi >= 0; k++)
            mi = pb->msgs[mi].next_sibling;
        if (idx < 0 || mi < 0)
            return bin_fail(e, SL_ERR_BAD_RECORD,
                            "message index %lld (level %lld) not in the "
                            "schema",
                            (long long)idx, (long long)i);
    }
    return pv_message(&c, &pb->msgs[mi], &p, end, 0, 0, out);
}

int schema_validate_binary(const schema_t *s, const uint8_t *payload, size_t len,
                           schema_extract_t *out, schema_error_t *e)
{
    schema_extract_t scratch;

    if (!out)
        out = &scratch;
    memset(out, 0, sizeof(*out));
    e->code = SL_ERR_OK;
    e->path[0] = '\0';
    e->detail[0] = '\0';
    if (s->kind == SCHEMA_KIND_PROTOBUF)
        return pb_validate(s, payload, len, out, e);
    return avro_validate(s, payload, len, out, e);
}

/* ---- base64 (the registry's serialized descriptors) ---- */

ssize_t schema_base64_decode(const char *b64, size_t len, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;

    while (len > 0 && b64[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)b64[i], d;
        if (c >= 'A' && c <= 'Z')
            d = c - 'A';
        else if (c >= 'a' && c <= 'z')
            d = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            d = c - '0' + 52;
        else if (c == '+')
            d = 62;
        else if (c == '/')
            d = 63;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6) /* a single leftover character cannot be a whole byte */
        return -1;
    return (ssize_t)n;
}
