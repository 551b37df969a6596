/* The audit: a Kafka consumer on its own thread reads `events` and `events.dlq` WHILE the run
 * goes on (the dev broker keeps only ~5 MiB per partition), from the high watermarks they had
 * before the first batch, counting each event_id header; after the run it catches up to the
 * high watermarks, waits for a quiet period, and the counts are compared with the workers'
 * ledgers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "lg_int.h"

#define BATCH 2048
#define CHECK_NS 250000000u

typedef struct {
    int64_t next; /* next offset we expect to read; starts at the high watermark the partition
                   * had when the audit started (what is below is older than the run) */
} part_t;

struct lg_audit {
    const lg_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    pthread_t thr;
    int has_thread;
    atomic_int is_finishing;
    uint64_t finish_ns, last_msg_ns, caught_up_ns;
    const char *topics[2];
    part_t *parts[2];
    int n_parts[2];
    lg_idmap_t seen;
    uint64_t records[2], without_id[2], errors;
    int is_complete;
    char why[200];
};

static void incomplete(lg_audit_t *a, const char *why)
{
    if (a->is_complete) {
        a->is_complete = 0;
        snprintf(a->why, sizeof(a->why), "%s", why);
        fprintf(stderr, "sluice-load: audit incomplete: %s\n", why);
    }
}

static int tenant_index(const lg_conf_t *conf, const void *v, size_t n)
{
    for (int i = 0; i < conf->n_tenants; i++)
        if (strlen(conf->tenants[i].tenant) == n && memcmp(conf->tenants[i].tenant, v, n) == 0)
            return i;
    return 255;
}

/* librdkafka's own log: errors only, and a few of them. Offset resets are warnings we detect
 * ourselves (a gap in the offsets). */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    static atomic_int n;
    if (level <= 3 && atomic_fetch_add(&n, 1) < 5)
        fprintf(stderr, "sluice-load: audit consumer: %s: %s\n", fac, buf);
}

/* The id this tool wrote into an event's JSON, valid UUID or not ("event_id":"…"). */
static int id_from_value(const void *value, size_t len, lg_id_t *id)
{
    static const char key[] = "\"event_id\":\"";
    const char *p = memmem(value, len, key, sizeof(key) - 1), *end;
    if (p == NULL)
        return -1;
    p += sizeof(key) - 1;
    end = memchr(p, '"', len - (size_t)(p - (const char *)value));
    return end != NULL ? lg_uuid_parse(p, (size_t)(end - p), id) : -1;
}

static void on_message(lg_audit_t *a, rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hdrs;
    const void *v;
    size_t n;
    int t, is_new;
    part_t *p;
    lg_id_t id;
    lg_entry_t *e;

    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return;
        if (m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
            m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
            incomplete(a, "the broker dropped records before they were read (consumer behind)");
            return;
        }
        if (a->errors++ < 5)
            fprintf(stderr, "sluice-load: audit consumer: %s\n", rd_kafka_message_errstr(m));
        return;
    }
    t = strcmp(rd_kafka_topic_name(m->rkt), a->topics[0]) == 0 ? 0 : 1;
    if (m->partition < 0 || m->partition >= a->n_parts[t])
        return;
    p = &a->parts[t][m->partition];
    /* a gap: records written during the run that we never saw */
    if (m->offset > p->next)
        incomplete(a, "offsets skipped: the broker dropped records before they were read");
    if (m->offset + 1 > p->next)
        p->next = m->offset + 1;
    a->records[t]++;
    a->last_msg_ns = lg_now_ns();
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        hdrs = NULL;
    if (hdrs == NULL ||
        rd_kafka_header_get_last(hdrs, "event_id", &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        v == NULL || lg_uuid_parse(v, n, &id) != 0) {
        /* a dead letter whose id is not a UUID has no event_id header: its value is the event */
        if (t != 1 || id_from_value(m->payload, m->len, &id) != 0) {
            a->without_id[t]++;
            return;
        }
    }
    if ((e = lg_idmap_put(&a->seen, &id, &is_new)) == NULL) {
        a->without_id[t]++;
        return;
    }
    if (is_new) {
        e->a.tenant = 255;
        if (hdrs != NULL &&
            rd_kafka_header_get_last(hdrs, "tenant", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            v != NULL)
            e->a.tenant = (uint8_t)tenant_index(a->conf, v, n);
    }
    if (t == 0 && e->a.n_events < UINT16_MAX)
        e->a.n_events++;
    else if (t == 1 && e->a.n_dlq < UINT16_MAX)
        e->a.n_dlq++;
}

/* Read up to every partition's high watermark? */
static int is_caught_up(lg_audit_t *a)
{
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < a->n_parts[t]; i++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(a->rk, a->topics[t], i, &lo, &hi, 2000) !=
                RD_KAFKA_RESP_ERR_NO_ERROR)
                return 0;
            if (a->parts[t][i].next < hi)
                return 0;
        }
    return 1;
}

