/* The registry cache's snapshot: an append-only log of checksummed records in cache_dir, read
 * and compacted at start, appended to by the fetch threads. A torn or corrupt tail (crash in
 * the middle of an append, disk trouble, someone editing the file) ends the load at that point;
 * everything before it is used. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "schema_cache_int.h"
#include "sl_log.h"

#define MAGIC "sluice-schema-cache 1\n"
#define HEADER_MAX 96 /* longest record header line, '\n' included */

struct sc_disk {
    pthread_mutex_t mu; /* appends come from every fetch thread */
    char *dir;
    char *path;
    int fd; /* O_APPEND, or -1 when persistence failed */
};

sc_disk_t *sc_disk_open(const char *dir, char *errbuf, size_t errlen)
{
    sc_disk_t *d = NULL;
    size_t n = strlen(dir) + sizeof(SC_DISK_FILE) + 2;

    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(errbuf, errlen, "schema.cache_dir %s: %s", dir, strerror(errno));
        return NULL;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(errbuf, errlen, "schema.cache_dir %s: %s", dir, strerror(errno));
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        abort();
    pthread_mutex_init(&d->mu, NULL);
    d->fd = -1;
    d->dir = strdup(dir);
    d->path = malloc(n);
    if (d->dir == NULL || d->path == NULL)
        abort();
    snprintf(d->path, n, "%s/%s", dir, SC_DISK_FILE);
    return d;
}

void sc_disk_close(sc_disk_t *d)
{
    if (d == NULL)
        return;
    if (d->fd >= 0)
        close(d->fd);
    pthread_mutex_destroy(&d->mu);
    free(d->dir);
    free(d->path);
    free(d);
}

/* Header text without the checksum: "K id version type len". The checksum covers it and the
 * payload, so a flipped digit in a length is caught as well as a flipped payload byte. */
static int header_prefix(char *out, size_t outlen, const sc_disk_rec_t *r)
{
    return snprintf(out, outlen, "%c %" PRIu32 " %" PRId32 " %s %zu", (char)r->kind, r->id,
                    r->version, r->type != NULL ? r->type : "-", r->len);
}

static uint32_t rec_crc(const char *prefix, size_t plen, const char *payload, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)prefix, (uInt)plen);
    crc = crc32(crc, (const Bytef *)payload, (uInt)len);
    return (uint32_t)crc;
}

void sc_disk_encode(sl_buf_t *b, const sc_disk_rec_t *r)
{
    char hdr[HEADER_MAX];
    int n = header_prefix(hdr, sizeof(hdr), r);
    sl_buf_printf(b, "%s %08" PRIx32 "\n", hdr, rec_crc(hdr, (size_t)n, r->payload, r->len));
    sl_buf_append(b, r->payload, r->len);
    sl_buf_append(b, "\n", 1);
}

/* Parses one record at p (avail bytes). Returns its total size, 0 at a clean end of file, or -1
 * when it is corrupt or truncated. The header is accepted only if re-encoding the parsed values
 * gives back exactly the same bytes: no leniency about spaces, signs or leading zeros. */
static long parse_record(const char *p, size_t avail, uint64_t max_payload, sc_disk_rec_t *r,
                         char *type, size_t typelen)
{
    const char *nl = memchr(p, '\n', avail < HEADER_MAX ? avail : HEADER_MAX);
    char line[HEADER_MAX + 1], kind, tbuf[16], again[HEADER_MAX];
    unsigned long long id, len;
    long long version;
    unsigned crc;
    int n;

    if (avail == 0)
        return 0;
    if (nl == NULL)
        return -1;
    memcpy(line, p, (size_t)(nl - p));
    line[nl - p] = '\0';
    if (sscanf(line, "%c %llu %lld %15s %llu %8x", &kind, &id, &version, tbuf, &len, &crc) != 6)
        return -1;
    if ((kind != SC_DISK_SCHEMA && kind != SC_DISK_VERSION && kind != SC_DISK_LATEST) ||
        id > UINT32_MAX || version < 0 || version > INT32_MAX || len > max_payload)
        return -1;
    if ((size_t)(nl - p) + 1 + len + 1 > avail || nl[1 + len] != '\n')
        return -1;
    memset(r, 0, sizeof(*r));
    r->kind = (sc_disk_kind_t)kind;
    r->id = (uint32_t)id;
    r->version = (int32_t)version;
    r->payload = nl + 1;
    r->len = (size_t)len;
    snprintf(type, typelen, "%s", tbuf);
    r->type = kind == SC_DISK_SCHEMA ? type : NULL;
    if (kind != SC_DISK_SCHEMA && strcmp(tbuf, "-") != 0)
        return -1;
    n = header_prefix(again, sizeof(again), r);
    if (n < 0 || (size_t)n + 9 != (size_t)(nl - p) || memcmp(again, line, (size_t)n) != 0)
        return -1;
    if (rec_crc(again, (size_t)n, r->payload, r->len) != crc)
        return -1;
    snprintf(again + n, sizeof(again) - (size_t)n, " %08x", crc);
    if (strcmp(again, line) != 0)
        return -1;
    return (long)((size_t)(nl - p) + 1 + len + 1);
}

