/* Self-test of slt's Avro audit, independent of the gateway's value format: events are encoded
 * here with avro-c (Confluent framing + avro_value_write) against the schemas of a real
 * sluice-registry, and slt_event_value_matches / slt_event_value_decode must accept exactly the
 * right ones. Then the stack's own registry: started, defaults registered, killed, restarted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "slt.h"

#define N_RANDOM 100
#define VALUE_CAP 4096

typedef struct {
    int32_t id;
    avro_schema_t schema;
    avro_value_iface_t *iface;
} test_schema_t;

static const char *const g_types[] = {"page_view", "click", "add_to_cart", "purchase",
                                      "api_request"};
static test_schema_t g_schemas[5];

/* The latest version of a subject: its id and the schema compiled with avro-c. */
static void load_schema(const slt_registry_t *r, const char *subject, test_schema_t *out)
{
    char path[128], url[200];
    slt_http_resp_t resp;
    json_t *obj;

    snprintf(path, sizeof(path), "/subjects/%s/versions/latest", subject);
    SLT_REQUIRE(slt_http_get(slt_registry_url(r, path, url, sizeof(url)), SLT_HTTP_1_1, &resp) ==
                    200,
                "GET %s: HTTP %ld", path, resp.status);
    obj = json_loadb(resp.body, resp.body_len, 0, NULL);
    slt_http_resp_dispose(&resp);
    SLT_REQUIRE(obj != NULL, "GET %s: not JSON", path);
    const char *text = json_string_value(json_object_get(obj, "schema"));
    out->id = (int32_t)json_integer_value(json_object_get(obj, "id"));
    SLT_REQUIRE(text && out->id > 0, "GET %s: no schema or id", path);
    SLT_REQUIRE(avro_schema_from_json_length(text, strlen(text), &out->schema) == 0,
                "avro-c parses %s: %s", subject, avro_strerror());
    out->iface = avro_generic_class_from_schema(out->schema);
    SLT_REQUIRE(out->iface != NULL, "avro-c class for %s", subject);
    json_decref(obj);
}

/* Standard base64 (padded) into out; returns the byte count, 0 when invalid or too long. Only
 * what this test writes, so no URL-safe alphabet here. */
