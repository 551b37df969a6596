/* SDK-shaped batches: events of the default schemas (API.md) with valid properties, ~250-350
 * bytes each, fresh UUIDv4 ids, users from a skewed pool; a share made invalid on purpose.
 * Every generated event goes into the worker's ledger here. */
#include <stdlib.h>
#include <string.h>

#include "lg_int.h"

enum { INV_NONE, INV_UUID, INV_TS_STRING, INV_NO_USER, INV__COUNT };

#define PICK(r, arr) (arr[lg_rng_below((r), sizeof(arr) / sizeof(arr[0]))])

static const char *const categories[] = {"shoes", "jackets", "kitchen", "garden",   "books",
                                         "toys",  "laptops", "audio",   "lighting", "sports"};
static const char *const refs[] = {"home", "search", "email", "ads", "social", "related"};
static const char *const referrers[] = {
    "https://www.google.com/search?q=best+running+shoes",
    "https://www.example-news.com/articles/spring-sale-2026",
    "https://t.co/x7Yq2LmP0a",
    "https://www.facebook.com/",
    "https://duckduckgo.com/?q=winter+jacket+sale",
};
static const char *const pages[] = {"/",
                                    "/pricing",
                                    "/signup",
                                    "/cart",
                                    "/checkout/shipping",
                                    "/account/orders",
                                    "/help/returns",
                                    "/blog/spring-lookbook"};
static const char *const elements[] = {"button#cta-signup",  "a.nav-link[data-id=pricing]",
                                       "button.add-to-cart", "img.product-hero",
                                       "div.carousel-next",  "a.footer-link[data-id=careers]"};
static const char *const endpoints[] = {"/api/v2/orders",
                                        "/api/v2/orders/{id}",
                                        "/api/v2/products",
                                        "/api/v2/cart/items",
                                        "/api/v2/users/{id}/preferences",
                                        "/api/v2/search"};
static const char *const methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
static const char *const currencies[] = {"EUR", "USD", "GBP", "CHF", "SEK"};

static void put(lg_buf_t *b, const char *s)
{
    lg_buf_append(b, s, strlen(s));
}

static void put_padded(lg_buf_t *b, uint64_t v, int width)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    lg_buf_reserve(b, (size_t)(width > n ? width : n));
    for (int i = n; i < width; i++)
        b->data[b->len++] = '0';
    while (n > 0)
        b->data[b->len++] = tmp[--n];
}

static void put_hex(lg_buf_t *b, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    lg_buf_reserve(b, (size_t)digits);
    for (int i = digits - 1; i >= 0; i--)
        b->data[b->len++] = hex[(v >> (4 * i)) & 15];
}

static void props_page_view(lg_buf_t *b, lg_rng_t *r)
{
    const char *cat = PICK(r, categories);
    uint32_t item = lg_rng_below(r, 90000) + 1000;
    LG_BUF_LIT(b, "{\"url\":\"/products/");
    put(b, cat);
    LG_BUF_LIT(b, "/item-");
    lg_buf_put_u64(b, item);
    LG_BUF_LIT(b, "?ref=");
    put(b, PICK(r, refs));
    if (lg_rng_below(r, 3) == 0) {
        LG_BUF_LIT(b, "\",\"referrer\":null");
    } else {
        LG_BUF_LIT(b, "\",\"referrer\":\"");
        put(b, PICK(r, referrers));
        LG_BUF_LIT(b, "\"");
    }
    LG_BUF_LIT(b, ",\"title\":\"Item ");
    lg_buf_put_u64(b, item);
    LG_BUF_LIT(b, " - ");
    put(b, cat);
    LG_BUF_LIT(b, " - Example Shop\",\"latency_ms\":");
    lg_buf_put_u64(b, 20 + lg_rng_below(r, 900));
    LG_BUF_LIT(b, "}");
}

static void props_click(lg_buf_t *b, lg_rng_t *r)
{
    LG_BUF_LIT(b, "{\"url\":\"");
    put(b, PICK(r, pages));
    LG_BUF_LIT(b, "?utm_source=newsletter&utm_campaign=spring\",\"element\":\"");
    put(b, PICK(r, elements));
    if (lg_rng_below(r, 5) == 0) {
        LG_BUF_LIT(b, "\",\"x\":null,\"y\":null}");
        return;
    }
    LG_BUF_LIT(b, "\",\"x\":");
    lg_buf_put_u64(b, lg_rng_below(r, 1920));
    LG_BUF_LIT(b, ",\"y\":");
    lg_buf_put_u64(b, lg_rng_below(r, 4000));
    LG_BUF_LIT(b, "}");
}

