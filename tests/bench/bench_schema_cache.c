/* Cost of a registry cache HIT (not a test: prints numbers, asserts only that every lookup hit):
 * ns per schema_cache_lookup for (subject, latest), (subject, N) and by id, on one thread and
 * on several threads at once (the loop threads' case), with the real coarse clock and the
 * per-thread counter shards. Build with the release preset for meaningful numbers:
 *   cmake --build --preset release --target bench_schema_cache &&
 *   build/release/tests/bench/bench_schema_cache [lookups per thread, default 20000000] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema_cache.h"
#include "sl_log.h"

static const char *const subjects[] = {"page_view", "click", "add_to_cart", "purchase",
                                       "api_request"};
#define N_SUBJECTS 5

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the calling thread: on a shared machine wall time also counts the time other
 * processes held the core, CPU time only ours (the stable figure, as for CPU per event). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *compile(void *ctx, const char *text, size_t len, const char *type, uint32_t id,
                     char *errbuf, size_t errlen)
{
    uint32_t *p = malloc(sizeof(*p));
    *p = id;
    return p;
}

static void destroy(void *ctx, void *compiled)
{
    free(compiled);
}

/* The registry: subject i has version 1, id i + 1. */
static int fetch(void *ctx, const char *path, sl_buf_t *body, char *errbuf, size_t errlen)
{
    if (strcmp(path, "/subjects") == 0) {
        sl_buf_printf(body, "[]");
        return 200;
    }
    for (int i = 0; i < N_SUBJECTS; i++) {
        char want[96];
        snprintf(want, sizeof(want), "/subjects/%s/versions/latest", subjects[i]);
        if (strcmp(path, want) == 0) {
            sl_buf_printf(body, "{\"subject\":\"%s\",\"version\":1,\"id\":%d,\"schema\":\"{}\"}",
                          subjects[i], i + 1);
            return 200;
        }
    }
    sl_buf_printf(body, "{\"error_code\":40401,\"message\":\"no\"}");
    return 404;
}

typedef struct {
    schema_cache_t *c;
    long ops;
    int mode; /* 0 latest, 1 pinned, 2 by id */
    double ns, cpu_ns;
    long misses;
} job_t;

static void *run(void *arg)
{
    job_t *j = arg;
    schema_cache_hit_t hit;
    size_t lens[N_SUBJECTS];
    unsigned long acc = 0;
    double t0, c0;

    for (int i = 0; i < N_SUBJECTS; i++)
        lens[i] = strlen(subjects[i]);
    t0 = now_s();
    c0 = cpu_s();
    for (long i = 0, k = 0; i < j->ops; i++, k = k + 1 == N_SUBJECTS ? 0 : k + 1) {
        schema_cache_status_t st =
            j->mode == 2
                ? schema_cache_lookup_id(j->c, (uint32_t)k + 1, &hit, NULL, NULL)
                : schema_cache_lookup(j->c, subjects[k], lens[k], j->mode, &hit, NULL, NULL);
        if (st != SCHEMA_CACHE_HIT)
            j->misses++;
        acc += hit.id;
    }
    j->ns = (now_s() - t0) * 1e9 / (double)j->ops;
    j->cpu_ns = (cpu_s() - c0) * 1e9 / (double)j->ops;
    if (acc == 42)
        puts(""); /* keeps the loop from being optimised away */
    return NULL;
}

static void measure(schema_cache_t *c, long ops, int mode, int threads)
{
    static const char *const names[] = {"(subject, latest)", "(subject, 1)", "id"};
    pthread_t t[16];
    job_t j[16];
    double sum = 0, cpu = 0;
    long misses = 0;

    for (int i = 0; i < threads; i++) {
        j[i] = (job_t){.c = c, .ops = ops, .mode = mode};
        pthread_create(&t[i], NULL, run, &j[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        sum += j[i].ns;
        cpu += j[i].cpu_ns;
        misses += j[i].misses;
    }
    printf("lookup %-18s %d thread(s): %6.1f ns CPU, %6.1f ns wall per HIT (mean over "
           "threads)%s\n",
           names[mode], threads, cpu / threads, sum / threads, misses ? "  MISSES!" : "");
    if (misses != 0)
        exit(1);
}

static void on_done(void *arg)
{
    __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

int main(int argc, char **argv)
{
    long ops = argc > 1 ? atol(argv[1]) : 20000000;
    schema_cache_settings_t s;
    schema_cache_ops_t o = {.compile = compile, .destroy = destroy, .fetch = fetch};
    schema_cache_hit_t hit;
    char err[256];
    int done = 0, want = 0;
    schema_cache_t *c;
    double deadline;

    sl_log_init(SL_LOG_WARN, "bench");
    schema_cache_settings_defaults(&s);
    c = schema_cache_create(&s, &o, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (int i = 0; i < N_SUBJECTS; i++)
        if (schema_cache_lookup(c, subjects[i], strlen(subjects[i]), 0, &hit, on_done, &done) ==
            SCHEMA_CACHE_PENDING)
            want++;
    deadline = now_s() + 5;
    while (__atomic_load_n(&done, __ATOMIC_SEQ_CST) < want && now_s() < deadline) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL); /* poll interval while warming up, bounded by the deadline */
    }
    for (int mode = 0; mode < 3; mode++)
        measure(c, ops, mode, 1);
    measure(c, ops, 0, 2);
    measure(c, ops / 2, 0, 4);
    schema_cache_destroy(c);
    return 0;
}
