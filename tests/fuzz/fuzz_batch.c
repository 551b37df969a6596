/* libFuzzer target for gw_parse_batch (gateway/gw_parse.c), the whole batch parser: the first
 * input byte picks the limits (tiny ones reach the limit paths), the rest is the body. Checks
 * that every slice stays inside the body, limits hold, and a valid envelope really is one. Also
 * built with replay_main.c so ctest replays the corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A bump of separate mallocs (so ASan sees each allocation's bounds), freed after the run. */
typedef struct {
    void **ptrs;
    size_t n, cap;
} arena_t;

static void *arena_alloc(void *actx, size_t n)
{
    arena_t *a = actx;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        if ((a->ptrs = realloc(a->ptrs, a->cap * sizeof(void *))) == NULL)
            abort();
    }
    if ((a->ptrs[a->n] = malloc(n ? n : 1)) == NULL)
        abort();
    return a->ptrs[a->n++];
}

static int inside(const char *p, size_t len, const char *body, size_t body_len)
{
    return p >= body && len <= body_len && (size_t)(p - body) <= body_len - len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t max_events[] = {1, 3, 500, 100000};
    static const size_t max_event_bytes[] = {64, 300, 32 * 1024, 16u << 20};
    static const unsigned depth[] = {4, 8, 32, 256};
    gw_parse_limits_t lim;
    arena_t a = {0};
    gw_batch_doc_t doc;
    char *body;
    size_t len;
    sl_err_t err;

    if (size < 1)
        return 0;
    lim.max_events = max_events[data[0] & 3];
    lim.max_event_bytes = max_event_bytes[(data[0] >> 2) & 3];
    lim.max_depth = depth[(data[0] >> 4) & 3];
    len = size - 1;
    /* exactly the body's bytes: ASan flags any read past them */
    if ((body = malloc(len ? len : 1)) == NULL)
        abort();
    memcpy(body, data + 1, len);

    err = gw_parse_batch(body, len, &lim, arena_alloc, &a, &doc);
    if (err == SL_ERR_OK) {
        CHECK(doc.n_events <= lim.max_events);
        CHECK(doc.write_key == NULL || doc.write_key_len <= len);
        CHECK(doc.sent_at >= 0);
        for (size_t i = 0; i < doc.n_events; i++) {
            const gw_event_t *ev = &doc.events[i];
            CHECK(inside(ev->raw, ev->raw_len, body, len));
            CHECK(ev->raw_len > 0);
            if (ev->err == SL_ERR_OK) {
                CHECK(ev->raw_len <= lim.max_event_bytes);
                CHECK(ev->raw[0] == '{');
                CHECK(ev->event_id != NULL && gw_is_uuid(ev->event_id, ev->event_id_len));
                CHECK(ev->event_type != NULL && ev->event_type_len > 0);
                CHECK(ev->user_id != NULL && ev->user_id_len > 0);
                CHECK(ev->ts >= 0);
            } else {
                CHECK(sl_err_status(ev->err) == 200); /* a per-event code */
                CHECK(ev->err_path != NULL && ev->err_detail != NULL);
            }
        }
    } else {
        int status = sl_err_status(err);
        CHECK(status == 400 || status == 413);
        CHECK(doc.err_detail != NULL);
    }
    for (size_t i = 0; i < a.n; i++)
        free(a.ptrs[i]);
    free(a.ptrs);
    free(body);
    return 0;
}
