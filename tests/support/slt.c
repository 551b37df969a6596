/* slt: support library for Sluice's integration tests (see slt.h): processes, the
 * redis + dev broker + gateway stack, HTTP via libcurl, Kafka read-back, batches and audit. */
#include "slt.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

extern char **environ;

#ifndef SLT_GATEWAY_BIN
#define SLT_GATEWAY_BIN ""
#endif
#ifndef SLT_DEVBROKER_BIN
#define SLT_DEVBROKER_BIN ""
#endif
#ifndef SLT_REDIS_BIN
#define SLT_REDIS_BIN "/usr/bin/redis-server"
#endif

#define SLT_LOG_TAIL_BYTES (12 * 1024)
#define SLT_MAX_PIDS 32
#define SLT_MAX_STACKS 4

/* ---------------------------------------------------------------------------------------------
 * Bookkeeping
 * ------------------------------------------------------------------------------------------- */

static const char *g_test_name = "test";
static atomic_int g_failures;
static volatile pid_t g_pids[SLT_MAX_PIDS]; /* read by the signal handler */
static slt_stack_t *g_stacks[SLT_MAX_STACKS];

static void pid_register(pid_t pid)
{
    for (int i = 0; i < SLT_MAX_PIDS; i++)
        if (g_pids[i] == 0) {
            g_pids[i] = pid;
            return;
        }
}

static void pid_unregister(pid_t pid)
{
    for (int i = 0; i < SLT_MAX_PIDS; i++)
        if (g_pids[i] == pid)
            g_pids[i] = 0;
}

/* Async-signal-safe: kill every child and leave. */
static void on_fatal_signal(int sig)
{
    static const char msg_alarm[] = "\n[slt] WATCHDOG expired: killing spawned processes\n";
    static const char msg_sig[] = "\n[slt] interrupted: killing spawned processes\n";
    if (sig == SIGALRM)
        (void)!write(2, msg_alarm, sizeof(msg_alarm) - 1);
    else
        (void)!write(2, msg_sig, sizeof(msg_sig) - 1);
    for (int i = 0; i < SLT_MAX_PIDS; i++)
        if (g_pids[i] > 0)
            kill(g_pids[i], SIGKILL);
    _exit(2);
}

void slt_init(const char *test_name, int watchdog_s)
{
    g_test_name = test_name;
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Writes to a socket the gateway closed must be errors, not deaths. Children get default
     * dispositions back (posix_spawn SETSIGDEF). */
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (watchdog_s > 0)
        alarm((unsigned)watchdog_s);
    curl_global_init(CURL_GLOBAL_ALL);
    slt_note("start (pid %d)", (int)getpid());
}

void slt_note(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    printf("[%s] %s\n", g_test_name, buf);
    fflush(stdout);
}

void slt_fail_at(const char *file, int line, const char *expr, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    atomic_fetch_add(&g_failures, 1);
    fflush(stdout);
    fprintf(stderr, "[%s] FAIL %s:%d: %s\n    (%s)\n", g_test_name, file, line, buf, expr);
    fflush(stderr);
}

int slt_failures(void)
{
    return atomic_load(&g_failures);
}

_Noreturn void slt_abort(void)
{
    fprintf(stderr, "[%s] aborting after a fatal check\n", g_test_name);
    for (int i = 0; i < SLT_MAX_STACKS; i++)
        if (g_stacks[i])
            slt_stack_stop(g_stacks[i]);
    for (int i = 0; i < SLT_MAX_PIDS; i++)
        if (g_pids[i] > 0)
            kill(g_pids[i], SIGKILL);
    slt_schema_cache_clear();
    exit(1);
}

