/* A worker thread: one epoll loop over its connections. It generates batches (closed loop: as
 * fast as the in-flight budget allows; open loop: at fixed intended times, latency counted from
 * them), behaves like an SDK on every answer (Retry-After + jittered exponential backoff, same
 * body resent; per-event `retry` resent in a later batch; `duplicate` and `invalid` final) and
 * keeps the ledger of its events' outcomes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "lg_int.h"

#define HOUSEKEEPING_NS 50000000u /* request timeouts, reconnects, progress */
#define MAX_WAIT_NS 100000000u

/* ---- jobs and their queues: the ready FIFO (due now, waiting for a connection) and a
 * min-heap by due time (resends, duplicate copies) ---- */

static lg_job_t *job_new(lg_body_t *body, int kind, uint64_t due_ns)
{
    lg_job_t *job = lg_xcalloc(1, sizeof(*job));
    body->refs++;
    job->body = body;
    job->kind = (uint8_t)kind;
    job->first_due_ns = job->due_ns = due_ns;
    return job;
}

static void job_free(lg_job_t *job)
{
    lg_body_release(job->body);
    lg_buf_dispose(&job->resp);
    free(job);
}

static void ready_push(lg_worker_t *w, lg_job_t *job)
{
    job->next = NULL;
    if (w->ready_tail != NULL)
        w->ready_tail->next = job;
    else
        w->ready = job;
    w->ready_tail = job;
    w->n_ready++;
}

static lg_job_t *ready_pop(lg_worker_t *w)
{
    lg_job_t *job = w->ready;
    w->ready = job->next;
    if (w->ready == NULL)
        w->ready_tail = NULL;
    job->next = NULL;
    w->n_ready--;
    return job;
}

static void heap_push(lg_worker_t *w, lg_job_t *job)
{
    size_t i;
    if (w->n_heap == w->heap_cap) {
        w->heap_cap = w->heap_cap != 0 ? w->heap_cap * 2 : 256;
        w->heap = lg_xrealloc(w->heap, w->heap_cap * sizeof(*w->heap));
    }
    for (i = w->n_heap++; i > 0 && w->heap[(i - 1) / 2]->due_ns > job->due_ns; i = (i - 1) / 2)
        w->heap[i] = w->heap[(i - 1) / 2];
    w->heap[i] = job;
}

static lg_job_t *heap_pop(lg_worker_t *w)
{
    lg_job_t *top = w->heap[0], *last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && w->heap[c + 1]->due_ns < w->heap[c]->due_ns)
            c++;
        if (w->heap[c]->due_ns >= last->due_ns)
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

/* ---- SDK behaviour ---- */

/* Jittered exponential backoff ("equal jitter"): half fixed, half random. */
static uint64_t backoff_ns(lg_worker_t *w, unsigned attempt)
{
    uint64_t ms = w->conf->backoff_ms;
    unsigned shift = attempt > 0 ? attempt - 1 : 0;
    ms = shift < 20 ? ms << shift : w->conf->backoff_max_ms;
    if (ms > w->conf->backoff_max_ms)
        ms = w->conf->backoff_max_ms;
    ms = ms / 2 + lg_rng_below(&w->rng, (uint32_t)(ms / 2 + 1));
    return ms * 1000000u;
}

static int is_resolved(const lg_entry_t *e)
{
    return e->l.n_accepted > 0 || (e->l.flags & (LG_F_DUPLICATE | LG_F_INVALID | LG_F_REJECTED));
}

static void job_finish(lg_worker_t *w, lg_job_t *job, uint64_t now)
{
    /* batch latency: what the SDK's user waits for, resends included */
    if (job->kind == LG_JOB_ORIGINAL && job->first_due_ns >= w->record_from_ns)
        lg_hist_record(&w->st.batch_lat, (now - job->first_due_ns) / 1000);
    job_free(job);
}

