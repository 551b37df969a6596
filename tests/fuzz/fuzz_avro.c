/* libFuzzer target for the JSON -> Avro transcoder (schema/schema_avro.c), against a fixed schema
 * that uses every Avro type (schema_oracle.h). Differential: an accepted input must be JSON that
 * jansson also accepts, and avro-c must decode the output to exactly what jansson parsed; a
 * refused input must carry a per-event code, a path and a detail, and a JSON syntax code only
 * when jansson agrees the JSON is broken. Also built with replay_main.c to replay the corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "schema_oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define SCHEMA_ID 0x0badf00du

static schema_t *the_schema(void)
{
    static schema_t *s;
    char err[256];
    if (!s) {
        s = schema_compile_avro(oracle_all_types_schema, strlen(oracle_all_types_schema), SCHEMA_ID,
                                err, sizeof(err));
        if (!s) {
            fprintf(stderr, "fuzz schema: %s\n", err);
            abort();
        }
    }
    return s;
}

static json_t *jansson_parse(const uint8_t *data, size_t size, json_error_t *jerr)
{
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, jerr);
    if (!j) /* integers past long long are fine in double and decimal fields */
        j = json_loadb((const char *)data, size,
                       JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, jerr);
    return j;
}

static void check_refused(const uint8_t *data, size_t size, const schema_error_t *e)
{
    json_error_t jerr;
    json_t *j;

    CHECK(e->code != SL_ERR_OK);
    CHECK(sl_err_status(e->code) == 200 && !sl_err_is_retryable(e->code));
    CHECK(memchr(e->path, 0, sizeof(e->path)) != NULL);
    CHECK(memchr(e->detail, 0, sizeof(e->detail)) != NULL);
    CHECK(e->detail[0] != '\0');
    if (e->code == SL_ERR_BAD_JSON || e->code == SL_ERR_BAD_UTF8) {
        j = jansson_parse(data, size, &jerr);
        if (j) {
            fprintf(stderr, "refused as %s (%s) but jansson parses it\n", sl_err_code(e->code),
                    e->detail);
            abort();
        }
    }
}

static void check_accepted(const uint8_t *data, size_t size, const uint8_t *out, size_t n)
{
    const schema_t *s = the_schema();
    json_error_t jerr;
    json_t *j = jansson_parse(data, size, &jerr);
    char msg[256];
    uint8_t *exact;
    schema_error_t e;
    ssize_t r;

    if (!j) {
        /* jansson cannot hold a NUL in an object key; everything else must parse */
        if (strstr(jerr.text, "NUL byte in object key"))
            return;
        fprintf(stderr, "accepted, but jansson says: %s\n", jerr.text);
        abort();
    }
    if (oracle_check(oracle_all_types_schema, schema_avro(s), SCHEMA_ID, out, n, j, NULL, 0, msg,
                     sizeof(msg)) != 0) {
        fprintf(stderr, "oracle: %s\n", msg);
        abort();
    }
    json_decref(j);

    /* a buffer of exactly the output's size: the same bytes (or too small, because an escaped
     * string needs room for its raw text); one byte less: always too small */
    exact = malloc(n);
    CHECK(exact != NULL);
    r = schema_encode_json(s, (const char *)data, size, NULL, exact, n, &e);
    CHECK(r == (ssize_t)n || (r == -1 && e.code == SL_ERR_EVENT_TOO_LARGE));
    if (r > 0)
        CHECK(memcmp(exact, out, n) == 0);
    r = schema_encode_json(s, (const char *)data, size, NULL, exact, n - 1, &e);
    CHECK(r == -1 && e.code == SL_ERR_EVENT_TOO_LARGE);
    free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const schema_t *s = the_schema();
    /* defaults and the framing can make the output larger than the input */
    size_t cap = 4 * size + 4096;
    uint8_t *out = malloc(cap);
    schema_error_t e;
    ssize_t n;

    CHECK(out != NULL);
    n = schema_encode_json(s, (const char *)data, size, NULL, out, cap, &e);
    if (n < 0) {
        CHECK(n == -1);
        check_refused(data, size, &e);
    } else {
        CHECK(e.code == SL_ERR_OK);
        CHECK((size_t)n >= SCHEMA_FRAME_BYTES && (size_t)n <= cap);
        check_accepted(data, size, out, (size_t)n);
    }
    free(out);
    return 0;
}
