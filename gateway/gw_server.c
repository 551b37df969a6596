/* The server: h2o configuration, one event loop per thread with its own SO_REUSEPORT listeners,
 * the Kafka producer, and the SIGTERM drain. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "gw_int.h"
#include "sl_log.h"

_Thread_local gw_thread_t *gw_current_thread;

/* h2o handlers carry the server pointer */
typedef struct {
    h2o_handler_t super;
    gw_server_t *srv;
    int is_admin;
} gw_handler_t;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    gw_handler_t *h = (gw_handler_t *)self;
    h2o_iovec_t path = req->path_normalized;

    if (gw_guard_on_req(h->srv, req))
        return 0;
    if (!h->is_admin && h2o_memis(path.base, path.len, H2O_STRLIT("/v1/batch")))
        return gw_batch_on_req(h->srv, req);
    return gw_admin_on_req(h->srv, req, h->is_admin);
}

static void register_handler(gw_server_t *srv, h2o_hostconf_t *host, int is_admin)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    gw_handler_t *h = (gw_handler_t *)h2o_create_handler(pathconf, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;
    h->is_admin = is_admin;
}

void gw_inflight_add(gw_server_t *srv, long delta)
{
    long now = atomic_fetch_add(&srv->inflight, delta) + delta;
    if (now == 0 && atomic_load(&srv->draining)) {
        pthread_mutex_lock(&srv->drain_mu);
        pthread_cond_broadcast(&srv->drain_cv);
        pthread_mutex_unlock(&srv->drain_mu);
    }
}

/* Binds host:port with SO_REUSEPORT so that every loop thread can have its own accept queue.
 * With `probe`, first checks (without SO_REUSEPORT) that nobody else holds the port: otherwise
 * a second gateway would silently share it. */
static int bind_listener(const char *hostport, int probe, char *errbuf, size_t errlen)
{
    char host[256], *colon;
    const char *port;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    int fd = -1, on = 1, rc;

    snprintf(host, sizeof(host), "%s", hostport);
    colon = strrchr(host, ':');
    if (colon == NULL) {
        snprintf(errbuf, errlen, "listen address %s: expected host:port", hostport);
        return -1;
    }
    *colon = '\0';
    port = colon + 1;
    if (host[0] == '[') { /* [::1]:8443 */
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
        snprintf(errbuf, errlen, "listen address %s: %s", hostport, gai_strerror(rc));
        return -1;
    }
    if (probe) {
        int p = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        setsockopt(p, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        rc = bind(p, ai->ai_addr, ai->ai_addrlen);
        close(p);
        if (rc != 0) {
            snprintf(errbuf, errlen, "listen address %s: %s", hostport, strerror(errno));
            goto Fail;
        }
    }
    if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(errbuf, errlen, "listen address %s: %s", hostport, strerror(errno));
        goto Fail;
    }
    freeaddrinfo(ai);
    return fd;
Fail:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return -1;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_accept_ctx_t *actx = listener->data;
    h2o_socket_t *sock;

    if (err != NULL)
        return;
    while ((sock = h2o_evloop_socket_accept(listener)) != NULL) {
        if (actx == &gw_current_thread->accept_ctx)
            gw_guard_on_accept(gw_current_thread, sock);
        h2o_accept(actx, sock);
    }
}

static h2o_socket_t *start_listener(gw_thread_t *thr, int fd, h2o_accept_ctx_t *actx)
{
    h2o_socket_t *sock = h2o_evloop_socket_create(thr->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    sock->data = actx;
    h2o_socket_read_start(sock, on_accept);
    return sock;
}

static void close_listeners(gw_thread_t *thr)
{
    if (thr->listener != NULL) {
        h2o_socket_read_stop(thr->listener);
        h2o_socket_close(thr->listener);
        thr->listener = NULL;
    }
}

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    gw_thread_t *thr = H2O_STRUCT_FROM_MEMBER(gw_thread_t, control_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        if (msg == &thr->drain_msg) {
            /* stop accepting; h2 clients get GOAWAY, in-flight requests carry on */
            close_listeners(thr);
            h2o_context_request_shutdown(&thr->ctx);
        } else if (msg == &thr->stop_msg) {
            thr->stop = 1;
        }
    }
}

