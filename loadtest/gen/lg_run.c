/* The run: resolves the target, owns the shared TLS context and the worker threads, prints
 * the progress line every second, and turns SIGINT/SIGTERM into "stop generating, drain". */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "lg_int.h"

static volatile sig_atomic_t g_signalled;

static void on_signal(int sig)
{
    g_signalled = sig;
}

static int resolve(lg_run_t *run, char *errbuf, size_t errlen)
{
    const lg_conf_t *conf = run->conf;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(conf->host, conf->port, &hints, &res);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot resolve %s: %s", conf->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&run->addr, res->ai_addr, res->ai_addrlen);
    run->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static SSL_CTX *tls_context(const lg_conf_t *conf, char *errbuf, size_t errlen)
{
    static const unsigned char alpn_h2[] = "\x02h2", alpn_h1[] = "\x08http/1.1";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        goto Fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (conf->is_h1)
        SSL_CTX_set_alpn_protos(ctx, alpn_h1, sizeof(alpn_h1) - 1);
    else
        SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2) - 1);
    if (conf->cacert != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, conf->cacert, NULL) != 1) {
            snprintf(errbuf, errlen, "cannot load --cacert %s", conf->cacert);
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* the dev certificate is self-signed */
    }
    return ctx;
Fail:
    snprintf(errbuf, errlen, "TLS context: %s", ERR_error_string(ERR_get_error(), NULL));
    return NULL;
}

lg_run_t *lg_run_create(const lg_conf_t *conf, char *errbuf, size_t errlen)
{
    lg_run_t *run = lg_xcalloc(1, sizeof(*run));

    run->conf = conf;
    pthread_mutex_init(&run->mu, NULL);
    if (resolve(run, errbuf, errlen) != 0)
        goto Fail;
    for (int i = 0; i < conf->n_tenants; i++) {
        size_t n = strlen(conf->tenants[i].key) + 8;
        run->auth[i] = lg_xmalloc(n);
        snprintf(run->auth[i], n, "Bearer %s", conf->tenants[i].key);
    }
    if (conf->is_tls && (run->ssl_ctx = tls_context(conf, errbuf, errlen)) == NULL)
        goto Fail;
    run->workers = lg_xcalloc((size_t)conf->threads, sizeof(*run->workers));
    for (int i = 0; i < conf->threads; i++) {
        if ((run->workers[i] = lg_worker_create(run, conf, i, errbuf, errlen)) == NULL)
            goto Fail;
        run->n_workers++;
    }
    return run;
Fail:
    lg_run_destroy(run);
    return NULL;
}

void lg_run_start(lg_run_t *run)
{
    run->start_ns = lg_now_ns();
    atomic_store(&run->n_running, run->n_workers);
    for (int i = 0; i < run->n_workers; i++)
        if (pthread_create(&run->workers[i]->thr, NULL, lg_worker_main, run->workers[i]) != 0) {
            fprintf(stderr, "sluice-load: cannot start a worker thread\n");
            abort();
        }
}

void lg_run_publish(lg_run_t *run, lg_stats_t *tick)
{
    pthread_mutex_lock(&run->mu);
    lg_stats_merge(&run->tick, tick);
    pthread_mutex_unlock(&run->mu);
    memset(tick, 0, sizeof(*tick));
}

void lg_run_wait(lg_run_t *run)
{
    struct sigaction sa = {.sa_handler = on_signal};
    uint64_t next = run->start_ns + 1000000000u, last = run->start_ns;
    static lg_stats_t tick; /* large: not on the stack */
    int is_stopping = 0;

    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (atomic_load(&run->n_running) > 0) {
        uint64_t now = lg_now_ns(), until = next < now + 50000000u ? next : now + 50000000u;
        struct timespec ts = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        if (g_signalled && !is_stopping) {
            is_stopping = 1;
            atomic_store(&run->is_stopping, 1);
            fprintf(stderr, "sluice-load: signal %d: no new batches, draining\n", (int)g_signalled);
        }
        now = lg_now_ns();
        if (now < next)
            continue;
        pthread_mutex_lock(&run->mu);
        tick = run->tick;
        memset(&run->tick, 0, sizeof(run->tick));
        pthread_mutex_unlock(&run->mu);
        if (!run->conf->is_quiet)
            lg_report_progress(run->conf, &tick, (double)(now - run->start_ns) / 1e9,
                               (double)(now - last) / 1e9);
        last = now;
        next += 1000000000u;
    }
    for (int i = 0; i < run->n_workers; i++) {
        lg_worker_t *w = run->workers[i];
        pthread_join(w->thr, NULL);
        lg_stats_merge(&run->total, &w->st);
        if (w->end_ns > run->end_ns)
            run->end_ns = w->end_ns;
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

void lg_run_destroy(lg_run_t *run)
{
    if (run == NULL)
        return;
    for (int i = 0; i < run->n_workers; i++)
        lg_worker_destroy(run->workers[i]);
    free(run->workers);
    for (int i = 0; i < LG_MAX_TENANTS; i++)
        free(run->auth[i]);
    if (run->ssl_ctx != NULL)
        SSL_CTX_free(run->ssl_ctx);
    pthread_mutex_destroy(&run->mu);
    free(run);
}
