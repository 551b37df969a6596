/* The command line of sluice-dlq: parsed into a dlq_opts_t once, every value checked and every
 * problem named before anything connects. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "dlq.h"

#define MAX_WRITE_KEY_BYTES 1024

void dlq_usage(FILE *f)
{
    fputs("usage: sluice-dlq COMMAND [options]\n"
          "\n"
          "commands:\n"
          "  tail     print dead letters as JSON lines (one per letter)\n"
          "  stats    count dead letters by code, tenant and code x tenant\n"
          "  replay   re-validate dead letters and resubmit the valid ones through the gateway\n"
          "\n"
          "where and which letters (every command):\n"
          "  --brokers H:P        Kafka bootstrap servers (default 127.0.0.1:9092)\n"
          "  --topic T            dead-letter topic (default events.dlq)\n"
          "  --code C             only this dlq.code (repeatable)\n"
          "  --tenant T           only this tenant (repeatable; replay takes one)\n"
          "  --since TIME         letters at or after TIME (Kafka timestamp)\n"
          "  --until TIME         letters at or before TIME\n"
          "                       TIME: epoch ms, RFC 3339 (2026-11-25T10:00:00Z), -15m/-2h/-1d\n"
          "  --from-beginning     read from the start of every partition (the default)\n"
          "  --follow             tail only: keep reading new letters until Ctrl-C (from now,\n"
          "                       or with --from-beginning / --since from there)\n"
          "  --limit N            stop after N matching letters\n"
          "  --group G            start at group G's committed offsets and commit where the run\n"
          "                       stopped (default: no group, nothing committed)\n"
          "  --timeout S          seconds to wait for Kafka, the registry and the gateway (10)\n"
          "  --set kafka.K=V      a librdkafka setting (e.g. kafka.security.protocol=ssl)\n"
          "\n"
          "stats:\n"
          "  --json               machine output instead of the table\n"
          "\n"
          "replay:\n"
          "  --gateway URL        the gateway (https://host:8443 or its /v1/batch URL)\n"
          "  --write-key KEY | --write-key-file F   the tenant's write key (file: first line)\n"
          "  --registry URL       schema registry (default http://127.0.0.1:8081)\n"
          "  --all                every code (default: only dlq.retryable=true letters);\n"
          "                       whole-body (stage=parse) letters are never replayed\n"
          "  --dry-run            validate and print what would be resubmitted; send nothing\n"
          "  --rate N             at most N events/s (default unlimited)\n"
          "  --batch N            events per request (default 100, at most 500)\n"
          "  --attempts N         tries per batch on 429/503/retry/transport errors (default 5)\n"
          "  --max-wait S         longest Retry-After honoured, seconds (default 60)\n"
          "  --max-mib N          letters held in memory by one run (default 256)\n"
          "  --cacert F | --insecure   TLS trust for the gateway\n"
          "\n"
          "exit status: 0 ok, 1 some replays failed (or Kafka/registry errors), 2 usage\n",
          f);
}

enum {
    OPT_BROKERS = 256,
    OPT_TOPIC,
    OPT_CODE,
    OPT_TENANT,
    OPT_SINCE,
    OPT_UNTIL,
    OPT_FROM_BEGINNING,
    OPT_FOLLOW,
    OPT_LIMIT,
    OPT_GROUP,
    OPT_TIMEOUT,
    OPT_SET,
    OPT_JSON,
    OPT_GATEWAY,
    OPT_WRITE_KEY,
    OPT_WRITE_KEY_FILE,
    OPT_REGISTRY,
    OPT_ALL,
    OPT_DRY_RUN,
    OPT_RATE,
    OPT_BATCH,
    OPT_ATTEMPTS,
    OPT_MAX_WAIT,
    OPT_MAX_MIB,
    OPT_CACERT,
    OPT_INSECURE,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"brokers", required_argument, NULL, OPT_BROKERS},
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"code", required_argument, NULL, OPT_CODE},
    {"tenant", required_argument, NULL, OPT_TENANT},
    {"since", required_argument, NULL, OPT_SINCE},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"from-beginning", no_argument, NULL, OPT_FROM_BEGINNING},
    {"follow", no_argument, NULL, OPT_FOLLOW},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"group", required_argument, NULL, OPT_GROUP},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"set", required_argument, NULL, OPT_SET},
    {"json", no_argument, NULL, OPT_JSON},
    {"gateway", required_argument, NULL, OPT_GATEWAY},
    {"write-key", required_argument, NULL, OPT_WRITE_KEY},
    {"write-key-file", required_argument, NULL, OPT_WRITE_KEY_FILE},
    {"registry", required_argument, NULL, OPT_REGISTRY},
    {"all", no_argument, NULL, OPT_ALL},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"rate", required_argument, NULL, OPT_RATE},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"attempts", required_argument, NULL, OPT_ATTEMPTS},
    {"max-wait", required_argument, NULL, OPT_MAX_WAIT},
    {"max-mib", required_argument, NULL, OPT_MAX_MIB},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* A whole decimal number in [lo, hi]. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* The first line of a file, trailing whitespace dropped, at most MAX_WRITE_KEY_BYTES. */
