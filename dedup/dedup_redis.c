/* hiredis 0.14 async on an h2o 2.2.5 evloop: event wiring, per-pipeline command timeouts,
 * reconnection with backoff and a circuit breaker (see dedup_redis.h).
 *
 * Control flow. hiredis calls us back from inside redisAsyncHandleRead/Write (replies, connect
 * and disconnect, and ev.cleanup when it frees the context). Those callbacks only record what
 * happened: a finished pipeline moves from `pending` to `done`, a lost connection sets
 * `is_lost`. Every entry point from the loop (socket readiness, timers) then calls settle(),
 * which, with no hiredis frame on the stack any more, accounts the failure, schedules the
 * reconnect and delivers `done` to the user callbacks. So user code never runs inside hiredis,
 * and a callback may submit the next pipeline. */
#include "dedup_redis.h"
#include "sl_log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <hiredis/async.h>

#define BACKOFF_STEPS_MAX 24 /* min * 2^23 covers any sane max */

enum { CONN_IDLE, CONN_CONNECTING, CONN_UP };
enum { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

typedef struct pipeline pipeline_t;

struct pipeline {
    dedup_redis_t *r;
    h2o_linklist_t link;         /* in r->pending, then r->done */
    h2o_timeout_entry_t timeout; /* the command deadline, linked to r->cmd_timeout */
    dedup_redis_cb cb;           /* NULL for an orphan (see dedup_redis_pipeline) */
    void *arg;
    const char *err;  /* why it failed, once finished */
    uint64_t sent_ns; /* for rtt */
    size_t n;         /* commands */
    size_t nreplies;  /* replies collected so far (owned by the pipeline) */
    size_t refs;      /* hiredis callbacks still to come: the struct lives until they are 0 */
    int is_finished;  /* off `pending`: no more replies are collected */
    int is_delivered; /* the user callback ran (or never will) */
    int is_probe;     /* the one pipeline let through while half-open */
    int is_internal;  /* our own probe: no user callback, not in the stats */
    redisReply *replies[];
};

struct dedup_redis {
    h2o_evloop_t *loop;
    dedup_redis_conf_t conf; /* strings point to host/unix_path below */
    char *host, *unix_path;

    redisAsyncContext *ac; /* NULL between connections */
    h2o_socket_t *sock;    /* watches a dup of ac->c.fd, see start_connect */
    int conn_state;
    int is_reading, is_write_armed, wants_write;
    redisReplyObjectFunctions reply_fns; /* the reader's functions with our freeObject */

    h2o_linklist_t pending; /* sent, waiting for replies; oldest first */
    h2o_linklist_t done;    /* finished, callback not yet run */
    size_t npending;

    /* set while hiredis tears a connection down, consumed by settle() */
    int is_lost, lost_while_connecting, incident_failed;
    int is_just_up; /* a connect succeeded: settle() may send a probe */
    int has_connected, is_destroying;
    unsigned cb_depth; /* > 0 while a user callback runs */

    h2o_timeout_t cmd_timeout, connect_timeout;
    h2o_timeout_entry_t connect_entry, backoff_entry;
    /* h2o 2.2.5 timeouts have one fixed duration each: one per backoff step */
    h2o_timeout_t backoff[BACKOFF_STEPS_MAX];
    size_t n_backoff, backoff_idx;

    int breaker;
    unsigned failures;
    uint64_t open_until_ms;
    int has_probe_in_flight;
    h2o_timeout_t breaker_timeout;   /* breaker_open_ms */
    h2o_timeout_entry_t probe_entry; /* linked when the circuit opens: fires at open_until_ms */

