/* Throughput check for the JSON scanner (not a test: prints numbers, asserts only correctness).
 * Built as the bench_json target (build/release/tests/bench/bench_json), or standalone:
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Icommon common/sl_json.c tests/bench/bench_json.c \
 *       -o /tmp/bench_json && /tmp/bench_json [iterations] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_json.h"

/* A typical analytics event: envelope plus a small properties object, ~300 bytes. */
static const char event[] =
    "{\"event_id\":\"6f1c2a9e-3b7d-4c8e-9a01-5d2e7f4b8c13\",\"event_type\":\"page_view\","
    "\"ts\":1732500000123,\"user_id\":\"u_8c41f2d07a\",\"session_id\":\"s_1f9e0b7c35d4\","
    "\"page_id\":\"p_home_v2\",\"properties\":{\"url\":\"https://shop.example.com/products/"
    "blue-widget?ref=mail\",\"referrer\":\"https://mail.example.net/\","
    "\"title\":\"Blue Widget \\u2013 Shop\",\"latency_ms\":182}}";

/* The same shape with non-ASCII text and escapes, which leave the 8-byte fast path. */
static const char event_utf8[] =
    "{\"event_id\":\"6f1c2a9e-3b7d-4c8e-9a01-5d2e7f4b8c13\",\"event_type\":\"page_view\","
    "\"ts\":1732500000123,\"user_id\":\"u_8c41f2d07a\",\"session_id\":\"s_1f9e0b7c35d4\","
    "\"page_id\":\"p_home_v2\",\"properties\":{\"url\":\"https://shop.example.jp/\xE5\x95\x86"
    "\xE5\x93\x81/\xE9\x9D\x92\",\"referrer\":\"https://mail.example.net/\","
    "\"title\":\"Caf\xC3\xA9 \xE2\x80\x94 \xE9\x9D\x92\xE3\x81\x84\xE3\x82\xA6\xE3\x82\xA3\xE3"
    "\x82\xB8\xE3\x82\xA7\xE3\x83\x83\xE3\x83\x88 \\\"best\\\" \xF0\x9F\x98\x80\","
    "\"latency_ms\":182}}";

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Scans doc n times; returns the token count of one pass (0 if the document is invalid). */
static size_t scan_once(const char *doc, size_t len)
{
    sl_json_t j;
    sl_json_tok_t t;
    size_t tokens = 0;
    sl_json_init(&j, doc, len, 64);
    while ((t = sl_json_next(&j)) > SL_JSON_END)
        tokens++;
    return t == SL_JSON_END ? tokens : 0;
}

static void run(const char *name, const char *doc, size_t len, long iters, size_t events_per_doc)
{
    size_t tokens = scan_once(doc, len), total = 0;
    double w0, c0, wall, cpu;
    if (tokens == 0) {
        fprintf(stderr, "%s: document does not scan\n", name);
        exit(1);
    }
    for (long i = 0; i < iters / 20; i++) /* warm-up */
        total += scan_once(doc, len);
    w0 = now_s(CLOCK_MONOTONIC);
    c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    for (long i = 0; i < iters; i++)
        total += scan_once(doc, len);
    wall = now_s(CLOCK_MONOTONIC) - w0;
    cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("%-22s %6zu bytes %4zu tokens: %7.1f ns/event (cpu %7.1f)  %7.0f MB/s  "
           "%5.2f ns/token  [%zu]\n",
           name, len, tokens, wall * 1e9 / ((double)iters * events_per_doc),
           cpu * 1e9 / ((double)iters * events_per_doc), (double)len * iters / wall / 1e6,
           wall * 1e9 / ((double)iters * tokens), total % 7);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 2000000;
    size_t ev_len = sizeof(event) - 1, blen = 0;
    char *batch = malloc(64 + 50 * (ev_len + 1));

    if (!batch)
        return 1;
    memcpy(batch + blen, "{\"write_key\":\"wk_live_123\",\"events\":[", 37);
    blen += 37;
    for (int i = 0; i < 50; i++) {
        if (i)
            batch[blen++] = ',';
        memcpy(batch + blen, event, ev_len);
        blen += ev_len;
    }
    memcpy(batch + blen, "]}", 2);
    blen += 2;

    run("event (ASCII)", event, ev_len, iters, 1);
    run("event (UTF-8, escapes)", event_utf8, sizeof(event_utf8) - 1, iters, 1);
    run("batch of 50 events", batch, blen, iters / 50, 50);
    free(batch);
    return 0;
}
