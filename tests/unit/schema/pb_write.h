/* Test helper: writes protobuf wire format by hand (tags, varints, fixed values, length-delimited
 * fields), for payloads no encoder would produce (wrong wire types, truncations, groups) and for
 * descriptors built field by field. Header-only; test code. */
#ifndef PB_WRITE_H
#define PB_WRITE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PBW_CAP 65536

typedef struct {
    uint8_t b[PBW_CAP];
    size_t n;
} pbw_t;

__attribute__((unused)) static void pbw_raw(pbw_t *w, const void *p, size_t n)
{
    if (w->n + n > PBW_CAP)
        abort(); /* a test bug, not an input */
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

__attribute__((unused)) static void pbw_varint(pbw_t *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    pbw_raw(w, b, n);
}

__attribute__((unused)) static void pbw_zigzag(pbw_t *w, int64_t v)
{
    pbw_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

__attribute__((unused)) static void pbw_tag(pbw_t *w, uint32_t num, int wt)
{
    pbw_varint(w, (uint64_t)num << 3 | (uint64_t)wt);
}

__attribute__((unused)) static void pbw_uint(pbw_t *w, uint32_t num, uint64_t v)
{
    pbw_tag(w, num, 0);
    pbw_varint(w, v);
}

__attribute__((unused)) static void pbw_bytes(pbw_t *w, uint32_t num, const void *p, size_t n)
{
    pbw_tag(w, num, 2);
    pbw_varint(w, n);
    pbw_raw(w, p, n);
}

__attribute__((unused)) static void pbw_str(pbw_t *w, uint32_t num, const char *s)
{
    pbw_bytes(w, num, s, strlen(s));
}

/* Appends a whole nested writer as a length-delimited field. */
__attribute__((unused)) static void pbw_sub(pbw_t *w, uint32_t num, const pbw_t *sub)
{
    pbw_bytes(w, num, sub->b, sub->n);
}

__attribute__((unused)) static void pbw_fixed(pbw_t *w, uint32_t num, uint64_t v, int bytes)
{
    pbw_tag(w, num, bytes == 8 ? 1 : 5);
    pbw_raw(w, &v, (size_t)bytes); /* little-endian hosts */
}

#endif