static size_t unbase64(const char *in, unsigned char *out, size_t cap)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *in && *in != '='; in++) {
        const char *at = strchr(tbl, *in);
        if (!at)
            return 0;
        acc = acc << 6 | (uint32_t)(at - tbl);
        if ((bits += 6) >= 8) {
            if (n == cap)
                return 0;
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

/* Sets an avro-c value from plain JSON: a union takes its null branch for null or absence, else
 * its first other branch; bytes and fixed are base64. Returns 0 or -1. */
static int set_from_json(avro_value_t *v, const json_t *j)
{
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        return json_is_null(j) ? avro_value_set_null(v) : -1;
    case AVRO_BOOLEAN:
        return json_is_boolean(j) ? avro_value_set_boolean(v, json_is_true(j)) : -1;
    case AVRO_INT32:
        return json_is_integer(j) ? avro_value_set_int(v, (int32_t)json_integer_value(j)) : -1;
    case AVRO_INT64:
        return json_is_integer(j) ? avro_value_set_long(v, json_integer_value(j)) : -1;
    case AVRO_FLOAT:
        return json_is_number(j) ? avro_value_set_float(v, (float)json_number_value(j)) : -1;
    case AVRO_DOUBLE:
        return json_is_number(j) ? avro_value_set_double(v, json_number_value(j)) : -1;
    case AVRO_STRING:
        return json_is_string(j)
                   ? avro_value_set_string_len(v, json_string_value(j), json_string_length(j) + 1)
                   : -1;
    case AVRO_BYTES:
    case AVRO_FIXED: {
        unsigned char raw[64];
        size_t n;
        if (!json_is_string(j) || (n = unbase64(json_string_value(j), raw, sizeof(raw))) == 0)
            return -1;
        if (avro_value_get_type(v) == AVRO_FIXED)
            return avro_value_set_fixed(v, raw, n);
        return avro_value_set_bytes(v, raw, n);
    }
    case AVRO_ENUM: {
        int sym;
        if (!json_is_string(j))
            return -1;
        sym = avro_schema_enum_get_by_name(avro_value_get_schema(v), json_string_value(j));
        return sym < 0 ? -1 : avro_value_set_enum(v, sym);
    }
    case AVRO_ARRAY: {
        if (!json_is_array(j))
            return -1;
        for (size_t i = 0; i < json_array_size(j); i++) {
            avro_value_t item;
            if (avro_value_append(v, &item, NULL) != 0 ||
                set_from_json(&item, json_array_get(j, i)) != 0)
                return -1;
        }
        return 0;
    }
    case AVRO_MAP: {
        const char *key;
        json_t *m;
        if (!json_is_object(j))
            return -1;
        json_object_foreach((json_t *)j, key, m)
        {
            avro_value_t item;
            if (avro_value_add(v, key, &item, NULL, NULL) != 0 || set_from_json(&item, m) != 0)
                return -1;
        }
        return 0;
    }
    case AVRO_UNION: {
        avro_schema_t s = avro_value_get_schema(v);
        avro_value_t branch;
        for (size_t i = 0; i < avro_schema_union_size(s); i++) {
            int is_null = is_avro_null(avro_schema_union_branch(s, (int)i));
            if (is_null == json_is_null(j))
                return avro_value_set_branch(v, (int)i, &branch) == 0 ? set_from_json(&branch, j)
                                                                      : -1;
        }
        return -1;
    }
    case AVRO_RECORD: {
        size_t n = 0;
        if (!json_is_object(j) || avro_value_get_size(v, &n) != 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            avro_value_t child;
            const char *name = NULL;
            const json_t *m;
            if (avro_value_get_by_index(v, i, &child, &name) != 0)
                return -1;
            m = json_object_get(j, name);
            if (set_from_json(&child, m ? m : json_null()) != 0)
                return -1;
        }
        return 0;
    }
    default:
        return -1;
    }
}

/* Encodes event (plain JSON) with schema ts into rec->value, framed as 0x00 + big-endian id +
 * Avro binary. rec is a hand-made record holding only the value. */
static void encode_with(const test_schema_t *ts, const json_t *event, slt_kafka_rec_t *rec)
{
    const char *type = json_string_value(json_object_get(event, "event_type"));
    avro_value_t val;
    avro_writer_t w;
    char *buf = calloc(1, VALUE_CAP);

    SLT_REQUIRE(buf != NULL, "calloc");
    SLT_REQUIRE(avro_generic_value_new(ts->iface, &val) == 0, "avro_generic_value_new");
    SLT_REQUIRE(set_from_json(&val, event) == 0, "the %s event fits its schema",
                type ? type : "test");
    buf[0] = 0x00;
    buf[1] = (char)((uint32_t)ts->id >> 24);
    buf[2] = (char)((uint32_t)ts->id >> 16);
    buf[3] = (char)((uint32_t)ts->id >> 8);
    buf[4] = (char)ts->id;
    w = avro_writer_memory(buf + 5, VALUE_CAP - 5);
    SLT_REQUIRE(avro_value_write(w, &val) == 0, "avro_value_write: %s", avro_strerror());
    memset(rec, 0, sizeof(*rec));
    rec->value = buf;
    rec->value_len = 5 + (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&val);
}

/* The same with the default schema of the event's event_type. */
static void encode_event(const json_t *event, slt_kafka_rec_t *rec)
{
    const char *type = json_string_value(json_object_get(event, "event_type"));
    const test_schema_t *ts = NULL;

    for (size_t i = 0; i < 5; i++)
        if (type && strcmp(type, g_types[i]) == 0)
            ts = &g_schemas[i];
    SLT_REQUIRE(ts != NULL, "event_type %s has a test schema", type ? type : "(none)");
    encode_with(ts, event, rec);
}

static void rec_dispose(slt_kafka_rec_t *rec)
{
    free(rec->value);
    rec->value = NULL;
}

static void expect_match(const char *what, const slt_kafka_rec_t *rec, const json_t *sent)
{
    char why[400] = "";
    SLT_CHECK(slt_event_value_matches(rec, sent, why, sizeof(why)) == 1, "%s: rejected: %s", what,
              why);
}

/* Rejected, with a reason containing `reason` (and never the secret value, when not NULL). */
static void expect_reject(const char *what, const slt_kafka_rec_t *rec, const json_t *sent,
                          const char *reason, const char *secret)
{
    char why[400] = "";
    int ok = slt_event_value_matches(rec, sent, why, sizeof(why));
    SLT_CHECK(ok == 0, "%s: accepted, want a rejection", what);
    SLT_CHECK(ok == 1 || strstr(why, reason) != NULL, "%s: reason '%s' lacks '%s'", what, why,
              reason);
    SLT_CHECK(!secret || !strstr(why, secret), "%s: the reason echoes a value", what);
    slt_note("rejected %s: %s", what, why);
}

static json_t *fixed_page_view(void)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:I, s:{s:s, s:s, s:s, s:i}}", "event_id",
                     "9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11", "event_type", "page_view", "ts",
                     (json_int_t)1763999999000, "user_id", "u-123", "session_id", "s-9", "page_id",
                     (json_int_t)42, "properties", "url", "/pricing", "referrer",
                     "https://www.example.com/", "title", "Pricing", "latency_ms", 87);
}

