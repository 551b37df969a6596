/* sluice-load: the load generator's modules as main.c wires them. Configuration, the run
 * (worker threads sending batches), the audit (a Kafka consumer reading back what was stored)
 * and the report. Internals are in lg_int.h. */
#ifndef LG_H
#define LG_H

#include <stddef.h>
#include <stdint.h>

#define LG_MAX_TENANTS 16

typedef struct {
    const char *key;    /* write key, sent as Authorization: Bearer */
    const char *tenant; /* the tenant the gateway maps it to (Kafka header `tenant`) */
} lg_tenant_t;

/* Everything the command line sets (`sluice-load --help`). Read-only once the run starts. */
typedef struct {
    const char *url;
    int is_tls;
    char host[256], port[8], path[512], authority[300];
    const char *cacert; /* NULL: no certificate verification */
    int is_h1;          /* HTTP/1.1 keep-alive instead of HTTP/2 */
    int connections, streams, threads;
    double rate_bps;   /* open loop: batches per second (all threads); 0: closed loop */
    double duration_s; /* 0: until `batches` */
    double warmup_s;   /* latencies of batches due before this are not recorded */
    uint64_t batches;  /* original batches to generate; 0: until `duration_s` */
    int batch_size;
    uint32_t users;
    double dup_pct, invalid_pct;
    uint32_t dup_delay_ms;
    int is_gzip, gzip_level;
    int max_attempts;
    uint32_t backoff_ms, backoff_max_ms, timeout_ms, drain_timeout_ms, max_queue;
    lg_tenant_t tenants[LG_MAX_TENANTS];
    int n_tenants;
    int is_audit, require_dlq, is_strict, is_quiet;
    int is_sdk_pause; /* a 429/503 with Retry-After pauses the whole connection until then */
    const char *kafka, *topic, *dlq_topic;
    uint32_t audit_quiet_ms, audit_timeout_ms;
    uint64_t seed; /* 0: from getrandom */
} lg_conf_t;

/* Parses argv into conf. Returns 0, 1 when --help was printed, -1 with a message in errbuf. */
int lg_conf_parse(lg_conf_t *conf, int argc, char **argv, char *errbuf, size_t errlen);

typedef struct lg_run lg_run_t;
typedef struct lg_audit lg_audit_t;

/* Creates the worker threads' state (connections are opened by lg_run_start). */
lg_run_t *lg_run_create(const lg_conf_t *conf, char *errbuf, size_t errlen);
void lg_run_start(lg_run_t *run);
/* Prints the progress line every second (unless quiet) until every worker finished; SIGINT
 * and SIGTERM stop generating and drain. */
void lg_run_wait(lg_run_t *run);
void lg_run_destroy(lg_run_t *run); /* accepts NULL */

/* Creates the consumer and starts reading `topic` and `dlq_topic` on its own thread, from the
 * high watermarks they have now (every record of the run comes after them). */
lg_audit_t *lg_audit_start(const lg_conf_t *conf, char *errbuf, size_t errlen);
/* Waits until the consumer has read up to the high watermark and saw nothing new for the quiet
 * period (or the audit timeout), then stops the thread. */
void lg_audit_finish(lg_audit_t *a);
void lg_audit_destroy(lg_audit_t *a); /* accepts NULL */

/* Prints the JSON summary on stdout (and audit findings on stderr). Returns the exit status:
 * 0, or 1 when the audit found lost or duplicated events (or could not see everything). */
int lg_report(const lg_conf_t *conf, lg_run_t *run, lg_audit_t *audit);

#endif
