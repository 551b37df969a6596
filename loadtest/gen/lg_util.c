/* Small shared pieces: buffers, allocation, clocks, the PRNG, UUIDs and the event-id map. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lg_int.h"

void *lg_xmalloc(size_t n)
{
    void *p = malloc(n != 0 ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "sluice-load: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

void *lg_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "sluice-load: out of memory (%zu x %zu bytes)\n", n, size);
        abort();
    }
    return p;
}

void *lg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n != 0 ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "sluice-load: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

void lg_buf_reserve(lg_buf_t *b, size_t extra)
{
    size_t need = b->len + extra, cap = b->cap != 0 ? b->cap : 256;
    if (need <= b->cap)
        return;
    while (cap < need)
        cap *= 2;
    b->data = lg_xrealloc(b->data, cap);
    b->cap = cap;
}

void lg_buf_append(lg_buf_t *b, const void *p, size_t n)
{
    lg_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void lg_buf_dispose(lg_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void lg_buf_put_u64(lg_buf_t *b, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    lg_buf_reserve(b, (size_t)n);
    while (n > 0)
        b->data[b->len++] = tmp[--n];
}

int64_t lg_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void lg_rng_seed(lg_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t lg_rng_os_seed(void)
{
    uint64_t seed = 0;
    ssize_t n;
    do
        n = getrandom(&seed, sizeof(seed), 0);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(seed)) {
        fprintf(stderr, "sluice-load: getrandom failed\n");
        abort();
    }
    return seed;
}

void lg_uuid_v4(lg_rng_t *r, lg_id_t *id)
{
    uint64_t a = lg_rng_next(r), b = lg_rng_next(r);
    memcpy(id->b, &a, 8);
    memcpy(id->b + 8, &b, 8);
    id->b[6] = (uint8_t)((id->b[6] & 0x0f) | 0x40); /* version 4 */
    id->b[8] = (uint8_t)((id->b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void lg_uuid_format(const lg_id_t *id, char out[36])
{
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[id->b[i] >> 4];
        out[o++] = hex[id->b[i] & 15];
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int lg_uuid_parse(const char *s, size_t len, lg_id_t *id)
{
    int nib = 0;
    if (len != 36 && len != 32)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v;
        if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-')
                return -1;
            continue;
        }
        if ((v = hexval(s[i])) < 0)
            return -1;
        if (nib % 2 == 0)
            id->b[nib / 2] = (uint8_t)(v << 4);
        else
            id->b[nib / 2] |= (uint8_t)v;
        nib++;
    }
    return 0;
}

uint32_t lg_ledger_add(lg_ledger_t *l, lg_entry_t **e)
{
    uint32_t i = l->n, mask = (1u << LG_LEDGER_CHUNK_BITS) - 1;
    if (i == UINT32_MAX) {
        fprintf(stderr, "sluice-load: more than 4 billion events in one worker\n");
        abort();
    }
    if ((i & mask) == 0) {
        l->chunks = lg_xrealloc(l->chunks, (l->n_chunks + 1) * sizeof(*l->chunks));
        l->chunks[l->n_chunks++] = lg_xcalloc((size_t)mask + 1, sizeof(lg_entry_t));
    }
    l->n++;
    *e = lg_ledger_at(l, i);
    return i;
}

void lg_ledger_dispose(lg_ledger_t *l)
{
    for (size_t i = 0; i < l->n_chunks; i++)
        free(l->chunks[i]);
    free(l->chunks);
    memset(l, 0, sizeof(*l));
}

/* ---- event-id map: linear probing, grows at 70% load; ids are random, so their first
 * bytes (mixed once) make the hash ---- */

static size_t id_hash(const lg_id_t *id)
{
    uint64_t h;
    memcpy(&h, id->b, 8);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9u;
    return (size_t)(h ^ (h >> 32));
}

static int id_is_empty(const lg_id_t *id)
{
    static const lg_id_t zero;
    return memcmp(id, &zero, sizeof(zero)) == 0;
}

void lg_idmap_init(lg_idmap_t *m, size_t initial_cap)
{
    size_t cap = 1024;
    while (cap < initial_cap)
        cap *= 2;
    m->slots = lg_xcalloc(cap, sizeof(lg_entry_t));
    m->cap = cap;
    m->n = 0;
}

void lg_idmap_dispose(lg_idmap_t *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

lg_entry_t *lg_idmap_get(const lg_idmap_t *m, const lg_id_t *id)
{
    size_t mask = m->cap - 1;
    for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask) {
        lg_entry_t *e = &m->slots[i];
        if (memcmp(&e->id, id, sizeof(*id)) == 0)
            return e;
        if (id_is_empty(&e->id))
            return NULL;
    }
}

static void idmap_grow(lg_idmap_t *m)
{
    lg_idmap_t bigger;
    lg_idmap_init(&bigger, m->cap * 2);
    for (size_t i = 0; i < m->cap; i++) {
        const lg_entry_t *e = &m->slots[i];
        if (!id_is_empty(&e->id)) {
            size_t mask = bigger.cap - 1, j = id_hash(&e->id) & mask;
            while (!id_is_empty(&bigger.slots[j].id))
                j = (j + 1) & mask;
            bigger.slots[j] = *e;
        }
    }
    bigger.n = m->n;
    free(m->slots);
    *m = bigger;
}

lg_entry_t *lg_idmap_put(lg_idmap_t *m, const lg_id_t *id, int *is_new)
{
    size_t mask;
    if (id_is_empty(id))
        return NULL;
    if ((m->n + 1) * 10 > m->cap * 7)
        idmap_grow(m);
    mask = m->cap - 1;
    for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask) {
        lg_entry_t *e = &m->slots[i];
        if (memcmp(&e->id, id, sizeof(*id)) == 0) {
            *is_new = 0;
            return e;
        }
        if (id_is_empty(&e->id)) {
            memset(e, 0, sizeof(*e));
            e->id = *id;
            m->n++;
            *is_new = 1;
            return e;
        }
    }
}
