/* The command line: typed, bounded options; unknown options and out-of-range values are errors
 * that name the option. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_int.h"

static const char usage[] =
    "usage: sluice-load --url URL --key KEY:TENANT [--key ...] [options]\n"
    "\n"
    "Sends SDK-shaped analytics batches to a Sluice gateway, behaves like an SDK on every\n"
    "answer, records every event's outcome and (with --audit) checks what reached Kafka.\n"
    "Progress goes to stderr every second; a JSON summary to stdout at the end.\n"
    "\n"
    "target\n"
    "  --url URL                https://HOST:PORT/v1/batch (http:// for plaintext)\n"
    "  --key KEY:TENANT         a write key and its tenant; repeat for several tenants\n"
    "  --cacert FILE            verify the server certificate against FILE (default: no check)\n"
    "traffic\n"
    "  -c, --connections N      connections (16)\n"
    "  -m, --streams N          HTTP/2 streams in flight per connection (10)\n"
    "  --h1                     HTTP/1.1 keep-alive, one request in flight per connection\n"
    "  -t, --threads N          worker threads, each with its share of connections (1)\n"
    "  -d, --duration SECONDS   generate for this long (default 10 unless --batches)\n"
    "  -n, --batches N          generate this many batches (then stop)\n"
    "  --rate N                 open loop: N batches per second at fixed intervals; latency\n"
    "                           counts from each intended send time (default: closed loop)\n"
    "  --max-queue N            open loop: batches waiting for a connection before new ones\n"
    "                           are skipped (100000)\n"
    "  --warmup SECONDS         leave the first SECONDS out of the latency histograms (0)\n"
    "batches\n"
    "  -b, --batch-size N       events per batch (50, max 500)\n"
    "  --users N                user pool, skewed (10000)\n"
    "  --dup-pct P              percent of batches sent again later with the same bytes (0)\n"
    "  --dup-delay-ms MS        the copy goes 0..MS after the first send (500)\n"
    "  --invalid-pct P          percent of events made invalid on purpose (0)\n"
    "  --gzip                   Content-Encoding: gzip   --gzip-level N (1..9, default 1)\n"
    "SDK behaviour\n"
    "  --max-attempts N         sends per batch and per event before giving up (10)\n"
    "  --backoff-ms MS          first backoff; doubles, jittered (100)\n"
    "  --backoff-max-ms MS      backoff cap (5000); 429/503 wait at least Retry-After\n"
    "  --timeout-ms MS          per request (10000)\n"
    "  --sdk-pause              a 429/503 with Retry-After pauses the whole connection\n"
    "                           (no new batch either) until then, as SDKs that stop\n"
    "                           flushing their queue do; default: only that batch waits\n"
    "  --drain-timeout-ms MS    after generating, time to finish resends (30000)\n"
    "audit\n"
    "  --audit                  read Kafka while the run goes on and check every event\n"
    "  --kafka HOST:PORT        bootstrap server (required with --audit)\n"
    "  --topic NAME             (events)   --dlq-topic NAME (events.dlq)\n"
    "  --audit-quiet-ms MS      after the run: caught up and nothing new for MS (2000)\n"
    "  --audit-timeout-ms MS    give up waiting to catch up after MS (60000)\n"
    "  --require-dlq            also fail when invalid events are missing from the DLQ\n"
    "  --strict                 also fail on events present but never accepted, and on\n"
    "                           answers that contradict the ledger (accepted twice, ...)\n"
    "other\n"
    "  --seed N                 PRNG seed (default: from getrandom)\n"
    "  -q, --quiet              no progress line\n"
    "  -h, --help\n"
    "\n"
    "Exit status: 0; 1 when the run failed or the audit found lost or duplicated events;\n"
    "2 on a usage error.\n";

enum {
    O_URL = 256,
    O_KEY,
    O_CACERT,
    O_H1,
    O_RATE,
    O_MAX_QUEUE,
    O_USERS,
    O_DUP_PCT,
    O_DUP_DELAY,
    O_INVALID_PCT,
    O_GZIP,
    O_GZIP_LEVEL,
    O_MAX_ATTEMPTS,
    O_BACKOFF,
    O_BACKOFF_MAX,
    O_TIMEOUT,
    O_DRAIN,
    O_AUDIT,
    O_KAFKA,
    O_TOPIC,
    O_DLQ_TOPIC,
    O_QUIET_MS,
    O_AUDIT_TIMEOUT,
    O_REQUIRE_DLQ,
    O_STRICT,
    O_SEED,
    O_WARMUP,
    O_SDK_PAUSE,
};

static const struct option options[] = {
    {"url", required_argument, NULL, O_URL},
    {"key", required_argument, NULL, O_KEY},
    {"cacert", required_argument, NULL, O_CACERT},
    {"connections", required_argument, NULL, 'c'},
    {"streams", required_argument, NULL, 'm'},
    {"h1", no_argument, NULL, O_H1},
    {"threads", required_argument, NULL, 't'},
    {"duration", required_argument, NULL, 'd'},
    {"batches", required_argument, NULL, 'n'},
    {"rate", required_argument, NULL, O_RATE},
    {"max-queue", required_argument, NULL, O_MAX_QUEUE},
    {"warmup", required_argument, NULL, O_WARMUP},
    {"batch-size", required_argument, NULL, 'b'},
    {"users", required_argument, NULL, O_USERS},
    {"dup-pct", required_argument, NULL, O_DUP_PCT},
    {"dup-delay-ms", required_argument, NULL, O_DUP_DELAY},
    {"invalid-pct", required_argument, NULL, O_INVALID_PCT},
    {"gzip", no_argument, NULL, O_GZIP},
    {"gzip-level", required_argument, NULL, O_GZIP_LEVEL},
    {"max-attempts", required_argument, NULL, O_MAX_ATTEMPTS},
    {"backoff-ms", required_argument, NULL, O_BACKOFF},
    {"backoff-max-ms", required_argument, NULL, O_BACKOFF_MAX},
    {"timeout-ms", required_argument, NULL, O_TIMEOUT},
    {"drain-timeout-ms", required_argument, NULL, O_DRAIN},
    {"audit", no_argument, NULL, O_AUDIT},
    {"kafka", required_argument, NULL, O_KAFKA},
    {"topic", required_argument, NULL, O_TOPIC},
    {"dlq-topic", required_argument, NULL, O_DLQ_TOPIC},
    {"audit-quiet-ms", required_argument, NULL, O_QUIET_MS},
    {"audit-timeout-ms", required_argument, NULL, O_AUDIT_TIMEOUT},
    {"require-dlq", no_argument, NULL, O_REQUIRE_DLQ},
    {"strict", no_argument, NULL, O_STRICT},
    {"sdk-pause", no_argument, NULL, O_SDK_PAUSE},
    {"seed", required_argument, NULL, O_SEED},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *opt_name(int c)
{
    for (const struct option *o = options; o->name != NULL; o++)
        if (o->val == c)
            return o->name;
    return "?";
}

static int num_u64(int c, const char *s, uint64_t min, uint64_t max, uint64_t *out, char *errbuf,
                   size_t errlen)
{
    char *end;
    unsigned long long v;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < min || v > max) {
        snprintf(errbuf, errlen, "--%s: expected an integer in %llu..%llu, got \"%s\"", opt_name(c),
                 (unsigned long long)min, (unsigned long long)max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int num_double(int c, const char *s, double min, double max, double *out, char *errbuf,
                      size_t errlen)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max)) {
        snprintf(errbuf, errlen, "--%s: expected a number in %g..%g, got \"%s\"", opt_name(c), min,
                 max, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* scheme://host[:port][/path]; [v6]:port accepted */
