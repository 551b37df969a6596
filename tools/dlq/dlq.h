/* tools/dlq/: the library behind `sluice-dlq`, the dead-letter operator CLI (tail, stats, replay
 * of topic events.dlq). Pure parts (time parsing, filters, header -> record mapping, token bucket,
 * gateway answers, arguments) have no I/O so the unit tests drive them directly; the Kafka source,
 * the registry client and the HTTP sender are the only files that touch the network.
 * Single-threaded: one command runs on the main thread from start to end. */
#ifndef DLQ_H
#define DLQ_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Exit statuses of sluice-dlq. */
enum { DLQ_EXIT_OK = 0, DLQ_EXIT_FAILED = 1, DLQ_EXIT_USAGE = 2 };

/* Bounds: every list and copy the CLI keeps is capped before it is allocated. */
#define DLQ_MAX_FILTER_VALUES 64              /* --code / --tenant given at most this often */
#define DLQ_MAX_HEADER_BYTES 4096             /* a header value longer than this is cut */
#define DLQ_MAX_VALUE_BYTES (16u << 20)       /* the gateway's own cap on a dead letter's value */
#define DLQ_MAX_STATS_KEYS 10000              /* distinct codes/tenants counted before "(other)" */
#define DLQ_MAX_BATCH_EVENTS 500              /* the gateway's events-per-batch limit */
#define DLQ_DEFAULT_REPLAY_BYTES (256u << 20) /* letters held in memory by one replay run */

/* ---------------------------------------------------------------------------------------------
 * Time (dlq_time.c)
 * ------------------------------------------------------------------------------------------- */

/* Parses an operator's TIME into epoch milliseconds: decimal epoch ms ("1764000000000"), RFC 3339
 * ("2026-11-25T10:00:00Z", optional fraction, "Z" or "+hh:mm"/"-hh:mm") or relative to now_ms
 * ("-15m", "-2h", "-1d", "-30s", "-500ms"). Returns 0, or -1 with a message in errbuf. */
int dlq_time_parse(const char *s, int64_t now_ms, int64_t *out_ms, char *errbuf, size_t errlen);

/* Formats epoch ms as RFC 3339 UTC with milliseconds ("2026-11-25T10:00:00.000Z") into buf
 * (at least 32 bytes); returns buf. */
const char *dlq_time_format(int64_t ms, char *buf, size_t len);

/* ---------------------------------------------------------------------------------------------
 * One dead letter (dlq_letter.c)
 * ------------------------------------------------------------------------------------------- */

/* A dead letter as the CLI sees it: the Kafka coordinates, the headers of API.md ("Topic
 * events.dlq") as NUL-terminated copies (NULL when the header is absent) and the value. */
typedef struct {
    int32_t partition;
    int64_t offset;
    int64_t timestamp; /* Kafka message timestamp, epoch ms; -1 unknown */
    char *code, *stage, *path, *detail, *tenant, *event_id, *content_type, *schema_subject;
    char *gateway;
    char *received_at_text; /* as written; received_at is its value when it is decimal */
    int64_t received_at;    /* -1 when absent or not a number */
    int64_t schema_id;      /* -1 when absent or not a number */
    int retryable;          /* 1 "true", 0 "false", -1 absent or anything else */
    int is_truncated;       /* header dlq.truncated=true: the value was cut by the gateway */
    uint8_t *value;         /* owned copy (NULL for a NULL value) */
    size_t value_len;
} dlq_letter_t;

/* Zeroes l (unknown numbers -1). */
void dlq_letter_init(dlq_letter_t *l);
/* Frees what l owns and re-initialises it; accepts an initialised or zeroed letter. */
void dlq_letter_dispose(dlq_letter_t *l);
/* Applies one Kafka header (value need not be NUL-terminated; NULL is a NULL header). Unknown
 * names are ignored, a repeated name keeps the last value, values are cut to
 * DLQ_MAX_HEADER_BYTES. */
