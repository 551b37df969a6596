/* Test oracle for the transcoder, shared by tests/unit/schema/test_schema_oracle.c and
 * tests/fuzz/fuzz_avro.c: decodes the Avro body with avro-c (generic values) and compares it with
 * jansson's parse of the same JSON event, applying the README's JSON mapping independently of
 * schema_avro.c (its own base64, union rule, defaults taken from the schema text). Test code only:
 * static functions, included once per executable. */
#ifndef SCHEMA_ORACLE_H
#define SCHEMA_ORACLE_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <jansson.h>

/* A schema that uses every Avro type, logical type, default form and union shape; the fuzz
 * target transcodes against it and the oracle test feeds it hand-written events. Every field
 * can be absent, so small inputs reach deep into the encoder. */
static const char oracle_all_types_schema[] =
    "{\"type\":\"record\",\"name\":\"All\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"i\",\"type\":\"int\",\"default\":0},"
    "{\"name\":\"l\",\"type\":\"long\",\"default\":-1},"
    "{\"name\":\"f\",\"type\":\"float\",\"default\":0.5},"
    "{\"name\":\"d\",\"type\":\"double\",\"default\":0},"
    "{\"name\":\"b\",\"type\":\"boolean\",\"default\":false},"
    "{\"name\":\"s\",\"type\":\"string\",\"default\":\"\"},"
    "{\"name\":\"by\",\"type\":\"bytes\",\"default\":\"\\u00ff\\u0001\"},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"F4\",\"size\":4},\"default\":\"abcd\"},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Color\",\"symbols\":[\"RED\",\"GREEN\","
    "\"BLUE\"]},\"default\":\"GREEN\"},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"long\"},\"default\":[]},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":[\"null\",\"string\"]},\"default\":{}},"
    "{\"name\":\"o\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"u\",\"type\":[\"int\",\"long\",\"double\",\"string\",\"boolean\",{\"type\":\"array\","
    "\"items\":\"int\"},{\"type\":\"map\",\"values\":\"int\"}],\"default\":0},"
    "{\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"},\"default\":0},"
    "{\"name\":\"dt\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"},\"default\":0},"
    "{\"name\":\"tm\",\"type\":{\"type\":\"int\",\"logicalType\":\"time-millis\"},\"default\":0},"
    "{\"name\":\"tu\",\"type\":{\"type\":\"long\",\"logicalType\":\"time-micros\"},\"default\":0},"
    "{\"name\":\"id\",\"type\":[\"null\",{\"type\":\"string\",\"logicalType\":\"uuid\"}]},"
    "{\"name\":\"dec\",\"type\":[\"null\",{\"type\":\"bytes\",\"logicalType\":\"decimal\","
    "\"precision\":10,\"scale\":2}]},"
    "{\"name\":\"decf\",\"type\":[\"null\",{\"type\":\"fixed\",\"name\":\"D8\",\"size\":8,"
    "\"logicalType\":\"decimal\",\"precision\":18,\"scale\":4}]},"
    "{\"name\":\"r\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Inner\",\"fields\":["
    "{\"name\":\"x\",\"type\":\"int\",\"default\":0},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"},\"default\":[]},"
    "{\"name\":\"child\",\"type\":[\"null\",\"Inner\"]}]}]},"
    "{\"name\":\"rs\",\"type\":{\"type\":\"array\",\"items\":\"Inner\"},\"default\":[]},"
    "{\"name\":\"n\",\"type\":\"null\",\"default\":null}"
    "]}";

typedef struct {
    json_t *schema;  /* the schema text, parsed */
    json_t *named[64]; /* definitions of named types, found by (last part of) their name */
    size_t nnamed;
    char *msg;
    size_t msglen;
} oracle_t;

static int oracle_fail(oracle_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->msg, o->msglen, fmt, ap);
    va_end(ap);
    return -1;
}