static int parse_url(lg_conf_t *conf, const char *url, char *errbuf, size_t errlen)
{
    const char *p = url, *host, *host_end, *port = NULL, *path;
    size_t n;

    if (strncmp(p, "https://", 8) == 0)
        conf->is_tls = 1, p += 8;
    else if (strncmp(p, "http://", 7) == 0)
        conf->is_tls = 0, p += 7;
    else
        goto Bad;
    path = p + strcspn(p, "/?");
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(path - host));
        if (host_end == NULL)
            goto Bad;
        if (host_end + 1 < path && host_end[1] == ':')
            port = host_end + 2;
    } else {
        host = p;
        host_end = memchr(p, ':', (size_t)(path - p));
        if (host_end != NULL)
            port = host_end + 1;
        else
            host_end = path;
    }
    n = (size_t)(host_end - host);
    if (n == 0 || n >= sizeof(conf->host))
        goto Bad;
    memcpy(conf->host, host, n);
    conf->host[n] = '\0';
    if (port != NULL) {
        n = (size_t)(path - port);
        if (n == 0 || n >= sizeof(conf->port) || strspn(port, "0123456789") < n)
            goto Bad;
        memcpy(conf->port, port, n);
        conf->port[n] = '\0';
    } else {
        strcpy(conf->port, conf->is_tls ? "443" : "80");
    }
    n = (size_t)(path - p);
    if (n >= sizeof(conf->authority))
        goto Bad;
    memcpy(conf->authority, p, n);
    conf->authority[n] = '\0';
    if (*path == '\0')
        path = "/v1/batch";
    if (strlen(path) >= sizeof(conf->path))
        goto Bad;
    strcpy(conf->path, path);
    conf->url = url;
    return 0;