void dlq_letter_set_header(dlq_letter_t *l, const char *name, const void *value, size_t len);
/* Copies the value (cut to DLQ_MAX_VALUE_BYTES, which the gateway never exceeds). */
void dlq_letter_set_value(dlq_letter_t *l, const void *value, size_t len);

/* The JSON record `tail` prints: partition, offset, timestamp, code, stage, path, detail,
 * retryable, tenant, event_id, received_at, content_type, schema_subject, schema_id, gateway,
 * truncated, and "value" (a string when the value is valid UTF-8) or "value_base64". Absent
 * headers are null; header text that is not UTF-8 has its bad bytes replaced by U+FFFD.
 * Returns a new reference. */
json_t *dlq_letter_to_json(const dlq_letter_t *l);

/* Whether s[0..len) is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
int dlq_utf8_is_valid(const uint8_t *s, size_t len);
/* Standard base64 (with padding) into a malloc'd NUL-terminated string. */
char *dlq_base64(const uint8_t *data, size_t len);

/* ---------------------------------------------------------------------------------------------
 * Filters (dlq_filter.c)
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    const char *codes[DLQ_MAX_FILTER_VALUES]; /* any of them (borrowed strings) */
    size_t n_codes;
    const char *tenants[DLQ_MAX_FILTER_VALUES];
    size_t n_tenants;
    int64_t since_ms; /* INT64_MIN: no lower bound */
    int64_t until_ms; /* INT64_MAX: no upper bound (inclusive) */
} dlq_filter_t;

void dlq_filter_init(dlq_filter_t *f);
/* Adds a --code / --tenant value. Returns 0, or -1 when DLQ_MAX_FILTER_VALUES are in. */
int dlq_filter_add_code(dlq_filter_t *f, const char *code);
int dlq_filter_add_tenant(dlq_filter_t *f, const char *tenant);
/* 1 when the letter passes: its code is one of the codes (if any are given), its tenant one of
 * the tenants (if any), and its Kafka timestamp inside [since, until]. A letter without the
 * header a filter asks about does not pass it. */
int dlq_filter_match(const dlq_filter_t *f, const dlq_letter_t *l);

/* Which letters `replay` takes, after the filter: by default those with dlq.retryable=true;
 * with all_codes every letter except stage=parse ones (whole bodies, not events). Truncated
 * letters are taken and then reported invalid (a cut event cannot be resent). */
int dlq_replay_selects(const dlq_letter_t *l, int all_codes);

/* ---------------------------------------------------------------------------------------------
 * Token bucket (dlq_bucket.c)
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    double rate_per_s; /* <= 0: unlimited */
    double burst;      /* capacity in tokens */
    double tokens;
    int64_t last_us;
} dlq_bucket_t;

/* Starts full. rate_per_s <= 0 makes every take succeed. */
void dlq_bucket_init(dlq_bucket_t *b, double rate_per_s, double burst, int64_t now_us);
/* Takes n tokens and returns 0 when they are there; otherwise takes nothing and returns the
 * microseconds until they will be (n larger than the burst is clamped to it, so a take never
 * waits forever). */
int64_t dlq_bucket_take(dlq_bucket_t *b, double n, int64_t now_us);

/* ---------------------------------------------------------------------------------------------
 * Stats (dlq_stats.c)
 * ------------------------------------------------------------------------------------------- */

typedef struct dlq_stats dlq_stats_t;

dlq_stats_t *dlq_stats_create(void);
void dlq_stats_destroy(dlq_stats_t *st);
/* Counts one letter by code, by tenant and by code x tenant ("(none)" for an absent header);
 * past DLQ_MAX_STATS_KEYS distinct keys the rest go to "(other)". */
void dlq_stats_add(dlq_stats_t *st, const dlq_letter_t *l);
/* {"total", "first_timestamp", "last_timestamp" (epoch ms or null), "by_code": {code: n},
 * "by_tenant": {tenant: n}, "by_code_tenant": {code: {tenant: n}}}. New reference. */
json_t *dlq_stats_json(const dlq_stats_t *st);
/* The human table (counts sorted by count, then name). */
void dlq_stats_print(const dlq_stats_t *st, FILE *out);