/* Reads the whole file (bounded) into *out. 1 read, 0 no file, -1 unusable (logged). */
static int read_file(const char *path, uint64_t max_bytes, char **out, size_t *outlen)
{
    struct stat st;
    char *buf;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        if (errno != ENOENT)
            SL_WARN("schema cache snapshot unreadable; starting empty", "error=\"%s\"",
                    strerror(errno));
        return errno == ENOENT ? 0 : -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max_bytes) {
        SL_WARN("schema cache snapshot too large or not a file; ignored", "max_bytes=%" PRIu64,
                max_bytes);
        close(fd);
        return -1;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL)
        abort();
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shrank under us: parse what we have, the tail check catches the rest */
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *outlen = got;
    return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Replaces the snapshot with `data` atomically: a crash leaves either the old or the new file. */
static int replace_file(sc_disk_t *d, const char *data, size_t len)
{
    size_t n = strlen(d->path) + 5;
    char *tmp = malloc(n);
    int fd = -1, dfd = -1, rc = -1;

    if (tmp == NULL)
        abort();
    snprintf(tmp, n, "%s.tmp", d->path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
        goto Fail;
    close(fd);
    fd = -1;
    if (rename(tmp, d->path) != 0)
        goto Fail;
    /* the rename itself is durable only once the directory is synced */
    dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
Fail:
    if (rc != 0)
        SL_ERROR("schema cache snapshot not written; persistence off", "error=\"%s\"",
                 strerror(errno));
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

long sc_disk_load(sc_disk_t *d, uint64_t max_bytes,
                  int (*on_rec)(void *arg, const sc_disk_rec_t *r), void *arg,
                  uint64_t max_payload_bytes)
{
    char *data = NULL, type[16];
    size_t len = 0, off;
    long accepted = 0, rejected = 0;
    sl_buf_t out;
    int have;

    /* the compacted copy is never bigger than what was read (plus the magic) */
    sl_buf_init(&out, (size_t)max_bytes + sizeof(MAGIC));
    sl_buf_append(&out, MAGIC, sizeof(MAGIC) - 1);
    have = read_file(d->path, max_bytes, &data, &len);
    if (have == 1 && (len < sizeof(MAGIC) - 1 || memcmp(data, MAGIC, sizeof(MAGIC) - 1) != 0)) {
        SL_WARN("schema cache snapshot has no valid header; ignored", "bytes=%zu", len);
        len = 0;
    }
    off = have == 1 && len > 0 ? sizeof(MAGIC) - 1 : len;
    while (have == 1 && off < len) {
        sc_disk_rec_t r;
        long n = parse_record(data + off, len - off, max_payload_bytes, &r, type, sizeof(type));
        if (n <= 0) {
            SL_WARN("schema cache snapshot corrupt or truncated; the rest is ignored",
                    "offset=%zu bytes=%zu records=%ld", off, len, accepted);
            break;
        }
        if (on_rec(arg, &r) == 1) {
            sl_buf_append(&out, data + off, (size_t)n);
            accepted++;
        } else {
            rejected++;
        }
        off += (size_t)n;
    }
    if (have == 1)
        SL_INFO("schema cache snapshot loaded", "records=%ld rejected=%ld", accepted, rejected);
    free(data);
    if (replace_file(d, out.data, out.len) != 0) {
        sl_buf_dispose(&out);
        return -1;
    }
    sl_buf_dispose(&out);
    d->fd = open(d->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (d->fd < 0) {
        SL_ERROR("schema cache snapshot not writable; persistence off", "error=\"%s\"",
                 strerror(errno));
        return -1;
    }
    return accepted;
}

int sc_disk_append(sc_disk_t *d, const sc_disk_rec_t *recs, size_t n)
{
    sl_buf_t b;
    int rc = -1;
    size_t need = 0;

    for (size_t i = 0; i < n; i++)
        need += HEADER_MAX + recs[i].len + 1;
    sl_buf_init(&b, need + 1);
    for (size_t i = 0; i < n; i++)
        sc_disk_encode(&b, &recs[i]);
    pthread_mutex_lock(&d->mu);
    /* one write per batch of records: a crash tears at most the tail, which load discards */
    if (d->fd >= 0 && !b.overflow && write_all(d->fd, b.data, b.len) == 0 && fdatasync(d->fd) == 0)
        rc = 0;
    pthread_mutex_unlock(&d->mu);
    sl_buf_dispose(&b);
    return rc;
}
