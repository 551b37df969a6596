/* Integration: events validated against the registry's schemas (issue 4, item 7).
 *
 * 1. A new schema version registered while the gateway runs is used once the cached "latest"
 *    expires; an event pinned to the old version is held to it (unknown_field), every accepted
 *    record is Avro by the id it was encoded with (the ledger decodes each by that id).
 * 2. An unknown event_type is invalid schema_not_found, dead-lettered with dlq.retryable=true and
 *    schema_subject; once its schema is registered, the same event is accepted.
 * 3. Registry killed: known event types keep flowing from the cache; an unknown one gets 503
 *    schema_unavailable with Retry-After (nothing stored).
 * 4. The gateway restarted with the registry still down: /readyz is 200 from the disk snapshot
 *    and known types keep flowing.
 * 5. A bad value is invalid with the encoder's code and JSON path, and in the DLQ (stage schema,
 *    schema_id of the schema it failed). */
#include "slt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* page_view v2: one more optional property (BACKWARD compatible with the default v1) */
static const char PAGE_VIEW_V2[] =
    "{\"type\":\"record\",\"name\":\"PageView\",\"namespace\":\"sluice.events\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"event_type\",\"type\":\"string\"},"
    "{\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"session_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"page_id\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"properties\",\"type\":{\"type\":\"record\",\"name\":\"PageViewProperties\","
    "\"fields\":[{\"name\":\"url\",\"type\":\"string\"},"
    "{\"name\":\"referrer\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"title\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"latency_ms\",\"type\":[\"null\",\"int\"],\"default\":null},"
    "{\"name\":\"campaign\",\"type\":[\"null\",\"string\"],\"default\":null}]}}]}";

static const char SIGNUP[] =
    "{\"type\":\"record\",\"name\":\"Signup\",\"namespace\":\"sluice.events\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"event_type\",\"type\":\"string\"},"
    "{\"name\":\"ts\",\"type\":\"long\"},{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"properties\",\"type\":{\"type\":\"record\",\"name\":\"SignupProperties\","
    "\"fields\":[{\"name\":\"plan\",\"type\":\"string\"}]}}]}";

/* POST /subjects/{s}/versions; returns the id or -1. */
static long register_schema(const slt_stack_t *s, const char *subject, const char *schema)
{
    char url[256], path[128];
    json_t *req = json_pack("{ss}", "schema", schema);
    char *body = json_dumps(req, JSON_COMPACT);
    const char *headers[] = {"Content-Type: application/vnd.schemaregistry.v1+json", NULL};
    snprintf(path, sizeof(path), "/subjects/%s/versions", subject);
    slt_http_req_t hr = {.method = "POST",
                         .url = slt_registry_url(&s->registry, path, url, sizeof(url)),
                         .headers = headers, .body = body, .body_len = strlen(body)};
    slt_http_resp_t resp;
    long id = -1;
    if (slt_http(&hr, &resp) == 200) {
        json_t *v = json_loads(resp.body, 0, NULL);
        id = v ? (long)json_integer_value(json_object_get(v, "id")) : -1;
        json_decref(v);
    }
    slt_http_resp_dispose(&resp);
    free(body);
    json_decref(req);
    return id;
}

/* A one-event batch; returns the parsed answer's status for event 0 ("accepted" when it is not
 * listed) into status/code (caller frees), and the HTTP status. */
