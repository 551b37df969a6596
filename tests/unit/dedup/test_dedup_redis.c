/* Tests for the hiredis <-> h2o evloop adapter, each against its own redis-server on a free
 * loopback port, driving an h2o evloop in the test thread: pipelines (binary-safe, large, error
 * replies, many at once, chained from callbacks), max_pending, command timeout, kill -9 and
 * restart, the circuit breaker's half-open probe, destroy with pipelines pending, connect
 * failures, backoff and connect timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dedup_redis.h"

extern char **environ;

/* ---------------------------------------------------------------------------------------------
 * Time, loop driving
 * ------------------------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Open descriptors of this process: the adapter must not leak its fd or h2o's dup of it. */
static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static void nap_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000};
    nanosleep(&ts, NULL);
}

/* Runs the loop until cond(arg) holds or timeout_ms passed; returns cond(arg). */
static int run_until(h2o_evloop_t *loop, int (*cond)(void *), void *arg, int64_t timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (!cond(arg) && now_ms() < deadline)
        h2o_evloop_run(loop, 10);
    return cond(arg);
}

static void run_for(h2o_evloop_t *loop, int64_t ms)
{
    int64_t deadline = now_ms() + ms;
    while (now_ms() < deadline)
        h2o_evloop_run(loop, 5);
}

/* ---------------------------------------------------------------------------------------------
 * redis-server processes
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int port;
    char unix_path[108]; /* empty: TCP on port */
} srv_t;

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static redisContext *srv_connect(const srv_t *s)
{
    struct timeval tv = {0, 300000};
    return s->unix_path[0] != '\0' ? redisConnectUnixWithTimeout(s->unix_path, tv)
                                   : redisConnectWithTimeout("127.0.0.1", s->port, tv);
}

static int srv_answers(const srv_t *s)
{
    redisContext *c = srv_connect(s);
    redisReply *reply = NULL;
    int ok = c != NULL && c->err == 0 && (reply = redisCommand(c, "PING")) != NULL &&
             reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
    if (reply != NULL)
        freeReplyObject(reply);
    redisFree(c);
    return ok;
}

/* Spawns redis-server and polls (10 s deadline) until it answers PING. */
static int srv_start(srv_t *s)
{
    char port[16];
    char *argv[16];
    int argc = 0, rc;
    posix_spawn_file_actions_t fa;
    int64_t deadline;

    snprintf(port, sizeof(port), "%d", s->unix_path[0] != '\0' ? 0 : s->port);
    argv[argc++] = "redis-server";
    argv[argc++] = "--port";
    argv[argc++] = port;
    argv[argc++] = "--bind";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--save";
    argv[argc++] = "";
    argv[argc++] = "--appendonly";
    argv[argc++] = "no";
    if (s->unix_path[0] != '\0') {
        argv[argc++] = "--unixsocket";
        argv[argc++] = s->unix_path;
    }
    argv[argc] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc = posix_spawnp(&s->pid, "redis-server", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        s->pid = 0;
        return -1;
    }
    for (deadline = now_ms() + 10000; now_ms() < deadline; nap_ms(5)) {
        if (srv_answers(s))
            return 0;
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return -1;
        }
    }
    return -1;
}

static void srv_kill(srv_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

/* A synchronous command on a connection of its own (fine in a test, never in the adapter). */
static void srv_cmd(const srv_t *s, const char *cmd)
{
    redisContext *c = srv_connect(s);
    redisReply *reply;
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    reply = redisCommand(c, cmd);
    assert_non_null(reply);
    assert_int_not_equal(reply->type, REDIS_REPLY_ERROR);
    freeReplyObject(reply);
    redisFree(c);
}

/* ---------------------------------------------------------------------------------------------
 * Commands and results
 * ------------------------------------------------------------------------------------------- */

#define MAX_CMDS 1024
#define MAX_ARGS 4

typedef struct {
    size_t n;
    int argc[MAX_CMDS];
    const char *args[MAX_CMDS][MAX_ARGS];
    size_t lens[MAX_CMDS][MAX_ARGS];
    const char *const *argv[MAX_CMDS];
    const size_t *argvlen[MAX_CMDS];
} cmds_t;

static cmds_t *cmds_new(void)
{
    cmds_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    return c;
}

/* Appends a command of argc binary arguments given as (const char *, size_t) pairs. */
static void cmds_addb(cmds_t *c, int argc, ...)
{
    va_list ap;
    size_t i = c->n++;
    assert_true(i < MAX_CMDS && argc <= MAX_ARGS);
    va_start(ap, argc);
    for (int k = 0; k < argc; k++) {
        c->args[i][k] = va_arg(ap, const char *);
        c->lens[i][k] = va_arg(ap, size_t);
    }
    va_end(ap);
    c->argc[i] = argc;
    c->argv[i] = c->args[i];
    c->argvlen[i] = c->lens[i];
}

/* Appends a command of NUL-terminated arguments, NULL-terminated list. */
static void cmds_add(cmds_t *c, ...)
{
    va_list ap;
    const char *a;
    size_t i = c->n++;
    int argc = 0;
    assert_true(i < MAX_CMDS);
    va_start(ap, c);
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(argc < MAX_ARGS);
        c->args[i][argc] = a;
        c->lens[i][argc] = strlen(a);
        argc++;
    }
    va_end(ap);
    c->argc[i] = argc;
    c->argv[i] = c->args[i];
    c->argvlen[i] = c->lens[i];
}

