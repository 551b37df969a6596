/* slt: support library for Sluice's integration tests. Spawns the real processes (redis-server,
 * the dev Kafka broker, the gateway) in a per-test temporary directory, talks HTTP to the
 * gateway with libcurl, reads Kafka back with librdkafka and audits exactly what arrived.
 * Single-threaded use from the test's main thread unless a function says otherwise. */
#ifndef SLT_H
#define SLT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/* ---------------------------------------------------------------------------------------------
 * Test bookkeeping: checks, failures, cleanup on abort
 * ------------------------------------------------------------------------------------------- */

/* Starts a test binary: names it in every message, initialises libcurl, and arms a watchdog
 * that kills every spawned process and exits with status 2 after `watchdog_s` seconds (so an
 * orphaned redis-server never outlives a hung test). Call once, first thing in main(). */
void slt_init(const char *test_name, int watchdog_s);

/* Records a failure (file:line, the failed expression and a printf-style message). */
void slt_fail_at(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Number of failures recorded so far. */
int slt_failures(void);
/* Stops every running stack (dumping logs, keeping temp dirs) and exits 1. */
_Noreturn void slt_abort(void);
/* Prints a summary; returns the process exit status (0 when nothing failed). */
int slt_finish(void);
/* Prints an informational line ("[name] ..."). */
void slt_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Non-fatal check: records the failure and continues. */
#define SLT_CHECK(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            slt_fail_at(__FILE__, __LINE__, #cond, __VA_ARGS__);                                   \
    } while (0)
/* Fatal check: records the failure, tears everything down and exits. */
#define SLT_REQUIRE(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            slt_fail_at(__FILE__, __LINE__, #cond, __VA_ARGS__);                                   \
            slt_abort();                                                                           \
        }                                                                                          \
    } while (0)

/* ---------------------------------------------------------------------------------------------
 * Time and polling
 * ------------------------------------------------------------------------------------------- */

/* Monotonic clock, milliseconds. */
int64_t slt_now_ms(void);
/* Wall clock (CLOCK_REALTIME), epoch milliseconds: what the gateway writes in received_at. */
int64_t slt_wall_ms(void);
/* Sleeps `ms` milliseconds. Only for poll intervals inside a deadline loop, never to "wait". */
void slt_nap_ms(int ms);
/* Calls cond(arg) every few milliseconds until it returns non-zero (returns 1) or timeout_ms
 * passed (returns 0). cond is called at least once. */
int slt_poll_until(int (*cond)(void *arg), void *arg, int timeout_ms);

/* ---------------------------------------------------------------------------------------------
 * Files and sockets
 * ------------------------------------------------------------------------------------------- */

/* Creates /tmp/sluice-test-XXXXXX into buf. Returns 0 or -1. */
int slt_tempdir_create(char *buf, size_t len);
/* Removes a directory tree; accepts NULL/empty. */
void slt_tempdir_remove(const char *dir);
/* Returns a TCP port on 127.0.0.1 that was free a moment ago (bind port 0, getsockname, close),
 * or -1. Ports handed out by one process are never repeated. */
int slt_free_port(void);
/* Returns 1 once 127.0.0.1:port accepts a TCP connection, 0 after timeout_ms. */
int slt_wait_port(int port, int timeout_ms);
/* Reads a whole file into a malloc'd NUL-terminated buffer; NULL on error. */
char *slt_file_read(const char *path, size_t *len_out);
/* Writes the last tail_bytes of a file to stderr between marker lines. */
void slt_file_dump_tail(const char *label, const char *path, size_t tail_bytes);

/* ---------------------------------------------------------------------------------------------
 * Processes
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    char name[32];
    char log_path[512];
    pid_t pid;      /* 0 when not running */
    int has_exited; /* the last run was reaped; exit_status holds waitpid's status */
    int exit_status;
} slt_proc_t;

/* Spawns argv[0] (a path) with posix_spawn, stdin from /dev/null, stdout and stderr appended to
 * log_path. Returns 0 or -1 (with a message on stderr). */
int slt_proc_start(slt_proc_t *p, const char *name, const char *log_path, char *const argv[]);
/* Sends sig; returns 0, or -1 when the process is not running. */
int slt_proc_signal(slt_proc_t *p, int sig);
/* Non-blocking: returns 1 when the process is still running (reaping it when it has exited). */
int slt_proc_is_running(slt_proc_t *p);
/* Waits up to timeout_ms for the process to exit. Returns 1 (exited; p->exit_status is the raw
 * waitpid status) or 0 (still running). */
