/* Layout buckets (dedup.layout = buckets): fields in hashes small enough to stay listpacks (~5x
 * denser than one key per event), driven by three Lua scripts:
 *   key    sl:ddb:{<tenant>:<bucket>}:<generation>   generation = wall ms / window_ms, bucket =
 *          fmix64(FNV-1a 64(event_id)) % buckets; the hash tag keeps a bucket's generations in
 *          one slot, so a script may touch three of them. PEXPIREAT (generation + 2) * window.
 *   field  the event_id packed (bucket_field: a UUID takes 16 bytes)
 *   lease  'L' fp[8] nonce[8] <expiry ms, decimal, Redis's clock>: a field cannot expire on its
 *          own, so an expired lease is taken over by the next claim
 *   commit 'C' fp[8]
 *   claim    EVALSHA of the claim script (below): one round trip decides, as SET NX GET does
 *   commit   HSET + PEXPIREAT (the commit script when the generation changed since the claim)
 *   release  EVALSHA of the release script: HDEL only while the value is still our lease */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dedup_int.h"
#include "sl_log.h"

/* Every script starts with Redis's own clock, so lease expiry does not depend on the gateways'
 * clocks; generations do (they name the keys), hence a claim looks at the previous, current and
 * next generation: a replica whose clock runs ahead may already write into the next one.
 *
 * claim: KEYS current, previous, next generation; ARGV field, lease prefix ('L' fp nonce),
 * lease_ms, expire_at of the current generation. A committed (or unknown) value anywhere wins,
 * then a live lease; otherwise the lease is ours (nil). */
static const char claim_script[] =
    "local t = redis.call('TIME') "
    "local now = t[1] * 1000 + math.floor(t[2] / 1000) "
    "local live = false "
    "for i = 1, 3 do "
    "local v = redis.call('HGET', KEYS[i], ARGV[1]) "
    "if v then "
    "if string.sub(v, 1, 1) ~= 'L' then return v end "
    "local e = tonumber(string.sub(v, 18)) "
    "if not e or e > now then live = v end "
    "end "
    "end "
    "if live then return live end "
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. string.format('%.0f', now + ARGV[3])) "
    "if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIREAT', KEYS[1], ARGV[4]) end "
    "return false";

/* commit when the generation changed between claim and commit (otherwise a plain HSET +
 * PEXPIREAT does): KEYS the commit's generation, the claim's; ARGV field, 'C' fp, expire_at of
 * KEYS[1], lease prefix. Our lease left in the claim's generation is removed. */
static const char commit_script[] =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) "
    "if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end "
    "local v = redis.call('HGET', KEYS[2], ARGV[1]) "
    "if v and string.sub(v, 1, 17) == ARGV[4] then redis.call('HDEL', KEYS[2], ARGV[1]) end "
    "return 1";

/* release: KEYS the claim's generation; ARGV field, lease prefix. Only while it is our lease. */
static const char bucket_release_script[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1]) "
    "if v and string.sub(v, 1, 17) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end "
    "return 0";

/* SCRIPT LOAD of each script, sent in front of the first pipeline on a connection */
static const char *const script_load_argv[SCRIPT__COUNT][3] = {
    {"SCRIPT", "LOAD", claim_script},
    {"SCRIPT", "LOAD", commit_script},
    {"SCRIPT", "LOAD", bucket_release_script},
};
static const size_t script_load_lens[SCRIPT__COUNT][3] = {
    {6, 4, sizeof(claim_script) - 1},
    {6, 4, sizeof(commit_script) - 1},
    {6, 4, sizeof(bucket_release_script) - 1},
};

static void sha1_hex(const char *s, size_t len, char out[41])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;

    if (EVP_Digest(s, len, md, &md_len, EVP_sha1(), NULL) != 1 || md_len != 20)
        abort();
    for (unsigned i = 0; i < 20; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[40] = '\0';
}

