/* Throughput of the JSON -> Avro transcoder (not a test: prints numbers, asserts only that every
 * event encodes). Compiles the default page_view and api_request schemas from schema/defaults
 * and encodes realistic ~300-byte events; the scan-only line is the floor (sl_json alone).
 *   cmake --preset release && cmake --build --preset release -j2 --target bench_schema
 *   build/release/tests/bench/bench_schema [iterations] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "schema.h"
#include "sl_json.h"

/* page_view, members in schema order, as an SDK would send it (~300 bytes) */
static const char page_view[] =
    "{\"event_id\":\"6f1c2a9e-3b7d-4c8e-9a01-5d2e7f4b8c13\",\"event_type\":\"page_view\","
    "\"ts\":1732500000123,\"user_id\":\"u_8c41f2d07a\",\"session_id\":\"s_1f9e0b7c35d4\","
    "\"page_id\":4242,\"properties\":{\"url\":\"https://shop.example.com/products/"
    "blue-widget?ref=mail\",\"referrer\":\"https://mail.example.net/\","
    "\"title\":\"Blue Widget \\u2013 Shop\",\"latency_ms\":182}}";

/* the same event with members in another order, an optional member omitted and the envelope's
 * schema_version (skipped): the reassembly path */
static const char page_view_shuffled[] =
    "{\"schema_version\":1,\"properties\":{\"latency_ms\":182,\"title\":\"Blue Widget \\u2013 "
    "Shop\",\"url\":\"https://shop.example.com/products/blue-widget?ref=mail\","
    "\"referrer\":\"https://mail.example.net/\"},\"user_id\":\"u_8c41f2d07a\","
    "\"ts\":1732500000123,\"event_type\":\"page_view\","
    "\"event_id\":\"6f1c2a9e-3b7d-4c8e-9a01-5d2e7f4b8c13\",\"page_id\":4242}";

static const char api_request[] =
    "{\"event_id\":\"0a7d3c55-91e2-4f0b-b6a8-3e9d1c2f4a77\",\"event_type\":\"api_request\","
    "\"ts\":1732500000456,\"user_id\":\"svc_checkout_7f3a\",\"session_id\":null,"
    "\"page_id\":null,\"properties\":{\"endpoint\":\"/v2/carts/8c41f2d07a/items\","
    "\"method\":\"POST\",\"status\":201,\"latency_ms\":12.875}}";

static size_t scan_only(const char *doc, size_t len)
{
    sl_json_t j;
    size_t tokens = 0;
    sl_json_init(&j, doc, len, SCHEMA_MAX_DEPTH);
    while (sl_json_next(&j) > SL_JSON_END)
        tokens++;
    return tokens;
}

static void run(const char *name, const schema_t *s, const char *doc, long iters)
{
    static const char *const skip_names[] = {"schema_version"};
    const schema_skip_t skip = {skip_names, 1};
    size_t len = strlen(doc), sink = 0;
    uint8_t out[2048];
    schema_error_t e;
    ssize_t n = s ? schema_encode_json(s, doc, len, &skip, out, sizeof(out), &e) : 0;
    double w0, c0, wall, cpu;

    if (n < 0) {
        fprintf(stderr, "%s: %s at %s: %s\n", name, sl_err_code(e.code), e.path, e.detail);
        exit(1);
    }
    for (long i = 0; i < iters / 20; i++) /* warm-up */
        sink += s ? (size_t)schema_encode_json(s, doc, len, &skip, out, sizeof(out), &e)
                  : scan_only(doc, len);
    w0 = bench_now_s(CLOCK_MONOTONIC);
    c0 = bench_now_s(CLOCK_PROCESS_CPUTIME_ID);
    for (long i = 0; i < iters; i++)
        sink += s ? (size_t)schema_encode_json(s, doc, len, &skip, out, sizeof(out), &e)
                  : scan_only(doc, len);
    wall = bench_now_s(CLOCK_MONOTONIC) - w0;
    cpu = bench_now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("%-34s %4zu B JSON -> %3zd B Avro: %6.1f ns/event (cpu %6.1f)  %9.0f events/s  [%zu]\n",
           name, len, n, wall * 1e9 / (double)iters, cpu * 1e9 / (double)iters,
           (double)iters / wall, sink % 7);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 2000000;
    schema_t *pv = bench_load_default_schema("page_view", 1),
             *api = bench_load_default_schema("api_request", 5);

    run("sl_json scan only (page_view)", NULL, page_view, iters);
    run("page_view, schema order", pv, page_view, iters);
    run("page_view, shuffled + skip", pv, page_view_shuffled, iters);
    run("api_request (double, nulls)", api, api_request, iters);
    schema_destroy(pv);
    schema_destroy(api);
    return 0;
}