/* 1 when nothing of the context is alive: no HTTP/1 or HTTP/2 connection and no pending timer
 * (a TLS handshake in progress is in no connection list, only in handshake_timeout). h2o 2.2.5
 * asserts on disposing a context that is not idle. */
static int context_is_idle(h2o_context_t *ctx)
{
    h2o_timeout_t *timeouts[] = {&ctx->zero_timeout,       &ctx->one_sec_timeout,
                                 &ctx->hundred_ms_timeout, &ctx->handshake_timeout,
                                 &ctx->http1.req_timeout,  &ctx->http2.idle_timeout,
                                 &ctx->http2.graceful_shutdown_timeout, &ctx->proxy.io_timeout};

    /* armed by h2o_context_request_shutdown; with no connection left it has nothing to do */
    if (h2o_linklist_is_empty(&ctx->http2._conns) &&
        h2o_timeout_is_linked(&ctx->http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&ctx->http2._graceful_shutdown_timeout);
    if (!h2o_linklist_is_empty(&ctx->http1._conns) || !h2o_linklist_is_empty(&ctx->http2._conns))
        return 0;
    for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++)
        if (!h2o_linklist_is_empty(&timeouts[i]->_entries))
            return 0;
    return 1;
}

/* Threads whose contexts still had connections at exit: kept reachable on purpose (the process
 * is about to exit, and h2o 2.2.5 can only dispose a context whose connections are all gone). */
static gw_thread_t *abandoned_threads;

/* Releases a loop's h2o state, on the loop's own thread (or, for a loop that never started, on
 * any thread). Returns 1 when everything was released, 0 when the state had to be abandoned. */
static int thread_dispose(gw_thread_t *thr)
{
    if (thr->listen_fd >= 0)
        close(thr->listen_fd);
    if (thr->admin_fd >= 0)
        close(thr->admin_fd);
    if (thr->loop == NULL)
        return 1;
    close_listeners(thr);
    if (thr->admin_listener != NULL) {
        h2o_socket_read_stop(thr->admin_listener);
        h2o_socket_close(thr->admin_listener);
        thr->admin_listener = NULL;
    }
    dedup_thread_destroy(thr->dedup);
    thr->dedup = NULL;
    h2o_multithread_unregister_receiver(thr->queue, &thr->done_receiver);
    h2o_multithread_unregister_receiver(thr->queue, &thr->schema_receiver);
    h2o_multithread_unregister_receiver(thr->queue, &thr->control_receiver);
    h2o_multithread_destroy_queue(thr->queue);
    free(thr->scratch);
    thr->scratch = NULL;
    free(thr->encode_buf);
    thr->encode_buf = NULL;
    /* let the socket closes above complete */
    h2o_evloop_run(thr->loop, 0);
    if (!context_is_idle(&thr->ctx) || !context_is_idle(&thr->admin_ctx))
        return 0;
    h2o_context_dispose(&thr->ctx);
    h2o_context_dispose(&thr->admin_ctx);
    /* last: a live HTTP/2 connection's frame parser goes through the guard's table */
    gw_guard_thread_dispose(thr);
    return 1;
}

/* Creates the thread's h2o objects. Runs on the loop thread itself: h2o keeps per-thread
 * allocators (h2o_socket_buffer_prototype is __thread), so a loop's sockets and queue must be
 * created by the thread that will use them. */
