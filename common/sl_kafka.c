/* The producer wrapper: creation with enforced durability settings, the poll thread that serves
 * delivery reports and readiness, and recreation after a fatal error. */
#include "sl_kafka.h"
#include "sl_log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sl_producer {
    pthread_rwlock_t lock; /* read: producing loop threads; write: the swap after a fatal error */
    rd_kafka_t *rk;
    sl_producer_conf_t conf;
    char **keys, **values;
    size_t n;
    pthread_t thread;
    pthread_t retire_thread; /* flushes and destroys a producer replaced after a fatal error */
    rd_kafka_t *retiring;    /* its handle, NULL when none */
    _Atomic int retire_done;
    _Atomic int detached;
    _Atomic int stop;
    _Atomic int fatal_seen;
    _Atomic int recreating;
    _Atomic unsigned generation;
    _Atomic uint64_t ready_until_ms; /* metadata OK until this monotonic time */
    const char *_Atomic why;
};

static const struct {
    const char *key, *value;
} producer_defaults[] = {
    {"bootstrap.servers", "127.0.0.1:9092"},
    {"linger.ms", "5"},
    {"compression.codec", "lz4"},
    {"message.timeout.ms", "15000"},
    {"client.id", "sluice"},
    {"socket.nagle.disable", "true"}, /* else Nagle + delayed ACK add ~40 ms per batch */
    {"enable.idempotence", "true"},
    {"acks", "all"},
};

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    sl_producer_t *p = opaque;
    int is_fatal = 0, not_persisted = 0;

    if (atomic_load(&p->detached))
        return;
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        is_fatal = rkm->err == RD_KAFKA_RESP_ERR__FATAL ||
                   rd_kafka_fatal_error(rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
        not_persisted = rd_kafka_message_status(rkm) == RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
    }
    p->conf.on_delivery(rkm->_private, rkm->err, is_fatal, not_persisted);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    sl_producer_t *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[256];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        SL_ERROR("kafka producer fatal error; recreating", "err=%s reason=\"%s\"",
                 rd_kafka_err2name(orig), buf);
        atomic_store(&p->fatal_seen, 1);
        return;
    }
    SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "kafka error", "err=%s reason=\"%s\"",
                       rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char text[512];
    size_t i;

    /* the text goes inside a quoted logfmt value */
    for (i = 0; buf[i] != '\0' && i < sizeof(text) - 1; i++)
        text[i] = buf[i] == '"' ? '\'' : buf[i];
    text[i] = '\0';
    /* syslog levels: 0..3 error, 4 warning, 5..6 info, 7 debug; one limiter per level so that
     * chatter never hides an error */
    if (level <= 3)
        SL_LOG_RATELIMITED(SL_LOG_ERROR, 1000, "librdkafka", "fac=%s text=\"%s\"", fac, text);
    else if (level == 4)
        SL_LOG_RATELIMITED(SL_LOG_WARN, 1000, "librdkafka", "fac=%s text=\"%s\"", fac, text);
    else if (level <= 6)
        SL_LOG_RATELIMITED(SL_LOG_INFO, 1000, "librdkafka", "fac=%s text=\"%s\"", fac, text);
    else
        SL_LOG_RATELIMITED(SL_LOG_DEBUG, 1000, "librdkafka", "fac=%s text=\"%s\"", fac, text);
}

static int check_enforced(const char *key, const char *value, char *errbuf, size_t errlen)
{
    if (strcmp(key, "acks") == 0 || strcmp(key, "request.required.acks") == 0) {
        if (strcmp(value, "all") != 0 && strcmp(value, "-1") != 0) {
            snprintf(errbuf, errlen, "kafka.%s: must be all (a 2xx means every replica acked)",
                     key);
            return -1;
        }
    } else if (strcmp(key, "enable.idempotence") == 0) {
        if (strcasecmp(value, "true") != 0) {
            snprintf(errbuf, errlen, "kafka.%s: must be true (resends must not duplicate)", key);
            return -1;
        }
    } else if (strcmp(key, "dr_msg_cb") == 0 || strcmp(key, "opaque") == 0) {
        snprintf(errbuf, errlen, "kafka.%s: cannot be set", key);
        return -1;
    }
    return 0;
}