static long post_one(const slt_stack_t *s, json_t *event, char **status, char **code,
                     char **path, slt_http_resp_t *resp_out)
{
    slt_batch_t b;
    slt_http_resp_t resp;
    long http;

    slt_batch_init(&b);
    slt_batch_add_value(&b, json_incref(event));
    http = slt_post_batch(s, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
    *status = *code = NULL;
    if (path)
        *path = NULL;
    if (http == 200) {
        slt_batch_resp_t r;
        char err[200];
        if (slt_batch_resp_parse(resp.body, resp.body_len, &r, err, sizeof(err)) == 0) {
            const slt_outcome_t *o = slt_batch_resp_find(&r, 0);
            *status = strdup(o ? o->status : "accepted");
            *code = o && o->code ? strdup(o->code) : NULL;
            if (path)
                *path = o && o->path ? strdup(o->path) : NULL;
            slt_batch_resp_dispose(&r);
        }
    }
    if (resp_out)
        *resp_out = resp;
    else
        slt_http_resp_dispose(&resp);
    slt_batch_dispose(&b);
    return http;
}

static json_t *page_view(const char *campaign, int pin_version)
{
    slt_batch_t b;
    json_t *ev;
    slt_batch_init(&b);
    ev = json_incref(slt_batch_add(&b, "page_view"));
    slt_batch_dispose(&b);
    if (campaign)
        json_object_set_new(json_object_get(ev, "properties"), "campaign", json_string(campaign));
    if (pin_version)
        json_object_set_new(ev, "schema_version", json_integer(pin_version));
    return ev;
}

typedef struct {
    const slt_stack_t *s;
    json_t *event;
    const char *want;
} accept_wait_t;

static int cond_accepted(void *arg)
{
    accept_wait_t *w = arg;
    char *status, *code;
    long http = post_one(w->s, w->event, &status, &code, NULL, NULL);
    int ok = http == 200 && status && strcmp(status, w->want) == 0;
    free(status);
    free(code);
    return ok;
}

/* Posts (a fresh copy id each time is not needed: rejected events store nothing) until the
 * event gets `want`. */
static int post_until(const slt_stack_t *s, json_t *event, const char *want, int timeout_ms)
{
    accept_wait_t w = {s, event, want};
    return slt_poll_until(cond_accepted, &w, timeout_ms);
}

int main(void)
{
    slt_init("test_schemas", 170);
    /* short TTLs so a new version and a newly registered subject are seen within the test */
    const char *const sets[] = {"schema.latest_ttl_ms=300", "schema.negative_ttl_ms=300", NULL};
    slt_stack_t s;
    slt_ledger_t led;
    char *status, *code, *path;
    int64_t t0 = slt_wall_ms();

    SLT_REQUIRE(slt_stack_start(&s, sets) == 0, "the stack starts");
    slt_ledger_init(&led);

    /* --- 1. a new version ------------------------------------------------------------------ */
    json_t *v1 = page_view(NULL, 0);
    SLT_CHECK(post_one(&s, v1, &status, &code, NULL, NULL) == 200 && status &&
                  strcmp(status, "accepted") == 0,
              "a default page_view is accepted (%s %s)", status ? status : "-", code ? code : "");
    if (status && strcmp(status, "accepted") == 0)
        slt_ledger_expect(&led, v1, SLT_TENANT_A);
    free(status), free(code);

    json_t *with_campaign = page_view("spring", 0);
    post_one(&s, with_campaign, &status, &code, &path, NULL);
    SLT_CHECK(status && strcmp(status, "invalid") == 0 && code &&
                  strcmp(code, "unknown_field") == 0 && path &&
                  strcmp(path, "properties.campaign") == 0,
              "before v2, properties.campaign is unknown_field (%s %s %s)", status ? status : "-",
              code ? code : "", path ? path : "");
    free(status), free(code), free(path);
    long v2_id = register_schema(&s, "page_view", PAGE_VIEW_V2);
    SLT_REQUIRE(v2_id > 0, "page_view v2 registered");
    SLT_CHECK(post_until(&s, with_campaign, "accepted", 10000),
              "once the cached latest expires, v2 accepts properties.campaign");
    slt_ledger_expect(&led, with_campaign, SLT_TENANT_A);

    json_t *pinned = page_view("spring", 1);
    post_one(&s, pinned, &status, &code, &path, NULL);
    SLT_CHECK(status && strcmp(status, "invalid") == 0 && code &&
                  strcmp(code, "unknown_field") == 0,
              "schema_version 1 pinned: campaign is still unknown (%s %s)", status ? status : "-",
              code ? code : "");
    free(status), free(code), free(path);
    json_t *pinned_ok = page_view(NULL, 1);
    post_one(&s, pinned_ok, &status, &code, NULL, NULL);
    SLT_CHECK(status && strcmp(status, "accepted") == 0, "schema_version 1 without campaign");
    if (status && strcmp(status, "accepted") == 0)
        slt_ledger_expect(&led, pinned_ok, SLT_TENANT_A);
    free(status), free(code);
    json_t *pinned_bad = page_view(NULL, 99);
    post_one(&s, pinned_bad, &status, &code, NULL, NULL);
    SLT_CHECK(code && strcmp(code, "schema_not_found") == 0, "schema_version 99: %s",
              code ? code : "-");
    free(status), free(code);

    /* --- 2. unknown subject, then registered ----------------------------------------------- */
    slt_batch_t sb;
    slt_batch_init(&sb);
    json_t *signup = json_incref(slt_batch_add(&sb, "page_view"));
    slt_batch_dispose(&sb);
    json_object_set_new(signup, "event_type", json_string("signup"));
    json_object_set_new(signup, "properties", json_pack("{ss}", "plan", "pro"));
    json_object_del(signup, "session_id");
    json_object_del(signup, "page_id");
    post_one(&s, signup, &status, &code, &path, NULL);
    SLT_CHECK(status && strcmp(status, "invalid") == 0 && code &&
                  strcmp(code, "schema_not_found") == 0 && path &&
                  strcmp(path, "event_type") == 0,
              "unknown subject: invalid schema_not_found at event_type (%s %s)",
              status ? status : "-", code ? code : "");
    free(status), free(code), free(path);
    SLT_REQUIRE(register_schema(&s, "signup", SIGNUP) > 0, "signup registered");
    SLT_CHECK(post_until(&s, signup, "accepted", 10000),
              "after registering, the same signup event is accepted");
    slt_ledger_expect(&led, signup, SLT_TENANT_A);

    /* --- 5. a bad value: encoder's code and path, dead-lettered with the schema id --------- */
    json_t *bad = page_view(NULL, 0);
    json_object_set_new(json_object_get(bad, "properties"), "latency_ms", json_string("87"));
    post_one(&s, bad, &status, &code, &path, NULL);
    SLT_CHECK(code && strcmp(code, "bad_type") == 0 && path &&
                  strcmp(path, "properties.latency_ms") == 0,
              "latency_ms as a string: bad_type at properties.latency_ms (%s %s)",
              code ? code : "-", path ? path : "");
    free(status), free(code), free(path);

    slt_kafka_recs_t dlq;
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events.dlq", 4, 1000, 20000, &dlq) == 0,
                "events.dlq readable");
    int found_nf = 0, found_bad = 0;
    for (size_t i = 0; i < dlq.n; i++) {
        const slt_kafka_rec_t *r = &dlq.recs[i];
        const char *c = slt_kafka_rec_header(r, "dlq.code");
        const char *eid = slt_kafka_rec_header(r, "event_id");
        if (c == NULL || eid == NULL)
            continue;
        if (strcmp(eid, json_string_value(json_object_get(signup, "event_id"))) == 0 &&
            strcmp(c, "schema_not_found") == 0) {
            const char *rt = slt_kafka_rec_header(r, "dlq.retryable");
            const char *subj = slt_kafka_rec_header(r, "schema_subject");
            const char *stage = slt_kafka_rec_header(r, "dlq.stage");
            found_nf++;
            SLT_CHECK(rt && strcmp(rt, "true") == 0, "schema_not_found is retryable");
            SLT_CHECK(subj && strcmp(subj, "signup") == 0, "schema_subject signup");
            SLT_CHECK(stage && strcmp(stage, "schema") == 0, "stage schema");
        }
        if (strcmp(eid, json_string_value(json_object_get(bad, "event_id"))) == 0) {
            const char *rt = slt_kafka_rec_header(r, "dlq.retryable");
            const char *sid = slt_kafka_rec_header(r, "schema_id");
            found_bad++;
            SLT_CHECK(strcmp(c, "bad_type") == 0, "the bad value's dead letter says bad_type");
            SLT_CHECK(rt && strcmp(rt, "false") == 0, "bad_type is not retryable");
            SLT_CHECK(sid && atol(sid) == v2_id, "schema_id %s is page_view v2 (%ld)",
                      sid ? sid : "-", v2_id);
            json_t *orig = json_loadb(r->value, r->value_len, 0, NULL);
            SLT_CHECK(orig && json_equal(orig, bad), "the dead letter holds the original JSON");
            json_decref(orig);
        }
    }
    /* every refused attempt is a dead letter (post_until resent the signup until accepted) */
    SLT_CHECK(found_nf >= 1 && found_bad == 1, "dead letters: %d schema_not_found, %d bad_type",
              found_nf, found_bad);
    slt_kafka_recs_dispose(&dlq);

    /* --- 3. registry down: known types flow, unknown ones get 503 ------------------------- */
    SLT_REQUIRE(slt_stack_registry_kill(&s) == 0, "registry killed");
    for (int k = 0; k < 3; k++) {
        json_t *ev = k == 2 ? json_incref(signup) : page_view(k == 1 ? "summer" : NULL, 0);
        if (k == 2) { /* a new id for the same known type */
            char id[37];
            json_decref(ev);
            ev = json_deep_copy(signup);
            slt_uuid4(id);
            json_object_set_new(ev, "event_id", json_string(id));
        }
        post_one(&s, ev, &status, &code, NULL, NULL);
        SLT_CHECK(status && strcmp(status, "accepted") == 0,
                  "registry down: known type %d accepted (%s %s)", k, status ? status : "-",
                  code ? code : "");
        if (status && strcmp(status, "accepted") == 0)
            slt_ledger_expect(&led, ev, SLT_TENANT_A);
        free(status), free(code);
        json_decref(ev);
    }
    json_t *unknown = json_deep_copy(signup);
    json_object_set_new(unknown, "event_type", json_string("never_registered"));
    slt_http_resp_t resp;
    long http = post_one(&s, unknown, &status, &code, NULL, &resp);
    slt_check_error("registry down, unknown type", &resp, 503, "schema_unavailable");
    char *ra = slt_http_resp_header(&resp, "retry-after");
    SLT_CHECK(http == 503 && ra != NULL, "503 with Retry-After");
    free(ra);
    slt_http_resp_dispose(&resp);
    free(status), free(code);
    slt_ledger_forbid(&led, json_string_value(json_object_get(unknown, "event_id")),
                      "503: nothing stored");

    /* --- 4. gateway restart with the registry still down ---------------------------------- */
    SLT_REQUIRE(slt_gateway_stop(&s, 20000) >= 0, "gateway stopped");
    SLT_REQUIRE(slt_gateway_start(&s) == 0,
                "gateway restarts and is ready with the registry down (disk snapshot)");
    for (int k = 0; k < 2; k++) {
        json_t *ev = page_view(k == 1 ? "autumn" : NULL, 0);
        post_one(&s, ev, &status, &code, NULL, NULL);
        SLT_CHECK(status && strcmp(status, "accepted") == 0,
                  "after restart, registry down: page_view %d accepted (%s %s)", k,
                  status ? status : "-", code ? code : "");
        if (status && strcmp(status, "accepted") == 0)
            slt_ledger_expect(&led, ev, SLT_TENANT_A);
        free(status), free(code);
        json_decref(ev);
    }
    SLT_REQUIRE(slt_stack_registry_restart(&s) == 0, "registry back");

    /* the audit: every accepted event exactly once, each value Avro by its own schema id */
    slt_kafka_recs_t recs;
    int64_t t1 = slt_wall_ms();
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", slt_ledger_n_expected(&led), 1000,
                                      20000, &recs) == 0,
                "events readable");
    slt_ledger_verify(&led, &recs, t0, t1, NULL);
    SLT_CHECK(recs.n == slt_ledger_n_expected(&led), "events holds %zu records, want %zu", recs.n,
              slt_ledger_n_expected(&led));
    slt_kafka_recs_dispose(&recs);

    json_decref(v1), json_decref(with_campaign), json_decref(pinned), json_decref(pinned_ok);
    json_decref(pinned_bad), json_decref(signup), json_decref(bad), json_decref(unknown);
    slt_ledger_dispose(&led);
    slt_stack_stop(&s);
    return slt_finish();
}