    dedup_redis_stats_t stats;
};

static void start_connect(dedup_redis_t *r);
static void on_cmd_timeout(h2o_timeout_entry_t *entry);

/* ---------------------------------------------------------------------------------------------
 * Keeping replies past the hiredis callback
 *
 * In hiredis 0.14 redisProcessCallbacks() calls c->reader->fn->freeObject(reply) right after the
 * callback returns (async.c; 1.x added REDIS_NO_AUTO_FREE_REPLIES, 0.14 has nothing like it).
 * Instead of deep-copying every reply we install reply functions whose freeObject skips the one
 * reply on_reply() just kept; the pipeline frees its replies with freeReplyObject after the user
 * callback. The marker is per thread because freeObject gets no context; the callback and the
 * free that follows it run back to back on this thread.
 * ------------------------------------------------------------------------------------------- */

static _Thread_local const void *kept_reply;

static void free_reply_object(void *obj)
{
    if (obj != NULL && obj == kept_reply) {
        kept_reply = NULL;
        return;
    }
    freeReplyObject(obj);
}

/* ---------------------------------------------------------------------------------------------
 * Circuit breaker
 * ------------------------------------------------------------------------------------------- */

static void breaker_failure(dedup_redis_t *r)
{
    r->failures++;
    if (r->conf.breaker_failures == 0)
        return;
    if (r->breaker == BREAKER_HALF_OPEN ||
        (r->breaker == BREAKER_CLOSED && r->failures >= r->conf.breaker_failures)) {
        r->breaker = BREAKER_OPEN;
        r->open_until_ms = h2o_now(r->loop) + r->conf.breaker_open_ms;
        r->stats.breaker_opens++;
        h2o_timeout_unlink(&r->probe_entry);
        h2o_timeout_link(r->loop, &r->breaker_timeout, &r->probe_entry);
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "redis: circuit open", "failures=%u open_ms=%llu",
                           r->failures, (unsigned long long)r->conf.breaker_open_ms);
    }
}

static void breaker_success(dedup_redis_t *r)
{
    r->failures = 0;
    if (r->breaker != BREAKER_CLOSED) {
        r->breaker = BREAKER_CLOSED;
        h2o_timeout_unlink(&r->probe_entry);
        SL_INFO("redis: circuit closed", NULL);
    }
}

/* Open turns half-open once breaker_open_ms passed: here, lazily, or from the probe timer. */
static void breaker_tick(dedup_redis_t *r)
{
    if (r->breaker == BREAKER_OPEN && h2o_now(r->loop) >= r->open_until_ms)
        r->breaker = BREAKER_HALF_OPEN;
}

/* Whether a new pipeline may go now; NULL or the reason it fails at once. */
static const char *admit(dedup_redis_t *r)
{
    if (r->is_destroying)
        return "not connected";
    breaker_tick(r);
    if (r->breaker == BREAKER_OPEN)
        return "circuit open";
    if (r->conn_state == CONN_IDLE)
        return "not connected";
    if (r->npending >= r->conf.max_pending)
        return "too many pending";
    if (r->breaker == BREAKER_HALF_OPEN && r->has_probe_in_flight)
        return "circuit open";
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Pipelines
 * ------------------------------------------------------------------------------------------- */

/* Takes p off `pending` (no more replies are kept) and queues it for its callback. */
static void pipeline_finish(pipeline_t *p, const char *err)
{
    dedup_redis_t *r = p->r;

    assert(!p->is_finished);
    p->is_finished = 1;
    p->err = err;
    h2o_timeout_unlink(&p->timeout);
    h2o_linklist_unlink(&p->link);
    r->npending--;
    h2o_linklist_insert(&r->done, &p->link);
    if (err != NULL)
        r->incident_failed = 1;
}

static void pipeline_free_replies(pipeline_t *p)
{
    for (size_t i = 0; i < p->nreplies; i++)
        freeReplyObject(p->replies[i]);
    p->nreplies = 0;
}

/* hiredis: one call per command, in order, with the reply or with NULL when the context is
 * freed before the reply came. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    pipeline_t *p = privdata;

    (void)ac;
    assert(p->refs > 0);
    p->refs--;
    if (!p->is_finished) {
        if (reply == NULL) {
            pipeline_finish(p, "disconnected");
        } else {
            p->replies[p->nreplies++] = reply;
            kept_reply = reply;
            if (p->nreplies == p->n)
                pipeline_finish(p, NULL);
        }
    }
    if (p->refs == 0 && p->is_delivered)
        free(p); /* an orphan (see pipeline_send) whose last command was answered */
}

/* Runs the callbacks of finished pipelines, oldest first. Only from settle() or destroy, never
 * with a hiredis frame on the stack. */
static void deliver(dedup_redis_t *r)
{
    r->cb_depth++;
    while (!h2o_linklist_is_empty(&r->done)) {
        pipeline_t *p = H2O_STRUCT_FROM_MEMBER(pipeline_t, link, r->done.next);
        h2o_linklist_unlink(&p->link);
        p->is_delivered = 1;
        if (p->is_probe)
            r->has_probe_in_flight = 0;
        if (p->err == NULL) {
            breaker_success(r);
            if (!p->is_internal) {
                r->stats.pipelines_ok++;
                r->stats.rtt_us_last = (sl_now_ns() - p->sent_ns) / 1000;
                p->cb(p->arg, NULL, p->replies, p->n);
            }
        } else if (!p->is_internal) {
            r->stats.pipelines_failed++;
            p->cb(p->arg, p->err, NULL, p->n);
        }
        pipeline_free_replies(p);
        if (p->refs == 0)
            free(p);
    }
    r->cb_depth--;
}