Bad:
    snprintf(errbuf, errlen, "--url: expected https://HOST:PORT/PATH, got \"%s\"", url);
    return -1;
}

static int parse_key(lg_conf_t *conf, char *arg, char *errbuf, size_t errlen)
{
    char *colon = strrchr(arg, ':');
    if (colon == NULL || colon == arg || colon[1] == '\0') {
        snprintf(errbuf, errlen, "--key: expected KEY:TENANT");
        return -1;
    }
    if (conf->n_tenants == LG_MAX_TENANTS) {
        snprintf(errbuf, errlen, "--key: at most %d tenants", LG_MAX_TENANTS);
        return -1;
    }
    *colon = '\0';
    conf->tenants[conf->n_tenants].key = arg;
    conf->tenants[conf->n_tenants].tenant = colon + 1;
    conf->n_tenants++;
    return 0;
}

static void defaults(lg_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->connections = 16;
    conf->streams = 10;
    conf->threads = 1;
    conf->batch_size = 50;
    conf->users = 10000;
    conf->dup_delay_ms = 500;
    conf->gzip_level = 1;
    conf->max_attempts = 10;
    conf->backoff_ms = 100;
    conf->backoff_max_ms = 5000;
    conf->timeout_ms = 10000;
    conf->drain_timeout_ms = 30000;
    conf->max_queue = 100000;
    conf->topic = "events";
    conf->dlq_topic = "events.dlq";
    conf->audit_quiet_ms = 2000;
    conf->audit_timeout_ms = 60000;
}

