/* Output: the progress line (stderr, every second) and the JSON summary (stdout, at the end),
 * and the exit status the run earned. */
#include <stdio.h>
#include <string.h>

#include "lg_int.h"

void lg_report_progress(const lg_conf_t *conf, const lg_stats_t *t, double elapsed_s, double tick_s)
{
    uint64_t answered = 0, other = 0;
    for (int i = 0; i < 600; i++) {
        answered += t->http[i];
        if (i != 200 && i != 429 && i != 503)
            other += t->http[i];
    }
    if (tick_s <= 0)
        tick_s = 1;
    fprintf(stderr,
            "[%5.0fs] %7.0f batches/s %9.0f events/s  accepted %9.0f/s  p50 %7.2f ms  p99 %7.2f "
            "ms | 200:%llu 429:%llu 503:%llu other:%llu errors:%llu\n",
            elapsed_s, (double)answered / tick_s, (double)t->events_sent / tick_s,
            (double)t->ans[LG_ANS_ACCEPTED] / tick_s, (double)lg_hist_quantile(&t->lat, 0.5) / 1e3,
            (double)lg_hist_quantile(&t->lat, 0.99) / 1e3, (unsigned long long)t->http[200],
            (unsigned long long)t->http[429], (unsigned long long)t->http[503],
            (unsigned long long)other, (unsigned long long)t->conn_errors);
}

/* ---- a small pretty-printing JSON writer ---- */
typedef struct {
    FILE *f;
    int depth;
    int has_items[16];
} js_t;

static void js_key(js_t *j, const char *key)
{
    fprintf(j->f, "%s\n%*s", j->has_items[j->depth] ? "," : "", 2 * j->depth, "");
    j->has_items[j->depth] = 1;
    if (key != NULL)
        fprintf(j->f, "\"%s\": ", key);
}

/* depth 0 is outside every container; a member at depth d is indented 2*d */
static void js_open(js_t *j, const char *key, char brace)
{
    if (j->depth > 0)
        js_key(j, key);
    fputc(brace, j->f);
    j->has_items[++j->depth] = 0;
}

static void js_close(js_t *j, char brace)
{
    j->depth--;
    fprintf(j->f, "\n%*s%c", 2 * j->depth, "", brace);
}

static void js_u64(js_t *j, const char *key, uint64_t v)
{
    js_key(j, key);
    fprintf(j->f, "%llu", (unsigned long long)v);
}

static void js_num(js_t *j, const char *key, double v)
{
    js_key(j, key);
    fprintf(j->f, "%.3f", v);
}

static void js_bool(js_t *j, const char *key, int v)
{
    js_key(j, key);
    fputs(v ? "true" : "false", j->f);
}

/* Our own strings only (names, codes, tenants given on the command line): escape the few
 * characters that could break the document. */
static void js_str(js_t *j, const char *key, const char *s)
{
    js_key(j, key);
    fputc('"', j->f);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(j->f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(j->f, "\\u%04x", (unsigned char)*s);
        else
            fputc(*s, j->f);
    }
    fputc('"', j->f);
}