/* Queues the n commands on the current context (connecting or up). Returns the pipeline, or
 * NULL when hiredis refused (only when its context is going away or an allocation failed). */
static pipeline_t *pipeline_send(dedup_redis_t *r, size_t n, const int *argc,
                                 const char *const *const *cmds, const size_t *const *argvlen,
                                 dedup_redis_cb cb, void *arg)
{
    pipeline_t *p;
    size_t i;

    if ((p = malloc(offsetof(pipeline_t, replies) + n * sizeof(p->replies[0]))) == NULL)
        abort();
    memset(p, 0, offsetof(pipeline_t, replies));
    p->r = r;
    p->cb = cb;
    p->arg = arg;
    p->n = n;
    p->timeout.cb = on_cmd_timeout;
    /* hiredis formats each command into its output buffer (a copy) and writes them all when
     * the socket is writable: one write for the pipeline, or for several */
    for (i = 0; i < n; i++) {
        if (redisAsyncCommandArgv(r->ac, on_reply, p, argc[i], (const char **)cmds[i],
                                  argvlen[i]) != REDIS_OK)
            break;
        p->refs++;
    }
    if (i < n) {
        /* commands already queued still call on_reply: an orphan lives until they did */
        if (p->refs == 0) {
            free(p);
        } else {
            p->is_finished = p->is_delivered = 1;
            p->cb = NULL;
        }
        return NULL;
    }
    h2o_linklist_insert(&r->pending, &p->link);
    r->npending++;
    h2o_timeout_link(r->loop, &r->cmd_timeout, &p->timeout);
    p->sent_ns = sl_now_ns();
    if (r->breaker == BREAKER_HALF_OPEN) {
        p->is_probe = 1;
        r->has_probe_in_flight = 1;
    }
    return p;
}

/* Half-open with a live connection and no probe in flight: probe with a PING of our own, so the
 * circuit also closes when no traffic comes (a gateway that reports not-ready may get none). */
static void maybe_probe(dedup_redis_t *r)
{
    static const char *const ping[] = {"PING"};
    static const size_t ping_len[] = {4};
    static const int one = 1;
    const char *const *cmds[] = {ping};
    const size_t *lens[] = {ping_len};
    pipeline_t *p;

    breaker_tick(r);
    if (r->is_destroying || r->conn_state != CONN_UP || r->breaker != BREAKER_HALF_OPEN ||
        r->has_probe_in_flight)
        return;
    if ((p = pipeline_send(r, 1, &one, cmds, lens, NULL, NULL)) != NULL)
        p->is_internal = 1;
}

static void on_probe_due(h2o_timeout_entry_t *entry)
{
    dedup_redis_t *r = H2O_STRUCT_FROM_MEMBER(dedup_redis_t, probe_entry, entry);
    maybe_probe(r);
}

/* ---------------------------------------------------------------------------------------------
 * Connection: hiredis event hooks on an h2o socket
 * ------------------------------------------------------------------------------------------- */

static void schedule_reconnect(dedup_redis_t *r)
{
    if (h2o_timeout_is_linked(&r->backoff_entry))
        return;
    h2o_timeout_link(r->loop, &r->backoff[r->backoff_idx], &r->backoff_entry);
    if (r->backoff_idx + 1 < r->n_backoff)
        r->backoff_idx++;
}

/* The end of every entry point from the loop: account a lost connection, schedule the next
 * attempt, run the callbacks. */
static void settle(dedup_redis_t *r)
{
    if (r->is_lost) {
        r->is_lost = 0;
        if (!r->is_destroying) {
            if (r->lost_while_connecting)
                r->stats.connect_failures++;
            if (r->lost_while_connecting || r->incident_failed)
                breaker_failure(r);
            schedule_reconnect(r);
        }
        r->lost_while_connecting = 0;
    }
    r->incident_failed = 0;
    if (r->is_just_up) {
        r->is_just_up = 0;
        maybe_probe(r);
    }
    deliver(r);
}

/* Frees the hiredis context from outside hiredis: every outstanding command's callback runs
 * with NULL (pending pipelines finish as "disconnected"), then ev_cleanup. */