/* Every event of the job not settled elsewhere gets `flag`. */
static void mark_events(lg_worker_t *w, const lg_job_t *job, uint8_t flag, int only_unresolved)
{
    for (size_t i = 0; i < job->body->n; i++) {
        lg_entry_t *e = lg_ledger_at(&w->ledger, job->body->idx[i]);
        if (!only_unresolved || !is_resolved(e))
            e->l.flags |= flag;
    }
}

/* 429/503, a connection error or a timeout: the same body again later, or give up. */
static void resend_later(lg_worker_t *w, lg_job_t *job, int retry_after_s, uint64_t now)
{
    uint64_t delay;
    if (++job->attempts >= w->conf->max_attempts) {
        w->st.exhausted_batches++;
        mark_events(w, job, LG_F_EXHAUSTED, 1);
        job_finish(w, job, now);
        return;
    }
    delay = backoff_ns(w, job->attempts);
    if (retry_after_s > 0) { /* never earlier than asked; spread the herd a little above it */
        uint64_t ra = (uint64_t)retry_after_s * 1000000000u;
        ra += (uint64_t)lg_rng_below(&w->rng, (uint32_t)retry_after_s * 250u) * 1000000u;
        if (ra > delay)
            delay = ra;
    }
    job->due_ns = now + delay;
    w->st.resends++;
    heap_push(w, job);
}

/* A per-event `retry`: that event goes into a later batch, with its exact bytes. */
static void retry_event(lg_worker_t *w, const lg_body_t *body, size_t i, lg_entry_t *e,
                        uint64_t now)
{
    lg_retry_t *r;
    if (is_resolved(e))
        return; /* another copy settled it meanwhile */
    if (++e->l.attempts >= w->conf->max_attempts) {
        e->l.flags |= LG_F_EXHAUSTED;
        return;
    }
    if (w->n_retries == w->retries_cap) {
        w->retries_cap = w->retries_cap != 0 ? w->retries_cap * 2 : 256;
        w->retries = lg_xrealloc(w->retries, w->retries_cap * sizeof(*w->retries));
    }
    r = &w->retries[w->n_retries++];
    r->idx = body->idx[i];
    r->tenant = body->tenant;
    r->due_ns = now + backoff_ns(w, e->l.attempts);
    r->len = body->ev_len[i];
    r->json = lg_xmalloc(r->len);
    memcpy(r->json, body->json + body->ev_off[i], r->len);
    if (w->n_retries == 1 || r->due_ns < w->retry_next_ns)
        w->retry_next_ns = r->due_ns;
}

#define ANS_ID_CONFLICT 0x80

typedef struct {
    lg_worker_t *w;
    uint8_t *ans;
    size_t n;
    int is_bad;
} answers_t;

static void on_listed(void *arg, long i, int ans, const char *code, size_t code_len)
{
    answers_t *a = arg;
    if (i < 0 || (size_t)i >= a->n) {
        a->is_bad = 1;
        return;
    }
    a->ans[i] = (uint8_t)ans;
    if (code_len > 0) {
        lg_codes_add(&a->w->st.ev_codes, code, code_len, 1);
        if (ans == LG_ANS_DUPLICATE && code_len == 11 && memcmp(code, "id_conflict", 11) == 0)
            a->ans[i] |= ANS_ID_CONFLICT;
    }
}

