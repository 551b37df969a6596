/* `stats`: dead letters counted by code, by tenant and by code x tenant, with the first and last
 * Kafka timestamps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dlq.h"

struct dlq_stats {
    uint64_t total;
    int64_t first_ms, last_ms; /* -1 until a letter with a timestamp is counted */
    json_t *by_code;           /* code -> integer */
    json_t *by_tenant;         /* tenant -> integer */
    json_t *by_code_tenant;    /* code -> {tenant -> integer} */
};

dlq_stats_t *dlq_stats_create(void)
{
    dlq_stats_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        abort();
    st->first_ms = st->last_ms = -1;
    st->by_code = json_object();
    st->by_tenant = json_object();
    st->by_code_tenant = json_object();
    return st;
}

void dlq_stats_destroy(dlq_stats_t *st)
{
    if (st == NULL)
        return;
    json_decref(st->by_code);
    json_decref(st->by_tenant);
    json_decref(st->by_code_tenant);
    free(st);
}

/* Adds 1 under key; a map that already holds DLQ_MAX_STATS_KEYS keys counts new ones as
 * "(other)" so a flood of distinct tenants cannot grow the tool without bound. */
static void bump(json_t *map, const char *key)
{
    json_t *n = json_object_get(map, key);
    if (n == NULL && json_object_size(map) >= DLQ_MAX_STATS_KEYS) {
        key = "(other)";
        n = json_object_get(map, key);
    }
    json_object_set_new(map, key, json_integer(n != NULL ? json_integer_value(n) + 1 : 1));
}

/* Header text used as a key: "(none)" when absent; jansson keys must be UTF-8. */
static const char *key_of(const char *s)
{
    if (s == NULL)
        return "(none)";
    return dlq_utf8_is_valid((const uint8_t *)s, strlen(s)) ? s : "(not utf-8)";
}

void dlq_stats_add(dlq_stats_t *st, const dlq_letter_t *l)
{
    const char *code = key_of(l->code), *tenant = key_of(l->tenant);
    st->total++;
    if (l->timestamp >= 0) {
        if (st->first_ms < 0 || l->timestamp < st->first_ms)
            st->first_ms = l->timestamp;
        if (l->timestamp > st->last_ms)
            st->last_ms = l->timestamp;
    }
    bump(st->by_code, code);
    bump(st->by_tenant, tenant);
    json_t *per = json_object_get(st->by_code_tenant, code);
    if (per == NULL) {
        if (json_object_size(st->by_code_tenant) >= DLQ_MAX_STATS_KEYS)
            code = "(other)";
        per = json_object_get(st->by_code_tenant, code);
        if (per == NULL) {
            per = json_object();
            json_object_set_new(st->by_code_tenant, code, per);
        }
    }
    bump(per, tenant);
}

json_t *dlq_stats_json(const dlq_stats_t *st)
{
    return json_pack("{s:I, s:o, s:o, s:O, s:O, s:O}", "total", (json_int_t)st->total,
                     "first_timestamp",
                     st->first_ms >= 0 ? json_integer(st->first_ms) : json_null(), "last_timestamp",
                     st->last_ms >= 0 ? json_integer(st->last_ms) : json_null(), "by_code",
                     st->by_code, "by_tenant", st->by_tenant, "by_code_tenant", st->by_code_tenant);
}

typedef struct {
    const char *name;
    json_int_t n;
} row_t;

static int row_cmp(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* Rows of a {name: count} map, sorted by count then name; malloc'd. */
static row_t *rows_of(json_t *map, size_t *n)
{
    row_t *rows = calloc(json_object_size(map) + 1, sizeof(*rows));
    const char *k;
    json_t *v;
    size_t i = 0;
    if (rows == NULL)
        abort();
    json_object_foreach(map, k, v) rows[i++] = (row_t){k, json_integer_value(v)};
    qsort(rows, i, sizeof(*rows), row_cmp);
    *n = i;
    return rows;
}

static void print_map(FILE *out, const char *title, json_t *map)
{
    size_t n;
    row_t *rows = rows_of(map, &n);
    fprintf(out, "\n%-40s %10s\n", title, "count");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%-40s %10lld\n", rows[i].name, (long long)rows[i].n);
    free(rows);
}

void dlq_stats_print(const dlq_stats_t *st, FILE *out)
{
    char a[40], b[40];
    fprintf(out, "dead letters: %llu\n", (unsigned long long)st->total);
    if (st->first_ms >= 0)
        fprintf(out, "first: %s  last: %s\n", dlq_time_format(st->first_ms, a, sizeof(a)),
                dlq_time_format(st->last_ms, b, sizeof(b)));
    if (st->total == 0)
        return;
    print_map(out, "code", st->by_code);
    print_map(out, "tenant", st->by_tenant);
    fprintf(out, "\n%-24s %-24s %10s\n", "code", "tenant", "count");
    size_t nc;
    row_t *codes = rows_of(st->by_code, &nc);
    for (size_t i = 0; i < nc; i++) {
        json_t *per = json_object_get(st->by_code_tenant, codes[i].name);
        if (per == NULL)
            continue;
        size_t nt;
        row_t *tenants = rows_of(per, &nt);
        for (size_t t = 0; t < nt; t++)
            fprintf(out, "%-24s %-24s %10lld\n", codes[i].name, tenants[t].name,
                    (long long)tenants[t].n);
        free(tenants);
    }
    free(codes);
}