int slt_proc_wait(slt_proc_t *p, int timeout_ms);
/* SIGTERM, wait up to timeout_ms, then SIGKILL. Returns the raw wait status, or -1 when it was
 * not running. */
int slt_proc_stop(slt_proc_t *p, int timeout_ms);
/* Describes a raw wait status ("exit 0", "signal 9") into buf; returns buf. */
const char *slt_wait_status_str(int status, char *buf, size_t len);
/* Returns 1 when the process's log contains needle. */
int slt_proc_log_contains(const slt_proc_t *p, const char *needle);
/* Dumps the last tail_bytes of the process's log to stderr. */
void slt_proc_dump_log(const slt_proc_t *p, size_t tail_bytes);

/* ---------------------------------------------------------------------------------------------
 * The stack: redis-server + dev Kafka broker + gateway
 * ------------------------------------------------------------------------------------------- */

#define SLT_WRITE_KEY_A "test-key-1" /* tenant-a */
#define SLT_WRITE_KEY_B "test-key-2" /* tenant-b */
#define SLT_TENANT_A "tenant-a"
#define SLT_TENANT_B "tenant-b"

/* A sluice-registry process (functions at the end of this header). */
typedef struct {
    char dir[400]; /* data in DIR/registry-data, log in DIR/registry.log */
    int port;
    slt_proc_t proc;
} slt_registry_t;

typedef struct {
    char dir[64];
    int redis_port, kafka_port, http_port, admin_port;
    char bootstrap[64]; /* "127.0.0.1:<kafka_port>" */
    slt_proc_t redis, broker, gateway;
    char gateway_name[32]; /* log file name; "" means "gateway" */
    char **extra_sets; /* copies, with {redis_port} {kafka_port} {dir} substituted */
    size_t n_extra_sets;
    int is_registered;
    /* The stack's schema registry (data and log in dir), with the five default schemas.
     * registry.port is 0 while it has none. */
    slt_registry_t registry;
    char registry_url[64]; /* "http://127.0.0.1:<registry.port>", "" while none */
} slt_stack_t;

/* Starts redis-server, the dev broker, the schema registry (default schemas registered; it
 * becomes the registry slt_event_value_matches reads, see slt_registry_use) and the gateway (see
 * slt_gateway_start), each waited for with a deadline. The gateway gets schema.registry_url
 * (this registry) and schema.cache_dir (DIR/schema-cache) before the test's sets. extra_sets is NULL or a NULL-terminated list of
 * "key=value" passed to the gateway as --set after the defaults; "{redis_port}", "{kafka_port}" and
 * "{dir}" in them are substituted. The environment variable SLT_EXTRA_SETS="k=v,k=v" (no commas
 * inside a value) appends more sets after those (ctest variants of a test, e.g.
 * dedup.layout=buckets). Returns 0, or -1 after dumping the logs (the stack is stopped). */
int slt_stack_start(slt_stack_t *s, const char *const *extra_sets);
/* Stops the gateway (recording a failure unless it exits 0 on SIGTERM), the registry, the broker
 * and redis. Removes the temp dir unless a failure was recorded (then dumps the logs and prints
 * the kept dir's path). Accepts a half-started stack. */
void slt_stack_stop(slt_stack_t *s);
/* (Re)starts only the gateway (new ports are not picked) and waits until admin /readyz is 200
 * (20 s deadline). Returns 0 or -1 (log dumped). */
int slt_gateway_start(slt_stack_t *s);
/* Stops only the gateway (SIGTERM, timeout_ms, SIGKILL). Returns the raw wait status or -1. */
int slt_gateway_stop(slt_stack_t *s, int timeout_ms);
/* Starts another gateway (own ports, log NAME.log) on the same Redis, Kafka and schema registry
 * as s: *s2 is a copy of s whose gateway is the new one; stop it with slt_gateway_stop(s2, ...)
 * only (registry kill/restart through s, not s2). */
int slt_second_gateway_start(const slt_stack_t *s, slt_stack_t *s2, const char *name);
/* kill -9 the stack's redis-server and reap it; restart it on the same port (empty: no
 * persistence in tests). Return 0 or -1. */
