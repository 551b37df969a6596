/* Integration: binary batches (issue 4, item 4). A sluice.v1.RecordBatch (application/x-protobuf)
 * carries records already in Confluent wire format: an Avro page_view (schema id from the
 * registry, encoded here with the schema library), a Protobuf record of a schema registered in
 * this test (protoc runs in the registry; the record is written by hand on the wire), and broken
 * ones. The valid records reach Kafka byte for byte, keyed by the user_id decoded from them;
 * each broken one is invalid with its code and dead-lettered with its original bytes. */
#include "slt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb_write.h"
#include "schema.h"

static const char APP_PROTO[] = "syntax = \"proto3\";\n"
                                "package sluice.app;\n"
                                "message AppEvent {\n"
                                "  string event_id = 1;\n"
                                "  string event_type = 2;\n"
                                "  int64 ts = 3;\n"
                                "  string user_id = 4;\n"
                                "  string screen = 5;\n"
                                "}\n";

/* GET or POST the registry; returns the parsed JSON answer (new reference) or NULL. */
static json_t *registry_call(const slt_stack_t *s, const char *method, const char *path,
                             json_t *body)
{
    char url[256];
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *headers[] = {"Content-Type: application/vnd.schemaregistry.v1+json", NULL};
    slt_http_req_t hr = {.method = method,
                         .url = slt_registry_url(&s->registry, path, url, sizeof(url)),
                         .headers = headers, .body = text, .body_len = text ? strlen(text) : 0};
    slt_http_resp_t resp;
    json_t *v = NULL;
    if (slt_http(&hr, &resp) == 200)
        v = json_loads(resp.body, 0, NULL);
    slt_http_resp_dispose(&resp);
    free(text);
    return v;
}

/* One AppEvent on the wire, after Confluent framing (0x00, id) and the message-index prefix [0]. */
static void app_record(pbw_t *w, uint32_t id, const char *event_id, const char *user_id)
{
    uint8_t frame[6] = {0, (uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8),
                        (uint8_t)id, 0};
    w->n = 0;
    pbw_raw(w, frame, sizeof(frame));
    pbw_varint(w, 1 << 3 | 2), pbw_varint(w, strlen(event_id)), pbw_raw(w, event_id, 36);
    pbw_varint(w, 2 << 3 | 2), pbw_varint(w, 9), pbw_raw(w, "app_event", 9);
    pbw_varint(w, 3 << 3 | 0), pbw_varint(w, (uint64_t)slt_wall_ms());
    if (user_id != NULL)
        pbw_varint(w, 4 << 3 | 2), pbw_varint(w, strlen(user_id)),
            pbw_raw(w, user_id, strlen(user_id));
    pbw_varint(w, 5 << 3 | 2), pbw_varint(w, 8), pbw_raw(w, "checkout", 8);
}

typedef struct {
    uint8_t bytes[2048];
    size_t len;
    char event_id[37];
    const char *want; /* "accepted" or the invalid code */
} rec_t;

