/* Unit tests for tools/dlq/dlq_cli.c: each command's options, defaults, repeatable filters,
 * times, the replay rules (one tenant, a key, a gateway), and usage errors (exit 2, named). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dlq.h"

static const int64_t NOW = 1764064800000;
static char errtext[4096];

/* Parses a NULL-terminated argument list; the usage message (if any) lands in errtext. */
static int parse_args(dlq_opts_t *o, const char **args)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "sluice-dlq";
    for (; *args != NULL; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    FILE *out = fopen("/dev/null", "w");
    FILE *err = fmemopen(errtext, sizeof(errtext), "w");
    memset(errtext, 0, sizeof(errtext));
    int rc = dlq_opts_parse(o, argc, argv, NOW, out, err);
    fclose(out);
    fclose(err);
    return rc;
}

#define ARGS(...) ((const char *[]){__VA_ARGS__, NULL})

static void usage(const char **args, const char *needle)
{
    dlq_opts_t o;
    assert_int_equal(parse_args(&o, args), DLQ_EXIT_USAGE);
    if (strstr(errtext, needle) == NULL)
        fail_msg("usage message \"%s\" does not say \"%s\"", errtext, needle);
    dlq_opts_dispose(&o);
}

static void test_tail_defaults_and_filters(void **state)
{
    (void)state;
    dlq_opts_t o;
    assert_int_equal(parse_args(&o, ARGS("tail")), 0);
    assert_int_equal(o.cmd, DLQ_CMD_TAIL);
    assert_string_equal(o.brokers, "127.0.0.1:9092");
    assert_string_equal(o.topic, "events.dlq");
    assert_int_equal(o.filter.since_ms, INT64_MIN);
    assert_int_equal(o.is_follow, 0);
    dlq_opts_dispose(&o);

    assert_int_equal(parse_args(&o, ARGS("tail", "--brokers", "k:9", "--topic", "dl", "--code", "a",
                                         "--code", "b", "--tenant", "t", "--since", "-15m",
                                         "--until", "2025-11-25T10:00:00Z", "--follow",
                                         "--from-beginning", "--limit", "5", "--group", "ops",
                                         "--set", "kafka.security.protocol=ssl", "--timeout", "3")),
                     0);
    assert_string_equal(o.brokers, "k:9");
    assert_string_equal(o.topic, "dl");
    assert_int_equal(o.filter.n_codes, 2);
    assert_string_equal(o.filter.codes[1], "b");
    assert_int_equal(o.filter.n_tenants, 1);
    assert_int_equal(o.filter.since_ms, NOW - 15 * 60000);
    assert_int_equal(o.filter.until_ms, NOW);
    assert_true(o.is_follow && o.is_from_beginning);
    assert_int_equal(o.limit, 5);
    assert_string_equal(o.group, "ops");
    assert_int_equal(o.n_kafka_sets, 1);
    assert_string_equal(o.kafka_sets[0], "security.protocol=ssl");
    assert_null(o.kafka_sets[1]);
    assert_int_equal(o.timeout_ms, 3000);
    dlq_opts_dispose(&o);
}

static void test_stats(void **state)
{
    (void)state;
    dlq_opts_t o;
    assert_int_equal(parse_args(&o, ARGS("stats", "--json", "--code", "x")), 0);
    assert_int_equal(o.cmd, DLQ_CMD_STATS);
    assert_true(o.is_json);
    dlq_opts_dispose(&o);
}

