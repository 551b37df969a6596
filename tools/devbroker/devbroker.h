/* The dev Kafka broker: a librdkafka mock cluster whose brokers listen on fixed loopback ports,
 * a development and test stand-in for a real Kafka cluster (see README.md). */
#ifndef SLUICE_DEVBROKER_H
#define SLUICE_DEVBROKER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DEVBROKER_MAX_BROKERS 16
#define DEVBROKER_MAX_TOPICS 64
#define DEVBROKER_MAX_PARTITIONS 1000
#define DEVBROKER_TOPIC_NAME_MAX 249 /* Kafka's own limit */

typedef struct devbroker_topic {
    char name[DEVBROKER_TOPIC_NAME_MAX + 1];
    int partition_cnt;
} devbroker_topic_t;

typedef struct devbroker_config {
    uint16_t port; /* broker i (0-based) listens on 127.0.0.1:port+i */
    int broker_cnt;
    size_t topic_cnt;
    devbroker_topic_t topics[DEVBROKER_MAX_TOPICS];
} devbroker_config_t;

/* Fills cfg with the defaults: 127.0.0.1:9092, one broker, no topics yet. */
void devbroker_config_init(devbroker_config_t *cfg);

/* Command-line value parsers (--listen HOST:PORT, --brokers N, --topic NAME:PARTITIONS). Each
 * returns 0, or -1 with a message naming the option in errbuf. */
int devbroker_config_set_listen(devbroker_config_t *cfg, const char *value, char *errbuf,
                                size_t errlen);
int devbroker_config_set_brokers(devbroker_config_t *cfg, const char *value, char *errbuf,
                                 size_t errlen);
int devbroker_config_add_topic(devbroker_config_t *cfg, const char *value, char *errbuf,
                               size_t errlen);

/* Call once after parsing: adds the default topics (events:12, events.dlq:3) when none were given
 * and checks that the port range fits. Returns 0, or -1 with a message in errbuf. */
int devbroker_config_finish(devbroker_config_t *cfg, char *errbuf, size_t errlen);

typedef struct devbroker devbroker_t;

/* Reserves the ports, starts the mock cluster on them and creates the topics. Returns NULL with a
 * message in errbuf on failure, e.g. when a port is already in use. At most one devbroker may be
 * created at a time in a process: the port hand-over interposes the process-wide bind(). Call
 * with SIGINT/SIGTERM blocked so librdkafka's threads inherit the mask. */
devbroker_t *devbroker_create(const devbroker_config_t *cfg, char *errbuf, size_t errlen);

/* Writes the single `devbroker ready bootstrap=... brokers=N topics=...` line to out and flushes
 * it. Returns 0, or -1 when the write failed. */
int devbroker_print_ready(const devbroker_t *db, FILE *out);

/* Runs one control command (error injection for tests), e.g.
 *   produce-errors COUNT CODE   the next COUNT Produce requests fail with Kafka error CODE
 *   broker-down ID / broker-up ID
 * Returns 0, or -1 with a message in errbuf. Any thread. */
int devbroker_control(devbroker_t *db, const char *line, char *errbuf, size_t errlen);

/* Creates a FIFO at path and serves one command per line from it on a thread, logging each
 * (`msg="control" cmd="..." result=ok|error`). Stopped by devbroker_destroy. Returns 0 or -1. */
int devbroker_control_start(devbroker_t *db, const char *path, char *errbuf, size_t errlen);

/* Stops the cluster (closing client connections and the ports) and frees db. Accepts NULL and
 * half-built objects. */
void devbroker_destroy(devbroker_t *db);

#endif