int slt_redis_kill(slt_stack_t *s);
int slt_redis_restart(slt_stack_t *s);
/* kill -9 the stack's registry and reap it (the gateway then runs on its schema cache). First
 * caches every schema the registry holds (slt_schema_cache_warm), so that values written with
 * them stay checkable while it is down. Returns 0 or -1. */
int slt_stack_registry_kill(slt_stack_t *s);
/* Starts it again on the same port and data (the schemas registered survive). Returns 0 or -1
 * (log dumped). */
int slt_stack_registry_restart(slt_stack_t *s);
/* Sends one command to the dev broker's control FIFO (see tools/devbroker/README.md) and waits
 * until the broker logged it as done. Returns 0 or -1. */
int slt_broker_control(const slt_stack_t *s, const char *cmd);
/* One sample of the gateway's /metrics, by its exact name and labels
 * ("sluice_events_total{outcome=\"accepted\"}"); -1 when absent. */
long slt_gateway_metric(const slt_stack_t *s, const char *sample);
/* Polls admin /readyz until it answers `status` (and its body contains `substring`, unless
 * NULL). Returns 1, or 0 at the deadline. */
int slt_wait_readyz(const slt_stack_t *s, long status, const char *substring, int timeout_ms);
/* URL on the public TLS listener ("https://127.0.0.1:<port><path>"), into buf; returns buf. */
const char *slt_public_url(const slt_stack_t *s, const char *path, char *buf, size_t len);
/* URL on the admin listener ("http://127.0.0.1:<port><path>"), into buf; returns buf. */
const char *slt_admin_url(const slt_stack_t *s, const char *path, char *buf, size_t len);
/* Dumps the tails of all three logs to stderr. */
void slt_stack_dump_logs(const slt_stack_t *s);

/* ---------------------------------------------------------------------------------------------
 * HTTP (libcurl)
 * ------------------------------------------------------------------------------------------- */

typedef enum {
    SLT_HTTP_1_1 = 1, /* HTTP/1.1 (also over TLS) */
    SLT_HTTP_2 = 2,   /* HTTP/2 over TLS via ALPN; that h2 was negotiated is checked */
} slt_http_version_t;

typedef struct {
    const char *method; /* "GET", "POST", "PUT", "OPTIONS"...; NULL = POST if body else GET */
    const char *url;
    const char *const *headers; /* NULL or NULL-terminated "Name: value" lines */
    const void *body;           /* NULL for none */
    size_t body_len;
    slt_http_version_t version; /* 0 = HTTP/1.1 */
    long timeout_ms;            /* 0 = 30 s */
} slt_http_req_t;

typedef struct {
    long status;       /* 0 when the transfer failed (see curl_code/error) */
    int curl_code;     /* CURLcode */
    char error[600];   /* curl's message when curl_code != 0 */
    long http_version; /* negotiated: CURL_HTTP_VERSION_1_1, CURL_HTTP_VERSION_2_0, ... */
    char *body;        /* NUL-terminated, malloc'd (never NULL after a request) */
    size_t body_len;
    char *headers; /* raw response header lines of the final response, malloc'd */
    size_t headers_len;
} slt_http_resp_t;

/* Performs one request (TLS verification off: the gateway's certificate is self-signed). When
 * version is SLT_HTTP_2 and a response arrived over anything else, records a test failure.
 * Returns resp->status (0 on transport failure). Dispose resp with slt_http_resp_dispose. */
long slt_http(const slt_http_req_t *req, slt_http_resp_t *resp);
void slt_http_resp_dispose(slt_http_resp_t *resp);
/* Value of a response header (case-insensitive name), malloc'd, trimmed; NULL when absent. */
char *slt_http_resp_header(const slt_http_resp_t *resp, const char *name);
/* How many times a response header (case-insensitive name) appears. */
int slt_http_resp_header_count(const slt_http_resp_t *resp, const char *name);
/* Convenience GET: returns the status; resp filled like slt_http. */
long slt_http_get(const char *url, slt_http_version_t version, slt_http_resp_t *resp);

/* Concurrent requests, run by a background thread with curl multi: HTTP/1.1 requests each get
 * their own connection, HTTP/2 requests are multiplexed over shared connections. reqs must stay
 * valid until slt_http_many_join returns. */