static void thread_init(gw_thread_t *thr)
{
    gw_server_t *srv = thr->srv;

    thr->loop = h2o_evloop_create();
    h2o_context_init(&thr->ctx, thr->loop, &srv->h2o_config);
    h2o_context_init(&thr->admin_ctx, thr->loop, &srv->admin_config);
    thr->queue = h2o_multithread_create_queue(thr->loop);
    gw_guard_thread_init(thr);
    h2o_multithread_register_receiver(thr->queue, &thr->done_receiver, gw_batch_on_done);
    h2o_multithread_register_receiver(thr->queue, &thr->schema_receiver, gw_batch_on_schema);
    h2o_multithread_register_receiver(thr->queue, &thr->control_receiver, on_control);

    thr->accept_ctx.ctx = &thr->ctx;
    thr->accept_ctx.hosts = srv->h2o_config.hosts;
    thr->accept_ctx.ssl_ctx = srv->ssl_ctx;
    thr->admin_accept_ctx.ctx = &thr->admin_ctx;
    thr->admin_accept_ctx.hosts = srv->admin_config.hosts;
    if (srv->dedup != NULL)
        thr->dedup = dedup_thread_create(srv->dedup, thr->loop);
    thr->listener = start_listener(thr, thr->listen_fd, &thr->accept_ctx);
    thr->admin_listener = start_listener(thr, thr->admin_fd, &thr->admin_accept_ctx);
    thr->listen_fd = thr->admin_fd = -1; /* owned by the sockets now */
}

static void *thread_main(void *arg)
{
    gw_thread_t *thr = arg;
    gw_server_t *srv = thr->srv;
    uint64_t stop_deadline = 0;

    gw_current_thread = thr;
    thread_init(thr);
    pthread_barrier_wait(&srv->started);
    while (1) {
        h2o_evloop_run(thr->loop, thr->stop ? 20 : INT32_MAX);
        if (!thr->stop)
            continue;
        /* stopping: give answers already handed to h2o a moment to reach their sockets */
        if (stop_deadline == 0)
            stop_deadline = sl_now_ms() + 2000;
        if ((context_is_idle(&thr->ctx) && context_is_idle(&thr->admin_ctx)) ||
            sl_now_ms() > stop_deadline)
            break;
    }
    /* on this thread: its sockets and buffers belong to this thread's allocators */
    thr->released = thread_dispose(thr);
    return NULL;
}

void gw_server_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static size_t on_curl_data(char *data, size_t size, size_t n, void *arg)
{
    sl_buf_append(arg, data, size * n);
    return ((sl_buf_t *)arg)->overflow ? 0 : size * n;
}

/* The descriptor kept next to the cache's snapshot: the snapshot holds the .proto text, which
 * cannot be compiled here, so a restart with the registry down reads the descriptor back from
 * this file. Returns its bytes (malloc'd) or NULL. */
static uint8_t *descriptor_file(const gw_config_t *gc, uint32_t id, const uint8_t *save,
                                size_t save_len, size_t *len)
{
    char path[4200], tmp[4300];
    uint8_t *buf = NULL;
    FILE *f;
    long n;

    if (gc->schema.cache_dir == NULL || gc->schema.cache_dir[0] == '\0')
        return NULL;
    snprintf(path, sizeof(path), "%s/protobuf-%u.desc", gc->schema.cache_dir, id);
    if (save != NULL) { /* temp file + rename: a crash never leaves half a descriptor */
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        if ((f = fopen(tmp, "wb")) == NULL)
            return NULL;
        if (fwrite(save, 1, save_len, f) != save_len || fclose(f) != 0 || rename(tmp, path) != 0)
            SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "protobuf descriptor not persisted",
                               "id=%u errno=%d", id, errno);
        return NULL;
    }
    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
        (uint64_t)n <= gc->schema.max_schema_bytes && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* A Protobuf schema is compiled from its serialized FileDescriptorProto, which the registry
 * serves base64 at /schemas/ids/{id}?format=serialized: fetched here, on the cache's fetch
 * thread (where blocking is allowed), bounded like the cache's own fetches, and kept in
 * schema.cache_dir for restarts while the registry is down. */
