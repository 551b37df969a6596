/* Token bucket for `replay --rate`: at most rate events/s on average, bursts up to the bucket. */
#include "dlq.h"

void dlq_bucket_init(dlq_bucket_t *b, double rate_per_s, double burst, int64_t now_us)
{
    b->rate_per_s = rate_per_s;
    b->burst = burst >= 1 ? burst : 1;
    b->tokens = b->burst;
    b->last_us = now_us;
}

int64_t dlq_bucket_take(dlq_bucket_t *b, double n, int64_t now_us)
{
    if (b->rate_per_s <= 0)
        return 0;
    if (n > b->burst)
        n = b->burst;
    /* a clock that went backwards refills nothing rather than draining the bucket */
    if (now_us > b->last_us) {
        b->tokens += (double)(now_us - b->last_us) * b->rate_per_s / 1e6;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last_us = now_us;
    }
    if (b->tokens >= n) {
        b->tokens -= n;
        return 0;
    }
    int64_t wait_us = (int64_t)((n - b->tokens) * 1e6 / b->rate_per_s);
    return wait_us > 0 ? wait_us : 1;
}