static void test_accepts(void)
{
    slt_kafka_rec_t rec;
    json_t *ev = fixed_page_view(), *sent, *dec;
    char why[400] = "";
    int32_t id = 0;

    encode_event(ev, &rec);
    expect_match("page_view, every member", &rec, ev);
    dec = slt_event_value_decode(&rec, &id, why, sizeof(why));
    SLT_CHECK(dec && json_equal(dec, ev), "decode gives back the event sent (%s)", why);
    SLT_CHECK(id == g_schemas[0].id, "decode reports schema id %d, want %d", (int)id,
              (int)g_schemas[0].id);
    json_decref(dec);

    /* schema_version is skipped by the gateway, so it is not in the record */
    sent = json_deep_copy(ev);
    json_object_set_new(sent, "schema_version", json_integer(1));
    expect_match("page_view with schema_version", &rec, sent);
    json_decref(sent);
    rec_dispose(&rec);

    /* absent optional members are written as their default (null) */
    json_object_del(ev, "session_id");
    json_object_del(ev, "page_id");
    json_object_del(json_object_get(ev, "properties"), "referrer");
    encode_event(ev, &rec);
    expect_match("page_view, optional members absent", &rec, ev);
    dec = slt_event_value_decode(&rec, NULL, why, sizeof(why));
    SLT_CHECK(dec && json_is_null(json_object_get(dec, "session_id")) &&
                  json_is_null(json_object_get(json_object_get(dec, "properties"), "referrer")),
              "decode shows absent members as null (%s)", why);
    json_decref(dec);
    /* the same value against the members sent as explicit nulls */
    sent = json_deep_copy(ev);
    json_object_set_new(sent, "session_id", json_null());
    json_object_set_new(json_object_get(sent, "properties"), "referrer", json_null());
    expect_match("page_view, optional members null", &rec, sent);
    json_decref(sent);
    rec_dispose(&rec);
    json_decref(ev);

    /* a double sent as an integer literal decodes as 87.0 */
    slt_batch_t b;
    slt_batch_init(&b);
    ev = slt_batch_add(&b, "api_request");
    json_object_set_new(json_object_get(ev, "properties"), "latency_ms", json_integer(87));
    encode_event(ev, &rec);
    expect_match("api_request, latency_ms sent as 87", &rec, ev);
    dec = slt_event_value_decode(&rec, NULL, why, sizeof(why));
    const json_t *lat = json_object_get(json_object_get(dec, "properties"), "latency_ms");
    SLT_CHECK(json_is_real(lat) && json_real_value(lat) == 87.0,
              "api_request decodes latency_ms as the real 87.0");
    json_decref(dec);
    rec_dispose(&rec);
    slt_batch_dispose(&b);

    /* realistic events of every type (random nulls and values) */
    slt_batch_init(&b);
    slt_batch_add_n(&b, N_RANDOM);
    for (size_t i = 0; i < slt_batch_len(&b); i++) {
        char what[64];
        snprintf(what, sizeof(what), "random event %zu", i);
        encode_event(slt_batch_event(&b, i), &rec);
        expect_match(what, &rec, slt_batch_event(&b, i));
        rec_dispose(&rec);
    }
    slt_batch_dispose(&b);
    slt_note("accepted: every member, schema_version, absent/null optionals, 87 for a double, "
             "%d random events of five types",
             N_RANDOM);
}