static void props_add_to_cart(lg_buf_t *b, lg_rng_t *r)
{
    LG_BUF_LIT(b, "{\"product_id\":\"sku-");
    put(b, PICK(r, categories));
    LG_BUF_LIT(b, "-");
    put_padded(b, lg_rng_below(r, 1000000), 7);
    LG_BUF_LIT(b, "\",\"quantity\":");
    lg_buf_put_u64(b, 1 + lg_rng_below(r, 4));
    LG_BUF_LIT(b, ",\"price_cents\":");
    lg_buf_put_u64(b, 199 + lg_rng_below(r, 50000));
    LG_BUF_LIT(b, "}");
}

static void props_purchase(lg_buf_t *b, lg_rng_t *r)
{
    LG_BUF_LIT(b, "{\"order_id\":\"ord-");
    put_hex(b, lg_rng_next(r), 16);
    LG_BUF_LIT(b, "-");
    put_hex(b, lg_rng_next(r), 8);
    LG_BUF_LIT(b, "\",\"revenue_cents\":");
    lg_buf_put_u64(b, 999 + lg_rng_below(r, 250000));
    LG_BUF_LIT(b, ",\"currency\":\"");
    put(b, PICK(r, currencies));
    LG_BUF_LIT(b, "\"}");
}

static void props_api_request(lg_buf_t *b, lg_rng_t *r)
{
    static const uint32_t statuses[] = {200, 200, 200, 200, 201, 204, 304, 400, 404, 500};
    uint32_t lat = 150 + lg_rng_below(r, 60000); /* hundredths of a millisecond */
    LG_BUF_LIT(b, "{\"endpoint\":\"");
    put(b, PICK(r, endpoints));
    LG_BUF_LIT(b, "\",\"method\":\"");
    put(b, PICK(r, methods));
    LG_BUF_LIT(b, "\",\"status\":");
    lg_buf_put_u64(b, PICK(r, statuses));
    LG_BUF_LIT(b, ",\"latency_ms\":");
    lg_buf_put_u64(b, lat / 100);
    LG_BUF_LIT(b, ".");
    put_padded(b, lat % 100, 2);
    LG_BUF_LIT(b, "}");
}

/* The mix: page_view 45%, click 25%, api_request 15%, add_to_cart 10%, purchase 5%. */
static void put_event(lg_buf_t *b, lg_rng_t *r, const lg_id_t *id, uint32_t user, int64_t now_ms,
                      int invalid)
{
    uint32_t roll = lg_rng_below(r, 100);
    const char *type;
    void (*props)(lg_buf_t *, lg_rng_t *);
    int64_t ts = now_ms - (int64_t)lg_rng_below(r, 5000);
    char uuid[36];

    if (roll < 45)
        type = "page_view", props = props_page_view;
    else if (roll < 70)
        type = "click", props = props_click;
    else if (roll < 85)
        type = "api_request", props = props_api_request;
    else if (roll < 95)
        type = "add_to_cart", props = props_add_to_cart;
    else
        type = "purchase", props = props_purchase;

    lg_uuid_format(id, uuid);
    LG_BUF_LIT(b, "{\"event_id\":\"");
    if (invalid == INV_UUID) { /* the 32 hex digits without dashes: not a UUID to the gateway */
        for (int i = 0; i < 36; i++)
            if (uuid[i] != '-')
                lg_buf_append(b, &uuid[i], 1);
    } else {
        lg_buf_append(b, uuid, 36);
    }
    LG_BUF_LIT(b, "\",\"event_type\":\"");
    put(b, type);
    put(b, invalid == INV_TS_STRING ? "\",\"ts\":\"" : "\",\"ts\":");
    lg_buf_put_u64(b, (uint64_t)ts);
    if (invalid == INV_TS_STRING)
        LG_BUF_LIT(b, "\"");
    if (invalid != INV_NO_USER) {
        LG_BUF_LIT(b, ",\"user_id\":\"user-");
        put_padded(b, user, 7);
        LG_BUF_LIT(b, "\"");
    }
    /* one session per user and half hour */
    LG_BUF_LIT(b, ",\"session_id\":\"sess-");
    put_padded(b, user, 7);
    LG_BUF_LIT(b, "-");
    put_hex(b, (uint64_t)(now_ms / 1800000) * 2654435761u + user, 8);
    if (lg_rng_below(r, 4) == 0) {
        LG_BUF_LIT(b, "\",\"page_id\":null");
    } else {
        LG_BUF_LIT(b, "\",\"page_id\":");
        lg_buf_put_u64(b, 100000 + lg_rng_below(r, 900000));
    }
    LG_BUF_LIT(b, ",\"properties\":");
    props(b, r);
    LG_BUF_LIT(b, "}");
}

