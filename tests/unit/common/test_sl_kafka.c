/* Tests for common/sl_kafka.c against an in-process librdkafka mock cluster: delivery reports,
 * enforced durability settings, readiness, and recreation after a fatal error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "sl_kafka.h"
#include "sl_log.h"

typedef struct {
    _Atomic int delivered, failed, fatal;
} dr_counts_t;

static dr_counts_t counts;

static void on_delivery(void *opaque, rd_kafka_resp_err_t err, int is_fatal, int not_persisted)
{
    (void)opaque;
    (void)not_persisted;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        atomic_fetch_add(&counts.delivered, 1);
    else if (is_fatal)
        atomic_fetch_add(&counts.fatal, 1);
    else
        atomic_fetch_add(&counts.failed, 1);
}

/* Polls cond() every 10 ms until it holds or timeout_ms passes. */
static int poll_until(int (*cond)(void *), void *arg, int timeout_ms)
{
    uint64_t deadline = sl_now_ms() + (uint64_t)timeout_ms;
    struct timespec ts = {0, 10 * 1000000};
    while (!cond(arg)) {
        if (sl_now_ms() > deadline)
            return 0;
        nanosleep(&ts, NULL);
    }
    return 1;
}

typedef struct {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char bootstrap[256];
} cluster_t;

static int cluster_setup(void **state)
{
    static cluster_t c;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
    c.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(c.rk);
    c.mc = rd_kafka_mock_cluster_new(c.rk, 1);
    assert_non_null(c.mc);
    assert_int_equal(rd_kafka_mock_topic_create(c.mc, "events", 4, 1), 0);
    snprintf(c.bootstrap, sizeof(c.bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(c.mc));
    memset(&counts, 0, sizeof(counts));
    *state = &c;
    return 0;
}

static int cluster_teardown(void **state)
{
    cluster_t *c = *state;
    rd_kafka_mock_cluster_destroy(c->mc);
    rd_kafka_destroy(c->rk);
    return 0;
}

static sl_producer_t *make_producer(cluster_t *c, const char *extra_key, const char *extra_val,
                                    char *err, size_t errlen)
{
    const char *keys[3] = {"bootstrap.servers", "log_level", extra_key};
    const char *values[3] = {c->bootstrap, "0", extra_val};
    sl_producer_conf_t conf = {.keys = keys, .values = values, .n = extra_key ? 3 : 2,
                               .health_topic = "events", .health_interval_ms = 100,
                               .on_delivery = on_delivery};
    return sl_producer_create(&conf, err, errlen);
}

static int is_ready(void *p)
{
    return sl_producer_is_ready(p, NULL);
}

static int delivered_at_least(void *n)
{
    return atomic_load(&counts.delivered) >= *(int *)n;
}

static void produce(sl_producer_t *p, int n)
{
    rd_kafka_t *rk = sl_producer_acquire(p);
    for (int i = 0; i < n; i++)
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("events"),
                                           RD_KAFKA_V_VALUE("v", 1), RD_KAFKA_V_KEY("k", 1),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END),
                         0);
    sl_producer_release(p);
}

static void test_delivery_and_readiness(void **state)
{
    cluster_t *c = *state;
    char err[512];
    int want = 100;
    sl_producer_t *p = make_producer(c, NULL, NULL, err, sizeof(err));

    assert_non_null(p);
    assert_true(poll_until(is_ready, p, 10000));
    produce(p, want);
    assert_true(poll_until(delivered_at_least, &want, 10000));
    assert_int_equal(atomic_load(&counts.failed), 0);
    assert_int_equal(atomic_load(&counts.fatal), 0);
    assert_int_equal(sl_producer_destroy(p, 5000), 0);
}

static void test_durability_is_enforced(void **state)
{
    cluster_t *c = *state;
    char err[512] = "";

    assert_null(make_producer(c, "acks", "1", err, sizeof(err)));
    assert_non_null(strstr(err, "kafka.acks"));
    assert_null(make_producer(c, "enable.idempotence", "false", err, sizeof(err)));
    assert_non_null(strstr(err, "kafka.enable.idempotence"));
    assert_null(make_producer(c, "no.such.property", "1", err, sizeof(err)));
    assert_non_null(strstr(err, "kafka.no.such.property"));
    /* acks=-1 is the same as all */
    sl_producer_t *p = make_producer(c, "acks", "-1", err, sizeof(err));
    assert_non_null(p);
    sl_producer_destroy(p, 1000);
}

static int generation_is_one(void *p)
{
    return sl_producer_generation(p) == 1 && sl_producer_is_ready(p, NULL);
}

static int some_fatal(void *unused)
{
    (void)unused;
    return atomic_load(&counts.fatal) > 0;
}

static void test_fatal_error_recreates(void **state)
{
    cluster_t *c = *state;
    char err[512];
    int want;
    sl_producer_t *p = make_producer(c, NULL, NULL, err, sizeof(err));

    assert_non_null(p);
    assert_true(poll_until(is_ready, p, 10000));
    /* messages stuck behind a down broker when the fatal error hits are reported as fatal */
    rd_kafka_mock_broker_set_down(c->mc, 1);
    produce(p, 10);
    assert_int_equal(sl_producer_inject_fatal(p), 0);
    assert_true(poll_until(some_fatal, NULL, 10000));
    rd_kafka_mock_broker_set_up(c->mc, 1);
    assert_true(poll_until(generation_is_one, p, 15000));
    want = atomic_load(&counts.delivered) + 20;
    produce(p, 20);
    assert_true(poll_until(delivered_at_least, &want, 10000));
    assert_int_equal(sl_producer_destroy(p, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivery_and_readiness, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_durability_is_enforced, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_fatal_error_recreates, cluster_setup,
                                        cluster_teardown),
    };
    sl_log_init(SL_LOG_ERROR, "test");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