int slt_finish(void)
{
    int n = slt_failures();
    if (n)
        fprintf(stderr, "[%s] FAILED: %d check(s) failed\n", g_test_name, n);
    else
        printf("[%s] PASSED\n", g_test_name);
    slt_schema_cache_clear(); /* so LeakSanitizer sees nothing of ours at exit */
    curl_global_cleanup();
    return n ? 1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Time and polling
 * ------------------------------------------------------------------------------------------- */

int64_t slt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t slt_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void slt_nap_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

int slt_poll_until(int (*cond)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = slt_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return 1;
        if (slt_now_ms() >= deadline)
            return 0;
        slt_nap_ms(5);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Files and sockets
 * ------------------------------------------------------------------------------------------- */

int slt_tempdir_create(char *buf, size_t len)
{
    if (snprintf(buf, len, "/tmp/sluice-test-XXXXXX") >= (int)len)
        return -1;
    if (!mkdtemp(buf)) {
        fprintf(stderr, "[slt] mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static int on_remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (remove(path) != 0)
        fprintf(stderr, "[slt] remove %s: %s\n", path, strerror(errno));
    return 0;
}

void slt_tempdir_remove(const char *dir)
{
    if (!dir || !*dir || strncmp(dir, "/tmp/sluice-test-", 17) != 0)
        return;
    nftw(dir, on_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int slt_free_port(void)
{
    static int given[256];
    static size_t n_given;
    for (int attempt = 0; attempt < 50; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t sl = sizeof(sa);
        int port = -1;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
            port = ntohs(sa.sin_port);
        close(fd);
        if (port <= 0)
            return -1;
        int is_repeat = 0;
        for (size_t i = 0; i < n_given; i++)
            if (given[i] == port)
                is_repeat = 1;
        if (is_repeat)
            continue;
        if (n_given < sizeof(given) / sizeof(given[0]))
            given[n_given++] = port;
        return port;
    }
    return -1;
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int cond_port_accepts(void *arg)
{
    int fd = tcp_connect(*(int *)arg);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

int slt_wait_port(int port, int timeout_ms)
{
    return slt_poll_until(cond_port_accepts, &port, timeout_ms);
}

char *slt_file_read(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

void slt_file_dump_tail(const char *label, const char *path, size_t tail_bytes)
{
    size_t len = 0;
    char *buf = slt_file_read(path, &len);
    fprintf(stderr, "----- %s: last %zu bytes of %s -----\n", label, tail_bytes, path);
    if (buf) {
        size_t start = len > tail_bytes ? len - tail_bytes : 0;
        fwrite(buf + start, 1, len - start, stderr);
        if (len && buf[len - 1] != '\n')
            fputc('\n', stderr);
        free(buf);
    } else {
        fprintf(stderr, "(cannot read: %s)\n", strerror(errno));
    }
    fprintf(stderr, "----- end of %s -----\n", label);
    fflush(stderr);
}

/* ---------------------------------------------------------------------------------------------
 * Processes
 * ------------------------------------------------------------------------------------------- */

static void log_append_line(const char *path, const char *line)
{
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    fprintf(f, "%s\n", line);
    fclose(f);
}

int slt_proc_start(slt_proc_t *p, const char *name, const char *log_path, char *const argv[])
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->log_path, sizeof(p->log_path), "%s", log_path);

    char cmdline[2048];
    size_t off = (size_t)snprintf(cmdline, sizeof(cmdline), "=== slt: starting %s:", name);
    for (int i = 0; argv[i] && off < sizeof(cmdline); i++)
        off += (size_t)snprintf(cmdline + off, sizeof(cmdline) - off, " %s", argv[i]);
    log_append_line(log_path, cmdline);

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        fprintf(stderr, "[slt] cannot spawn %s (%s): %s\n", name, argv[0], strerror(rc));
        return -1;
    }
    p->pid = pid;
    pid_register(pid);
    return 0;
}

int slt_proc_signal(slt_proc_t *p, int sig)
{
    if (p->pid <= 0)
        return -1;
    return kill(p->pid, sig) == 0 ? 0 : -1;
}

int slt_proc_is_running(slt_proc_t *p)
{
    if (p->pid <= 0)
        return 0;
    int st = 0;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == 0)
        return 1;
    if (r == p->pid) {
        p->has_exited = 1;
        p->exit_status = st;
    } else {
        /* ECHILD: somebody else reaped it; treat as gone with an unknown status */
        p->has_exited = 1;
        p->exit_status = -1;
    }
    pid_unregister(p->pid);
    p->pid = 0;
    return 0;
}

int slt_proc_wait(slt_proc_t *p, int timeout_ms)
{
    int64_t deadline = slt_now_ms() + timeout_ms;
    for (;;) {
        if (!slt_proc_is_running(p))
            return 1;
        if (slt_now_ms() >= deadline)
            return 0;
        slt_nap_ms(5);
    }
}

int slt_proc_stop(slt_proc_t *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    slt_proc_signal(p, SIGTERM);
    if (!slt_proc_wait(p, timeout_ms)) {
        fprintf(stderr, "[slt] %s (pid %d) ignored SIGTERM for %d ms: SIGKILL\n", p->name,
                (int)p->pid, timeout_ms);
        slt_proc_signal(p, SIGKILL);
        slt_proc_wait(p, 5000);
    }
    return p->exit_status;
}

const char *slt_wait_status_str(int status, char *buf, size_t len)
{
    if (status == -1)
        snprintf(buf, len, "unknown");
    else if (WIFEXITED(status))
        snprintf(buf, len, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "status 0x%x", (unsigned)status);
    return buf;
}

int slt_proc_log_contains(const slt_proc_t *p, const char *needle)
{
    char *buf = slt_file_read(p->log_path, NULL);
    if (!buf)
        return 0;
    int found = strstr(buf, needle) != NULL;
    free(buf);
    return found;
}

void slt_proc_dump_log(const slt_proc_t *p, size_t tail_bytes)
{
    if (p->log_path[0])
        slt_file_dump_tail(p->name, p->log_path, tail_bytes);
}

/* ---------------------------------------------------------------------------------------------
 * Stack
 * ------------------------------------------------------------------------------------------- */

/* What every test gateway gets before the test's own sets. */
static const char *const slt_gateway_default_sets[] = {
    "gateway.listen=127.0.0.1:{http_port}",
    "gateway.admin_listen=127.0.0.1:{admin_port}",
    "kafka.bootstrap.servers=127.0.0.1:{kafka_port}",
    "redis.address=127.0.0.1:{redis_port}",
    /* small enough for the machine, still exercising the real sizing */
    "dedup.bloom_expected=1000000",
    "gateway.threads=2",
    "auth.write_keys=" SLT_WRITE_KEY_A ":" SLT_TENANT_A "," SLT_WRITE_KEY_B ":" SLT_TENANT_B,
    "log.level=info",
    NULL,
};

/* --set pairs the stack adds for the schema registry (schema.registry_url, schema.cache_dir). */
#define SLT_REGISTRY_SETS 2

static const char *bin_path(const char *env, const char *compiled)
{
    const char *v = getenv(env);
    return v && *v ? v : compiled;
}

static void stack_register(slt_stack_t *s)
{
    if (s->is_registered)
        return;
    for (int i = 0; i < SLT_MAX_STACKS; i++)
        if (!g_stacks[i]) {
            g_stacks[i] = s;
            s->is_registered = 1;
            return;
        }
}

static void stack_unregister(slt_stack_t *s)
{
    for (int i = 0; i < SLT_MAX_STACKS; i++)
        if (g_stacks[i] == s)
            g_stacks[i] = NULL;
    s->is_registered = 0;
}

/* Replaces {http_port} {admin_port} {redis_port} {kafka_port} {dir}; malloc'd. */
static char *stack_subst(const slt_stack_t *s, const char *in)
{
    char out[4096];
    size_t o = 0;
    for (const char *p = in; *p && o < sizeof(out) - 1;) {
        char rep[128] = "";
        size_t skip = 0;
        if (*p == '{') {
            static const char *const names[] = {"{http_port}", "{admin_port}", "{redis_port}",
                                                "{kafka_port}", "{dir}"};
            for (size_t k = 0; k < 5; k++)
                if (strncmp(p, names[k], strlen(names[k])) == 0) {
                    skip = strlen(names[k]);
                    switch (k) {
                    case 0:
                        snprintf(rep, sizeof(rep), "%d", s->http_port);
                        break;
                    case 1:
                        snprintf(rep, sizeof(rep), "%d", s->admin_port);
                        break;
                    case 2:
                        snprintf(rep, sizeof(rep), "%d", s->redis_port);
                        break;
                    case 3:
                        snprintf(rep, sizeof(rep), "%d", s->kafka_port);
                        break;
                    default:
                        snprintf(rep, sizeof(rep), "%s", s->dir);
                        break;
                    }
                }
        }
        if (skip) {
            size_t rl = strlen(rep);
            if (o + rl >= sizeof(out) - 1)
                break;
            memcpy(out + o, rep, rl);
            o += rl;
            p += skip;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return strdup(out);
}

static int redis_pings(int port)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return 0;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int ok = 0;
    if (send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
        char buf[16] = "";
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        ok = n >= 5 && strncmp(buf, "+PONG", 5) == 0;
    }
    close(fd);
    return ok;
}

typedef struct {
    slt_proc_t *proc;
    const char *needle;
    int port;
    const char *url;
} start_wait_t;

static int cond_redis_up(void *arg)
{
    start_wait_t *w = arg;
    return redis_pings(w->port) || !slt_proc_is_running(w->proc);
}

static int cond_log_line(void *arg)
{
    start_wait_t *w = arg;
    return slt_proc_log_contains(w->proc, w->needle) || !slt_proc_is_running(w->proc);
}

static int cond_ready(void *arg)
{
    start_wait_t *w = arg;
    if (!slt_proc_is_running(w->proc))
        return 1;
    slt_http_req_t req = {.method = "GET", .url = w->url, .timeout_ms = 1000};
    slt_http_resp_t resp;
    long status = slt_http(&req, &resp);
    slt_http_resp_dispose(&resp);
    return status == 200;
}

static int start_redis(slt_stack_t *s)
{
    char port[16], log[600];
    if (s->redis_port == 0) /* a restart keeps its port */
        s->redis_port = slt_free_port();
    snprintf(port, sizeof(port), "%d", s->redis_port);
    snprintf(log, sizeof(log), "%s/redis.log", s->dir);
    char *argv[] = {(char *)bin_path("SLT_REDIS_BIN", SLT_REDIS_BIN),
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    s->dir,
                    "--daemonize",
                    "no",
                    "--logfile",
                    "",
                    NULL};
    if (slt_proc_start(&s->redis, "redis", log, argv) != 0)
        return -1;
    start_wait_t w = {.proc = &s->redis, .port = s->redis_port};
    if (!slt_poll_until(cond_redis_up, &w, 10000) || !slt_proc_is_running(&s->redis)) {
        fprintf(stderr, "[slt] redis-server did not answer PING on port %d within 10 s\n",
                s->redis_port);
        return -1;
    }
    return 0;
}

static int start_broker(slt_stack_t *s)
{
    char listen[64], log[600];
    const char *bin = bin_path("SLT_DEVBROKER_BIN", SLT_DEVBROKER_BIN);
    if (!*bin) {
        fprintf(stderr, "[slt] no dev broker binary (SLT_DEVBROKER_BIN)\n");
        return -1;
    }
    s->kafka_port = slt_free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->kafka_port);
    snprintf(s->bootstrap, sizeof(s->bootstrap), "127.0.0.1:%d", s->kafka_port);
    snprintf(log, sizeof(log), "%s/devbroker.log", s->dir);
    char control[600];
    snprintf(control, sizeof(control), "%s/devbroker.ctl", s->dir);
    char *argv[] = {(char *)bin, "--listen", listen, "--control", control, NULL};
    if (slt_proc_start(&s->broker, "devbroker", log, argv) != 0)
        return -1;
    start_wait_t w = {.proc = &s->broker, .needle = "devbroker ready"};
    if (!slt_poll_until(cond_log_line, &w, 20000) || !slt_proc_is_running(&s->broker)) {
        fprintf(stderr, "[slt] dev broker did not print its ready line within 20 s\n");
        return -1;
    }
    return 0;
}

int slt_gateway_start(slt_stack_t *s)
{
    const char *bin = bin_path("SLT_GATEWAY_BIN", SLT_GATEWAY_BIN);
    if (!*bin) {
        fprintf(stderr, "[slt] no gateway binary (SLT_GATEWAY_BIN)\n");
        return -1;
    }
    size_t n_def = sizeof(slt_gateway_default_sets) / sizeof(slt_gateway_default_sets[0]) - 1;
    size_t argc = 1 + 2 * (n_def + SLT_REGISTRY_SETS + s->n_extra_sets);
    char **argv = calloc(argc + 1, sizeof(char *));
    char **owned = calloc(n_def + 1, sizeof(char *));
    size_t a = 0;
    if (!argv || !owned)
        abort();
    argv[a++] = (char *)bin;
    for (size_t i = 0; i < n_def; i++) {
        owned[i] = stack_subst(s, slt_gateway_default_sets[i]);
        argv[a++] = "--set";
        argv[a++] = owned[i];
    }
    /* Before the test's sets, so a test can point the gateway elsewhere. Each gateway keeps its
     * own cache dir: the snapshot file is compacted at start and is not shared safely. */
    char reg_url[128], reg_cache[600];
    if (s->registry.port > 0) {
        snprintf(reg_url, sizeof(reg_url), "schema.registry_url=%s", s->registry_url);
        snprintf(reg_cache, sizeof(reg_cache), "schema.cache_dir=%s/%s%sschema-cache", s->dir,
                 s->gateway_name, s->gateway_name[0] ? "-" : "");
        argv[a++] = "--set";
        argv[a++] = reg_url;
        argv[a++] = "--set";
        argv[a++] = reg_cache;
    }
    for (size_t i = 0; i < s->n_extra_sets; i++) {
        argv[a++] = "--set";
        argv[a++] = s->extra_sets[i];
    }
    argv[a] = NULL;
    char log[600];
    snprintf(log, sizeof(log), "%s/%s.log", s->dir, s->gateway_name[0] ? s->gateway_name : "gateway");
    int rc = slt_proc_start(&s->gateway, "gateway", log, argv);
    for (size_t i = 0; i < n_def; i++)
        free(owned[i]);
    free(owned);
    free(argv);
    if (rc != 0)
        return -1;

    char url[128];
    slt_admin_url(s, "/readyz", url, sizeof(url));
    start_wait_t w = {.proc = &s->gateway, .url = url};
    int64_t t0 = slt_now_ms();
    if (!slt_poll_until(cond_ready, &w, 20000) || !slt_proc_is_running(&s->gateway)) {
        char st[64];
        fprintf(stderr, "[slt] gateway not ready (GET %s != 200) within 20 s; process: %s\n", url,
                s->gateway.pid ? "running"
                               : slt_wait_status_str(s->gateway.exit_status, st, sizeof(st)));
        slt_proc_dump_log(&s->gateway, SLT_LOG_TAIL_BYTES);
        return -1;
    }
    if (!slt_wait_port(s->http_port, 5000)) {
        fprintf(stderr, "[slt] gateway ready but public port %d does not accept\n", s->http_port);
        slt_proc_dump_log(&s->gateway, SLT_LOG_TAIL_BYTES);
        return -1;
    }
    slt_note("gateway ready in %lld ms (public https://127.0.0.1:%d, admin http://127.0.0.1:%d)",
             (long long)(slt_now_ms() - t0), s->http_port, s->admin_port);
    return 0;
}

int slt_gateway_stop(slt_stack_t *s, int timeout_ms)
{
    return slt_proc_stop(&s->gateway, timeout_ms);
}

int slt_second_gateway_start(const slt_stack_t *s, slt_stack_t *s2, const char *name)
{
    *s2 = *s;
    memset(&s2->gateway, 0, sizeof(s2->gateway));
    snprintf(s2->gateway_name, sizeof(s2->gateway_name), "%s", name);
    s2->http_port = slt_free_port();
    s2->admin_port = slt_free_port();
    s2->is_registered = 0;
    return slt_gateway_start(s2);
}

int slt_redis_kill(slt_stack_t *s)
{
    if (slt_proc_signal(&s->redis, SIGKILL) != 0)
        return -1;
    return slt_proc_wait(&s->redis, 10000) ? 0 : -1;
}

int slt_redis_restart(slt_stack_t *s)
{
    return start_redis(s);
}

/* Starts the stack's registry on its port (a free one the first time) and makes it current. */
static int start_stack_registry(slt_stack_t *s)
{
    if (slt_registry_start(&s->registry, s->dir, s->registry.port) != 0)
        return -1;
    snprintf(s->registry_url, sizeof(s->registry_url), "http://127.0.0.1:%d", s->registry.port);
    slt_registry_use(&s->registry);
    return 0;
}

int slt_stack_registry_kill(slt_stack_t *s)
{
    if (s->registry.port <= 0 || s->registry.proc.pid <= 0)
        return -1;
    /* The records written while it is down are checked against these. */
    slt_registry_use(&s->registry);
    if (slt_schema_cache_warm() < 0)
        slt_note("registry kill: its schemas could not be cached first");
    if (slt_proc_signal(&s->registry.proc, SIGKILL) != 0)
        return -1;
    return slt_proc_wait(&s->registry.proc, 10000) ? 0 : -1;
}

int slt_stack_registry_restart(slt_stack_t *s)
{
    if (s->registry.port <= 0)
        return -1;
    return start_stack_registry(s);
}

typedef struct {
    const slt_stack_t *s;
    const char *needle;
} control_wait_t;

static int cond_control_logged(void *arg)
{
    control_wait_t *w = arg;
    return slt_proc_log_contains(&w->s->broker, w->needle);
}

int slt_broker_control(const slt_stack_t *s, const char *cmd)
{
    char path[600], needle[300];
    int fd;
    snprintf(path, sizeof(path), "%s/devbroker.ctl", s->dir);
    snprintf(needle, sizeof(needle), "msg=\"control\" cmd=\"%s\" result=ok", cmd);
    if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
        return -1;
    int ok = write(fd, cmd, strlen(cmd)) == (ssize_t)strlen(cmd) && write(fd, "\n", 1) == 1;
    close(fd);
    control_wait_t w = {s, needle};
    return ok && slt_poll_until(cond_control_logged, &w, 5000) ? 0 : -1;
}

typedef struct {
    slt_http_many_t *m;
    size_t min_done, min_uploaded;
} many_wait_t;

static int cond_many(void *arg)
{
    many_wait_t *w = arg;
    return slt_http_many_done(w->m) >= w->min_done ||
           slt_http_many_uploaded(w->m) >= w->min_uploaded;
}

int slt_http_many_wait(slt_http_many_t *m, size_t min_done, size_t min_uploaded, int timeout_ms)
{
    many_wait_t w = {m, min_done, min_uploaded};
    return slt_poll_until(cond_many, &w, timeout_ms);
}

long slt_gateway_metric(const slt_stack_t *s, const char *sample)
{
    char url[200], needle[256];
    slt_http_resp_t resp;
    const char *at;
    long v = -1;

    snprintf(needle, sizeof(needle), "\n%s ", sample);
    slt_http_get(slt_admin_url(s, "/metrics", url, sizeof(url)), SLT_HTTP_1_1, &resp);
    if (resp.status == 200 && resp.body && (at = strstr(resp.body, needle)) != NULL)
        v = atol(at + strlen(needle));
    slt_http_resp_dispose(&resp);
    return v;
}

typedef struct {
    const slt_stack_t *s;
    long status;
    const char *substring;
} readyz_wait_t;

static int cond_readyz(void *arg)
{
    readyz_wait_t *w = arg;
    char url[200];
    slt_http_resp_t resp;
    int yes;
    slt_http_get(slt_admin_url(w->s, "/readyz", url, sizeof(url)), SLT_HTTP_1_1, &resp);
    yes = resp.status == w->status &&
          (w->substring == NULL || (resp.body && strstr(resp.body, w->substring)));
    slt_http_resp_dispose(&resp);
    return yes;
}

int slt_wait_readyz(const slt_stack_t *s, long status, const char *substring, int timeout_ms)
{
    readyz_wait_t w = {s, status, substring};
    return slt_poll_until(cond_readyz, &w, timeout_ms);
}

int slt_stack_start(slt_stack_t *s, const char *const *extra_sets)
{
    memset(s, 0, sizeof(*s));
    if (slt_tempdir_create(s->dir, sizeof(s->dir)) != 0)
        return -1;
    stack_register(s);
    s->http_port = slt_free_port();
    s->admin_port = slt_free_port();
    slt_note("stack dir %s", s->dir);
    if (start_redis(s) != 0)
        goto Fail;
    if (start_broker(s) != 0)
        goto Fail;
    if (start_stack_registry(s) != 0)
        goto Fail;
    if (slt_registry_register_defaults(&s->registry) != 5)
        goto Fail;
    /* the test's sets, then SLT_EXTRA_SETS="k=v,k=v" (a variant run of the same test) */
    const char *env = getenv("SLT_EXTRA_SETS");
    size_t n_test = 0, n_env = 0;
    for (size_t i = 0; extra_sets && extra_sets[i]; i++)
        n_test++;
    for (const char *p = env; p && *p; p++) /* at most one set per comma, plus one */
        n_env += *p == ',';
    n_env += env && *env;
    s->extra_sets = calloc(n_test + n_env + 1, sizeof(char *));
    for (size_t i = 0; i < n_test; i++)
        s->extra_sets[s->n_extra_sets++] = stack_subst(s, extra_sets[i]);
    for (const char *p = env; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *one = strndup(p, len);
        if (len > 0) {
            s->extra_sets[s->n_extra_sets++] = stack_subst(s, one);
            slt_note("SLT_EXTRA_SETS: --set %s", one);
        }
        free(one);
        p = comma ? comma + 1 : p + len;
    }
    if (slt_gateway_start(s) != 0)
        goto Fail;
    return 0;

Fail:
    slt_fail_at(__FILE__, __LINE__, "slt_stack_start", "the stack did not start");
    slt_stack_stop(s);
    return -1;
}

void slt_stack_dump_logs(const slt_stack_t *s)
{
    slt_proc_dump_log(&s->gateway, SLT_LOG_TAIL_BYTES);
    slt_proc_dump_log(&s->broker, SLT_LOG_TAIL_BYTES / 3);
    if (s->registry.proc.log_path[0])
        slt_proc_dump_log(&s->registry.proc, SLT_LOG_TAIL_BYTES / 6);
    slt_proc_dump_log(&s->redis, SLT_LOG_TAIL_BYTES / 6);
}

void slt_stack_stop(slt_stack_t *s)
{
    if (!s->is_registered && !s->dir[0])
        return;
    stack_unregister(s); /* before anything that could abort again */
    char st[64];
    if (s->gateway.pid > 0) {
        int status = slt_proc_stop(&s->gateway, 30000);
        slt_note("gateway stopped: %s", slt_wait_status_str(status, st, sizeof(st)));
        /* A clean SIGTERM shutdown is part of the contract (drain, flush, exit 0). */
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            slt_fail_at(__FILE__, __LINE__, "gateway exit 0 on SIGTERM",
                        "gateway ended with %s after SIGTERM, want exit 0",
                        slt_wait_status_str(status, st, sizeof(st)));
    }
    if (s->registry.proc.pid > 0)
        slt_registry_stop(&s->registry, 10000);
    if (s->registry_url[0] && strcmp(slt_registry_in_use(), s->registry_url) == 0)
        slt_registry_use(NULL);
    if (s->broker.pid > 0)
        slt_proc_stop(&s->broker, 10000);
    if (s->redis.pid > 0)
        slt_proc_stop(&s->redis, 10000);
    if (slt_failures() > 0) {
        slt_stack_dump_logs(s);
        fprintf(stderr, "[%s] kept test directory %s\n", g_test_name, s->dir);
    } else {
        slt_tempdir_remove(s->dir);
    }
    for (size_t i = 0; i < s->n_extra_sets; i++)
        free(s->extra_sets[i]);
    free(s->extra_sets);
    s->extra_sets = NULL;
    s->n_extra_sets = 0;
    s->dir[0] = '\0';
}

const char *slt_public_url(const slt_stack_t *s, const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "https://127.0.0.1:%d%s", s->http_port, path);
    return buf;
}

const char *slt_admin_url(const slt_stack_t *s, const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "http://127.0.0.1:%d%s", s->admin_port, path);
    return buf;
}

/* ---------------------------------------------------------------------------------------------
 * HTTP
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} slt_buf_t;

static void buf_append(slt_buf_t *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

typedef struct slt_xfer {
    const slt_http_req_t *req;
    CURL *h;
    struct curl_slist *hl;
    slt_buf_t body, hdrs;
    char errbuf[CURL_ERROR_SIZE];
    struct slt_http_many *many; /* NULL for single requests */
    int is_uploaded;
} slt_xfer_t;

struct slt_http_many {
    pthread_t th;
    size_t n;
    const slt_http_req_t *reqs;
    slt_xfer_t *xs;
    slt_http_resp_t *resps;
    atomic_size_t done, uploaded;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    slt_xfer_t *x = arg;
    buf_append(&x->body, data, size * nmemb);
    return size * nmemb;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    slt_xfer_t *x = arg;
    size_t n = size * nmemb;
    /* Keep only the final response's headers (drop a 100 Continue's) */
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
        x->hdrs.len = 0;
    buf_append(&x->hdrs, data, n);
    return n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    slt_xfer_t *x = arg;
    if (!x->is_uploaded && ultotal > 0 && ulnow >= ultotal) {
        x->is_uploaded = 1;
        if (x->many)
            atomic_fetch_add(&x->many->uploaded, 1);
    }
    return 0;
}

static void xfer_setup(slt_xfer_t *x, const slt_http_req_t *req)
{
    memset(x, 0, sizeof(*x));
    x->req = req;
    x->h = curl_easy_init();
    if (!x->h)
        abort();
    CURL *h = x->h;
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (getenv("SLT_CURL_VERBOSE")) /* debugging aid: curl's trace on stderr */
        curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                     req->version == SLT_HTTP_2 ? (long)CURL_HTTP_VERSION_2TLS
                                                : (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    /* No "Expect: 100-continue" round trip: the body goes at once. */
    x->hl = curl_slist_append(x->hl, "Expect:");
    for (size_t i = 0; req->headers && req->headers[i]; i++)
        x->hl = curl_slist_append(x->hl, req->headers[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->hl);

    const char *method = req->method ? req->method : (req->body ? "POST" : "GET");
    if (strcmp(method, "GET") == 0 && !req->body) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") == 0 || req->body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
        }
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
}

static void xfer_finish(slt_xfer_t *x, CURLcode rc, slt_http_resp_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->curl_code = (int)rc;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &resp->status);
    } else {
        resp->status = 0;
        snprintf(resp->error, sizeof(resp->error), "%s: %s", curl_easy_strerror(rc),
                 x->errbuf[0] ? x->errbuf : "-");
    }
    curl_easy_getinfo(x->h, CURLINFO_HTTP_VERSION, &resp->http_version);
    if (!x->body.p)
        buf_append(&x->body, "", 0);
    if (!x->hdrs.p)
        buf_append(&x->hdrs, "", 0);
    resp->body = x->body.p;
    resp->body_len = x->body.len;
    resp->headers = x->hdrs.p;
    resp->headers_len = x->hdrs.len;
    x->body.p = x->hdrs.p = NULL;
    if (x->req->version == SLT_HTTP_2 && resp->status > 0 &&
        resp->http_version != CURL_HTTP_VERSION_2_0)
        slt_fail_at(__FILE__, __LINE__, "http_version == CURL_HTTP_VERSION_2_0",
                    "%s %s: asked for HTTP/2 over TLS but the response (HTTP %ld: %.200s) came "
                    "over curl version code %ld (%s)",
                    x->req->method ? x->req->method : "-", x->req->url, resp->status, resp->body,
                    resp->http_version,
                    resp->http_version == CURL_HTTP_VERSION_1_1   ? "HTTP/1.1"
                    : resp->http_version == CURL_HTTP_VERSION_1_0 ? "HTTP/1.0"
                                                                  : "?");
    curl_slist_free_all(x->hl);
    curl_easy_cleanup(x->h);
    x->hl = NULL;
    x->h = NULL;
}

long slt_http(const slt_http_req_t *req, slt_http_resp_t *resp)
{
    slt_xfer_t x;
    xfer_setup(&x, req);
    CURLcode rc = curl_easy_perform(x.h);
    xfer_finish(&x, rc, resp);
    return resp->status;
}

long slt_http_get(const char *url, slt_http_version_t version, slt_http_resp_t *resp)
{
    slt_http_req_t req = {.method = "GET", .url = url, .version = version};
    return slt_http(&req, resp);
}

void slt_http_resp_dispose(slt_http_resp_t *resp)
{
    free(resp->body);
    free(resp->headers);
    resp->body = resp->headers = NULL;
}

/* Finds the nth (0-based) line of header `name`; returns its value span or NULL. */
static const char *find_header(const slt_http_resp_t *resp, const char *name, int nth,
                               const char **end)
{
    if (!resp->headers)
        return NULL;
    size_t nl = strlen(name);
    for (const char *line = resp->headers; *line;) {
        const char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':' && nth-- == 0) {
            const char *v = line + nl + 1, *e = line + ll;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && isspace((unsigned char)e[-1]))
                e--;
            *end = e;
            return v;
        }
        if (!eol)
            break;
        line = eol + 1;
    }
    return NULL;
}

