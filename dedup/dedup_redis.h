/* hiredis (0.14) async connections driven by an h2o 2.2.5 evloop: h2o ships no Redis client and
 * hiredis 0.14's async API has no timer hook, so this adapter provides the event wiring, command
 * timeouts, reconnection with backoff and a circuit breaker. One connection per loop thread;
 * everything here runs on that thread. */
#ifndef DEDUP_REDIS_H
#define DEDUP_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <hiredis/hiredis.h>

typedef struct dedup_redis dedup_redis_t;

/* Durations below 1 ms are raised to 1 ms; reconnect_max_ms below reconnect_min_ms is raised to
 * it; max_pending 0 is raised to 1. Bounds belong to the config table; these only keep the
 * timers sound. */
typedef struct {
    const char *host;              /* numeric address, "127.0.0.1" (hiredis resolves a name with a
                                      blocking getaddrinfo; NULL: 127.0.0.1); ignored when
                                      unix_path is set */
    int port;
    const char *unix_path;         /* unix socket path, or NULL or "" for TCP */
    uint64_t connect_timeout_ms;   /* a connect that takes longer fails (and is retried) */
    uint64_t command_timeout_ms;   /* a pipeline whose replies are not all in by then fails */
    uint64_t reconnect_min_ms;     /* backoff after a failure, doubling up to max; back to min
                                      after a successful connect */
    uint64_t reconnect_max_ms;
    unsigned breaker_failures;     /* consecutive failures that open the circuit (0: never). A
                                      failure is a failed connect attempt, or one connection lost
                                      or timed out while pipelines were pending (one per incident,
                                      however many pipelines it failed). A successful pipeline
                                      resets the count. */
    uint64_t breaker_open_ms;      /* while open, pipelines fail at once without I/O (connects
                                      go on with the backoff). Then half-open: one probe at a
                                      time, either the adapter's own PING (sent as soon as it is
                                      connected, so the circuit closes without traffic) or the
                                      first pipeline admitted; success closes the circuit,
                                      failure opens it again. */
    size_t max_pending;            /* pipelines waiting for replies before new ones fail fast */
} dedup_redis_conf_t;

/* Called exactly once per pipeline accepted by dedup_redis_pipeline, on the loop thread, never
 * from inside dedup_redis_pipeline itself. On success err is NULL and replies[i] is command i's
 * reply (a reply can itself be an error reply: check ->type). On failure err is a static string,
 * "timeout" (this pipeline's deadline passed) or "disconnected" (the connection was lost or torn
 * down: another pipeline's timeout, a connect failure, dedup_redis_destroy), and replies is NULL.
 * n is the number of commands either way. Replies are freed after the callback returns. The
 * callback may call dedup_redis_pipeline, but not dedup_redis_destroy. */
typedef void (*dedup_redis_cb)(void *arg, const char *err, redisReply **replies, size_t n);

/* Creates the connection object and starts connecting (non-blocking); conf's strings are copied.
 * Never NULL (aborts on OOM). The process must ignore SIGPIPE: hiredis writes with write(2). */
dedup_redis_t *dedup_redis_create(h2o_evloop_t *loop, const dedup_redis_conf_t *conf);
/* Fails every pending pipeline ("disconnected", each callback once, before this returns),
 * closes, frees. Accepts NULL. Not from inside a pipeline callback (asserted). Call it before
 * h2o_evloop_destroy: it disposes the timeouts it registered with the loop. */
void dedup_redis_destroy(dedup_redis_t *r);

/* Sends n (>= 1) commands as one pipeline (one write). cmds[i] is an argv of argc[i] (>= 1)
 * strings with lengths argvlen[i] (binary safe); the adapter copies them. Pub/sub and MONITOR
 * commands are refused. Returns 0 when sent (the callback comes later), or -1 when it fails at
 * once, without I/O (the callback is then NOT called; *err says why: "circuit open", "not
 * connected" (between connections, waiting for the backoff), "too many pending", "unsupported
 * command"). While a connect is in progress pipelines are queued (hiredis buffers them) and
 * their deadline runs. */
int dedup_redis_pipeline(dedup_redis_t *r, size_t n, const int *argc, const char *const *const *cmds,
                         const size_t *const *argvlen, dedup_redis_cb cb, void *arg,
                         const char **err);

/* State for readiness and metrics. */
int dedup_redis_is_up(const dedup_redis_t *r);          /* connected and circuit closed */
int dedup_redis_circuit_open(const dedup_redis_t *r);   /* open and not yet due for a probe */
typedef struct {
    /* pipelines_failed counts callbacks with an error (not the -1 returns); timeouts counts
     * pipelines failed with "timeout"; reconnects counts successful connects after the first */
    uint64_t pipelines_ok, pipelines_failed, timeouts, reconnects, breaker_opens;
    uint64_t connect_failures; /* connect attempts that failed (refused, timed out, ...) */
    uint64_t rtt_us_last;  /* last successful pipeline's round trip (submit to last reply) */
} dedup_redis_stats_t;
void dedup_redis_stats(const dedup_redis_t *r, dedup_redis_stats_t *out);

#endif
