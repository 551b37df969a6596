/* slt_avro: the Avro side of slt's audit (see slt.h). A Kafka value in Confluent framing is
 * decoded with avro-c against its writer schema, fetched from the registry by id and cached for
 * the process, then compared with the event that was sent by the gateway's JSON mapping rules
 * (schema/README.md, "JSON mapping"). */
#include "slt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <curl/curl.h>

/* Bounds: the schemas a test process may see, how deep a value may nest (deeper than the
 * gateway's 32 JSON levels, so the gateway's limit is what a test meets), how many array/map
 * items one value may claim (zero-byte items such as nulls would otherwise let a 10-byte count
 * spin for ages), and how large a registry answer we accept. */
#define SLT_AVRO_MAX_SCHEMAS 1024
#define SLT_AVRO_MAX_DEPTH 64
#define SLT_AVRO_MAX_ITEMS (1u << 20)
#define SLT_AVRO_MAX_SCHEMA_BYTES (4u << 20)

/* One named record of a schema and its field list in the schema's JSON (for the defaults, which
 * avro-c parses and drops). */
typedef struct {
    avro_schema_t rec;
    const json_t *fields;
} rec_fields_t;

typedef struct {
    char base[64]; /* the registry it came from: ids are per registry */
    int32_t id;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    json_t *json; /* the schema text parsed by jansson; rec_fields_t point into it */
    rec_fields_t *recs;
    size_t n_recs, cap_recs;
} cached_schema_t;

static cached_schema_t *g_schemas;
static size_t g_n_schemas, g_cap_schemas;
static char g_registry_base[64]; /* "http://127.0.0.1:<port>", "" when none */

void slt_registry_use(const slt_registry_t *r)
{
    if (r && r->port > 0)
        snprintf(g_registry_base, sizeof(g_registry_base), "http://127.0.0.1:%d", r->port);
    else
        g_registry_base[0] = '\0';
}

const char *slt_registry_in_use(void)
{
    return g_registry_base;
}

static void schema_entry_dispose(cached_schema_t *c)
{
    if (c->iface)
        avro_value_iface_decref(c->iface);
    if (c->schema)
        avro_schema_decref(c->schema);
    json_decref(c->json);
    free(c->recs);
    memset(c, 0, sizeof(*c));
}

void slt_schema_cache_clear(void)
{
    for (size_t i = 0; i < g_n_schemas; i++)
        schema_entry_dispose(&g_schemas[i]);
    free(g_schemas);
    g_schemas = NULL;
    g_n_schemas = g_cap_schemas = 0;
}

static avro_schema_t resolve_link(avro_schema_t s)
{
    /* A recursive reference is a link in avro-c; bound the chain all the same. */
    for (int i = 0; i < SLT_AVRO_MAX_DEPTH && s && is_avro_link(s); i++)
        s = avro_schema_link_target(s);
    return s;
}

/* Walks the avro-c schema and its JSON text side by side, remembering each record definition's
 * JSON field list. A type given by name (a string that is not a primitive) is a reference to a
 * definition seen elsewhere, so it is skipped. */
static int collect_records(cached_schema_t *c, avro_schema_t s, const json_t *j, int depth)
{
    const char *t;
    const json_t *type;

    if (depth > SLT_AVRO_MAX_DEPTH || !s)
        return -1;
    if (json_is_string(j))
        return 0;
    if (json_is_array(j)) {
        if (!is_avro_union(s) || avro_schema_union_size(s) != json_array_size(j))
            return -1;
        for (size_t i = 0; i < json_array_size(j); i++)
            if (collect_records(c, avro_schema_union_branch(s, (int)i), json_array_get(j, i),
                                depth + 1) != 0)
                return -1;
        return 0;
    }
    type = json_object_get(j, "type");
    if (!json_is_string(type))
        return json_is_object(type) || json_is_array(type) ? collect_records(c, s, type, depth + 1)
                                                           : -1;
    t = json_string_value(type);
    if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0) {
        const json_t *fields = json_object_get(j, "fields");
        if (!is_avro_record(s) || !json_is_array(fields) ||
            json_array_size(fields) != avro_schema_record_size(s))
            return -1;
        if (c->n_recs == c->cap_recs) {
            size_t cap = c->cap_recs ? 2 * c->cap_recs : 8;
            rec_fields_t *n = realloc(c->recs, cap * sizeof(*n));
            if (!n)
                abort();
            c->recs = n;
            c->cap_recs = cap;
        }
        c->recs[c->n_recs++] = (rec_fields_t){s, fields};
        for (size_t i = 0; i < json_array_size(fields); i++)
            if (collect_records(c, avro_schema_record_field_get_by_index(s, (int)i),
                                json_object_get(json_array_get(fields, i), "type"), depth + 1) != 0)
                return -1;
        return 0;
    }
    if (strcmp(t, "array") == 0)
        return is_avro_array(s) ? collect_records(c, avro_schema_array_items(s),
                                                  json_object_get(j, "items"), depth + 1)
                                : -1;
    if (strcmp(t, "map") == 0)
        return is_avro_map(s) ? collect_records(c, avro_schema_map_values(s),
                                                json_object_get(j, "values"), depth + 1)
                              : -1;
    return 0; /* enum, fixed, a primitive with a logicalType */
}