typedef struct {
    int type;
    long long integer;
    char *str;
    size_t len;
    size_t elements;
    int elem_types[4];
} rcopy_t;

typedef struct {
    int calls;
    const char *err;
    size_t n;
    rcopy_t *replies; /* copies made inside the callback (the adapter frees the originals) */
    int64_t at_ms;
    int seq; /* order in which callbacks ran, across results */
    /* optional: from inside the callback, try to submit another pipeline to this adapter */
    dedup_redis_t *submit_again;
    int again_rc;
    const char *again_err;
} res_t;

static int g_seq;

static void on_result(void *arg, const char *err, redisReply **replies, size_t n)
{
    res_t *res = arg;

    res->calls++;
    res->err = err;
    res->n = n;
    res->at_ms = now_ms();
    res->seq = ++g_seq;
    if (replies != NULL && res->replies == NULL) {
        res->replies = calloc(n, sizeof(*res->replies));
        for (size_t i = 0; i < n; i++) {
            rcopy_t *c = &res->replies[i];
            c->type = replies[i]->type;
            c->integer = replies[i]->integer;
            if (replies[i]->str != NULL) {
                c->str = malloc(replies[i]->len + 1);
                memcpy(c->str, replies[i]->str, replies[i]->len + 1);
                c->len = replies[i]->len;
            }
            c->elements = replies[i]->elements;
            for (size_t k = 0; k < replies[i]->elements && k < 4; k++)
                c->elem_types[k] = replies[i]->element[k]->type;
        }
    }
    if (res->submit_again != NULL) {
        static const char *const ping[] = {"PING"};
        static const size_t ping_len[] = {4};
        static const int one = 1;
        const char *const *argv[] = {ping};
        const size_t *lens[] = {ping_len};
        static res_t ignored;
        res->again_rc = dedup_redis_pipeline(res->submit_again, 1, &one, argv, lens, on_result,
                                             &ignored, &res->again_err);
    }
}

static void res_dispose(res_t *res)
{
    if (res->replies != NULL)
        for (size_t i = 0; i < res->n; i++)
            free(res->replies[i].str);
    free(res->replies);
    memset(res, 0, sizeof(*res));
}

static int res_done(void *arg)
{
    return ((res_t *)arg)->calls > 0;
}

typedef struct {
    res_t *res;
    size_t n;
} res_set_t;

static int all_done(void *arg)
{
    res_set_t *s = arg;
    for (size_t i = 0; i < s->n; i++)
        if (s->res[i].calls == 0)
            return 0;
    return 1;
}

static int submit(dedup_redis_t *r, const cmds_t *c, res_t *res, const char **err)
{
    return dedup_redis_pipeline(r, c->n, c->argc, c->argv, c->argvlen, on_result, res, err);
}

static int submit_ping(dedup_redis_t *r, res_t *res, const char **err)
{
    static const char *const ping[] = {"PING"};
    static const size_t ping_len[] = {4};
    static const int one = 1;
    const char *const *argv[] = {ping};
    const size_t *lens[] = {ping_len};
    return dedup_redis_pipeline(r, 1, &one, argv, lens, on_result, res, err);
}

static int is_up(void *arg)
{
    return dedup_redis_is_up(arg);
}

static void expect_status(const rcopy_t *c, const char *s)
{
    assert_int_equal(c->type, REDIS_REPLY_STATUS);
    assert_string_equal(c->str, s);
}

static void expect_error_prefix(const rcopy_t *c, const char *prefix)
{
    assert_int_equal(c->type, REDIS_REPLY_ERROR);
    assert_non_null(c->str);
    assert_memory_equal(c->str, prefix, strlen(prefix));
}

/* ---------------------------------------------------------------------------------------------
 * Fixture: a redis-server, an evloop, an adapter
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    srv_t srv;
    h2o_evloop_t *loop;
    dedup_redis_t *r;
    dedup_redis_conf_t conf;
} fx_t;

static dedup_redis_conf_t default_conf(int port)
{
    dedup_redis_conf_t conf = {
        .host = "127.0.0.1",
        .port = port,
        .connect_timeout_ms = 1000,
        .command_timeout_ms = 5000, /* generous: ASan builds are slow */
        .reconnect_min_ms = 20,
        .reconnect_max_ms = 100,
        .breaker_failures = 5,
        .breaker_open_ms = 300,
        .max_pending = 1024,
    };
    return conf;
}

/* A loop and a port, no server: for the tests where nothing listens. */
static int setup_no_server(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->srv.port = free_port();
    assert_true(fx->srv.port > 0);
    fx->loop = h2o_evloop_create();
    fx->conf = default_conf(fx->srv.port);
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    fx_t *fx;
    setup_no_server(state);
    fx = *state;
    if (srv_start(&fx->srv) != 0) {
        fprintf(stderr, "redis-server did not start on port %d\n", fx->srv.port);
        return -1;
    }
    return 0;
}