typedef struct slt_http_many slt_http_many_t;
/* Starts all n requests at once. Never NULL (aborts on OOM). */
slt_http_many_t *slt_http_many_start(const slt_http_req_t *reqs, size_t n);
/* Thread-safe counters: requests finished (any outcome) / whose body was fully sent. */
size_t slt_http_many_done(slt_http_many_t *m);
size_t slt_http_many_uploaded(slt_http_many_t *m);
/* Polls until at least min_done requests are answered or at least min_uploaded bodies are fully
 * sent (SIZE_MAX: not a criterion). Returns 1, or 0 at the deadline. */
int slt_http_many_wait(slt_http_many_t *m, size_t min_done, size_t min_uploaded, int timeout_ms);
/* Waits for every request to finish, moves the responses into resps[0..n) and frees m. */
void slt_http_many_join(slt_http_many_t *m, slt_http_resp_t *resps);

/* ---------------------------------------------------------------------------------------------
 * Kafka (librdkafka)
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    char *name;
    char *value; /* NUL-terminated copy; NULL for a NULL header value */
    size_t value_len;
} slt_kafka_hdr_t;

typedef struct {
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    char *key; /* NUL-terminated copy; NULL for a NULL key */
    size_t key_len;
    char *value; /* NUL-terminated copy; NULL for a NULL value */
    size_t value_len;
    slt_kafka_hdr_t *hdrs;
    size_t n_hdrs;
} slt_kafka_rec_t;

typedef struct {
    slt_kafka_rec_t *recs;
    size_t n;
    int n_partitions;
    int is_complete; /* every partition reached its end and the quiet period passed */
} slt_kafka_recs_t;

/* Reads every record of `topic` from the beginning: a consumer with all partitions assigned
 * explicitly at OFFSET_BEGINNING, nothing committed. Stops once at least `expected` records were
 * read, every partition is at its end and no record arrived for quiet_ms; or at timeout_ms.
 * Returns 0 (out filled, possibly short of `expected`: check out->n) or -1 (no metadata).
 * Dispose with slt_kafka_recs_dispose. */
int slt_kafka_consume_all(const char *bootstrap, const char *topic, size_t expected, int quiet_ms,
                          int timeout_ms, slt_kafka_recs_t *out);
void slt_kafka_recs_dispose(slt_kafka_recs_t *recs);
/* The first header called name (NUL-terminated value), or NULL. */
const char *slt_kafka_rec_header(const slt_kafka_rec_t *rec, const char *name);

/* ---------------------------------------------------------------------------------------------
 * Batches (jansson)
 * ------------------------------------------------------------------------------------------- */

/* Writes a fresh random UUIDv4 (lowercase, 36 chars + NUL) from /dev/urandom into out[37]. */
void slt_uuid4(char out[37]);
/* Uniform random number in [0, n) from /dev/urandom. */
uint32_t slt_rand(uint32_t n);

typedef struct {
    json_t *events; /* array; the batch owns it */
    size_t next_type;
} slt_batch_t;

void slt_batch_init(slt_batch_t *b);
void slt_batch_dispose(slt_batch_t *b);
/* Appends a realistic, schema-valid event of event_type (NULL: rotate through page_view, click,
 * add_to_cart, purchase, api_request) with a fresh event_id. Returns the event object (borrowed:
 * the test may edit it, e.g. delete user_id). */
json_t *slt_batch_add(slt_batch_t *b, const char *event_type);
/* Appends n events of rotating types. */
void slt_batch_add_n(slt_batch_t *b, size_t n);
/* Appends any JSON value as an event (steals the reference). */
void slt_batch_add_value(slt_batch_t *b, json_t *value);
size_t slt_batch_len(const slt_batch_t *b);
/* The i-th event (borrowed). */
json_t *slt_batch_event(const slt_batch_t *b, size_t i);
/* The i-th event's event_id when it is an object with a string event_id, else NULL. */
const char *slt_batch_event_id(const slt_batch_t *b, size_t i);
/* Serialises {"sent_at": now, ["write_key": k,] "events": [...]} compactly; malloc'd,
 * NUL-terminated, length in *len. */
char *slt_batch_body(const slt_batch_t *b, const char *write_key, size_t *len);

/* ---------------------------------------------------------------------------------------------
 * Gateway responses (jansson)
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    long i;
    char *event_id; /* NULL when absent */
    char *status;
    char *code;   /* NULL when absent */
    char *path;   /* NULL when absent */
    char *detail; /* NULL when absent */
} slt_outcome_t;