static void *audit_main(void *arg)
{
    lg_audit_t *a = arg;
    rd_kafka_message_t *msgs[BATCH];
    uint64_t next_check = 0;

    for (;;) {
        ssize_t n = rd_kafka_consume_batch_queue(a->q, 100, msgs, BATCH);
        uint64_t now;
        for (ssize_t i = 0; i < n; i++) {
            on_message(a, msgs[i]);
            rd_kafka_message_destroy(msgs[i]);
        }
        if (!atomic_load(&a->is_finishing) || n == BATCH)
            continue;
        now = lg_now_ns();
        if (now - a->finish_ns > (uint64_t)a->conf->audit_timeout_ms * 1000000u) {
            incomplete(a, "timed out catching up with the topics (--audit-timeout-ms)");
            break;
        }
        if (now < next_check)
            continue;
        next_check = now + CHECK_NS;
        if (!is_caught_up(a)) {
            a->caught_up_ns = 0;
            continue;
        }
        if (a->caught_up_ns == 0)
            a->caught_up_ns = now;
        /* caught up, and nothing new for the quiet period (a late write would show) */
        if (now - a->caught_up_ns >= (uint64_t)a->conf->audit_quiet_ms * 1000000u &&
            now - a->last_msg_ns >= (uint64_t)a->conf->audit_quiet_ms * 1000000u)
            break;
    }
    return NULL;
}

static int topic_partitions(lg_audit_t *a, int t, char *errbuf, size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(a->rk, a->topics[t], NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int n = -1;

    err = rd_kafka_metadata(a->rk, 0, rkt, &md, 10000);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err == 0)
        n = md->topics[0].partition_cnt;
    else
        snprintf(errbuf, errlen, "topic %s: %s", a->topics[t],
                 rd_kafka_err2str(err != 0             ? err
                                  : md->topic_cnt == 1 ? md->topics[0].err
                                                       : err));
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (n <= 0)
        return -1;
    a->n_parts[t] = n;
    a->parts[t] = lg_xcalloc((size_t)n, sizeof(part_t));
    for (int i = 0; i < n; i++) {
        int64_t lo, hi;
        err = rd_kafka_query_watermark_offsets(a->rk, a->topics[t], i, &lo, &hi, 10000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errbuf, errlen, "watermarks of %s/%d: %s", a->topics[t], i,
                     rd_kafka_err2str(err));
            return -1;
        }
        a->parts[t][i].next = hi;
    }
    return 0;
}

lg_audit_t *lg_audit_start(const lg_conf_t *conf, char *errbuf, size_t errlen)
{
    lg_audit_t *a = lg_xcalloc(1, sizeof(*a));
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = NULL;
    char group[64];
    const char *settings[][2] = {
        {"bootstrap.servers", conf->kafka},
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"}, /* a gap then shows in the offsets */
        {"fetch.wait.max.ms", "50"},
        {"max.partition.fetch.bytes", "8388608"},
        {"queued.max.messages.kbytes", "262144"},
    };

    a->conf = conf;
    a->topics[0] = conf->topic;
    a->topics[1] = conf->dlq_topic;
    a->is_complete = 1;
    lg_idmap_init(&a->seen, 1u << 20);
    snprintf(group, sizeof(group), "sluice-load-audit-%ld", (long)getpid());
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (rd_kafka_conf_set(kc, settings[i][0], settings[i][1], errbuf, errlen) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(kc);
            goto Fail;
        }
    rd_kafka_conf_set_log_cb(kc, on_log);
    a->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errbuf, errlen); /* owns kc on success */
    if (a->rk == NULL) {
        rd_kafka_conf_destroy(kc);
        goto Fail;
    }
    if (topic_partitions(a, 0, errbuf, errlen) != 0 || topic_partitions(a, 1, errbuf, errlen) != 0)
        goto Fail;
    parts = rd_kafka_topic_partition_list_new(a->n_parts[0] + a->n_parts[1]);
    /* every record of the run comes after the high watermark read above: start there, not
     * at the beginning (on a busy broker, reading old records first would fall behind) */
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < a->n_parts[t]; i++)
            rd_kafka_topic_partition_list_add(parts, a->topics[t], i)->offset = a->parts[t][i].next;
    if (rd_kafka_assign(a->rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errbuf, errlen, "cannot assign the partitions");
        goto Fail;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    parts = NULL;
    rd_kafka_poll_set_consumer(a->rk);
    a->q = rd_kafka_queue_get_consumer(a->rk);
    if (pthread_create(&a->thr, NULL, audit_main, a) != 0) {
        snprintf(errbuf, errlen, "cannot start the audit thread");
        goto Fail;
    }
    a->has_thread = 1;
    return a;
Fail:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    lg_audit_destroy(a);
    return NULL;
}