static void apply_answers(lg_worker_t *w, lg_job_t *job, const uint8_t *ans, uint64_t now)
{
    const lg_body_t *body = job->body;
    for (size_t i = 0; i < body->n; i++) {
        lg_entry_t *e = lg_ledger_at(&w->ledger, body->idx[i]);
        int a = ans[i] & ~ANS_ID_CONFLICT;
        w->st.ans[a]++;
        w->tick.ans[a]++;
        switch (a) {
        case LG_ANS_ACCEPTED:
            if (e->l.n_accepted > 0)
                w->st.accepted_twice++;
            if (e->l.flags & LG_F_MADE_INVALID)
                w->st.invalid_accepted++;
            if (e->l.n_accepted < 255)
                e->l.n_accepted++;
            break;
        case LG_ANS_DUPLICATE:
            e->l.flags |= LG_F_DUPLICATE;
            if (ans[i] & ANS_ID_CONFLICT) {
                e->l.flags |= LG_F_ID_CONFLICT;
                w->st.id_conflicts++;
            }
            break;
        case LG_ANS_INVALID:
            e->l.flags |= LG_F_INVALID;
            if (!(e->l.flags & LG_F_MADE_INVALID))
                w->st.unexpected_invalid++;
            break;
        default:
            retry_event(w, body, i, e, now);
            break;
        }
    }
}

void lg_worker_on_answer(lg_worker_t *w, lg_job_t *job)
{
    uint64_t now = lg_now_ns(), lat_us = (now - job->due_ns) / 1000;
    int status = job->status;

    w->inflight--;
    if (job->due_ns >= w->record_from_ns) {
        lg_hist_record(&w->st.lat, lat_us);
        lg_hist_record(&w->tick.lat, lat_us);
    }
    w->st.http[status < 600 ? status : 0]++;
    w->tick.http[status < 600 ? status : 0]++;
    if (status == 200) {
        uint8_t ans[job->body->n > 0 ? job->body->n : 1];
        answers_t a = {w, ans, job->body->n, 0};
        memset(ans, LG_ANS_ACCEPTED, sizeof(ans));
        if (job->is_resp_truncated ||
            lg_resp_parse_batch(job->resp.data, job->resp.len, on_listed, &a) != 0 || a.is_bad) {
            /* cannot tell what was stored: resend, as after a lost answer */
            w->st.bad_responses++;
            mark_events(w, job, LG_F_AMBIGUOUS, 0);
            resend_later(w, job, 0, now);
            return;
        }
        apply_answers(w, job, ans, now);
        job_finish(w, job, now);
        return;
    }
    {
        char code[32];
        int n = lg_resp_error_code(job->resp.data, job->resp.len, code, sizeof(code));
        if (n > 0)
            lg_codes_add(&w->st.req_codes, code, (size_t)n, 1);
        else
            lg_codes_add(&w->st.req_codes, "(no error body)", 15, 1);
    }
    if (status == 429 || status == 503 || status == 500 || status == 502 || status == 504) {
        if (w->conf->is_sdk_pause && job->retry_after_s > 0 && job->last_conn != NULL) {
            uint64_t until = now + (uint64_t)job->retry_after_s * 1000000000u;
            if (until > job->last_conn->paused_until_ns)
                job->last_conn->paused_until_ns = until;
        }
        resend_later(w, job, job->retry_after_s, now); /* nothing of the batch was stored */
        return;
    }
    mark_events(w, job, LG_F_REJECTED, 1); /* 4xx: final; resending cannot help */
    job_finish(w, job, now);
}

void lg_worker_on_failure(lg_worker_t *w, lg_job_t *job, int why)
{
    w->inflight--;
    if (why == LG_FAIL_TIMEOUT)
        w->st.timeouts++;
    else if (why == LG_FAIL_REFUSED)
        w->st.refused++;
    w->tick.conn_errors++;
    if (why != LG_FAIL_REFUSED)
        mark_events(w, job, LG_F_AMBIGUOUS, 0); /* the gateway may have stored them */
    resend_later(w, job, 0, lg_now_ns());
}

/* ---- per-event resends: due events of one tenant become new batches ---- */

static void retry_emit(lg_worker_t *w, int tenant, uint32_t *idx, char **evs, uint32_t *lens,
                       size_t n, uint64_t now)
{
    lg_body_t *body = lg_body_from_events(w, tenant, idx, evs, lens, n);
    for (size_t i = 0; i < n; i++)
        free(evs[i]);
    ready_push(w, job_new(body, LG_JOB_RETRY, now));
    lg_body_release(body);
    w->st.retry_batches++;
}