/* ---------------------------------------------------------------------------------------------
 * Kafka source (dlq_source.c)
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    const char *brokers;
    const char *topic;
    const dlq_filter_t *filter;  /* since_ms seeks (offsets_for_times); the rest filters */
    int is_follow;               /* keep reading past the end until *stop */
    int is_from_beginning;       /* with is_follow: from the beginning, not only new letters */
    const char *group;           /* NULL: nothing committed; else start at (and commit) it */
    int timeout_ms;              /* metadata, offset queries, and the longest silence tolerated
                                  * before the end is reached (not in follow mode) */
    volatile sig_atomic_t *stop; /* set by a signal handler; may be NULL */
    char **kafka_sets;           /* NULL-terminated "key=value" for librdkafka, or NULL */
} dlq_source_opts_t;

/* Called for each letter that passes the filter, in per-partition order. The letter is valid
 * only during the call (the callee may take its fields: dlq_letter_dispose is run afterwards on
 * whatever is left). Returns 0 to go on, 1 to stop reading. */
typedef int (*dlq_on_letter_fn)(dlq_letter_t *l, void *arg);

/* Reads the topic with every partition assigned explicitly (no group membership). Without
 * follow it stops once every partition reached the end it had when the run started. Returns 0,
 * or -1 with errbuf set (no metadata, unknown topic, a consume error, silence past the timeout). */
int dlq_source_run(const dlq_source_opts_t *o, dlq_on_letter_fn fn, void *arg, char *errbuf,
                   size_t errlen);

/* ---------------------------------------------------------------------------------------------
 * Re-validation against the registry's current schemas (dlq_validate.c)
 * ------------------------------------------------------------------------------------------- */

typedef struct dlq_validator dlq_validator_t;

typedef enum {
    DLQ_VALID = 0,     /* would be accepted by the schema */
    DLQ_INVALID = 1,   /* refused: code/path/detail say why */
    DLQ_UNCHECKED = 2, /* the registry could not answer: not a verdict on the event */
} dlq_verdict_kind_t;

typedef struct {
    dlq_verdict_kind_t kind;
    char code[48];
    char path[128];
    char detail[200];
    char subject[128];
    int32_t schema_id; /* the registry id validated against; -1 when none */
} dlq_verdict_t;

/* A registry client with a per-run cache (subject + version -> compiled schema or "not found").
 * registry_url is the base ("http://127.0.0.1:8081"). Returns NULL with errbuf set. */
dlq_validator_t *dlq_validator_create(const char *registry_url, int timeout_ms, char *errbuf,
                                      size_t errlen);
void dlq_validator_destroy(dlq_validator_t *v);
/* Re-validates one letter's value: a JSON object whose schema subject is the schema_subject
 * header or else its event_type (an event may pin "schema_version": N), encoded with the
 * registry's schema as the gateway does. */
void dlq_validate(dlq_validator_t *v, const dlq_letter_t *l, dlq_verdict_t *out);

/* ---------------------------------------------------------------------------------------------
 * Replay (dlq_replay.c)
 * ------------------------------------------------------------------------------------------- */

typedef enum {
    DLQ_R_WOULD_ACCEPT = 0,
    DLQ_R_ACCEPTED,
    DLQ_R_DUPLICATE,
    DLQ_R_INVALID,
    DLQ_R_FAILED,
    DLQ_R__COUNT
} dlq_result_t;

/* "would_accept", "accepted", "duplicate", "invalid", "failed". */
const char *dlq_result_name(dlq_result_t r);

/* One event's answer in a gateway 200 body: only the events not accepted are listed. */
typedef struct {
    long i;
    char status[16]; /* duplicate, invalid, retry */
    char code[48];
    char path[128];
    char detail[200];
} dlq_gw_outcome_t;

/* Parses a 200 body of POST /v1/batch for a batch of n events into outcomes[0..n) (status ""
 * means accepted: not listed). Returns 0, or -1 with errbuf set (not JSON, wrong shape, an index
 * out of range). */