static void test_rejects(void)
{
    slt_kafka_rec_t rec;
    json_t *ev = fixed_page_view(), *sent;

    encode_event(ev, &rec);

    sent = json_deep_copy(ev);
    json_object_set_new(json_object_get(sent, "properties"), "url", json_string("/secret-url"));
    expect_reject("different url", &rec, sent, "properties.url", "/secret-url");
    json_decref(sent);

    sent = json_deep_copy(ev);
    json_object_del(json_object_get(sent, "properties"), "url");
    expect_reject("url missing from the event sent", &rec, sent, "properties.url", NULL);
    json_decref(sent);

    sent = json_deep_copy(ev);
    json_object_set_new(sent, "colour", json_string("blue"));
    expect_reject("a member the record lacks", &rec, sent, "colour", NULL);
    json_decref(sent);

    sent = json_deep_copy(ev);
    json_object_set_new(json_object_get(sent, "properties"), "schema_version", json_integer(1));
    expect_reject("schema_version is skipped only at the top", &rec, sent, "schema_version", NULL);
    json_decref(sent);

    sent = json_deep_copy(ev);
    json_object_set_new(sent, "page_id", json_integer(43));
    expect_reject("different long", &rec, sent, "page_id", NULL);
    json_object_set_new(sent, "page_id", json_real(42.0));
    expect_reject("a real sent for a long", &rec, sent, "page_id", NULL);
    json_object_set_new(sent, "page_id", json_null());
    expect_reject("null sent, a long written", &rec, sent, "page_id", NULL);
    json_object_del(sent, "page_id");
    expect_reject("absent, a long written instead of the default", &rec, sent, "page_id", NULL);
    json_decref(sent);

    sent = json_deep_copy(ev);
    json_object_set_new(json_object_get(sent, "properties"), "title", json_integer(5));
    expect_reject("a number sent for a string", &rec, sent, "properties.title", NULL);
    json_decref(sent);

    /* framing and body damage: clear reasons, no crash (ASan) */
    slt_kafka_rec_t bad = rec;
    char *buf = malloc(rec.value_len + 16);
    SLT_REQUIRE(buf != NULL, "malloc");
    bad.value = buf;

    memcpy(buf, rec.value, rec.value_len);
    buf[rec.value_len] = 0x00;
    bad.value_len = rec.value_len + 1;
    expect_reject("one trailing byte", &bad, ev, "trailing", NULL);

    bad.value_len = rec.value_len - 1;
    expect_reject("truncated by one byte", &bad, ev, "Avro body", NULL);

    memcpy(buf, rec.value, rec.value_len);
    buf[1] = 0x00, buf[2] = 0x00, buf[3] = 0x27, buf[4] = 0x0f; /* id 9999 */
    bad.value_len = rec.value_len;
    expect_reject("unknown schema id", &bad, ev, "unknown", NULL);

    /* the first field (event_id) claims 2^62 bytes: avro-c alone would try to malloc them */
    memcpy(buf, rec.value, 5);
    memcpy(buf + 5, "\xfe\xff\xff\xff\xff\xff\xff\xff\x7f", 9);
    bad.value_len = 14;
    expect_reject("a huge string length", &bad, ev, "beyond the value", NULL);
    memcpy(buf + 5, "\x03", 1); /* zig-zag -2 */
    bad.value_len = 6;
    expect_reject("a negative string length", &bad, ev, "beyond the value", NULL);
    bad.value_len = 4;
    expect_reject("shorter than the framing", &bad, ev, "not JSON", NULL);

    /* a value that is not framed is the JSON path (dead letters) */
    char *text = json_dumps(ev, JSON_COMPACT);
    bad.value = text;
    bad.value_len = strlen(text);
    expect_match("the event's JSON bytes", &bad, ev);
    sent = json_deep_copy(ev);
    json_object_set_new(sent, "page_id", json_integer(43));
    expect_reject("the event's JSON bytes, changed", &bad, sent, "differs", NULL);
    json_decref(sent);
    free(text);
    free(buf);

    rec_dispose(&rec);
    json_decref(ev);
    slt_note("rejected: changed url/long/type, missing and unknown members, trailing and "
             "missing bytes, unknown id, huge and negative lengths, changed JSON");
}

