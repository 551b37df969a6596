/* Stand-in for klib's khash.h, which Debian's libh2o-dev 2.2.5 does not ship although
 * <h2o/http2_internal.h> includes it. gw_guard.c only reads plain fields of h2o_http2_conn_t,
 * where the stream table is a pointer, so these declarations are enough to compile the header.
 * Nothing here is implemented: kh_get_* is declared and never defined, so any use fails to link
 * instead of misbehaving. */
#ifndef GW_COMPAT_KHASH_H
#define GW_COMPAT_KHASH_H

#include <stdint.h>

typedef unsigned int khint_t;
typedef khint_t khiter_t;

#define KHASH_MAP_INIT_INT64(name, khval_t)                                                        \
    typedef struct kh_##name##_s {                                                                 \
        khint_t n_buckets, size, n_occupied, upper_bound;                                          \
        uint32_t *flags;                                                                           \
        uint64_t *keys;                                                                            \
        khval_t *vals;                                                                             \
    } kh_##name##_t;                                                                               \
    khint_t kh_get_##name(const kh_##name##_t *h, uint64_t key);

#define khash_t(name) kh_##name##_t
#define kh_get(name, h, k) kh_get_##name(h, k)
#define kh_end(h) ((h)->n_buckets)
#define kh_val(h, x) ((h)->vals[x])

#endif
