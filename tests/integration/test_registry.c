/* The registry inside a test stack through slt: start it, register the five default schemas
 * (twice: the same ids), restart it, and check that the ids and versions survived. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "slt.h"

static long latest_id(const slt_registry_t *r, const char *subject)
{
    char path[128], url[200];
    slt_http_resp_t resp;
    json_t *obj;
    long id = -1;

    snprintf(path, sizeof(path), "/subjects/%s/versions/latest", subject);
    if (slt_http_get(slt_registry_url(r, path, url, sizeof(url)), SLT_HTTP_1_1, &resp) == 200 &&
        (obj = json_loads(resp.body, 0, NULL)) != NULL) {
        if (json_integer_value(json_object_get(obj, "version")) == 1)
            id = (long)json_integer_value(json_object_get(obj, "id"));
        json_decref(obj);
    }
    slt_http_resp_dispose(&resp);
    return id;
}

int main(void)
{
    static const char *const types[] = {"page_view", "click", "add_to_cart", "purchase",
                                        "api_request"};
    slt_registry_t r = {0};
    char dir[64], st[64];
    long ids[5];
    int status;

    slt_init("registry", 60);
    SLT_REQUIRE(slt_tempdir_create(dir, sizeof(dir)) == 0, "tempdir");
    SLT_REQUIRE(slt_registry_start(&r, dir, 0) == 0, "registry start");
    SLT_CHECK(slt_registry_register_defaults(&r) == 5, "defaults registered");
    SLT_CHECK(slt_registry_register_defaults(&r) == 5, "defaults registered again");
    for (size_t i = 0; i < 5; i++) {
        ids[i] = latest_id(&r, types[i]);
        SLT_CHECK(ids[i] == (long)i + 1, "%s: id %ld, want %zu", types[i], ids[i], i + 1);
    }
    SLT_REQUIRE(slt_registry_restart(&r) == 0, "registry restart");
    for (size_t i = 0; i < 5; i++)
        SLT_CHECK(latest_id(&r, types[i]) == ids[i], "%s: id changed across the restart", types[i]);
    SLT_CHECK(slt_registry_register_defaults(&r) == 5, "defaults after the restart");
    status = slt_registry_stop(&r, 5000);
    SLT_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "registry on SIGTERM: %s", slt_wait_status_str(status, st, sizeof(st)));
    if (slt_failures() == 0)
        slt_tempdir_remove(dir);
    else
        slt_proc_dump_log(&r.proc, 8192);
    return slt_finish();
}