static schema_t *compile_protobuf(const gw_config_t *gc, uint32_t id, char *errbuf, size_t errlen)
{
    char url[512];
    sl_buf_t body;
    CURL *curl = curl_easy_init();
    json_t *root = NULL;
    const char *b64;
    uint8_t *desc = NULL;
    size_t desc_len = 0;
    ssize_t n;
    long status = 0;
    schema_t *s = NULL;

    snprintf(url, sizeof(url), "%s/schemas/ids/%u?format=serialized", gc->schema.registry_url,
             id);
    sl_buf_init(&body, 2 * gc->schema.max_schema_bytes + 65536);
    if (curl == NULL)
        goto Done;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)gc->schema.fetch_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_curl_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    if (curl_easy_perform(curl) != CURLE_OK ||
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200) {
        if ((desc = descriptor_file(gc, id, NULL, 0, &desc_len)) != NULL)
            goto Compile; /* the registry is away: the copy kept at the last fetch */
        snprintf(errbuf, errlen, "schema %u: the serialized descriptor could not be fetched "
                 "(HTTP %ld)", id, status);
        goto Done;
    }
    if ((root = json_loadb(body.data, body.len, 0, NULL)) == NULL ||
        (b64 = json_string_value(json_object_get(root, "schema"))) == NULL) {
        snprintf(errbuf, errlen, "schema %u: no serialized descriptor in the answer", id);
        goto Done;
    }
    desc = malloc(strlen(b64) + 1);
    if (desc == NULL || (n = schema_base64_decode(b64, strlen(b64), desc, strlen(b64) + 1)) < 0) {
        snprintf(errbuf, errlen, "schema %u: the serialized descriptor is not base64", id);
        goto Done;
    }
    desc_len = (size_t)n;
    descriptor_file(gc, id, desc, desc_len, NULL);
Compile:
    s = schema_compile_protobuf(desc, desc_len, id, errbuf, errlen);
Done:
    free(desc);
    json_decref(root);
    sl_buf_dispose(&body);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    return s;
}

/* The registry cache's compiler. JSON events are encoded with AVRO record schemas; binary
 * records are validated against either kind (a PROTOBUF subject named by a JSON event's
 * event_type is refused by the encoder: schema/README.md). */
static void *compile_schema(void *ctx, const char *text, size_t len, const char *type, uint32_t id,
                            char *errbuf, size_t errlen)
{
    const gw_server_t *srv = ctx;
    if (strcmp(type, "PROTOBUF") == 0)
        return compile_protobuf(srv->gc, id, errbuf, errlen);
    if (strcmp(type, "AVRO") != 0) {
        snprintf(errbuf, errlen, "schema %u is %s: only AVRO and PROTOBUF are supported", id,
                 type);
        return NULL;
    }
    return schema_compile_avro(text, len, id, errbuf, errlen);
}

static void destroy_schema(void *ctx, void *compiled)
{
    schema_destroy(compiled);
}

