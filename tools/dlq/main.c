/* sluice-dlq: the dead-letter operator CLI (tail, stats, replay of events.dlq). Composition
 * root only: parse the command line, install the stop signals, run the command. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "dlq.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int main(int argc, char **argv)
{
    dlq_opts_t o;
    int rc = dlq_opts_parse(&o, argc, argv, dlq_wall_ms(), stdout, stderr);
    if (rc != 0) {
        dlq_opts_dispose(&o);
        return rc < 0 ? DLQ_EXIT_OK : rc;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = dlq_cmd_run(&o, &stop_requested, stdout, stderr);
    curl_global_cleanup();
    dlq_opts_dispose(&o);
    return rc;
}