static int setup_unix(void **state)
{
    fx_t *fx;
    setup_no_server(state);
    fx = *state;
    snprintf(fx->srv.unix_path, sizeof(fx->srv.unix_path), "/tmp/sluice-test-dedup-%d.sock",
             (int)getpid());
    unlink(fx->srv.unix_path);
    fx->conf.unix_path = fx->srv.unix_path;
    return srv_start(&fx->srv) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    dedup_redis_destroy(fx->r);
    srv_kill(&fx->srv);
    if (fx->srv.unix_path[0] != '\0')
        unlink(fx->srv.unix_path);
    h2o_evloop_destroy(fx->loop); /* asserts every timeout was disposed */
    free(fx);
    return 0;
}

static void fx_connect(fx_t *fx)
{
    fx->r = dedup_redis_create(fx->loop, &fx->conf);
    assert_non_null(fx->r);
    assert_true(run_until(fx->loop, is_up, fx->r, 5000));
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------------- */

/* 500 SETs then 500 GETs in one pipeline; keys and values with NUL, CR, LF, empty and 20 kB
 * values: every reply in order and byte-exact. */
static void test_pipeline_1000_binary(void **state)
{
    fx_t *fx = *state;
    enum { N = 500 };
    static char keys[N][24], vals[N][20000];
    size_t klen[N], vlen[N];
    cmds_t *c = cmds_new();
    res_t res = {0};
    const char *err = NULL;
    dedup_redis_stats_t st;

    fx_connect(fx);
    for (int i = 0; i < N; i++) {
        keys[i][0] = 'k', keys[i][1] = '\0', keys[i][2] = '\r', keys[i][3] = '\n';
        klen[i] = 4 + (size_t)sprintf(keys[i] + 4, "%d", i);
        vlen[i] = i == 250 ? sizeof(vals[i]) : (size_t)(i * 37) % 300;
        for (size_t j = 0; j < vlen[i]; j++)
            vals[i][j] = (char)((i + j * 7) & 0xff);
    }
    for (int i = 0; i < N; i++)
        cmds_addb(c, 3, "SET", (size_t)3, keys[i], klen[i], vals[i], vlen[i]);
    for (int i = 0; i < N; i++)
        cmds_addb(c, 2, "GET", (size_t)3, keys[i], klen[i]);

    assert_int_equal(submit(fx->r, c, &res, &err), 0);
    assert_int_equal(res.calls, 0); /* never from inside dedup_redis_pipeline */
    assert_true(run_until(fx->loop, res_done, &res, 10000));
    assert_int_equal(res.calls, 1);
    assert_null(res.err);
    assert_int_equal(res.n, 2 * N);
    for (int i = 0; i < N; i++)
        expect_status(&res.replies[i], "OK");
    for (int i = 0; i < N; i++) {
        const rcopy_t *g = &res.replies[N + i];
        assert_int_equal(g->type, REDIS_REPLY_STRING);
        assert_int_equal(g->len, vlen[i]);
        assert_memory_equal(g->str, vals[i], vlen[i]);
    }
    run_for(fx->loop, 20);
    assert_int_equal(res.calls, 1);
    dedup_redis_stats(fx->r, &st);
    assert_int_equal(st.pipelines_ok, 1);
    assert_int_equal(st.pipelines_failed, 0);
    assert_true(st.rtt_us_last > 0);
    res_dispose(&res);
    free(c);
}

/* 32 x 256 kB in one pipeline: hiredis's writes are partial and it re-arms write through the
 * adapter; the GETs come back over many reads. */
static void test_large_values(void **state)
{
    fx_t *fx = *state;
    enum { N = 32, LEN = 256 * 1024 };
    char *vals = malloc((size_t)N * LEN);
    char keys[N][16];
    cmds_t *set = cmds_new(), *get = cmds_new();
    res_t rs = {0}, rg = {0};
    const char *err;

    fx->conf.command_timeout_ms = 20000;
    fx_connect(fx);
    for (size_t i = 0; i < (size_t)N * LEN; i++)
        vals[i] = (char)(i * 2654435761u >> 13);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "big%d", i);
        cmds_addb(set, 3, "SET", (size_t)3, keys[i], strlen(keys[i]), vals + (size_t)i * LEN,
                  (size_t)LEN);
        cmds_addb(get, 2, "GET", (size_t)3, keys[i], strlen(keys[i]));
    }
    assert_int_equal(submit(fx->r, set, &rs, &err), 0);
    assert_int_equal(submit(fx->r, get, &rg, &err), 0);
    assert_true(run_until(fx->loop, res_done, &rg, 20000));
    assert_int_equal(rs.calls, 1);
    assert_null(rs.err);
    assert_true(rs.seq < rg.seq);
    assert_int_equal(rg.calls, 1);
    assert_null(rg.err);
    for (int i = 0; i < N; i++) {
        expect_status(&rs.replies[i], "OK");
        assert_int_equal(rg.replies[i].type, REDIS_REPLY_STRING);
        assert_int_equal(rg.replies[i].len, LEN);
        assert_memory_equal(rg.replies[i].str, vals + (size_t)i * LEN, LEN);
    }
    res_dispose(&rs);
    res_dispose(&rg);
    free(set);
    free(get);
    free(vals);
}