static const json_t *record_fields(const cached_schema_t *c, avro_schema_t rec)
{
    rec = resolve_link(rec);
    for (size_t i = 0; i < c->n_recs; i++)
        if (c->recs[i].rec == rec)
            return c->recs[i].fields;
    return NULL;
}

/* Compiles one registry answer into the cache. Takes nothing; copies what it keeps. */
static cached_schema_t *schema_cache_add(const char *base, int32_t id, const char *text, size_t len,
                                         char *why, size_t why_len)
{
    cached_schema_t c;
    json_error_t je;

    memset(&c, 0, sizeof(c));
    if (g_n_schemas >= SLT_AVRO_MAX_SCHEMAS) {
        snprintf(why, why_len, "schema cache full (%u schemas)", SLT_AVRO_MAX_SCHEMAS);
        return NULL;
    }
    snprintf(c.base, sizeof(c.base), "%s", base);
    c.id = id;
    if (avro_schema_from_json_length(text, len, &c.schema) != 0) {
        snprintf(why, why_len, "schema id %d: avro-c refuses it: %s", (int)id, avro_strerror());
        c.schema = NULL;
        goto Fail;
    }
    if ((c.json = json_loadb(text, len, 0, &je)) == NULL) {
        snprintf(why, why_len, "schema id %d is not JSON: %s", (int)id, je.text);
        goto Fail;
    }
    if (!is_avro_record(c.schema)) {
        snprintf(why, why_len, "schema id %d is a %s, not a record", (int)id,
                 avro_schema_type_name(c.schema));
        goto Fail;
    }
    if (collect_records(&c, c.schema, c.json, 0) != 0) {
        snprintf(why, why_len, "schema id %d: avro-c's parse and the JSON text disagree", (int)id);
        goto Fail;
    }
    if ((c.iface = avro_generic_class_from_schema(c.schema)) == NULL) {
        snprintf(why, why_len, "schema id %d: no avro-c value class: %s", (int)id, avro_strerror());
        goto Fail;
    }
    if (g_n_schemas == g_cap_schemas) {
        size_t cap = g_cap_schemas ? 2 * g_cap_schemas : 16;
        cached_schema_t *n = realloc(g_schemas, cap * sizeof(*n));
        if (!n)
            abort();
        g_schemas = n;
        g_cap_schemas = cap;
    }
    g_schemas[g_n_schemas] = c;
    return &g_schemas[g_n_schemas++];

Fail:
    schema_entry_dispose(&c);
    return NULL;
}

static cached_schema_t *schema_cache_find(const char *base, int32_t id)
{
    for (size_t i = 0; i < g_n_schemas; i++)
        if (g_schemas[i].id == id && strcmp(g_schemas[i].base, base) == 0)
            return &g_schemas[i];
    return NULL;
}

/* Adds the schema of a registry answer ({"schema": "...", "schemaType"?: "AVRO"}) unless the id
 * is cached already. */
static cached_schema_t *schema_cache_add_answer(const char *base, int32_t id, const json_t *ans,
                                                char *why, size_t why_len)
{
    cached_schema_t *c = schema_cache_find(base, id);
    const json_t *text = json_object_get(ans, "schema");
    const char *type = json_string_value(json_object_get(ans, "schemaType"));

    if (c)
        return c;
    if (type && strcmp(type, "AVRO") != 0) {
        snprintf(why, why_len, "schema id %d is %.20s, not AVRO", (int)id, type);
        return NULL;
    }
    if (!json_is_string(text)) {
        snprintf(why, why_len, "schema id %d: the registry's answer has no \"schema\" string",
                 (int)id);
        return NULL;
    }
    return schema_cache_add(base, id, json_string_value(text), json_string_length(text), why,
                            why_len);
}