/* Body, ids and offsets in one allocation; json and wire are separate. */
static lg_body_t *body_new(size_t n)
{
    lg_body_t *body = lg_xcalloc(1, sizeof(*body) + n * 3 * sizeof(uint32_t));
    body->refs = 1;
    body->n = (uint16_t)n;
    body->idx = (uint32_t *)(body + 1);
    body->ev_off = body->idx + n;
    body->ev_len = body->ev_off + n;
    return body;
}

/* Sets wire: the JSON itself, or its gzip (one reusable deflate stream per worker). */
static void body_finish(lg_worker_t *w, lg_body_t *body)
{
    const lg_conf_t *conf = w->conf;
    lg_buf_t *z = &w->scratch;

    if (!conf->is_gzip) {
        body->wire = body->json;
        body->wire_len = body->json_len;
        return;
    }
    if (!w->has_z) {
        if (deflateInit2(&w->z, conf->gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK)
            abort();
        w->has_z = 1;
    } else {
        deflateReset(&w->z);
    }
    z->len = 0;
    lg_buf_reserve(z, deflateBound(&w->z, body->json_len));
    w->z.next_in = (Bytef *)body->json;
    w->z.avail_in = (uInt)body->json_len;
    w->z.next_out = (Bytef *)z->data;
    w->z.avail_out = (uInt)z->cap;
    if (deflate(&w->z, Z_FINISH) != Z_STREAM_END)
        abort(); /* cannot happen with deflateBound's room */
    body->wire_len = z->cap - w->z.avail_out;
    body->wire = lg_xmalloc(body->wire_len);
    memcpy(body->wire, z->data, body->wire_len);
}

lg_body_t *lg_body_generate(lg_worker_t *w, int tenant)
{
    const lg_conf_t *conf = w->conf;
    size_t n = (size_t)conf->batch_size;
    lg_body_t *body = body_new(n);
    lg_buf_t b = {0};
    int64_t now_ms = lg_wall_ms();

    body->tenant = (uint8_t)tenant;
    lg_buf_reserve(&b, 32 + n * 400);
    LG_BUF_LIT(&b, "{\"sent_at\":");
    lg_buf_put_u64(&b, (uint64_t)now_ms);
    LG_BUF_LIT(&b, ",\"events\":[");
    for (size_t i = 0; i < n; i++) {
        double x = lg_rng_unit(&w->rng);
        /* skewed: a few users send most events */
        uint32_t user = (uint32_t)((double)conf->users * x * x);
        int invalid = INV_NONE;
        lg_entry_t *e;
        lg_id_t id;

        if (conf->invalid_pct > 0 && lg_rng_unit(&w->rng) * 100.0 < conf->invalid_pct)
            invalid = 1 + (int)lg_rng_below(&w->rng, INV__COUNT - 1);
        lg_uuid_v4(&w->rng, &id);
        body->idx[i] = lg_ledger_add(&w->ledger, &e);
        e->id = id;
        e->l.user = user;
        e->l.tenant = (uint8_t)tenant;
        if (invalid != INV_NONE) {
            e->l.flags |= LG_F_MADE_INVALID;
            w->st.events_invalid++;
        }
        if (i > 0)
            LG_BUF_LIT(&b, ",");
        body->ev_off[i] = (uint32_t)b.len;
        put_event(&b, &w->rng, &id, user, now_ms, invalid);
        body->ev_len[i] = (uint32_t)(b.len - body->ev_off[i]);
    }
    LG_BUF_LIT(&b, "]}");
    body->json = b.data;
    body->json_len = b.len;
    body_finish(w, body);
    w->st.batches++;
    w->st.events += n;
    return body;
}

lg_body_t *lg_body_from_events(lg_worker_t *w, int tenant, const uint32_t *idx, char *const *events,
                               const uint32_t *lens, size_t n)
{
    lg_body_t *body = body_new(n);
    lg_buf_t b = {0};

    body->tenant = (uint8_t)tenant;
    lg_buf_reserve(&b, 32 + n * 400);
    LG_BUF_LIT(&b, "{\"sent_at\":");
    lg_buf_put_u64(&b, (uint64_t)lg_wall_ms());
    LG_BUF_LIT(&b, ",\"events\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            LG_BUF_LIT(&b, ",");
        body->idx[i] = idx[i];
        body->ev_off[i] = (uint32_t)b.len;
        body->ev_len[i] = lens[i];
        lg_buf_append(&b, events[i], lens[i]);
    }
    LG_BUF_LIT(&b, "]}");
    body->json = b.data;
    body->json_len = b.len;
    body_finish(w, body);
    return body;
}

void lg_body_release(lg_body_t *body)
{
    if (body == NULL || --body->refs > 0)
        return;
    if (body->wire != body->json)
        free(body->wire);
    free(body->json);
    free(body);
}