/* Error replies are replies: they sit at their index and the pipeline still succeeds; the
 * connection stays usable. */
static void test_error_replies(void **state)
{
    fx_t *fx = *state;
    cmds_t *c = cmds_new();
    res_t res = {0}, res2 = {0};
    const char *err;
    dedup_redis_stats_t st;

    fx_connect(fx);
    cmds_add(c, "SET", "s", "abc", NULL);
    cmds_add(c, "INCR", "s", NULL);
    cmds_add(c, "NOSUCHCOMMAND", "x", NULL);
    cmds_add(c, "LPUSH", "s", "x", NULL);
    cmds_add(c, "GET", "s", NULL);
    cmds_add(c, "INCR", "n", NULL);
    cmds_add(c, "GET", "missing", NULL);
    cmds_add(c, "MGET", "s", "missing", NULL);
    cmds_add(c, "SET", "k", NULL); /* wrong number of arguments */
    assert_int_equal(submit(fx->r, c, &res, &err), 0);
    assert_true(run_until(fx->loop, res_done, &res, 5000));
    assert_null(res.err);
    assert_int_equal(res.n, 9);
    expect_status(&res.replies[0], "OK");
    expect_error_prefix(&res.replies[1], "ERR value is not an integer");
    expect_error_prefix(&res.replies[2], "ERR unknown command");
    expect_error_prefix(&res.replies[3], "WRONGTYPE");
    assert_int_equal(res.replies[4].type, REDIS_REPLY_STRING);
    assert_string_equal(res.replies[4].str, "abc");
    assert_int_equal(res.replies[5].type, REDIS_REPLY_INTEGER);
    assert_int_equal(res.replies[5].integer, 1);
    assert_int_equal(res.replies[6].type, REDIS_REPLY_NIL);
    assert_int_equal(res.replies[7].type, REDIS_REPLY_ARRAY);
    assert_int_equal(res.replies[7].elements, 2);
    assert_int_equal(res.replies[7].elem_types[0], REDIS_REPLY_STRING);
    assert_int_equal(res.replies[7].elem_types[1], REDIS_REPLY_NIL);
    expect_error_prefix(&res.replies[8], "ERR wrong number of arguments");

    assert_int_equal(submit_ping(fx->r, &res2, &err), 0);
    assert_true(run_until(fx->loop, res_done, &res2, 5000));
    assert_null(res2.err);
    expect_status(&res2.replies[0], "PONG");
    dedup_redis_stats(fx->r, &st);
    assert_int_equal(st.pipelines_ok, 2);
    assert_int_equal(st.pipelines_failed, 0);
    assert_true(dedup_redis_is_up(fx->r));
    res_dispose(&res);
    res_dispose(&res2);
    free(c);
}

/* 300 pipelines submitted in one go: each gets its own replies, callbacks in submission order. */
static void test_many_concurrent(void **state)
{
    fx_t *fx = *state;
    enum { N = 300 };
    static char keys[N][16], vals[N][16];
    cmds_t *c = cmds_new();
    res_t *res = calloc(N, sizeof(*res));
    res_set_t set = {res, N};
    const char *err;
    dedup_redis_stats_t st;

    fx_connect(fx);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "c%d", i);
        snprintf(vals[i], sizeof(vals[i]), "%d", i * 10);
        c->n = 0;
        cmds_add(c, "SET", keys[i], vals[i], NULL);
        cmds_add(c, "INCR", keys[i], NULL);
        cmds_add(c, "GET", keys[i], NULL);
        assert_int_equal(submit(fx->r, c, &res[i], &err), 0);
    }
    assert_true(run_until(fx->loop, all_done, &set, 10000));
    for (int i = 0; i < N; i++) {
        char want[16];
        assert_int_equal(res[i].calls, 1);
        assert_null(res[i].err);
        assert_int_equal(res[i].n, 3);
        expect_status(&res[i].replies[0], "OK");
        assert_int_equal(res[i].replies[1].type, REDIS_REPLY_INTEGER);
        assert_int_equal(res[i].replies[1].integer, i * 10 + 1);
        snprintf(want, sizeof(want), "%d", i * 10 + 1);
        assert_string_equal(res[i].replies[2].str, want);
        if (i > 0)
            assert_true(res[i - 1].seq < res[i].seq);
    }
    dedup_redis_stats(fx->r, &st);
    assert_int_equal(st.pipelines_ok, N);
    for (int i = 0; i < N; i++)
        res_dispose(&res[i]);
    free(res);
    free(c);
}

typedef struct {
    dedup_redis_t *r;
    int left, ok, failed, submit_failed;
} chain_t;

