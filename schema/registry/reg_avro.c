/* Avro schemas in the registry: parsing with avro-c plus the validity checks avro-c 1.11 skips,
 * the canonical form used for "same schema", and the schema-resolution check behind every
 * compatibility level. The resolution walk is ours (over avro-c's parsed schemas) because
 * avro_resolved_writer_new in avro-c 1.11.1 disagrees with the Avro specification in both
 * directions; see README.md "Avro compatibility" and tests/unit/registry/test_reg_avro.c. */
#include <avro.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reg_int.h"

/* What avro-c does not keep from the JSON: which record fields have a default, and whether an
 * enum has a default symbol. Keyed by avro-c's schema object (named types are parsed once and
 * referenced through links, so the pointer identifies the type). */
typedef struct reg_avro_ann {
    struct reg_avro_ann *next;
    avro_schema_t schema;
    size_t n_fields;
    unsigned char *has_default; /* per record field */
    int enum_has_default;
} reg_avro_ann_t;

struct reg_avro {
    avro_schema_t schema;
    char *text;      /* compact JSON, keys in the order written */
    char *canonical; /* compact JSON, keys sorted */
    reg_avro_ann_t *anns;
};

void reg_msg_add(reg_msg_t *msg, const char *fmt, ...)
{
    size_t used = strnlen(msg->msg, sizeof(msg->msg));
    va_list ap;

    if (used + 1 >= sizeof(msg->msg))
        return;
    va_start(ap, fmt);
    vsnprintf(msg->msg + used, sizeof(msg->msg) - used, fmt, ap);
    va_end(ap);
}

static const reg_avro_ann_t *ann_find(const reg_avro_t *a, avro_schema_t s)
{
    for (const reg_avro_ann_t *n = a->anns; n != NULL; n = n->next)
        if (n->schema == s)
            return n;
    return NULL;
}

