/* Integration: whole-request errors of POST /v1/batch (400/401/404/405/413/415) with their JSON
 * error bodies, over HTTP/1.1 and HTTP/2; gzip bodies (accepted, bomb, truncated); then asserts
 * that nothing from a rejected request reached topic `events`. */
#include "slt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define BODY_LIMIT (1024 * 1024)

static const char *version_name(slt_http_version_t v)
{
    return v == SLT_HTTP_2 ? "HTTP/2" : "HTTP/1.1";
}

/* gzip (RFC 1952) of data; malloc'd. */
static unsigned char *gzip_bytes(const void *data, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&zs, (uLong)len) + 64;
    unsigned char *out = malloc(cap);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        abort();
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

typedef struct {
    const char *what;
    const char *method; /* NULL: POST */
    const char *path;   /* NULL: /v1/batch */
    const char *const *headers;
    const void *body;
    size_t body_len;
    long status;
    const char *code;
} bad_case_t;

static void run_case(const slt_stack_t *s, const bad_case_t *c, slt_http_version_t v)
{
    char url[200];
    slt_public_url(s, c->path ? c->path : "/v1/batch", url, sizeof(url));
    slt_http_req_t req = {.method = c->method ? c->method : "POST",
                          .url = url,
                          .headers = c->headers,
                          .body = c->body,
                          .body_len = c->body_len,
                          .version = v};
    slt_http_resp_t resp;
    slt_http(&req, &resp);
    char what[160];
    snprintf(what, sizeof(what), "%s (%s)", c->what, version_name(v));
    if (slt_check_error(what, &resp, c->status, c->code))
        slt_note("ok: %s -> %ld %s", what, c->status, c->code);
    slt_http_resp_dispose(&resp);
}

/* A gzip'd batch answered 200 with every event accepted; its events are expected in Kafka. */
static void post_gzip_ok(const slt_stack_t *s, slt_ledger_t *led, int with_header,
                         slt_http_version_t v)
{
    slt_batch_t b;
    slt_batch_init(&b);
    slt_batch_add_n(&b, 20);
    size_t len, gz_len;
    char *body = slt_batch_body(&b, NULL, &len);
    unsigned char *gz = gzip_bytes(body, len, &gz_len);
    const char *hdrs[] = {"Content-Type: application/json",
                          "Authorization: Bearer " SLT_WRITE_KEY_A,
                          with_header ? "Content-Encoding: gzip" : NULL, NULL};
    char url[200];
    slt_http_req_t req = {.method = "POST",
                          .url = slt_public_url(s, "/v1/batch", url, sizeof(url)),
                          .headers = hdrs,
                          .body = gz,
                          .body_len = gz_len,
                          .version = v};
    slt_http_resp_t resp;
    slt_http(&req, &resp);
    char what[128];
    snprintf(what, sizeof(what), "gzip body %s (%s)",
             with_header ? "with Content-Encoding: gzip" : "recognised by its magic bytes",
             version_name(v));
    if (slt_check_all_accepted(what, &resp, 20)) {
        for (size_t i = 0; i < slt_batch_len(&b); i++)
            slt_ledger_expect(led, slt_batch_event(&b, i), SLT_TENANT_A);
        slt_note("ok: %s -> 200, 20 accepted", what);
    }
    slt_http_resp_dispose(&resp);
    free(gz);
    free(body);
    slt_batch_dispose(&b);
}

/* text/plain carrying JSON (navigator.sendBeacon) with the key in the query. */
static void post_text_plain_ok(const slt_stack_t *s, slt_ledger_t *led, slt_http_version_t v)
{
    slt_batch_t b;
    slt_batch_init(&b);
    slt_batch_add_n(&b, 7);
    size_t len;
    char *body = slt_batch_body(&b, NULL, &len);
    const char *hdrs[] = {"Content-Type: text/plain;charset=UTF-8", NULL};
    char url[200];
    slt_http_req_t req = {
        .method = "POST",
        .url = slt_public_url(s, "/v1/batch?write_key=" SLT_WRITE_KEY_B, url, sizeof(url)),
        .headers = hdrs,
        .body = body,
        .body_len = len,
        .version = v};
    slt_http_resp_t resp;
    slt_http(&req, &resp);
    char what[96];
    snprintf(what, sizeof(what), "text/plain beacon (%s)", version_name(v));
    if (slt_check_all_accepted(what, &resp, 7)) {
        for (size_t i = 0; i < slt_batch_len(&b); i++)
            slt_ledger_expect(led, slt_batch_event(&b, i), SLT_TENANT_B);
        slt_note("ok: %s -> 200, 7 accepted", what);
    }
    slt_http_resp_dispose(&resp);
    free(body);
    slt_batch_dispose(&b);
}