gw_server_t *gw_server_create(const gw_config_t *gc, const sl_config_t *cfg, char *errbuf,
                              size_t errlen)
{
    gw_server_t *srv = calloc(1, sizeof(*srv));
    sl_producer_conf_t pconf = {0};
    /* a tenant's burst is at least one full batch, or a full batch could never pass */
    int64_t burst = gc->default_burst_events > 0 ? gc->default_burst_events : gc->default_rate_eps;
    gw_auth_defaults_t auth_defaults = {(double)gc->default_rate_eps,
                                        burst > gc->max_events ? burst : gc->max_events,
                                        gc->max_events};
    long ncpu;

    if (srv == NULL)
        abort();
    srv->gc = gc;
    pthread_mutex_init(&srv->drain_mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* a wall-clock step cannot cut the drain */
        pthread_cond_init(&srv->drain_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (gc->instance_id[0] != '\0')
        snprintf(srv->instance_id, sizeof(srv->instance_id), "%s", gc->instance_id);
    else if (gethostname(srv->instance_id, sizeof(srv->instance_id) - 1) != 0)
        snprintf(srv->instance_id, sizeof(srv->instance_id), "gateway");

    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    srv->n_threads = gc->threads > 0 ? (size_t)gc->threads : (size_t)(ncpu > 0 ? ncpu : 1);

    if (gw_auth_init(&srv->auth, gc->write_keys, gc->tenants_file, &auth_defaults, errbuf,
                     errlen) != 0)
        goto Fail;
    if (srv->auth.n_keys == 0)
        SL_WARN("no write keys (auth.write_keys, auth.tenants_file): every batch gets 401", NULL);

    /* h2o: the public host (TLS) and the admin host (plain HTTP), each with one dispatcher */
    h2o_config_init(&srv->h2o_config);
    srv->h2o_config.server_name = h2o_iovec_init(H2O_STRLIT("sluice"));
    /* h2o answers bodies past its own cap with a bare 413 and closes; below the cap we answer
     * with the JSON 413 that names the limits. Twice our limit keeps the buffering bounded. */
    srv->h2o_config.max_request_entity_size = (size_t)gc->max_body_bytes * 2;
    srv->h2o_config.http2.max_concurrent_requests_per_connection = (size_t)gc->max_streams_per_conn;
    /* slow clients: h2o 2.2.5 arms http1.req_timeout once per request (head and body together);
     * its http2 idle timer restarts on every frame, so trickling HTTP/2 requests are gw_guard's */
    srv->h2o_config.http1.req_timeout = (uint64_t)gc->header_timeout_ms;
    srv->h2o_config.http2.idle_timeout = (uint64_t)gc->idle_timeout_ms;
    srv->host = h2o_config_register_host(&srv->h2o_config, h2o_iovec_init(H2O_STRLIT("default")),
                                         65535);
    register_handler(srv, srv->host, 0);
    h2o_config_init(&srv->admin_config);
    srv->admin_config.server_name = h2o_iovec_init(H2O_STRLIT("sluice-admin"));
    srv->admin_config.max_request_entity_size = 64 * 1024;
    srv->admin_host = h2o_config_register_host(&srv->admin_config,
                                               h2o_iovec_init(H2O_STRLIT("default")), 65535);
    register_handler(srv, srv->admin_host, 1);

    if ((srv->ssl_ctx = gw_tls_create(gc, errbuf, errlen)) == NULL)
        goto Fail;
    if (gc->dedup.enabled) {
        dedup_conf_t dconf;
        if (dedup_conf_from_settings(&gc->dedup, &dconf, errbuf, errlen) != 0 ||
            (srv->dedup = dedup_create(&dconf, errbuf, errlen)) == NULL)
            goto Fail;
    }
    {
        schema_cache_ops_t ops = {.compile = compile_schema, .destroy = destroy_schema,
                                  .ctx = srv};
        if ((srv->schemas = schema_cache_create(&gc->schema, &ops, errbuf, errlen)) == NULL)
            goto Fail;
    }
    pconf.n = sl_config_passthrough(cfg, "kafka.", &pconf.keys, &pconf.values);
    pconf.health_topic = gc->topic;
    pconf.health_interval_ms = (int)gc->kafka_health_interval_ms;
    pconf.on_delivery = gw_batch_on_delivery;
    if ((srv->producer = sl_producer_create(&pconf, errbuf, errlen)) == NULL)
        goto Fail;

    srv->threads = calloc(srv->n_threads, sizeof(gw_thread_t));
    if (srv->threads == NULL)
        abort();
    pthread_barrier_init(&srv->started, NULL, (unsigned)srv->n_threads + 1);
    for (size_t i = 0; i < srv->n_threads; i++) {
        gw_thread_t *thr = &srv->threads[i];
        thr->srv = srv;
        thr->idx = i;
        thr->listen_fd = thr->admin_fd = -1;
        /* the first pair checks that nobody else holds the ports */
        if ((thr->listen_fd = bind_listener(gc->listen, i == 0, errbuf, errlen)) < 0 ||
            (thr->admin_fd = bind_listener(gc->admin_listen, i == 0, errbuf, errlen)) < 0)
            goto Fail;
    }
    return srv;
Fail:
    gw_server_destroy(srv);
    return NULL;
}

int gw_server_start(gw_server_t *srv)
{
    for (size_t i = 0; i < srv->n_threads; i++)
        if (pthread_create(&srv->threads[i].tid, NULL, thread_main, &srv->threads[i]) != 0)
            abort(); /* a half-started server cannot be drained; nothing is serving yet */
    pthread_barrier_wait(&srv->started); /* every loop is listening */
    srv->started_threads = 1;
    SL_INFO("gateway serving", "listen=%s admin=%s threads=%zu instance=%s", srv->gc->listen,
            srv->gc->admin_listen, srv->n_threads, srv->instance_id);
    return 0;
}

/* Waits until no batch is in flight or timeout_ms passed. Returns what is still in flight. */
static long wait_inflight(gw_server_t *srv, int64_t timeout_ms)
{
    struct timespec deadline;
    long left;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&srv->drain_mu);
    while ((left = atomic_load(&srv->inflight)) > 0 &&
           pthread_cond_timedwait(&srv->drain_cv, &srv->drain_mu, &deadline) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&srv->drain_mu);
    return atomic_load(&srv->inflight);
}

void gw_server_wait_and_drain(gw_server_t *srv)
{
    sigset_t set;
    int sig = 0;
    long left;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigwait(&set, &sig);

    /* 1. readiness false and new batches refused, 2. stop accepting, 3. wait for in-flight */
    atomic_store(&srv->draining, 1);
    SL_INFO("draining", "signal=%s inflight=%ld", sig == SIGINT ? "SIGINT" : "SIGTERM",
            atomic_load(&srv->inflight));
    for (size_t i = 0; i < srv->n_threads; i++)
        h2o_multithread_send_message(&srv->threads[i].control_receiver, &srv->threads[i].drain_msg);
    if ((left = wait_inflight(srv, srv->gc->drain_timeout_ms)) > 0) {
        /* out of time: whatever Kafka has not acked is purged, so those batches are answered
         * (their events "retry") while the loops still run */
        SL_ERROR("drain timeout: purging what Kafka has not acked", "inflight=%ld", left);
        sl_producer_purge(srv->producer);
        if ((left = wait_inflight(srv, 5000)) > 0)
            SL_ERROR("batches still unanswered after the purge", "inflight=%ld", left);
    }
    if (left == 0)
        SL_INFO("drained: no batch in flight", NULL);

    /* 4. no delivery report may reach a loop from now on; stop the loops (each gives its last
     * answers a moment to flush and releases its own h2o state) */
    sl_producer_detach(srv->producer);
    for (size_t i = 0; i < srv->n_threads; i++)
        h2o_multithread_send_message(&srv->threads[i].control_receiver, &srv->threads[i].stop_msg);
    for (size_t i = 0; i < srv->n_threads; i++)
        pthread_join(srv->threads[i].tid, NULL);
}

int gw_server_destroy(gw_server_t *srv)
{
    int undelivered = 0, all_released = 1;

    if (srv == NULL)
        return 0;
    /* the loops have exited: no delivery report may reach them any more */
    if (srv->producer != NULL) {
        sl_producer_detach(srv->producer);
        undelivered = sl_producer_destroy(srv->producer, (int)srv->gc->flush_timeout_ms);
    }
    /* a batch abandoned by a drain timeout may still wait for a fetch: its callback, run by the
     * destroy below, must not post to a loop that is gone */
    atomic_store(&srv->schemas_closing, 1);
    schema_cache_destroy(srv->schemas);
    if (srv->threads != NULL) {
        for (size_t i = 0; i < srv->n_threads; i++)
            all_released &= srv->started_threads ? srv->threads[i].released
                                                  : thread_dispose(&srv->threads[i]);
        pthread_barrier_destroy(&srv->started);
        if (all_released)
            free(srv->threads);
        else
            abandoned_threads = srv->threads;
    }
    if (srv->ssl_ctx != NULL)
        SSL_CTX_free(srv->ssl_ctx);
    if (srv->host != NULL)
        h2o_config_dispose(&srv->h2o_config);
    if (srv->admin_host != NULL)
        h2o_config_dispose(&srv->admin_config);
    dedup_destroy(srv->dedup);
    gw_auth_dispose(&srv->auth);
    pthread_cond_destroy(&srv->drain_cv);
    pthread_mutex_destroy(&srv->drain_mu);
    free(srv);
    return undelivered;
}