static void teardown(dedup_redis_t *r)
{
    if (r->ac == NULL)
        return;
    assert((r->ac->c.flags & REDIS_IN_CALLBACK) == 0);
    redisAsyncFree(r->ac); /* immediate: we are not inside a hiredis callback */
    assert(r->ac == NULL);
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    dedup_redis_t *r = sock->data;

    /* with H2O_SOCKET_FLAG_DONT_READ, evloop.c.h's read_on_ready() skips its own read and calls
     * us with err == NULL: hiredis reads the fd itself and sees EOF and errors there */
    (void)err;
    if (r->ac != NULL)
        redisAsyncHandleRead(r->ac); /* may free the context (ev_cleanup closes sock) */
    settle(r);
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    dedup_redis_t *r = sock->data;

    (void)err; /* only set for h2o's own writes or h2o_socket_connect, neither used here */
    r->is_write_armed = 0;
    if (r->ac != NULL && r->wants_write) {
        redisAsyncHandleWrite(r->ac); /* connect check, then flushes obuf; may free the context */
        /* hiredis re-adds write itself after a partial write; if it neither added nor deleted it
         * (a connect still in progress) keep waiting */
        if (r->ac != NULL && r->wants_write && !r->is_write_armed) {
            r->is_write_armed = 1;
            h2o_socket_notify_write(r->sock, on_writable);
        }
    }
    settle(r);
}

static void ev_add_read(void *data)
{
    dedup_redis_t *r = data;
    if (!r->is_reading) {
        r->is_reading = 1;
        h2o_socket_read_start(r->sock, on_readable);
    }
}

static void ev_del_read(void *data)
{
    dedup_redis_t *r = data;
    if (r->is_reading) {
        r->is_reading = 0;
        h2o_socket_read_stop(r->sock);
    }
}

static void ev_add_write(void *data)
{
    dedup_redis_t *r = data;
    r->wants_write = 1;
    if (!r->is_write_armed) {
        r->is_write_armed = 1;
        h2o_socket_notify_write(r->sock, on_writable);
    }
}

static void ev_del_write(void *data)
{
    dedup_redis_t *r = data;
    /* h2o 2.2.5 cannot cancel h2o_socket_notify_write; an armed notification that fires after
     * this is ignored by on_writable. hiredis only deletes write from inside
     * redisAsyncHandleWrite, i.e. after the notification was consumed. */
    r->wants_write = 0;
}

/* hiredis frees the context (error, EOF, failed connect, or our redisAsyncFree). Runs after
 * the NULL-reply callbacks and before redisFree() closes ac->c.fd. */
static void ev_cleanup(void *data)
{
    dedup_redis_t *r = data;

    if (r->sock != NULL) {
        h2o_socket_close(r->sock); /* closes only the dup; unregisters it from epoll first */
        r->sock = NULL;
    }
    r->is_reading = r->is_write_armed = r->wants_write = 0;
    h2o_timeout_unlink(&r->connect_entry);
    r->lost_while_connecting = r->conn_state == CONN_CONNECTING;
    r->conn_state = CONN_IDLE;
    r->ac = NULL;
    r->is_lost = 1;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    dedup_redis_t *r = ac->data;

    if (status != REDIS_OK) {
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "redis: connect failed", "err=\"%s\"",
                           ac->errstr != NULL ? ac->errstr : "?");
        return; /* hiredis frees the context next (ev_cleanup) */
    }
    h2o_timeout_unlink(&r->connect_entry);
    r->conn_state = CONN_UP;
    r->backoff_idx = 0;
    if (r->has_connected)
        r->stats.reconnects++;
    r->has_connected = 1;
    r->is_just_up = 1;
    SL_INFO("redis: connected", NULL);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    /* REDIS_OK when we freed the context ourselves (timeout, destroy): logged where it starts */
    if (status != REDIS_OK)
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "redis: connection lost", "err=\"%s\"",
                           ac->errstr != NULL ? ac->errstr : "?");
}

/* Starts a non-blocking connect. A failure that hiredis reports at once (no such unix socket,
 * no fd, an unresolvable host) is recorded like any other failed connect, for settle(). */