/* GET url; returns the parsed JSON body of a 200 (bounded), else NULL with why set. */
static json_t *registry_get(const char *url, long *status, char *why, size_t why_len)
{
    slt_http_resp_t resp;
    json_t *j = NULL;
    json_error_t je;

    *status = slt_http_get(url, SLT_HTTP_1_1, &resp);
    if (resp.status == 0)
        snprintf(why, why_len, "registry unreachable (GET %s): %s", url, resp.error);
    else if (resp.status != 200)
        snprintf(why, why_len, "GET %s: HTTP %ld", url, resp.status);
    else if (resp.body_len > SLT_AVRO_MAX_SCHEMA_BYTES)
        snprintf(why, why_len, "GET %s: answer over %u bytes", url, SLT_AVRO_MAX_SCHEMA_BYTES);
    else if ((j = json_loadb(resp.body, resp.body_len, 0, &je)) == NULL)
        snprintf(why, why_len, "GET %s: answer is not JSON (%s)", url, je.text);
    slt_http_resp_dispose(&resp);
    return j;
}

static cached_schema_t *schema_get(int32_t id, char *why, size_t why_len)
{
    char url[128];
    long status;
    json_t *ans;
    cached_schema_t *c;

    if (!g_registry_base[0]) {
        snprintf(why, why_len,
                 "schema id %d: no registry in use (slt_stack_start or slt_registry_use)", (int)id);
        return NULL;
    }
    if ((c = schema_cache_find(g_registry_base, id)) != NULL)
        return c;
    snprintf(url, sizeof(url), "%s/schemas/ids/%d", g_registry_base, (int)id);
    if ((ans = registry_get(url, &status, why, why_len)) == NULL) {
        if (status == 404)
            snprintf(why, why_len, "schema id %d is unknown to the registry (404)", (int)id);
        return NULL;
    }
    c = schema_cache_add_answer(g_registry_base, id, ans, why, why_len);
    json_decref(ans);
    return c;
}

int slt_schema_cache_warm(void)
{
    char url[512], why[300];
    long status;
    json_t *subjects;
    int n = 0;

    if (!g_registry_base[0])
        return -1;
    snprintf(url, sizeof(url), "%s/subjects", g_registry_base);
    if ((subjects = registry_get(url, &status, why, sizeof(why))) == NULL ||
        !json_is_array(subjects)) {
        slt_note("schema cache warm-up: %s", why);
        json_decref(subjects);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(subjects); i++) {
        const char *subject = json_string_value(json_array_get(subjects, i));
        char *esc = subject ? curl_easy_escape(NULL, subject, 0) : NULL;
        json_t *versions;

        if (!esc)
            continue;
        snprintf(url, sizeof(url), "%s/subjects/%s/versions", g_registry_base, esc);
        versions = registry_get(url, &status, why, sizeof(why));
        for (size_t v = 0; json_is_array(versions) && v < json_array_size(versions); v++) {
            json_t *ans;
            json_int_t version = json_integer_value(json_array_get(versions, v));
            snprintf(url, sizeof(url), "%s/subjects/%s/versions/%lld", g_registry_base, esc,
                     (long long)version);
            if ((ans = registry_get(url, &status, why, sizeof(why))) == NULL)
                continue;
            json_int_t id = json_integer_value(json_object_get(ans, "id"));
            if (id > 0 && id <= INT32_MAX &&
                schema_cache_add_answer(g_registry_base, (int32_t)id, ans, why, sizeof(why)))
                n++;
            json_decref(ans);
        }
        json_decref(versions);
        curl_free(esc);
    }
    json_decref(subjects);
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * Structure check before avro-c: avro-c 1.11 trusts lengths and counts (a string length of -2
 * or 2^60 goes straight to malloc, a huge block of nulls loops), so the bytes are walked once
 * against the writer schema with every length checked against what is left.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    size_t items;
    char *why;
    size_t why_len;
} walk_t;

static int walk_fail(walk_t *w, const char *what)
{
    snprintf(w->why, w->why_len, "Avro body: %s at byte %zu of %zu", what, w->pos, w->len);
    return -1;
}

/* Zig-zag varint of at most max_bytes bytes. */
static int walk_varint(walk_t *w, int max_bytes, int64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (w->pos >= w->len)
            return walk_fail(w, "truncated varint");
        uint8_t b = w->p[w->pos++];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return walk_fail(w, "varint too long");
}

static int walk_skip(walk_t *w, int64_t n, const char *what)
{
    if (n < 0 || (uint64_t)n > w->len - w->pos)
        return walk_fail(w, what);
    w->pos += (size_t)n;
    return 0;
}

static int walk_value(walk_t *w, avro_schema_t s, int depth);

