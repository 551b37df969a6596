/* sluice-registry: composition root. Config, store (log replay), server, run, destroy. */
#include <signal.h>
#include <stdio.h>

#include "registry.h"
#include "sl_log.h"

extern char **environ;

int main(int argc, char **argv)
{
    char errbuf[1024];
    reg_config_t rc = {0};
    sl_config_t *cfg = sl_config_create();
    reg_store_t *st = NULL;
    reg_server_t *srv = NULL;
    reg_store_conf_t sconf;
    sigset_t set;
    int rcode = 2;

    if (reg_config_register(cfg, &rc, errbuf, sizeof(errbuf)) != 0)
        goto Exit;
    switch (sl_config_load_args(cfg, "sluice-registry", argc, argv, environ, stdout, errbuf,
                                sizeof(errbuf))) {
    case SL_CONFIG_RUN:
        break;
    case SL_CONFIG_EXIT_OK:
        rcode = 0;
        goto Exit;
    case SL_CONFIG_ERROR:
        goto Exit;
    }
    sl_log_init((sl_log_level_t)rc.log_level, "registry");
    /* the server takes SIGTERM/SIGINT through a signalfd; SIGPIPE must not kill us */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    sconf = (reg_store_conf_t){
        .data_dir = rc.data_dir,
        .default_level = (reg_level_t)rc.compatibility,
        .max_schema_bytes = (size_t)rc.max_schema_bytes,
        .max_schemas = (size_t)rc.max_schemas,
        .max_subjects = (size_t)rc.max_subjects,
        .max_versions = (size_t)rc.max_versions,
        .protoc = rc.protoc,
        .protoc_timeout_ms = rc.protoc_timeout_ms,
    };
    if ((st = reg_store_open(&sconf, errbuf, sizeof(errbuf))) == NULL ||
        (srv = reg_server_create(&rc, st, errbuf, sizeof(errbuf))) == NULL)
        goto Exit;
    reg_server_run(srv);
    rcode = 0;
Exit:
    if (rcode == 2)
        fprintf(stderr, "sluice-registry: %s\n", errbuf);
    reg_server_destroy(srv);
    reg_store_destroy(st);
    sl_config_destroy(cfg);
    return rcode;
}