static void on_chain(void *arg, const char *err, redisReply **replies, size_t n)
{
    static const char *const incr[] = {"INCR", "chain"};
    static const size_t incr_len[] = {4, 5};
    static const int two = 2;
    const char *const *argv[] = {incr};
    const size_t *lens[] = {incr_len};
    chain_t *ch = arg;
    const char *e;

    if (err != NULL || n != 1 || replies[0]->type != REDIS_REPLY_INTEGER) {
        ch->failed++;
        return;
    }
    ch->ok++;
    if (--ch->left > 0 && dedup_redis_pipeline(ch->r, 1, &two, argv, lens, on_chain, ch, &e) != 0)
        ch->submit_failed++;
}

static int chain_done(void *arg)
{
    chain_t *ch = arg;
    return ch->left == 0 || ch->failed > 0 || ch->submit_failed > 0;
}

/* Each callback submits the next pipeline: 100 in a row. */
static void test_pipeline_from_callback(void **state)
{
    fx_t *fx = *state;
    static const char *const incr[] = {"INCR", "chain"};
    static const size_t incr_len[] = {4, 5};
    static const int two = 2;
    const char *const *argv[] = {incr};
    const size_t *lens[] = {incr_len};
    chain_t ch = {0};
    const char *err;

    fx_connect(fx);
    ch.r = fx->r;
    ch.left = 100;
    assert_int_equal(dedup_redis_pipeline(fx->r, 1, &two, argv, lens, on_chain, &ch, &err), 0);
    assert_true(run_until(fx->loop, chain_done, &ch, 10000));
    assert_int_equal(ch.ok, 100);
    assert_int_equal(ch.failed, 0);
    assert_int_equal(ch.submit_failed, 0);
}

/* max_pending bounds the pipelines in flight; the refused one never gets a callback. */
static void test_max_pending(void **state)
{
    fx_t *fx = *state;
    res_t res[5] = {{0}};
    res_set_t set = {res, 4};
    const char *err = NULL;

    fx->conf.max_pending = 4;
    fx_connect(fx);
    for (int i = 0; i < 4; i++)
        assert_int_equal(submit_ping(fx->r, &res[i], &err), 0);
    err = NULL;
    assert_int_equal(submit_ping(fx->r, &res[4], &err), -1);
    assert_string_equal(err, "too many pending");
    assert_true(run_until(fx->loop, all_done, &set, 5000));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_null(res[i].err);
    }
    run_for(fx->loop, 20);
    assert_int_equal(res[4].calls, 0);
    assert_int_equal(submit_ping(fx->r, &res[4], &err), 0); /* room again */
    assert_true(run_until(fx->loop, res_done, &res[4], 5000));
    assert_null(res[4].err);
    for (int i = 0; i < 5; i++)
        res_dispose(&res[i]);
}

/* Pubsub/MONITOR would break the one-callback-per-command accounting: refused up front. */
static void test_unsupported_command(void **state)
{
    fx_t *fx = *state;
    cmds_t *c = cmds_new();
    res_t res = {0};
    const char *err = NULL;

    fx_connect(fx);
    cmds_add(c, "PING", NULL);
    cmds_add(c, "subscribe", "ch", NULL);
    assert_int_equal(submit(fx->r, c, &res, &err), -1);
    assert_string_equal(err, "unsupported command");
    assert_int_equal(submit_ping(fx->r, &res, &err), 0);
    assert_true(run_until(fx->loop, res_done, &res, 5000));
    assert_null(res.err);
    res_dispose(&res);
    free(c);
}

/* Redis stalls (CLIENT PAUSE from another connection): the oldest pipeline fails with "timeout"
 * after ~command_timeout_ms, the one behind it with "disconnected"; the adapter reconnects and,
 * once Redis answers again, pipelines succeed. */
static void test_command_timeout(void **state)
{
    fx_t *fx = *state;
    res_t a = {0}, b = {0}, probe = {0};
    const char *err;
    int64_t t0, deadline;
    int has_success = 0;
    dedup_redis_stats_t st;

    int fds_before = count_fds();

    fx->conf.command_timeout_ms = 200;
    fx->conf.breaker_failures = 1000; /* this test is about the timeout, not the breaker */
    fx_connect(fx);
    srv_cmd(&fx->srv, "CLIENT PAUSE 1000 ALL");
    t0 = now_ms();
    assert_int_equal(submit_ping(fx->r, &a, &err), 0);
    assert_int_equal(submit_ping(fx->r, &b, &err), 0);
    assert_true(run_until(fx->loop, res_done, &b, 3000));
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_string_equal(a.err, "timeout");
    assert_string_equal(b.err, "disconnected");
    assert_true(a.seq < b.seq);
    assert_in_range(a.at_ms - t0, 180, 700);
    assert_true(b.at_ms - a.at_ms < 50);
    dedup_redis_stats(fx->r, &st);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.pipelines_failed, 2);

    /* keep one probe in flight until the pause is over and one succeeds */
    for (deadline = now_ms() + 8000; !has_success && now_ms() < deadline;) {
        if (submit_ping(fx->r, &probe, &err) != 0) {
            h2o_evloop_run(fx->loop, 10);
            continue;
        }
        run_until(fx->loop, res_done, &probe, 3000);
        has_success = probe.calls == 1 && probe.err == NULL;
        res_dispose(&probe);
    }
    assert_true(has_success);
    assert_true(now_ms() - t0 >= 900); /* not before Redis resumed */
    dedup_redis_stats(fx->r, &st);
    assert_true(st.reconnects >= 1);
    assert_true(st.timeouts >= 1);
    assert_true(dedup_redis_is_up(fx->r));
    dedup_redis_destroy(fx->r);
    fx->r = NULL;
    assert_int_equal(count_fds(), fds_before); /* several connections came and went */
    res_dispose(&a);
    res_dispose(&b);
}

