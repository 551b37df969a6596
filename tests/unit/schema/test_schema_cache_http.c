/* The registry cache over real HTTP (libcurl, ops.fetch NULL) against a tiny plain-socket
 * registry double on 127.0.0.1:0 run by this test: latest / version / id answers, Confluent 404
 * errors, escaped subjects, a response over the size bound, a server error, a hung server
 * (fetch timeout) and a closed port. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "schema_cache.h"
#include "schema_cache_fakes.h"

#define WAIT_MS 10000

typedef struct {
    int lfd;
    int port;
    atomic_int stop;
    atomic_int requests;
    pthread_t tid;
    char last_path[512];
    pthread_mutex_t mu;
} server_t;

static void send_response(int fd, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, strlen(body));
    /* MSG_NOSIGNAL: the client may hang up mid-body (the over-bound answer) */
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL) < 0 ||
        send(fd, body, strlen(body), MSG_NOSIGNAL) < 0)
        return;
}

/* One request per connection: read the head (bounded), route, answer, close. */
static void serve_one(server_t *s, int fd)
{
    char req[4096], path[512] = "";
    size_t got = 0;
    static char big[300000];

    while (got < sizeof(req) - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&p, 1, 2000) <= 0)
            return;
        n = read(fd, req + got, sizeof(req) - 1 - got);
        if (n <= 0)
            return;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    if (sscanf(req, "GET %511s HTTP/1.1", path) != 1) {
        send_response(fd, 400, "{}");
        return;
    }
    pthread_mutex_lock(&s->mu);
    snprintf(s->last_path, sizeof(s->last_path), "%s", path);
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->requests, 1);
    if (strcmp(path, "/subjects") == 0) {
        send_response(fd, 200, "[]");
    } else if (strcmp(path, "/subjects/page_view/versions/latest") == 0 ||
               strcmp(path, "/subjects/page_view/versions/2") == 0) {
        send_response(fd, 200,
                      "{\"subject\":\"page_view\",\"version\":2,\"id\":21,"
                      "\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"pv\\\","
                      "\\\"fields\\\":[]}\"}");
    } else if (strcmp(path, "/subjects/a%20b/versions/latest") == 0) {
        send_response(fd, 200,
                      "{\"subject\":\"a b\",\"version\":1,\"id\":22,\"schemaType\":\"PROTOBUF\","
                      "\"schema\":\"syntax = \\\"proto3\\\"; message E {}\"}");
    } else if (strcmp(path, "/schemas/ids/21") == 0) {
        send_response(fd, 200,
                      "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"pv\\\","
                      "\\\"fields\\\":[]}\"}");
    } else if (strcmp(path, "/subjects/page_view/versions/5") == 0) {
        send_response(fd, 404, "{\"error_code\":40402,\"message\":\"Version 5 not found.\"}");
    } else if (strcmp(path, "/subjects/big/versions/latest") == 0) {
        memset(big, 'x', sizeof(big) - 1);
        send_response(fd, 200, big);
    } else if (strcmp(path, "/subjects/boom/versions/latest") == 0) {
        send_response(fd, 500, "{\"error_code\":50001,\"message\":\"store error\"}");
    } else if (strcmp(path, "/subjects/hang/versions/latest") == 0) {
        /* never answers: the client's timeout must end it */
        struct pollfd p = {fd, POLLIN, 0};
        while (!atomic_load(&s->stop) && poll(&p, 1, 50) == 0)
            ;
    } else {
        send_response(fd, 404, "{\"error_code\":40401,\"message\":\"Subject not found.\"}");
    }
}

static void *server_main(void *arg)
{
    server_t *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        int fd;
        if (poll(&p, 1, 50) <= 0)
            continue;
        fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(s, fd);
        close(fd);
    }
    return NULL;
}

static int listen_any(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void server_start(server_t *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = listen_any(&s->port);
    assert_int_equal(pthread_create(&s->tid, NULL, server_main, s), 0);
}

static void server_stop(server_t *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->tid, NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
}

static schema_cache_t *start_cache(harness_t *h, int port, char *url, size_t urllen)
{
    harness_init(h);
    h->ops.fetch = NULL; /* the real libcurl client */
    h->ops.now_ms = NULL;
    snprintf(url, urllen, "http://127.0.0.1:%d/", port); /* trailing '/' on purpose */
    h->s.registry_url = url;
    h->s.fetch_timeout_ms = 300;
    h->s.max_schema_bytes = 1024; /* so "big" (300 kB) is over the response bound */
    return harness_start(h);
}

static void test_real_http_registry(void **state)
{
    server_t srv;
    harness_t h;
    schema_cache_hit_t hit;
    schema_cache_stats_t st;
    char url[64];
    done_t d = {0};

    server_start(&srv);
    assert_non_null(start_cache(&h, srv.port, url, sizeof(url)));
    assert_int_equal(harness_lookup_wait(&h, "page_view", 0, &hit), SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 21);
    assert_int_equal(hit.version, 2);
    assert_string_equal(hit.type, "AVRO");
    assert_string_equal(((fake_compiled_t *)hit.compiled)->text,
                        "{\"type\":\"record\",\"name\":\"pv\",\"fields\":[]}");
    assert_true(schema_cache_is_warm(h.c));

    assert_int_equal(harness_lookup_wait(&h, "a b", 0, &hit), SCHEMA_CACHE_HIT);
    assert_int_equal(hit.id, 22);
    assert_string_equal(hit.type, "PROTOBUF");
    assert_int_equal(harness_lookup_wait(&h, "page_view", 5, &hit), SCHEMA_CACHE_NEGATIVE);
    assert_int_equal(harness_lookup_wait(&h, "nope", 0, &hit), SCHEMA_CACHE_NEGATIVE);
    /* a schema over the bound is unusable, not a registry failure: negative, no retry storm */
    assert_int_equal(harness_lookup_wait(&h, "big", 0, &hit), SCHEMA_CACHE_NEGATIVE);
    assert_int_equal(harness_lookup_wait(&h, "boom", 0, &hit), SCHEMA_CACHE_UNAVAILABLE);
    assert_int_equal(harness_lookup_wait(&h, "hang", 0, &hit), SCHEMA_CACHE_UNAVAILABLE);
    assert_int_equal(schema_cache_lookup_id(h.c, 21, &hit, on_done, &d), SCHEMA_CACHE_HIT);
    schema_cache_stats(h.c, &st);
    assert_int_equal(st.fetch_errors, 2);
    assert_int_equal(st.compile_errors, 1);
    assert_int_equal(st.schemas, 2);
    harness_dispose(&h);
    server_stop(&srv);
}

static void test_real_http_registry_unreachable(void **state)
{
    harness_t h;
    schema_cache_hit_t hit;
    char url[64];
    int port, fd = listen_any(&port);

    close(fd); /* nothing listens there now */
    assert_non_null(start_cache(&h, port, url, sizeof(url)));
    assert_int_equal(harness_lookup_wait(&h, "page_view", 0, &hit), SCHEMA_CACHE_UNAVAILABLE);
    assert_false(schema_cache_is_warm(h.c));
    harness_dispose(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_http_registry),
        cmocka_unit_test(test_real_http_registry_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