/* Every event of b must stay out of Kafka. */
static void forbid_batch(slt_ledger_t *led, const slt_batch_t *b, const char *why)
{
    for (size_t i = 0; i < slt_batch_len(b); i++) {
        const char *eid = slt_batch_event_id(b, i);
        if (eid)
            slt_ledger_forbid(led, eid, why);
    }
}

int main(void)
{
    slt_init("test_badreq", 170);
    slt_stack_t s;
    SLT_REQUIRE(slt_stack_start(&s, NULL) == 0, "the stack starts");
    slt_ledger_t led;
    slt_ledger_init(&led);
    int64_t t0 = slt_wall_ms();

    /* A valid batch whose events must never appear: every case below rejects it whole. */
    slt_batch_t good;
    slt_batch_init(&good);
    slt_batch_add_n(&good, 10);
    size_t good_len;
    char *good_body = slt_batch_body(&good, NULL, &good_len);
    forbid_batch(&led, &good, "sent only in rejected requests");

    /* 501 events: over the 500-event limit, under the body limit */
    slt_batch_t many;
    slt_batch_init(&many);
    slt_batch_add_n(&many, 501);
    size_t many_len;
    char *many_body = slt_batch_body(&many, NULL, &many_len);
    forbid_batch(&led, &many, "sent in a batch of 501 events");

    /* Over 1 MiB: valid JSON (the batch, then whitespace) so only the size can be the reason */
    size_t huge_len = BODY_LIMIT + 64 * 1024;
    char *huge = malloc(huge_len);
    memset(huge, ' ', huge_len);
    memcpy(huge, good_body, good_len);

    /* A gzip bomb: 10 MiB of JSON whitespace inside a batch, a few KiB compressed */
    size_t bomb_plain_len = 10u * 1024 * 1024;
    char *bomb_plain = malloc(bomb_plain_len);
    memset(bomb_plain, ' ', bomb_plain_len);
    memcpy(bomb_plain, "{\"events\":[", 11);
    memcpy(bomb_plain + bomb_plain_len - 2, "]}", 2);
    size_t bomb_len;
    unsigned char *bomb = gzip_bytes(bomb_plain, bomb_plain_len, &bomb_len);
    free(bomb_plain);
    SLT_REQUIRE(bomb_len < BODY_LIMIT, "the bomb is under 1 MiB compressed (%zu)", bomb_len);

    /* A truncated gzip stream of a valid batch */
    size_t gz_len;
    unsigned char *gz = gzip_bytes(good_body, good_len, &gz_len);
    size_t trunc_len = gz_len / 2;

    static const char not_json[] = "this is not JSON {";
    static const char truncated_json[] = "{\"events\": [{\"event_id\": \"9b2f";
    static const char no_events[] = "{\"sent_at\": 1764000000000}";
    static const char array_top[] = "[{\"events\": []}]";

#define AUTH_A "Authorization: Bearer " SLT_WRITE_KEY_A
    const char *json_a[] = {"Content-Type: application/json", AUTH_A, NULL};
    const char *png_a[] = {"Content-Type: image/png", AUTH_A, NULL};
    const char *br_a[] = {"Content-Type: application/json", "Content-Encoding: br", AUTH_A, NULL};
    const char *json_nokey[] = {"Content-Type: application/json", NULL};
    const char *json_badkey[] = {"Content-Type: application/json",
                                 "Authorization: Bearer no-such-key", NULL};
    const char *gzip_a[] = {"Content-Type: application/json", "Content-Encoding: gzip", AUTH_A,
                            NULL};

    const bad_case_t cases[] = {
        {"not JSON", NULL, NULL, json_a, not_json, sizeof(not_json) - 1, 400, "malformed_json"},
        {"truncated JSON", NULL, NULL, json_a, truncated_json, sizeof(truncated_json) - 1, 400,
         "malformed_json"},
        {"no events array", NULL, NULL, json_a, no_events, sizeof(no_events) - 1, 400,
         "missing_events"},
        {"top level is an array", NULL, NULL, json_a, array_top, sizeof(array_top) - 1, 400,
         "not_an_object"},
        {"GET /v1/batch", "GET", NULL, json_a, NULL, 0, 405, "method_not_allowed"},
        {"PUT /v1/batch", "PUT", NULL, json_a, good_body, good_len, 405, "method_not_allowed"},
        {"Content-Type image/png", NULL, NULL, png_a, good_body, good_len, 415,
         "unsupported_media_type"},
        {"Content-Encoding br", NULL, NULL, br_a, good_body, good_len, 415, "unsupported_encoding"},
        {"no write key", NULL, NULL, json_nokey, good_body, good_len, 401, "missing_write_key"},
        {"unknown write key", NULL, NULL, json_badkey, good_body, good_len, 401,
         "unknown_write_key"},
        {"body over 1 MiB", NULL, NULL, json_a, huge, huge_len, 413, "body_too_large"},
        {"501 events", NULL, NULL, json_a, many_body, many_len, 413, "too_many_events"},
        {"unknown path GET /nope", "GET", "/nope", json_a, NULL, 0, 404, "not_found"},
        {"unknown path POST /v1/batches", NULL, "/v1/batches", json_a, good_body, good_len, 404,
         "not_found"},
        {"gzip bomb (10 MiB inflated)", NULL, NULL, gzip_a, bomb, bomb_len, 413,
         "decompressed_too_large"},
        {"truncated gzip", NULL, NULL, gzip_a, gz, trunc_len, 400, "malformed_gzip"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_case(&s, &cases[i], SLT_HTTP_1_1);
        run_case(&s, &cases[i], SLT_HTTP_2);
    }

    /* What must be accepted next to all of that */
    post_gzip_ok(&s, &led, 1, SLT_HTTP_1_1);
    post_gzip_ok(&s, &led, 1, SLT_HTTP_2);
    post_gzip_ok(&s, &led, 0, SLT_HTTP_1_1);
    post_text_plain_ok(&s, &led, SLT_HTTP_2);

    /* The gateway survived all of it */
    char url[200];
    slt_http_resp_t resp;
    SLT_CHECK(slt_http_get(slt_admin_url(&s, "/healthz", url, sizeof(url)), SLT_HTTP_1_1, &resp) ==
                  200,
              "gateway alive after the bad requests (GET /healthz: %ld)", resp.status);
    slt_http_resp_dispose(&resp);

    int64_t t1 = slt_wall_ms();
    size_t n_expected = slt_ledger_n_expected(&led);
    slt_kafka_recs_t recs;
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", n_expected, 1500, 30000, &recs) == 0,
                "topic events is readable");
    slt_note("events: %zu records, %zu accepted events expected", recs.n, n_expected);
    SLT_CHECK(recs.n == n_expected, "topic events has %zu records, want exactly %zu", recs.n,
              n_expected);
    slt_ledger_verify(&led, &recs, t0, t1, NULL);
    slt_kafka_recs_dispose(&recs);
    /* API.md: the raw body of a 400 goes to the dead-letter topic: one parse-stage dead letter
     * per 400 the gateway answered (its own count), each with a 400 machine code */
    {
        long n400 = slt_gateway_metric(&s, "sluice_http_requests_total{status=\"400\"}");
        SLT_CHECK(n400 > 0, "the gateway counted its 400 answers (%ld)", n400);
        slt_kafka_recs_t dlq;
        SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events.dlq", (size_t)(n400 > 0 ? n400 : 0),
                                          1000, 15000, &dlq) == 0,
                    "topic events.dlq is readable");
        long parse_stage = 0;
        for (size_t i = 0; i < dlq.n; i++) {
            const char *stage = slt_kafka_rec_header(&dlq.recs[i], "dlq.stage");
            const char *code = slt_kafka_rec_header(&dlq.recs[i], "dlq.code");
            if (stage == NULL || strcmp(stage, "parse") != 0)
                continue;
            parse_stage++;
            SLT_CHECK(code && (strcmp(code, "malformed_json") == 0 ||
                               strcmp(code, "missing_events") == 0 ||
                               strcmp(code, "not_an_object") == 0 ||
                               strcmp(code, "malformed_gzip") == 0 ||
                               strcmp(code, "bad_batch_field") == 0),
                      "dead letter with a 400 code, got '%s'", code ? code : "(none)");
            SLT_CHECK(slt_kafka_rec_header(&dlq.recs[i], "received_at") != NULL &&
                          slt_kafka_rec_header(&dlq.recs[i], "gateway") != NULL,
                      "dead letter carries received_at and gateway");
        }
        SLT_CHECK(parse_stage == n400,
                  "events.dlq holds %ld parse-stage dead letters, want %ld (one per 400)",
                  parse_stage, n400);
        slt_note("events.dlq: %zu records, %ld for the %ld bodies answered 400", dlq.n,
                 parse_stage, n400);
        slt_kafka_recs_dispose(&dlq);
    }

    free(gz);
    free(bomb);
    free(huge);
    free(many_body);
    free(good_body);
    slt_batch_dispose(&many);
    slt_batch_dispose(&good);
    slt_ledger_dispose(&led);
    slt_stack_stop(&s);
    return slt_finish();
}
