/* Which dead letters a command looks at (--code, --tenant, --since, --until) and which of those
 * `replay` takes. */
#include <stdint.h>
#include <string.h>

#include "dlq.h"

void dlq_filter_init(dlq_filter_t *f)
{
    memset(f, 0, sizeof(*f));
    f->since_ms = INT64_MIN;
    f->until_ms = INT64_MAX;
}

int dlq_filter_add_code(dlq_filter_t *f, const char *code)
{
    if (f->n_codes == DLQ_MAX_FILTER_VALUES)
        return -1;
    f->codes[f->n_codes++] = code;
    return 0;
}

int dlq_filter_add_tenant(dlq_filter_t *f, const char *tenant)
{
    if (f->n_tenants == DLQ_MAX_FILTER_VALUES)
        return -1;
    f->tenants[f->n_tenants++] = tenant;
    return 0;
}

static int one_of(const char *v, const char *const *set, size_t n)
{
    if (n == 0)
        return 1;
    if (v == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, set[i]) == 0)
            return 1;
    return 0;
}

int dlq_filter_match(const dlq_filter_t *f, const dlq_letter_t *l)
{
    if (!one_of(l->code, f->codes, f->n_codes) || !one_of(l->tenant, f->tenants, f->n_tenants))
        return 0;
    /* a letter without a timestamp cannot be placed in a window, so a window excludes it */
    if (f->since_ms != INT64_MIN && (l->timestamp < 0 || l->timestamp < f->since_ms))
        return 0;
    if (f->until_ms != INT64_MAX && (l->timestamp < 0 || l->timestamp > f->until_ms))
        return 0;
    return 1;
}

int dlq_replay_selects(const dlq_letter_t *l, int all_codes)
{
    /* a parse-stage letter is a whole request body (400): there is no event in it to resend */
    if (l->stage != NULL && strcmp(l->stage, "parse") == 0)
        return 0;
    return all_codes || l->retryable == 1;
}