static void oracle_collect(oracle_t *o, json_t *t)
{
    size_t i;
    json_t *v;
    if (json_is_array(t)) {
        json_array_foreach(t, i, v) oracle_collect(o, v);
        return;
    }
    if (!json_is_object(t))
        return;
    if (json_is_string(json_object_get(t, "name")) && o->nnamed < 64) {
        const char *ty = json_string_value(json_object_get(t, "type"));
        if (ty && (!strcmp(ty, "record") || !strcmp(ty, "enum") || !strcmp(ty, "fixed")))
            o->named[o->nnamed++] = t;
    }
    oracle_collect(o, json_object_get(t, "type"));
    oracle_collect(o, json_object_get(t, "items"));
    oracle_collect(o, json_object_get(t, "values"));
    json_array_foreach(json_object_get(t, "fields"), i, v) oracle_collect(o, v);
}

/* The definition behind a type: named references resolved, {"type": {...}} unwrapped. */
static json_t *oracle_named(oracle_t *o, const char *name)
{
    const char *dot = strrchr(name, '.'), *shortname = dot ? dot + 1 : name;
    for (size_t i = 0; i < o->nnamed; i++)
        if (!strcmp(json_string_value(json_object_get(o->named[i], "name")), shortname))
            return o->named[i];
    return NULL;
}

/* The definition behind a type: named references resolved, {"type": {...}} unwrapped. */
static json_t *oracle_resolve(oracle_t *o, json_t *t)
{
    for (int guard = 0; guard < 8; guard++) {
        json_t *inner, *def;
        if (json_is_string(t)) {
            def = oracle_named(o, json_string_value(t));
            return def ? def : t; /* else a primitive */
        }
        if (!json_is_object(t))
            return t;
        inner = json_object_get(t, "type");
        if (json_is_object(inner) || json_is_array(inner)) {
            t = inner;
            continue;
        }
        if (json_is_string(inner) && (def = oracle_named(o, json_string_value(inner))) != NULL &&
            def != t) {
            t = def;
            continue;
        }
        return t; /* a definition, or a primitive with attributes */
    }
    return t;
}

static const char *oracle_type(json_t *t)
{
    if (json_is_string(t))
        return json_string_value(t);
    if (json_is_array(t))
        return "union";
    return json_string_value(json_object_get(t, "type"));
}

static const char *oracle_logical(json_t *t)
{
    return json_is_object(t) ? json_string_value(json_object_get(t, "logicalType")) : NULL;
}