static rd_kafka_t *producer_new(sl_producer_t *p, char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    size_t i;
    rd_kafka_t *rk;

    for (i = 0; i < sizeof(producer_defaults) / sizeof(producer_defaults[0]); i++)
        if (rd_kafka_conf_set(conf, producer_defaults[i].key, producer_defaults[i].value, errbuf,
                              errlen) != RD_KAFKA_CONF_OK)
            goto Fail;
    for (i = 0; i < p->n; i++) {
        char err2[256];
        if (check_enforced(p->keys[i], p->values[i], errbuf, errlen) != 0)
            goto Fail;
        if (rd_kafka_conf_set(conf, p->keys[i], p->values[i], err2, sizeof(err2)) !=
            RD_KAFKA_CONF_OK) {
            snprintf(errbuf, errlen, "kafka.%s: %s", p->keys[i], err2);
            goto Fail;
        }
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errlen);
    if (rk == NULL)
        goto Fail;
    return rk;
Fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void check_health(sl_producer_t *p, rd_kafka_t *rk, rd_kafka_topic_t *rkt)
{
    const struct rd_kafka_metadata *md = NULL;
    /* short: delivery reports wait while this runs on the poll thread */
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 200);
    const char *why = NULL;

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        why = "kafka metadata unreachable";
    else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
             md->topics[0].partition_cnt == 0)
        why = "kafka topic missing";
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (why == NULL)
        atomic_store(&p->ready_until_ms, sl_now_ms() + 3u * (uint64_t)p->conf.health_interval_ms);
    else
        atomic_store(&p->ready_until_ms, 0);
    atomic_store(&p->why, why);
}

/* How long a replaced producer may take to hear back about requests already sent. */
#define RETIRE_FLUSH_MS 10000

/* Runs on its own thread so the poll thread keeps serving the new producer. librdkafka has
 * already purged the old one's queued (never sent) messages; requests in flight still get
 * their real outcome, so they are waited for, and only what is left at the deadline is purged
 * (those delivery reports say __PURGE_INFLIGHT: the fate of such a message is unknown). */
static void *retire_main(void *arg)
{
    sl_producer_t *p = arg;
    rd_kafka_t *old = p->retiring;

    rd_kafka_flush(old, RETIRE_FLUSH_MS);
    if (rd_kafka_outq_len(old) > 0) {
        SL_ERROR("kafka: replaced producer still had messages in flight; purging",
                 "count=%d", rd_kafka_outq_len(old));
        rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(old, 1000);
    }
    rd_kafka_destroy(old);
    atomic_store(&p->retire_done, 1);
    return NULL;
}

static void retire_join(sl_producer_t *p)
{
    if (p->retiring != NULL) {
        pthread_join(p->retire_thread, NULL);
        p->retiring = NULL;
    }
}

/* Replaces a producer that hit a fatal error: the new handle is swapped in first, so batches
 * keep flowing, then the old one is retired in the background. */
static void recreate(sl_producer_t *p)
{
    char errbuf[512];
    rd_kafka_t *old, *fresh;

    atomic_store(&p->recreating, 1);
    atomic_store(&p->ready_until_ms, 0);
    atomic_store(&p->why, "kafka producer recreating after fatal error");
    /* never block the poll thread on a previous retirement: try again on a later turn */
    if (p->retiring != NULL && !atomic_load(&p->retire_done))
        return;
    retire_join(p);
    fresh = producer_new(p, errbuf, sizeof(errbuf));
    if (fresh == NULL) {
        SL_LOG_RATELIMITED(SL_LOG_ERROR, 5000, "kafka producer recreate failed; will retry",
                           "err=\"%s\"", errbuf);
        return;
    }
    pthread_rwlock_wrlock(&p->lock);
    old = p->rk;
    p->rk = fresh;
    pthread_rwlock_unlock(&p->lock);

    p->retiring = old;
    atomic_store(&p->retire_done, 0);
    if (pthread_create(&p->retire_thread, NULL, retire_main, p) != 0) {
        retire_main(p); /* no thread to join afterwards */
        p->retiring = NULL;
    }
    atomic_store(&p->fatal_seen, 0);
    atomic_fetch_add(&p->generation, 1);
    atomic_store(&p->recreating, 0);
    SL_INFO("kafka producer recreated", "generation=%u", atomic_load(&p->generation));
}

