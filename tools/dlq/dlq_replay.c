/* `replay`: re-validate dead letters, then resubmit the valid ones through the gateway's
 * POST /v1/batch in rate-limited batches, honouring 429/503 Retry-After with bounded attempts,
 * and report every letter's result. The gateway's dedup makes a second replay a no-op
 * (duplicate), so resending is always safe. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlq.h"
#include "dlq_int.h"

const char *dlq_result_name(dlq_result_t r)
{
    static const char *const names[DLQ_R__COUNT] = {"would_accept", "accepted", "duplicate",
                                                    "invalid", "failed"};
    return r < DLQ_R__COUNT ? names[r] : "?";
}

int64_t dlq_retry_after_ms(const char *value, int64_t default_ms, int64_t cap_ms)
{
    int64_t ms = default_ms;
    if (value != NULL && value[0] != '\0' && strlen(value) <= 9 &&
        strspn(value, "0123456789") == strlen(value))
        ms = strtoll(value, NULL, 10) * 1000;
    return ms > cap_ms ? cap_ms : ms;
}

static void copy_str(char *dst, size_t cap, json_t *s)
{
    snprintf(dst, cap, "%s", json_is_string(s) ? json_string_value(s) : "");
}

int dlq_gw_response_parse(const char *body, size_t len, size_t n, dlq_gw_outcome_t *outcomes,
                          char *errbuf, size_t errlen)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *events = json_object_get(root, "events");
    size_t i;
    json_t *ev;
    int rc = -1;
    memset(outcomes, 0, n * sizeof(*outcomes));
    if (!json_is_object(root) || !json_is_array(events)) {
        snprintf(errbuf, errlen, "gateway answer is not {\"events\": [...]}");
        goto Done;
    }
    json_array_foreach(events, i, ev)
    {
        json_t *idx = json_object_get(ev, "i"), *status = json_object_get(ev, "status");
        if (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
            (size_t)json_integer_value(idx) >= n || !json_is_string(status)) {
            snprintf(errbuf, errlen, "gateway answer lists an event without a valid i/status");
            goto Done;
        }
        dlq_gw_outcome_t *o = &outcomes[json_integer_value(idx)];
        o->i = (long)json_integer_value(idx);
        copy_str(o->status, sizeof(o->status), status);
        copy_str(o->code, sizeof(o->code), json_object_get(ev, "code"));
        copy_str(o->path, sizeof(o->path), json_object_get(ev, "path"));
        copy_str(o->detail, sizeof(o->detail), json_object_get(ev, "detail"));
    }
    rc = 0;
Done:
    json_decref(root);
    return rc;
}

/* Per-letter outcome of this run. */
typedef struct {
    dlq_result_t result;
    int is_final;
    char code[48];
    char detail[200];
    char subject[128];
    int32_t schema_id;
} slot_t;

typedef struct {
    const dlq_replay_opts_t *o;
    dlq_letter_t *letters;
    slot_t *slots;
    FILE *out;
    dlq_replay_summary_t *sum;
    CURL *curl;
    struct curl_slist *headers;
    char url[1100];
    dlq_bucket_t bucket;
} run_t;

static void sleep_us(int64_t us)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000), .tv_nsec = (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static json_t *str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' && dlq_utf8_is_valid((const uint8_t *)s, strlen(s))
               ? json_string(s)
               : json_null();
}

/* Finalises letter i and prints its line. */
static void report(run_t *r, size_t i, dlq_result_t res, const char *code, const char *path,
                   const char *detail)
{
    slot_t *s = &r->slots[i];
    const dlq_letter_t *l = &r->letters[i];
    s->result = res;
    s->is_final = 1;
    snprintf(s->code, sizeof(s->code), "%s", code != NULL ? code : "");
    snprintf(s->detail, sizeof(s->detail), "%s", detail != NULL ? detail : "");
    r->sum->count[res]++;
    json_t *j = json_object();
    json_object_set_new(j, "partition", json_integer(l->partition));
    json_object_set_new(j, "offset", json_integer(l->offset));
    json_object_set_new(j, "event_id", str_or_null(l->event_id));
    json_object_set_new(j, "tenant", str_or_null(l->tenant));
    json_object_set_new(j, "result", json_string(dlq_result_name(res)));
    json_object_set_new(j, "code", str_or_null(s->code));
    json_object_set_new(j, "path", str_or_null(path));
    json_object_set_new(j, "detail", str_or_null(s->detail));
    json_object_set_new(j, "subject", str_or_null(s->subject));
    json_object_set_new(j, "schema_id",
                        s->schema_id >= 0 ? json_integer(s->schema_id) : json_null());
    json_dumpf(j, r->out, JSON_COMPACT);
    fputc('\n', r->out);
    fflush(r->out);
    json_decref(j);
}

