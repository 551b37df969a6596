/* Integration: the happy path of POST /v1/batch over HTTP/1.1 and HTTP/2, per-event outcomes of a
 * mixed batch, the four write-key forms, health endpoints and CORS; then reads topic `events`
 * back and asserts that exactly the accepted events arrived, once each, with key and headers. */
#include "slt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BATCH_EVENTS 50
#define BATCHES_PER_VERSION 3

static const char *version_name(slt_http_version_t v)
{
    return v == SLT_HTTP_2 ? "HTTP/2" : "HTTP/1.1";
}

/* GET /healthz and /readyz on the public listener (both versions) and the admin listener. */
static void test_health(const slt_stack_t *s)
{
    static const char *const paths[] = {"/healthz", "/readyz"};
    for (size_t i = 0; i < 2; i++) {
        char url[200];
        struct {
            const char *url;
            slt_http_version_t v;
        } targets[3];
        char pub[200];
        slt_public_url(s, paths[i], pub, sizeof(pub));
        slt_admin_url(s, paths[i], url, sizeof(url));
        targets[0].url = pub, targets[0].v = SLT_HTTP_1_1;
        targets[1].url = pub, targets[1].v = SLT_HTTP_2;
        targets[2].url = url, targets[2].v = SLT_HTTP_1_1;
        for (size_t t = 0; t < 3; t++) {
            slt_http_resp_t resp;
            long status = slt_http_get(targets[t].url, targets[t].v, &resp);
            SLT_CHECK(status == 200, "GET %s (%s): HTTP %ld %s", targets[t].url,
                      version_name(targets[t].v), status, resp.status ? resp.body : resp.error);
            json_error_t je;
            json_t *j = json_loadb(resp.body, resp.body_len, 0, &je);
            SLT_CHECK(j != NULL, "GET %s: body is not JSON (%s): %.200s", targets[t].url, je.text,
                      resp.body);
            json_decref(j);
            char *ct = slt_http_resp_header(&resp, "Content-Type");
            SLT_CHECK(ct && strncasecmp(ct, "application/json", 16) == 0,
                      "GET %s: Content-Type '%s', want application/json", targets[t].url,
                      ct ? ct : "(none)");
            free(ct);
            slt_http_resp_dispose(&resp);
        }
    }
    slt_note("health: /healthz and /readyz answer 200 + JSON on both listeners");
}

/* OPTIONS /v1/batch: 204 with the CORS headers of API.md. */
static void test_cors(const slt_stack_t *s, slt_http_version_t v)
{
    char url[200];
    slt_public_url(s, "/v1/batch", url, sizeof(url));
    const char *hdrs[] = {"Origin: https://shop.example.com", "Access-Control-Request-Method: POST",
                          "Access-Control-Request-Headers: authorization, content-type", NULL};
    slt_http_req_t req = {.method = "OPTIONS", .url = url, .headers = hdrs, .version = v};
    slt_http_resp_t resp;
    long status = slt_http(&req, &resp);
    SLT_CHECK(status == 204, "OPTIONS /v1/batch (%s): HTTP %ld, want 204: %s", version_name(v),
              status, resp.status ? resp.body : resp.error);
    char *origin = slt_http_resp_header(&resp, "Access-Control-Allow-Origin");
    char *methods = slt_http_resp_header(&resp, "Access-Control-Allow-Methods");
    char *headers = slt_http_resp_header(&resp, "Access-Control-Allow-Headers");
    char *max_age = slt_http_resp_header(&resp, "Access-Control-Max-Age");
    SLT_CHECK(origin &&
                  (strcmp(origin, "*") == 0 || strcmp(origin, "https://shop.example.com") == 0),
              "Access-Control-Allow-Origin '%s', want * (the default)", origin ? origin : "(none)");
    /* a repeated allow-origin ("*, *") makes browsers reject the preflight */
    SLT_CHECK(slt_http_resp_header_count(&resp, "Access-Control-Allow-Origin") == 1,
              "Access-Control-Allow-Origin appears %d times, want once",
              slt_http_resp_header_count(&resp, "Access-Control-Allow-Origin"));
    SLT_CHECK(methods && strcasestr(methods, "POST"),
              "Access-Control-Allow-Methods '%s' lacks POST", methods ? methods : "(none)");
    const char *want[] = {"authorization", "content-type", "content-encoding"};
    for (size_t i = 0; i < 3; i++)
        SLT_CHECK(headers && strcasestr(headers, want[i]),
                  "Access-Control-Allow-Headers '%s' lacks %s", headers ? headers : "(none)",
                  want[i]);
    SLT_CHECK(max_age && atol(max_age) >= 600, "Access-Control-Max-Age '%s' is not long (>= 600)",
              max_age ? max_age : "(none)");
    free(origin);
    free(methods);
    free(headers);
    free(max_age);
    slt_http_resp_dispose(&resp);
}