void dedup_buckets_hash_scripts(dedup_t *d)
{
    for (int k = 0; k < SCRIPT__COUNT; k++)
        sha1_hex(script_load_argv[k][2], script_load_lens[k][2], d->sha[k]);
}

#define CMD_ARGS_MAX 10
#define U64_DIGITS 21 /* with the terminating NUL */

/* The commands of one pipeline, each with its own argument vector. Arguments are static strings
 * or live in the arena, sized up front so that it never moves. */
typedef struct {
    size_t n, cap;
    int *argc;
    const char **argv; /* CMD_ARGS_MAX per command */
    size_t *argvlen;
    size_t *tag; /* per command: the item it is for */
    char *arena;
    size_t used, arena_cap;
} cmds_t;

static void cmds_init(cmds_t *cs, size_t cap, size_t arena_cap)
{
    cs->n = 0;
    cs->cap = cap > 0 ? cap : 1;
    cs->argc = malloc(cs->cap * sizeof(*cs->argc));
    cs->argv = malloc(cs->cap * CMD_ARGS_MAX * sizeof(*cs->argv));
    cs->argvlen = malloc(cs->cap * CMD_ARGS_MAX * sizeof(*cs->argvlen));
    cs->tag = malloc(cs->cap * sizeof(*cs->tag));
    cs->arena = malloc(arena_cap > 0 ? arena_cap : 1);
    cs->used = 0;
    cs->arena_cap = arena_cap;
    if (cs->argc == NULL || cs->argv == NULL || cs->argvlen == NULL || cs->tag == NULL ||
        cs->arena == NULL)
        abort();
}

static void cmds_dispose(cmds_t *cs)
{
    free(cs->argc);
    free(cs->argv);
    free(cs->argvlen);
    free(cs->tag);
    free(cs->arena);
}

static void cmds_begin(cmds_t *cs, size_t tag)
{
    assert(cs->n < cs->cap);
    cs->argc[cs->n] = 0;
    cs->tag[cs->n] = tag;
    cs->n++;
}

/* Adds an argument to the last command; s must live as long as cs (static, or in the arena). */
static void cmds_arg(cmds_t *cs, const char *s, size_t len)
{
    size_t k = cs->n - 1;
    int a = cs->argc[k]++;
    assert(a < CMD_ARGS_MAX);
    cs->argv[k * CMD_ARGS_MAX + (size_t)a] = s;
    cs->argvlen[k * CMD_ARGS_MAX + (size_t)a] = len;
}

static char *cmds_space(cmds_t *cs, size_t len)
{
    char *p = cs->arena + cs->used;
    assert(cs->used + len <= cs->arena_cap);
    cs->used += len;
    return p;
}

/* v in decimal, in the arena (to be shared by several commands). */
static const char *cmds_u64(cmds_t *cs, uint64_t v, size_t *len)
{
    char *p = cmds_space(cs, U64_DIGITS);
    *len = (size_t)snprintf(p, U64_DIGITS, "%llu", (unsigned long long)v);
    return p;
}

/* Arena bytes one item's command may need: three keys, the field, a value, two numbers. */
static size_t item_arena_bytes(size_t tenant_len, size_t id_len)
{
    return 3 * (tenant_len + 12 + 2 * U64_DIGITS) + id_len + 18 + 32 + 2 * U64_DIGITS;
}

/* sl:ddb:{<tenant>:<bucket>}:<gen>, in the arena. */
static const char *cmds_key(cmds_t *cs, const char *tenant, size_t tenant_len, uint64_t bucket,
                            uint64_t gen, size_t *len)
{
    size_t cap = tenant_len + 12 + 2 * U64_DIGITS;
    char *p = cmds_space(cs, cap);
    int n = snprintf(p, cap, "sl:ddb:{%s:%llu}:%llu", tenant, (unsigned long long)bucket,
                     (unsigned long long)gen);
    assert(n > 0 && (size_t)n < cap);
    *len = (size_t)n;
    return p;
}

