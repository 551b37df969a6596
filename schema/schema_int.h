/* Private to schema/: the compiled program that schema_encode_json walks. A schema is an array of
 * nodes (one per Avro type occurrence; named types shared, so recursive schemas are cycles of
 * indices) plus flat arrays of record fields and union branches. Built by schema_compile.c,
 * read-only afterwards. */
#ifndef SCHEMA_INT_H
#define SCHEMA_INT_H

#include <stdint.h>
#include <string.h>

#include "schema.h"

typedef enum {
    SN_NULL,
    SN_BOOLEAN,
    SN_INT,
    SN_LONG,
    SN_FLOAT,
    SN_DOUBLE,
    SN_BYTES,
    SN_STRING,
    SN_FIXED,
    SN_ENUM,
    SN_ARRAY,
    SN_MAP,
    SN_RECORD,
    SN_UNION,
} snode_type_t;

/* Logical types that change what JSON is accepted (the others encode as their base type). */
typedef enum {
    LT_NONE,
    LT_DATE,             /* int */
    LT_TIME_MILLIS,      /* int, [0, 86400000) */
    LT_TIME_MICROS,      /* long, [0, 86400000000) */
    LT_TIMESTAMP_MILLIS, /* long */
    LT_TIMESTAMP_MICROS, /* long */
    LT_UUID,             /* string, 8-4-4-4-12 hex */
    LT_DECIMAL,          /* bytes or fixed: JSON number or numeric string */
} slogical_t;

/* Name -> index lookup (record fields, enum symbols): open addressing, slots hold index + 1.
 * Owns the names (NUL-terminated copies). */
typedef struct {
    char **names;
    uint32_t *lens;
    uint16_t *slots;
    uint32_t mask, count;
} sname_tab_t;

#define SCHEMA_MAX_FIELDS 65535 /* per record / enum: slots are 16-bit */

typedef struct {
    uint8_t type;             /* snode_type_t */
    uint8_t logical;          /* slogical_t */
    uint8_t precision, scale; /* LT_DECIMAL */
    uint32_t child;           /* SN_ARRAY items / SN_MAP values: node index */
    uint32_t count;           /* fields (record), branches (union), symbols (enum), size (fixed) */
    uint32_t first;           /* first field (record) or branch (union) in schema_t's arrays */
    /* SN_UNION: the branch taken for each JSON kind, -1 if none; br_number -2 means several
     * numeric branches: the value decides (first that fits) */
    int16_t br_null, br_bool, br_string, br_object, br_array, br_number;
    sname_tab_t names; /* SN_RECORD fields, SN_ENUM symbols */
    char desc[56];     /* for "expected <desc>, got <kind>": "long", "null or string" */
} snode_t;

typedef struct {
    const char *name; /* NUL-terminated, owned by the record node's name table */
    uint32_t name_len;
    uint32_t node;
    uint8_t has_absent; /* absence is allowed: a default, or a union containing null */
    uint32_t absent_len;
    uint8_t *absent; /* owned: the Avro bytes written when the member is absent */
} sfield_t;

struct schema {
    uint32_t id;
    avro_schema_t avro;
    char *fullname;
    snode_t *nodes;
    uint32_t nnodes, root;
    sfield_t *fields;
    uint32_t nfields;
    uint32_t *branches; /* union branch node indices */
    uint32_t nbranches;
    /* binary records (schema_binary.c): the tag, and for Protobuf the compiled descriptor (the
     * Avro members above are then empty). calloc's zero makes every Avro schema AVRO. */
    uint8_t kind;         /* schema_kind_t */
    struct schema_pb *pb; /* SCHEMA_KIND_PROTOBUF only */
};

/* Frees a compiled Protobuf descriptor (schema_binary.c); accepts NULL. */
void schema_pb_destroy(struct schema_pb *pb);

/* Hash for sname_tab_t; the compiler and the encoder must agree. */
static inline uint32_t schema_name_hash(const char *k, size_t len)
{
    uint32_t h = (uint32_t)len * 0x9E3779B1u;
    if (len) {
        h ^= (uint32_t)(uint8_t)k[0] * 0x85EBCA77u;
        h ^= (uint32_t)(uint8_t)k[len - 1] * 0xC2B2AE3Du;
        h ^= (uint32_t)(uint8_t)k[len / 2] * 0x27D4EB2Fu;
    }
    return h ^ (h >> 15);
}

/* Equality of two short byte strings of the same length n, without a libc call: member names
 * are mostly under 16 bytes, where memcmp's call costs more than the compare. */
static inline int schema_name_eq(const char *a, const char *b, size_t n)
{
    uint64_t x, y, u, v;
    if (n >= 8) {
        while (n > 8) {
            memcpy(&x, a, 8);
            memcpy(&y, b, 8);
            if (x != y)
                return 0;
            a += 8;
            b += 8;
            n -= 8;
        }
        /* the last 8 bytes, overlapping what was compared */
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t p, q, r, t;
        memcpy(&p, a, 4);
        memcpy(&q, b, 4);
        memcpy(&r, a + n - 4, 4);
        memcpy(&t, b + n - 4, 4);
        return p == q && r == t;
    }
    u = v = 0;
    for (size_t i = 0; i < n; i++) {
        u = u << 8 | (uint8_t)a[i];
        v = v << 8 | (uint8_t)b[i];
    }
    return u == v;
}

/* Index of the name k[0..len) in t, or -1. */
static inline int schema_name_find(const sname_tab_t *t, const char *k, size_t len)
{
    uint32_t h = schema_name_hash(k, len) & t->mask;
    for (;;) {
        unsigned slot = t->slots[h];
        if (slot == 0)
            return -1;
        if (t->lens[slot - 1] == len && schema_name_eq(t->names[slot - 1], k, len))
            return (int)slot - 1;
        h = (h + 1) & t->mask;
    }
}

/* Avro zigzag varint of v into p (at least 10 bytes); returns the byte count. */
static inline size_t schema_put_long(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

#endif
