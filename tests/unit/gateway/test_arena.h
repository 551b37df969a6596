/* Test helper: a bump arena standing in for the request pool of gw_parse_batch /
 * gw_parse_pb_batch (gw_alloc_fn). Header-only; test code. */
#ifndef TEST_ARENA_H
#define TEST_ARENA_H

#include <stdlib.h>

/* allocations one test may make (a test can lower it to bound a parser's allocations) */
#ifndef TEST_ARENA_BLOCKS
#define TEST_ARENA_BLOCKS 4096
#endif

typedef struct {
    char *blocks[TEST_ARENA_BLOCKS];
    size_t n;
} arena_t;

static inline void *arena_alloc(void *actx, size_t n)
{
    arena_t *a = actx;
    assert_true(a->n < TEST_ARENA_BLOCKS);
    a->blocks[a->n] = malloc(n ? n : 1);
    return a->blocks[a->n++];
}

static inline void arena_free(arena_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->blocks[i]);
    a->n = 0;
}

#endif