static void start_connect(dedup_redis_t *r)
{
    redisAsyncContext *ac;
    int fd;

    assert(r->ac == NULL && r->conn_state == CONN_IDLE);
    ac = r->unix_path != NULL ? redisAsyncConnectUnix(r->unix_path)
                              : redisAsyncConnect(r->host, r->conf.port);
    if (ac == NULL)
        abort(); /* hiredis returns NULL only when malloc failed */
    if (ac->err != 0) {
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "redis: connect failed", "err=\"%s\"", ac->errstr);
        redisAsyncFree(ac); /* no hooks attached yet: closes the fd, runs nothing of ours */
        goto Fail;
    }
    /* Who closes the fd: hiredis does, in redisFree() (after ev.cleanup). The h2o socket must
     * not close the same descriptor: once hiredis closed it the number can be reused (by another
     * thread's accept, say) before h2o closes it again or its epoll_ctl(DEL) hits the wrong file.
     * h2o_socket_export() would detach the fd, but in 2.2.5 it asserts that no write
     * notification is armed (socket.c: assert(!h2o_socket_is_writing(sock))), which is exactly
     * the state during a connect or a flush. So h2o gets its own descriptor, a dup of the same
     * socket, and closes it in ev_cleanup; epoll registrations belong to the dup. */
    fcntl(ac->c.fd, F_SETFD, FD_CLOEXEC); /* hiredis 0.14 opens it without; keep it from children */
    if ((fd = fcntl(ac->c.fd, F_DUPFD_CLOEXEC, 0)) == -1) {
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "redis: dup failed", "errno=%d", errno);
        redisAsyncFree(ac);
        goto Fail;
    }
    r->sock = h2o_evloop_socket_create(r->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    r->sock->data = r;
    r->ac = ac;
    ac->data = r;
    r->reply_fns = *ac->c.reader->fn;
    r->reply_fns.freeObject = free_reply_object;
    ac->c.reader->fn = &r->reply_fns;
    ac->ev.data = r;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    r->conn_state = CONN_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_connect); /* arms write: writable means connected */
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    h2o_timeout_link(r->loop, &r->connect_timeout, &r->connect_entry);
    return;

Fail:
    r->is_lost = 1;
    r->lost_while_connecting = 1;
}

/* ---------------------------------------------------------------------------------------------
 * Timers
 * ------------------------------------------------------------------------------------------- */

static void on_cmd_timeout(h2o_timeout_entry_t *entry)
{
    pipeline_t *p = H2O_STRUCT_FROM_MEMBER(pipeline_t, timeout, entry);
    dedup_redis_t *r = p->r;

    /* replies come in order: the oldest pipeline times out first, and every later one would
     * have to wait behind it, so the whole connection goes and is rebuilt */
    r->stats.timeouts++;
    SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "redis: command timeout; reconnecting",
                       "timeout_ms=%llu pending=%zu",
                       (unsigned long long)r->conf.command_timeout_ms, r->npending);
    pipeline_finish(p, "timeout");
    teardown(r);
    settle(r);
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    dedup_redis_t *r = H2O_STRUCT_FROM_MEMBER(dedup_redis_t, connect_entry, entry);

    SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "redis: connect timeout", "timeout_ms=%llu",
                       (unsigned long long)r->conf.connect_timeout_ms);
    teardown(r);
    settle(r);
}

static void on_reconnect_due(h2o_timeout_entry_t *entry)
{
    dedup_redis_t *r = H2O_STRUCT_FROM_MEMBER(dedup_redis_t, backoff_entry, entry);

    start_connect(r);
    settle(r);
}

/* ---------------------------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------------------------- */

static char *strdup_or_null(const char *s)
{
    char *d;
    if (s == NULL)
        return NULL;
    if ((d = strdup(s)) == NULL)
        abort();
    return d;
}