/* Array and map blocks: count, (negative count: byte size), items; a zero count ends. */
static int walk_blocks(walk_t *w, avro_schema_t item, int is_map, int depth)
{
    for (;;) {
        int64_t count, size;
        if (walk_varint(w, 10, &count) != 0)
            return -1;
        if (count == 0)
            return 0;
        if (count < 0) {
            if (count == INT64_MIN)
                return walk_fail(w, "bad block count");
            count = -count;
            if (walk_varint(w, 10, &size) != 0)
                return -1;
            if (size < 0 || (uint64_t)size > w->len - w->pos)
                return walk_fail(w, "block byte size beyond the value");
        }
        if ((uint64_t)count > SLT_AVRO_MAX_ITEMS - w->items)
            return walk_fail(w, "more array/map items than the test bound");
        w->items += (size_t)count;
        for (int64_t i = 0; i < count; i++) {
            if (is_map) {
                int64_t klen;
                if (walk_varint(w, 10, &klen) != 0 ||
                    walk_skip(w, klen, "map key length beyond the value") != 0)
                    return -1;
            }
            if (walk_value(w, item, depth + 1) != 0)
                return -1;
        }
    }
}

static int walk_value(walk_t *w, avro_schema_t s, int depth)
{
    int64_t v;

    if (depth > SLT_AVRO_MAX_DEPTH)
        return walk_fail(w, "nested too deep");
    s = resolve_link(s);
    if (!s)
        return walk_fail(w, "unresolved schema link");
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        if (w->pos >= w->len)
            return walk_fail(w, "truncated boolean");
        if (w->p[w->pos] > 1)
            return walk_fail(w, "boolean byte not 0 or 1");
        w->pos++;
        return 0;
    case AVRO_INT32:
        if (walk_varint(w, 5, &v) != 0)
            return -1;
        return v < INT32_MIN || v > INT32_MAX ? walk_fail(w, "int out of range") : 0;
    case AVRO_INT64:
        return walk_varint(w, 10, &v);
    case AVRO_FLOAT:
        return walk_skip(w, 4, "truncated float");
    case AVRO_DOUBLE:
        return walk_skip(w, 8, "truncated double");
    case AVRO_STRING:
    case AVRO_BYTES:
        if (walk_varint(w, 10, &v) != 0)
            return -1;
        return walk_skip(w, v, "string/bytes length beyond the value");
    case AVRO_FIXED:
        return walk_skip(w, avro_schema_fixed_size(s), "truncated fixed");
    case AVRO_ENUM:
        if (walk_varint(w, 10, &v) != 0)
            return -1;
        return v < 0 || v >= avro_schema_enum_number_of_symbols(s)
                   ? walk_fail(w, "enum index out of range")
                   : 0;
    case AVRO_UNION:
        if (walk_varint(w, 10, &v) != 0)
            return -1;
        if (v < 0 || (uint64_t)v >= avro_schema_union_size(s))
            return walk_fail(w, "union branch index out of range");
        return walk_value(w, avro_schema_union_branch(s, (int)v), depth + 1);
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++)
            if (walk_value(w, avro_schema_record_field_get_by_index(s, (int)i), depth + 1) != 0)
                return -1;
        return 0;
    case AVRO_ARRAY:
        return walk_blocks(w, avro_schema_array_items(s), 0, depth);
    case AVRO_MAP:
        return walk_blocks(w, avro_schema_map_values(s), 1, depth);
    default:
        return walk_fail(w, "schema type unknown to the checker");
    }
}

/* ---------------------------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------------------------- */

/* Decodes a framed value into *val (a generic value of c's class; the caller decrefs it). */
static int decode_framed(const slt_kafka_rec_t *rec, cached_schema_t **out, avro_value_t *val,
                         char *why, size_t why_len)
{
    const uint8_t *p = (const uint8_t *)rec->value;
    int32_t id;
    cached_schema_t *c;
    avro_reader_t rd;
    char extra;
    int rc = -1;

    if (!p || rec->value_len < 5 || p[0] != 0x00) {
        snprintf(why, why_len, "value is not Confluent-framed (0x00 + 4-byte schema id)");
        return -1;
    }
    id = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4]);
    if ((c = schema_get(id, why, why_len)) == NULL)
        return -1;
    walk_t w = {.p = p + 5, .len = rec->value_len - 5, .why = why, .why_len = why_len};
    if (walk_value(&w, c->schema, 0) != 0)
        return -1;
    if (w.pos != w.len) {
        snprintf(why, why_len, "Avro body (schema id %d): %zu trailing bytes after the record",
                 (int)id, w.len - w.pos);
        return -1;
    }
    if (avro_generic_value_new(c->iface, val) != 0) {
        snprintf(why, why_len, "avro_generic_value_new: %s", avro_strerror());
        return -1;
    }
    rd = avro_reader_memory((const char *)p + 5, (int64_t)(rec->value_len - 5));
    if (avro_value_read(rd, val) != 0)
        snprintf(why, why_len, "avro-c cannot read the value (schema id %d): %s", (int)id,
                 avro_strerror());
    else if (avro_read(rd, &extra, 1) == 0) /* the whole value must be consumed */
        snprintf(why, why_len, "avro-c left bytes unread (schema id %d)", (int)id);
    else
        rc = 0;
    avro_reader_free(rd);
    if (rc != 0)
        avro_value_decref(val);
    else
        *out = c;
    return rc;
}