/* n batches of 50 valid events; every event accepted; all expected in Kafka. */
static void test_full_batches(const slt_stack_t *s, slt_ledger_t *led, slt_http_version_t v,
                              const char *key, const char *tenant, int n)
{
    for (int k = 0; k < n; k++) {
        slt_batch_t b;
        slt_batch_init(&b);
        slt_batch_add_n(&b, BATCH_EVENTS);
        slt_http_resp_t resp;
        slt_post_batch(s, &b, key, SLT_AUTH_BEARER, v, &resp);
        char what[96];
        snprintf(what, sizeof(what), "%s batch %d of %d events", version_name(v), k, BATCH_EVENTS);
        if (slt_check_all_accepted(what, &resp, BATCH_EVENTS))
            for (size_t i = 0; i < slt_batch_len(&b); i++)
                slt_ledger_expect(led, slt_batch_event(&b, i), tenant);
        slt_http_resp_dispose(&resp);
        slt_batch_dispose(&b);
    }
    slt_note("%d batches of %d over %s accepted", n, BATCH_EVENTS, version_name(v));
}

typedef struct {
    long i;
    const char *code;
    const char *path;       /* NULL: not asserted */
    int must_echo_event_id; /* the event had a valid UUID and parses: event_id must be listed */
} want_invalid_t;

static char *make_string(size_t n, char c)
{
    char *p = malloc(n + 1);
    memset(p, c, n);
    p[n] = '\0';
    return p;
}

/* A batch mixing valid events with each kind of invalid one; the 200 body lists exactly the
 * invalid ones with their index, code, path and detail. */
