/* Reads events.dlq: a librdkafka consumer with every partition assigned explicitly (no group
 * membership, nothing committed unless --group), starting where --since / --follow / --group
 * say, ending at the end each partition had when the run started (unless following). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "dlq.h"

typedef struct {
    int64_t lo, hi; /* watermarks at start */
    int64_t start;  /* first offset to read */
    int64_t next;   /* next offset expected (for --group commits) */
    int is_done;
} part_t;

static int set_conf(rd_kafka_conf_t *conf, const char *k, const char *v, char *errbuf,
                    size_t errlen)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(errbuf, errlen, "kafka setting %s: %s", k, errstr);
    return -1;
}

/* librdkafka's own log lines, routed through ours (one line, prefixed, no payloads in them). */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    fprintf(stderr, "sluice-dlq: kafka %s (level %d): %s\n", fac, level, buf);
}

static rd_kafka_t *consumer_new(const dlq_source_opts_t *o, char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char group[64], errstr[256];
    /* librdkafka wants a group.id for a consumer handle; without --group it is a private,
     * never-committed one, so no group state is touched. */
    snprintf(group, sizeof(group), "sluice-dlq-%d", (int)getpid());
    const char *kv[][2] = {
        {"bootstrap.servers", o->brokers},     {"group.id", o->group != NULL ? o->group : group},
        {"client.id", "sluice-dlq"},           {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"}, {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},     {"log_level", "3"},
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (set_conf(conf, kv[i][0], kv[i][1], errbuf, errlen) != 0)
            goto Fail;
    for (char **s = o->kafka_sets; s != NULL && *s != NULL; s++) {
        const char *eq = strchr(*s, '=');
        char key[128];
        if (eq == NULL || (size_t)(eq - *s) >= sizeof(key)) {
            snprintf(errbuf, errlen, "kafka setting \"%.100s\": expected key=value", *s);
            goto Fail;
        }
        memcpy(key, *s, (size_t)(eq - *s));
        key[eq - *s] = '\0';
        if (set_conf(conf, key, eq + 1, errbuf, errlen) != 0)
            goto Fail;
    }
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        snprintf(errbuf, errlen, "kafka consumer: %s", errstr);
        return NULL; /* rd_kafka_new destroys conf only on success */
    }
    return rk;
Fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errbuf,
                           size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(errbuf, errlen, "metadata for %s: %s", topic, rd_kafka_err2str(err));
    else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(errbuf, errlen, "topic %s: %s", topic,
                 md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not in metadata");
    else if (md->topics[0].partition_cnt <= 0)
        snprintf(errbuf, errlen, "topic %s has no partitions", topic);
    else
        n = md->topics[0].partition_cnt;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Kafka message -> letter. */
static void letter_from(dlq_letter_t *l, const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_timestamp_type_t tstype;
    dlq_letter_init(l);
    l->partition = rkm->partition;
    l->offset = rkm->offset;
    l->timestamp = rd_kafka_message_timestamp(rkm, &tstype);
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t size;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++)
            dlq_letter_set_header(l, name, val, size);
    }
    dlq_letter_set_value(l, rkm->payload, rkm->len);
}

/* The timestamp of the last message of each partition in `want` (offset hi-1), into ts[p];
 * -1 when it could not be read before the deadline. One assignment for all of them. */
static void probe_last(rd_kafka_t *rk, const char *topic, part_t *parts, const int *want, int np,
                       int64_t *ts, int timeout_ms)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(np);
    int pending = 0;
    for (int p = 0; p < np; p++) {
        ts[p] = -1;
        if (want[p]) {
            rd_kafka_topic_partition_list_add(list, topic, p)->offset = parts[p].hi - 1;
            pending++;
        }
    }
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    int64_t deadline = dlq_mono_us() + (int64_t)timeout_ms * 1000;
    while (pending > 0 && dlq_mono_us() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
        if (rkm == NULL)
            continue;
        int p = rkm->partition;
        if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR && p >= 0 && p < np && want[p] && ts[p] < 0) {
            rd_kafka_timestamp_type_t tstype;
            ts[p] = rd_kafka_message_timestamp(rkm, &tstype);
            pending--;
        }
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_assign(rk, NULL);
}

/* Start offsets per partition. --since: offsets_for_times; a broker that answers "no message
 * after that time" (-1) is double-checked against the partition's last message, because the
 * dev broker (librdkafka's mock) answers -1 to every time query: there the run starts at the
 * beginning and the filter drops the older letters. */