static void cmds_arg_key(cmds_t *cs, const char *tenant, size_t tenant_len, uint64_t bucket,
                         uint64_t gen)
{
    size_t len;
    const char *key = cmds_key(cs, tenant, tenant_len, bucket, gen, &len);
    cmds_arg(cs, key, len);
}

/* The hash field of an event_id. A UUID in canonical lowercase form packs into its 16 bytes, an
 * all-uppercase one into the same 16 bytes + 0x01; any other id keeps its bytes, followed by '~'
 * when it is 16 bytes or longer. So every id has its own field: 16 bytes is always a packed
 * lowercase UUID, 17 bytes ending in 0x01 a packed uppercase one. out has room for
 * max(len + 1, 17) bytes. Returns the field's length. */
static size_t bucket_field(char *out, const char *id, size_t len)
{
    if (len == 36) {
        int lower = 1, upper = 1;
        size_t o = 0;
        for (size_t i = 0; i < 36; i++) {
            unsigned char ch = (unsigned char)id[i], v;
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                if (ch != '-')
                    goto Raw;
                continue;
            }
            if (ch >= '0' && ch <= '9') {
                v = (unsigned char)(ch - '0');
            } else if (ch >= 'a' && ch <= 'f') {
                v = (unsigned char)(ch - 'a' + 10);
                upper = 0;
            } else if (ch >= 'A' && ch <= 'F') {
                v = (unsigned char)(ch - 'A' + 10);
                lower = 0;
            } else {
                goto Raw;
            }
            if (o % 2 == 0)
                out[o / 2] = (char)(v << 4);
            else
                out[o / 2] = (char)(out[o / 2] | v);
            o++;
        }
        if (lower) /* also an id without letters: one spelling only */
            return 16;
        if (upper) {
            out[16] = 1;
            return 17;
        }
    }
Raw:
    memcpy(out, id, len);
    if (len < 16)
        return len;
    out[len] = '~';
    return len + 1;
}

/* Stable across processes and replicas (unlike the Bloom filter's keyed hash): FNV-1a 64 of the
 * event_id, then MurmurHash3's fmix64 so that every bit counts in the modulo. */
static uint64_t bucket_of(const dedup_t *d, const char *id, size_t len)
{
    uint64_t h = dedup_fingerprint(id, len);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h % d->conf.buckets;
}

static uint64_t gen_now(const dedup_t *d)
{
    int64_t now = sl_wall_ms();
    return now > 0 ? (uint64_t)now / d->conf.window_ms : 0;
}

/* A generation's hash goes two windows after the generation started: whatever is committed in
 * it is found for at least one window (claims look at the previous generation too). */
static uint64_t gen_expire_at(const dedup_t *d, uint64_t gen)
{
    return (gen + 2) * d->conf.window_ms;
}

/* A pipeline of script calls (EVALSHA) that survives Redis forgetting its scripts: commands
 * answered NOSCRIPT are sent once more behind SCRIPT LOADs. on_reply gets each command's reply
 * (NULL: no answer, the retry failed), then on_done once (err: the first round trip failed as
 * a whole, no on_reply came), then the pipeline is freed. */
typedef struct bpl bpl_t;
struct bpl {
    dedup_thread_t *t;
    cmds_t cmds;
    size_t n_loads; /* SCRIPT LOADs in front of the pipeline in flight */
    size_t *retry;  /* commands answered NOSCRIPT */
    size_t n_retry;
    int is_retry;
    void (*on_reply)(void *arg, size_t tag, const redisReply *reply);
    void (*on_done)(void *arg, const char *err);
    void *arg;
};

static bpl_t *bpl_create(dedup_thread_t *t, size_t n_cmds, size_t arena_bytes,
                         void (*on_reply)(void *, size_t, const redisReply *),
                         void (*on_done)(void *, const char *), void *arg)
{
    bpl_t *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->retry = malloc((n_cmds > 0 ? n_cmds : 1) * sizeof(*p->retry))) == NULL)
        abort();
    p->t = t;
    cmds_init(&p->cmds, n_cmds, arena_bytes);
    p->on_reply = on_reply;
    p->on_done = on_done;
    p->arg = arg;
    return p;
}

