/* Throughput of binary records (not a test: prints numbers, asserts only that every record
 * validates): schema_validate_binary on a ~300-byte Avro page_view (the transcoder's own output
 * for the default schema) and on the same event as Protobuf, plus gw_parse_pb_batch per record
 * of a 50-record RecordBatch.
 *   cmake --preset release && cmake --build --preset release -j2 --target bench_binary
 *   build/release/tests/bench/bench_binary [iterations] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "gw_int.h"
#include "pb_write.h"
#include "schema.h"

static const char page_view[] =
    "{\"event_id\":\"6f1c2a9e-3b7d-4c8e-9a01-5d2e7f4b8c13\",\"event_type\":\"page_view\","
    "\"ts\":1732500000123,\"user_id\":\"u_8c41f2d07a\",\"session_id\":\"s_1f9e0b7c35d4\","
    "\"page_id\":4242,\"properties\":{\"url\":\"https://shop.example.com/products/"
    "blue-widget?ref=mail&utm_source=newsletter&utm_campaign=autumn\",\"referrer\":"
    "\"https://mail.example.net/inbox/message/8c41f2d07a\",\"title\":\"Blue Widget \\u2013 "
    "Shop\",\"latency_ms\":182}}";

static void field(pbw_t *m, const char *name, uint32_t number, int type, const char *type_name)
{
    static pbw_t f;
    f.n = 0;
    pbw_str(&f, 1, name);
    pbw_uint(&f, 3, number);
    pbw_uint(&f, 4, 1);
    pbw_uint(&f, 5, (uint64_t)type);
    if (type_name)
        pbw_str(&f, 6, type_name);
    pbw_sub(m, 2, &f);
}

/* page_view as proto3: message PageView { string event_id = 1; string event_type = 2;
 * int64 ts = 3; string user_id = 4; string session_id = 5; int64 page_id = 6;
 * Props properties = 7; } message Props { string url = 1; string referrer = 2;
 * string title = 3; int32 latency_ms = 4; } */
static schema_t *load_pb(uint32_t id)
{
    static pbw_t file, pv, props;
    char err[256];
    schema_t *s;

    pbw_str(&file, 1, "page_view.proto");
    pbw_str(&file, 2, "sluice.events");
    pbw_str(&pv, 1, "PageView");
    field(&pv, "event_id", 1, 9, NULL);
    field(&pv, "event_type", 2, 9, NULL);
    field(&pv, "ts", 3, 3, NULL);
    field(&pv, "user_id", 4, 9, NULL);
    field(&pv, "session_id", 5, 9, NULL);
    field(&pv, "page_id", 6, 3, NULL);
    field(&pv, "properties", 7, 11, ".sluice.events.Props");
    pbw_str(&props, 1, "Props");
    field(&props, "url", 1, 9, NULL);
    field(&props, "referrer", 2, 9, NULL);
    field(&props, "title", 3, 9, NULL);
    field(&props, "latency_ms", 4, 5, NULL);
    pbw_sub(&file, 4, &pv);
    pbw_sub(&file, 4, &props);
    pbw_str(&file, 12, "proto3");
    s = schema_compile_protobuf(file.b, file.n, id, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "protobuf schema: %s\n", err);
        exit(1);
    }
    return s;
}

static size_t pb_record(uint8_t *out, uint32_t id)
{
    static pbw_t w, props;
    w.n = props.n = 0;
    pbw_raw(&w, "\x00", 1);
    pbw_raw(&w, (uint8_t[]){id >> 24, id >> 16, id >> 8, id}, 4);
    pbw_raw(&w, "\x00", 1); /* message index [0] */
    pbw_str(&w, 1, "6f1c2a9e-3b7d-4c8e-9a01-5d2e7f4b8c13");
    pbw_str(&w, 2, "page_view");
    pbw_uint(&w, 3, 1732500000123ULL);
    pbw_str(&w, 4, "u_8c41f2d07a");
    pbw_str(&w, 5, "s_1f9e0b7c35d4");
    pbw_uint(&w, 6, 4242);
    pbw_str(&props, 1,
            "https://shop.example.com/products/blue-widget?ref=mail&utm_source="
            "newsletter&utm_campaign=autumn");
    pbw_str(&props, 2, "https://mail.example.net/inbox/message/8c41f2d07a");
    pbw_str(&props, 3, "Blue Widget \xe2\x80\x93 Shop");
    pbw_uint(&props, 4, 182);
    pbw_sub(&w, 7, &props);
    memcpy(out, w.b, w.n);
    return w.n;
}