/* Every Avro type the gateway's mapping knows, defaults of every kind and a recursive record. */
static const char g_alltypes[] =
    "{\"type\":\"record\",\"name\":\"AllTypes\",\"namespace\":\"slt.test\",\"fields\":["
    "{\"name\":\"b\",\"type\":\"boolean\"},{\"name\":\"i\",\"type\":\"int\"},"
    "{\"name\":\"l\",\"type\":\"long\"},{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"d\",\"type\":\"double\"},{\"name\":\"s\",\"type\":\"string\"},"
    "{\"name\":\"by\",\"type\":\"bytes\"},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"Four\",\"size\":4}},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Colour\","
    "\"symbols\":[\"RED\",\"GREEN\",\"BLUE\"]}},"
    "{\"name\":\"arr\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"string\"}},"
    "{\"name\":\"u\",\"type\":[\"null\",\"double\"]},"
    "{\"name\":\"nested\",\"type\":{\"type\":\"record\",\"name\":\"Inner\",\"fields\":["
    "{\"name\":\"n\",\"type\":\"int\",\"default\":7},"
    "{\"name\":\"ns\",\"type\":[\"string\",\"null\"],\"default\":\"x\"},"
    "{\"name\":\"nb\",\"type\":\"bytes\",\"default\":\"\\u00ff\\u0001\"},"
    "{\"name\":\"ne\",\"type\":\"Colour\",\"default\":\"GREEN\"},"
    "{\"name\":\"na\",\"type\":{\"type\":\"array\",\"items\":\"string\"},\"default\":[]},"
    "{\"name\":\"nm\",\"type\":{\"type\":\"map\",\"values\":\"int\"},\"default\":{\"k\":1}}]}},"
    "{\"name\":\"list\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
    "{\"name\":\"v\",\"type\":\"int\"},"
    "{\"name\":\"next\",\"type\":[\"null\",\"Node\"],\"default\":null}]}],\"default\":null}]}";

static const char g_alltypes_event[] =
    "{\"b\":true,\"i\":-5,\"l\":1234567890123,\"f\":0.1,\"d\":87,\"s\":\"h\\u00e9llo\","
    "\"by\":\"AAEC/w==\",\"fx\":\"3q2+7w==\",\"e\":\"BLUE\",\"arr\":[1,2,3],"
    "\"m\":{\"a\":\"x\",\"b\":\"y\"},\"u\":2.25,"
    "\"nested\":{\"n\":7,\"ns\":\"x\",\"nb\":\"/wE=\",\"ne\":\"GREEN\",\"na\":[],\"nm\":{\"k\":1}},"
    "\"list\":{\"v\":1,\"next\":{\"v\":2,\"next\":null}}}";

static void register_alltypes(const slt_registry_t *r, test_schema_t *out)
{
    char url[200];
    const char *headers[] = {"Content-Type: application/vnd.schemaregistry.v1+json", NULL};
    json_t *obj = json_pack("{s:s}", "schema", g_alltypes);
    char *body = json_dumps(obj, JSON_COMPACT);
    slt_http_req_t req = {
        .method = "POST",
        .url = slt_registry_url(r, "/subjects/slt_alltypes/versions", url, sizeof(url)),
        .headers = headers,
        .body = body,
        .body_len = strlen(body)};
    slt_http_resp_t resp;
    long status = slt_http(&req, &resp);

    SLT_REQUIRE(status == 200, "register slt_alltypes: HTTP %ld %.300s", status, resp.body);
    slt_http_resp_dispose(&resp);
    free(body);
    json_decref(obj);
    load_schema(r, "slt_alltypes", out);
}

static json_t *jget(json_t *root, const char *member, const char *inner)
{
    json_t *j = json_object_get(root, member);
    return inner ? json_object_get(j, inner) : j;
}