static void test_mixed_batch(const slt_stack_t *s, slt_ledger_t *led, slt_http_version_t v)
{
    slt_batch_t b;
    slt_batch_init(&b);
    char *big = make_string(33 * 1024, 'x');   /* pushes an event over 32 KiB */
    char *large = make_string(30 * 1024, 'y'); /* an event just under 32 KiB: still valid */
    json_t *ev;
    slt_batch_add(&b, NULL);             /* 0 valid */
    slt_batch_add(&b, NULL);             /* 1 valid */
    ev = slt_batch_add(&b, "page_view"); /* 2 no user_id */
    json_object_del(ev, "user_id");
    slt_batch_add(&b, NULL);         /* 3 valid */
    ev = slt_batch_add(&b, "click"); /* 4 event_id not a UUID */
    json_object_set_new(ev, "event_id", json_string("not-a-uuid"));
    slt_batch_add(&b, NULL);            /* 5 valid */
    ev = slt_batch_add(&b, "purchase"); /* 6 ts is a string */
    json_object_set_new(ev, "ts", json_string("1763999999000"));
    slt_batch_add(&b, NULL);                   /* 7 valid */
    slt_batch_add_value(&b, json_integer(42)); /* 8 not an object */
    slt_batch_add(&b, NULL);                   /* 9 valid */
    ev = slt_batch_add(&b, "page_view");       /* 10 over 32 KiB */
    json_object_set_new(json_object_get(ev, "properties"), "title", json_string(big));
    slt_batch_add(&b, NULL);             /* 11 valid */
    ev = slt_batch_add(&b, "page_view"); /* 12 valid, ~30 KiB */
    json_object_set_new(json_object_get(ev, "properties"), "title", json_string(large));
    slt_batch_add_value(&b, json_pack("[s]", "an array")); /* 13 not an object */
    slt_batch_add(&b, NULL);                               /* 14 valid */
    free(big);
    free(large);

    static const want_invalid_t want[] = {
        {2, "missing_field", "user_id", 1}, {4, "bad_uuid", "event_id", 0},
        {6, "bad_type", "ts", 1},           {8, "not_object", NULL, 0},
        {10, "event_too_large", NULL, 0},   {13, "not_object", NULL, 0},
    };
    const size_t n_want = sizeof(want) / sizeof(want[0]);
    const size_t n_total = slt_batch_len(&b);

    slt_http_resp_t resp;
    long status = slt_post_batch(s, &b, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, v, &resp);
    SLT_CHECK(status == 200, "mixed batch (%s): HTTP %ld, want 200: %.300s", version_name(v),
              status, resp.status ? resp.body : resp.error);
    slt_batch_resp_t br;
    char err[256];
    int parsed =
        status == 200 && slt_batch_resp_parse(resp.body, resp.body_len, &br, err, sizeof(err)) == 0;
    SLT_CHECK(status != 200 || parsed, "mixed batch: %s: %.300s", err, resp.body);
    if (parsed) {
        SLT_CHECK(br.accepted == (long)(n_total - n_want) && br.invalid == (long)n_want &&
                      br.duplicate == 0 && br.retry == 0,
                  "mixed batch (%s): counts accepted=%ld duplicate=%ld invalid=%ld retry=%ld, want "
                  "%zu/0/%zu/0: %.600s",
                  version_name(v), br.accepted, br.duplicate, br.invalid, br.retry,
                  n_total - n_want, n_want, resp.body);
        SLT_CHECK(br.n_events == n_want,
                  "mixed batch: %zu events listed, want %zu (only the "
                  "non-accepted ones): %.600s",
                  br.n_events, n_want, resp.body);
        for (size_t k = 0; k < n_want; k++) {
            const slt_outcome_t *o = slt_batch_resp_find(&br, want[k].i);
            SLT_CHECK(o != NULL, "mixed batch: event %ld (%s) not listed: %.600s", want[k].i,
                      want[k].code, resp.body);
            if (!o)
                continue;
            SLT_CHECK(strcmp(o->status, "invalid") == 0, "event %ld: status '%s', want invalid",
                      o->i, o->status);
            SLT_CHECK(o->code && strcmp(o->code, want[k].code) == 0,
                      "event %ld: code '%s', want '%s'", o->i, o->code ? o->code : "(none)",
                      want[k].code);
            if (want[k].path)
                SLT_CHECK(o->path && strcmp(o->path, want[k].path) == 0,
                          "event %ld (%s): path '%s', want '%s'", o->i, want[k].code,
                          o->path ? o->path : "(none)", want[k].path);
            SLT_CHECK(o->detail && *o->detail, "event %ld (%s): detail missing or empty", o->i,
                      want[k].code);
            const char *sent_id = slt_batch_event_id(&b, (size_t)want[k].i);
            if (want[k].must_echo_event_id)
                SLT_CHECK(o->event_id != NULL, "event %ld (%s): event_id not echoed", o->i,
                          want[k].code);
            if (o->event_id && sent_id)
                SLT_CHECK(strcmp(o->event_id, sent_id) == 0, "event %ld: event_id '%s', sent '%s'",
                          o->i, o->event_id, sent_id);
        }
        for (size_t k = 0; k < br.n_events; k++) {
            int is_wanted = 0;
            for (size_t w = 0; w < n_want; w++)
                is_wanted |= br.events[k].i == want[w].i;
            SLT_CHECK(is_wanted, "mixed batch: event %ld listed as '%s' (%s) but it is valid",
                      br.events[k].i, br.events[k].status,
                      br.events[k].code ? br.events[k].code : "-");
        }
        slt_batch_resp_dispose(&br);
    }
    /* The valid ones must be in Kafka once; the invalid ones must not be there. */
    for (size_t i = 0; i < n_total; i++) {
        int is_invalid = 0;
        for (size_t w = 0; w < n_want; w++)
            is_invalid |= (size_t)want[w].i == i;
        const char *eid = slt_batch_event_id(&b, i);
        if (!is_invalid && status == 200)
            slt_ledger_expect(led, slt_batch_event(&b, i), SLT_TENANT_A);
        else if (eid)
            slt_ledger_forbid(led, eid, "invalid event of the mixed batch");
    }
    slt_http_resp_dispose(&resp);
    slt_batch_dispose(&b);
    slt_note("mixed batch over %s: %zu valid accepted, %zu invalid listed", version_name(v),
             n_total - n_want, n_want);
}

/* The invalid events of the two mixed batches are in events.dlq, each with its reason (API.md:
 * "invalid: do not resend; it is in the dead-letter topic"). */
static void check_dead_letters(const slt_stack_t *s)
{
    static const struct {
        const char *code;
        long want;
    } codes[] = {{"missing_field", 2}, {"bad_uuid", 2}, {"bad_type", 2},
                 {"not_object", 4},    {"event_too_large", 2}};
    slt_kafka_recs_t dlq;
    long seen[5] = {0}, total = 0;

    SLT_REQUIRE(slt_kafka_consume_all(s->bootstrap, "events.dlq", 12, 1000, 15000, &dlq) == 0,
                "topic events.dlq is readable");
    for (size_t i = 0; i < dlq.n; i++) {
        const slt_kafka_rec_t *r = &dlq.recs[i];
        const char *code = slt_kafka_rec_header(r, "dlq.code");
        const char *stage = slt_kafka_rec_header(r, "dlq.stage");
        const char *retryable = slt_kafka_rec_header(r, "dlq.retryable");
        const char *tenant = slt_kafka_rec_header(r, "tenant");
        SLT_CHECK(stage && strcmp(stage, "envelope") == 0, "dead letter stage '%s'",
                  stage ? stage : "(none)");
        SLT_CHECK(retryable && strcmp(retryable, "false") == 0, "envelope errors are final");
        SLT_CHECK(tenant && strcmp(tenant, SLT_TENANT_A) == 0, "dead letter tenant");
        SLT_CHECK(r->value_len > 0, "dead letter keeps the event's bytes");
        for (size_t k = 0; k < 5; k++)
            if (code && strcmp(code, codes[k].code) == 0)
                seen[k]++, total++;
    }
    for (size_t k = 0; k < 5; k++)
        SLT_CHECK(seen[k] == codes[k].want, "events.dlq: %ld x %s, want %ld", seen[k],
                  codes[k].code, codes[k].want);
    SLT_CHECK((size_t)total == dlq.n, "events.dlq: %zu records, %ld expected ones", dlq.n, total);
    slt_kafka_recs_dispose(&dlq);
}

