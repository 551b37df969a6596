/* sluice-load: composition root. Parse the command line, start the audit consumer (it must
 * read while the run goes on), run the workers, finish the audit, report. */
#include <signal.h>
#include <stdio.h>

#include "lg.h"

int main(int argc, char **argv)
{
    lg_conf_t conf;
    lg_run_t *run = NULL;
    lg_audit_t *audit = NULL;
    char err[512] = "";
    int rc;

    rc = lg_conf_parse(&conf, argc, argv, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "sluice-load: %s\n", err);
        return rc < 0 ? 2 : 0;
    }
    signal(SIGPIPE, SIG_IGN);
    if (conf.is_audit && (audit = lg_audit_start(&conf, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluice-load: audit: %s\n", err);
        return 1;
    }
    if ((run = lg_run_create(&conf, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluice-load: %s\n", err);
        lg_audit_destroy(audit);
        return 1;
    }
    lg_run_start(run);
    lg_run_wait(run);
    lg_audit_finish(audit);
    rc = lg_report(&conf, run, audit);
    lg_run_destroy(run);
    lg_audit_destroy(audit);
    return rc;
}
