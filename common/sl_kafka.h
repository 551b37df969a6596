/* Kafka glue: one idempotent, acks=all producer per process, served by its own poll thread,
 * recreated in place when librdkafka raises a fatal error (possible with idempotence in 2.0.2). */
#ifndef SL_KAFKA_H
#define SL_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

typedef struct sl_producer sl_producer_t;

/* Called once per produced message, on the poll thread (or on the thread retiring a producer
 * replaced after a fatal error, or in sl_producer_destroy's flush unless detached). `opaque` is
 * the msg_opaque given to rd_kafka_producev. On failure, `is_fatal` says the producer itself
 * failed fatally, and `not_persisted` that librdkafka knows the message was never written
 * (RD_KAFKA_MSG_STATUS_NOT_PERSISTED); otherwise its fate is unknown (timed out or purged in
 * flight). Must be quick. */
typedef void (*sl_producer_delivery_cb)(void *opaque, rd_kafka_resp_err_t err, int is_fatal,
                                        int not_persisted);

typedef struct {
    const char *const *keys;   /* librdkafka properties (the kafka.* passthrough), may be 0 */
    const char *const *values;
    size_t n;
    const char *health_topic;  /* topic whose metadata decides readiness ("events") */
    int health_interval_ms;    /* how often metadata is checked */
    sl_producer_delivery_cb on_delivery;
} sl_producer_conf_t;

/* Creates the producer and starts its poll thread. Defaults (overridable by conf->keys):
 * bootstrap.servers=127.0.0.1:9092, linger.ms=5, compression.codec=lz4,
 * message.timeout.ms=15000, client.id=sluice. Enforced (a conflicting value is an error):
 * enable.idempotence=true and acks=all, because a 2xx must mean Kafka acked. Returns NULL with
 * errbuf set on a bad property. */
sl_producer_t *sl_producer_create(const sl_producer_conf_t *conf, char *errbuf, size_t errlen);

/* Flushes for up to flush_timeout_ms, stops the poll thread, destroys. Accepts NULL. Returns
 * the number of messages still undelivered (0 is the clean outcome). */
int sl_producer_destroy(sl_producer_t *p, int flush_timeout_ms);

/* Borrow the current rd_kafka_t for producing; hold it only for the produce calls of one batch
 * and release it on the same thread. The producer is never swapped while borrowed. */
rd_kafka_t *sl_producer_acquire(sl_producer_t *p);
void sl_producer_release(sl_producer_t *p);

/* 1 when Kafka metadata for the health topic was fetched recently and the producer is not
 * being recreated. `why` (may be NULL) gets a static reason when not ready. */
int sl_producer_is_ready(sl_producer_t *p, const char **why);

/* Messages waiting in the producer (queued + in flight). */
int sl_producer_queue_len(sl_producer_t *p);

/* How many times the producer was recreated after a fatal error. */
unsigned sl_producer_generation(sl_producer_t *p);

/* Purges everything the producer holds, queued and in flight: their delivery reports come at
 * once with __PURGE_QUEUE / __PURGE_INFLIGHT. For a drain that ran out of time. */
void sl_producer_purge(sl_producer_t *p);

/* From now on delivery reports no longer reach on_delivery (they are dropped). Called before
 * the receivers of on_delivery go away, so a late report never touches freed memory. */
void sl_producer_detach(sl_producer_t *p);

/* Test hook: raise a fatal error in the current producer (rd_kafka_test_fatal_error). */
int sl_producer_inject_fatal(sl_producer_t *p);

#endif