dedup_redis_t *dedup_redis_create(h2o_evloop_t *loop, const dedup_redis_conf_t *conf)
{
    dedup_redis_t *r = calloc(1, sizeof(*r));
    uint64_t step;

    if (r == NULL)
        abort();
    r->loop = loop;
    r->conf = *conf;
    r->host = strdup_or_null(conf->host != NULL ? conf->host : "127.0.0.1");
    if (conf->unix_path != NULL && conf->unix_path[0] != '\0')
        r->unix_path = strdup_or_null(conf->unix_path);
    r->conf.host = r->host;
    r->conf.unix_path = r->unix_path;
    /* >= 1 ms: an entry re-linked from its own callback to a 0 ms timeout would run again in
     * the same h2o_timeout_run() pass, forever */
#define AT_LEAST(field, min)                                                                       \
    do {                                                                                           \
        if (r->conf.field < (min))                                                                 \
            r->conf.field = (min);                                                                 \
    } while (0)
    AT_LEAST(connect_timeout_ms, 1);
    AT_LEAST(command_timeout_ms, 1);
    AT_LEAST(reconnect_min_ms, 1);
    AT_LEAST(reconnect_max_ms, r->conf.reconnect_min_ms);
    AT_LEAST(breaker_open_ms, 1);
    AT_LEAST(max_pending, 1);
#undef AT_LEAST

    h2o_linklist_init_anchor(&r->pending);
    h2o_linklist_init_anchor(&r->done);
    h2o_timeout_init(loop, &r->cmd_timeout, r->conf.command_timeout_ms);
    h2o_timeout_init(loop, &r->connect_timeout, r->conf.connect_timeout_ms);
    h2o_timeout_init(loop, &r->breaker_timeout, r->conf.breaker_open_ms);
    r->connect_entry.cb = on_connect_timeout;
    r->probe_entry.cb = on_probe_due;
    r->backoff_entry.cb = on_reconnect_due;
    for (step = r->conf.reconnect_min_ms;; step *= 2) {
        if (step >= r->conf.reconnect_max_ms || step > UINT64_MAX / 2 ||
            r->n_backoff + 1 == BACKOFF_STEPS_MAX) {
            h2o_timeout_init(loop, &r->backoff[r->n_backoff++], r->conf.reconnect_max_ms);
            break;
        }
        h2o_timeout_init(loop, &r->backoff[r->n_backoff++], step);
    }

    start_connect(r);
    settle(r);
    return r;
}

void dedup_redis_destroy(dedup_redis_t *r)
{
    if (r == NULL)
        return;
    /* From inside a callback delivered by one of our timers this would dispose the h2o_timeout_t
     * that h2o_timeout_run() is iterating (h2o 2.2.5 evloop.c.h walks loop->_timeouts after the
     * callback returns). */
    assert(r->cb_depth == 0 && "dedup_redis_destroy from inside a pipeline callback");
    r->is_destroying = 1;
    teardown(r); /* pending pipelines finish "disconnected" */
    settle(r);   /* ... and get their callbacks now; no reconnect is scheduled */
    assert(h2o_linklist_is_empty(&r->pending) && r->npending == 0);
    h2o_timeout_unlink(&r->connect_entry);
    h2o_timeout_unlink(&r->backoff_entry);
    h2o_timeout_unlink(&r->probe_entry);
    h2o_timeout_dispose(r->loop, &r->cmd_timeout);
    h2o_timeout_dispose(r->loop, &r->breaker_timeout);
    h2o_timeout_dispose(r->loop, &r->connect_timeout);
    for (size_t i = 0; i < r->n_backoff; i++)
        h2o_timeout_dispose(r->loop, &r->backoff[i]);
    free(r->host);
    free(r->unix_path);
    free(r);
}

static int is_unsupported(const char *name, size_t len)
{
    static const char *const names[] = {"subscribe", "psubscribe", "unsubscribe", "punsubscribe",
                                        "monitor"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (len == strlen(names[i]) && strncasecmp(name, names[i], len) == 0)
            return 1;
    return 0;
}

int dedup_redis_pipeline(dedup_redis_t *r, size_t n, const int *argc,
                         const char *const *const *cmds, const size_t *const *argvlen,
                         dedup_redis_cb cb, void *arg, const char **err)
{
    const char *why;

    assert(n > 0 && cb != NULL);
    if ((why = admit(r)) != NULL)
        goto Refuse;
    /* hiredis keeps no per-command callback for these (pub/sub replies are routed by channel),
     * which would shift every later reply onto the wrong pipeline */
    for (size_t i = 0; i < n; i++) {
        assert(argc[i] >= 1);
        if (is_unsupported(cmds[i][0], argvlen[i][0])) {
            why = "unsupported command";
            goto Refuse;
        }
    }

    if (pipeline_send(r, n, argc, cmds, argvlen, cb, arg) == NULL) {
        why = "not connected";
        goto Refuse;
    }
    return 0;

Refuse:
    if (err != NULL)
        *err = why;
    return -1;
}

int dedup_redis_is_up(const dedup_redis_t *r)
{
    return r->conn_state == CONN_UP && r->breaker == BREAKER_CLOSED;
}

int dedup_redis_circuit_open(const dedup_redis_t *r)
{
    return r->breaker == BREAKER_OPEN && h2o_now(r->loop) < r->open_until_ms;
}

void dedup_redis_stats(const dedup_redis_t *r, dedup_redis_stats_t *out)
{
    *out = r->stats;
}