static void retry_flush(lg_worker_t *w, uint64_t now)
{
    size_t bs = (size_t)w->conf->batch_size, kept = 0;
    uint32_t idx[bs];
    char *evs[bs];
    uint32_t lens[bs];

    if (w->n_retries == 0 || now < w->retry_next_ns)
        return;
    for (int t = 0; t < w->conf->n_tenants; t++) {
        size_t k = 0;
        for (size_t i = 0; i < w->n_retries; i++) {
            lg_retry_t *r = &w->retries[i];
            if (r->json == NULL || r->tenant != t || r->due_ns > now)
                continue;
            if (is_resolved(lg_ledger_at(&w->ledger, r->idx))) {
                free(r->json);
            } else {
                idx[k] = r->idx, evs[k] = r->json, lens[k] = r->len;
                if (++k == bs) {
                    retry_emit(w, t, idx, evs, lens, k, now);
                    k = 0;
                }
            }
            r->json = NULL;
        }
        if (k > 0)
            retry_emit(w, t, idx, evs, lens, k, now);
    }
    for (size_t i = 0; i < w->n_retries; i++) {
        if (w->retries[i].json == NULL)
            continue;
        if (kept == 0 || w->retries[i].due_ns < w->retry_next_ns)
            w->retry_next_ns = w->retries[i].due_ns;
        w->retries[kept++] = w->retries[i];
    }
    w->n_retries = kept;
}

/* ---- generation and dispatch ---- */

static lg_job_t *new_original(lg_worker_t *w, uint64_t due_ns)
{
    const lg_conf_t *conf = w->conf;
    int tenant = conf->n_tenants > 1 ? (int)lg_rng_below(&w->rng, (uint32_t)conf->n_tenants) : 0;
    lg_body_t *body = lg_body_generate(w, tenant);
    lg_job_t *job = job_new(body, LG_JOB_ORIGINAL, due_ns);

    w->tick.batches++;
    w->tick.events += body->n;
    if (conf->dup_pct > 0 && lg_rng_unit(&w->rng) * 100.0 < conf->dup_pct) {
        /* an SDK whose answer got lost: the same bytes again, maybe while the first is in
         * flight */
        uint64_t later = (uint64_t)lg_rng_below(&w->rng, conf->dup_delay_ms + 1) * 1000000u;
        heap_push(w, job_new(body, LG_JOB_DUP, due_ns + later));
        w->st.dup_copies++;
    }
    lg_body_release(body);
    return job;
}

static void update_generating(lg_worker_t *w, uint64_t now)
{
    if (!w->is_generating)
        return;
    if (w->st.connects == 0 && now - w->run->start_ns > (uint64_t)w->conf->timeout_ms * 1000000u &&
        !w->is_unreachable) {
        /* nothing ever connected: stop rather than retry forever */
        w->is_unreachable = 1;
        fprintf(stderr, "sluice-load: no connection to %s:%s within --timeout-ms; giving up\n",
                w->conf->host, w->conf->port);
    }
    if (w->is_unreachable || atomic_load(&w->run->is_stopping) || now >= w->gen_end_ns ||
        (w->gen_limit != 0 && w->st.batches + w->st.skipped >= w->gen_limit)) {
        w->is_generating = 0;
        w->drain_deadline_ns = now + (uint64_t)w->conf->drain_timeout_ms * 1000000u;
    }
}

static lg_conn_t *find_room(lg_worker_t *w, uint64_t now)
{
    for (int k = 0; k < w->n_conns; k++) {
        int i = (w->rr + k) % w->n_conns;
        if (lg_conn_has_room(&w->conns[i]) && w->conns[i].paused_until_ns <= now) {
            w->rr = i + 1;
            return &w->conns[i];
        }
    }
    return NULL;
}