char *slt_http_resp_header(const slt_http_resp_t *resp, const char *name)
{
    const char *end, *v = find_header(resp, name, 0, &end);
    return v ? strndup(v, (size_t)(end - v)) : NULL;
}

int slt_http_resp_header_count(const slt_http_resp_t *resp, const char *name)
{
    const char *end;
    int n = 0;
    while (find_header(resp, name, n, &end) != NULL)
        n++;
    return n;
}

static void *many_thread(void *arg)
{
    slt_http_many_t *m = arg;
    CURLM *multi = curl_multi_init();
    if (!multi)
        abort();
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    for (size_t i = 0; i < m->n; i++) {
        slt_xfer_t *x = &m->xs[i];
        xfer_setup(x, &m->reqs[i]);
        x->many = m;
        curl_easy_setopt(x->h, CURLOPT_PRIVATE, (void *)x);
        if (m->reqs[i].version == SLT_HTTP_2) {
            curl_easy_setopt(x->h, CURLOPT_PIPEWAIT, 1L);
        } else {
            /* Own connection, closed afterwards: curl would otherwise hand an idle HTTP/1.1
             * connection to a transfer that asked for HTTP/2 (2TLS only prefers h2). */
            curl_easy_setopt(x->h, CURLOPT_FRESH_CONNECT, 1L);
            curl_easy_setopt(x->h, CURLOPT_FORBID_REUSE, 1L);
        }
        curl_multi_add_handle(multi, x->h);
    }
    size_t finished = 0;
    while (finished < m->n) {
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            slt_xfer_t *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(multi, x->h);
            xfer_finish(x, rc, &m->resps[x - m->xs]);
            finished++;
            atomic_fetch_add(&m->done, 1);
        }
        if (finished < m->n)
            curl_multi_poll(multi, NULL, 0, 50, NULL);
    }
    curl_multi_cleanup(multi);
    return NULL;
}

