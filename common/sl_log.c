/* logfmt logging to stderr: one write(2) per line so lines from threads never interleave. */
#include "sl_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const sl_log_level_names[] = {"debug", "info", "warn", "error", NULL};
int sl_log_threshold = SL_LOG_INFO;
static const char *log_process = "sluice";

void sl_log_init(sl_log_level_t level, const char *process)
{
    sl_log_threshold = (int)level;
    if (process != NULL)
        log_process = process;
}

/* Appends msg as a quoted logfmt value, escaping quotes, backslashes and control bytes. */
static size_t put_quoted(char *out, size_t cap, size_t n, const char *s)
{
    if (n < cap)
        out[n++] = '"';
    for (; *s != '\0' && n + 2 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            out[n++] = ' ';
        } else {
            out[n++] = (char)c;
        }
    }
    if (n < cap)
        out[n++] = '"';
    return n;
}

void sl_log_write(sl_log_level_t level, const char *msg, const char *fields, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = (size_t)snprintf(line, sizeof(line),
                         "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s msg=",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, ts.tv_nsec / 1000000, sl_log_level_names[level], log_process);
    n = put_quoted(line, sizeof(line) - 2, n, msg);
    if (fields != NULL && fields[0] != '\0' && n + 2 < sizeof(line)) {
        va_list ap;
        int w;
        line[n++] = ' ';
        va_start(ap, fields);
        w = vsnprintf(line + n, sizeof(line) - 2 - n, fields, ap);
        va_end(ap);
        if (w > 0)
            n += (size_t)w < sizeof(line) - 2 - n ? (size_t)w : sizeof(line) - 3 - n;
    }
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
}

uint64_t sl_log_limit_pass(sl_log_limit_t *lim, uint64_t interval_ms)
{
    uint64_t now = sl_now_ms(), next = atomic_load_explicit(&lim->next_ms, memory_order_relaxed);
    if (now >= next && atomic_compare_exchange_strong(&lim->next_ms, &next, now + interval_ms))
        return atomic_exchange(&lim->suppressed, 0) + 1;
    atomic_fetch_add_explicit(&lim->suppressed, 1, memory_order_relaxed);
    return 0;
}

uint64_t sl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sl_now_ms(void)
{
    return sl_now_ns() / 1000000u;
}

int64_t sl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
