/* Re-validation of a dead letter against the registry's current schema, with the gateway's own
 * encoder (schema/schema.h): the one place `replay` decides whether an event is valid now.
 * Schemas are fetched once per run (GET /subjects/{s}/versions/{latest|n}) and cached. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq.h"
#include "dlq_int.h"
#include "schema.h"

#define MAX_CACHED_SCHEMAS 1024
#define MAX_SUBJECT_BYTES 127

typedef struct {
    char subject[MAX_SUBJECT_BYTES + 1];
    long version;            /* 0: latest */
    schema_t *schema;        /* NULL: see kind/code/detail */
    dlq_verdict_kind_t kind; /* for a NULL schema: INVALID (not found) or UNCHECKED */
    char code[48];
    char detail[200];
} cached_t;

struct dlq_validator {
    CURL *curl;
    char *base; /* without a trailing '/' */
    int timeout_ms;
    cached_t *cache;
    size_t n_cache;
};

dlq_validator_t *dlq_validator_create(const char *registry_url, int timeout_ms, char *errbuf,
                                      size_t errlen)
{
    dlq_validator_t *v = calloc(1, sizeof(*v));
    if (v == NULL)
        abort();
    size_t n = strlen(registry_url);
    if (n == 0 || n > 1000 ||
        (strncmp(registry_url, "http://", 7) != 0 && strncmp(registry_url, "https://", 8) != 0)) {
        snprintf(errbuf, errlen, "--registry must be an http:// or https:// URL");
        goto Fail;
    }
    while (n > 0 && registry_url[n - 1] == '/')
        n--;
    v->base = strndup(registry_url, n);
    v->timeout_ms = timeout_ms;
    v->cache = calloc(MAX_CACHED_SCHEMAS, sizeof(*v->cache));
    v->curl = curl_easy_init();
    if (v->base == NULL || v->cache == NULL || v->curl == NULL) {
        snprintf(errbuf, errlen, "registry client: out of memory");
        goto Fail;
    }
    return v;
Fail:
    dlq_validator_destroy(v);
    return NULL;
}

void dlq_validator_destroy(dlq_validator_t *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n_cache; i++)
        schema_destroy(v->cache[i].schema);
    free(v->cache);
    free(v->base);
    if (v->curl != NULL)
        curl_easy_cleanup(v->curl);
    free(v);
}

static void set_verdict(dlq_verdict_t *out, dlq_verdict_kind_t kind, const char *code,
                        const char *path, const char *detail)
{
    out->kind = kind;
    snprintf(out->code, sizeof(out->code), "%s", code != NULL ? code : "");
    snprintf(out->path, sizeof(out->path), "%s", path != NULL ? path : "");
    snprintf(out->detail, sizeof(out->detail), "%s", detail != NULL ? detail : "");
}

/* Fetches and compiles subject/version into c (c->schema, or c->kind + code + detail). */
static void fetch_schema(dlq_validator_t *v, cached_t *c)
{
    char url[1400], ver[24];
    char *esc = curl_easy_escape(v->curl, c->subject, 0);
    dlq_http_resp_t r;
    json_t *root = NULL;
    if (c->version > 0)
        snprintf(ver, sizeof(ver), "%ld", c->version);
    else
        snprintf(ver, sizeof(ver), "latest");
    snprintf(url, sizeof(url), "%s/subjects/%s/versions/%s", v->base, esc != NULL ? esc : "", ver);
    curl_free(esc);
    c->kind = DLQ_UNCHECKED;
    if (dlq_http_do(v->curl, url, NULL, NULL, 0, v->timeout_ms, &r) != 0) {
        snprintf(c->code, sizeof(c->code), "registry_unavailable");
        snprintf(c->detail, sizeof(c->detail), "registry: %.180s", r.error);
        goto Done;
    }
    root = json_loadb(r.body, r.len, 0, NULL);
    if (r.status == 404) {
        /* Confluent codes: 40401 subject not found, 40402 version not found */
        json_int_t ec = json_integer_value(json_object_get(root, "error_code"));
        c->kind = DLQ_INVALID;
        snprintf(c->code, sizeof(c->code), "schema_not_found");
        if (ec == 40402)
            snprintf(c->detail, sizeof(c->detail), "version %s not in the registry", ver);
        else
            snprintf(c->detail, sizeof(c->detail), "subject not in the registry");
        goto Done;
    }
    json_t *schema = json_object_get(root, "schema");
    json_t *id = json_object_get(root, "id");
    json_t *type = json_object_get(root, "schemaType");
    if (r.status != 200 || !json_is_string(schema) || !json_is_integer(id) ||
        json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX) {
        snprintf(c->code, sizeof(c->code), "registry_error");
        snprintf(c->detail, sizeof(c->detail), "registry answered HTTP %ld without a schema",
                 r.status);
        goto Done;
    }
    if (type != NULL && !(json_is_string(type) && strcmp(json_string_value(type), "AVRO") == 0)) {
        snprintf(c->code, sizeof(c->code), "unsupported_schema");
        snprintf(c->detail, sizeof(c->detail), "only Avro subjects are re-validated");
        goto Done;
    }
    char err[200];
    c->schema = schema_compile_avro(json_string_value(schema), json_string_length(schema),
                                    (uint32_t)json_integer_value(id), err, sizeof(err));
    if (c->schema == NULL) {
        snprintf(c->code, sizeof(c->code), "schema_unusable");
        snprintf(c->detail, sizeof(c->detail), "registry schema does not compile: %.160s", err);
        goto Done;
    }
    c->kind = DLQ_VALID;
Done:
    json_decref(root);
    dlq_http_resp_dispose(&r);
}