typedef struct {
    long accepted, duplicate, invalid, retry;
    slt_outcome_t *events;
    size_t n_events;
} slt_batch_resp_t;

/* Parses a 200 body of POST /v1/batch strictly (the four counters are integers, events an
 * array of objects each with integer i and string status). Returns 0, or -1 with errbuf set. */
int slt_batch_resp_parse(const char *body, size_t len, slt_batch_resp_t *out, char *errbuf,
                         size_t errlen);
void slt_batch_resp_dispose(slt_batch_resp_t *r);
/* The outcome listed for index i, or NULL. */
const slt_outcome_t *slt_batch_resp_find(const slt_batch_resp_t *r, long i);

/* Parses {"error": {"code": "...", "detail": "..."}}. Returns 0 with malloc'd code and detail,
 * or -1 with errbuf set. */
int slt_error_body_parse(const char *body, size_t len, char **code, char **detail, char *errbuf,
                         size_t errlen);
/* Checks a whole-request error answer: status, Content-Type application/json, body
 * {"error":{"code": code, "detail": non-empty}}. Records failures tagged with `what`; returns 1
 * when everything matched. */
int slt_check_error(const char *what, const slt_http_resp_t *resp, long status, const char *code);

/* ---------------------------------------------------------------------------------------------
 * Posting batches
 * ------------------------------------------------------------------------------------------- */

typedef enum {
    SLT_AUTH_BEARER, /* Authorization: Bearer KEY */
    SLT_AUTH_BASIC,  /* Authorization: Basic base64(KEY:) */
    SLT_AUTH_BODY,   /* body field "write_key" */
    SLT_AUTH_QUERY,  /* ?write_key=KEY */
    SLT_AUTH_NONE,   /* no key at all */
} slt_auth_t;

/* A prepared POST /v1/batch: owns its URL, headers and body; req points into it, so the struct
 * must not move between slt_post_prepare and slt_post_dispose. */
typedef struct {
    char url[200];
    char auth_header[256];
    const char *headers[4];
    char *body;
    size_t body_len;
    slt_http_req_t req;
} slt_post_t;

/* Serialises b (with write_key in the body for SLT_AUTH_BODY), sets Content-Type:
 * application/json and the authentication form. */
void slt_post_prepare(slt_post_t *p, const slt_stack_t *s, const slt_batch_t *b, const char *key,
                      slt_auth_t auth, slt_http_version_t version);
void slt_post_dispose(slt_post_t *p);
/* prepare + slt_http + dispose. Returns the status. */
long slt_post_batch(const slt_stack_t *s, const slt_batch_t *b, const char *key, slt_auth_t auth,
                    slt_http_version_t version, slt_http_resp_t *resp);
/* Standard base64 of data into a malloc'd NUL-terminated string. */
char *slt_base64(const void *data, size_t len);
/* Checks a 200 answer where every one of n events was accepted: Content-Type application/json,
 * {"accepted": n, "duplicate": 0, "invalid": 0, "retry": 0, "events": []}. Records failures
 * tagged with what; returns 1 when everything matched. */
