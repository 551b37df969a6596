/* libFuzzer target for the write-key extractors (gateway/gw_auth.c): gw_auth_from_header on an
 * Authorization value and gw_auth_from_query on a query string, plus the HTTP/1.1 head check of
 * gw_guard.c (the same untrusted request bytes). The first byte picks the output capacity. Checks
 * results stay within the documented ranges; the output buffer is exactly cap bytes so ASan
 * flags any overflow. Also built with replay_main.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int contains_ci(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(s + i, needle, n) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap, len;
    char *in, *out;
    int rc;

    if (size < 1)
        return 0;
    cap = 1 + data[0]; /* 1 .. 256, the gateway uses 256 */
    len = size - 1;
    if ((in = malloc(len ? len : 1)) == NULL || (out = malloc(cap)) == NULL)
        abort();
    memcpy(in, data + 1, len);

    rc = gw_auth_from_header(in, len, out, cap);
    CHECK(rc == -1 || (rc > 0 && (size_t)rc <= cap));
    if (rc > 0 && len >= 7 && strncasecmp(in, "Bearer ", 7) == 0)
        CHECK(memmem(in, len, out, (size_t)rc) != NULL); /* a Bearer key is copied verbatim */

    rc = gw_auth_from_query(in, len, out, cap);
    CHECK(rc >= -1 && (rc < 0 || (size_t)rc <= cap));
    if (rc == 0) /* absent: no parameter is named write_key */
        for (size_t i = 0; i + 10 <= len; i++)
            CHECK(!((i == 0 || in[i - 1] == '&') && memcmp(in + i, "write_key=", 10) == 0));

    rc = gw_guard_http1_head_check(in, len);
    CHECK(rc == 0 || rc == -1);
    if (rc == -1)
        CHECK(contains_ci(in, len, "content-length:"));

    free(out);
    free(in);
    return 0;
}
