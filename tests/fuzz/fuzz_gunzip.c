/* libFuzzer target for gw_body_gunzip (gateway/gw_parse.c): the first two input bytes pick the
 * scratch capacity (the decompressed-size limit), the rest is the body. Checks the result is one
 * of the three documented ones, the output stays within the cap, and a success is reproducible
 * with a buffer of exactly its size. Also built with replay_main.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap, len, out_len = 0, again_len = 0;
    char *in, *scratch, *again;
    sl_err_t err;

    if (size < 2)
        return 0;
    cap = 1 + ((size_t)data[0] << 8 | data[1]); /* 1 .. 65536 bytes */
    len = size - 2;
    if ((in = malloc(len ? len : 1)) == NULL || (scratch = malloc(cap)) == NULL)
        abort();
    memcpy(in, data + 2, len);
    err = gw_body_gunzip(in, len, scratch, cap, &out_len);
    CHECK(err == SL_ERR_OK || err == SL_ERR_DECOMPRESSED_TOO_LARGE || err == SL_ERR_MALFORMED_GZIP);
    CHECK(out_len <= cap);
    if (err == SL_ERR_OK && out_len > 0) {
        /* the same stream into a buffer of exactly its size decodes the same bytes */
        if ((again = malloc(out_len)) == NULL)
            abort();
        CHECK(gw_body_gunzip(in, len, again, out_len, &again_len) == SL_ERR_OK);
        CHECK(again_len == out_len && memcmp(again, scratch, out_len) == 0);
        free(again);
    }
    free(scratch);
    free(in);
    return 0;
}
