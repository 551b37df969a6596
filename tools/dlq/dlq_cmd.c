/* The three commands, each a Kafka read feeding one consumer of letters: print (tail), count
 * (stats), or collect then re-validate and resubmit (replay). */
#include <stdlib.h>
#include <string.h>

#include "dlq.h"

static void source_opts(const dlq_opts_t *o, volatile sig_atomic_t *stop, dlq_source_opts_t *so)
{
    memset(so, 0, sizeof(*so));
    so->brokers = o->brokers;
    so->topic = o->topic;
    so->filter = &o->filter;
    so->is_follow = o->is_follow;
    so->is_from_beginning = o->is_from_beginning;
    so->group = o->group;
    so->timeout_ms = o->timeout_ms;
    so->stop = stop;
    so->kafka_sets = o->n_kafka_sets > 0 ? (char **)o->kafka_sets : NULL;
}

typedef struct {
    FILE *out;
    long long limit, n;
    dlq_stats_t *stats;
} print_ctx_t;

static int on_tail(dlq_letter_t *l, void *arg)
{
    print_ctx_t *c = arg;
    json_t *j = dlq_letter_to_json(l);
    json_dumpf(j, c->out, JSON_COMPACT);
    fputc('\n', c->out);
    /* line-buffered in effect: a follower piping into jq sees each letter at once */
    fflush(c->out);
    json_decref(j);
    return c->limit > 0 && ++c->n >= c->limit;
}

static int on_stats(dlq_letter_t *l, void *arg)
{
    print_ctx_t *c = arg;
    dlq_stats_add(c->stats, l);
    return c->limit > 0 && ++c->n >= c->limit;
}

typedef struct {
    const dlq_opts_t *o;
    dlq_letter_t *letters;
    size_t n, cap;
    unsigned long long bytes;
    size_t skipped;
    int is_over; /* stopped at --max-mib */
    long long matched;
} collect_ctx_t;

static int on_collect(dlq_letter_t *l, void *arg)
{
    collect_ctx_t *c = arg;
    c->matched++;
    if (!dlq_replay_selects(l, c->o->is_all)) {
        c->skipped++;
        return c->o->limit > 0 && c->matched >= c->o->limit;
    }
    /* bound what one run holds: value plus a fixed allowance for the headers */
    unsigned long long cost = l->value_len + 1024;
    if (c->bytes + cost > c->o->max_bytes) {
        c->is_over = 1;
        return 1;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap != 0 ? c->cap * 2 : 256;
        dlq_letter_t *grown = realloc(c->letters, cap * sizeof(*grown));
        if (grown == NULL)
            abort();
        c->letters = grown, c->cap = cap;
    }
    /* take ownership of the letter's buffers; the source disposes the emptied husk */
    c->letters[c->n++] = *l;
    dlq_letter_init(l);
    c->bytes += cost;
    return c->o->limit > 0 && c->matched >= c->o->limit;
}

static int cmd_tail_or_stats(const dlq_opts_t *o, volatile sig_atomic_t *stop, FILE *out, FILE *err)
{
    dlq_source_opts_t so;
    print_ctx_t c = {.out = out, .limit = o->limit};
    char errbuf[512];
    int rc;
    source_opts(o, stop, &so);
    if (o->cmd == DLQ_CMD_STATS)
        c.stats = dlq_stats_create();
    rc = dlq_source_run(&so, o->cmd == DLQ_CMD_TAIL ? on_tail : on_stats, &c, errbuf,
                        sizeof(errbuf));
    if (rc != 0)
        fprintf(err, "sluice-dlq: %s\n", errbuf);
    if (rc == 0 && c.stats != NULL) {
        if (o->is_json) {
            json_t *j = dlq_stats_json(c.stats);
            json_dumpf(j, out, JSON_COMPACT);
            fputc('\n', out);
            json_decref(j);
        } else {
            dlq_stats_print(c.stats, out);
        }
    }
    dlq_stats_destroy(c.stats);
    return rc == 0 ? DLQ_EXIT_OK : DLQ_EXIT_FAILED;
}

/* The tenant of this run: --tenant, or the only tenant among the letters. Returns NULL (and
 * says why) when the letters carry several tenants or none. */