static int oracle_b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Bit-by-bit base64 decoder (independent of the product's). Returns the length or -1. */
static long oracle_b64(const char *s, size_t n, unsigned char *out)
{
    unsigned long acc = 0;
    int bits = 0;
    long o = 0;
    while (n && s[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++) {
        int v = oracle_b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned long)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

/* Two's complement big-endian bytes as a long double. */
static long double oracle_twos(const unsigned char *p, size_t n)
{
    long double v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 256 + p[i];
    if (n && (p[0] & 0x80))
        v -= powl(2, 8 * (long double)n);
    return v;
}

static int oracle_decimal(oracle_t *o, json_t *t, json_t *jv, const unsigned char *p, size_t n)
{
    long double want, got = oracle_twos(p, n);
    int scale = (int)json_integer_value(json_object_get(t, "scale"));
    if (json_is_string(jv))
        want = strtold(json_string_value(jv), NULL);
    else if (json_is_number(jv))
        want = (long double)json_number_value(jv);
    else
        return oracle_fail(o, "decimal from %d", json_typeof(jv));
    want *= powl(10, scale);
    if (fabsl(got - want) > fmaxl(1, fabsl(want) * 1e-14L))
        return oracle_fail(o, "decimal %Lg != %Lg", got, want);
    return 0;
}

static int oracle_value(oracle_t *o, avro_value_t *v, json_t *t, json_t *jv, int dflt);

/* Which branch the README's union rule picks for jv (-1: none). */
static int oracle_pick(oracle_t *o, json_t *u, json_t *jv)
{
    size_t i;
    json_t *b;
    json_array_foreach(u, i, b)
    {
        json_t *r = oracle_resolve(o, b);
        const char *ty = oracle_type(r), *lt = oracle_logical(r);
        int dec = lt && !strcmp(lt, "decimal");
        if (json_is_null(jv) && !strcmp(ty, "null"))
            return (int)i;
        if (json_is_boolean(jv) && !strcmp(ty, "boolean"))
            return (int)i;
        if (json_is_string(jv) && (!strcmp(ty, "string") || !strcmp(ty, "bytes") ||
                                   !strcmp(ty, "fixed") || !strcmp(ty, "enum")))
            return (int)i;
        if (json_is_object(jv) && (!strcmp(ty, "record") || !strcmp(ty, "map")))
            return (int)i;
        if (json_is_array(jv) && !strcmp(ty, "array"))
            return (int)i;
        if (json_is_number(jv)) {
            if (!strcmp(ty, "int") && json_is_integer(jv) && json_integer_value(jv) >= INT32_MIN &&
                json_integer_value(jv) <= INT32_MAX)
                return (int)i;
            if (!strcmp(ty, "long") && json_is_integer(jv))
                return (int)i;
            if (!strcmp(ty, "float") || !strcmp(ty, "double") || dec)
                return (int)i;
        }
    }
    return -1;
}

static int oracle_record(oracle_t *o, avro_value_t *v, json_t *t, json_t *jv, int dflt,
                         const char *const *skip, size_t nskip)
{
    json_t *fields = json_object_get(t, "fields"), *f;
    size_t i, used = 0;
    const char *k;
    json_t *x;

    if (!json_is_object(jv))
        return oracle_fail(o, "record from non-object");
    json_array_foreach(fields, i, f)
    {
        avro_value_t fv;
        const char *name = json_string_value(json_object_get(f, "name"));
        json_t *member = json_object_get(jv, name), *def = json_object_get(f, "default");
        json_t *ft = oracle_resolve(o, json_object_get(f, "type"));
        if (avro_value_get_by_index(v, i, &fv, NULL))
            return oracle_fail(o, "record field %zu: %s", i, avro_strerror());
        if (member) {
            used++;
            if (oracle_value(o, &fv, ft, member, dflt))
                return -1;
        } else if (def) {
            if (oracle_value(o, &fv, ft, def, 1))
                return -1;
        } else if (json_is_array(ft)) {
            /* absent without default: the null branch */
            json_t *null = json_null();
            if (oracle_value(o, &fv, ft, null, 0))
                return -1;
        } else {
            return oracle_fail(o, "field %s absent but encoded", name);
        }
    }
    json_object_foreach(jv, k, x)
    {
        for (size_t s = 0; s < nskip; s++)
            used += !strcmp(skip[s], k);
    }
    if (used != json_object_size(jv))
        return oracle_fail(o, "record accepted a member that is not a field");
    return 0;
}

/* Compares the decoded value v of type t with JSON jv. dflt: jv is a schema default (Avro's JSON
 * form: a union takes its first branch, bytes are code points 0..255). */
static int oracle_value(oracle_t *o, avro_value_t *v, json_t *t, json_t *jv, int dflt)
{
    const char *ty, *lt;
    t = oracle_resolve(o, t);
    ty = oracle_type(t);
    lt = oracle_logical(t);
    if (!ty)
        return oracle_fail(o, "schema type unknown");
    if (!strcmp(ty, "union")) {
        int d, want = dflt ? 0 : oracle_pick(o, t, jv);
        avro_value_t br;
        if (avro_value_get_discriminant(v, &d) || avro_value_get_current_branch(v, &br))
            return oracle_fail(o, "union: %s", avro_strerror());
        if (d != want)
            return oracle_fail(o, "union branch %d, want %d", d, want);
        return oracle_value(o, &br, json_array_get(t, (size_t)d), jv, dflt);
    }
    if (!strcmp(ty, "null"))
        return json_is_null(jv) ? 0 : oracle_fail(o, "null from non-null");
    if (!strcmp(ty, "boolean")) {
        int b;
        avro_value_get_boolean(v, &b);
        return json_is_boolean(jv) && b == json_is_true(jv) ? 0 : oracle_fail(o, "boolean");
    }
    if (!strcmp(ty, "int")) {
        int32_t x;
        avro_value_get_int(v, &x);
        if (!json_is_integer(jv) || json_integer_value(jv) != x)
            return oracle_fail(o, "int %d", x);
        if (lt && !strcmp(lt, "time-millis") && (x < 0 || x >= 86400000))
            return oracle_fail(o, "time-millis %d accepted", x);
        return 0;
    }
    if (!strcmp(ty, "long")) {
        int64_t x;
        avro_value_get_long(v, &x);
        if (json_is_integer(jv) ? json_integer_value(jv) != x
                                : !json_is_real(jv) || json_real_value(jv) != (double)x)
            return oracle_fail(o, "long %lld", (long long)x);
        if (lt && !strcmp(lt, "time-micros") && (x < 0 || x >= 86400000000LL))
            return oracle_fail(o, "time-micros accepted out of range");
        return 0;
    }
    if (!strcmp(ty, "float")) {
        float x;
        avro_value_get_float(v, &x);
        return json_is_number(jv) && (float)json_number_value(jv) == x
                   ? 0
                   : oracle_fail(o, "float %g", (double)x);
    }
    if (!strcmp(ty, "double")) {
        double x;
        avro_value_get_double(v, &x);
        return json_is_number(jv) && json_number_value(jv) == x ? 0
                                                                : oracle_fail(o, "double %g", x);
    }
    if (!strcmp(ty, "string")) {
        const char *p;
        size_t n;
        avro_value_get_string(v, &p, &n); /* n counts avro-c's NUL terminator */
        if (!json_is_string(jv) || json_string_length(jv) != n - 1 ||
            memcmp(json_string_value(jv), p, n - 1) != 0)
            return oracle_fail(o, "string differs");
        if (!dflt && lt && !strcmp(lt, "uuid")) {
            if (n - 1 != 36 || p[8] != '-' || p[13] != '-' || p[18] != '-' || p[23] != '-')
                return oracle_fail(o, "uuid accepted: not 8-4-4-4-12");
            for (int i = 0; i < 36; i++)
                if (i != 8 && i != 13 && i != 18 && i != 23 && !strchr("0123456789abcdefABCDEF", p[i]))
                    return oracle_fail(o, "uuid accepted: not hex");
        }
        return 0;
    }
    if (!strcmp(ty, "bytes") || !strcmp(ty, "fixed")) {
        const void *p;
        size_t n;
        unsigned char *want;
        long wn = 0;
        int rc;
        if (!strcmp(ty, "bytes"))
            avro_value_get_bytes(v, &p, &n);
        else
            avro_value_get_fixed(v, &p, &n);
        if (!dflt && lt && !strcmp(lt, "decimal"))
            return oracle_decimal(o, t, jv, p, n);
        if (!json_is_string(jv))
            return oracle_fail(o, "%s from non-string", ty);
        want = malloc(json_string_length(jv) + 1);
        if (dflt) { /* code points 0..255 as UTF-8 */
            const unsigned char *s = (const unsigned char *)json_string_value(jv);
            for (size_t i = 0; i < json_string_length(jv); i++) {
                if (s[i] >= 0xC0) {
                    want[wn++] = (unsigned char)(((s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F));
                    i++;
                } else {
                    want[wn++] = s[i];
                }
            }
        } else {
            wn = oracle_b64(json_string_value(jv), json_string_length(jv), want);
        }
        rc = wn >= 0 && (size_t)wn == n && memcmp(want, p, n) == 0 ? 0
                                                                    : oracle_fail(o, "%s differ", ty);
        free(want);
        return rc;
    }
    if (!strcmp(ty, "enum")) {
        int idx;
        avro_value_get_enum(v, &idx);
        if (!json_is_string(jv) ||
            strcmp(json_string_value(json_array_get(json_object_get(t, "symbols"), (size_t)idx)),
                   json_string_value(jv)) != 0)
            return oracle_fail(o, "enum %d", idx);
        return 0;
    }
    if (!strcmp(ty, "array")) {
        size_t n;
        json_t *items = json_object_get(t, "items");
        avro_value_get_size(v, &n);
        if (!json_is_array(jv) || json_array_size(jv) != n)
            return oracle_fail(o, "array of %zu", n);
        for (size_t i = 0; i < n; i++) {
            avro_value_t e;
            avro_value_get_by_index(v, i, &e, NULL);
            if (oracle_value(o, &e, items, json_array_get(jv, i), dflt))
                return -1;
        }
        return 0;
    }
    if (!strcmp(ty, "map")) {
        size_t n;
        json_t *values = json_object_get(t, "values");
        avro_value_get_size(v, &n);
        if (!json_is_object(jv) || json_object_size(jv) != n)
            return oracle_fail(o, "map of %zu", n);
        for (size_t i = 0; i < n; i++) {
            avro_value_t e;
            const char *key;
            json_t *member;
            avro_value_get_by_index(v, i, &e, &key);
            member = json_object_get(jv, key);
            if (!member)
                return oracle_fail(o, "map key not in the JSON");
            if (oracle_value(o, &e, values, member, dflt))
                return -1;
        }
        return 0;
    }
    if (!strcmp(ty, "record"))
        return oracle_record(o, v, t, jv, dflt, NULL, 0);
    return oracle_fail(o, "unknown type %s", ty);
}

/* Decodes framed Avro out[0..n) with avro_schema and compares it with jansson's parse of the
 * event. Returns 0, or -1 with a message in msg. */
static int oracle_check(const char *schema_text, avro_schema_t avro_schema, uint32_t id,
                        const unsigned char *out, size_t n, json_t *event,
                        const char *const *skip, size_t nskip, char *msg, size_t msglen)
{
    oracle_t o = {0};
    json_error_t jerr;
    avro_value_iface_t *iface = NULL;
    avro_value_t value;
    avro_reader_t reader = NULL;
    int rc = -1, have_value = 0;
    char extra;

    o.msg = msg;
    o.msglen = msglen;
    o.schema = json_loads(schema_text, 0, &jerr);
    if (!o.schema)
        return oracle_fail(&o, "schema text: %s", jerr.text);
    oracle_collect(&o, o.schema);
    if (n < 5 || out[0] != 0 ||
        ((uint32_t)out[1] << 24 | (uint32_t)out[2] << 16 | (uint32_t)out[3] << 8 | out[4]) != id) {
        oracle_fail(&o, "bad framing");
        goto Done;
    }
    iface = avro_generic_class_from_schema(avro_schema);
    if (!iface || avro_generic_value_new(iface, &value)) {
        oracle_fail(&o, "avro-c: %s", avro_strerror());
        goto Done;
    }
    have_value = 1;
    reader = avro_reader_memory((const char *)out + 5, (int64_t)(n - 5));
    if (avro_value_read(reader, &value)) {
        oracle_fail(&o, "avro-c cannot decode: %s", avro_strerror());
        goto Done;
    }
    if (avro_read(reader, &extra, 1) == 0) {
        oracle_fail(&o, "bytes left after the record");
        goto Done;
    }
    rc = oracle_record(&o, &value, o.schema, event, 0, skip, nskip);
Done:
    if (reader)
        avro_reader_free(reader);
    if (have_value)
        avro_value_decref(&value);
    if (iface)
        avro_value_iface_decref(iface);
    json_decref(o.schema);
    return rc;
}

#endif
