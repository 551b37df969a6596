/* Integration: backpressure, tenants and client clocks (issue 6).
 *
 * 1. In-flight events: with Kafka's only broker down, batches wait for their acks; once
 *    backpressure.max_inflight_events are waiting, the next batch gets 429 overloaded with
 *    Retry-After before it is parsed, and nothing of it reaches Kafka. Broker back: the waiting
 *    batches are accepted, new ones too.
 * 2. Producer queue: the same with backpressure.queue_max_messages as the limit.
 * 3. Tenants file: a tenant's rate (GCRA) gives 429 rate_limited with the Retry-After it needs;
 *    a tenant's CORS origins are enforced (403) and echoed; the preflight echoes listed origins.
 * 4. Clocks: a client clock 2 h ahead gets a corrected event_time header; an event time 3 h in
 *    the future is clamped; the lateness histogram counts them. */
#include "slt.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_EVENTS 100

typedef struct {
    const slt_stack_t *s;
    const char *sample;
    long at_least;
} metric_wait_t;

static int cond_metric(void *arg)
{
    metric_wait_t *w = arg;
    return slt_gateway_metric(w->s, w->sample) >= w->at_least;
}

static int wait_metric(const slt_stack_t *s, const char *sample, long at_least, int timeout_ms)
{
    metric_wait_t w = {s, sample, at_least};
    return slt_poll_until(cond_metric, &w, timeout_ms);
}

/* Checks a 429: code, Retry-After present and within [min_s, max_s]. */
static void check_429(const char *what, const slt_http_resp_t *resp, const char *code, long min_s,
                      long max_s)
{
    char *ra;
    slt_check_error(what, resp, 429, code);
    ra = slt_http_resp_header(resp, "retry-after");
    SLT_CHECK(ra != NULL && atol(ra) >= min_s && atol(ra) <= max_s,
              "%s: Retry-After '%s' within [%ld, %ld]", what, ra ? ra : "(none)", min_s, max_s);
    free(ra);
}

/* Broker down; n batches sent at once wait for Kafka until `sample` reaches `at_least`; one
 * more batch must be shed with `cause`; broker up; the n are accepted, one more is accepted. */
