/* Backpressure: global saturation signals read before a body is parsed, so shedding costs a few
 * atomic loads and a 429. Per-tenant rates are gw_rate_t (gw_auth.c). See gateway/README.md,
 * "Backpressure". */
#include "gw_int.h"

const char *gw_shed_name(gw_shed_t cause)
{
    static const char *const names[GW_SHED__COUNT] = {
        "none",
#define GW_SHED_NAME(e, name) name,
        GW_SHED_LIST(GW_SHED_NAME)
#undef GW_SHED_NAME
    };
    return cause < GW_SHED__COUNT ? names[cause] : "unknown";
}

gw_shed_t gw_admit_pipeline(gw_server_t *srv)
{
    const gw_config_t *gc = srv->gc;
    int64_t messages;

    /* events admitted and not answered bound the latency of everything behind them (Little's
     * law): the first signal to trip when Redis, Kafka or our own CPU cannot keep up */
    if (atomic_load_explicit(&srv->inflight_events, memory_order_relaxed) >=
        gc->bp_max_inflight_events)
        return GW_SHED_INFLIGHT_EVENTS;
    messages = atomic_load_explicit(&srv->kq_messages, memory_order_relaxed);
    if (messages >= gc->bp_queue_max_messages)
        return GW_SHED_QUEUE_MESSAGES;
    if (atomic_load_explicit(&srv->kq_bytes, memory_order_relaxed) >=
        (int64_t)gc->bp_queue_max_bytes)
        return GW_SHED_QUEUE_BYTES;
    /* a slow Kafka with a short queue: the smoothed delivery time says so. Only while something
     * is queued: with nothing in flight no new sample can arrive to lower the average. */
    if (messages > 0 && atomic_load_explicit(&srv->delivery_ewma_us, memory_order_relaxed) >
                            (uint64_t)gc->bp_max_delivery_latency_ms * 1000)
        return GW_SHED_DELIVERY_LATENCY;
    return GW_SHED_NONE;
}

/* Starts a new one-second window when the current one is over: the Retry-After for the next
 * second is demand / capacity of the last one (batches asked for / batches taken) times
 * gateway.retry_after. A client told so comes back when, at the same demand, there would be
 * room for it. Whoever swaps the window start does the roll; the others keep counting. */
static void window_roll(gw_server_t *srv, int64_t now_ns)
{
    int64_t start = atomic_load_explicit(&srv->window_start_ns, memory_order_relaxed);
    int64_t admitted, shed_n, ra;

    if (now_ns - start < 1000000000LL ||
        !atomic_compare_exchange_strong(&srv->window_start_ns, &start, now_ns))
        return;
    admitted = atomic_exchange(&srv->window_admitted, 0);
    shed_n = atomic_exchange(&srv->window_shed, 0);
    ra = srv->gc->retry_after_s;
    if (shed_n > 0)
        ra = (ra * (admitted + shed_n) + (admitted > 0 ? admitted : 1) - 1) /
             (admitted > 0 ? admitted : 1);
    if (ra > srv->gc->bp_max_retry_after_s)
        ra = srv->gc->bp_max_retry_after_s;
    atomic_store_explicit(&srv->retry_after_s, (int)ra, memory_order_relaxed);
}

void gw_admit_enter(gw_server_t *srv, int64_t events)
{
    atomic_fetch_add_explicit(&srv->inflight_events, events, memory_order_relaxed);
    atomic_fetch_add_explicit(&srv->window_admitted, 1, memory_order_relaxed);
}

int gw_admit_shed(gw_server_t *srv, int64_t now_ns)
{
    static _Thread_local uint64_t rng = 0x9e3779b97f4a7c15ULL;
    int ra;

    window_roll(srv, now_ns);
    atomic_fetch_add_explicit(&srv->window_shed, 1, memory_order_relaxed);
    ra = atomic_load_explicit(&srv->retry_after_s, memory_order_relaxed);
    if (ra < srv->gc->retry_after_s)
        ra = (int)srv->gc->retry_after_s;
    if (ra > 1) {
        /* spread uniformly over [1, 2 ra - 1]: the same mean, but clients told together come
         * back spread out, so the pipeline is fed all along instead of in waves (a pause that
         * ends for everybody at once leaves the gateway idle, then floods it again); xorshift,
         * statistics only */
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        ra = 1 + (int)(rng % (uint64_t)(2 * ra - 1));
    }
    return ra;
}

void gw_admit_produced(gw_server_t *srv, int64_t messages, int64_t bytes)
{
    atomic_fetch_add_explicit(&srv->kq_messages, messages, memory_order_relaxed);
    atomic_fetch_add_explicit(&srv->kq_bytes, bytes, memory_order_relaxed);
}

void gw_admit_leave(gw_server_t *srv, int64_t events, int64_t messages, int64_t bytes,
                    uint64_t delivery_us)
{
    atomic_fetch_sub_explicit(&srv->inflight_events, events, memory_order_relaxed);
    if (messages == 0)
        return;
    atomic_fetch_sub_explicit(&srv->kq_messages, messages, memory_order_relaxed);
    atomic_fetch_sub_explicit(&srv->kq_bytes, bytes, memory_order_relaxed);
    /* EWMA with weight 1/8; concurrent updates may lose a sample, which an average tolerates */
    uint64_t old = atomic_load_explicit(&srv->delivery_ewma_us, memory_order_relaxed);
    atomic_store_explicit(&srv->delivery_ewma_us,
                          old - old / 8 + delivery_us / 8, memory_order_relaxed);
}