int main(void)
{
    slt_init("test_binary", 170);
    slt_stack_t s;
    SLT_REQUIRE(slt_stack_start(&s, NULL) == 0, "the stack starts");

    /* the schemas: page_view (default, Avro) and app_event (Protobuf, registered now) */
    json_t *pv = registry_call(&s, "GET", "/subjects/page_view/versions/latest", NULL);
    SLT_REQUIRE(pv != NULL, "page_view's latest schema");
    uint32_t avro_id = (uint32_t)json_integer_value(json_object_get(pv, "id"));
    const char *avsc = json_string_value(json_object_get(pv, "schema"));
    char errbuf[256];
    schema_t *avro = schema_compile_avro(avsc, strlen(avsc), avro_id, errbuf, sizeof(errbuf));
    SLT_REQUIRE(avro != NULL, "page_view compiles: %s", errbuf);
    json_t *reg = json_pack("{ssss}", "schema", APP_PROTO, "schemaType", "PROTOBUF");
    json_t *ans = registry_call(&s, "POST", "/subjects/app_event/versions", reg);
    SLT_REQUIRE(ans != NULL && json_integer_value(json_object_get(ans, "id")) > 0,
                "app_event (PROTOBUF) registered");
    uint32_t pb_id = (uint32_t)json_integer_value(json_object_get(ans, "id"));
    json_decref(reg), json_decref(ans);

    rec_t recs[7];
    size_t n = 0;
    pbw_t w;
    memset(recs, 0, sizeof(recs));
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
        slt_uuid4(recs[i].event_id);

    /* 0: a valid Avro page_view, encoded from JSON by the schema library */
    {
        slt_batch_t b;
        slt_batch_init(&b);
        json_t *ev = slt_batch_add(&b, "page_view");
        json_object_set_new(ev, "event_id", json_string(recs[0].event_id));
        char *json = json_dumps(ev, JSON_COMPACT);
        schema_error_t e;
        ssize_t len = schema_encode_json(avro, json, strlen(json), NULL, recs[0].bytes,
                                         sizeof(recs[0].bytes), &e);
        SLT_REQUIRE(len > 0, "page_view encodes: %s %s", e.path, e.detail);
        recs[0].len = (size_t)len;
        recs[0].want = "accepted";
        free(json);
        slt_batch_dispose(&b);
        n++;
    }
    /* 1: a valid Protobuf AppEvent */
    app_record(&w, pb_id, recs[1].event_id, "u-proto");
    memcpy(recs[1].bytes, w.b, w.n), recs[1].len = w.n, recs[1].want = "accepted", n++;
    /* 2: the Avro record cut short */
    memcpy(recs[2].bytes, recs[0].bytes, recs[0].len - 3);
    recs[2].len = recs[0].len - 3, recs[2].want = "bad_record";
    memcpy(recs[2].event_id, recs[0].event_id, 37); /* same id: only its valid copy is stored */
    n++;
    /* 3: no Confluent framing */
    memcpy(recs[3].bytes, "{\"json\":1}", 10), recs[3].len = 10, recs[3].want = "bad_framing", n++;
    /* 4: a schema id nobody registered */
    app_record(&w, 999999, recs[4].event_id, "u-x");
    memcpy(recs[4].bytes, w.b, w.n), recs[4].len = w.n, recs[4].want = "schema_not_found", n++;
    /* 5: a Protobuf record without user_id */
    app_record(&w, pb_id, recs[5].event_id, NULL);
    memcpy(recs[5].bytes, w.b, w.n), recs[5].len = w.n, recs[5].want = "missing_field", n++;
    /* 6: a second valid Protobuf record, other user */
    app_record(&w, pb_id, recs[6].event_id, "u-proto-2");
    memcpy(recs[6].bytes, w.b, w.n), recs[6].len = w.n, recs[6].want = "accepted", n++;

    /* the RecordBatch: records = 1, sent_at = 2 */
    pbw_t body;
    body.n = 0;
    for (size_t i = 0; i < n; i++) {
        pbw_varint(&body, 1 << 3 | 2);
        pbw_varint(&body, recs[i].len);
        pbw_raw(&body, recs[i].bytes, recs[i].len);
    }
    pbw_varint(&body, 2 << 3 | 0);
    pbw_varint(&body, (uint64_t)slt_wall_ms());

    char url[200], auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", SLT_WRITE_KEY_A);
    const char *headers[] = {"Content-Type: application/x-protobuf", auth, NULL};
    slt_http_req_t hr = {.url = slt_public_url(&s, "/v1/batch", url, sizeof(url)),
                         .headers = headers, .body = body.b, .body_len = body.n,
                         .version = SLT_HTTP_2};
    slt_http_resp_t resp;
    SLT_REQUIRE(slt_http(&hr, &resp) == 200, "binary batch answered 200: %ld %s", resp.status,
                resp.body);
    slt_batch_resp_t r;
    SLT_REQUIRE(slt_batch_resp_parse(resp.body, resp.body_len, &r, errbuf, sizeof(errbuf)) == 0,
                "answer parses: %s", errbuf);
    SLT_CHECK(r.accepted == 3 && r.invalid == 4, "3 accepted, 4 invalid: %s", resp.body);
    for (size_t i = 0; i < n; i++) {
        const slt_outcome_t *o = slt_batch_resp_find(&r, (long)i);
        if (strcmp(recs[i].want, "accepted") == 0)
            SLT_CHECK(o == NULL, "record %zu accepted (%s)", i, o ? o->status : "");
        else
            SLT_CHECK(o && strcmp(o->status, "invalid") == 0 && o->code &&
                          strcmp(o->code, recs[i].want) == 0,
                      "record %zu invalid %s (%s %s)", i, recs[i].want, o ? o->status : "-",
                      o && o->code ? o->code : "");
    }
    slt_batch_resp_dispose(&r);
    slt_http_resp_dispose(&resp);

    /* Kafka: the three valid records, byte for byte, keyed by their decoded user_id */
    slt_kafka_recs_t kr;
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events", 3, 1000, 20000, &kr) == 0,
                "events readable");
    SLT_CHECK(kr.n == 3, "events holds %zu records, want 3", kr.n);
    for (size_t k = 0; k < kr.n; k++) {
        const char *eid = slt_kafka_rec_header(&kr.recs[k], "event_id");
        size_t i = 0;
        while (i < n && !(eid && strcmp(eid, recs[i].event_id) == 0 &&
                          strcmp(recs[i].want, "accepted") == 0))
            i++;
        SLT_REQUIRE(i < n, "record %zu's event_id %s is one of the valid records", k,
                    eid ? eid : "(none)");
        SLT_CHECK(kr.recs[k].value_len == recs[i].len &&
                      memcmp(kr.recs[k].value, recs[i].bytes, recs[i].len) == 0,
                  "record %zu forwarded unchanged", i);
        const char *want_key = i == 0 ? NULL : i == 1 ? "u-proto" : "u-proto-2";
        if (want_key != NULL)
            SLT_CHECK(kr.recs[k].key && strcmp(kr.recs[k].key, want_key) == 0,
                      "record %zu keyed by its user_id %s (%s)", i, want_key,
                      kr.recs[k].key ? kr.recs[k].key : "(none)");
    }
    slt_kafka_recs_dispose(&kr);

    /* the dead letters keep the original bytes */
    slt_kafka_recs_t dlq;
    SLT_REQUIRE(slt_kafka_consume_all(s.bootstrap, "events.dlq", 4, 1000, 20000, &dlq) == 0,
                "events.dlq readable");
    SLT_CHECK(dlq.n == 4, "events.dlq holds %zu records, want 4", dlq.n);
    for (size_t k = 0; k < dlq.n; k++) {
        const char *code = slt_kafka_rec_header(&dlq.recs[k], "dlq.code");
        const char *ct = slt_kafka_rec_header(&dlq.recs[k], "content_type");
        size_t i = 0;
        while (i < n && !(code && strcmp(code, recs[i].want) == 0))
            i++;
        SLT_REQUIRE(i < n, "dead letter %zu has a code of ours (%s)", k, code ? code : "-");
        SLT_CHECK(dlq.recs[k].value_len == recs[i].len &&
                      memcmp(dlq.recs[k].value, recs[i].bytes, recs[i].len) == 0,
                  "dead letter %s holds the record's original bytes", code);
        SLT_CHECK(ct && strcmp(ct, "application/x-protobuf") == 0, "content_type header %s",
                  ct ? ct : "(none)");
    }
    slt_kafka_recs_dispose(&dlq);

    /* a body that is not a RecordBatch: 400 malformed_protobuf */
    const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    hr.body = junk, hr.body_len = sizeof(junk);
    slt_http(&hr, &resp);
    slt_check_error("truncated RecordBatch", &resp, 400, "malformed_protobuf");
    slt_http_resp_dispose(&resp);

    /* registry down and the gateway restarted: both kinds of schema come back from the cache
     * dir (the snapshot, and the Protobuf descriptor kept beside it) */
    SLT_REQUIRE(slt_stack_registry_kill(&s) == 0, "registry killed");
    SLT_REQUIRE(slt_gateway_stop(&s, 20000) >= 0, "gateway stopped");
    SLT_REQUIRE(slt_gateway_start(&s) == 0, "gateway restarts with the registry down");
    {
        char id_pb[37];
        slt_uuid4(id_pb);
        app_record(&w, pb_id, id_pb, "u-after-restart");
        body.n = 0;
        pbw_varint(&body, 1 << 3 | 2), pbw_varint(&body, w.n), pbw_raw(&body, w.b, w.n);
        pbw_varint(&body, 1 << 3 | 2), pbw_varint(&body, recs[0].len);
        pbw_raw(&body, recs[0].bytes, recs[0].len); /* already stored: a duplicate now */
        hr.body = body.b, hr.body_len = body.n;
        hr.url = slt_public_url(&s, "/v1/batch", url, sizeof(url));
        SLT_REQUIRE(slt_http(&hr, &resp) == 200, "after restart: 200 (%ld %s)", resp.status,
                    resp.body);
        SLT_REQUIRE(slt_batch_resp_parse(resp.body, resp.body_len, &r, errbuf, sizeof(errbuf)) ==
                        0,
                    "answer parses: %s", errbuf);
        SLT_CHECK(r.accepted == 1 && r.duplicate == 1,
                  "registry down, after a restart: the Protobuf record accepted, the Avro one "
                  "a duplicate: %s",
                  resp.body);
        slt_batch_resp_dispose(&r);
        slt_http_resp_dispose(&resp);
    }

    schema_destroy(avro);
    json_decref(pv);
    slt_stack_stop(&s);
    return slt_finish();
}