/* Bearer, Basic base64(KEY:), body write_key, query ?write_key=: each 200, right tenant. */
static void test_write_key_forms(const slt_stack_t *s, slt_ledger_t *led)
{
    static const struct {
        slt_auth_t auth;
        const char *name, *key, *tenant;
        slt_http_version_t v;
    } forms[] = {
        {SLT_AUTH_BEARER, "Bearer", SLT_WRITE_KEY_B, SLT_TENANT_B, SLT_HTTP_1_1},
        {SLT_AUTH_BASIC, "Basic", SLT_WRITE_KEY_B, SLT_TENANT_B, SLT_HTTP_1_1},
        {SLT_AUTH_BASIC, "Basic", SLT_WRITE_KEY_A, SLT_TENANT_A, SLT_HTTP_2},
        {SLT_AUTH_BODY, "body write_key", SLT_WRITE_KEY_A, SLT_TENANT_A, SLT_HTTP_1_1},
        {SLT_AUTH_BODY, "body write_key", SLT_WRITE_KEY_B, SLT_TENANT_B, SLT_HTTP_2},
        {SLT_AUTH_QUERY, "query write_key", SLT_WRITE_KEY_B, SLT_TENANT_B, SLT_HTTP_1_1},
        {SLT_AUTH_QUERY, "query write_key", SLT_WRITE_KEY_A, SLT_TENANT_A, SLT_HTTP_2},
    };
    for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
        slt_batch_t b;
        slt_batch_init(&b);
        slt_batch_add_n(&b, 5);
        slt_http_resp_t resp;
        slt_post_batch(s, &b, forms[f].key, forms[f].auth, forms[f].v, &resp);
        char what[128];
        snprintf(what, sizeof(what), "write key as %s (%s, %s)", forms[f].name, forms[f].tenant,
                 version_name(forms[f].v));
        if (slt_check_all_accepted(what, &resp, 5))
            for (size_t i = 0; i < slt_batch_len(&b); i++)
                slt_ledger_expect(led, slt_batch_event(&b, i), forms[f].tenant);
        slt_http_resp_dispose(&resp);
        slt_batch_dispose(&b);
    }
    slt_note("write key forms: Bearer, Basic, body, query checked");
}

int main(void)
{
    slt_init("test_ingest", 170);
    slt_stack_t s;
    SLT_REQUIRE(slt_stack_start(&s, NULL) == 0, "the stack starts");
    slt_ledger_t led;
    slt_ledger_init(&led);
    int64_t t0 = slt_wall_ms();

    test_health(&s);
    test_cors(&s, SLT_HTTP_1_1);
    test_cors(&s, SLT_HTTP_2);
    test_full_batches(&s, &led, SLT_HTTP_1_1, SLT_WRITE_KEY_A, SLT_TENANT_A, BATCHES_PER_VERSION);
    test_full_batches(&s, &led, SLT_HTTP_2, SLT_WRITE_KEY_B, SLT_TENANT_B, BATCHES_PER_VERSION);
    test_mixed_batch(&s, &led, SLT_HTTP_1_1);
    test_mixed_batch(&s, &led, SLT_HTTP_2);
    test_write_key_forms(&s, &led);

    int64_t t1 = slt_wall_ms();
    size_t n_expected = slt_ledger_n_expected(&led);
    slt_kafka_recs_t recs;
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", n_expected, 1500, 30000, &recs) == 0,
                "topic events is readable");
    slt_note("events: %zu records in %d partitions, %zu events accepted", recs.n, recs.n_partitions,
             n_expected);
    SLT_CHECK(recs.n == n_expected, "topic events has %zu records, want exactly %zu", recs.n,
              n_expected);
    slt_ledger_verify(&led, &recs, t0, t1, NULL);
    slt_kafka_recs_dispose(&recs);
    check_dead_letters(&s);
    slt_ledger_dispose(&led);

    slt_stack_stop(&s);
    return slt_finish();
}