static void test_alltypes(const slt_registry_t *r)
{
    test_schema_t ts;
    slt_kafka_rec_t rec;
    json_t *ev = json_loads(g_alltypes_event, 0, NULL), *sent, *dec, *want;
    char why[400] = "";

    SLT_REQUIRE(ev != NULL, "the all-types event parses");
    register_alltypes(r, &ts);
    encode_with(&ts, ev, &rec);
    expect_match("all types", &rec, ev);

    /* plain JSON back: 87 sent for a double reads 87.0, a float reads its float value */
    dec = slt_event_value_decode(&rec, NULL, why, sizeof(why));
    want = json_deep_copy(ev);
    json_object_set_new(want, "d", json_real(87.0));
    json_object_set_new(want, "f", json_real((double)0.1f));
    SLT_CHECK(dec && json_equal(dec, want), "all types: decode gives the plain JSON (%s)", why);
    json_decref(want);
    json_decref(dec);

    /* members absent from the event sent equal the defaults written */
    sent = json_deep_copy(ev);
    json_object_clear(json_object_get(sent, "nested"));
    json_object_del(jget(sent, "list", "next"), "next");
    expect_match("all types, defaults of every kind absent", &rec, sent);
    json_decref(sent);

    /* base64: URL-safe alphabet and no padding are the same bytes */
    sent = json_deep_copy(ev);
    json_object_set_new(sent, "by", json_string("AAEC_w"));
    expect_match("all types, bytes sent URL-safe unpadded", &rec, sent);

    static const struct {
        const char *member, *inner, *json, *path;
    } changes[] = {
        {"b", NULL, "false", "b"},
        {"i", NULL, "-6", "i"},
        {"f", NULL, "0.2", "f"},
        {"d", NULL, "87.5", "d"},
        {"s", NULL, "\"hello\"", "s"},
        {"by", NULL, "\"AAEC\"", "by"},
        {"by", NULL, "\"not base64!\"", "by"},
        {"fx", NULL, "\"3q2+7A==\"", "fx"},
        {"e", NULL, "\"RED\"", "e"},
        {"arr", NULL, "[1,2]", "arr"},
        {"arr", NULL, "[1,2,4]", "arr[2]"},
        {"m", NULL, "{\"a\":\"x\",\"c\":\"y\"}", "m.b"},
        {"m", NULL, "{\"a\":\"x\"}", "m"},
        {"u", NULL, "null", "u"},
        {"nested", "ne", "\"BLUE\"", "nested.ne"},
        {"nested", "nm", "{\"k\":2}", "nested.nm.k"},
        {"list", "v", "5", "list.v"},
    };
    for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        char what[96];
        json_t *target = sent;
        json_decref(sent);
        sent = json_deep_copy(ev);
        target = changes[i].inner ? json_object_get(sent, changes[i].member) : sent;
        json_object_set_new(target, changes[i].inner ? changes[i].inner : changes[i].member,
                            json_loads(changes[i].json, JSON_DECODE_ANY, NULL));
        snprintf(what, sizeof(what), "all types, %s changed", changes[i].path);
        expect_reject(what, &rec, sent, changes[i].path, NULL);
    }
    json_decref(sent);
    rec_dispose(&rec);

    /* written values that differ from the defaults, against events without those members */
    static const struct {
        const char *inner, *json;
    } off_default[] = {{"n", "8"},        {"ns", "null"},    {"nb", "\"/wI=\""},
                       {"ne", "\"RED\""}, {"na", "[\"q\"]"}, {"nm", "{}"}};
    for (size_t i = 0; i < sizeof(off_default) / sizeof(off_default[0]); i++) {
        char what[96], path[32];
        json_t *written = json_deep_copy(ev);
        json_object_set_new(json_object_get(written, "nested"), off_default[i].inner,
                            json_loads(off_default[i].json, JSON_DECODE_ANY, NULL));
        encode_with(&ts, written, &rec);
        sent = json_deep_copy(ev);
        json_object_del(json_object_get(sent, "nested"), off_default[i].inner);
        snprintf(what, sizeof(what), "all types, nested.%s absent, not its default written",
                 off_default[i].inner);
        snprintf(path, sizeof(path), "nested.%s", off_default[i].inner);
        expect_reject(what, &rec, sent, path, NULL);
        json_decref(sent);
        json_decref(written);
        rec_dispose(&rec);
    }
    json_decref(ev);
    avro_value_iface_decref(ts.iface);
    avro_schema_decref(ts.schema);
    slt_note("all types: every type, defaults of every kind, recursion, base64 forms");
}

/* Schemas cached by slt_schema_cache_warm stay usable with the registry gone. */
static void test_cache_outlives_registry(slt_registry_t *r)
{
    slt_kafka_rec_t rec;
    json_t *ev = fixed_page_view();

    slt_schema_cache_clear();
    SLT_CHECK(slt_schema_cache_warm() == 6, "warm-up caches the five default schemas and one");
    SLT_REQUIRE(slt_registry_stop(r, 5000) != -1, "registry stops");
    encode_event(ev, &rec);
    expect_match("page_view with the registry stopped (cached)", &rec, ev);
    slt_schema_cache_clear();
    expect_reject("page_view, registry stopped, cache cleared", &rec, ev, "unreachable", NULL);
    slt_registry_use(NULL);
    expect_reject("page_view, no registry in use", &rec, ev, "no registry", NULL);
    rec_dispose(&rec);
    json_decref(ev);
}