static void js_latency(js_t *j, const char *key, const lg_hist_t *h)
{
    static const struct {
        const char *name;
        double q;
    } qs[] = {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99_9", 0.999}, {"max", 1.0}};
    js_open(j, key, '{');
    js_u64(j, "count", h->count);
    js_num(j, "mean", h->count != 0 ? (double)h->sum_us / (double)h->count / 1e3 : 0);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        js_num(j, qs[i].name, (double)lg_hist_quantile(h, qs[i].q) / 1e3);
    js_close(j, '}');
}

static void js_codes(js_t *j, const char *key, const lg_codes_t *c)
{
    js_open(j, key, '{');
    for (int i = 0; i < c->used; i++)
        js_u64(j, c->name[i], c->n[i]);
    if (c->other != 0)
        js_u64(j, "(other)", c->other);
    js_close(j, '}');
}

typedef struct {
    uint64_t accepted, duplicate, invalid, rejected, exhausted, abandoned;
    /* `duplicate` although every send of it was answered and none `accepted`: nothing of ours
     * stored it, so the gateway dropped a new event (a false duplicate) */
    uint64_t false_duplicate;
} outcomes_t;

/* The final outcome of every event, from the ledgers. */
static void count_outcomes(const lg_run_t *run, outcomes_t *o)
{
    memset(o, 0, sizeof(*o));
    for (int w = 0; w < run->n_workers; w++) {
        const lg_ledger_t *m = &run->workers[w]->ledger;
        for (uint32_t i = 0; i < m->n; i++) {
            const lg_entry_t *e = lg_ledger_at(m, i);
            if (e->l.n_accepted > 0)
                o->accepted++;
            else if (e->l.flags & LG_F_DUPLICATE) {
                o->duplicate++;
                if (!(e->l.flags & LG_F_AMBIGUOUS))
                    o->false_duplicate++;
            } else if (e->l.flags & LG_F_INVALID)
                o->invalid++;
            else if (e->l.flags & LG_F_REJECTED)
                o->rejected++;
            else if (e->l.flags & LG_F_EXHAUSTED)
                o->exhausted++;
            else
                o->abandoned++;
        }
    }
}

static void js_config(js_t *j, const lg_conf_t *conf)
{
    js_open(j, "config", '{');
    js_str(j, "url", conf->url);
    js_str(j, "protocol", conf->is_h1 ? "http/1.1" : "h2");
    js_u64(j, "connections", (uint64_t)conf->connections);
    js_u64(j, "streams", (uint64_t)conf->streams);
    js_u64(j, "threads", (uint64_t)conf->threads);
    js_str(j, "mode", conf->rate_bps > 0 ? "open" : "closed");
    js_num(j, "rate_batches_per_s", conf->rate_bps);
    js_num(j, "duration_s", conf->duration_s);
    js_num(j, "warmup_s", conf->warmup_s);
    js_u64(j, "batches", conf->batches);
    js_u64(j, "batch_size", (uint64_t)conf->batch_size);
    js_u64(j, "users", conf->users);
    js_open(j, "tenants", '[');
    for (int i = 0; i < conf->n_tenants; i++)
        js_str(j, NULL, conf->tenants[i].tenant);
    js_close(j, ']');
    js_num(j, "dup_pct", conf->dup_pct);
    js_u64(j, "dup_delay_ms", conf->dup_delay_ms);
    js_num(j, "invalid_pct", conf->invalid_pct);
    js_bool(j, "gzip", conf->is_gzip);
    js_u64(j, "max_attempts", (uint64_t)conf->max_attempts);
    js_u64(j, "timeout_ms", conf->timeout_ms);
    {
        char seed[24]; /* as a string: JSON readers keep only 53 bits of a number */
        snprintf(seed, sizeof(seed), "%llu", (unsigned long long)conf->seed);
        js_str(j, "seed", seed);
    }
    js_close(j, '}');
}

static void js_audit(js_t *j, const lg_audit_result_t *r)
{
    js_open(j, "audit", '{');
    js_bool(j, "enabled", 1);
    js_bool(j, "complete", r->is_complete);
    js_str(j, "incomplete_reason", r->incomplete_why);
    js_u64(j, "records", r->records);
    js_u64(j, "dlq_records", r->dlq_records);
    js_u64(j, "records_without_event_id", r->records_without_id);
    js_u64(j, "expected_present", r->expected_present);
    js_u64(j, "expected_absent", r->expected_absent);
    js_u64(j, "lost", r->lost);
    js_u64(j, "lost_answered_duplicate", r->lost_answered_duplicate);
    js_u64(j, "duplicated", r->duplicated);
    js_u64(j, "present_never_accepted", r->present_never_accepted);
    js_u64(j, "present_unconfirmed", r->present_unconfirmed);
    js_u64(j, "unknown_records", r->unknown);
    js_u64(j, "wrong_tenant", r->wrong_tenant);
    js_u64(j, "invalid", r->invalid);
    js_u64(j, "invalid_in_dlq", r->invalid_in_dlq);
    js_u64(j, "invalid_not_in_dlq", r->invalid_not_in_dlq);
    js_num(j, "last_record_after_run_s", r->seconds_after_run);
    js_close(j, '}');
}

int lg_report(const lg_conf_t *conf, lg_run_t *run, lg_audit_t *audit)
{
    const lg_stats_t *s = &run->total;
    double secs = run->end_ns > run->start_ns ? (double)(run->end_ns - run->start_ns) / 1e9 : 0;
    uint64_t answered = 0;
    outcomes_t o;
    lg_audit_result_t ar;
    const char *failures[12];
    int n_fail = 0;
    js_t j = {stdout, 0, {0}};

    for (int i = 0; i < 600; i++)
        answered += s->http[i];
    count_outcomes(run, &o);
    if (audit != NULL)
        lg_audit_reconcile(audit, run->workers, run->n_workers, &ar);

    if (answered == 0)
        failures[n_fail++] = "no request was answered";
    if (audit != NULL) {
        if (!ar.is_complete)
            failures[n_fail++] = "audit incomplete";
        if (ar.lost != 0)
            failures[n_fail++] = "lost events";
        if (ar.duplicated != 0)
            failures[n_fail++] = "duplicated events";
        if (conf->require_dlq && ar.invalid_not_in_dlq != 0)
            failures[n_fail++] = "invalid events missing from the DLQ";
        if (conf->is_strict && ar.present_never_accepted != 0)
            failures[n_fail++] = "events in Kafka that were never accepted";
    }
    if (conf->is_strict && (s->accepted_twice | s->invalid_accepted | s->unexpected_invalid |
                            s->id_conflicts | o.false_duplicate) != 0)
        failures[n_fail++] = "answers contradict the ledger (see anomalies)";
    if (conf->is_strict && o.abandoned != 0)
        failures[n_fail++] = "events without a final answer (drain timeout)";

    js_open(&j, NULL, '{');
    js_str(&j, "tool", "sluice-load");
    js_config(&j, conf);
    js_num(&j, "duration_s", secs);
    js_open(&j, "batches", '{');
    js_u64(&j, "generated", s->batches);
    js_u64(&j, "skipped_queue_full", s->skipped);
    js_u64(&j, "dup_copies", s->dup_copies);
    js_u64(&j, "retry_batches", s->retry_batches);
    js_u64(&j, "resends", s->resends);
    js_u64(&j, "exhausted", s->exhausted_batches);
    js_u64(&j, "abandoned", s->abandoned_jobs);
    js_close(&j, '}');
    js_open(&j, "requests", '{');
    js_u64(&j, "sent", s->requests);
    js_u64(&j, "answered", answered);
    js_u64(&j, "bytes_sent", s->bytes_sent);
    js_u64(&j, "connects", s->connects);
    js_u64(&j, "conn_errors", s->conn_errors);
    js_u64(&j, "timeouts", s->timeouts);
    js_u64(&j, "refused", s->refused);
    js_u64(&j, "bad_responses", s->bad_responses);
    js_close(&j, '}');
    js_open(&j, "http_status", '{');
    for (int i = 0; i < 600; i++)
        if (s->http[i] != 0) {
            char k[8];
            snprintf(k, sizeof(k), "%d", i);
            js_u64(&j, k, s->http[i]);
        }
    js_close(&j, '}');
    js_codes(&j, "error_codes", &s->req_codes);
    js_open(&j, "events", '{');
    js_u64(&j, "generated", s->events);
    js_u64(&j, "made_invalid", s->events_invalid);
    js_u64(&j, "sent", s->events_sent);
    js_close(&j, '}');
    js_open(&j, "answers", '{');
    js_u64(&j, "accepted", s->ans[LG_ANS_ACCEPTED]);
    js_u64(&j, "duplicate", s->ans[LG_ANS_DUPLICATE]);
    js_u64(&j, "invalid", s->ans[LG_ANS_INVALID]);
    js_u64(&j, "retry", s->ans[LG_ANS_RETRY]);
    js_close(&j, '}');
    js_codes(&j, "event_codes", &s->ev_codes);
    js_open(&j, "outcomes", '{');
    js_u64(&j, "accepted", o.accepted);
    js_u64(&j, "duplicate", o.duplicate);
    js_u64(&j, "invalid", o.invalid);
    js_u64(&j, "rejected", o.rejected);
    js_u64(&j, "retry_exhausted", o.exhausted);
    js_u64(&j, "abandoned", o.abandoned);
    js_close(&j, '}');
    js_open(&j, "anomalies", '{');
    js_u64(&j, "accepted_twice", s->accepted_twice);
    js_u64(&j, "invalid_accepted", s->invalid_accepted);
    js_u64(&j, "unexpected_invalid", s->unexpected_invalid);
    js_u64(&j, "id_conflicts", s->id_conflicts);
    js_u64(&j, "duplicate_never_accepted", o.false_duplicate);
    js_close(&j, '}');
    js_open(&j, "throughput", '{');
    js_num(&j, "batches_per_s", secs > 0 ? (double)answered / secs : 0);
    js_num(&j, "events_per_s_sent", secs > 0 ? (double)s->events_sent / secs : 0);
    js_num(&j, "events_per_s_accepted", secs > 0 ? (double)o.accepted / secs : 0);
    js_num(&j, "mb_per_s_sent", secs > 0 ? (double)s->bytes_sent / secs / 1e6 : 0);
    js_close(&j, '}');
    js_latency(&j, "latency_ms", &s->lat);
    js_latency(&j, "batch_latency_ms", &s->batch_lat);
    if (audit != NULL)
        js_audit(&j, &ar);
    else {
        js_open(&j, "audit", '{');
        js_bool(&j, "enabled", 0);
        js_close(&j, '}');
    }
    js_bool(&j, "passed", n_fail == 0);
    js_open(&j, "failures", '[');
    for (int i = 0; i < n_fail; i++)
        js_str(&j, NULL, failures[i]);
    js_close(&j, ']');
    js_close(&j, '}');
    fputc('\n', stdout);
    fflush(stdout);

    for (int i = 0; i < n_fail; i++)
        fprintf(stderr, "sluice-load: FAIL: %s\n", failures[i]);
    return n_fail == 0 ? 0 : 1;
}