/* {"sent_at": now, "events": [value, ...]} with each value's original bytes: the same bytes as
 * the first attempt, so the gateway's payload fingerprint sees the same event (a re-encoded
 * event could look like an id_conflict). */
static char *build_body(run_t *r, const size_t *idx, size_t n, size_t *len_out)
{
    size_t cap = 64;
    for (size_t k = 0; k < n; k++)
        cap += r->letters[idx[k]].value_len + 1;
    char *body = malloc(cap);
    if (body == NULL)
        abort();
    size_t o = (size_t)snprintf(body, cap, "{\"sent_at\":%" PRId64 ",\"events\":[", dlq_wall_ms());
    for (size_t k = 0; k < n; k++) {
        if (k > 0)
            body[o++] = ',';
        memcpy(body + o, r->letters[idx[k]].value, r->letters[idx[k]].value_len);
        o += r->letters[idx[k]].value_len;
    }
    memcpy(body + o, "]}", 3);
    *len_out = o + 2;
    return body;
}

/* Sends letters idx[0..n) (valid ones) with bounded attempts; finalises each of them. */
static void send_batch(run_t *r, size_t *idx, size_t n)
{
    const dlq_replay_opts_t *o = r->o;
    dlq_gw_outcome_t *outs = calloc(n, sizeof(*outs));
    char why[240] = "not sent";
    const char *why_code = "retries_exhausted";
    if (outs == NULL)
        abort();
    for (int attempt = 1; n > 0 && attempt <= o->max_attempts; attempt++) {
        int64_t wait_us;
        while ((wait_us = dlq_bucket_take(&r->bucket, (double)n, dlq_mono_us())) > 0)
            sleep_us(wait_us);
        size_t len;
        char *body = build_body(r, idx, n, &len);
        dlq_http_resp_t resp;
        int http_rc = dlq_http_do(r->curl, r->url, r->headers, body, len, o->timeout_ms, &resp);
        free(body);
        /* backoff when the gateway gave no Retry-After: 0.5 s, 1 s, 2 s, ... capped */
        int64_t backoff_ms = 500LL << (attempt - 1 < 6 ? attempt - 1 : 6);
        int64_t retry_ms = -1;
        if (http_rc != 0) {
            snprintf(why, sizeof(why), "gateway: %.220s", resp.error);
            why_code = "transport";
            retry_ms = backoff_ms < o->max_wait_ms ? backoff_ms : o->max_wait_ms;
        } else if (resp.status == 429 || resp.status == 503) {
            snprintf(why, sizeof(why), "gateway answered %ld", resp.status);
            why_code = resp.status == 429 ? "http_429" : "http_503";
            retry_ms = dlq_retry_after_ms(resp.retry_after, backoff_ms, o->max_wait_ms);
        } else if (resp.status == 200) {
            char err[160];
            if (dlq_gw_response_parse(resp.body, resp.len, n, outs, err, sizeof(err)) != 0) {
                for (size_t k = 0; k < n; k++)
                    report(r, idx[k], DLQ_R_FAILED, "bad_response", NULL, err);
                n = 0;
            } else {
                /* keep only the events the gateway asked to resend, in order */
                size_t keep = 0;
                for (size_t k = 0; k < n; k++) {
                    const dlq_gw_outcome_t *out = &outs[k];
                    if (out->status[0] == '\0')
                        report(r, idx[k], DLQ_R_ACCEPTED, NULL, NULL, NULL);
                    else if (strcmp(out->status, "duplicate") == 0)
                        report(r, idx[k], DLQ_R_DUPLICATE, out->code, out->path, out->detail);
                    else if (strcmp(out->status, "invalid") == 0 &&
                             !(strcmp(out->code, "schema_not_found") == 0 &&
                               attempt < o->max_attempts))
                        report(r, idx[k], DLQ_R_INVALID, out->code, out->path, out->detail);
                    else /* retry; or schema_not_found although the registry has the schema
                            (validated above): the gateway's cache still remembers "not found"
                            (schema.negative_ttl_ms), so send it again after the backoff */
                        idx[keep++] = idx[k];
                }
                if (keep > 0) {
                    snprintf(why, sizeof(why), "gateway kept answering retry");
                    why_code = "retry";
                    retry_ms = dlq_retry_after_ms(resp.retry_after, backoff_ms, o->max_wait_ms);
                }
                n = keep;
            }
        } else {
            /* 400/401/413/415...: resending the same request cannot change the answer */
            char *code = NULL;
            json_t *root = json_loadb(resp.body, resp.len, 0, NULL);
            const char *ec =
                json_string_value(json_object_get(json_object_get(root, "error"), "code"));
            if (asprintf(&code, "http_%ld", resp.status) < 0)
                abort();
            snprintf(why, sizeof(why), "gateway answered %ld %s", resp.status,
                     ec != NULL ? ec : "");
            for (size_t k = 0; k < n; k++)
                report(r, idx[k], DLQ_R_FAILED, code, NULL, why);
            free(code);
            json_decref(root);
            n = 0;
        }
        dlq_http_resp_dispose(&resp);
        if (n > 0 && attempt < o->max_attempts && retry_ms > 0)
            sleep_us(retry_ms * 1000);
    }
    for (size_t k = 0; k < n; k++)
        report(r, idx[k], DLQ_R_FAILED, why_code, NULL, why);
    free(outs);
}