int lg_conf_parse(lg_conf_t *conf, int argc, char **argv, char *errbuf, size_t errlen)
{
    int c;

    defaults(conf);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:m:t:d:n:b:qh", options, NULL)) != -1) {
        int rc = 0;
        uint64_t v = 0;
/* an integer option: the field is set only when the value is valid */
#define INT_OPT(field, type, min, max)                                                             \
    do {                                                                                           \
        if ((rc = num_u64(c, optarg, (min), (max), &v, errbuf, errlen)) == 0)                      \
            conf->field = (type)v;                                                                 \
    } while (0)
#define NUM_OPT(field, min, max)                                                                   \
    rc = num_double(c, optarg, (min), (max), &conf->field, errbuf, errlen)
        switch (c) {
        case O_URL:
            rc = parse_url(conf, optarg, errbuf, errlen);
            break;
        case O_KEY:
            rc = parse_key(conf, optarg, errbuf, errlen);
            break;
        case O_CACERT:
            conf->cacert = optarg;
            break;
        case 'c':
            INT_OPT(connections, int, 1, 10000);
            break;
        case 'm':
            INT_OPT(streams, int, 1, 1000);
            break;
        case O_H1:
            conf->is_h1 = 1;
            break;
        case 't':
            INT_OPT(threads, int, 1, 64);
            break;
        case 'd':
            NUM_OPT(duration_s, 0.001, 1e7);
            break;
        case 'n':
            INT_OPT(batches, uint64_t, 1, UINT64_C(1) << 40);
            break;
        case O_RATE:
            NUM_OPT(rate_bps, 0.001, 1e7);
            break;
        case O_MAX_QUEUE:
            INT_OPT(max_queue, uint32_t, 1, 10000000);
            break;
        case O_WARMUP:
            NUM_OPT(warmup_s, 0, 1e6);
            break;
        case 'b':
            INT_OPT(batch_size, int, 1, 500);
            break;
        case O_USERS:
            INT_OPT(users, uint32_t, 1, 100000000);
            break;
        case O_DUP_PCT:
            NUM_OPT(dup_pct, 0, 100);
            break;
        case O_DUP_DELAY:
            INT_OPT(dup_delay_ms, uint32_t, 0, 3600000);
            break;
        case O_INVALID_PCT:
            NUM_OPT(invalid_pct, 0, 100);
            break;
        case O_GZIP:
            conf->is_gzip = 1;
            break;
        case O_GZIP_LEVEL:
            INT_OPT(gzip_level, int, 1, 9);
            break;
        case O_MAX_ATTEMPTS:
            INT_OPT(max_attempts, int, 1, 100);
            break;
        case O_BACKOFF:
            INT_OPT(backoff_ms, uint32_t, 1, 600000);
            break;
        case O_BACKOFF_MAX:
            INT_OPT(backoff_max_ms, uint32_t, 1, 600000);
            break;
        case O_TIMEOUT:
            INT_OPT(timeout_ms, uint32_t, 1, 3600000);
            break;
        case O_DRAIN:
            INT_OPT(drain_timeout_ms, uint32_t, 0, 3600000);
            break;
        case O_AUDIT:
            conf->is_audit = 1;
            break;
        case O_KAFKA:
            conf->kafka = optarg;
            break;
        case O_TOPIC:
            conf->topic = optarg;
            break;
        case O_DLQ_TOPIC:
            conf->dlq_topic = optarg;
            break;
        case O_QUIET_MS:
            INT_OPT(audit_quiet_ms, uint32_t, 0, 600000);
            break;
        case O_AUDIT_TIMEOUT:
            INT_OPT(audit_timeout_ms, uint32_t, 1, 3600000);
            break;
        case O_REQUIRE_DLQ:
            conf->require_dlq = 1;
            break;
        case O_STRICT:
            conf->is_strict = 1;
            break;
        case O_SDK_PAUSE:
            conf->is_sdk_pause = 1;
            break;
        case O_SEED:
            INT_OPT(seed, uint64_t, 1, UINT64_MAX);
            break;
        case 'q':
            conf->is_quiet = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        case ':':
            snprintf(errbuf, errlen, "%s needs a value", argv[optind - 1]);
            return -1;
        default:
            snprintf(errbuf, errlen, "unknown option %s (see --help)", argv[optind - 1]);
            return -1;
        }
#undef INT_OPT
#undef NUM_OPT
        if (rc != 0)
            return -1;
    }
    if (optind < argc) {
        snprintf(errbuf, errlen, "unexpected argument \"%s\" (see --help)", argv[optind]);
        return -1;
    }
    if (conf->url == NULL || conf->n_tenants == 0) {
        snprintf(errbuf, errlen, "--url and at least one --key KEY:TENANT are required");
        return -1;
    }
    if (conf->is_audit && conf->kafka == NULL) {
        snprintf(errbuf, errlen, "--audit needs --kafka HOST:PORT");
        return -1;
    }
    if (conf->threads > conf->connections) {
        snprintf(errbuf, errlen, "--threads (%d) must not exceed --connections (%d)", conf->threads,
                 conf->connections);
        return -1;
    }
    if (conf->backoff_max_ms < conf->backoff_ms)
        conf->backoff_max_ms = conf->backoff_ms;
    if (conf->is_h1)
        conf->streams = 1;
    if (conf->duration_s == 0 && conf->batches == 0)
        conf->duration_s = 10;
    if (conf->seed == 0)
        conf->seed = lg_rng_os_seed();
    return 0;
}