static void bpl_end(bpl_t *p, const char *err)
{
    p->on_done(p->arg, err);
    cmds_dispose(&p->cmds);
    free(p->retry);
    free(p);
}

/* Sends commands `which[0..n)` of cs (all of them when which is NULL), behind a SCRIPT LOAD of
 * every script when with_loads. */
static int cmds_send(dedup_redis_t *redis, const cmds_t *cs, const size_t *which, size_t n,
                     int with_loads, dedup_redis_cb cb, void *arg, const char **err)
{
    size_t total = n + (with_loads ? SCRIPT__COUNT : 0), j = 0;
    int *argc = malloc(total * sizeof(*argc));
    const char *const **argv = malloc(total * sizeof(*argv));
    const size_t **argvlen = malloc(total * sizeof(*argvlen));
    int rc;

    if (argc == NULL || argv == NULL || argvlen == NULL)
        abort();
    for (size_t s = 0; with_loads && s < SCRIPT__COUNT; s++, j++) {
        argc[j] = 3;
        argv[j] = script_load_argv[s];
        argvlen[j] = script_load_lens[s];
    }
    for (size_t k = 0; k < n; k++, j++) {
        size_t c = which != NULL ? which[k] : k;
        argc[j] = cs->argc[c];
        argv[j] = cs->argv + c * CMD_ARGS_MAX;
        argvlen[j] = cs->argvlen + c * CMD_ARGS_MAX;
    }
    rc = dedup_redis_pipeline(redis, total, argc, argv, argvlen, cb, arg, err);
    free(argc);
    free(argv);
    free(argvlen);
    return rc;
}

static int is_noscript(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0;
}

static void on_bpl_replies(void *arg, const char *err, redisReply **replies, size_t n)
{
    bpl_t *p = arg;
    const char *why = NULL;

    (void)n;
    if (err != NULL) {
        p->t->scripts_conn = 0;
        if (!p->is_retry) {
            bpl_end(p, err);
            return;
        }
        for (size_t k = 0; k < p->n_retry; k++)
            p->on_reply(p->arg, p->cmds.tag[p->retry[k]], NULL);
        bpl_end(p, NULL);
        return;
    }
    for (size_t k = 0; k < p->n_loads; k++)
        if (replies[k]->type == REDIS_REPLY_ERROR)
            SL_LOG_RATELIMITED(SL_LOG_ERROR, 5000, "dedup: SCRIPT LOAD failed", "err=\"%.200s\"",
                               replies[k]->str);
    if (p->is_retry) {
        for (size_t k = 0; k < p->n_retry; k++)
            p->on_reply(p->arg, p->cmds.tag[p->retry[k]], replies[p->n_loads + k]);
        bpl_end(p, NULL);
        return;
    }
    for (size_t k = 0; k < p->cmds.n; k++) {
        const redisReply *r = replies[p->n_loads + k];
        if (is_noscript(r))
            p->retry[p->n_retry++] = k;
        else
            p->on_reply(p->arg, p->cmds.tag[k], r);
    }
    if (p->n_retry > 0) { /* SCRIPT FLUSH, or a server behind a proxy that kept our connection */
        p->is_retry = 1;
        p->n_loads = SCRIPT__COUNT;
        if (cmds_send(p->t->redis, &p->cmds, p->retry, p->n_retry, 1, on_bpl_replies, p, &why) == 0)
            return;
        for (size_t k = 0; k < p->n_retry; k++)
            p->on_reply(p->arg, p->cmds.tag[p->retry[k]], NULL);
    }
    bpl_end(p, NULL);
}

/* Sends the pipeline; the scripts go in front of the first one on each connection. */
static void bpl_send(bpl_t *p)
{
    dedup_thread_t *t = p->t;
    dedup_redis_stats_t st;
    const char *err = NULL;

    dedup_redis_stats(t->redis, &st);
    p->n_loads = t->scripts_conn != st.reconnects + 1 ? SCRIPT__COUNT : 0;
    if (cmds_send(t->redis, &p->cmds, NULL, p->cmds.n, p->n_loads != 0, on_bpl_replies, p, &err) !=
        0) {
        bpl_end(p, err);
        return;
    }
    if (p->n_loads != 0)
        t->scripts_conn = st.reconnects + 1;
}