static int http_setup(run_t *r, char *errbuf, size_t errlen)
{
    const dlq_replay_opts_t *o = r->o;
    size_t ulen = strlen(o->gateway_url);
    const char *suffix = "/v1/batch";
    while (ulen > 0 && o->gateway_url[ulen - 1] == '/')
        ulen--;
    if (ulen >= strlen(suffix) &&
        strncmp(o->gateway_url + ulen - strlen(suffix), suffix, strlen(suffix)) == 0)
        suffix = "";
    if (ulen + strlen(suffix) >= sizeof(r->url)) {
        snprintf(errbuf, errlen, "--gateway URL too long");
        return -1;
    }
    snprintf(r->url, sizeof(r->url), "%.*s%s", (int)ulen, o->gateway_url, suffix);
    r->curl = curl_easy_init();
    if (r->curl == NULL) {
        snprintf(errbuf, errlen, "libcurl: cannot create a handle");
        return -1;
    }
    char *auth = NULL;
    if (asprintf(&auth, "Authorization: Bearer %s", o->write_key) < 0)
        abort();
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    r->headers = curl_slist_append(r->headers, auth);
    r->headers = curl_slist_append(r->headers, "User-Agent: sluice-dlq");
    /* the write key is a secret: wipe our copy once curl has its own */
    memset(auth, 0, strlen(auth));
    free(auth);
    if (o->cacert != NULL)
        curl_easy_setopt(r->curl, CURLOPT_CAINFO, o->cacert);
    if (o->is_insecure) {
        curl_easy_setopt(r->curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(r->curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return 0;
}

int dlq_replay_run(const dlq_replay_opts_t *o, dlq_validator_t *v, dlq_letter_t *letters, size_t n,
                   FILE *out, dlq_replay_summary_t *sum, char *errbuf, size_t errlen)
{
    run_t r = {.o = o, .letters = letters, .out = out, .sum = sum};
    size_t *batch = NULL;
    int rc = -1;
    r.slots = calloc(n + 1, sizeof(*r.slots));
    batch = calloc(o->batch_events + 1, sizeof(*batch));
    if (r.slots == NULL || batch == NULL)
        abort();
    if (!o->is_dry_run && http_setup(&r, errbuf, errlen) != 0)
        goto Fail;
    size_t per_batch = o->batch_events;
    /* a batch never needs more tokens than one second's worth, so a slow rate sends small
     * batches rather than bursts */
    if (o->rate_per_s > 0 && o->rate_per_s < (double)per_batch)
        per_batch = o->rate_per_s >= 1 ? (size_t)o->rate_per_s : 1;
    dlq_bucket_init(&r.bucket, o->rate_per_s, (double)per_batch, dlq_mono_us());

    size_t nb = 0, body_bytes = 64;
    for (size_t i = 0; i < n; i++) {
        dlq_verdict_t vd;
        dlq_validate(v, &letters[i], &vd);
        snprintf(r.slots[i].subject, sizeof(r.slots[i].subject), "%s", vd.subject);
        r.slots[i].schema_id = vd.schema_id;
        if (vd.kind == DLQ_INVALID) {
            report(&r, i, DLQ_R_INVALID, vd.code, vd.path, vd.detail);
            continue;
        }
        if (vd.kind == DLQ_UNCHECKED) {
            report(&r, i, DLQ_R_FAILED, vd.code, NULL, vd.detail);
            continue;
        }
        if (o->is_dry_run) {
            report(&r, i, DLQ_R_WOULD_ACCEPT, NULL, NULL, NULL);
            continue;
        }
        if (nb > 0 &&
            (nb == per_batch || body_bytes + letters[i].value_len + 1 > o->max_body_bytes)) {
            send_batch(&r, batch, nb);
            nb = 0, body_bytes = 64;
        }
        batch[nb++] = i;
        body_bytes += letters[i].value_len + 1;
    }
    if (nb > 0)
        send_batch(&r, batch, nb);
    rc = 0;
Fail:
    curl_slist_free_all(r.headers);
    if (r.curl != NULL)
        curl_easy_cleanup(r.curl);
    free(batch);
    free(r.slots);
    return rc;
}