/* kill -9: pending pipelines get "disconnected"; new ones fail fast; after breaker_failures
 * failures the circuit opens and pipelines fail at once with "circuit open". Redis comes back on
 * the same port: the adapter reconnects, its own probe closes the circuit, pipelines succeed. */
static void test_kill_restart_breaker(void **state)
{
    fx_t *fx = *state;
    enum { NP = 5 };
    res_t res[NP] = {{0}}, r1 = {0}, extra = {0};
    res_set_t set = {res, NP};
    const char *err;
    int64_t t0, deadline, worst_ms = 0;
    int refused_not_connected = 0, refused_open = 0, accepted = 0;
    dedup_redis_stats_t st;

    int fds_before = count_fds();

    fx->conf.breaker_failures = 3;
    fx->conf.breaker_open_ms = 300;
    fx_connect(fx);
    assert_int_equal(submit_ping(fx->r, &r1, &err), 0);
    assert_true(run_until(fx->loop, res_done, &r1, 5000));
    assert_null(r1.err);

    srv_cmd(&fx->srv, "CLIENT PAUSE 10000 ALL"); /* so the pipelines are surely pending */
    for (int i = 0; i < NP; i++)
        assert_int_equal(submit_ping(fx->r, &res[i], &err), 0);
    run_for(fx->loop, 100);
    for (int i = 0; i < NP; i++)
        assert_int_equal(res[i].calls, 0);
    t0 = now_ms();
    srv_kill(&fx->srv);
    assert_true(run_until(fx->loop, all_done, &set, 2000));
    for (int i = 0; i < NP; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_string_equal(res[i].err, "disconnected");
        assert_in_range(res[i].at_ms - t0, 0, 500);
    }
    assert_false(dedup_redis_is_up(fx->r));

    /* new pipelines: refused at once, or accepted during a connect attempt and failed as soon as
     * it is refused; until the circuit opens */
    for (deadline = now_ms() + 3000; !dedup_redis_circuit_open(fx->r) && now_ms() < deadline;) {
        res_t one = {0};
        int64_t t = now_ms();
        if (submit_ping(fx->r, &one, &err) != 0) {
            if (strcmp(err, "not connected") == 0)
                refused_not_connected++;
            else if (strcmp(err, "circuit open") == 0)
                refused_open++;
            else
                fail_msg("unexpected refusal %s", err);
        } else {
            accepted++;
            assert_true(run_until(fx->loop, res_done, &one, 1000));
            assert_string_equal(one.err, "disconnected");
            res_dispose(&one);
        }
        if (now_ms() - t > worst_ms)
            worst_ms = now_ms() - t;
        h2o_evloop_run(fx->loop, 5);
    }
    assert_true(dedup_redis_circuit_open(fx->r));
    assert_true(refused_not_connected + accepted > 0);
    assert_true(worst_ms < 200);
    dedup_redis_stats(fx->r, &st);
    assert_int_equal(st.breaker_opens, 1);
    assert_true(st.connect_failures >= 2); /* + the lost connection = 3 failures */

    /* open: fails at once, no I/O */
    {
        int64_t t = now_ms();
        assert_int_equal(submit_ping(fx->r, &extra, &err), -1);
        assert_string_equal(err, "circuit open");
        assert_true(now_ms() - t < 5);
    }
    assert_false(dedup_redis_is_up(fx->r));

    /* Redis is back: the adapter reconnects and probes by itself, no traffic needed */
    assert_int_equal(srv_start(&fx->srv), 0);
    assert_true(run_until(fx->loop, is_up, fx->r, 8000));
    assert_false(dedup_redis_circuit_open(fx->r));
    dedup_redis_stats(fx->r, &st);
    assert_true(st.reconnects >= 1);
    assert_int_equal(extra.calls, 0);

    /* and a normal pipeline works */
    assert_int_equal(submit_ping(fx->r, &r1, &err), 0);
    r1.calls = 0;
    assert_true(run_until(fx->loop, res_done, &r1, 5000));
    assert_null(r1.err);
    dedup_redis_destroy(fx->r);
    fx->r = NULL;
    assert_int_equal(count_fds(), fds_before);
    res_dispose(&r1);
    for (int i = 0; i < NP; i++)
        res_dispose(&res[i]);
}

typedef struct {
    dedup_redis_t *r;
    uint64_t opens;
} opens_t;

static int opens_reached(void *arg)
{
    opens_t *o = arg;
    dedup_redis_stats_t st;
    dedup_redis_stats(o->r, &st);
    return st.breaker_opens >= o->opens;
}