slt_http_many_t *slt_http_many_start(const slt_http_req_t *reqs, size_t n)
{
    slt_http_many_t *m = calloc(1, sizeof(*m));
    if (!m)
        abort();
    m->n = n;
    m->reqs = reqs;
    m->xs = calloc(n ? n : 1, sizeof(*m->xs));
    m->resps = calloc(n ? n : 1, sizeof(*m->resps));
    atomic_init(&m->done, 0);
    atomic_init(&m->uploaded, 0);
    if (!m->xs || !m->resps || pthread_create(&m->th, NULL, many_thread, m) != 0)
        abort();
    return m;
}

size_t slt_http_many_done(slt_http_many_t *m)
{
    return atomic_load(&m->done);
}

size_t slt_http_many_uploaded(slt_http_many_t *m)
{
    return atomic_load(&m->uploaded);
}

void slt_http_many_join(slt_http_many_t *m, slt_http_resp_t *resps)
{
    pthread_join(m->th, NULL);
    memcpy(resps, m->resps, m->n * sizeof(*resps));
    free(m->resps);
    free(m->xs);
    free(m);
}

/* ---------------------------------------------------------------------------------------------
 * Kafka
 * ------------------------------------------------------------------------------------------- */

static char *dup_bytes(const void *p, size_t n)
{
    if (!p)
        return NULL;
    char *d = malloc(n + 1);
    if (!d)
        abort();
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static void rec_copy(slt_kafka_rec_t *r, const rd_kafka_message_t *rkm)
{
    memset(r, 0, sizeof(*r));
    r->partition = rkm->partition;
    r->offset = rkm->offset;
    r->timestamp = rd_kafka_message_timestamp(rkm, NULL);
    r->key = dup_bytes(rkm->key, rkm->key_len);
    r->key_len = rkm->key_len;
    r->value = dup_bytes(rkm->payload, rkm->len);
    r->value_len = rkm->len;
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        size_t n = rd_kafka_header_cnt(hdrs);
        r->hdrs = calloc(n ? n : 1, sizeof(*r->hdrs));
        for (size_t i = 0; i < n; i++) {
            const char *name;
            const void *val;
            size_t size;
            if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            r->hdrs[i].name = strdup(name);
            r->hdrs[i].value = dup_bytes(val, size);
            r->hdrs[i].value_len = size;
            r->n_hdrs++;
        }
    }
}