static void shed_while_kafka_is_down(const char *const *sets, int n, const char *sample,
                                     long at_least, const char *cause)
{
    slt_stack_t s;
    slt_batch_t batches[8], extra;
    slt_post_t posts[8];
    slt_http_req_t reqs[8];
    slt_http_resp_t resps[8], resp;
    slt_kafka_recs_t all;
    json_t *ids = json_object();
    char shed_sample[96], detail[64];
    size_t want = 0;

    SLT_REQUIRE(slt_stack_start(&s, sets) == 0, "the stack starts");
    SLT_REQUIRE(slt_broker_control(&s, "broker-down 1") == 0, "broker down");
    for (int k = 0; k < n; k++) {
        slt_batch_init(&batches[k]);
        slt_batch_add_n(&batches[k], BATCH_EVENTS);
        slt_post_prepare(&posts[k], &s, &batches[k], SLT_WRITE_KEY_A, SLT_AUTH_BEARER,
                         SLT_HTTP_2);
        posts[k].req.timeout_ms = 60000;
        reqs[k] = posts[k].req;
    }
    slt_http_many_t *many = slt_http_many_start(reqs, (size_t)n);
    SLT_REQUIRE(wait_metric(&s, sample, at_least, 20000), "%s reaches %ld while Kafka is down",
                sample, at_least);

    /* the pipeline is full: the next batch is shed before parsing, nothing of it stored */
    slt_batch_init(&extra);
    slt_batch_add_n(&extra, 10);
    slt_post_batch(&s, &extra, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
    check_429(cause, &resp, "overloaded", 1, 3600);
    snprintf(detail, sizeof(detail), "(%s)", cause);
    SLT_CHECK(strstr(resp.body, detail) != NULL, "the 429 names the cause %s: %s", cause,
              resp.body);
    slt_http_resp_dispose(&resp);
    snprintf(shed_sample, sizeof(shed_sample), "sluice_shed_total{cause=\"%s\"}", cause);
    SLT_CHECK(slt_gateway_metric(&s, shed_sample) >= 1, "%s counted", shed_sample);
    SLT_CHECK(slt_gateway_metric(&s, "sluice_http_requests_total{status=\"429\"}") >= 1,
              "429 counted by status");

    /* Kafka back: the waiting batches are all accepted */
    SLT_REQUIRE(slt_broker_control(&s, "broker-up 1") == 0, "broker up");
    slt_http_many_join(many, resps);
    for (int k = 0; k < n; k++) {
        char what[64];
        snprintf(what, sizeof(what), "batch %d waiting for Kafka", k);
        if (slt_check_all_accepted(what, &resps[k], BATCH_EVENTS))
            want += BATCH_EVENTS;
        slt_http_resp_dispose(&resps[k]);
        slt_post_dispose(&posts[k]);
        slt_batch_dispose(&batches[k]);
    }
    /* and the pipeline takes new batches again (the same events: nothing of them was stored) */
    slt_post_batch(&s, &extra, SLT_WRITE_KEY_A, SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
    if (slt_check_all_accepted("after recovery", &resp, slt_batch_len(&extra)))
        want += slt_batch_len(&extra);
    slt_http_resp_dispose(&resp);
    SLT_CHECK(slt_gateway_metric(&s, "sluice_pipeline_events") == 0,
              "nothing left in the pipeline gauge");

    /* the audit: the accepted batches and the shed-then-accepted one, each event once (the
     * shed attempt stored nothing, or its events would be there twice) */
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", want, 1000, 30000, &all) == 0,
                "events topic readable");
    for (size_t i = 0; i < all.n; i++) {
        const char *eid = slt_kafka_rec_header(&all.recs[i], "event_id");
        SLT_CHECK(eid != NULL && json_object_get(ids, eid) == NULL, "event %s once",
                  eid ? eid : "(no id)");
        if (eid != NULL)
            json_object_set_new(ids, eid, json_true());
    }
    SLT_CHECK(all.n == want && want == (size_t)n * BATCH_EVENTS + slt_batch_len(&extra),
              "events holds %zu records, want %zu", all.n, want);
    slt_kafka_recs_dispose(&all);
    json_decref(ids);
    slt_batch_dispose(&extra);
    slt_stack_stop(&s);
}

static void sha256_hex(const char *key, char out[65])
{
    unsigned char d[32];
    SHA256((const unsigned char *)key, strlen(key), d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Posts b with Bearer key and an Origin header (NULL: none). */
static long post_with_origin(const slt_stack_t *s, const slt_batch_t *b, const char *key,
                             const char *origin, slt_http_resp_t *resp)
{
    slt_post_t p;
    char origin_hdr[128];
    long status;

    slt_post_prepare(&p, s, b, key, SLT_AUTH_BEARER, SLT_HTTP_2);
    if (origin != NULL) {
        size_t n = 0;
        while (p.headers[n] != NULL)
            n++;
        snprintf(origin_hdr, sizeof(origin_hdr), "Origin: %s", origin);
        p.headers[n] = origin_hdr; /* posts have room for one more header */
        p.headers[n + 1] = NULL;
    }
    status = slt_http(&p.req, resp);
    slt_post_dispose(&p);
    return status;
}

static long preflight(const slt_stack_t *s, const char *origin, slt_http_resp_t *resp)
{
    char url[200], origin_hdr[128];
    const char *headers[] = {origin_hdr, "Access-Control-Request-Method: POST", NULL};
    slt_http_req_t req = {.method = "OPTIONS", .url = slt_public_url(s, "/v1/batch", url,
                                                                     sizeof(url)),
                          .headers = headers, .version = SLT_HTTP_2};
    snprintf(origin_hdr, sizeof(origin_hdr), "Origin: %s", origin);
    return slt_http(&req, resp);
}

static void tenants_and_clocks(void)
{
    char dir[64], path[128], hex_metered[65], hex_web[65], file[1024];
    slt_stack_t s;
    slt_http_resp_t resp;
    slt_batch_t b;
    char *h;

    SLT_REQUIRE(slt_tempdir_create(dir, sizeof(dir)) == 0, "temp dir");
    snprintf(path, sizeof(path), "%s/tenants.json", dir);
    sha256_hex("metered-key", hex_metered);
    sha256_hex("web-key", hex_web);
    snprintf(file, sizeof(file),
             "{\"tenants\": {\n"
             "  \"metered\": {\"write_keys_sha256\": [\"%s\"], \"rate_events_per_s\": 100,"
             " \"burst_events\": 500, \"cors_origins\": [\"https://metered.example\"]},\n"
             "  \"web\": {\"write_keys_sha256\": [\"%s\"],"
             " \"cors_origins\": [\"https://shop.example\"]}\n}}\n",
             hex_metered, hex_web);
    FILE *f = fopen(path, "w");
    SLT_REQUIRE(f != NULL && fputs(file, f) >= 0 && fclose(f) == 0, "tenants file written");
    char set_file[200];
    snprintf(set_file, sizeof(set_file), "auth.tenants_file=%s", path);
    /* only file tenants: no development key that takes any origin */
    const char *const sets[] = {set_file, "auth.write_keys=", "tenants.default_rate=0", NULL};
    SLT_REQUIRE(slt_stack_start(&s, sets) == 0, "the stack starts with a tenants file");

    /* --- rate: 100 events/s, burst 500: five batches of 100 pass, the sixth waits ~1 s --- */
    for (int k = 0; k < 5; k++) {
        char what[64];
        slt_batch_init(&b);
        slt_batch_add_n(&b, BATCH_EVENTS);
        snprintf(what, sizeof(what), "metered batch %d within the burst", k);
        slt_post_batch(&s, &b, "metered-key", SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
        slt_check_all_accepted(what, &resp, BATCH_EVENTS);
        slt_http_resp_dispose(&resp);
        slt_batch_dispose(&b);
    }
    slt_batch_init(&b);
    slt_batch_add_n(&b, BATCH_EVENTS);
    slt_post_batch(&s, &b, "metered-key", SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
    check_429("over the tenant's rate", &resp, "rate_limited", 1, 2);
    slt_http_resp_dispose(&resp);
    /* the key in the query: refused before the body is parsed, same answer */
    slt_post_batch(&s, &b, "metered-key", SLT_AUTH_QUERY, SLT_HTTP_2, &resp);
    check_429("over the rate, key in the query", &resp, "rate_limited", 1, 2);
    slt_http_resp_dispose(&resp);
    SLT_CHECK(slt_gateway_metric(&s, "sluice_shed_total{cause=\"tenant_rate\"}") == 2,
              "two tenant_rate sheds counted");
    /* another tenant is not affected */
    slt_post_batch(&s, &b, "web-key", SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
    slt_check_all_accepted("another tenant meanwhile", &resp, BATCH_EVENTS);
    slt_http_resp_dispose(&resp);
    slt_batch_dispose(&b);

    /* --- CORS: the web tenant lists https://shop.example only --- */
    slt_batch_init(&b);
    slt_batch_add_n(&b, 3);
    post_with_origin(&s, &b, "web-key", "https://evil.example", &resp);
    slt_check_error("origin not listed", &resp, 403, "origin_not_allowed");
    SLT_CHECK(slt_http_resp_header_count(&resp, "access-control-allow-origin") == 0,
              "no Access-Control-Allow-Origin for an unlisted origin");
    slt_http_resp_dispose(&resp);
    post_with_origin(&s, &b, "web-key", "https://shop.example", &resp);
    slt_check_all_accepted("listed origin", &resp, 3);
    h = slt_http_resp_header(&resp, "access-control-allow-origin");
    SLT_CHECK(h != NULL && strcmp(h, "https://shop.example") == 0,
              "the listed origin is echoed: %s", h ? h : "(none)");
    free(h);
    h = slt_http_resp_header(&resp, "vary");
    SLT_CHECK(h != NULL && strstr(h, "Origin") != NULL, "Vary: Origin (%s)", h ? h : "(none)");
    free(h);
    slt_http_resp_dispose(&resp);
    SLT_CHECK(preflight(&s, "https://shop.example", &resp) == 204, "preflight 204");
    h = slt_http_resp_header(&resp, "access-control-allow-origin");
    SLT_CHECK(h != NULL && strcmp(h, "https://shop.example") == 0,
              "preflight echoes a listed origin: %s", h ? h : "(none)");
    free(h);
    slt_http_resp_dispose(&resp);
    preflight(&s, "https://evil.example", &resp);
    SLT_CHECK(slt_http_resp_header_count(&resp, "access-control-allow-origin") == 0,
              "preflight from an unlisted origin gets no Access-Control-Allow-Origin");
    slt_http_resp_dispose(&resp);
    slt_batch_dispose(&b);

    /* --- clocks: a client 2 h ahead; an event 3 h in the future; a correct one --- */
    {
        int64_t now = slt_wall_ms(), ahead = now + 2 * 3600 * 1000LL;
        json_t *ev_skew, *ev_future, *ev_ok, *root;
        char *body;
        slt_post_t p;
        slt_batch_init(&b);
        ev_skew = slt_batch_add(&b, "page_view");
        json_object_set_new(ev_skew, "ts", json_integer(ahead - 5000)); /* 5 s before sending */
        root = json_object();
        json_object_set_new(root, "sent_at", json_integer(ahead));
        json_object_set(root, "events", b.events);
        body = json_dumps(root, JSON_COMPACT);
        slt_post_prepare(&p, &s, &b, "web-key", SLT_AUTH_BEARER, SLT_HTTP_2);
        free(p.body);
        p.body = body;
        p.body_len = strlen(body);
        p.req.body = p.body;
        p.req.body_len = p.body_len;
        int64_t before = slt_wall_ms();
        slt_http(&p.req, &resp);
        int64_t after = slt_wall_ms();
        slt_check_all_accepted("client clock 2 h ahead", &resp, 1);
        slt_http_resp_dispose(&resp);
        slt_post_dispose(&p);
        json_decref(root);
        char skew_id[64];
        snprintf(skew_id, sizeof(skew_id), "%s", slt_batch_event_id(&b, 0));
        slt_batch_dispose(&b);

        slt_batch_init(&b);
        ev_future = slt_batch_add(&b, "click");
        json_object_set_new(ev_future, "ts", json_integer(now + 3 * 3600 * 1000LL));
        ev_ok = slt_batch_add(&b, "click");
        json_object_set_new(ev_ok, "ts", json_integer(now - 1000));
        slt_post_batch(&s, &b, "web-key", SLT_AUTH_BEARER, SLT_HTTP_2, &resp);
        int64_t after2 = slt_wall_ms();
        slt_check_all_accepted("future and correct events", &resp, 2);
        slt_http_resp_dispose(&resp);

        slt_kafka_recs_t recs;
        SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", 1, 1000, 20000, &recs) == 0,
                    "events readable");
        int seen = 0;
        for (size_t i = 0; i < recs.n; i++) {
            const char *eid = slt_kafka_rec_header(&recs.recs[i], "event_id");
            const char *et = slt_kafka_rec_header(&recs.recs[i], "event_time");
            const char *clock = slt_kafka_rec_header(&recs.recs[i], "clock");
            if (eid == NULL)
                continue;
            if (strcmp(eid, skew_id) == 0) {
                seen++;
                /* received_at - (sent_at - ts) = received_at - 5000 */
                SLT_CHECK(clock != NULL && strcmp(clock, "corrected") == 0,
                          "skewed client: clock header '%s'", clock ? clock : "(none)");
                SLT_CHECK(et != NULL && atoll(et) >= before - 5000 - 5 &&
                              atoll(et) <= after - 5000 + 5,
                          "corrected event_time %s within [%lld, %lld]", et ? et : "(none)",
                          (long long)(before - 5000), (long long)(after - 5000));
            } else if (strcmp(eid, slt_batch_event_id(&b, 0)) == 0) {
                seen++;
                SLT_CHECK(clock != NULL && strcmp(clock, "clamped") == 0,
                          "future event: clock header '%s'", clock ? clock : "(none)");
                SLT_CHECK(et != NULL && atoll(et) >= now && atoll(et) <= after2 + 5,
                          "clamped event_time %s is the receive time", et ? et : "(none)");
            } else if (strcmp(eid, slt_batch_event_id(&b, 1)) == 0) {
                seen++;
                SLT_CHECK(et == NULL && clock == NULL,
                          "a correct clock gets no event_time/clock header");
            }
        }
        SLT_CHECK(seen == 3, "the three clock events are in Kafka (%d)", seen);
        slt_kafka_recs_dispose(&recs);
        slt_batch_dispose(&b);
        SLT_CHECK(slt_gateway_metric(&s, "sluice_clock_adjusted_events_total{how=\"corrected\"}") ==
                      1,
                  "one corrected event counted");
        SLT_CHECK(slt_gateway_metric(&s, "sluice_clock_adjusted_events_total{how=\"clamped\"}") ==
                      1,
                  "one clamped event counted");
        SLT_CHECK(slt_gateway_metric(&s, "sluice_event_lateness_seconds_count") >= 503,
                  "lateness observed for every event sent to Kafka");
    }
    /* every metric family of issue 6's list is exported (curl /metrics) */
    {
        static const char *const families[] = {
            "sluice_http_requests_total{status=\"200\"}", "sluice_events_total{outcome=",
            "sluice_errors_total{code=", "sluice_bytes_in_total",
            "sluice_request_duration_seconds_bucket", "sluice_kafka_delivery_seconds_bucket",
            "sluice_kafka_queue_messages", "sluice_kafka_pending_events",
            "sluice_kafka_pending_bytes", "sluice_dedup_claim_seconds_bucket",
            "sluice_shed_total{cause=\"tenant_rate\"}", "# TYPE sluice_dead_letters_total counter",
            "sluice_event_lateness_seconds_bucket", "sluice_conn_closed_total{reason=",
            "sluice_schema_cache_", "sluice_ready"};
        char url[200];
        slt_http_resp_t m;
        SLT_REQUIRE(slt_http_get(slt_admin_url(&s, "/metrics", url, sizeof(url)), SLT_HTTP_1_1,
                                 &m) == 200,
                    "GET /metrics");
        for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
            SLT_CHECK(strstr(m.body, families[i]) != NULL, "/metrics has %s", families[i]);
        slt_http_resp_dispose(&m);
    }
    slt_stack_stop(&s);
    slt_tempdir_remove(dir);
}

int main(void)
{
    slt_init("test_backpressure", 170);
    /* health checks every 60 s: a broker taken down stays "ready", so the answer is the
     * backpressure 429, not the 503 of a producer without a cluster */
    const char *const inflight_sets[] = {"backpressure.max_inflight_events=500",
                                         "producer.health_interval=60s", NULL};
    shed_while_kafka_is_down(inflight_sets, 5, "sluice_pipeline_events", 500, "inflight_events");
    const char *const queue_sets[] = {"backpressure.queue_max_messages=150",
                                      "producer.health_interval=60s", NULL};
    shed_while_kafka_is_down(queue_sets, 2, "sluice_kafka_pending_events", 200, "queue_messages");
    tenants_and_clocks();
    return slt_finish();
}