/* Redis accepts connections but does not answer (CLIENT PAUSE): timeouts open the circuit;
 * after breaker_open_ms it is half-open and the adapter's own PING is the one probe (a pipeline
 * then gets "circuit open"); the probe times out and the circuit opens again; once Redis
 * answers, a probe succeeds and the circuit closes, without any pipeline from us. */
static void test_breaker_half_open_probe(void **state)
{
    fx_t *fx = *state;
    res_t res = {0}, extra = {0};
    const char *err;
    int64_t t0, deadline;
    opens_t o = {NULL, 1};
    dedup_redis_stats_t st;

    fx->conf.command_timeout_ms = 100;
    fx->conf.breaker_failures = 2;
    fx->conf.breaker_open_ms = 300;
    fx_connect(fx);
    o.r = fx->r;
    t0 = now_ms();
    srv_cmd(&fx->srv, "CLIENT PAUSE 1500 ALL");
    /* two timeouts: two failures */
    for (deadline = now_ms() + 3000; !dedup_redis_circuit_open(fx->r) && now_ms() < deadline;) {
        if (submit_ping(fx->r, &res, &err) != 0) {
            h2o_evloop_run(fx->loop, 5);
            continue;
        }
        assert_true(run_until(fx->loop, res_done, &res, 2000));
        assert_string_equal(res.err, "timeout");
        res_dispose(&res);
    }
    assert_true(dedup_redis_circuit_open(fx->r));
    dedup_redis_stats(fx->r, &st);
    assert_int_equal(st.timeouts, 2);
    assert_int_equal(st.breaker_opens, 1);
    assert_int_equal(submit_ping(fx->r, &extra, &err), -1);
    assert_string_equal(err, "circuit open");

    /* the open period ends; the reconnect after the timeout is up by now, so the adapter's PING
     * is in flight (stalled) and is the only probe */
    for (deadline = now_ms() + 2000; dedup_redis_circuit_open(fx->r) && now_ms() < deadline;)
        h2o_evloop_run(fx->loop, 5);
    h2o_evloop_run(fx->loop, 0);
    assert_false(dedup_redis_circuit_open(fx->r));
    assert_false(dedup_redis_is_up(fx->r));
    assert_true(now_ms() - t0 < 1400); /* still paused */
    assert_int_equal(submit_ping(fx->r, &extra, &err), -1);
    assert_string_equal(err, "circuit open");

    /* the probe times out: open again */
    o.opens = 2;
    assert_true(run_until(fx->loop, opens_reached, &o, 2000));
    assert_true(dedup_redis_circuit_open(fx->r));

    /* Redis answers again after the pause; a later probe closes the circuit */
    assert_true(run_until(fx->loop, is_up, fx->r, 5000));
    assert_true(now_ms() - t0 >= 1400);
    dedup_redis_stats(fx->r, &st);
    assert_int_equal(st.pipelines_failed, 2); /* the adapter's probes are not counted */
    assert_int_equal(st.pipelines_ok, 0);
    assert_int_equal(submit_ping(fx->r, &res, &err), 0);
    assert_true(run_until(fx->loop, res_done, &res, 5000));
    assert_null(res.err);
    assert_int_equal(extra.calls, 0);
    res_dispose(&res);
}

/* destroy with pipelines pending: every callback exactly once with "disconnected", before
 * destroy returns; a pipeline submitted from such a callback is refused. */
static void test_destroy_with_pending(void **state)
{
    fx_t *fx = *state;
    enum { NP = 10 };
    res_t res[NP] = {{0}};
    const char *err;

    fx_connect(fx);
    srv_cmd(&fx->srv, "CLIENT PAUSE 3000 ALL");
    for (int i = 0; i < NP; i++)
        assert_int_equal(submit_ping(fx->r, &res[i], &err), 0);
    res[3].submit_again = fx->r;
    run_for(fx->loop, 50);
    for (int i = 0; i < NP; i++)
        assert_int_equal(res[i].calls, 0);
    dedup_redis_destroy(fx->r);
    fx->r = NULL;
    for (int i = 0; i < NP; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_string_equal(res[i].err, "disconnected");
        if (i > 0)
            assert_true(res[i - 1].seq < res[i].seq);
    }
    assert_int_equal(res[3].again_rc, -1);
    assert_string_equal(res[3].again_err, "not connected");
    run_for(fx->loop, 50);
    for (int i = 0; i < NP; i++) {
        assert_int_equal(res[i].calls, 1);
        res_dispose(&res[i]);
    }
}

/* destroy while the first connect is in progress (a pipeline queued), and again during the
 * backoff between failed connects. */