static char *read_key_file(const char *path, char *errbuf, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char buf[MAX_WRITE_KEY_BYTES + 2];
    if (f == NULL) {
        snprintf(errbuf, errlen, "--write-key-file %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    if (n == 0 || n > MAX_WRITE_KEY_BYTES) {
        snprintf(errbuf, errlen,
                 "--write-key-file %s: expected a key of 1..%d bytes on the first line", path,
                 MAX_WRITE_KEY_BYTES);
        return NULL;
    }
    char *key = strdup(buf);
    memset(buf, 0, sizeof(buf));
    return key;
}

static int usage_error(FILE *err, const char *msg)
{
    fprintf(err, "sluice-dlq: %s (see sluice-dlq --help)\n", msg);
    return DLQ_EXIT_USAGE;
}

int dlq_opts_parse(dlq_opts_t *o, int argc, char **argv, int64_t now_ms, FILE *out, FILE *err)
{
    char msg[300];
    long v;
    const char *key_arg = NULL;
    memset(o, 0, sizeof(*o));
    dlq_filter_init(&o->filter);
    o->brokers = "127.0.0.1:9092";
    o->topic = "events.dlq";
    o->timeout_ms = 10000;
    o->registry_url = "http://127.0.0.1:8081";
    o->batch_events = 100;
    o->max_attempts = 5;
    o->max_wait_ms = 60000;
    o->max_bytes = DLQ_DEFAULT_REPLAY_BYTES;

    if (argc < 2)
        return usage_error(err, "a command is required: tail, stats or replay");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        dlq_usage(out);
        return -1;
    }
    if (strcmp(argv[1], "tail") == 0)
        o->cmd = DLQ_CMD_TAIL;
    else if (strcmp(argv[1], "stats") == 0)
        o->cmd = DLQ_CMD_STATS;
    else if (strcmp(argv[1], "replay") == 0)
        o->cmd = DLQ_CMD_REPLAY;
    else {
        snprintf(msg, sizeof(msg), "unknown command \"%.40s\": expected tail, stats or replay",
                 argv[1]);
        return usage_error(err, msg);
    }

    /* getopt over argv[1..]: the command plays argv[0]; optind = 0 re-initialises glibc's
     * getopt so the parser can run more than once in a process (the unit tests do) */
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "h", long_opts, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case OPT_BROKERS:
            o->brokers = a;
            break;
        case OPT_TOPIC:
            o->topic = a;
            break;
        case OPT_CODE:
            if (dlq_filter_add_code(&o->filter, a) != 0)
                return usage_error(err, "too many --code values");
            break;
        case OPT_TENANT:
            if (dlq_filter_add_tenant(&o->filter, a) != 0)
                return usage_error(err, "too many --tenant values");
            break;
        case OPT_SINCE:
        case OPT_UNTIL: {
            int64_t t;
            char terr[200];
            if (dlq_time_parse(a, now_ms, &t, terr, sizeof(terr)) != 0) {
                snprintf(msg, sizeof(msg), "%s: %s", c == OPT_SINCE ? "--since" : "--until", terr);
                return usage_error(err, msg);
            }
            if (c == OPT_SINCE)
                o->filter.since_ms = t;
            else
                o->filter.until_ms = t;
            break;
        }
        case OPT_FROM_BEGINNING:
            o->is_from_beginning = 1;
            break;
        case OPT_FOLLOW:
            o->is_follow = 1;
            break;
        case OPT_LIMIT:
            if (parse_long(a, 1, 1000000000L, &v) != 0)
                return usage_error(err, "--limit must be 1..1000000000");
            o->limit = v;
            break;
        case OPT_GROUP:
            o->group = a;
            break;
        case OPT_TIMEOUT:
            if (parse_long(a, 1, 3600, &v) != 0)
                return usage_error(err, "--timeout must be 1..3600 seconds");
            o->timeout_ms = (int)v * 1000;
            break;
        case OPT_SET:
            if (strncmp(a, "kafka.", 6) != 0 || strchr(a, '=') == NULL)
                return usage_error(err, "--set takes kafka.KEY=VALUE");
            if (o->n_kafka_sets + 1 >= sizeof(o->kafka_sets) / sizeof(o->kafka_sets[0]))
                return usage_error(err, "too many --set values");
            o->kafka_sets[o->n_kafka_sets++] = (char *)a + 6;
            break;
        case OPT_JSON:
            o->is_json = 1;
            break;
        case OPT_GATEWAY:
            o->gateway_url = a;
            break;
        case OPT_WRITE_KEY:
            key_arg = a;
            break;
        case OPT_WRITE_KEY_FILE:
            o->write_key_file = a;
            break;
        case OPT_REGISTRY:
            o->registry_url = a;
            break;
        case OPT_ALL:
            o->is_all = 1;
            break;
        case OPT_DRY_RUN:
            o->is_dry_run = 1;
            break;
        case OPT_RATE: {
            char *end;
            errno = 0;
            double r = strtod(a, &end);
            if (errno != 0 || end == a || *end != '\0' || !(r >= 0.01 && r <= 1e6))
                return usage_error(err, "--rate must be 0.01..1000000 events/s");
            o->rate_per_s = r;
            break;
        }
        case OPT_BATCH:
            if (parse_long(a, 1, DLQ_MAX_BATCH_EVENTS, &v) != 0)
                return usage_error(err, "--batch must be 1..500");
            o->batch_events = v;
            break;
        case OPT_ATTEMPTS:
            if (parse_long(a, 1, 100, &v) != 0)
                return usage_error(err, "--attempts must be 1..100");
            o->max_attempts = v;
            break;
        case OPT_MAX_WAIT:
            if (parse_long(a, 1, 3600, &v) != 0)
                return usage_error(err, "--max-wait must be 1..3600 seconds");
            o->max_wait_ms = (int64_t)v * 1000;
            break;
        case OPT_MAX_MIB:
            if (parse_long(a, 1, 65536, &v) != 0)
                return usage_error(err, "--max-mib must be 1..65536");
            o->max_bytes = (unsigned long long)v << 20;
            break;
        case OPT_CACERT:
            o->cacert = a;
            break;
        case OPT_INSECURE:
            o->is_insecure = 1;
            break;
        case OPT_HELP:
        case 'h':
            dlq_usage(out);
            return -1;
        default:
            snprintf(msg, sizeof(msg), "unknown or incomplete option \"%.60s\"",
                     argv[optind] != NULL && optind <= argc - 1 ? argv[optind] : "?");
            return usage_error(err, msg);
        }
    }
    if (optind < argc - 1) {
        snprintf(msg, sizeof(msg), "unexpected argument \"%.60s\"", argv[1 + optind]);
        return usage_error(err, msg);
    }

    if (o->brokers[0] == '\0' || o->topic[0] == '\0')
        return usage_error(err, "--brokers and --topic must not be empty");
    if (o->filter.since_ms != INT64_MIN && o->filter.until_ms != INT64_MAX &&
        o->filter.since_ms > o->filter.until_ms)
        return usage_error(err, "--since is after --until");
    if (o->is_follow && o->cmd != DLQ_CMD_TAIL)
        return usage_error(err, "--follow is for tail only");
    if (o->is_json && o->cmd != DLQ_CMD_STATS)
        return usage_error(err, "--json is for stats only (tail always prints JSON)");
    int is_replay_opt = o->gateway_url != NULL || key_arg != NULL || o->write_key_file != NULL ||
                        o->is_all || o->is_dry_run || o->rate_per_s > 0 || o->cacert != NULL ||
                        o->is_insecure;
    if (o->cmd != DLQ_CMD_REPLAY && is_replay_opt)
        return usage_error(err, "--gateway, --write-key, --all, --dry-run, --rate, --cacert and "
                                "--insecure are replay options");
    if (o->cmd == DLQ_CMD_REPLAY) {
        if (o->filter.n_tenants > 1)
            return usage_error(err, "replay takes one --tenant (one write key per run)");
        if (key_arg != NULL && o->write_key_file != NULL)
            return usage_error(err, "give --write-key or --write-key-file, not both");
        if (o->cacert != NULL && o->is_insecure)
            return usage_error(err, "give --cacert or --insecure, not both");
        if (!o->is_dry_run && o->gateway_url == NULL)
            return usage_error(err, "replay needs --gateway URL (or --dry-run)");
        if (!o->is_dry_run && key_arg == NULL && o->write_key_file == NULL)
            return usage_error(err, "replay needs --write-key or --write-key-file (or --dry-run)");
        if (o->gateway_url != NULL && strncmp(o->gateway_url, "https://", 8) != 0 &&
            strncmp(o->gateway_url, "http://", 7) != 0)
            return usage_error(err, "--gateway must be an https:// (or http://) URL");
        if (key_arg != NULL) {
            if (strlen(key_arg) == 0 || strlen(key_arg) > MAX_WRITE_KEY_BYTES)
                return usage_error(err, "--write-key must be 1..1024 bytes");
            o->write_key = strdup(key_arg);
        } else if (o->write_key_file != NULL) {
            o->write_key = read_key_file(o->write_key_file, msg, sizeof(msg));
            if (o->write_key == NULL)
                return usage_error(err, msg);
        }
    }
    return 0;
}

void dlq_opts_dispose(dlq_opts_t *o)
{
    if (o->write_key != NULL) {
        memset(o->write_key, 0, strlen(o->write_key));
        free(o->write_key);
        o->write_key = NULL;
    }
}