static int topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int64_t deadline = slt_now_ms() + timeout_ms;
    int n = -1;
    while (n < 0 && slt_now_ms() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int i = 0; i < md->topic_cnt; i++)
                if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0 &&
                    md->topics[i].partition_cnt > 0)
                    n = md->topics[i].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        if (n < 0)
            slt_nap_ms(100);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

int slt_kafka_consume_all(const char *bootstrap, const char *topic, size_t expected, int quiet_ms,
                          int timeout_ms, slt_kafka_recs_t *out)
{
    memset(out, 0, sizeof(*out));
    char errstr[512], group[96];
    snprintf(group, sizeof(group), "slt-audit-%d-%u", (int)getpid(), slt_rand(1u << 30));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[][2] = {
        {"bootstrap.servers", bootstrap}, {"group.id", group},
        {"enable.auto.commit", "false"},  {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"}, {"auto.offset.reset", "earliest"},
        {"client.id", "slt-audit"},       {"isolation.level", "read_uncommitted"},
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            fprintf(stderr, "[slt] kafka conf %s: %s\n", kv[i][0], errstr);
            rd_kafka_conf_destroy(conf);
            return -1;
        }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "[slt] rd_kafka_new: %s\n", errstr);
        return -1;
    }
    int64_t deadline = slt_now_ms() + timeout_ms;
    int np = topic_partitions(rk, topic, timeout_ms);
    if (np <= 0) {
        fprintf(stderr, "[slt] no metadata for topic %s at %s\n", topic, bootstrap);
        rd_kafka_destroy(rk);
        return -1;
    }
    out->n_partitions = np;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    char *at_eof = calloc((size_t)np, 1);
    size_t cap = 256;
    out->recs = calloc(cap, sizeof(*out->recs));
    int64_t last_activity = slt_now_ms();
    for (;;) {
        int64_t now = slt_now_ms();
        int all_eof = 1;
        for (int p = 0; p < np; p++)
            all_eof &= at_eof[p];
        if (out->n >= expected && all_eof && now - last_activity >= quiet_ms) {
            out->is_complete = 1;
            break;
        }
        if (now >= deadline)
            break;
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 50);
        if (!rkm)
            continue;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (rkm->partition >= 0 && rkm->partition < np)
                at_eof[rkm->partition] = 1;
        } else if (rkm->err) {
            fprintf(stderr, "[slt] consume %s: %s\n", topic, rd_kafka_message_errstr(rkm));
        } else {
            if (out->n == cap) {
                cap *= 2;
                out->recs = realloc(out->recs, cap * sizeof(*out->recs));
                if (!out->recs)
                    abort();
            }
            rec_copy(&out->recs[out->n++], rkm);
            if (rkm->partition >= 0 && rkm->partition < np)
                at_eof[rkm->partition] = 0;
            last_activity = slt_now_ms();
        }
        rd_kafka_message_destroy(rkm);
    }
    free(at_eof);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}

void slt_kafka_recs_dispose(slt_kafka_recs_t *recs)
{
    for (size_t i = 0; i < recs->n; i++) {
        slt_kafka_rec_t *r = &recs->recs[i];
        free(r->key);
        free(r->value);
        for (size_t h = 0; h < r->n_hdrs; h++) {
            free(r->hdrs[h].name);
            free(r->hdrs[h].value);
        }
        free(r->hdrs);
    }
    free(recs->recs);
    memset(recs, 0, sizeof(*recs));
}