void lg_audit_finish(lg_audit_t *a)
{
    if (a == NULL || !a->has_thread)
        return;
    a->finish_ns = lg_now_ns();
    atomic_store(&a->is_finishing, 1);
    pthread_join(a->thr, NULL);
    a->has_thread = 0;
}

void lg_audit_destroy(lg_audit_t *a)
{
    if (a == NULL)
        return;
    lg_audit_finish(a);
    if (a->q != NULL)
        rd_kafka_queue_destroy(a->q);
    if (a->rk != NULL) {
        rd_kafka_consumer_close(a->rk);
        rd_kafka_destroy(a->rk);
    }
    free(a->parts[0]);
    free(a->parts[1]);
    lg_idmap_dispose(&a->seen);
    free(a);
}

static void example(const char *what, const lg_id_t *id, const lg_conf_t *conf, int tenant,
                    uint64_t *shown)
{
    char uuid[37];
    if ((*shown)++ >= 5)
        return;
    lg_uuid_format(id, uuid);
    uuid[36] = '\0';
    fprintf(stderr, "sluice-load: audit: %s: event_id %s tenant %s\n", what, uuid,
            tenant < conf->n_tenants ? conf->tenants[tenant].tenant : "?");
}

void lg_audit_reconcile(lg_audit_t *a, lg_worker_t *const *workers, int n, lg_audit_result_t *res)
{
    /* with records dropped unread, "missing" may be the broker's doing: no examples then */
    uint64_t shown_lost = a->is_complete ? 0 : 5, shown_dup = 0, shown_never = 0;

    memset(res, 0, sizeof(*res));
    res->is_complete = a->is_complete;
    snprintf(res->incomplete_why, sizeof(res->incomplete_why), "%s", a->why);
    res->records = a->records[0];
    res->dlq_records = a->records[1];
    res->records_without_id = a->without_id[0];
    res->seconds_after_run = a->finish_ns != 0 && a->last_msg_ns > a->finish_ns
                                 ? (double)(a->last_msg_ns - a->finish_ns) / 1e9
                                 : 0;
    for (int w = 0; w < n; w++) {
        const lg_ledger_t *ledger = &workers[w]->ledger;
        for (uint32_t i = 0; i < ledger->n; i++) {
            const lg_entry_t *e = lg_ledger_at(ledger, i);
            lg_entry_t *s;
            unsigned ne, nd;
            int expect_present;
            s = lg_idmap_get(&a->seen, &e->id);
            ne = s != NULL ? s->a.n_events : 0;
            nd = s != NULL ? s->a.n_dlq : 0;
            if (s != NULL)
                s->a.flags |= LG_A_MATCHED;
            /* `duplicate` means an earlier send stored it: present exactly once too */
            expect_present = e->l.n_accepted > 0 || (e->l.flags & LG_F_DUPLICATE);
            if (expect_present) {
                res->expected_present++;
                if (ne == 0) {
                    res->lost++;
                    if (e->l.n_accepted == 0)
                        res->lost_answered_duplicate++;
                    example("LOST", &e->id, a->conf, e->l.tenant, &shown_lost);
                }
            } else {
                res->expected_absent++;
                if (ne > 0 && (e->l.flags & LG_F_AMBIGUOUS)) {
                    res->present_unconfirmed++;
                } else if (ne > 0) {
                    res->present_never_accepted++;
                    example("present but never accepted", &e->id, a->conf, e->l.tenant,
                            &shown_never);
                }
            }
            if (ne > 1) {
                res->duplicated++;
                example("DUPLICATED", &e->id, a->conf, e->l.tenant, &shown_dup);
            }
            if (ne > 0 && s->a.tenant != e->l.tenant)
                res->wrong_tenant++;
            if (e->l.flags & LG_F_INVALID) {
                res->invalid++;
                if (nd > 0)
                    res->invalid_in_dlq++;
                else
                    res->invalid_not_in_dlq++;
            }
        }
    }
    for (size_t i = 0; i < a->seen.cap; i++) {
        const lg_entry_t *s = &a->seen.slots[i];
        if (s->a.n_events > 0 && !(s->a.flags & LG_A_MATCHED))
            res->unknown++;
    }
}