/* Plain JSON of a decoded value (API.md / schema/README.md): unions are null or the branch's
 * value, bytes and fixed base64, enums their symbol. New reference; NULL on an avro-c error. */
static json_t *avro_to_json(avro_value_t *v, int depth)
{
    avro_schema_t s = avro_value_get_schema(v);

    if (depth > SLT_AVRO_MAX_DEPTH)
        return NULL;
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        return json_null();
    case AVRO_BOOLEAN: {
        int b = 0;
        return avro_value_get_boolean(v, &b) == 0 ? json_boolean(b) : NULL;
    }
    case AVRO_INT32: {
        int32_t i = 0;
        return avro_value_get_int(v, &i) == 0 ? json_integer(i) : NULL;
    }
    case AVRO_INT64: {
        int64_t l = 0;
        return avro_value_get_long(v, &l) == 0 ? json_integer((json_int_t)l) : NULL;
    }
    case AVRO_FLOAT: {
        float f = 0;
        return avro_value_get_float(v, &f) == 0 ? json_real(f) : NULL;
    }
    case AVRO_DOUBLE: {
        double d = 0;
        return avro_value_get_double(v, &d) == 0 ? json_real(d) : NULL;
    }
    case AVRO_STRING: {
        const char *str = NULL;
        size_t size = 0; /* avro-c counts the NUL it appends */
        if (avro_value_get_string(v, &str, &size) != 0 || !str || size == 0)
            return NULL;
        return json_stringn(str, size - 1);
    }
    case AVRO_BYTES:
    case AVRO_FIXED: {
        const void *buf = NULL;
        size_t size = 0;
        int rc = avro_value_get_type(v) == AVRO_BYTES ? avro_value_get_bytes(v, &buf, &size)
                                                      : avro_value_get_fixed(v, &buf, &size);
        if (rc != 0)
            return NULL;
        char *b64 = slt_base64(buf ? buf : "", size);
        json_t *j = json_string(b64);
        free(b64);
        return j;
    }
    case AVRO_ENUM: {
        int sym = 0;
        const char *name;
        if (avro_value_get_enum(v, &sym) != 0 ||
            (name = avro_schema_enum_get(resolve_link(s), sym)) == NULL)
            return NULL;
        return json_string(name);
    }
    case AVRO_UNION: {
        avro_value_t branch;
        if (avro_value_get_current_branch(v, &branch) != 0)
            return NULL;
        return avro_to_json(&branch, depth + 1);
    }
    case AVRO_ARRAY:
    case AVRO_MAP:
    case AVRO_RECORD: {
        size_t n = 0;
        int is_array = avro_value_get_type(v) == AVRO_ARRAY;
        json_t *out = is_array ? json_array() : json_object();
        if (avro_value_get_size(v, &n) != 0)
            goto Fail;
        for (size_t i = 0; i < n; i++) {
            avro_value_t child;
            const char *name = NULL;
            json_t *cj;
            if (avro_value_get_by_index(v, i, &child, &name) != 0 ||
                (cj = avro_to_json(&child, depth + 1)) == NULL)
                goto Fail;
            if (is_array)
                json_array_append_new(out, cj);
            else
                json_object_set_new(out, name ? name : "", cj);
        }
        return out;
    Fail:
        json_decref(out);
        return NULL;
    }
    default:
        return NULL;
    }
}

json_t *slt_event_value_decode(const slt_kafka_rec_t *rec, int32_t *schema_id, char *why,
                               size_t why_len)
{
    json_error_t je;
    json_t *j;

    if (schema_id)
        *schema_id = -1;
    if (!rec->value) {
        snprintf(why, why_len, "value is NULL");
        return NULL;
    }
    if (rec->value_len >= 5 && rec->value[0] == 0x00) {
        cached_schema_t *c = NULL;
        avro_value_t val;
        if (decode_framed(rec, &c, &val, why, why_len) != 0)
            return NULL;
        if ((j = avro_to_json(&val, 0)) == NULL)
            snprintf(why, why_len, "decoded value (schema id %d) does not convert to JSON",
                     (int)c->id);
        else if (schema_id)
            *schema_id = c->id;
        avro_value_decref(&val);
        return j;
    }
    if ((j = json_loadb(rec->value, rec->value_len, JSON_REJECT_DUPLICATES, &je)) == NULL)
        snprintf(why, why_len, "value is neither Confluent-framed nor JSON (%s)", je.text);
    return j;
}