static void submit(lg_worker_t *w, lg_conn_t *c, lg_job_t *job)
{
    w->inflight++;
    w->tick.events_sent += job->body->n;
    lg_conn_submit(c, job); /* may fail it at once (back to the heap) */
}

static void generate_and_dispatch(lg_worker_t *w, uint64_t now)
{
    lg_conn_t *c;

    while (w->n_heap > 0 && w->heap[0]->due_ns <= now)
        ready_push(w, heap_pop(w));
    retry_flush(w, now);
    if (w->interval_ns != 0) { /* open loop: one batch per interval, whatever happens */
        while (w->is_generating && w->next_intended_ns <= now) {
            if (w->n_ready >= w->conf->max_queue)
                w->st.skipped++;
            else
                ready_push(w, new_original(w, w->next_intended_ns));
            w->next_intended_ns += w->interval_ns;
            update_generating(w, now);
        }
    }
    while (w->ready != NULL && (c = find_room(w, now)) != NULL)
        submit(w, c, ready_pop(w));
    if (w->interval_ns == 0) { /* closed loop: fill every free slot */
        while (w->is_generating && w->ready == NULL && (c = find_room(w, now)) != NULL) {
            lg_job_t *job = new_original(w, lg_now_ns());
            job->first_due_ns = job->due_ns = lg_now_ns(); /* latency: from the send */
            submit(w, c, job);
            update_generating(w, now);
        }
    }
}

/* Past the drain deadline: what is still queued or in flight is given up (its events stay
 * without a final answer: "abandoned" in the report). */
static void abandon(lg_worker_t *w)
{
    for (int i = 0; i < w->n_conns; i++)
        lg_conn_close(&w->conns[i], LG_FAIL_TIMEOUT); /* in-flight jobs land in the heap */
    while (w->ready != NULL) {
        job_free(ready_pop(w));
        w->st.abandoned_jobs++;
    }
    while (w->n_heap > 0) {
        job_free(heap_pop(w));
        w->st.abandoned_jobs++;
    }
    for (size_t i = 0; i < w->n_retries; i++)
        free(w->retries[i].json);
    w->n_retries = 0;
}

static int is_idle(const lg_worker_t *w)
{
    return !w->is_generating && w->ready == NULL && w->n_heap == 0 && w->n_retries == 0 &&
           w->inflight == 0;
}

static uint64_t next_wake(const lg_worker_t *w, uint64_t now)
{
    uint64_t wake = now + MAX_WAIT_NS;
#define EARLIER(t) (wake = (t) < wake ? (t) : wake)
    EARLIER(w->next_housekeeping_ns);
    if (w->n_heap > 0)
        EARLIER(w->heap[0]->due_ns);
    if (w->n_retries > 0)
        EARLIER(w->retry_next_ns);
    if (w->is_generating && w->interval_ns != 0)
        EARLIER(w->next_intended_ns);
    for (int i = 0; i < w->n_conns; i++) /* --sdk-pause: a connection comes back */
        if (w->conns[i].paused_until_ns > now)
            EARLIER(w->conns[i].paused_until_ns);
#undef EARLIER
    return wake;
}

