/* Operator times for --since/--until: epoch ms, RFC 3339 or relative to now; and the clocks. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dlq.h"

int64_t dlq_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dlq_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Reads exactly n digits at *p into *out; advances *p. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the usual era-based civil calendar
 * arithmetic: 400-year eras of 146097 days). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

static int parse_rfc3339(const char *s, int64_t *out_ms)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, frac_ms = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
        digits(&p, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return -1;
    if (sec == 60) /* a leap second: epoch time has none, so it is the last second's end */
        sec = 59, frac_ms = 999;
    if (*p == '.') {
        int n = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (n < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            n++, p++;
        }
        if (n == 0 || n > 9)
            return -1;
        for (; n < 3; n++)
            frac_ms *= 10;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return -1; /* RFC 3339 requires the offset: a bare local time would be ambiguous */
    }
    if (*p != '\0')
        return -1;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    *out_ms = secs * 1000 + frac_ms;
    return 0;
}

static int parse_relative(const char *s, int64_t now_ms, int64_t *out_ms)
{
    /* "-15m": the number is bounded to 9 digits so n * unit cannot overflow int64 */
    const char *p = s + 1;
    int64_t n = 0;
    int nd = 0;
    while (*p >= '0' && *p <= '9' && nd < 10)
        n = n * 10 + (*p++ - '0'), nd++;
    if (nd == 0 || nd > 9)
        return -1;
    int64_t unit;
    if (strcmp(p, "ms") == 0)
        unit = 1;
    else if (strcmp(p, "s") == 0)
        unit = 1000;
    else if (strcmp(p, "m") == 0)
        unit = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        unit = 3600 * 1000;
    else if (strcmp(p, "d") == 0)
        unit = 86400 * 1000;
    else if (strcmp(p, "w") == 0)
        unit = 7 * 86400 * 1000LL;
    else
        return -1;
    *out_ms = now_ms - n * unit;
    return 0;
}

int dlq_time_parse(const char *s, int64_t now_ms, int64_t *out_ms, char *errbuf, size_t errlen)
{
    size_t len = s != NULL ? strlen(s) : 0;
    int rc = -1;
    if (len == 0 || len > 40) {
        rc = -1;
    } else if (strcmp(s, "now") == 0) {
        *out_ms = now_ms;
        rc = 0;
    } else if (s[0] == '-') {
        rc = parse_relative(s, now_ms, out_ms);
    } else if (strspn(s, "0123456789") == len) {
        /* epoch ms; 16 digits reach year 318857, far enough and safe from overflow */
        if (len <= 16) {
            int64_t v = 0;
            for (size_t i = 0; i < len; i++)
                v = v * 10 + (s[i] - '0');
            *out_ms = v;
            rc = 0;
        }
    } else {
        rc = parse_rfc3339(s, out_ms);
    }
    if (rc != 0)
        snprintf(errbuf, errlen,
                 "bad time \"%.40s\": expected epoch ms (1764000000000), RFC 3339 "
                 "(2026-11-25T10:00:00Z) or relative (-15m, -2h, -1d)",
                 s != NULL ? s : "");
    return rc;
}

const char *dlq_time_format(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, len, "%" PRId64, ms);
        return buf;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}