const char *slt_kafka_rec_header(const slt_kafka_rec_t *rec, const char *name)
{
    for (size_t i = 0; i < rec->n_hdrs; i++)
        if (strcmp(rec->hdrs[i].name, name) == 0)
            return rec->hdrs[i].value;
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Random, UUIDs, batches
 * ------------------------------------------------------------------------------------------- */

static pthread_mutex_t g_rand_lock = PTHREAD_MUTEX_INITIALIZER;

static void rand_bytes(void *out, size_t n)
{
    static int fd = -1;
    pthread_mutex_lock(&g_rand_lock);
    if (fd < 0)
        fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    while (fd >= 0 && got < n) {
        ssize_t r = read(fd, (char *)out + got, n - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    pthread_mutex_unlock(&g_rand_lock);
    if (got < n) {
        fprintf(stderr, "[slt] /dev/urandom unreadable\n");
        abort();
    }
}

uint32_t slt_rand(uint32_t n)
{
    uint32_t v;
    rand_bytes(&v, sizeof(v));
    return n ? v % n : v;
}

void slt_uuid4(char out[37])
{
    unsigned char b[16];
    rand_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static const char *const g_event_types[] = {"page_view", "click", "add_to_cart", "purchase",
                                            "api_request"};
static const char *const g_urls[] = {
    "/",           "/pricing",  "/docs/getting-started", "/blog/launch",
    "/product/42", "/checkout", "/search?q=socks"};
static const char *const g_titles[] = {"Home",       "Pricing",  "Getting started", "We launched",
                                       "Wool socks", "Checkout", "Search"};

void slt_batch_init(slt_batch_t *b)
{
    b->events = json_array();
    b->next_type = 0;
}

void slt_batch_dispose(slt_batch_t *b)
{
    json_decref(b->events);
    b->events = NULL;
}

static json_t *make_properties(const char *type)
{
    size_t u = slt_rand(7);
    if (strcmp(type, "page_view") == 0)
        return json_pack("{s:s, s:o, s:o, s:o}", "url", g_urls[u], "referrer",
                         slt_rand(3) ? json_string("https://www.example.com/") : json_null(),
                         "title", slt_rand(5) ? json_string(g_titles[u]) : json_null(),
                         "latency_ms",
                         slt_rand(4) ? json_integer(20 + slt_rand(900)) : json_null());
    if (strcmp(type, "click") == 0)
        return json_pack("{s:s, s:s, s:o, s:o}", "url", g_urls[u], "element",
                         slt_rand(2) ? "button#buy" : "a.nav-link", "x",
                         slt_rand(5) ? json_integer(slt_rand(1920)) : json_null(), "y",
                         slt_rand(5) ? json_integer(slt_rand(1080)) : json_null());
    if (strcmp(type, "add_to_cart") == 0) {
        char pid[32];
        snprintf(pid, sizeof(pid), "p-%u", 1000 + slt_rand(9000));
        return json_pack("{s:s, s:I, s:I}", "product_id", pid, "quantity",
                         (json_int_t)(1 + slt_rand(5)), "price_cents",
                         (json_int_t)(199 + slt_rand(50000)));
    }
    if (strcmp(type, "purchase") == 0) {
        char oid[40];
        slt_uuid4(oid);
        oid[8] = '\0';
        char order[48];
        snprintf(order, sizeof(order), "o-%s", oid);
        return json_pack("{s:s, s:I, s:s}", "order_id", order, "revenue_cents",
                         (json_int_t)(500 + slt_rand(200000)), "currency",
                         slt_rand(2) ? "EUR" : "USD");
    }
    /* api_request */
    return json_pack("{s:s, s:s, s:I, s:f}", "endpoint", "/api/v1/items", "method",
                     slt_rand(3) ? "GET" : "POST", "status", (json_int_t)(slt_rand(10) ? 200 : 503),
                     "latency_ms", (double)(1 + slt_rand(4000)) / 8.0);
}

json_t *slt_batch_add(slt_batch_t *b, const char *event_type)
{
    const char *type = event_type;
    if (!type)
        type = g_event_types[b->next_type++ % (sizeof(g_event_types) / sizeof(g_event_types[0]))];
    char eid[37], user[32], session[32];
    slt_uuid4(eid);
    snprintf(user, sizeof(user), "u-%u", slt_rand(40));
    snprintf(session, sizeof(session), "s-%08x", slt_rand(0));
    json_t *ev = json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:o}", "event_id", eid, "event_type",
                           type, "ts", (json_int_t)(slt_wall_ms() - slt_rand(5000)), "user_id",
                           user, "session_id", slt_rand(10) ? json_string(session) : json_null(),
                           "page_id", slt_rand(10) ? json_integer(1 + slt_rand(1000)) : json_null(),
                           "properties", make_properties(type));
    if (!ev)
        abort();
    json_array_append_new(b->events, ev);
    return ev;
}

void slt_batch_add_n(slt_batch_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        slt_batch_add(b, NULL);
}

void slt_batch_add_value(slt_batch_t *b, json_t *value)
{
    json_array_append_new(b->events, value);
}

size_t slt_batch_len(const slt_batch_t *b)
{
    return json_array_size(b->events);
}

json_t *slt_batch_event(const slt_batch_t *b, size_t i)
{
    return json_array_get(b->events, i);
}

const char *slt_batch_event_id(const slt_batch_t *b, size_t i)
{
    json_t *ev = json_array_get(b->events, i);
    return json_is_object(ev) ? json_string_value(json_object_get(ev, "event_id")) : NULL;
}

char *slt_batch_body(const slt_batch_t *b, const char *write_key, size_t *len)
{
    json_t *root = json_object();
    json_object_set_new(root, "sent_at", json_integer(slt_wall_ms()));
    if (write_key)
        json_object_set_new(root, "write_key", json_string(write_key));
    json_object_set(root, "events", b->events);
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        abort();
    if (len)
        *len = strlen(s);
    return s;
}

/* ---------------------------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------------------------- */

static char *opt_str(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? strdup(v) : NULL;
}

int slt_batch_resp_parse(const char *body, size_t len, slt_batch_resp_t *out, char *errbuf,
                         size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(errbuf, errlen, "not JSON: %s (line %d col %d)", je.text, je.line, je.column);
        return -1;
    }
    const char *names[] = {"accepted", "duplicate", "invalid", "retry"};
    long *fields[] = {&out->accepted, &out->duplicate, &out->invalid, &out->retry};
    if (!json_is_object(root)) {
        snprintf(errbuf, errlen, "not an object");
        goto Fail;
    }
    for (int i = 0; i < 4; i++) {
        json_t *v = json_object_get(root, names[i]);
        if (!json_is_integer(v)) {
            snprintf(errbuf, errlen, "\"%s\" missing or not an integer", names[i]);
            goto Fail;
        }
        *fields[i] = (long)json_integer_value(v);
    }
    json_t *events = json_object_get(root, "events");
    if (!json_is_array(events)) {
        snprintf(errbuf, errlen, "\"events\" missing or not an array");
        goto Fail;
    }
    out->n_events = json_array_size(events);
    out->events = calloc(out->n_events ? out->n_events : 1, sizeof(*out->events));
    for (size_t k = 0; k < out->n_events; k++) {
        json_t *e = json_array_get(events, k);
        if (!json_is_object(e) || !json_is_integer(json_object_get(e, "i")) ||
            !json_is_string(json_object_get(e, "status"))) {
            snprintf(errbuf, errlen,
                     "events[%zu] is not an object with integer i and string status", k);
            goto Fail;
        }
        slt_outcome_t *o = &out->events[k];
        o->i = (long)json_integer_value(json_object_get(e, "i"));
        o->status = opt_str(e, "status");
        o->event_id = opt_str(e, "event_id");
        o->code = opt_str(e, "code");
        o->path = opt_str(e, "path");
        o->detail = opt_str(e, "detail");
    }
    json_decref(root);
    return 0;

Fail:
    json_decref(root);
    slt_batch_resp_dispose(out);
    return -1;
}

void slt_batch_resp_dispose(slt_batch_resp_t *r)
{
    for (size_t k = 0; r->events && k < r->n_events; k++) {
        free(r->events[k].event_id);
        free(r->events[k].status);
        free(r->events[k].code);
        free(r->events[k].path);
        free(r->events[k].detail);
    }
    free(r->events);
    r->events = NULL;
    r->n_events = 0;
}

const slt_outcome_t *slt_batch_resp_find(const slt_batch_resp_t *r, long i)
{
    for (size_t k = 0; k < r->n_events; k++)
        if (r->events[k].i == i)
            return &r->events[k];
    return NULL;
}

int slt_error_body_parse(const char *body, size_t len, char **code, char **detail, char *errbuf,
                         size_t errlen)
{
    *code = *detail = NULL;
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(errbuf, errlen, "not JSON: %s", je.text);
        return -1;
    }
    json_t *err = json_object_get(root, "error");
    if (!json_is_object(err) || !json_is_string(json_object_get(err, "code")) ||
        !json_is_string(json_object_get(err, "detail"))) {
        snprintf(errbuf, errlen, "not {\"error\": {\"code\": string, \"detail\": string}}");
        json_decref(root);
        return -1;
    }
    *code = opt_str(err, "code");
    *detail = opt_str(err, "detail");
    json_decref(root);
    return 0;
}