static int plan_starts(rd_kafka_t *rk, const dlq_source_opts_t *o, part_t *parts, int np,
                       char *errbuf, size_t errlen)
{
    const int64_t since = o->filter != NULL ? o->filter->since_ms : INT64_MIN;
    for (int p = 0; p < np; p++) {
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, o->topic, p, &parts[p].lo,
                                                                   &parts[p].hi, o->timeout_ms);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errbuf, errlen, "offsets of %s [%d]: %s", o->topic, p, rd_kafka_err2str(err));
            return -1;
        }
        parts[p].start = o->is_follow && !o->is_from_beginning ? parts[p].hi : parts[p].lo;
    }
    if (o->group != NULL) {
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(np);
        for (int p = 0; p < np; p++)
            rd_kafka_topic_partition_list_add(list, o->topic, p);
        if (rd_kafka_committed(rk, list, o->timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR)
            for (int i = 0; i < list->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &list->elems[i];
                if (tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0 &&
                    tp->partition >= 0 && tp->partition < np)
                    parts[tp->partition].start = tp->offset;
            }
        rd_kafka_topic_partition_list_destroy(list);
    }
    if (since == INT64_MIN)
        return 0;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++)
        rd_kafka_topic_partition_list_add(list, o->topic, p)->offset = since;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list, o->timeout_ms);
    int *probe = calloc((size_t)np, sizeof(*probe));
    int64_t *last_ts = calloc((size_t)np, sizeof(*last_ts));
    int n_probe = 0;
    if (probe == NULL || last_ts == NULL)
        abort();
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        int p = tp->partition;
        if (p < 0 || p >= np)
            continue;
        if (tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= parts[p].lo)
            parts[p].start = tp->offset;
        else if (parts[p].hi > parts[p].lo)
            probe[p] = 1, n_probe++;
        else
            parts[p].start = parts[p].hi;
    }
    /* A failed time query is not fatal: reading from the start and filtering is still right. */
    if (n_probe > 0) {
        probe_last(rk, o->topic, parts, probe, np, last_ts, o->timeout_ms);
        for (int p = 0; p < np; p++)
            if (probe[p])
                parts[p].start = last_ts[p] >= 0 && last_ts[p] < since ? parts[p].hi : parts[p].lo;
    }
    free(probe);
    free(last_ts);
    rd_kafka_topic_partition_list_destroy(list);
    return 0;
}

static int commit_positions(rd_kafka_t *rk, const char *topic, const part_t *parts, int np,
                            char *errbuf, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++)
        if (parts[p].next > parts[p].start)
            rd_kafka_topic_partition_list_add(list, topic, p)->offset = parts[p].next;
    rd_kafka_resp_err_t err =
        list->cnt > 0 ? rd_kafka_commit(rk, list, 0) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(list);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    snprintf(errbuf, errlen, "commit to group: %s", rd_kafka_err2str(err));
    return -1;
}

int dlq_source_run(const dlq_source_opts_t *o, dlq_on_letter_fn fn, void *arg, char *errbuf,
                   size_t errlen)
{
    rd_kafka_t *rk = consumer_new(o, errbuf, errlen);
    part_t *parts = NULL;
    int rc = -1, np;
    if (rk == NULL)
        return -1;
    np = partition_count(rk, o->topic, o->timeout_ms, errbuf, errlen);
    if (np <= 0)
        goto Fail;
    parts = calloc((size_t)np, sizeof(*parts));
    if (parts == NULL)
        abort();
    if (plan_starts(rk, o, parts, np, errbuf, errlen) != 0)
        goto Fail;

    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(np);
    int n_open = 0;
    for (int p = 0; p < np; p++) {
        parts[p].next = parts[p].start;
        parts[p].is_done = !o->is_follow && parts[p].start >= parts[p].hi;
        n_open += !parts[p].is_done;
        rd_kafka_topic_partition_list_add(list, o->topic, p)->offset = parts[p].start;
    }
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);

    int64_t last_progress = dlq_mono_us();
    int is_stopped = 0;
    while ((o->is_follow || n_open > 0) && !is_stopped) {
        if (o->stop != NULL && *o->stop)
            break;
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
        if (rkm == NULL) {
            if (!o->is_follow && dlq_mono_us() - last_progress > (int64_t)o->timeout_ms * 1000) {
                snprintf(errbuf, errlen,
                         "no progress reading %s for %d ms (%d partitions not at their end)",
                         o->topic, o->timeout_ms, n_open);
                goto Fail;
            }
            continue;
        }
        int p = rkm->partition;
        if (p < 0 || p >= np) {
            if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR && rd_kafka_fatal_error(rk, NULL, 0)) {
                snprintf(errbuf, errlen, "consume %s: %s", o->topic, rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
                goto Fail;
            }
            rd_kafka_message_destroy(rkm); /* transient client-level errors: librdkafka retries */
            continue;
        }
        last_progress = dlq_mono_us();
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!o->is_follow && !parts[p].is_done)
                parts[p].is_done = 1, n_open--;
        } else if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errbuf, errlen, "consume %s [%d]: %s", o->topic, p,
                     rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            goto Fail;
        } else if (o->is_follow || rkm->offset < parts[p].hi) {
            dlq_letter_t l;
            letter_from(&l, rkm);
            parts[p].next = rkm->offset + 1;
            if (o->filter == NULL || dlq_filter_match(o->filter, &l))
                is_stopped = fn(&l, arg) != 0;
            dlq_letter_dispose(&l);
            if (!o->is_follow && rkm->offset + 1 >= parts[p].hi && !parts[p].is_done)
                parts[p].is_done = 1, n_open--;
        }
        rd_kafka_message_destroy(rkm);
    }
    rc = 0;
    if (o->group != NULL && commit_positions(rk, o->topic, parts, np, errbuf, errlen) != 0)
        rc = -1;
Fail:
    free(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
