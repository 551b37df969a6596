/* sluice-gateway: composition root. Config, server, run, drain, destroy; no logic here. */
#include <stdio.h>
#include <stdlib.h>

#include "gw.h"
#include "sl_log.h"

extern char **environ;

int main(int argc, char **argv)
{
    char errbuf[1024];
    gw_config_t gc = {0};
    sl_config_t *cfg = sl_config_create();
    gw_server_t *srv = NULL;
    int undelivered, rc = 2;

    if (gw_config_register(cfg, &gc, errbuf, sizeof(errbuf)) != 0)
        goto Exit;
    switch (sl_config_load_args(cfg, "sluice-gateway", argc, argv, environ, stdout, errbuf,
                                sizeof(errbuf))) {
    case SL_CONFIG_RUN:
        break;
    case SL_CONFIG_EXIT_OK:
        rc = 0;
        goto Exit;
    case SL_CONFIG_ERROR:
        goto Exit;
    }
    sl_log_init((sl_log_level_t)gc.log_level, "gateway");
    gw_server_block_signals();
    if ((srv = gw_server_create(&gc, cfg, errbuf, sizeof(errbuf))) == NULL ||
        gw_server_start(srv) != 0)
        goto Exit;
    gw_server_wait_and_drain(srv);
    undelivered = gw_server_destroy(srv);
    srv = NULL;
    sl_config_destroy(cfg);
    return undelivered == 0 ? 0 : 1;
Exit:
    if (rc == 2)
        fprintf(stderr, "sluice-gateway: %s\n", errbuf);
    gw_server_destroy(srv);
    sl_config_destroy(cfg);
    return rc;
}