static const char *replay_tenant(const dlq_opts_t *o, const collect_ctx_t *c, FILE *err)
{
    if (o->filter.n_tenants == 1)
        return o->filter.tenants[0];
    const char *t = NULL;
    for (size_t i = 0; i < c->n; i++) {
        const char *lt = c->letters[i].tenant;
        if (lt == NULL) {
            fprintf(err, "sluice-dlq: letter %d:%lld has no tenant header; pass --tenant\n",
                    c->letters[i].partition, (long long)c->letters[i].offset);
            return NULL;
        }
        if (t == NULL) {
            t = lt;
        } else if (strcmp(t, lt) != 0) {
            fprintf(err,
                    "sluice-dlq: the letters belong to several tenants (%s, %s, ...); a write key "
                    "is one tenant's: pass --tenant\n",
                    t, lt);
            return NULL;
        }
    }
    return t;
}

static int cmd_replay(const dlq_opts_t *o, volatile sig_atomic_t *stop, FILE *out, FILE *err)
{
    dlq_source_opts_t so;
    collect_ctx_t c = {.o = o};
    dlq_validator_t *v = NULL;
    dlq_replay_summary_t sum;
    char errbuf[512];
    int rc = DLQ_EXIT_FAILED;
    memset(&sum, 0, sizeof(sum));
    source_opts(o, stop, &so);
    if (dlq_source_run(&so, on_collect, &c, errbuf, sizeof(errbuf)) != 0) {
        fprintf(err, "sluice-dlq: %s\n", errbuf);
        goto Fail;
    }
    if (c.is_over) {
        fprintf(err,
                "sluice-dlq: the matching letters exceed --max-mib %llu; narrow the filters "
                "(--since/--until/--code/--limit) or raise it\n",
                o->max_bytes >> 20);
        goto Fail;
    }
    const char *tenant = replay_tenant(o, &c, err);
    if (tenant == NULL && c.n > 0) {
        rc = DLQ_EXIT_USAGE;
        goto Fail;
    }
    v = dlq_validator_create(o->registry_url, o->timeout_ms, errbuf, sizeof(errbuf));
    if (v == NULL) {
        fprintf(err, "sluice-dlq: %s\n", errbuf);
        rc = DLQ_EXIT_USAGE;
        goto Fail;
    }
    dlq_replay_opts_t ro = {
        .gateway_url = o->gateway_url,
        .write_key = o->write_key,
        .cacert = o->cacert,
        .is_insecure = o->is_insecure,
        .tenant = tenant,
        .rate_per_s = o->rate_per_s,
        .batch_events = (size_t)o->batch_events,
        .max_body_bytes = 900 * 1024, /* under the gateway's 1 MiB default body limit */
        .max_attempts = (int)o->max_attempts,
        .max_wait_ms = o->max_wait_ms,
        .timeout_ms = o->timeout_ms,
        .is_dry_run = o->is_dry_run,
    };
    sum.skipped = c.skipped;
    if (dlq_replay_run(&ro, v, c.letters, c.n, out, &sum, errbuf, sizeof(errbuf)) != 0) {
        fprintf(err, "sluice-dlq: %s\n", errbuf);
        goto Fail;
    }
    json_t *j = json_object();
    json_t *s = json_object();
    json_object_set_new(s, "letters", json_integer((json_int_t)c.n));
    json_object_set_new(s, "skipped", json_integer((json_int_t)c.skipped));
    for (int r = 0; r < DLQ_R__COUNT; r++)
        json_object_set_new(s, dlq_result_name((dlq_result_t)r),
                            json_integer((json_int_t)sum.count[r]));
    json_object_set_new(s, "dry_run", json_boolean(o->is_dry_run));
    json_object_set_new(j, "summary", s);
    json_dumpf(j, out, JSON_COMPACT);
    fputc('\n', out);
    json_decref(j);
    fprintf(err,
            "sluice-dlq replay%s: %zu letters (%zu skipped as not replayable): %zu would_accept, "
            "%zu accepted, %zu duplicate, %zu invalid, %zu failed\n",
            o->is_dry_run ? " --dry-run" : "", c.n, c.skipped, sum.count[DLQ_R_WOULD_ACCEPT],
            sum.count[DLQ_R_ACCEPTED], sum.count[DLQ_R_DUPLICATE], sum.count[DLQ_R_INVALID],
            sum.count[DLQ_R_FAILED]);
    rc = sum.count[DLQ_R_FAILED] > 0 ? DLQ_EXIT_FAILED : DLQ_EXIT_OK;
Fail:
    dlq_validator_destroy(v);
    for (size_t i = 0; i < c.n; i++)
        dlq_letter_dispose(&c.letters[i]);
    free(c.letters);
    return rc;
}

int dlq_cmd_run(const dlq_opts_t *o, volatile sig_atomic_t *stop, FILE *out, FILE *err)
{
    return o->cmd == DLQ_CMD_REPLAY ? cmd_replay(o, stop, out, err)
                                    : cmd_tail_or_stats(o, stop, out, err);
}