static cached_t *lookup(dlq_validator_t *v, const char *subject, long version)
{
    for (size_t i = 0; i < v->n_cache; i++)
        if (v->cache[i].version == version && strcmp(v->cache[i].subject, subject) == 0)
            return &v->cache[i];
    /* A full cache recycles its last slot: a run with over a thousand subjects refetches. */
    cached_t *c = v->n_cache < MAX_CACHED_SCHEMAS ? &v->cache[v->n_cache++]
                                                  : &v->cache[MAX_CACHED_SCHEMAS - 1];
    schema_destroy(c->schema);
    memset(c, 0, sizeof(*c));
    snprintf(c->subject, sizeof(c->subject), "%s", subject);
    c->version = version;
    fetch_schema(v, c);
    return c;
}

void dlq_validate(dlq_validator_t *v, const dlq_letter_t *l, dlq_verdict_t *out)
{
    static const char *const skip_names[] = {"schema_version"};
    const schema_skip_t skip = {skip_names, 1};
    json_error_t jerr;
    json_t *ev = NULL;
    uint8_t *buf = NULL;
    memset(out, 0, sizeof(*out));
    out->schema_id = -1;

    if (l->is_truncated) {
        set_verdict(out, DLQ_INVALID, "truncated", "", "the gateway cut this value");
        return;
    }
    if (l->value == NULL || l->value_len == 0) {
        set_verdict(out, DLQ_INVALID, "empty", "", "dead letter has no value");
        return;
    }
    ev = json_loadb((const char *)l->value, l->value_len, JSON_REJECT_DUPLICATES, &jerr);
    if (ev == NULL) {
        char d[64]; /* jansson's text may quote the input: only the position is reported */
        snprintf(d, sizeof(d), "not valid JSON (line %d, column %d)", jerr.line, jerr.column);
        set_verdict(out, DLQ_INVALID, "bad_json", "", d);
        return;
    }
    if (!json_is_object(ev)) {
        set_verdict(out, DLQ_INVALID, "not_object", "", "event must be a JSON object");
        goto Done;
    }
    const char *subject = l->schema_subject;
    if (subject == NULL || subject[0] == '\0')
        subject = json_string_value(json_object_get(ev, "event_type"));
    if (subject == NULL || subject[0] == '\0') {
        set_verdict(out, DLQ_INVALID, "missing_field", "event_type", "no schema subject");
        goto Done;
    }
    if (strlen(subject) > MAX_SUBJECT_BYTES) {
        set_verdict(out, DLQ_INVALID, "bad_value", "event_type", "subject name too long");
        goto Done;
    }
    snprintf(out->subject, sizeof(out->subject), "%s", subject);
    json_t *pin = json_object_get(ev, "schema_version");
    long version = 0;
    if (pin != NULL) {
        if (!json_is_integer(pin) || json_integer_value(pin) < 1 ||
            json_integer_value(pin) > INT32_MAX) {
            set_verdict(out, DLQ_INVALID, "bad_value", "schema_version",
                        "schema_version must be a positive integer");
            goto Done;
        }
        version = (long)json_integer_value(pin);
    }
    cached_t *c = lookup(v, subject, version);
    if (c->schema == NULL) {
        set_verdict(out, c->kind, c->code, "", c->detail);
        goto Done;
    }
    /* Twice the input leaves the encoder its out-of-order scratch (schema.h); Avro is never
     * larger than the JSON it came from by more than the framing and defaults. */
    size_t cap = l->value_len * 2 + 4096;
    buf = malloc(cap);
    if (buf == NULL)
        abort();
    schema_error_t e;
    ssize_t n =
        schema_encode_json(c->schema, (const char *)l->value, l->value_len, &skip, buf, cap, &e);
    out->schema_id = (int32_t)schema_id(c->schema);
    if (n < 0)
        set_verdict(out, DLQ_INVALID, sl_err_code(e.code), e.path, e.detail);
    else
        set_verdict(out, DLQ_VALID, "", "", "");
Done:
    free(buf);
    json_decref(ev);
}