void *lg_worker_main(void *arg)
{
    lg_worker_t *w = arg;
    struct epoll_event evs[64];
    uint64_t now = lg_now_ns();

    prctl(PR_SET_TIMERSLACK, 1000UL); /* open-loop sends at microsecond intervals */
    /* workers' open-loop schedules interleave instead of firing together */
    w->next_intended_ns =
        w->run->start_ns + (uint64_t)w->idx * w->interval_ns / (uint64_t)w->run->n_workers;
    w->record_from_ns = w->run->start_ns + (uint64_t)(w->conf->warmup_s * 1e9);
    w->gen_end_ns = w->conf->duration_s > 0
                        ? w->run->start_ns + (uint64_t)(w->conf->duration_s * 1e9)
                        : UINT64_MAX;
    w->next_housekeeping_ns = now + HOUSEKEEPING_NS;
    for (int i = 0; i < w->n_conns; i++)
        lg_conn_start(&w->conns[i]);
    for (;;) {
        uint64_t wake;
        struct timespec ts;
        int n;

        now = lg_now_ns();
        update_generating(w, now);
        generate_and_dispatch(w, now);
        if (now >= w->next_housekeeping_ns) {
            for (int i = 0; i < w->n_conns; i++)
                lg_conn_check(&w->conns[i], now);
            /* often, so that the progress line's second is this second */
            lg_run_publish(w->run, &w->tick);
            w->next_housekeeping_ns = now + HOUSEKEEPING_NS;
        }
        if (!w->is_generating) {
            if (is_idle(w))
                break;
            if (now >= w->drain_deadline_ns) {
                abandon(w);
                break;
            }
        }
        wake = next_wake(w, now);
        now = lg_now_ns();
        wake = wake > now ? wake - now : 0;
        ts.tv_sec = (time_t)(wake / 1000000000u);
        ts.tv_nsec = (long)(wake % 1000000000u);
        n = epoll_pwait2(w->ep, evs, 64, &ts, NULL);
        if (n < 0 && errno == ENOSYS) /* kernels before 5.11 */
            n = epoll_wait(w->ep, evs, 64, (int)((wake + 999999) / 1000000));
        for (int i = 0; i < n; i++)
            lg_conn_handle(evs[i].data.ptr, evs[i].events);
    }
    w->end_ns = lg_now_ns();
    for (int i = 0; i < w->n_conns; i++)
        lg_conn_close(&w->conns[i], LG_FAIL_REFUSED);
    lg_run_publish(w->run, &w->tick);
    atomic_fetch_sub(&w->run->n_running, 1);
    return NULL;
}

SSL_CTX *lg_worker_ssl_ctx(const lg_worker_t *w)
{
    return w->run->ssl_ctx;
}

lg_worker_t *lg_worker_create(lg_run_t *run, const lg_conf_t *conf, int idx, char *errbuf,
                              size_t errlen)
{
    lg_worker_t *w = lg_xcalloc(1, sizeof(*w));
    int nt = conf->threads;

    w->idx = idx;
    w->conf = conf;
    w->run = run;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0) {
        snprintf(errbuf, errlen, "epoll_create1: %s", strerror(errno));
        free(w);
        return NULL;
    }
    lg_rng_seed(&w->rng, conf->seed + (uint64_t)idx * 0x9e3779b97f4a7c15u);
    w->n_conns = conf->connections / nt + (idx < conf->connections % nt);
    w->conns = lg_xcalloc((size_t)w->n_conns, sizeof(*w->conns));
    for (int i = 0; i < w->n_conns; i++)
        lg_conn_init(&w->conns[i], w);
    if (conf->batches != 0)
        w->gen_limit =
            conf->batches / (uint64_t)nt + ((uint64_t)idx < conf->batches % (uint64_t)nt);
    if (conf->rate_bps > 0)
        w->interval_ns = (uint64_t)(1e9 * nt / conf->rate_bps);
    w->is_generating = 1;
    return w;
}

void lg_worker_destroy(lg_worker_t *w)
{
    if (w == NULL)
        return;
    for (int i = 0; i < w->n_conns; i++)
        lg_conn_dispose(&w->conns[i]);
    while (w->ready != NULL)
        job_free(ready_pop(w));
    while (w->n_heap > 0)
        job_free(heap_pop(w));
    for (size_t i = 0; i < w->n_retries; i++)
        free(w->retries[i].json);
    free(w->retries);
    free(w->heap);
    free(w->conns);
    lg_ledger_dispose(&w->ledger);
    lg_buf_dispose(&w->scratch);
    if (w->has_z)
        deflateEnd(&w->z);
    if (w->ep >= 0)
        close(w->ep);
    free(w);
}