/* ---------------------------------------------------------------------------------------------
 * Comparison with the event sent
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    const cached_schema_t *c;
    char *why;
    size_t why_len;
    char path[256];
} cmp_t;

static int cmp_fail(cmp_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cmp_fail(cmp_t *x, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Paths and type names only: never the values (no payloads in logs). */
    snprintf(x->why, x->why_len, "value (schema id %d) %s%s%s", (int)x->c->id,
             x->path[0] ? "at " : "", x->path, x->path[0] ? ": " : "");
    size_t used = strlen(x->why);
    if (used < x->why_len)
        snprintf(x->why + used, x->why_len - used, "%s", msg);
    return 0;
}

/* Appends ".name" or "[i]" to the path; returns the old length to restore. */
static size_t path_push(cmp_t *x, const char *name, long idx)
{
    size_t old = strlen(x->path);
    if (name)
        snprintf(x->path + old, sizeof(x->path) - old, "%s%s", old ? "." : "", name);
    else
        snprintf(x->path + old, sizeof(x->path) - old, "[%ld]", idx);
    return old;
}

/* Base64 (standard or URL-safe alphabet, padding optional) into a malloc'd buffer; -1 when the
 * text is not base64. */
static int base64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    uint8_t *o;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;

    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    if ((o = malloc(len * 3 / 4 + 1)) == NULL)
        abort();
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        int v = ch >= 'A' && ch <= 'Z'   ? ch - 'A'
                : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
                : ch >= '0' && ch <= '9' ? ch - '0' + 52
                : ch == '+' || ch == '-' ? 62
                : ch == '/' || ch == '_' ? 63
                                         : -1;
        if (v < 0) {
            free(o);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (uint8_t)(acc >> bits);
        }
    }
    *out = o;
    *out_len = n;
    return 0;
}

/* A bytes/fixed default is a string of code points 0-255 (Avro's JSON form), UTF-8 encoded by
 * jansson; -1 when a code point is above 255. */
static int codepoints_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    uint8_t *o = malloc(len + 1);
    size_t n = 0;

    if (!o)
        abort();
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)in[i];
        if (b < 0x80) {
            o[n++] = b;
        } else if ((b == 0xC2 || b == 0xC3) && i + 1 < len) {
            o[n++] = (uint8_t)((b & 0x03) << 6 | ((uint8_t)in[++i] & 0x3F));
        } else {
            free(o);
            return -1;
        }
    }
    *out = o;
    *out_len = n;
    return 0;
}

static int cmp_value(cmp_t *x, avro_value_t *v, const json_t *sent, int is_default, int depth);

/* What kind of JSON value was sent, for messages (the kind, never the value). */
static const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* A record against a sent object: every field equal to the member sent, or, for a member
 * absent, to its default, or null (the gateway writes the null branch of a ["null", T] field
 * without a default); no member sent that the record lacks (schema_version, which the gateway
 * skips, only at the top). */
static int cmp_record(cmp_t *x, avro_value_t *v, const json_t *sent, int is_default, int depth)
{
    const json_t *fields = record_fields(x->c, avro_value_get_schema(v));
    size_t n = 0;
    const char *key;
    json_t *member;

    if (!json_is_object(sent))
        return cmp_fail(x, "decoded a record, sent %s", json_kind(sent));
    if (!fields || avro_value_get_size(v, &n) != 0 || n != json_array_size(fields))
        return cmp_fail(x, "%s", "record fields unknown for this schema");
    for (size_t i = 0; i < n; i++) {
        avro_value_t child;
        const char *name = NULL;
        const json_t *m, *field = json_array_get(fields, i);
        size_t old;
        int ok;

        if (avro_value_get_by_index(v, i, &child, &name) != 0 || !name)
            return cmp_fail(x, "%s", "avro-c cannot read a record field");
        old = path_push(x, name, 0);
        if ((m = json_object_get(sent, name)) != NULL) {
            ok = cmp_value(x, &child, m, is_default, depth + 1);
        } else if ((m = json_object_get(field, "default")) != NULL) {
            ok = cmp_value(x, &child, m, 1, depth + 1);
            size_t used = strlen(x->why);
            if (!ok && !is_default && used < x->why_len)
                snprintf(x->why + used, x->why_len - used, " (absent: its default)");
        } else {
            avro_value_t branch;
            ok = avro_value_get_type(&child) == AVRO_UNION &&
                 avro_value_get_current_branch(&child, &branch) == 0 &&
                 avro_value_get_type(&branch) == AVRO_NULL;
            if (!ok)
                cmp_fail(x, "%s", "absent from the event sent, no default, decoded not null");
        }
        x->path[old] = '\0';
        if (!ok)
            return 0;
    }
    json_object_foreach((json_t *)sent, key, member)
    {
        int known = 0;
        if (depth == 0 && !is_default && strcmp(key, "schema_version") == 0)
            continue;
        for (size_t i = 0; i < n && !known; i++) {
            const char *fname =
                json_string_value(json_object_get(json_array_get(fields, i), "name"));
            known = fname && strcmp(fname, key) == 0;
        }
        if (!known) {
            size_t old = path_push(x, key, 0);
            cmp_fail(x, "%s", "sent, but not a field of the record");
            x->path[old] = '\0';
            return 0;
        }
    }
    return 1;
}