static void on_bucket_claim_reply(void *arg, size_t tag, const redisReply *reply)
{
    dedup_claim_t *c = arg;
    c->items[tag].verdict = dedup_verdict_of(&c->items[tag], reply);
}

static void on_bucket_claim_done(void *arg, const char *err)
{
    dedup_claim_done(arg, err);
}

/* The lease prefix: 'L' fp nonce (the claim script appends the expiry). */
static char *put_lease_prefix(cmds_t *cs, const dedup_claim_t *c, const dedup_item_t *it)
{
    char *p = cmds_space(cs, LEASE_LEN);
    p[0] = 'L';
    dedup_put_u64(p + 1, it->fingerprint);
    memcpy(p + 9, c->lease_tail, 8);
    return p;
}

void dedup_buckets_claim(dedup_claim_t *c)
{
    dedup_t *d = c->t->d;
    size_t tlen = strlen(c->tenant), arena = 2 * U64_DIGITS;
    bpl_t *p;
    const char *lease_ms, *expire_at;
    size_t lease_ms_len, expire_at_len;

    c->gen = gen_now(d);
    for (size_t k = 0; k < c->n_sent; k++)
        arena += item_arena_bytes(tlen, c->items[c->sent[k]].event_id_len);
    p = bpl_create(c->t, c->n_sent, arena, on_bucket_claim_reply, on_bucket_claim_done, c);
    lease_ms = cmds_u64(&p->cmds, d->conf.lease_ms, &lease_ms_len);
    expire_at = cmds_u64(&p->cmds, gen_expire_at(d, c->gen), &expire_at_len);

    for (size_t k = 0; k < c->n_sent; k++) {
        const dedup_item_t *it = &c->items[c->sent[k]];
        uint64_t b = bucket_of(d, it->event_id, it->event_id_len);
        char *field = cmds_space(&p->cmds, it->event_id_len + 18);
        size_t field_len = bucket_field(field, it->event_id, it->event_id_len);
        char *lease = put_lease_prefix(&p->cmds, c, it);

        cmds_begin(&p->cmds, c->sent[k]);
        cmds_arg(&p->cmds, "EVALSHA", 7);
        cmds_arg(&p->cmds, d->sha[SCRIPT_CLAIM], 40);
        cmds_arg(&p->cmds, "3", 1);
        cmds_arg_key(&p->cmds, c->tenant, tlen, b, c->gen);
        cmds_arg_key(&p->cmds, c->tenant, tlen, b, c->gen > 0 ? c->gen - 1 : 0);
        cmds_arg_key(&p->cmds, c->tenant, tlen, b, c->gen + 1);
        cmds_arg(&p->cmds, field, field_len);
        cmds_arg(&p->cmds, lease, LEASE_LEN);
        cmds_arg(&p->cmds, lease_ms, lease_ms_len);
        cmds_arg(&p->cmds, expire_at, expire_at_len);
    }
    bpl_send(p);
}

static void on_bucket_finish_reply(void *arg, size_t tag, const redisReply *reply)
{
    (void)arg;
    (void)tag;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000,
                           "dedup: commit or release failed; the lease will expire instead",
                           "err=\"%.200s\"", reply != NULL ? reply->str : "no answer");
}

static void on_bucket_finish_done(void *arg, const char *err)
{
    (void)arg;
    if (err != NULL)
        SL_LOG_RATELIMITED(SL_LOG_WARN, 5000, "dedup: commit failed; leases will expire instead",
                           "err=\"%s\"", err);
}

/* Commits into the generation of now (so that the event is remembered a full window from
 * now), removing our lease when the claim wrote it into an earlier one; releases in the
 * claim's generation. */