static void run(const char *name, const schema_t *s, const uint8_t *rec, size_t len, long iters)
{
    uint32_t id;
    const uint8_t *p;
    size_t plen, sink = 0;
    schema_extract_t x;
    schema_error_t e;
    double w0 = 0, c0 = 0, wall, cpu;

    for (long i = -iters / 20; i < iters; i++) {
        if (i == 0) {
            w0 = bench_now_s(CLOCK_MONOTONIC);
            c0 = bench_now_s(CLOCK_PROCESS_CPUTIME_ID);
        }
        /* what the gateway does per record: framing, validation, the envelope slices */
        if (schema_frame_parse(rec, len, &id, &p, &plen) != 0 ||
            schema_validate_binary(s, p, plen, &x, &e) != 0) {
            fprintf(stderr, "%s: %s at '%s': %s\n", name, sl_err_code(e.code), e.path, e.detail);
            exit(1);
        }
        sink += x.event_id.len + x.user_id.len;
    }
    wall = bench_now_s(CLOCK_MONOTONIC) - w0;
    cpu = bench_now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("%-30s %4zu B: %6.1f ns/record (cpu %6.1f)  %10.0f records/s  [%zu]\n", name, len,
           wall * 1e9 / (double)iters, cpu * 1e9 / (double)iters, (double)iters / wall, sink % 7);
}

static void *bump(void *actx, size_t n)
{
    static char arena[1 << 16];
    (void)actx;
    return n <= sizeof(arena) ? arena : NULL; /* one batch at a time: reuse the same bytes */
}

static void run_batch(const uint8_t *rec, size_t len, long iters)
{
    static pbw_t body;
    const gw_parse_limits_t lim = {.max_events = 500, .max_event_bytes = 32768, .max_depth = 32};
    gw_batch_doc_t doc;
    long batches = iters / 50 + 1;
    double w0 = 0, c0 = 0, wall, cpu;

    for (int i = 0; i < 50; i++)
        pbw_bytes(&body, 1, rec, len);
    pbw_uint(&body, 2, 1732500000999ULL);
    pbw_str(&body, 3, "wk_live_0123456789");
    for (long i = -batches / 20; i < batches; i++) {
        if (i == 0) {
            w0 = bench_now_s(CLOCK_MONOTONIC);
            c0 = bench_now_s(CLOCK_PROCESS_CPUTIME_ID);
        }
        if (gw_parse_pb_batch((const char *)body.b, body.n, &lim, bump, NULL, &doc) != SL_ERR_OK ||
            doc.n_events != 50) {
            fprintf(stderr, "batch refused\n");
            exit(1);
        }
    }
    wall = bench_now_s(CLOCK_MONOTONIC) - w0;
    cpu = bench_now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("%-30s %4zu B: %6.1f ns/record (cpu %6.1f)  %10.0f records/s\n",
           "RecordBatch reader, 50 records", body.n, wall * 1e9 / (double)(batches * 50),
           cpu * 1e9 / (double)(batches * 50), (double)(batches * 50) / wall);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 2000000;
    schema_t *avro = bench_load_default_schema("page_view", 1), *pb = load_pb(2);
    uint8_t avro_rec[1024], pb_rec[1024];
    size_t pb_len = pb_record(pb_rec, 2);
    schema_error_t e;
    ssize_t avro_len = schema_encode_json(avro, page_view, strlen(page_view), NULL, avro_rec,
                                          sizeof(avro_rec), &e);

    if (avro_len < 0) {
        fprintf(stderr, "encode: %s\n", e.detail);
        return 1;
    }
    run("Avro page_view", avro, avro_rec, (size_t)avro_len, iters);
    run("Protobuf page_view", pb, pb_rec, pb_len, iters);
    run_batch(pb_rec, pb_len, iters);
    schema_destroy(avro);
    schema_destroy(pb);
    return 0;
}