static avro_schema_t resolve_link(avro_schema_t s)
{
    /* links to links do not occur in avro-c, but a bound keeps a malformed one from looping */
    for (int i = 0; i < 8 && is_avro_link(s); i++)
        s = avro_schema_link_target(s);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Defaults must match their field's type (for a union: its first branch), as the spec says */

static int default_ok(const reg_avro_t *a, json_t *v, avro_schema_t s, int depth)
{
    s = resolve_link(s);
    if (depth > REG_MAX_SCHEMA_DEPTH)
        return 0;
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return json_is_null(v);
    case AVRO_BOOLEAN:
        return json_is_boolean(v);
    case AVRO_INT32:
        return json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
               json_integer_value(v) <= INT32_MAX;
    case AVRO_INT64:
        return json_is_integer(v);
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        return json_is_number(v);
    case AVRO_STRING:
    case AVRO_BYTES:
    case AVRO_FIXED:
        return json_is_string(v);
    case AVRO_ENUM:
        return json_is_string(v) && avro_schema_enum_get_by_name(s, json_string_value(v)) >= 0;
    case AVRO_ARRAY: {
        size_t i;
        json_t *e;
        if (!json_is_array(v))
            return 0;
        json_array_foreach(
            v, i, e) if (!default_ok(a, e, avro_schema_array_items(s), depth + 1)) return 0;
        return 1;
    }
    case AVRO_MAP: {
        const char *k;
        json_t *e;
        if (!json_is_object(v))
            return 0;
        json_object_foreach(
            v, k, e) if (!default_ok(a, e, avro_schema_map_values(s), depth + 1)) return 0;
        return 1;
    }
    case AVRO_RECORD: {
        const reg_avro_ann_t *ann = ann_find(a, s);
        if (!json_is_object(v))
            return 0;
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
            json_t *fv = json_object_get(v, avro_schema_record_field_name(s, (int)i));
            if (fv == NULL) {
                if (ann == NULL || i >= ann->n_fields || !ann->has_default[i])
                    return 0;
            } else if (!default_ok(a, fv, avro_schema_record_field_get_by_index(s, (int)i),
                                   depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    case AVRO_UNION:
        return avro_schema_union_size(s) > 0 &&
               default_ok(a, v, avro_schema_union_branch(s, 0), depth + 1);
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Walk the JSON and avro-c's parse side by side: annotate, and check what avro-c lets through */

/* A union's branches must differ: by type, or by full name for named types. */
static int union_ok(avro_schema_t u, reg_msg_t *err, const char *where)
{
    size_t n = avro_schema_union_size(u);
    for (size_t i = 0; i < n; i++) {
        avro_schema_t bi = resolve_link(avro_schema_union_branch(u, (int)i));
        if (is_avro_union(bi)) {
            reg_msg_add(err, "%s: a union may not directly contain a union", where);
            return 0;
        }
        for (size_t j = 0; j < i; j++) {
            avro_schema_t bj = resolve_link(avro_schema_union_branch(u, (int)j));
            if (avro_typeof(bi) != avro_typeof(bj))
                continue;
            if (is_avro_named_type(bi)) {
                const char *ni = avro_schema_type_name(bi), *nj = avro_schema_type_name(bj);
                const char *si = avro_schema_namespace(bi), *sj = avro_schema_namespace(bj);
                if (strcmp(ni, nj) != 0 || strcmp(si ? si : "", sj ? sj : "") != 0)
                    continue;
            }
            reg_msg_add(err, "%s: union has two branches of the same type", where);
            return 0;
        }
    }
    return 1;
}

static int annotate(reg_avro_t *a, json_t *j, avro_schema_t s, int depth, reg_msg_t *err)
{
    const char *type;

    if (depth > REG_MAX_SCHEMA_DEPTH) {
        reg_msg_add(err, "schema nests deeper than %d levels", REG_MAX_SCHEMA_DEPTH);
        return -1;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *b;
        if (!is_avro_union(s) || avro_schema_union_size(s) != json_array_size(j))
            return 0; /* not what we expected avro-c to build: nothing to annotate */
        if (!union_ok(s, err, "union"))
            return -1;
        json_array_foreach(j, i, b) if (annotate(a, b, avro_schema_union_branch(s, (int)i),
                                                 depth + 1, err) != 0) return -1;
        return 0;
    }
    if (!json_is_object(j) || (type = json_string_value(json_object_get(j, "type"))) == NULL)
        return 0; /* a type name (primitive or reference): nothing of its own */
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0) {
        json_t *fields = json_object_get(j, "fields"), *f;
        size_t i, n = json_array_size(fields);
        reg_avro_ann_t *ann;
        if (!is_avro_record(s) || avro_schema_record_size(s) != n) {
            reg_msg_add(err, "record %s: duplicate field names",
                        avro_schema_type_name(s) ? avro_schema_type_name(s) : "?");
            return -1; /* avro-c keeps one field per name, so a size mismatch means a dup */
        }
        ann = calloc(1, sizeof(*ann));
        ann->has_default = calloc(n ? n : 1, 1);
        if (ann == NULL || ann->has_default == NULL)
            abort();
        ann->schema = s;
        ann->n_fields = n;
        ann->next = a->anns;
        a->anns = ann;
        json_array_foreach(fields, i, f)
        {
            const char *fname = json_string_value(json_object_get(f, "name"));
            for (size_t k = 0; k < i; k++)
                if (fname != NULL && strcmp(fname, avro_schema_record_field_name(s, (int)k)) == 0) {
                    reg_msg_add(err, "record %s: field %s appears twice", avro_schema_type_name(s),
                                fname);
                    return -1;
                }
            if (annotate(a, json_object_get(f, "type"),
                         avro_schema_record_field_get_by_index(s, (int)i), depth + 1, err) != 0)
                return -1;
            ann->has_default[i] = json_object_get(f, "default") != NULL;
        }
        /* defaults last: a default may be a record whose own defaults are annotated above */
        json_array_foreach(fields, i, f)
        {
            json_t *def = json_object_get(f, "default");
            if (def != NULL &&
                !default_ok(a, def, avro_schema_record_field_get_by_index(s, (int)i), 0)) {
                reg_msg_add(err, "record %s: the default of field %s does not match its type",
                            avro_schema_type_name(s), avro_schema_record_field_name(s, (int)i));
                return -1;
            }
        }
        return 0;
    }
    if (strcmp(type, "enum") == 0 && is_avro_enum(s)) {
        json_t *def = json_object_get(j, "default");
        reg_avro_ann_t *ann;
        if (def == NULL)
            return 0;
        if (!json_is_string(def) || avro_schema_enum_get_by_name(s, json_string_value(def)) < 0) {
            reg_msg_add(err, "enum %s: default is not one of its symbols",
                        avro_schema_type_name(s));
            return -1;
        }
        if ((ann = calloc(1, sizeof(*ann))) == NULL)
            abort();
        ann->schema = s;
        ann->enum_has_default = 1;
        ann->next = a->anns;
        a->anns = ann;
        return 0;
    }
    if (strcmp(type, "array") == 0 && is_avro_array(s))
        return annotate(a, json_object_get(j, "items"), avro_schema_array_items(s), depth + 1, err);
    if (strcmp(type, "map") == 0 && is_avro_map(s))
        return annotate(a, json_object_get(j, "values"), avro_schema_map_values(s), depth + 1, err);
    return 0;
}

/* JSON nesting bound before avro-c (which recurses) sees the text. */
static int json_depth_ok(json_t *j, int depth)
{
    size_t i;
    const char *k;
    json_t *v;

    if (depth > 2 * REG_MAX_SCHEMA_DEPTH + 8)
        return 0;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) if (!json_depth_ok(v, depth + 1)) return 0;
    } else if (json_is_object(j)) {
        json_object_foreach(j, k, v) if (!json_depth_ok(v, depth + 1)) return 0;
    }
    return 1;
}

void reg_avro_destroy(reg_avro_t *a)
{
    if (a == NULL)
        return;
    while (a->anns != NULL) {
        reg_avro_ann_t *n = a->anns;
        a->anns = n->next;
        free(n->has_default);
        free(n);
    }
    if (a->schema != NULL)
        avro_schema_decref(a->schema);
    free(a->text);
    free(a->canonical);
    free(a);
}

reg_avro_t *reg_avro_parse(const char *text, size_t len, reg_msg_t *err)
{
    json_error_t jerr;
    json_t *j = NULL;
    reg_avro_t *a = calloc(1, sizeof(*a));

    if (a == NULL)
        abort();
    j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        reg_msg_add(err, "Invalid schema: not JSON (line %d column %d: %s)", jerr.line, jerr.column,
                    jerr.text);
        goto Fail;
    }
    if (!json_depth_ok(j, 0)) {
        reg_msg_add(err, "Invalid schema: nests deeper than %d levels", REG_MAX_SCHEMA_DEPTH);
        goto Fail;
    }
    if (avro_schema_from_json_length(text, len, &a->schema) != 0) {
        a->schema = NULL;
        reg_msg_add(err, "Invalid schema: %s", avro_strerror());
        goto Fail;
    }
    if (annotate(a, j, a->schema, 0, err) != 0) {
        char tmp[sizeof(err->msg)];
        snprintf(tmp, sizeof(tmp), "Invalid schema: %.480s", err->msg);
        memcpy(err->msg, tmp, sizeof(tmp));
        goto Fail;
    }
    a->text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    a->canonical = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (a->text == NULL || a->canonical == NULL)
        abort();
    json_decref(j);
    return a;
Fail:
    json_decref(j);
    reg_avro_destroy(a);
    return NULL;
}

const char *reg_avro_text(const reg_avro_t *a)
{
    return a->text;
}

const char *reg_avro_canonical(const reg_avro_t *a)
{
    return a->canonical;
}

/* ------------------------------------------------------------------------------------------ */
/* Schema resolution (Avro 1.11 specification, "Schema Resolution")                          */

typedef struct {
    const reg_avro_t *w, *r;
    avro_schema_t stack_w[REG_MAX_SCHEMA_DEPTH + 1], stack_r[REG_MAX_SCHEMA_DEPTH + 1];
    int depth;
    reg_msg_t *why; /* NULL while probing union branches: failures there are not reasons */
    const char *what;
} resolve_t;

static const char *type_label(avro_schema_t s)
{
    switch (avro_typeof(s)) {
    case AVRO_STRING:
        return "string";
    case AVRO_BYTES:
        return "bytes";
    case AVRO_INT32:
        return "int";
    case AVRO_INT64:
        return "long";
    case AVRO_FLOAT:
        return "float";
    case AVRO_DOUBLE:
        return "double";
    case AVRO_BOOLEAN:
        return "boolean";
    case AVRO_NULL:
        return "null";
    case AVRO_MAP:
        return "map";
    case AVRO_ARRAY:
        return "array";
    case AVRO_UNION:
        return "union";
    default:
        return avro_schema_type_name(s);
    }
}

static void reason(resolve_t *rs, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reason(resolve_t *rs, const char *path, const char *fmt, ...)
{
    char text[256];
    va_list ap;

    if (rs->why == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    reg_msg_add(rs->why, "%s%s at %s: %s", rs->why->msg[0] ? "; " : "", rs->what,
                path[0] ? path : "/", text);
}

static int promotable(avro_type_t w, avro_type_t r)
{
    switch (w) {
    case AVRO_INT32:
        return r == AVRO_INT64 || r == AVRO_FLOAT || r == AVRO_DOUBLE;
    case AVRO_INT64:
        return r == AVRO_FLOAT || r == AVRO_DOUBLE;
    case AVRO_FLOAT:
        return r == AVRO_DOUBLE;
    case AVRO_STRING:
        return r == AVRO_BYTES;
    case AVRO_BYTES:
        return r == AVRO_STRING;
    default:
        return 0;
    }
}

static int can_read(resolve_t *rs, avro_schema_t w, avro_schema_t r, const char *path);

static int can_read_record(resolve_t *rs, avro_schema_t w, avro_schema_t r, const char *path)
{
    const reg_avro_ann_t *rann = ann_find(rs->r, r);
    char sub[512];
    int ok = 1;

    for (size_t i = 0; i < avro_schema_record_size(r); i++) {
        const char *name = avro_schema_record_field_name(r, (int)i);
        /* by index: avro_schema_record_field_get dereferences NULL for a missing name (1.11.1) */
        int wi = avro_schema_record_field_get_index(w, name);
        snprintf(sub, sizeof(sub), "%s/%s", path, name);
        if (wi < 0) {
            if (rann == NULL || i >= rann->n_fields || !rann->has_default[i]) {
                reason(rs, sub, "reader field has no default and the writer lacks it");
                ok = 0;
            }
            continue;
        }
        if (!can_read(rs, avro_schema_record_field_get_by_index(w, wi),
                      avro_schema_record_field_get_by_index(r, (int)i), sub))
            ok = 0;
    }
    return ok;
}

static int can_read(resolve_t *rs, avro_schema_t w, avro_schema_t r, const char *path)
{
    int ok = 1;
    char sub[512];

    w = resolve_link(w);
    r = resolve_link(r);
    /* a recursive type: the pair is being checked further up; assume it holds there */
    for (int i = 0; i < rs->depth; i++)
        if (rs->stack_w[i] == w && rs->stack_r[i] == r)
            return 1;
    if (rs->depth >= REG_MAX_SCHEMA_DEPTH) {
        reason(rs, path, "schemas nest too deep to compare");
        return 0;
    }
    rs->stack_w[rs->depth] = w;
    rs->stack_r[rs->depth] = r;
    rs->depth++;

    if (is_avro_union(w)) {
        /* every branch the writer may have chosen must be readable */
        for (size_t i = 0; i < avro_schema_union_size(w); i++) {
            snprintf(sub, sizeof(sub), "%s/union[%zu]", path, i);
            if (!can_read(rs, avro_schema_union_branch(w, (int)i), r, sub))
                ok = 0;
        }
    } else if (is_avro_union(r)) {
        reg_msg_t *why = rs->why;
        ok = 0;
        rs->why = NULL; /* a branch that does not fit is not a reason; no branch fitting is */
        for (size_t i = 0; i < avro_schema_union_size(r) && !ok; i++)
            ok = can_read(rs, w, avro_schema_union_branch(r, (int)i), path);
        rs->why = why;
        if (!ok)
            reason(rs, path, "no branch of the reader's union reads writer type %s", type_label(w));
    } else if (avro_typeof(w) != avro_typeof(r)) {
        ok = promotable(avro_typeof(w), avro_typeof(r));
        if (!ok)
            reason(rs, path, "writer type %s cannot be read as %s", type_label(w), type_label(r));
    } else {
        switch (avro_typeof(w)) {
        case AVRO_RECORD:
            if (strcmp(avro_schema_name(w), avro_schema_name(r)) != 0) {
                reason(rs, path, "record name %s differs from %s", avro_schema_name(w),
                       avro_schema_name(r));
                ok = 0;
            } else {
                ok = can_read_record(rs, w, r, path);
            }
            break;
        case AVRO_ENUM: {
            const reg_avro_ann_t *rann = ann_find(rs->r, r);
            if (strcmp(avro_schema_name(w), avro_schema_name(r)) != 0) {
                reason(rs, path, "enum name %s differs from %s", avro_schema_name(w),
                       avro_schema_name(r));
                ok = 0;
                break;
            }
            if (rann != NULL && rann->enum_has_default)
                break; /* unknown symbols read as the reader's default */
            for (int i = 0; i < avro_schema_enum_number_of_symbols(w); i++) {
                const char *sym = avro_schema_enum_get(w, i);
                if (avro_schema_enum_get_by_name(r, sym) < 0) {
                    reason(rs, path, "writer enum symbol %s is missing from the reader", sym);
                    ok = 0;
                }
            }
            break;
        }
        case AVRO_FIXED:
            if (strcmp(avro_schema_name(w), avro_schema_name(r)) != 0 ||
                avro_schema_fixed_size(w) != avro_schema_fixed_size(r)) {
                reason(rs, path, "fixed %s differs in name or size", avro_schema_name(w));
                ok = 0;
            }
            break;
        case AVRO_ARRAY:
            snprintf(sub, sizeof(sub), "%s/items", path);
            ok = can_read(rs, avro_schema_array_items(w), avro_schema_array_items(r), sub);
            break;
        case AVRO_MAP:
            snprintf(sub, sizeof(sub), "%s/values", path);
            ok = can_read(rs, avro_schema_map_values(w), avro_schema_map_values(r), sub);
            break;
        default:
            break; /* the same primitive */
        }
    }
    rs->depth--;
    return ok;
}

int reg_avro_can_read(const reg_avro_t *writer, const reg_avro_t *reader, const char *what,
                      reg_msg_t *why)
{
    resolve_t *rs = calloc(1, sizeof(*rs));
    int ok;

    if (rs == NULL)
        abort();
    rs->w = writer;
    rs->r = reader;
    rs->why = why;
    rs->what = what;
    ok = can_read(rs, writer->schema, reader->schema, "");
    free(rs);
    return ok;
}