void dedup_buckets_finish(dedup_thread_t *t, dedup_claim_t *c, const unsigned char *stored)
{
    dedup_t *d = t->d;
    uint64_t gen = gen_now(d);
    size_t tlen = strlen(c->tenant), n_cmd = 0, arena = U64_DIGITS;
    const char *expire_at;
    size_t expire_at_len;
    bpl_t *p;

    if (gen < c->gen) /* the wall clock stepped back */
        gen = c->gen;
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i].verdict == DEDUP_NEW) {
            n_cmd += 2; /* at most: HSET + PEXPIREAT */
            arena += item_arena_bytes(tlen, c->items[i].event_id_len);
        }
    if (n_cmd == 0)
        return;
    p = bpl_create(t, n_cmd, arena, on_bucket_finish_reply, on_bucket_finish_done, NULL);
    expire_at = cmds_u64(&p->cmds, gen_expire_at(d, gen), &expire_at_len);

    for (size_t i = 0; i < c->n; i++) {
        const dedup_item_t *it = &c->items[i];
        uint64_t b;
        char *field, *lease;
        size_t field_len;

        if (it->verdict != DEDUP_NEW)
            continue;
        b = bucket_of(d, it->event_id, it->event_id_len);
        field = cmds_space(&p->cmds, it->event_id_len + 18);
        field_len = bucket_field(field, it->event_id, it->event_id_len);
        lease = put_lease_prefix(&p->cmds, c, it);
        if (stored[i] && gen == c->gen) {
            /* the lease is in this generation's hash: overwrite it, no script needed (Redis
             * runs HSET + PEXPIREAT several times faster than an EVALSHA). The claim gave the
             * hash its expiry; PEXPIREAT again in case it was recreated meanwhile (a restart,
             * an eviction), or it would never expire. */
            char *val = cmds_space(&p->cmds, COMMIT_LEN);
            size_t key_len;
            const char *key = cmds_key(&p->cmds, c->tenant, tlen, b, gen, &key_len);
            val[0] = 'C';
            dedup_put_u64(val + 1, it->fingerprint);
            cmds_begin(&p->cmds, i);
            cmds_arg(&p->cmds, "HSET", 4);
            cmds_arg(&p->cmds, key, key_len);
            cmds_arg(&p->cmds, field, field_len);
            cmds_arg(&p->cmds, val, COMMIT_LEN);
            cmds_begin(&p->cmds, i);
            cmds_arg(&p->cmds, "PEXPIREAT", 9);
            cmds_arg(&p->cmds, key, key_len);
            cmds_arg(&p->cmds, expire_at, expire_at_len);
            continue;
        }
        cmds_begin(&p->cmds, i);
        cmds_arg(&p->cmds, "EVALSHA", 7);
        if (stored[i]) { /* the generation changed since the claim */
            char *val = cmds_space(&p->cmds, COMMIT_LEN);
            val[0] = 'C';
            dedup_put_u64(val + 1, it->fingerprint);
            cmds_arg(&p->cmds, d->sha[SCRIPT_COMMIT], 40);
            cmds_arg(&p->cmds, "2", 1);
            cmds_arg_key(&p->cmds, c->tenant, tlen, b, gen);
            cmds_arg_key(&p->cmds, c->tenant, tlen, b, c->gen);
            cmds_arg(&p->cmds, field, field_len);
            cmds_arg(&p->cmds, val, COMMIT_LEN);
            cmds_arg(&p->cmds, expire_at, expire_at_len);
            cmds_arg(&p->cmds, lease, LEASE_LEN);
        } else {
            cmds_arg(&p->cmds, d->sha[SCRIPT_RELEASE], 40);
            cmds_arg(&p->cmds, "1", 1);
            cmds_arg_key(&p->cmds, c->tenant, tlen, b, c->gen);
            cmds_arg(&p->cmds, field, field_len);
            cmds_arg(&p->cmds, lease, LEASE_LEN);
        }
    }
    bpl_send(p);
}
