/* sluice-devbroker: command line, signals and lifecycle around devbroker.c. Exit status: 0 after
 * SIGTERM/SIGINT, 1 when the broker cannot start (e.g. the port is taken), 2 on a usage error. */
#include "devbroker.h"
#include "sl_log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage_text[] =
    "usage: sluice-devbroker [--listen 127.0.0.1:PORT] [--brokers N] [--topic NAME:PARTITIONS]...\n"
    "                        [--control FIFO]\n"
    "\n"
    "An in-memory Kafka stand-in for development and tests (librdkafka's mock cluster) on fixed\n"
    "loopback ports. Prints one `devbroker ready ...` line on stdout when it accepts clients;\n"
    "stops on SIGTERM or SIGINT.\n"
    "\n"
    "  --listen HOST:PORT       first broker's address, default 127.0.0.1:9092; broker i listens\n"
    "                           on PORT+i-1. Only 127.0.0.1 is supported\n"
    "  --brokers N              number of brokers, 1..16, default 1\n"
    "  --topic NAME:PARTITIONS  create a topic (repeatable); default events:12 and events.dlq:3\n"
    "  --control FIFO           create FIFO and read test commands from it, one per line:\n"
    "                           produce-errors COUNT CODE | broker-down ID | broker-up ID\n"
    "  --help                   show this help\n";

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"listen", required_argument, NULL, 'l'},
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"control", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    devbroker_config_t cfg;
    devbroker_t *db = NULL;
    const char *control = NULL;
    char errbuf[512];
    sigset_t sigs;
    int opt, rc, sig;

    sl_log_init(SL_LOG_INFO, "devbroker");
    devbroker_config_init(&cfg);
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'l':
            rc = devbroker_config_set_listen(&cfg, optarg, errbuf, sizeof(errbuf));
            break;
        case 'b':
            rc = devbroker_config_set_brokers(&cfg, optarg, errbuf, sizeof(errbuf));
            break;
        case 't':
            rc = devbroker_config_add_topic(&cfg, optarg, errbuf, sizeof(errbuf));
            break;
        case 'c':
            control = optarg;
            rc = 0;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
        if (rc != 0) {
            SL_ERROR(errbuf, NULL);
            return 2;
        }
    }
    if (optind < argc) {
        SL_ERROR("unexpected argument", "arg=\"%s\"", argv[optind]);
        return 2;
    }
    if (devbroker_config_finish(&cfg, errbuf, sizeof(errbuf)) != 0) {
        SL_ERROR(errbuf, NULL);
        return 2;
    }

    /* Block the shutdown signals before librdkafka starts its threads: they inherit the mask, so
     * the signals stay pending for sigwait() below. A closed stdout must not kill us either. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0) {
        SL_ERROR("cannot block SIGINT/SIGTERM", NULL);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    db = devbroker_create(&cfg, errbuf, sizeof(errbuf));
    if (db == NULL) {
        SL_ERROR(errbuf, NULL);
        return 1;
    }
    if (control != NULL && devbroker_control_start(db, control, errbuf, sizeof(errbuf)) != 0) {
        SL_ERROR(errbuf, NULL);
        goto Fail;
    }
    if (devbroker_print_ready(db, stdout) != 0) {
        SL_ERROR("cannot write the ready line to stdout", NULL);
        goto Fail;
    }
    if (sigwait(&sigs, &sig) != 0) {
        SL_ERROR("sigwait failed", NULL);
        goto Fail;
    }
    SL_INFO("shutting down", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    devbroker_destroy(db);
    SL_INFO("stopped", NULL);
    return 0;

Fail:
    devbroker_destroy(db);
    return 1;
}
