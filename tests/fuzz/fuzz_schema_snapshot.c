/* Fuzz target for the registry cache's snapshot reader (schema/schema_cache_disk.c): any bytes
 * as the snapshot file must load without a crash, accept only well-formed records, and the
 * compacted file it writes back must reload to exactly the same records, with no corruption. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schema_cache_int.h"
#include "sl_log.h"

#define MAX_PAYLOAD 4096

typedef struct {
    long n;
    uint64_t sum; /* of what each record says: the reload must see the same */
} tally_t;

static int on_rec(void *arg, const sc_disk_rec_t *r)
{
    tally_t *t = arg;
    if (r->len > MAX_PAYLOAD || (r->kind == SC_DISK_SCHEMA) != (r->type != NULL))
        abort();
    for (size_t i = 0; i < r->len; i++)
        t->sum += (unsigned char)r->payload[i]; /* ASan checks the payload is inside the file */
    t->sum += r->id + (uint64_t)r->version * 31 + (uint64_t)r->kind;
    t->n++;
    return (t->sum & 3) != 0; /* keep some, reject some: compaction drops the rejected */
}

static int on_rec_all(void *arg, const sc_disk_rec_t *r)
{
    on_rec(arg, r);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64];
    char path[128], err[256];
    sc_disk_t *d;
    tally_t first = {0}, again = {0}, third = {0};
    long kept_first, kept_again, kept_third;
    FILE *f;

    if (dir[0] == '\0') {
        sl_log_init(SL_LOG_ERROR + 1, "fuzz"); /* corrupt input is the normal case here */
        snprintf(dir, sizeof(dir), "/tmp/sl-fuzz-snapshot-XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    snprintf(path, sizeof(path), "%s/%s", dir, SC_DISK_FILE);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    d = sc_disk_open(dir, err, sizeof(err));
    if (d == NULL)
        abort();
    kept_first = sc_disk_load(d, 1 << 20, on_rec_all, &first, MAX_PAYLOAD);
    sc_disk_close(d);
    /* the rewritten file holds exactly the accepted records, all valid */
    d = sc_disk_open(dir, err, sizeof(err));
    kept_again = sc_disk_load(d, 1 << 20, on_rec, &again, MAX_PAYLOAD);
    sc_disk_close(d);
    if (kept_first != first.n || again.n != first.n || again.sum != first.sum)
        abort();
    /* after a selective compaction, the file reloads to the kept subset */
    d = sc_disk_open(dir, err, sizeof(err));
    kept_third = sc_disk_load(d, 1 << 20, on_rec_all, &third, MAX_PAYLOAD);
    sc_disk_close(d);
    if (kept_third != third.n || third.n != kept_again)
        abort();
    unlink(path);
    return 0;
}