int slt_check_all_accepted(const char *what, const slt_http_resp_t *resp, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Audit: what must (not) be in Kafka
 * ------------------------------------------------------------------------------------------- */

/* Checks one record's value against the event that was sent (the one place that knows the value
 * format). A Confluent-framed value (0x00, 4-byte big-endian schema id, Avro binary) is decoded
 * with avro-c against the writer schema, fetched by id from the registry in use
 * (slt_registry_use; cached for the process), and must be consumed exactly; it matches when
 * every record field equals the member sent under the gateway's JSON mapping (schema/README.md:
 * ["null",T] is null or the T value, enums are symbols, bytes/fixed base64, int/long exact
 * integers, float/double compared numerically so 87 sent matches 87.0), a member absent from the
 * event equals the field's default (or null), and the event has no member the record lacks
 * except the top-level schema_version the gateway skips. Any other value (dead letters keep the
 * event's bytes) must be JSON equal to the event. Returns 1, or 0 with the reason in why: a path
 * and what differs, never the values. Main thread only (the schema cache is not locked). */
int slt_event_value_matches(const slt_kafka_rec_t *rec, const json_t *sent, char *why,
                            size_t why_len);
/* The record's value as plain JSON (new reference): the decoded Avro record by the same mapping
 * (every field present, unions as null or the value, bytes/fixed standard base64 with padding),
 * *schema_id set (when not NULL) to its id; or a value that is not framed parsed as JSON,
 * *schema_id = -1. NULL with the reason in why. Main thread only. */
json_t *slt_event_value_decode(const slt_kafka_rec_t *rec, int32_t *schema_id, char *why,
                               size_t why_len);

typedef struct {
    json_t *expected;  /* event_id -> {"event": sent event, "tenant": "...", "seen": n} */
    json_t *forbidden; /* event_id -> reason: must not appear */
    json_t *maybe;     /* event_id -> {"event", "tenant", "seen"}: may appear, at most once */
} slt_ledger_t;

void slt_ledger_init(slt_ledger_t *l);
void slt_ledger_dispose(slt_ledger_t *l);
/* The event (an object with a string event_id) must appear exactly once, from tenant. */
void slt_ledger_expect(slt_ledger_t *l, const json_t *event, const char *tenant);
/* The event_id must not appear. */
void slt_ledger_forbid(slt_ledger_t *l, const char *event_id, const char *reason);
/* The event may appear (at most once, from tenant). */
void slt_ledger_maybe(slt_ledger_t *l, const json_t *event, const char *tenant);
/* Expected at least once; more copies are allowed only when every copy but one carries the Kafka
 * header dedup=degraded (fail-open dedup writes what it could not check, and marks it). */
void slt_ledger_expect_degraded_copies(slt_ledger_t *l, const json_t *event, const char *tenant);
size_t slt_ledger_n_expected(const slt_ledger_t *l);
/* Verifies records of topic `events` against the ledger: every record has an event_id header
 * naming an expected or maybe event (never a forbidden or unknown one), appears at most once
 * (exactly once for expected), key == user_id, tenant header matches, received_at is decimal
 * epoch ms within [t0_ms, t1_ms] (a small slack for coarse clocks), and the value matches
 * (slt_event_value_matches). Records failures; returns the number of problems found. The maybe
 * events seen are counted into *maybe_seen when not NULL. */
size_t slt_ledger_verify(slt_ledger_t *l, const slt_kafka_recs_t *recs, int64_t t0_ms,
                         int64_t t1_ms, size_t *maybe_seen);

/* ---------------------------------------------------------------------------------------------
 * The schema registry (sluice-registry)
 * ------------------------------------------------------------------------------------------- */

/* Starts sluice-registry (SLT_REGISTRY_BIN overrides the built one) on 127.0.0.1:port (0: a free
 * port) and waits until GET /subjects answers 200 (15 s deadline). Returns 0, or -1 after
 * dumping its log. */
int slt_registry_start(slt_registry_t *r, const char *dir, int port);
/* SIGTERM, timeout_ms, then SIGKILL. Returns the raw wait status, or -1 when not running. */
int slt_registry_stop(slt_registry_t *r, int timeout_ms);
/* Stops it (recording a failure unless it exits 0 on SIGTERM) and starts it again on the same
 * port and data: what survives a restart. Returns 0 or -1. */
int slt_registry_restart(slt_registry_t *r);
/* "http://127.0.0.1:<port><path>" into buf; returns buf. */
const char *slt_registry_url(const slt_registry_t *r, const char *path, char *buf, size_t len);
/* Makes r the registry that slt_event_value_matches / slt_event_value_decode fetch writer
 * schemas from (process-wide: "the current registry"; only its port is kept). slt_stack_start
 * calls it with the stack's registry, slt_stack_stop clears it; NULL clears. */
void slt_registry_use(const slt_registry_t *r);
/* The current registry's base URL ("http://127.0.0.1:<port>"), "" when none. */
const char *slt_registry_in_use(void);
/* Fetches every schema version of every subject of the current registry into the schema cache.
 * Returns how many subject versions now have their schema cached, or -1 when there is no
 * current registry or it did not answer GET /subjects. */
int slt_schema_cache_warm(void);
/* Forgets every cached schema (slt_finish and slt_abort call it). */
void slt_schema_cache_clear(void);
/* Registers the five default schemas (schema/defaults/<type>.avsc) under subjects page_view,
 * click, add_to_cart, purchase and api_request, as make run does. Returns the number registered
 * (5), or -1 with a failure recorded. */
int slt_registry_register_defaults(const slt_registry_t *r);

#endif
