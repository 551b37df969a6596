/* Status bucketing for the per-thread metric shards (rendering lives in gw_admin.c). */
#include "gw_int.h"

void gw_metrics_count_status(gw_metrics_t *m, int status)
{
    int idx = GW_STATUS_OTHER;
    switch (status) {
#define GW_STATUS_CASE(s)                                                                          \
    case s:                                                                                        \
        idx = GW_STATUS_##s;                                                                       \
        break;
        GW_STATUS_LIST(GW_STATUS_CASE)
#undef GW_STATUS_CASE
    }
    sl_counter_add(&m->requests[idx], 1);
}
