/* Shared by the schema benchmarks: a clock in seconds and the default schemas of
 * schema/defaults compiled by name. Header-only, benchmark code (exits on any error). */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "schema.h"

static inline double bench_now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Compiles schema/defaults/NAME.avsc with registry id `id` (SL_SOURCE_DIR is the checkout). */
static inline schema_t *bench_load_default_schema(const char *name, uint32_t id)
{
    char path[4096], err[256], *text;
    FILE *f;
    long n;
    schema_t *s;

    snprintf(path, sizeof(path), "%s/schema/defaults/%s.avsc", SL_SOURCE_DIR, name);
    f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    text = malloc((size_t)n);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n)
        exit(1);
    fclose(f);
    s = schema_compile_avro(text, (size_t)n, id, err, sizeof(err));
    free(text);
    if (!s) {
        fprintf(stderr, "%s: %s\n", path, err);
        exit(1);
    }
    return s;
}

#endif