static int cmp_bytes(cmp_t *x, const void *buf, size_t size, const json_t *sent, int is_default)
{
    uint8_t *want = NULL;
    size_t want_len = 0;
    int ok;

    if (!json_is_string(sent))
        return cmp_fail(x, "decoded bytes, sent %s", json_kind(sent));
    if ((is_default ? codepoints_decode : base64_decode)(
            json_string_value(sent), json_string_length(sent), &want, &want_len) != 0)
        return cmp_fail(x, "sent %s", is_default ? "a bad bytes default" : "no base64");
    ok = want_len == size && (size == 0 || memcmp(want, buf, size) == 0);
    free(want);
    return ok ? 1 : cmp_fail(x, "%s", "bytes differ");
}

static int cmp_value(cmp_t *x, avro_value_t *v, const json_t *sent, int is_default, int depth)
{
    if (depth > SLT_AVRO_MAX_DEPTH)
        return cmp_fail(x, "%s", "nested too deep");
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        return json_is_null(sent) ? 1 : cmp_fail(x, "decoded null, sent %s", json_kind(sent));
    case AVRO_BOOLEAN: {
        int b = 0;
        avro_value_get_boolean(v, &b);
        if (!json_is_boolean(sent))
            return cmp_fail(x, "decoded a boolean, sent %s", json_kind(sent));
        return !b == !json_is_true(sent) ? 1 : cmp_fail(x, "%s", "boolean differs");
    }
    case AVRO_INT32:
    case AVRO_INT64: {
        int64_t l = 0;
        int32_t i = 0;
        if (avro_value_get_type(v) == AVRO_INT32) {
            avro_value_get_int(v, &i);
            l = i;
        } else {
            avro_value_get_long(v, &l);
        }
        /* The gateway takes only integer literals for int and long. */
        if (!json_is_integer(sent))
            return cmp_fail(x, "decoded an integer, sent %s", json_kind(sent));
        return json_integer_value(sent) == l ? 1 : cmp_fail(x, "%s", "integer differs");
    }
    case AVRO_FLOAT: {
        float f = 0;
        avro_value_get_float(v, &f);
        if (!json_is_number(sent))
            return cmp_fail(x, "decoded a float, sent %s", json_kind(sent));
        /* the gateway rounds the JSON number to float */
        return (float)json_number_value(sent) == f ? 1 : cmp_fail(x, "%s", "float differs");
    }
    case AVRO_DOUBLE: {
        double d = 0;
        avro_value_get_double(v, &d);
        /* an integer literal sent for a double (87) decodes as 87.0: compare numerically */
        if (!json_is_number(sent))
            return cmp_fail(x, "decoded a double, sent %s", json_kind(sent));
        return json_number_value(sent) == d ? 1 : cmp_fail(x, "%s", "double differs");
    }
    case AVRO_STRING: {
        const char *str = NULL;
        size_t size = 0;
        if (avro_value_get_string(v, &str, &size) != 0 || !str || size == 0)
            return cmp_fail(x, "%s", "avro-c cannot read a string");
        if (!json_is_string(sent))
            return cmp_fail(x, "decoded a string, sent %s", json_kind(sent));
        return json_string_length(sent) == size - 1 &&
                       memcmp(json_string_value(sent), str, size - 1) == 0
                   ? 1
                   : cmp_fail(x, "%s", "string differs");
    }
    case AVRO_BYTES: {
        const void *buf = NULL;
        size_t size = 0;
        avro_value_get_bytes(v, &buf, &size);
        return cmp_bytes(x, buf, size, sent, is_default);
    }
    case AVRO_FIXED: {
        const void *buf = NULL;
        size_t size = 0;
        avro_value_get_fixed(v, &buf, &size);
        return cmp_bytes(x, buf, size, sent, is_default);
    }
    case AVRO_ENUM: {
        int sym = 0;
        const char *name;
        avro_value_get_enum(v, &sym);
        name = avro_schema_enum_get(resolve_link(avro_value_get_schema(v)), sym);
        if (!json_is_string(sent))
            return cmp_fail(x, "decoded an enum, sent %s", json_kind(sent));
        return name && strcmp(name, json_string_value(sent)) == 0
                   ? 1
                   : cmp_fail(x, "%s", "enum symbol differs");
    }
    case AVRO_UNION: {
        avro_value_t branch;
        int disc = -1;
        if (avro_value_get_discriminant(v, &disc) != 0 ||
            avro_value_get_current_branch(v, &branch) != 0)
            return cmp_fail(x, "%s", "avro-c cannot read a union");
        /* A union's default is a value of its first branch (Avro specification). */
        if (is_default && disc != 0)
            return cmp_fail(x, "%s", "decoded another union branch than the default's");
        return cmp_value(x, &branch, sent, is_default, depth + 1);
    }
    case AVRO_ARRAY: {
        size_t n = 0;
        if (!json_is_array(sent))
            return cmp_fail(x, "decoded an array, sent %s", json_kind(sent));
        if (avro_value_get_size(v, &n) != 0 || n != json_array_size(sent))
            return cmp_fail(x, "%s", "array length differs");
        for (size_t i = 0; i < n; i++) {
            avro_value_t child;
            size_t old = path_push(x, NULL, (long)i);
            int ok = avro_value_get_by_index(v, i, &child, NULL) == 0 &&
                     cmp_value(x, &child, json_array_get(sent, i), is_default, depth + 1);
            if (!ok && !x->why[0])
                cmp_fail(x, "%s", "avro-c cannot read an item");
            x->path[old] = '\0';
            if (!ok)
                return 0;
        }
        return 1;
    }
    case AVRO_MAP: {
        size_t n = 0;
        if (!json_is_object(sent))
            return cmp_fail(x, "decoded a map, sent %s", json_kind(sent));
        if (avro_value_get_size(v, &n) != 0 || n != json_object_size(sent))
            return cmp_fail(x, "%s", "map size differs");
        for (size_t i = 0; i < n; i++) {
            avro_value_t child;
            const char *key = NULL;
            const json_t *m;
            if (avro_value_get_by_index(v, i, &child, &key) != 0 || !key)
                return cmp_fail(x, "%s", "avro-c cannot read a map entry");
            size_t old = path_push(x, key, 0);
            int ok = (m = json_object_get(sent, key)) != NULL
                         ? cmp_value(x, &child, m, is_default, depth + 1)
                         : cmp_fail(x, "%s", "key not in the event sent");
            x->path[old] = '\0';
            if (!ok)
                return 0;
        }
        return 1;
    }
    case AVRO_RECORD:
        return cmp_record(x, v, sent, is_default, depth);
    default:
        return cmp_fail(x, "%s", "type unknown to the comparison");
    }
}