static void test_destroy_connecting_and_backoff(void **state)
{
    fx_t *fx = *state;
    res_t res = {0};
    const char *err;
    dedup_redis_stats_t st;

    /* connecting: the pipeline waits in hiredis's buffer */
    fx->r = dedup_redis_create(fx->loop, &fx->conf);
    assert_int_equal(submit_ping(fx->r, &res, &err), 0);
    dedup_redis_destroy(fx->r);
    fx->r = NULL;
    assert_int_equal(res.calls, 1);
    assert_string_equal(res.err, "disconnected");
    res_dispose(&res);

    /* backoff: nothing listens on this port */
    fx->conf.port = free_port();
    fx->conf.reconnect_min_ms = 1000;
    fx->conf.reconnect_max_ms = 1000;
    fx->r = dedup_redis_create(fx->loop, &fx->conf);
    for (int64_t deadline = now_ms() + 2000; now_ms() < deadline;) {
        dedup_redis_stats(fx->r, &st);
        if (st.connect_failures > 0)
            break;
        h2o_evloop_run(fx->loop, 10);
    }
    assert_int_equal(st.connect_failures, 1);
    assert_int_equal(submit_ping(fx->r, &res, &err), -1);
    assert_string_equal(err, "not connected");
    dedup_redis_destroy(fx->r);
    fx->r = NULL;
    run_for(fx->loop, 20);
    assert_int_equal(res.calls, 0);
}

/* Nothing listens: connects fail, the next attempt waits min, 2 min, ... up to max; the circuit
 * opens after breaker_failures failed connects and stays open while they keep failing. */
static void test_connect_refused_backoff(void **state)
{
    fx_t *fx = *state;
    res_t res = {0};
    const char *err;
    int64_t t0, t_open = -1, deadline;
    uint64_t failures_at_open = 0;
    dedup_redis_stats_t st;

    fx->conf.reconnect_min_ms = 20;
    fx->conf.reconnect_max_ms = 80;
    fx->conf.breaker_failures = 3;
    fx->conf.breaker_open_ms = 10000;
    t0 = now_ms();
    fx->r = dedup_redis_create(fx->loop, &fx->conf);
    for (deadline = t0 + 700; now_ms() < deadline;) {
        h2o_evloop_run(fx->loop, 1);
        dedup_redis_stats(fx->r, &st);
        if (t_open < 0 && st.breaker_opens > 0) {
            t_open = now_ms();
            failures_at_open = st.connect_failures;
        }
    }
    dedup_redis_stats(fx->r, &st);
    /* attempts at 0, 20, 60, 140, 220, ... 620 ms: 9-10; without the backoff there would be
     * hundreds, without the doubling ~35 */
    assert_in_range(st.connect_failures, 6, 13);
    assert_int_equal(failures_at_open, 3);
    assert_true(t_open - t0 >= 50); /* the third attempt is at ~60 ms */
    assert_int_equal(st.breaker_opens, 1);
    assert_int_equal(st.reconnects, 0);
    assert_true(dedup_redis_circuit_open(fx->r));
    assert_false(dedup_redis_is_up(fx->r));
    assert_int_equal(submit_ping(fx->r, &res, &err), -1);
    assert_string_equal(err, "circuit open");
    run_for(fx->loop, 20);
    assert_int_equal(res.calls, 0);
}

/* A connect that hangs (the listener's accept queue is full, so SYNs are dropped) fails after
 * connect_timeout_ms; a pipeline queued meanwhile gets "disconnected" then, not at its own
 * (longer) command timeout. */
static void test_connect_timeout(void **state)
{
    fx_t *fx = *state;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fillers[8], nfill = 0;
    res_t res = {0};
    const char *err;
    int64_t t0;
    dedup_redis_stats_t st;

    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    /* fill the accept queue (backlog 0 holds one or two) */
    for (; nfill < 4; nfill++) {
        fillers[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[nfill], (struct sockaddr *)&sa, sizeof(sa));
    }
    run_for(fx->loop, 50);

    fx->conf.port = ntohs(sa.sin_port);
    fx->conf.connect_timeout_ms = 150;
    fx->conf.reconnect_min_ms = 5000; /* one attempt in this test */
    fx->conf.reconnect_max_ms = 5000;
    t0 = now_ms();
    fx->r = dedup_redis_create(fx->loop, &fx->conf);
    assert_int_equal(submit_ping(fx->r, &res, &err), 0);
    assert_true(run_until(fx->loop, res_done, &res, 3000));
    assert_string_equal(res.err, "disconnected");
    assert_in_range(res.at_ms - t0, 130, 1000);
    dedup_redis_stats(fx->r, &st);
    assert_int_equal(st.connect_failures, 1);
    assert_int_equal(st.timeouts, 0);
    res_dispose(&res);
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    close(lfd);
}

/* The same over a unix socket. */
static void test_unix_socket(void **state)
{
    fx_t *fx = *state;
    cmds_t *c = cmds_new();
    res_t res = {0};
    const char *err;

    fx_connect(fx);
    cmds_addb(c, 3, "SET", (size_t)3, "u", (size_t)1, "a\0b", (size_t)3);
    cmds_addb(c, 2, "GET", (size_t)3, "u", (size_t)1);
    assert_int_equal(submit(fx->r, c, &res, &err), 0);
    assert_true(run_until(fx->loop, res_done, &res, 5000));
    assert_null(res.err);
    expect_status(&res.replies[0], "OK");
    assert_int_equal(res.replies[1].len, 3);
    assert_memory_equal(res.replies[1].str, "a\0b", 3);
    res_dispose(&res);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipeline_1000_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_restart_breaker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_half_open_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_with_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_connecting_and_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused_backoff, setup_no_server, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup_no_server, teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket, setup_unix, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