static int count_subjects(const char *base)
{
    char url[200];
    slt_http_resp_t resp;
    json_t *arr;
    int n = -1;

    snprintf(url, sizeof(url), "%s/subjects", base);
    if (slt_http_get(url, SLT_HTTP_1_1, &resp) == 200 &&
        (arr = json_loadb(resp.body, resp.body_len, 0, NULL)) != NULL) {
        n = json_is_array(arr) ? (int)json_array_size(arr) : -1;
        json_decref(arr);
    }
    slt_http_resp_dispose(&resp);
    return n;
}

/* The stack's registry: up with the defaults, current, killed, restarted with its data; and a
 * batch through the gateway audited by the ledger (JSON or Avro values, whichever it writes). */
static void test_stack_registry(void)
{
    slt_stack_t s;
    slt_ledger_t led;
    slt_batch_t b;
    slt_http_resp_t resp;
    slt_kafka_recs_t recs;
    int64_t t0 = slt_wall_ms();

    SLT_REQUIRE(slt_stack_start(&s, NULL) == 0, "the stack starts");
    SLT_CHECK(s.registry.port > 0 && s.registry_url[0], "the stack has a registry");
    SLT_CHECK(strcmp(slt_registry_in_use(), s.registry_url) == 0,
              "the stack's registry is the one in use");
    SLT_CHECK(count_subjects(s.registry_url) == 5, "the stack's registry has the five subjects");

    slt_ledger_init(&led);
    slt_batch_init(&b);
    slt_batch_add_n(&b, 10);
    slt_post_batch(&s, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_1_1, &resp);
    if (slt_check_all_accepted("10 events", &resp, 10))
        for (size_t i = 0; i < slt_batch_len(&b); i++)
            slt_ledger_expect(&led, slt_batch_event(&b, i), SLT_TENANT_A);
    slt_http_resp_dispose(&resp);
    slt_batch_dispose(&b);

    SLT_CHECK(slt_stack_registry_kill(&s) == 0, "registry kill");
    SLT_CHECK(count_subjects(s.registry_url) == -1, "the registry is down after the kill");
    int64_t t1 = slt_wall_ms();
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", 10, 1000, 20000, &recs) == 0,
                "topic events is readable");
    SLT_CHECK(recs.n == 10, "topic events has %zu records, want 10", recs.n);
    size_t n_framed = 0;
    for (size_t i = 0; i < recs.n; i++)
        n_framed += recs.recs[i].value_len >= 5 && recs.recs[i].value[0] == 0x00;
#ifndef SLT_NO_REGISTRY
    /* the gateway was given the registry: it writes Avro, and the ledger decodes it */
    SLT_CHECK(n_framed == recs.n, "%zu of %zu values are Confluent-framed", n_framed, recs.n);
#endif
    slt_note("%zu of %zu values Confluent-framed Avro (registry dead: schemas from the cache)",
             n_framed, recs.n);
    slt_ledger_verify(&led, &recs, t0, t1, NULL);
    slt_kafka_recs_dispose(&recs);
    slt_ledger_dispose(&led);

    SLT_CHECK(slt_stack_registry_restart(&s) == 0, "registry restart");
    SLT_CHECK(count_subjects(s.registry_url) == 5, "the five subjects survive the kill");
    slt_stack_stop(&s);
    SLT_CHECK(slt_registry_in_use()[0] == '\0', "stack stop clears the registry in use");
    slt_note("stack registry: started with defaults, killed, restarted; ledger verified");
}

int main(void)
{
    slt_registry_t r = {0};
    char dir[64];

    slt_init("slt_avro", 150);
    SLT_REQUIRE(slt_tempdir_create(dir, sizeof(dir)) == 0, "tempdir");
    SLT_REQUIRE(slt_registry_start(&r, dir, 0) == 0, "registry start");
    SLT_REQUIRE(slt_registry_register_defaults(&r) == 5, "defaults registered");
    slt_registry_use(&r);
    for (size_t i = 0; i < 5; i++)
        load_schema(&r, g_types[i], &g_schemas[i]);

    test_accepts();
    test_rejects();
    test_alltypes(&r);
    test_cache_outlives_registry(&r);
    if (slt_failures() == 0)
        slt_tempdir_remove(dir);
    else
        slt_proc_dump_log(&r.proc, 8192);
    test_stack_registry();

    for (size_t i = 0; i < 5; i++) {
        avro_value_iface_decref(g_schemas[i].iface);
        avro_schema_decref(g_schemas[i].schema);
    }
    return slt_finish();
}