/* The Avro form: decode, then compare field by field with the gateway's JSON mapping. */
static int avro_value_matches(const slt_kafka_rec_t *rec, const json_t *sent, char *why,
                              size_t why_len)
{
    cached_schema_t *c = NULL;
    avro_value_t val;
    int ok;

    if (decode_framed(rec, &c, &val, why, why_len) != 0)
        return 0;
    cmp_t x = {.c = c, .why = why, .why_len = why_len};
    why[0] = '\0';
    ok = cmp_value(&x, &val, sent, 0, 0);
    avro_value_decref(&val);
    return ok;
}

/* The JSON form (values that are not framed: dead letters keep the event's bytes, and the
 * gateway before issue 4 forwarded them unchanged): equal JSON. */
static int json_value_matches(const slt_kafka_rec_t *rec, const json_t *sent, char *why,
                              size_t why_len)
{
    json_error_t je;
    json_t *v = json_loadb(rec->value, rec->value_len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        snprintf(why, why_len, "value is not JSON (%s) nor Confluent-framed", je.text);
        return 0;
    }
    int ok = 0;
    const char *eid = json_string_value(json_object_get(v, "event_id"));
    const char *uid = json_string_value(json_object_get(v, "user_id"));
    const char *s_eid = json_string_value(json_object_get(sent, "event_id"));
    const char *s_uid = json_string_value(json_object_get(sent, "user_id"));
    if (!json_is_object(v))
        snprintf(why, why_len, "value is not a JSON object");
    else if (!eid || !s_eid || strcmp(eid, s_eid) != 0)
        snprintf(why, why_len, "value event_id '%s' != sent '%s'", eid ? eid : "(none)",
                 s_eid ? s_eid : "(none)");
    else if (!uid || !s_uid || strcmp(uid, s_uid) != 0)
        snprintf(why, why_len, "value user_id differs from the one sent");
    else if (!json_equal(v, (json_t *)sent))
        snprintf(why, why_len, "value JSON differs from the event sent");
    else
        ok = 1;
    json_decref(v);
    return ok;
}

int slt_event_value_matches(const slt_kafka_rec_t *rec, const json_t *sent, char *why,
                            size_t why_len)
{
    if (!rec->value) {
        snprintf(why, why_len, "value is NULL");
        return 0;
    }
    if (rec->value_len >= 5 && rec->value[0] == 0x00)
        return avro_value_matches(rec, sent, why, why_len);
    return json_value_matches(rec, sent, why, why_len);
}