static void *poll_main(void *arg)
{
    sl_producer_t *p = arg;
    uint64_t next_health = 0;

    while (!atomic_load(&p->stop)) {
        rd_kafka_t *rk = p->rk; /* only this thread swaps it */
        rd_kafka_poll(rk, 50);
        if (atomic_load(&p->fatal_seen)) {
            recreate(p);
            next_health = 0;
            continue;
        }
        if (sl_now_ms() >= next_health) {
            rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, p->conf.health_topic, NULL);
            check_health(p, rk, rkt);
            rd_kafka_topic_destroy(rkt);
            next_health = sl_now_ms() + (uint64_t)p->conf.health_interval_ms;
        }
    }
    return NULL;
}

/* Frees the wrapper's own memory (the rd_kafka_t is already gone). */
static void producer_free(sl_producer_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->values[i]);
    }
    free(p->keys);
    free(p->values);
    pthread_rwlock_destroy(&p->lock);
    free(p);
}

sl_producer_t *sl_producer_create(const sl_producer_conf_t *conf, char *errbuf, size_t errlen)
{
    sl_producer_t *p = calloc(1, sizeof(*p));
    pthread_rwlockattr_t attr;
    size_t i;

    if (p == NULL)
        abort();
    p->conf = *conf;
    p->n = conf->n;
    p->keys = calloc(conf->n + 1, sizeof(char *));
    p->values = calloc(conf->n + 1, sizeof(char *));
    for (i = 0; i < conf->n; i++) {
        p->keys[i] = strdup(conf->keys[i]);
        p->values[i] = strdup(conf->values[i]);
    }
    p->conf.keys = (const char *const *)p->keys;
    p->conf.values = (const char *const *)p->values;
    if (p->conf.health_interval_ms <= 0)
        p->conf.health_interval_ms = 1000;
    atomic_store(&p->why, "kafka not checked yet");
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&p->lock, &attr);
    pthread_rwlockattr_destroy(&attr);

    if ((p->rk = producer_new(p, errbuf, errlen)) == NULL)
        goto Fail;
    if (pthread_create(&p->thread, NULL, poll_main, p) != 0) {
        snprintf(errbuf, errlen, "cannot start the kafka poll thread");
        goto Fail;
    }
    return p;
Fail:
    if (p->rk != NULL)
        rd_kafka_destroy(p->rk);
    producer_free(p);
    return NULL;
}

int sl_producer_destroy(sl_producer_t *p, int flush_timeout_ms)
{
    int left;

    if (p == NULL)
        return 0;
    atomic_store(&p->stop, 1);
    pthread_join(p->thread, NULL);
    retire_join(p);
    rd_kafka_flush(p->rk, flush_timeout_ms);
    left = rd_kafka_outq_len(p->rk);
    if (left > 0) {
        SL_ERROR("kafka messages undelivered at shutdown", "count=%d", left);
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0);
    }
    rd_kafka_destroy(p->rk);
    producer_free(p);
    return left;
}

rd_kafka_t *sl_producer_acquire(sl_producer_t *p)
{
    pthread_rwlock_rdlock(&p->lock);
    return p->rk;
}

void sl_producer_release(sl_producer_t *p)
{
    pthread_rwlock_unlock(&p->lock);
}

int sl_producer_is_ready(sl_producer_t *p, const char **why)
{
    if (!atomic_load(&p->recreating) && sl_now_ms() < atomic_load(&p->ready_until_ms))
        return 1;
    if (why != NULL) {
        const char *w = atomic_load(&p->why);
        *why = w != NULL ? w : "kafka metadata stale";
    }
    return 0;
}

int sl_producer_queue_len(sl_producer_t *p)
{
    int n;
    rd_kafka_t *rk = sl_producer_acquire(p);
    n = rd_kafka_outq_len(rk);
    sl_producer_release(p);
    return n;
}

unsigned sl_producer_generation(sl_producer_t *p)
{
    return atomic_load(&p->generation);
}

void sl_producer_purge(sl_producer_t *p)
{
    rd_kafka_t *rk = sl_producer_acquire(p);
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    sl_producer_release(p);
}

void sl_producer_detach(sl_producer_t *p)
{
    atomic_store(&p->detached, 1);
}

int sl_producer_inject_fatal(sl_producer_t *p)
{
    rd_kafka_resp_err_t err;
    rd_kafka_t *rk = sl_producer_acquire(p);
    err = rd_kafka_test_fatal_error(rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                    "injected by /debug/kafka-fatal");
    sl_producer_release(p);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}
