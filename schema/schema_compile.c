/* Compiles an Avro schema into the encoder's program (schema_int.h). avro-c validates the text
 * and resolves named types; the same text parsed by jansson supplies what avro-c drops: field
 * defaults (pre-encoded here, per the Avro spec's JSON form of defaults) and logical types. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <jansson.h>

#include "schema_int.h"

#define COMPILE_MAX_DEPTH 64       /* schema nesting (types inside types) */
#define MAX_FIXED_BYTES (1u << 20) /* bounds what one fixed value may make us write */
#define MAX_DECIMAL_PRECISION 38   /* the unscaled value fits in 128 bits */

typedef struct {
    avro_schema_t a;
    uint32_t node;
} memo_t;

typedef struct {
    schema_t *s;
    memo_t *memo;
    size_t nmemo, memo_cap;
    uint32_t nodes_cap, fields_cap, branches_cap;
    char *errbuf;
    size_t errlen;
    unsigned depth;
} cc_t;

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bbuf_t;

__attribute__((format(printf, 2, 3))) static int cc_fail(cc_t *cc, const char *fmt, ...)
{
    va_list ap;
    if (cc->errbuf && cc->errlen) {
        va_start(ap, fmt);
        vsnprintf(cc->errbuf, cc->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Grows *arr (of elem bytes each) so that it holds at least need elements. */
static int grow(void **arr, uint32_t *cap, size_t need, size_t elem)
{
    size_t ncap = *cap ? *cap : 16;
    void *p;
    if (need <= *cap)
        return 0;
    while (ncap < need)
        ncap *= 2;
    if (ncap > UINT32_MAX)
        return -1;
    p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    memset((char *)p + (size_t)*cap * elem, 0, (ncap - *cap) * elem);
    *arr = p;
    *cap = (uint32_t)ncap;
    return 0;
}

static long new_node(cc_t *cc, snode_type_t type)
{
    schema_t *s = cc->s;
    snode_t *n;
    if (grow((void **)&s->nodes, &cc->nodes_cap, (size_t)s->nnodes + 1, sizeof(*s->nodes)))
        return cc_fail(cc, "out of memory");
    n = &s->nodes[s->nnodes];
    memset(n, 0, sizeof(*n));
    n->type = (uint8_t)type;
    n->br_null = n->br_bool = n->br_string = n->br_object = n->br_array = n->br_number = -1;
    return (long)s->nnodes++;
}

static int memo_add(cc_t *cc, avro_schema_t a, uint32_t node)
{
    if (cc->nmemo == cc->memo_cap) {
        size_t ncap = cc->memo_cap ? cc->memo_cap * 2 : 16;
        memo_t *p = realloc(cc->memo, ncap * sizeof(*p));
        if (!p)
            return cc_fail(cc, "out of memory");
        cc->memo = p;
        cc->memo_cap = ncap;
    }
    cc->memo[cc->nmemo].a = a;
    cc->memo[cc->nmemo++].node = node;
    return 0;
}

static long memo_find(const cc_t *cc, avro_schema_t a)
{
    for (size_t i = 0; i < cc->nmemo; i++)
        if (cc->memo[i].a == a)
            return cc->memo[i].node;
    return -1;
}

/* Builds t from count names (copied). Returns 0, or -1 with errbuf set (duplicate, too long). */
static int name_tab_build(cc_t *cc, sname_tab_t *t, uint32_t count, const char *(*get)(void *, int),
                          void *arg, const char *what)
{
    uint32_t size = 4;
    if (count > SCHEMA_MAX_FIELDS)
        return cc_fail(cc, "more than %u %ss", SCHEMA_MAX_FIELDS, what);
    while (size < 2 * (size_t)count)
        size *= 2;
    t->names = calloc(count ? count : 1, sizeof(*t->names));
    t->lens = calloc(count ? count : 1, sizeof(*t->lens));
    t->slots = calloc(size, sizeof(*t->slots));
    if (!t->names || !t->lens || !t->slots)
        return cc_fail(cc, "out of memory");
    t->mask = size - 1;
    for (uint32_t i = 0; i < count; i++) {
        const char *name = get(arg, (int)i);
        size_t len;
        uint32_t h;
        if (!name)
            return cc_fail(cc, "%s %u has no name", what, i);
        len = strlen(name);
        if (len > SCHEMA_MAX_NAME_BYTES)
            return cc_fail(cc, "%s name longer than %d bytes", what, SCHEMA_MAX_NAME_BYTES);
        if (schema_name_find(t, name, len) >= 0)
            return cc_fail(cc, "duplicate %s \"%s\"", what, name);
        t->names[i] = strdup(name);
        if (!t->names[i])
            return cc_fail(cc, "out of memory");
        t->lens[i] = (uint32_t)len;
        t->count = i + 1;
        h = schema_name_hash(name, len) & t->mask;
        while (t->slots[h])
            h = (h + 1) & t->mask;
        t->slots[h] = (uint16_t)(i + 1);
    }
    return 0;
}

static const char *get_field_name(void *a, int i)
{
    return avro_schema_record_field_name((avro_schema_t)a, i);
}

static const char *get_enum_symbol(void *a, int i)
{
    return avro_schema_enum_get((avro_schema_t)a, i);
}

static const char *type_name(const snode_t *n)
{
    static const char *const names[] = {
        [SN_NULL] = "null",     [SN_BOOLEAN] = "boolean", [SN_INT] = "int",
        [SN_LONG] = "long",     [SN_FLOAT] = "float",     [SN_DOUBLE] = "double",
        [SN_BYTES] = "bytes",   [SN_STRING] = "string",   [SN_FIXED] = "fixed",
        [SN_ENUM] = "enum",     [SN_ARRAY] = "array",     [SN_MAP] = "map",
        [SN_RECORD] = "record", [SN_UNION] = "union",
    };
    if (n->logical == LT_DECIMAL)
        return "decimal";
    if (n->logical == LT_UUID)
        return "uuid";
    return names[n->type];
}

static const char *logical_of(json_t *attrs)
{
    json_t *lt = attrs ? json_object_get(attrs, "logicalType") : NULL;
    return json_is_string(lt) ? json_string_value(lt) : NULL;
}

/* Decimal attributes; invalid ones make the logical type ignored, as the Avro spec says. Returns
 * 1 if valid, 0 to ignore, -1 for a precision we cannot handle (schema refused). */
static int decimal_attrs(cc_t *cc, json_t *attrs, snode_t *n, int64_t fixed_size)
{
    json_t *p = json_object_get(attrs, "precision"), *sc = json_object_get(attrs, "scale");
    json_int_t prec, scale = 0;
    if (!json_is_integer(p) || (sc && !json_is_integer(sc)))
        return 0;
    prec = json_integer_value(p);
    if (sc)
        scale = json_integer_value(sc);
    if (prec <= 0 || scale < 0 || scale > prec)
        return 0;
    if (fixed_size >= 0) {
        /* the largest unscaled value, 10^prec - 1, needs prec * log2(10) + 1 sign bits */
        double bits = (double)prec * 3.321928094887362 + 1.0;
        if ((double)fixed_size * 8.0 < bits)
            return 0;
    }
    if (prec > MAX_DECIMAL_PRECISION)
        return cc_fail(cc, "decimal precision %lld above %d is not supported", (long long)prec,
                       MAX_DECIMAL_PRECISION);
    n->logical = LT_DECIMAL;
    n->precision = (uint8_t)prec;
    n->scale = (uint8_t)scale;
    return 1;
}

static long compile_type(cc_t *cc, avro_schema_t a, json_t *j);

static int bb_put(cc_t *cc, bbuf_t *b, const void *p, size_t n)
{
    if (b->cap - b->len < n) {
        size_t ncap = b->cap ? b->cap : 64;
        uint8_t *q;
        while (ncap - b->len < n)
            ncap *= 2;
        q = realloc(b->p, ncap);
        if (!q)
            return cc_fail(cc, "out of memory");
        b->p = q;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int bb_long(cc_t *cc, bbuf_t *b, int64_t v)
{
    uint8_t tmp[10];
    return bb_put(cc, b, tmp, schema_put_long(tmp, v));
}

/* A bytes/fixed default is a JSON string whose code points 0..255 are the bytes (Avro spec). */
static int bb_latin1(cc_t *cc, bbuf_t *b, json_t *d, int64_t want, const char *field)
{
    const unsigned char *s = (const unsigned char *)json_string_value(d);
    size_t len = json_string_length(d), i = 0, start = b->len;
    while (i < len) {
        uint8_t byte;
        if (s[i] < 0x80) {
            byte = s[i++];
        } else if ((s[i] & 0xE0) == 0xC0 && i + 1 < len) {
            unsigned cp = ((s[i] & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
            if (cp > 0xFF)
                return cc_fail(cc, "field \"%s\": bytes default has a code point above 255", field);
            byte = (uint8_t)cp;
            i += 2;
        } else {
            return cc_fail(cc, "field \"%s\": bytes default has a code point above 255", field);
        }
        if (bb_put(cc, b, &byte, 1))
            return -1;
    }
    if (want >= 0 && (int64_t)(b->len - start) != want)
        return cc_fail(cc, "field \"%s\": fixed default is not %lld bytes", field, (long long)want);
    return 0;
}

/* Encodes a field default (Avro's JSON form: unions take their first branch) into b. */
static int enc_default(cc_t *cc, uint32_t node, json_t *d, bbuf_t *b, const char *field,
                       unsigned depth)
{
    const snode_t *n = &cc->s->nodes[node];
    uint8_t tmp[8];

    if (depth > COMPILE_MAX_DEPTH)
        return cc_fail(cc, "field \"%s\": default nested too deeply", field);
    switch ((snode_type_t)n->type) {
    case SN_NULL:
        if (!json_is_null(d))
            goto Mismatch;
        return 0;
    case SN_BOOLEAN:
        if (!json_is_boolean(d))
            goto Mismatch;
        tmp[0] = json_is_true(d) ? 1 : 0;
        return bb_put(cc, b, tmp, 1);
    case SN_INT:
        if (!json_is_integer(d) || json_integer_value(d) < INT32_MIN ||
            json_integer_value(d) > INT32_MAX)
            goto Mismatch;
        return bb_long(cc, b, json_integer_value(d));
    case SN_LONG:
        if (!json_is_integer(d))
            goto Mismatch;
        return bb_long(cc, b, json_integer_value(d));
    case SN_FLOAT: {
        float f;
        if (!json_is_number(d))
            goto Mismatch;
        f = (float)json_number_value(d);
        memcpy(tmp, &f, 4); /* little-endian hosts only, like the encoder */
        return bb_put(cc, b, tmp, 4);
    }
    case SN_DOUBLE: {
        double v;
        if (!json_is_number(d))
            goto Mismatch;
        v = json_number_value(d);
        memcpy(tmp, &v, 8);
        return bb_put(cc, b, tmp, 8);
    }
    case SN_STRING:
        if (!json_is_string(d))
            goto Mismatch;
        if (bb_long(cc, b, (int64_t)json_string_length(d)))
            return -1;
        return bb_put(cc, b, json_string_value(d), json_string_length(d));
    case SN_BYTES: {
        bbuf_t tmpb = {0};
        int rc;
        if (!json_is_string(d))
            goto Mismatch;
        rc = bb_latin1(cc, &tmpb, d, -1, field);
        if (rc == 0)
            rc = bb_long(cc, b, (int64_t)tmpb.len);
        if (rc == 0 && tmpb.len)
            rc = bb_put(cc, b, tmpb.p, tmpb.len);
        free(tmpb.p);
        return rc;
    }
    case SN_FIXED:
        if (!json_is_string(d))
            goto Mismatch;
        return bb_latin1(cc, b, d, n->count, field);
    case SN_ENUM: {
        int idx;
        if (!json_is_string(d))
            goto Mismatch;
        idx = schema_name_find(&n->names, json_string_value(d), json_string_length(d));
        if (idx < 0)
            return cc_fail(cc, "field \"%s\": default is not a symbol of the enum", field);
        return bb_long(cc, b, idx);
    }
    case SN_ARRAY: {
        size_t i;
        json_t *v;
        if (!json_is_array(d))
            goto Mismatch;
        if (json_array_size(d) && bb_long(cc, b, (int64_t)json_array_size(d)))
            return -1;
        json_array_foreach(d, i, v)
        {
            if (enc_default(cc, n->child, v, b, field, depth + 1))
                return -1;
        }
        return bb_long(cc, b, 0);
    }
    case SN_MAP: {
        const char *k;
        json_t *v;
        if (!json_is_object(d))
            goto Mismatch;
        if (json_object_size(d) && bb_long(cc, b, (int64_t)json_object_size(d)))
            return -1;
        json_object_foreach(d, k, v)
        {
            if (bb_long(cc, b, (int64_t)strlen(k)) || bb_put(cc, b, k, strlen(k)) ||
                enc_default(cc, n->child, v, b, field, depth + 1))
                return -1;
        }
        return bb_long(cc, b, 0);
    }
    case SN_RECORD: {
        uint32_t first = n->first, count = n->count;
        if (!json_is_object(d))
            goto Mismatch;
        for (uint32_t i = 0; i < count; i++) {
            const sfield_t *f = &cc->s->fields[first + i];
            json_t *v = json_object_get(d, f->name);
            if (v) {
                if (enc_default(cc, f->node, v, b, field, depth + 1))
                    return -1;
            } else if (f->has_absent) {
                if (bb_put(cc, b, f->absent, f->absent_len))
                    return -1;
            } else {
                return cc_fail(cc, "field \"%s\": default lacks record field \"%s\"", field,
                               f->name);
            }
        }
        return 0;
    }
    case SN_UNION:
        /* the Avro spec: a union's default is a value of its first branch */
        if (bb_long(cc, b, 0))
            return -1;
        return enc_default(cc, cc->s->branches[n->first], d, b, field, depth + 1);
    }
Mismatch:
    return cc_fail(cc, "field \"%s\": default does not match type %s", field, type_name(n));
}

static long compile_record(cc_t *cc, avro_schema_t a, json_t *attrs, long idx)
{
    schema_t *s = cc->s;
    json_t *fields = attrs ? json_object_get(attrs, "fields") : NULL;
    size_t nf = avro_schema_record_size(a);
    uint32_t first = s->nfields;

    if (!json_is_array(fields) || json_array_size(fields) != nf)
        return cc_fail(cc, "record %s: fields do not match the parsed schema", avro_schema_name(a));
    if (nf > SCHEMA_MAX_FIELDS)
        return cc_fail(cc, "record %s has more than %u fields", avro_schema_name(a),
                       SCHEMA_MAX_FIELDS);
    /* reserve this record's field slots now: nested records append theirs after them */
    if (grow((void **)&s->fields, &cc->fields_cap, (size_t)first + nf, sizeof(*s->fields)))
        return cc_fail(cc, "out of memory");
    s->nfields += (uint32_t)nf;
    s->nodes[idx].first = first;
    s->nodes[idx].count = (uint32_t)nf;
    if (name_tab_build(cc, &s->nodes[idx].names, (uint32_t)nf, get_field_name, a, "field"))
        return -1;
    for (size_t i = 0; i < nf; i++) {
        json_t *fj = json_array_get(fields, i), *dj;
        long child = compile_type(cc, avro_schema_record_field_get_by_index(a, (int)i),
                                  json_object_get(fj, "type"));
        sfield_t *f;
        bbuf_t b = {0};

        if (child < 0)
            return -1;
        f = &s->fields[first + i];
        f->name = s->nodes[idx].names.names[i];
        f->name_len = s->nodes[idx].names.lens[i];
        f->node = (uint32_t)child;
        dj = json_object_get(fj, "default");
        if (dj) {
            if (enc_default(cc, (uint32_t)child, dj, &b, f->name, 0)) {
                free(b.p);
                return -1;
            }
        } else if (s->nodes[child].type == SN_UNION && s->nodes[child].br_null >= 0) {
            /* API.md: a ["null", T] member may be absent even without a default */
            if (bb_long(cc, &b, s->nodes[child].br_null))
                return -1;
        } else {
            continue;
        }
        if (!b.p && !(b.p = malloc(1))) /* a null default is zero bytes; memcpy wants a pointer */
            return cc_fail(cc, "out of memory");
        f = &s->fields[first + i];
        f->has_absent = 1;
        f->absent = b.p;
        f->absent_len = (uint32_t)b.len;
    }
    return idx;
}

static void union_desc(snode_t *u, const schema_t *s)
{
    size_t off = 0;
    for (uint32_t i = 0; i < u->count; i++) {
        const char *sep = i == 0 ? "" : i + 1 == u->count ? " or " : ", ";
        int k = snprintf(u->desc + off, sizeof(u->desc) - off, "%s%s", sep,
                         type_name(&s->nodes[s->branches[u->first + i]]));
        if (k < 0 || (size_t)k >= sizeof(u->desc) - off)
            break;
        off += (size_t)k;
    }
}

static long compile_union(cc_t *cc, avro_schema_t a, json_t *j, long idx)
{
    schema_t *s = cc->s;
    size_t nb = avro_schema_union_size(a);
    uint32_t first = s->nbranches;
    snode_t *u;

    if (!json_is_array(j) || json_array_size(j) != nb)
        return cc_fail(cc, "union does not match the parsed schema");
    if (nb == 0 || nb > INT16_MAX)
        return cc_fail(cc, "union with %zu branches", nb);
    if (grow((void **)&s->branches, &cc->branches_cap, (size_t)first + nb, sizeof(*s->branches)))
        return cc_fail(cc, "out of memory");
    s->nbranches += (uint32_t)nb;
    s->nodes[idx].first = first;
    s->nodes[idx].count = (uint32_t)nb;
    for (size_t i = 0; i < nb; i++) {
        long child = compile_type(cc, avro_schema_union_branch(a, (int)i), json_array_get(j, i));
        if (child < 0)
            return -1;
        s->branches[first + i] = (uint32_t)child;
    }
    /* the first branch that can take each JSON kind (README: union rule) */
    u = &s->nodes[idx];
    for (size_t i = 0; i < nb; i++) {
        const snode_t *b = &s->nodes[s->branches[first + i]];
        int16_t bi = (int16_t)i;
        int numeric = 0;
        switch ((snode_type_t)b->type) {
        case SN_NULL:
            if (u->br_null < 0)
                u->br_null = bi;
            break;
        case SN_BOOLEAN:
            if (u->br_bool < 0)
                u->br_bool = bi;
            break;
        case SN_BYTES:
        case SN_FIXED:
            numeric = b->logical == LT_DECIMAL;
            /* fall through */
        case SN_STRING:
        case SN_ENUM:
            if (u->br_string < 0)
                u->br_string = bi;
            break;
        case SN_RECORD:
        case SN_MAP:
            if (u->br_object < 0)
                u->br_object = bi;
            break;
        case SN_ARRAY:
            if (u->br_array < 0)
                u->br_array = bi;
            break;
        case SN_INT:
        case SN_LONG:
        case SN_FLOAT:
        case SN_DOUBLE:
            numeric = 1;
            break;
        case SN_UNION:
            return cc_fail(cc, "union directly inside a union");
        }
        if (numeric)
            u->br_number = u->br_number == -1 ? bi : -2;
    }
    union_desc(u, s);
    return idx;
}

static long compile_type(cc_t *cc, avro_schema_t a, json_t *j)
{
    schema_t *s = cc->s;
    json_t *attrs = json_is_object(j) ? j : NULL;
    const char *lt;
    long idx, child;
    snode_type_t type;

    if (is_avro_link(a))
        a = avro_schema_link_target(a);
    if (is_avro_record(a) || is_avro_enum(a) || is_avro_fixed(a)) {
        idx = memo_find(cc, a);
        if (idx >= 0)
            return idx; /* a reference to a named type (maybe the record being compiled) */
    }
    if (attrs) {
        json_t *t = json_object_get(attrs, "type");
        if (json_is_object(t) || json_is_array(t))
            return compile_type(cc, a, t); /* {"type": {...}} wraps a full schema */
    }
    if (cc->depth >= COMPILE_MAX_DEPTH)
        return cc_fail(cc, "schema nested deeper than %d levels", COMPILE_MAX_DEPTH);
    switch (avro_typeof(a)) {
    case AVRO_STRING:
        type = SN_STRING;
        break;
    case AVRO_BYTES:
        type = SN_BYTES;
        break;
    case AVRO_INT32:
        type = SN_INT;
        break;
    case AVRO_INT64:
        type = SN_LONG;
        break;
    case AVRO_FLOAT:
        type = SN_FLOAT;
        break;
    case AVRO_DOUBLE:
        type = SN_DOUBLE;
        break;
    case AVRO_BOOLEAN:
        type = SN_BOOLEAN;
        break;
    case AVRO_NULL:
        type = SN_NULL;
        break;
    case AVRO_RECORD:
        type = SN_RECORD;
        break;
    case AVRO_ENUM:
        type = SN_ENUM;
        break;
    case AVRO_FIXED:
        type = SN_FIXED;
        break;
    case AVRO_MAP:
        type = SN_MAP;
        break;
    case AVRO_ARRAY:
        type = SN_ARRAY;
        break;
    case AVRO_UNION:
        type = SN_UNION;
        break;
    default:
        return cc_fail(cc, "unsupported Avro type");
    }
    idx = new_node(cc, type);
    if (idx < 0)
        return -1;
    lt = logical_of(attrs);
    cc->depth++;
    switch (type) {
    case SN_STRING:
        if (lt && strcmp(lt, "uuid") == 0)
            s->nodes[idx].logical = LT_UUID;
        break;
    case SN_INT:
        if (lt && strcmp(lt, "date") == 0)
            s->nodes[idx].logical = LT_DATE;
        else if (lt && strcmp(lt, "time-millis") == 0)
            s->nodes[idx].logical = LT_TIME_MILLIS;
        break;
    case SN_LONG:
        if (lt && strcmp(lt, "time-micros") == 0)
            s->nodes[idx].logical = LT_TIME_MICROS;
        else if (lt && strcmp(lt, "timestamp-millis") == 0)
            s->nodes[idx].logical = LT_TIMESTAMP_MILLIS;
        else if (lt && strcmp(lt, "timestamp-micros") == 0)
            s->nodes[idx].logical = LT_TIMESTAMP_MICROS;
        break;
    case SN_BYTES:
        if (lt && strcmp(lt, "decimal") == 0 && decimal_attrs(cc, attrs, &s->nodes[idx], -1) < 0)
            idx = -1;
        break;
    case SN_FIXED: {
        int64_t size = avro_schema_fixed_size(a);
        if (memo_add(cc, a, (uint32_t)idx)) {
            idx = -1;
            break;
        }
        if (size < 0 || size > MAX_FIXED_BYTES) {
            idx = cc_fail(cc, "fixed size %lld outside 0..%u", (long long)size, MAX_FIXED_BYTES);
            break;
        }
        s->nodes[idx].count = (uint32_t)size;
        if (lt && strcmp(lt, "decimal") == 0 && decimal_attrs(cc, attrs, &s->nodes[idx], size) < 0)
            idx = -1;
        break;
    }
    case SN_ENUM: {
        int ns = avro_schema_enum_number_of_symbols(a);
        if (memo_add(cc, a, (uint32_t)idx) || ns < 0 ||
            name_tab_build(cc, &s->nodes[idx].names, (uint32_t)ns, get_enum_symbol, a, "symbol"))
            idx = -1;
        else
            s->nodes[idx].count = (uint32_t)ns;
        break;
    }
    case SN_ARRAY:
        child = compile_type(cc, avro_schema_array_items(a),
                             attrs ? json_object_get(attrs, "items") : NULL);
        if (child < 0)
            idx = -1;
        else
            s->nodes[idx].child = (uint32_t)child;
        break;
    case SN_MAP:
        child = compile_type(cc, avro_schema_map_values(a),
                             attrs ? json_object_get(attrs, "values") : NULL);
        if (child < 0)
            idx = -1;
        else
            s->nodes[idx].child = (uint32_t)child;
        break;
    case SN_RECORD:
        if (memo_add(cc, a, (uint32_t)idx))
            idx = -1;
        else
            idx = compile_record(cc, a, attrs, idx);
        break;
    case SN_UNION:
        idx = compile_union(cc, a, j, idx);
        break;
    default:
        break;
    }
    cc->depth--;
    if (idx >= 0 && type != SN_UNION)
        snprintf(s->nodes[idx].desc, sizeof(s->nodes[idx].desc), "%s", type_name(&s->nodes[idx]));
    return idx;
}

schema_t *schema_compile_avro(const char *json, size_t len, uint32_t id, char *errbuf,
                              size_t errlen)
{
    cc_t cc = {0};
    json_t *root = NULL;
    json_error_t jerr;
    schema_t *s = calloc(1, sizeof(*s));
    const char *name, *space;
    long r;

    cc.errbuf = errbuf;
    cc.errlen = errlen;
    cc.s = s;
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (!s) {
        cc_fail(&cc, "out of memory");
        goto Fail;
    }
    s->id = id;
    if (!json || avro_schema_from_json_length(json, len, &s->avro) != 0) {
        s->avro = NULL;
        cc_fail(&cc, "invalid Avro schema: %s", json ? avro_strerror() : "no text");
        goto Fail;
    }
    if (!is_avro_record(s->avro)) {
        cc_fail(&cc, "the top-level type must be a record, not %s", avro_schema_type_name(s->avro));
        goto Fail;
    }
    root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        cc_fail(&cc, "schema is not JSON: %s", jerr.text);
        goto Fail;
    }
    r = compile_type(&cc, s->avro, root);
    if (r < 0)
        goto Fail;
    s->root = (uint32_t)r;
    name = avro_schema_name(s->avro);
    space = avro_schema_namespace(s->avro);
    if (space && *space) {
        size_t n = strlen(space) + strlen(name) + 2;
        s->fullname = malloc(n);
        if (s->fullname)
            snprintf(s->fullname, n, "%s.%s", space, name);
    } else {
        s->fullname = strdup(name);
    }
    if (!s->fullname) {
        cc_fail(&cc, "out of memory");
        goto Fail;
    }
    json_decref(root);
    free(cc.memo);
    return s;
Fail:
    json_decref(root);
    free(cc.memo);
    schema_destroy(s);
    return NULL;
}

void schema_destroy(schema_t *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        sname_tab_t *t = &s->nodes[i].names;
        for (uint32_t k = 0; k < t->count; k++)
            free(t->names[k]);
        free(t->names);
        free(t->lens);
        free(t->slots);
    }
    for (uint32_t i = 0; i < s->nfields; i++)
        free(s->fields[i].absent);
    free(s->nodes);
    free(s->fields);
    free(s->branches);
    free(s->fullname);
    if (s->avro)
        avro_schema_decref(s->avro);
    schema_pb_destroy(s->pb);
    free(s);
}

uint32_t schema_id(const schema_t *s)
{
    return s->id;
}

const char *schema_name(const schema_t *s)
{
    return s->fullname;
}

avro_schema_t schema_avro(const schema_t *s)
{
    return s->avro;
}