/* Records a failure unless resp has this status and an application/json body. Returns 0 when
 * the status is wrong (nothing more to check), 1 otherwise. */
static int check_json_status(const char *what, const slt_http_resp_t *resp, long status)
{
    if (resp->status != status) {
        slt_fail_at(__FILE__, __LINE__, "status",
                    "%s: expected HTTP %ld, got %ld%s%s; body: %.300s", what, status, resp->status,
                    resp->status ? "" : " / transport error: ", resp->status ? "" : resp->error,
                    resp->body ? resp->body : "");
        return 0;
    }
    char *ct = slt_http_resp_header(resp, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0)
        slt_fail_at(__FILE__, __LINE__, "Content-Type",
                    "%s: Content-Type is '%s', want application/json", what, ct ? ct : "(none)");
    free(ct);
    return 1;
}

int slt_check_error(const char *what, const slt_http_resp_t *resp, long status, const char *code)
{
    int before = slt_failures();
    if (!check_json_status(what, resp, status))
        return 0;
    char *c = NULL, *d = NULL, err[256];
    if (slt_error_body_parse(resp->body, resp->body_len, &c, &d, err, sizeof(err)) != 0) {
        slt_fail_at(__FILE__, __LINE__, "error body", "%s: error body %s: %.300s", what, err,
                    resp->body);
    } else {
        if (strcmp(c, code) != 0)
            slt_fail_at(__FILE__, __LINE__, "error.code", "%s: error.code is '%s', want '%s'", what,
                        c, code);
        if (!*d)
            slt_fail_at(__FILE__, __LINE__, "error.detail", "%s: error.detail is empty", what);
    }
    free(c);
    free(d);
    return slt_failures() == before;
}

/* ---------------------------------------------------------------------------------------------
 * Audit
 * ------------------------------------------------------------------------------------------- */

void slt_ledger_init(slt_ledger_t *l)
{
    l->expected = json_object();
    l->forbidden = json_object();
    l->maybe = json_object();
}

void slt_ledger_dispose(slt_ledger_t *l)
{
    json_decref(l->expected);
    json_decref(l->forbidden);
    json_decref(l->maybe);
    memset(l, 0, sizeof(*l));
}

static void ledger_put(json_t *table, const json_t *event, const char *tenant)
{
    const char *eid = json_string_value(json_object_get(event, "event_id"));
    if (!eid) {
        fprintf(stderr, "[slt] ledger: event without a string event_id ignored\n");
        return;
    }
    json_object_set_new(
        table, eid,
        json_pack("{s:O, s:s, s:i}", "event", (json_t *)event, "tenant", tenant, "seen", 0));
}

void slt_ledger_expect(slt_ledger_t *l, const json_t *event, const char *tenant)
{
    ledger_put(l->expected, event, tenant);
}

void slt_ledger_expect_degraded_copies(slt_ledger_t *l, const json_t *event, const char *tenant)
{
    ledger_put(l->expected, event, tenant);
    json_object_set_new(json_object_get(l->expected,
                                        json_string_value(json_object_get(event, "event_id"))),
                        "degraded_copies", json_true());
}

void slt_ledger_maybe(slt_ledger_t *l, const json_t *event, const char *tenant)
{
    ledger_put(l->maybe, event, tenant);
}

void slt_ledger_forbid(slt_ledger_t *l, const char *event_id, const char *reason)
{
    json_object_set_new(l->forbidden, event_id, json_string(reason));
}

size_t slt_ledger_n_expected(const slt_ledger_t *l)
{
    return json_object_size(l->expected);
}

#define SLT_MAX_REPORTED 15