static void test_replay(void **state)
{
    (void)state;
    dlq_opts_t o;
    char path[] = "/tmp/dlq-cli-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "sk_file_key  \nsecond line\n", 26), 26);
    close(fd);

    assert_int_equal(parse_args(&o, ARGS("replay", "--gateway", "https://gw:8443", "--write-key",
                                         "sk_1", "--tenant", "acme", "--rate", "25", "--batch",
                                         "50", "--insecure", "--all", "--attempts", "3",
                                         "--max-wait", "5", "--registry", "http://r:1")),
                     0);
    assert_int_equal(o.cmd, DLQ_CMD_REPLAY);
    assert_string_equal(o.write_key, "sk_1");
    assert_true(o.rate_per_s == 25.0);
    assert_int_equal(o.batch_events, 50);
    assert_true(o.is_insecure && o.is_all);
    assert_int_equal(o.max_attempts, 3);
    assert_int_equal(o.max_wait_ms, 5000);
    assert_string_equal(o.registry_url, "http://r:1");
    dlq_opts_dispose(&o);
    assert_null(o.write_key);

    assert_int_equal(parse_args(&o, ARGS("replay", "--gateway", "https://gw", "--write-key-file",
                                         path, "--cacert", "/ca.pem")),
                     0);
    assert_string_equal(o.write_key, "sk_file_key");
    assert_int_equal(o.batch_events, 100);
    assert_int_equal(o.max_attempts, 5);
    dlq_opts_dispose(&o);

    /* a dry run needs neither a gateway nor a key */
    assert_int_equal(parse_args(&o, ARGS("replay", "--dry-run")), 0);
    assert_true(o.is_dry_run);
    assert_null(o.write_key);
    dlq_opts_dispose(&o);
    unlink(path);
}

static void test_usage_errors(void **state)
{
    (void)state;
    usage(ARGS("--bogus"), "unknown command");
    usage(ARGS("tial"), "unknown command");
    usage(ARGS("tail", "--nope"), "unknown or incomplete option");
    usage(ARGS("tail", "--code"), "unknown or incomplete option");
    usage(ARGS("tail", "extra"), "unexpected argument");
    usage(ARGS("tail", "--since", "yesterday"), "--since: bad time");
    usage(ARGS("tail", "--since", "-1h", "--until", "-2h"), "--since is after --until");
    usage(ARGS("tail", "--limit", "0"), "--limit");
    usage(ARGS("tail", "--json"), "--json is for stats");
    usage(ARGS("tail", "--set", "foo=bar"), "kafka.KEY=VALUE");
    usage(ARGS("stats", "--follow"), "--follow is for tail");
    usage(ARGS("stats", "--dry-run"), "replay options");
    usage(ARGS("replay"), "--gateway");
    usage(ARGS("replay", "--gateway", "https://g"), "--write-key");
    usage(ARGS("replay", "--gateway", "ftp://g", "--write-key", "k"), "https://");
    usage(ARGS("replay", "--dry-run", "--tenant", "a", "--tenant", "b"), "one --tenant");
    usage(ARGS("replay", "--dry-run", "--rate", "0"), "--rate");
    usage(ARGS("replay", "--dry-run", "--rate", "abc"), "--rate");
    usage(ARGS("replay", "--dry-run", "--batch", "501"), "--batch");
    usage(ARGS("replay", "--dry-run", "--cacert", "c", "--insecure"), "not both");
    usage(ARGS("replay", "--dry-run", "--write-key", "a", "--write-key-file", "f"), "not both");
    usage(ARGS("replay", "--gateway", "https://g", "--write-key-file", "/nonexistent/key"),
          "--write-key-file /nonexistent/key");
    dlq_opts_t o;
    assert_int_equal(parse_args(&o, (const char *[]){NULL}), DLQ_EXIT_USAGE);
    dlq_opts_dispose(&o);
}

static void test_help(void **state)
{
    (void)state;
    dlq_opts_t o;
    assert_int_equal(parse_args(&o, ARGS("--help")), -1);
    assert_int_equal(parse_args(&o, ARGS("tail", "--help")), -1);
    dlq_opts_dispose(&o);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dlq_usage(f);
    fclose(f);
    assert_non_null(strstr(buf, "replay"));
    assert_non_null(strstr(buf, "exit status"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_defaults_and_filters),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