int dlq_gw_response_parse(const char *body, size_t len, size_t n, dlq_gw_outcome_t *outcomes,
                          char *errbuf, size_t errlen);
/* Retry-After in seconds (delta-seconds only) -> ms, capped at cap_ms; default_ms when absent
 * or unparsable. */
int64_t dlq_retry_after_ms(const char *value, int64_t default_ms, int64_t cap_ms);

typedef struct {
    const char *gateway_url; /* the base or the full /v1/batch URL */
    const char *write_key;
    const char *cacert;    /* NULL: system CAs */
    int is_insecure;       /* no certificate check */
    const char *tenant;    /* the one tenant being replayed (checked against every letter) */
    double rate_per_s;     /* <= 0: unlimited */
    size_t batch_events;   /* events per request, 1..DLQ_MAX_BATCH_EVENTS */
    size_t max_body_bytes; /* a request body stays under this (one event over it goes alone) */
    int max_attempts;      /* per batch, for 429/503/transport errors and "retry" events */
    int64_t max_wait_ms;   /* cap on one Retry-After */
    int timeout_ms;        /* per HTTP request */
    int is_dry_run;
} dlq_replay_opts_t;

typedef struct {
    size_t count[DLQ_R__COUNT];
    size_t skipped; /* letters that passed the filter but not dlq_replay_selects */
} dlq_replay_summary_t;

/* Re-validates letters[0..n) with v and, unless dry run, resubmits the valid ones through the
 * gateway in batches at most rate_per_s events/s. Writes one JSON line per letter to out
 * ({"partition","offset","event_id","tenant","result","code","path","detail","subject",
 * "schema_id"}) and fills
 * *sum. Returns 0, or -1 when the HTTP client could not be set up (errbuf). */
int dlq_replay_run(const dlq_replay_opts_t *o, dlq_validator_t *v, dlq_letter_t *letters, size_t n,
                   FILE *out, dlq_replay_summary_t *sum, char *errbuf, size_t errlen);

/* ---------------------------------------------------------------------------------------------
 * Command line (dlq_cli.c) and the commands (dlq_cmd.c)
 * ------------------------------------------------------------------------------------------- */

typedef enum { DLQ_CMD_TAIL, DLQ_CMD_STATS, DLQ_CMD_REPLAY } dlq_cmd_t;

typedef struct {
    dlq_cmd_t cmd;
    const char *brokers, *topic, *group;
    dlq_filter_t filter;
    int is_follow, is_from_beginning, is_json;
    long long limit; /* 0: no limit */
    int timeout_ms;
    /* replay */
    const char *gateway_url, *write_key_file, *cacert, *registry_url;
    char *write_key; /* owned: from --write-key or read from --write-key-file */
    int is_dry_run, is_insecure, is_all;
    double rate_per_s;
    long batch_events;
    long max_attempts;
    int64_t max_wait_ms;
    unsigned long long max_bytes; /* letters held by one replay run */
    char *kafka_sets[33];         /* --set kafka.k=v (borrowed, NULL-terminated) */
    size_t n_kafka_sets;
} dlq_opts_t;

/* Parses argv (argv[1] is the command) with now_ms as the base of relative times. Returns 0, or
 * DLQ_EXIT_USAGE after printing the problem (or the help) to err. --help prints to out and
 * returns -1 (exit 0). Dispose with dlq_opts_dispose. */
int dlq_opts_parse(dlq_opts_t *o, int argc, char **argv, int64_t now_ms, FILE *out, FILE *err);
void dlq_opts_dispose(dlq_opts_t *o);
/* Prints the usage text. */
void dlq_usage(FILE *f);

/* Runs the parsed command; returns the exit status. stop is set by SIGINT/SIGTERM. */
int dlq_cmd_run(const dlq_opts_t *o, volatile sig_atomic_t *stop, FILE *out, FILE *err);

/* Wall clock in epoch ms and monotonic microseconds. */
int64_t dlq_wall_ms(void);
int64_t dlq_mono_us(void);

#endif