static int is_decimal(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

size_t slt_ledger_verify(slt_ledger_t *l, const slt_kafka_recs_t *recs, int64_t t0_ms,
                         int64_t t1_ms, size_t *maybe_seen)
{
    /* Coarse clocks (CLOCK_REALTIME_COARSE, a loop's cached time) may lag a few ms. */
    const int64_t slack_ms = 100;
    size_t problems = 0, n_maybe = 0;
    const char *k;
    json_t *v;
    json_object_foreach(l->expected, k, v) json_object_set_new(v, "seen", json_integer(0));
    json_object_foreach(l->maybe, k, v) json_object_set_new(v, "seen", json_integer(0));

#define PROBLEM(...)                                                                               \
    do {                                                                                           \
        if (++problems <= SLT_MAX_REPORTED)                                                        \
            slt_fail_at(__FILE__, __LINE__, "ledger", __VA_ARGS__);                                \
    } while (0)

    for (size_t i = 0; i < recs->n; i++) {
        const slt_kafka_rec_t *r = &recs->recs[i];
        const char *eid = slt_kafka_rec_header(r, "event_id");
        if (!eid) {
            PROBLEM("record p%d@%lld has no event_id header", r->partition, (long long)r->offset);
            continue;
        }
        json_t *entry = json_object_get(l->expected, eid);
        int is_maybe = 0;
        if (!entry) {
            entry = json_object_get(l->maybe, eid);
            is_maybe = entry != NULL;
        }
        if (!entry) {
            const char *why = json_string_value(json_object_get(l->forbidden, eid));
            if (why)
                PROBLEM("event %s (p%d@%lld) must not be in Kafka: %s", eid, r->partition,
                        (long long)r->offset, why);
            else
                PROBLEM("unexpected event %s in Kafka (p%d@%lld)", eid, r->partition,
                        (long long)r->offset);
            continue;
        }
        json_int_t seen = json_integer_value(json_object_get(entry, "seen")) + 1;
        const char *dedup = slt_kafka_rec_header(r, "dedup");
        json_object_set_new(entry, "seen", json_integer(seen));
        if (seen == 2 && !json_is_true(json_object_get(entry, "degraded_copies")))
            PROBLEM("event %s appears more than once (again at p%d@%lld)", eid, r->partition,
                    (long long)r->offset);
        if (dedup && strcmp(dedup, "degraded") == 0)
            json_object_set_new(entry, "degraded", json_integer(json_integer_value(
                                                       json_object_get(entry, "degraded")) + 1));
        if (seen == 1 && is_maybe)
            n_maybe++;
        json_t *ev = json_object_get(entry, "event");
        const char *uid = json_string_value(json_object_get(ev, "user_id"));
        if (!r->key || !uid || strcmp(r->key, uid) != 0)
            PROBLEM("event %s: key '%s' != user_id '%s'", eid, r->key ? r->key : "(null)",
                    uid ? uid : "(none)");
        const char *tenant = slt_kafka_rec_header(r, "tenant");
        const char *want_tenant = json_string_value(json_object_get(entry, "tenant"));
        if (!tenant || strcmp(tenant, want_tenant) != 0)
            PROBLEM("event %s: tenant header '%s', want '%s'", eid, tenant ? tenant : "(none)",
                    want_tenant);
        const char *ra = slt_kafka_rec_header(r, "received_at");
        if (!is_decimal(ra)) {
            PROBLEM("event %s: received_at header '%s' is not decimal epoch ms", eid,
                    ra ? ra : "(none)");
        } else {
            long long t = strtoll(ra, NULL, 10);
            if (t < t0_ms - slack_ms || t > t1_ms + slack_ms)
                PROBLEM("event %s: received_at %lld outside the test window [%lld, %lld]", eid, t,
                        (long long)t0_ms, (long long)t1_ms);
        }
        char why[400];
        if (!slt_event_value_matches(r, ev, why, sizeof(why)))
            PROBLEM("event %s: %s", eid, why);
    }
    json_object_foreach(l->expected, k, v)
    {
        json_int_t seen = json_integer_value(json_object_get(v, "seen"));
        if (seen == 0)
            PROBLEM("accepted event %s is not in Kafka", k);
        else if (seen > 1 && json_integer_value(json_object_get(v, "degraded")) < seen - 1)
            PROBLEM("event %s: %lld copies, only %lld marked dedup=degraded", k, (long long)seen,
                    (long long)json_integer_value(json_object_get(v, "degraded")));
    }
    if (problems > SLT_MAX_REPORTED)
        slt_fail_at(__FILE__, __LINE__, "ledger", "... and %zu more ledger problems",
                    problems - SLT_MAX_REPORTED);
#undef PROBLEM
    if (maybe_seen)
        *maybe_seen = n_maybe;
    return problems;
}

/* ---------------------------------------------------------------------------------------------
 * Posting batches
 * ------------------------------------------------------------------------------------------- */

char *slt_base64(const void *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = data;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        abort();
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

void slt_post_prepare(slt_post_t *p, const slt_stack_t *s, const slt_batch_t *b, const char *key,
                      slt_auth_t auth, slt_http_version_t version)
{
    memset(p, 0, sizeof(*p));
    size_t h = 0;
    p->headers[h++] = "Content-Type: application/json";
    if (auth == SLT_AUTH_QUERY) {
        char path[160];
        snprintf(path, sizeof(path), "/v1/batch?write_key=%s", key);
        slt_public_url(s, path, p->url, sizeof(p->url));
    } else {
        slt_public_url(s, "/v1/batch", p->url, sizeof(p->url));
    }
    if (auth == SLT_AUTH_BEARER) {
        snprintf(p->auth_header, sizeof(p->auth_header), "Authorization: Bearer %s", key);
        p->headers[h++] = p->auth_header;
    } else if (auth == SLT_AUTH_BASIC) {
        char userpass[160];
        snprintf(userpass, sizeof(userpass), "%s:", key);
        char *b64 = slt_base64(userpass, strlen(userpass));
        snprintf(p->auth_header, sizeof(p->auth_header), "Authorization: Basic %s", b64);
        free(b64);
        p->headers[h++] = p->auth_header;
    }
    p->headers[h] = NULL;
    p->body = slt_batch_body(b, auth == SLT_AUTH_BODY ? key : NULL, &p->body_len);
    p->req.method = "POST";
    p->req.url = p->url;
    p->req.headers = p->headers;
    p->req.body = p->body;
    p->req.body_len = p->body_len;
    p->req.version = version;
}

void slt_post_dispose(slt_post_t *p)
{
    free(p->body);
    p->body = NULL;
}

long slt_post_batch(const slt_stack_t *s, const slt_batch_t *b, const char *key, slt_auth_t auth,
                    slt_http_version_t version, slt_http_resp_t *resp)
{
    slt_post_t p;
    slt_post_prepare(&p, s, b, key, auth, version);
    long status = slt_http(&p.req, resp);
    slt_post_dispose(&p);
    return status;
}

int slt_check_all_accepted(const char *what, const slt_http_resp_t *resp, size_t n)
{
    int before = slt_failures();
    if (!check_json_status(what, resp, 200))
        return 0;
    slt_batch_resp_t br;
    char err[256];
    if (slt_batch_resp_parse(resp->body, resp->body_len, &br, err, sizeof(err)) != 0) {
        slt_fail_at(__FILE__, __LINE__, "batch response", "%s: %s: %.300s", what, err, resp->body);
        return 0;
    }
    if (br.accepted != (long)n || br.duplicate || br.invalid || br.retry || br.n_events)
        slt_fail_at(
            __FILE__, __LINE__, "all accepted",
            "%s: want {accepted:%zu, duplicate:0, invalid:0, retry:0, events:[]}, got %.400s", what,
            n, resp->body);
    slt_batch_resp_dispose(&br);
    return slt_failures() == before;
}

/* ---------------------------------------------------------------------------------------------
 * The schema registry
 * ------------------------------------------------------------------------------------------- */

#ifndef SLT_REGISTRY_BIN
#define SLT_REGISTRY_BIN ""
#endif
#ifndef SLT_SOURCE_DIR
#define SLT_SOURCE_DIR ""
#endif

typedef struct {
    slt_registry_t *r;
} registry_wait_t;

static int cond_registry_up(void *arg)
{
    registry_wait_t *w = arg;
    char url[128];
    slt_http_resp_t resp;
    long status;
    if (!slt_proc_is_running(&w->r->proc))
        return 1;
    status = slt_http_get(slt_registry_url(w->r, "/subjects", url, sizeof(url)), SLT_HTTP_1_1,
                          &resp);
    slt_http_resp_dispose(&resp);
    return status == 200;
}

const char *slt_registry_url(const slt_registry_t *r, const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "http://127.0.0.1:%d%s", r->port, path);
    return buf;
}

int slt_registry_start(slt_registry_t *r, const char *dir, int port)
{
    const char *bin = bin_path("SLT_REGISTRY_BIN", SLT_REGISTRY_BIN);
    char listen[64], data[512], log[512];
    registry_wait_t w = {r};

    if (!*bin) {
        fprintf(stderr, "[slt] no registry binary (SLT_REGISTRY_BIN)\n");
        return -1;
    }
    if (dir != r->dir)
        snprintf(r->dir, sizeof(r->dir), "%s", dir);
    if (port == 0 && (port = slt_free_port()) < 0)
        return -1;
    r->port = port;
    snprintf(listen, sizeof(listen), "registry.listen=127.0.0.1:%d", port);
    snprintf(data, sizeof(data), "registry.data_dir=%s/registry-data", r->dir);
    snprintf(log, sizeof(log), "%s/registry.log", r->dir);
    char *const argv[] = {(char *)bin, "--set", listen, "--set", data, NULL};
    if (slt_proc_start(&r->proc, "registry", log, argv) != 0)
        return -1;
    if (!slt_poll_until(cond_registry_up, &w, 15000) || !slt_proc_is_running(&r->proc)) {
        fprintf(stderr, "[slt] registry not answering on port %d within 15 s\n", port);
        slt_proc_dump_log(&r->proc, SLT_LOG_TAIL_BYTES);
        slt_proc_stop(&r->proc, 2000);
        return -1;
    }
    return 0;
}

int slt_registry_stop(slt_registry_t *r, int timeout_ms)
{
    return slt_proc_stop(&r->proc, timeout_ms);
}

int slt_registry_restart(slt_registry_t *r)
{
    char st[64];
    int status = slt_registry_stop(r, 5000);
    SLT_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "registry on SIGTERM: %s", slt_wait_status_str(status, st, sizeof(st)));
    return slt_registry_start(r, r->dir, r->port);
}

int slt_registry_register_defaults(const slt_registry_t *r)
{
    static const char *const types[] = {"page_view", "click", "add_to_cart", "purchase",
                                        "api_request"};
    const char *src = getenv("SLT_SOURCE_DIR");
    int n = 0;

    src = src && *src ? src : SLT_SOURCE_DIR;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        char path[600], url[200];
        size_t len;
        char *text, *body;
        json_t *obj;
        slt_http_resp_t resp;
        const char *headers[] = {"Content-Type: application/vnd.schemaregistry.v1+json", NULL};
        slt_http_req_t req = {.method = "POST", .url = url, .headers = headers};

        snprintf(path, sizeof(path), "%s/schema/defaults/%s.avsc", src, types[i]);
        if ((text = slt_file_read(path, &len)) == NULL) {
            slt_fail_at(__FILE__, __LINE__, "slt_file_read", "cannot read %s", path);
            return -1;
        }
        obj = json_pack("{s:s%}", "schema", text, len);
        body = json_dumps(obj, JSON_COMPACT);
        json_decref(obj);
        free(text);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/subjects/%s/versions", r->port,
                 types[i]);
        req.body = body;
        req.body_len = strlen(body);
        long status = slt_http(&req, &resp);
        SLT_CHECK(status == 200 && strstr(resp.body, "\"id\":") != NULL,
                  "register %s: HTTP %ld %.300s", types[i], status, resp.body);
        n += status == 200;
        slt_http_resp_dispose(&resp);
        free(body);
    }
    return n == 5 ? n : -1;
}
