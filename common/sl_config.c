/* Typed configuration registry: modules register field tables, and values are layered from
 * defaults, a "key = value" file, SLUICE_* environment variables and --set arguments. Startup
 * only; nothing here is thread-safe. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* strdup, getline */
#endif

#include "sl_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define SL_CFG_ENV_PREFIX "SLUICE_"
#define SL_CFG_ENV_PREFIX_LEN (sizeof(SL_CFG_ENV_PREFIX) - 1)
#define SL_CFG_ENV_FILE "SLUICE_CONFIG"
#define SL_CFG_SUGGEST_MAX_DIST 3
#define SL_CFG_SUGGEST_MAX_LEN 64 /* longer names get no "did you mean" */
#define SL_CFG_NAME_MAX 200       /* how much of an env name or key a message quotes */

#if defined(__GNUC__)
#define SL_CFG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SL_CFG_PRINTF(f, a)
#endif

typedef struct {
    char *name;
    const sl_cfg_field_t *fields; /* not copied: static tables */
    size_t n_fields;
    void *base;
} sl_cfg_section_t;

typedef struct {
    char *prefix; /* "kafka.", always ends with '.' */
    size_t prefix_len;
    char *doc;
    char **keys; /* without the prefix, in the order first set */
    char **values;
    size_t n;
} sl_cfg_passthrough_t;

struct sl_config {
    sl_cfg_section_t *sections;
    size_t n_sections;
    sl_cfg_passthrough_t *pts;
    size_t n_pts;
};

typedef struct {
    char *buf;
    size_t cap, len;
} sl_cfg_sb_t;

typedef enum {
    PARSE_OK,
    PARSE_SYNTAX,
    PARSE_OVERFLOW,
} parse_rc_t;

typedef struct {
    const char *name;
    uint64_t mult;
} sl_cfg_suffix_t;

static const sl_cfg_suffix_t size_suffixes[] = {
    {"B", 1},      {"KB", 1000},         {"MB", 1000 * 1000},         {"GB", 1000 * 1000 * 1000},
    {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024 * 1024 * 1024}, {NULL, 0},
};

static const sl_cfg_suffix_t ms_suffixes[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {NULL, 0},
};

static const char *const bool_true[] = {"true", "1", "yes", "on", NULL};
static const char *const bool_false[] = {"false", "0", "no", "off", NULL};

/* ---- small helpers ---------------------------------------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        fputs("sl_config: out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xrealloc(NULL, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

SL_CFG_PRINTF(3, 4)
static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Appends to a fixed buffer, truncating; the buffer stays NUL-terminated. */
SL_CFG_PRINTF(2, 3)
static void sb_printf(sl_cfg_sb_t *sb, const char *fmt, ...)
{
    if (sb->buf == NULL || sb->len >= sb->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb->len += (size_t)n;
}

static int clamp_len(size_t n)
{
    return n > SL_CFG_NAME_MAX ? SL_CFG_NAME_MAX : (int)n;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Locale-independent, so "I" never turns into a Turkish dotless i. */
static char ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int ascii_casecmp(const char *a, const char *b)
{
    for (; *a != '\0' && ascii_lower(*a) == ascii_lower(*b); a++, b++)
        ;
    return (unsigned char)ascii_lower(*a) - (unsigned char)ascii_lower(*b);
}

static int word_in(const char *s, const char *const *words)
{
    for (; *words != NULL; words++)
        if (ascii_casecmp(s, *words) == 0)
            return 1;
    return 0;
}

static int has_substr_nocase(const char *s, const char *needle)
{
    size_t n = strlen(needle);
    for (; *s != '\0'; s++) {
        size_t i = 0;
        while (i < n && s[i] != '\0' && ascii_lower(s[i]) == needle[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* The redaction rule of sl_config_print_effective. */
static int is_secret_key(const char *key)
{
    return has_substr_nocase(key, "key") || has_substr_nocase(key, "secret") ||
           has_substr_nocase(key, "password");
}

static char env_char(char c)
{
    return c == '.' ? '_' : ascii_upper(c);
}

/* Does `rest` (an env name after "SLUICE_") equal the env form of the first `n` chars of key? */
static int env_matches(const char *key, size_t key_len, const char *rest, size_t rest_len)
{
    if (key_len != rest_len)
        return 0;
    for (size_t i = 0; i < key_len; i++)
        if (env_char(key[i]) != rest[i])
            return 0;
    return 1;
}

/* Writes "SLUICE_" + the env form of key into buf (truncating); returns the full length. */
static size_t env_name_of(const char *key, char *buf, size_t cap)
{
    size_t len = SL_CFG_ENV_PREFIX_LEN + strlen(key);
    if (cap == 0)
        return len;
    size_t i = 0;
    for (const char *p = SL_CFG_ENV_PREFIX; *p != '\0' && i + 1 < cap; p++)
        buf[i++] = *p;
    for (const char *p = key; *p != '\0' && i + 1 < cap; p++)
        buf[i++] = env_char(*p);
    buf[i] = '\0';
    return len;
}

static void print_env_name(FILE *out, const char *key)
{
    fputs(SL_CFG_ENV_PREFIX, out);
    for (; *key != '\0'; key++)
        fputc(env_char(*key), out);
}

static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t row[SL_CFG_SUGGEST_MAX_LEN + 1];
    if (na > SL_CFG_SUGGEST_MAX_LEN || nb > SL_CFG_SUGGEST_MAX_LEN)
        return SIZE_MAX;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* The known key closest to `name` (compared as env names when is_env), or NULL if none is
 * within SL_CFG_SUGGEST_MAX_DIST edits. */
static const char *suggest_key(const sl_config_t *cfg, const char *name, size_t name_len,
                               int is_env)
{
    const char *best = NULL;
    size_t best_dist = SL_CFG_SUGGEST_MAX_DIST + 1;
    char env[SL_CFG_SUGGEST_MAX_LEN + 1];
    for (size_t s = 0; s < cfg->n_sections; s++) {
        const sl_cfg_section_t *sec = &cfg->sections[s];
        for (size_t i = 0; i < sec->n_fields; i++) {
            const char *cand = sec->fields[i].key;
            size_t cand_len = strlen(cand);
            if (is_env) {
                cand_len = env_name_of(cand, env, sizeof(env));
                if (cand_len >= sizeof(env))
                    continue;
                cand = env;
            }
            size_t d = edit_distance(name, name_len, cand, cand_len);
            if (d < best_dist) {
                best_dist = d;
                best = sec->fields[i].key;
            }
        }
    }
    return best;
}

/* ---- lookup ------------------------------------------------------------------------------ */

typedef struct {
    const sl_cfg_section_t *sec;
    const sl_cfg_field_t *f;
} field_ref_t;

static int find_field(const sl_config_t *cfg, const char *key, size_t key_len, field_ref_t *ref)
{
    for (size_t s = 0; s < cfg->n_sections; s++) {
        const sl_cfg_section_t *sec = &cfg->sections[s];
        for (size_t i = 0; i < sec->n_fields; i++) {
            const char *k = sec->fields[i].key;
            if (strlen(k) == key_len && memcmp(k, key, key_len) == 0) {
                ref->sec = sec;
                ref->f = &sec->fields[i];
                return 1;
            }
        }
    }
    return 0;
}

static void *field_ptr(const sl_cfg_section_t *sec, const sl_cfg_field_t *f)
{
    return (char *)sec->base + f->offset;
}

/* The passthrough whose prefix is the longest one `key` starts with, or NULL. */
static sl_cfg_passthrough_t *find_pt_for_key(const sl_config_t *cfg, const char *key,
                                             size_t key_len)
{
    sl_cfg_passthrough_t *best = NULL;
    for (size_t i = 0; i < cfg->n_pts; i++) {
        sl_cfg_passthrough_t *pt = &cfg->pts[i];
        if (key_len >= pt->prefix_len && memcmp(key, pt->prefix, pt->prefix_len) == 0 &&
            (best == NULL || pt->prefix_len > best->prefix_len))
            best = pt;
    }
    return best;
}

/* ---- parsing values ---------------------------------------------------------------------- */

/* Decimal digits (at least one) up to `limit`; *sp is left after the last digit. Keeps
 * scanning after an overflow so trailing junk is still reported as a syntax error. */
static parse_rc_t parse_digits(const char **sp, uint64_t limit, uint64_t *out)
{
    const char *s = *sp;
    uint64_t v = 0;
    int is_overflow = 0;
    if (!is_digit(*s))
        return PARSE_SYNTAX;
    for (; is_digit(*s); s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (limit - d) / 10)
            is_overflow = 1;
        else
            v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return is_overflow ? PARSE_OVERFLOW : PARSE_OK;
}

/* Optional '-', then digits; the result fits int64_t. */
static parse_rc_t parse_i64(const char **sp, int64_t *out)
{
    const char *s = *sp;
    int is_neg = *s == '-';
    uint64_t mag;
    if (is_neg)
        s++;
    parse_rc_t rc = parse_digits(&s, is_neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &mag);
    if (rc == PARSE_SYNTAX)
        return rc;
    *sp = s;
    if (rc == PARSE_OK)
        *out = !is_neg ? (int64_t)mag : mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    return rc;
}

/* "" (no suffix, multiplier 1), or an optional single space and exactly one table entry. */
static int parse_suffix(const char *s, const sl_cfg_suffix_t *tab, uint64_t *mult)
{
    if (*s == '\0') {
        *mult = 1;
        return 0;
    }
    if (*s == ' ')
        s++;
    for (; tab->name != NULL; tab++) {
        if (strcmp(s, tab->name) == 0) {
            *mult = tab->mult;
            return 0;
        }
    }
    return -1;
}

static int out_of_range_i64(const sl_cfg_field_t *f, int64_t v)
{
    return f->min <= f->max && (v < f->min || v > f->max);
}

static int out_of_range_u64(const sl_cfg_field_t *f, uint64_t v)
{
    if (f->min > f->max)
        return 0;
    if (f->max < 0)
        return 1;
    return (f->min > 0 && v < (uint64_t)f->min) || v > (uint64_t)f->max;
}

static int range_error(const sl_cfg_field_t *f, const char *value, const char *unit,
                       const char *parsed, const char *source, char *errbuf, size_t errlen)
{
    /* Show the number the bounds were compared with when a suffix changed it. */
    if (parsed != NULL)
        return fail(errbuf, errlen,
                    "%s: %s (%s %s) is out of range [%" PRId64 ", %" PRId64 "] (from %s)", f->key,
                    value, parsed, unit, f->min, f->max, source);
    return fail(errbuf, errlen, "%s: %s is out of range [%" PRId64 ", %" PRId64 "] (from %s)",
                f->key, value, f->min, f->max, source);
}

static int apply_int(const sl_cfg_field_t *f, int64_t *dst, const char *value, const char *source,
                     char *errbuf, size_t errlen)
{
    const char *s = value;
    int64_t v = 0;
    parse_rc_t rc = parse_i64(&s, &v);
    if (rc == PARSE_SYNTAX || *s != '\0')
        return fail(errbuf, errlen, "%s: \"%s\" is not an integer (from %s)", f->key, value,
                    source);
    if (rc == PARSE_OVERFLOW)
        return fail(errbuf, errlen, "%s: %s does not fit in a 64-bit integer (from %s)", f->key,
                    value, source);
    if (out_of_range_i64(f, v))
        return range_error(f, value, NULL, NULL, source, errbuf, errlen);
    *dst = v;
    return 0;
}

static int apply_size(const sl_cfg_field_t *f, uint64_t *dst, const char *value, const char *source,
                      char *errbuf, size_t errlen)
{
    const char *s = value;
    uint64_t v = 0, mult = 1;
    parse_rc_t rc = parse_digits(&s, UINT64_MAX, &v);
    if (rc == PARSE_SYNTAX || parse_suffix(s, size_suffixes, &mult) != 0)
        return fail(errbuf, errlen,
                    "%s: \"%s\" is not a size (bytes, optionally with one of B, KB, MB, GB, KiB, "
                    "MiB, GiB) (from %s)",
                    f->key, value, source);
    if (rc == PARSE_OVERFLOW || v > UINT64_MAX / mult)
        return fail(errbuf, errlen, "%s: %s does not fit in 64 bits (from %s)", f->key, value,
                    source);
    v *= mult;
    if (out_of_range_u64(f, v)) {
        char parsed[24];
        snprintf(parsed, sizeof(parsed), "%" PRIu64, v);
        return range_error(f, value, "bytes", *s != '\0' ? parsed : NULL, source, errbuf, errlen);
    }
    *dst = v;
    return 0;
}

static int apply_ms(const sl_cfg_field_t *f, int64_t *dst, const char *value, const char *source,
                    char *errbuf, size_t errlen)
{
    const char *s = value;
    int64_t v = 0;
    uint64_t mult = 1;
    parse_rc_t rc = parse_i64(&s, &v);
    if (rc == PARSE_SYNTAX || parse_suffix(s, ms_suffixes, &mult) != 0)
        return fail(errbuf, errlen,
                    "%s: \"%s\" is not a duration (milliseconds, or a number with ms, s, m or h) "
                    "(from %s)",
                    f->key, value, source);
    if (rc == PARSE_OVERFLOW || v > INT64_MAX / (int64_t)mult || v < INT64_MIN / (int64_t)mult)
        return fail(errbuf, errlen, "%s: %s does not fit in 64 bits of milliseconds (from %s)",
                    f->key, value, source);
    v *= (int64_t)mult;
    if (out_of_range_i64(f, v)) {
        char parsed[24];
        snprintf(parsed, sizeof(parsed), "%" PRId64, v);
        return range_error(f, value, "ms", *s != '\0' ? parsed : NULL, source, errbuf, errlen);
    }
    *dst = v;
    return 0;
}

static int apply_enum(const sl_cfg_field_t *f, int *dst, const char *value, const char *source,
                      char *errbuf, size_t errlen)
{
    for (int i = 0; f->enum_names[i] != NULL; i++) {
        if (ascii_casecmp(value, f->enum_names[i]) == 0) {
            *dst = i;
            return 0;
        }
    }
    sl_cfg_sb_t sb = {errbuf, errlen, 0};
    sb_printf(&sb, "%s: \"%s\" is not one of ", f->key, value);
    for (size_t i = 0; f->enum_names[i] != NULL; i++)
        sb_printf(&sb, "%s%s", i > 0 ? ", " : "", f->enum_names[i]);
    sb_printf(&sb, " (from %s)", source);
    return -1;
}

/* Parses `value` for one field and stores it; on error the field is left unchanged. */
static int apply_value(const sl_cfg_section_t *sec, const sl_cfg_field_t *f, const char *value,
                       const char *source, char *errbuf, size_t errlen)
{
    void *p = field_ptr(sec, f);
    switch (f->type) {
    case SL_CFG_STR: {
        char **sp = p;
        char *copy = xstrdup(value);
        free(*sp);
        *sp = copy;
        return 0;
    }
    case SL_CFG_INT:
        return apply_int(f, p, value, source, errbuf, errlen);
    case SL_CFG_BOOL:
        if (word_in(value, bool_true))
            *(int *)p = 1;
        else if (word_in(value, bool_false))
            *(int *)p = 0;
        else
            return fail(errbuf, errlen,
                        "%s: \"%s\" is not a boolean (true/false, yes/no, on/off, 1/0) (from %s)",
                        f->key, value, source);
        return 0;
    case SL_CFG_SIZE:
        return apply_size(f, p, value, source, errbuf, errlen);
    case SL_CFG_MS:
        return apply_ms(f, p, value, source, errbuf, errlen);
    case SL_CFG_ENUM:
        return apply_enum(f, p, value, source, errbuf, errlen);
    }
    return fail(errbuf, errlen, "%s: unknown field type %d", f->key, (int)f->type);
}

/* ---- passthrough ------------------------------------------------------------------------- */

static int pt_set(sl_cfg_passthrough_t *pt, const char *key, size_t key_len, const char *value,
                  const char *source, char *errbuf, size_t errlen)
{
    const char *sub = key + pt->prefix_len;
    size_t sub_len = key_len - pt->prefix_len;
    if (sub_len == 0)
        return fail(errbuf, errlen, "%s: a name is needed after the prefix (from %s)", pt->prefix,
                    source);
    for (size_t i = 0; i < pt->n; i++) {
        if (strlen(pt->keys[i]) == sub_len && memcmp(pt->keys[i], sub, sub_len) == 0) {
            char *copy = xstrdup(value);
            free(pt->values[i]);
            pt->values[i] = copy;
            return 0;
        }
    }
    pt->keys = xrealloc(pt->keys, (pt->n + 1) * sizeof(*pt->keys));
    pt->values = xrealloc(pt->values, (pt->n + 1) * sizeof(*pt->values));
    pt->keys[pt->n] = xstrndup(sub, sub_len);
    pt->values[pt->n] = xstrdup(value);
    pt->n++;
    return 0;
}

/* ---- registry ---------------------------------------------------------------------------- */

sl_config_t *sl_config_create(void)
{
    sl_config_t *cfg = xrealloc(NULL, sizeof(*cfg));
    memset(cfg, 0, sizeof(*cfg));
    return cfg;
}

static void free_str_fields(const sl_cfg_section_t *sec)
{
    for (size_t i = 0; i < sec->n_fields; i++) {
        if (sec->fields[i].type == SL_CFG_STR) {
            char **sp = field_ptr(sec, &sec->fields[i]);
            free(*sp);
            *sp = NULL;
        }
    }
}

void sl_config_destroy(sl_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t s = 0; s < cfg->n_sections; s++) {
        free_str_fields(&cfg->sections[s]);
        free(cfg->sections[s].name);
    }
    free(cfg->sections);
    for (size_t p = 0; p < cfg->n_pts; p++) {
        sl_cfg_passthrough_t *pt = &cfg->pts[p];
        for (size_t i = 0; i < pt->n; i++) {
            free(pt->keys[i]);
            free(pt->values[i]);
        }
        free(pt->keys);
        free(pt->values);
        free(pt->prefix);
        free(pt->doc);
    }
    free(cfg->pts);
    free(cfg);
}

/* Programming errors in a field table: caught at registration, before any value is parsed. */
static int check_field(const sl_config_t *cfg, const sl_cfg_field_t *fields, size_t idx,
                       char *errbuf, size_t errlen)
{
    const sl_cfg_field_t *f = &fields[idx];
    field_ref_t ref;
    if (f->key == NULL || f->key[0] == '\0')
        return fail(errbuf, errlen, "field %zu has no key", idx);
    if ((unsigned)f->type > (unsigned)SL_CFG_ENUM)
        return fail(errbuf, errlen, "%s: unknown field type %d", f->key, (int)f->type);
    if (f->type == SL_CFG_ENUM && (f->enum_names == NULL || f->enum_names[0] == NULL))
        return fail(errbuf, errlen, "%s: an enum needs enum_names", f->key);
    if (f->type != SL_CFG_STR && f->def == NULL)
        return fail(errbuf, errlen, "%s: only string keys may have no default", f->key);
    if (find_field(cfg, f->key, strlen(f->key), &ref))
        return fail(errbuf, errlen, "%s: key registered twice", f->key);
    /* Two keys with one env name ("a.b_c", "a_b.c") would make SLUICE_A_B_C ambiguous. */
    for (size_t s = 0; s <= cfg->n_sections; s++) {
        const sl_cfg_field_t *others = s < cfg->n_sections ? cfg->sections[s].fields : fields;
        size_t n = s < cfg->n_sections ? cfg->sections[s].n_fields : idx;
        for (size_t i = 0; i < n; i++) {
            const char *k = others[i].key;
            if (strlen(k) != strlen(f->key))
                continue;
            size_t j = 0;
            while (k[j] != '\0' && env_char(k[j]) == env_char(f->key[j]))
                j++;
            if (k[j] == '\0')
                return fail(errbuf, errlen, "%s: same key or environment name as %s", f->key, k);
        }
    }
    return 0;
}

int sl_config_add_section(sl_config_t *cfg, const char *name, const sl_cfg_field_t *fields,
                          size_t n_fields, void *base, char *errbuf, size_t errlen)
{
    if (cfg == NULL || name == NULL || (n_fields > 0 && (fields == NULL || base == NULL)))
        return fail(errbuf, errlen, "sl_config_add_section: missing argument");
    for (size_t i = 0; i < n_fields; i++)
        if (check_field(cfg, fields, i, errbuf, errlen) != 0)
            return -1;

    sl_cfg_section_t sec = {NULL, fields, n_fields, base};
    /* The config owns STR fields from here on; whatever the struct held is not ours to free. */
    for (size_t i = 0; i < n_fields; i++)
        if (fields[i].type == SL_CFG_STR)
            *(char **)field_ptr(&sec, &fields[i]) = NULL;
    for (size_t i = 0; i < n_fields; i++) {
        if (fields[i].def != NULL &&
            apply_value(&sec, &fields[i], fields[i].def, "default", errbuf, errlen) != 0) {
            free_str_fields(&sec);
            return -1;
        }
    }

    sec.name = xstrdup(name);
    cfg->sections = xrealloc(cfg->sections, (cfg->n_sections + 1) * sizeof(*cfg->sections));
    cfg->sections[cfg->n_sections++] = sec;
    return 0;
}

int sl_config_add_passthrough(sl_config_t *cfg, const char *prefix, const char *doc)
{
    if (cfg == NULL || prefix == NULL)
        return -1;
    size_t len = strlen(prefix);
    if (len < 2 || prefix[len - 1] != '.')
        return -1;
    for (size_t i = 0; i < cfg->n_pts; i++)
        if (strcmp(cfg->pts[i].prefix, prefix) == 0)
            return -1;
    cfg->pts = xrealloc(cfg->pts, (cfg->n_pts + 1) * sizeof(*cfg->pts));
    sl_cfg_passthrough_t *pt = &cfg->pts[cfg->n_pts++];
    memset(pt, 0, sizeof(*pt));
    pt->prefix = xstrdup(prefix);
    pt->prefix_len = len;
    pt->doc = xstrdup(doc != NULL ? doc : "");
    return 0;
}

/* ---- setting values ---------------------------------------------------------------------- */

static int config_set(sl_config_t *cfg, const char *key, size_t key_len, const char *value,
                      const char *source, char *errbuf, size_t errlen)
{
    field_ref_t ref;
    if (source == NULL)
        source = "?";
    if (value == NULL)
        return fail(errbuf, errlen, "%.*s: no value (from %s)", clamp_len(key_len), key, source);
    /* A registered key wins over a passthrough prefix it happens to start with. */
    if (find_field(cfg, key, key_len, &ref))
        return apply_value(ref.sec, ref.f, value, source, errbuf, errlen);
    sl_cfg_passthrough_t *pt = find_pt_for_key(cfg, key, key_len);
    if (pt != NULL)
        return pt_set(pt, key, key_len, value, source, errbuf, errlen);
    const char *hint = suggest_key(cfg, key, key_len, 0);
    if (hint != NULL)
        return fail(errbuf, errlen, "%.*s: unknown key (from %s); did you mean %s?",
                    clamp_len(key_len), key, source, hint);
    return fail(errbuf, errlen, "%.*s: unknown key (from %s)", clamp_len(key_len), key, source);
}

int sl_config_set(sl_config_t *cfg, const char *key, const char *value, const char *source,
                  char *errbuf, size_t errlen)
{
    if (cfg == NULL || key == NULL)
        return fail(errbuf, errlen, "sl_config_set: missing key");
    return config_set(cfg, key, strlen(key), value, source, errbuf, errlen);
}

/* ---- file -------------------------------------------------------------------------------- */

/* Unquotes a "..." value in place (\" and \\ are the only escapes); `v` points at the opening
 * quote. Returns 0, or -1 with errbuf naming `source`. */
static int unquote(char *v, const char *source, char *errbuf, size_t errlen)
{
    char *w = v;
    const char *r = v + 1;
    for (;;) {
        if (*r == '\0')
            return fail(errbuf, errlen, "%s: missing closing quote", source);
        if (*r == '"')
            break;
        if (*r == '\\') {
            if (r[1] != '"' && r[1] != '\\')
                return fail(errbuf, errlen, "%s: only \\\" and \\\\ may be escaped in quotes",
                            source);
            r++;
        }
        *w++ = *r++;
    }
    *w = '\0';
    for (r++; is_blank(*r); r++)
        ;
    if (*r != '\0' && *r != '#')
        return fail(errbuf, errlen, "%s: unexpected text after the closing quote", source);
    return 0;
}

static int parse_line(sl_config_t *cfg, char *line, const char *source, char *errbuf, size_t errlen)
{
    char *s = line;
    while (is_blank(*s))
        s++;
    if (*s == '\0' || *s == '#')
        return 0;
    char *eq = strchr(s, '=');
    char *hash = strchr(s, '#');
    if (eq == NULL || (hash != NULL && hash < eq))
        return fail(errbuf, errlen, "%s: expected \"key = value\"", source);
    char *key_end = eq;
    while (key_end > s && is_blank(key_end[-1]))
        key_end--;
    if (key_end == s)
        return fail(errbuf, errlen, "%s: missing key before '='", source);
    *key_end = '\0';

    char *v = eq + 1;
    while (is_blank(*v))
        v++;
    if (*v == '"') {
        if (unquote(v, source, errbuf, errlen) != 0)
            return -1;
    } else {
        char *end = strchr(v, '#');
        if (end == NULL)
            end = v + strlen(v);
        while (end > v && is_blank(end[-1]))
            end--;
        *end = '\0';
    }
    return config_set(cfg, s, (size_t)(key_end - s), v, source, errbuf, errlen);
}

int sl_config_load_file(sl_config_t *cfg, const char *path, char *errbuf, size_t errlen)
{
    FILE *fp = NULL;
    char *line = NULL, *source = NULL;
    size_t line_cap = 0, source_cap;
    unsigned long lineno = 0;
    ssize_t n;
    int rc = -1;

    if ((fp = fopen(path, "r")) == NULL) {
        fail(errbuf, errlen, "cannot open config file %s: %s", path, strerror(errno));
        goto Fail;
    }
    source_cap = strlen(path) + 24;
    source = xrealloc(NULL, source_cap);
    while ((n = getline(&line, &line_cap, fp)) != -1) {
        lineno++;
        snprintf(source, source_cap, "%s:%lu", path, lineno);
        if (memchr(line, '\0', (size_t)n) != NULL) {
            fail(errbuf, errlen, "%s: NUL byte in line", source);
            goto Fail;
        }
        if (parse_line(cfg, line, source, errbuf, errlen) != 0)
            goto Fail;
    }
    if (ferror(fp)) {
        fail(errbuf, errlen, "cannot read config file %s: %s", path, strerror(errno));
        goto Fail;
    }
    rc = 0;
Fail: /* also the success path: rc says which */
    free(source);
    free(line);
    if (fp != NULL)
        fclose(fp);
    return rc;
}

/* ---- environment ------------------------------------------------------------------------- */

static int env_apply(sl_config_t *cfg, const char *name, size_t name_len, const char *value,
                     char *errbuf, size_t errlen)
{
    const char *rest = name + SL_CFG_ENV_PREFIX_LEN;
    size_t rest_len = name_len - SL_CFG_ENV_PREFIX_LEN;
    char source[SL_CFG_NAME_MAX + 8];
    snprintf(source, sizeof(source), "env %.*s", clamp_len(name_len), name);

    for (size_t s = 0; s < cfg->n_sections; s++) {
        const sl_cfg_section_t *sec = &cfg->sections[s];
        for (size_t i = 0; i < sec->n_fields; i++) {
            const sl_cfg_field_t *f = &sec->fields[i];
            if (env_matches(f->key, strlen(f->key), rest, rest_len))
                return apply_value(sec, f, value, source, errbuf, errlen);
        }
    }

    sl_cfg_passthrough_t *pt = NULL;
    for (size_t i = 0; i < cfg->n_pts; i++) {
        sl_cfg_passthrough_t *cand = &cfg->pts[i];
        if (rest_len >= cand->prefix_len &&
            env_matches(cand->prefix, cand->prefix_len, rest, cand->prefix_len) &&
            (pt == NULL || cand->prefix_len > pt->prefix_len))
            pt = cand;
    }
    if (pt != NULL) {
        /* SLUICE_KAFKA_LINGER_MS -> kafka.linger.ms */
        char *key = xrealloc(NULL, rest_len + 1);
        memcpy(key, pt->prefix, pt->prefix_len);
        for (size_t i = pt->prefix_len; i < rest_len; i++)
            key[i] = rest[i] == '_' ? '.' : ascii_lower(rest[i]);
        key[rest_len] = '\0';
        int rc = pt_set(pt, key, rest_len, value, source, errbuf, errlen);
        free(key);
        return rc;
    }

    const char *hint = suggest_key(cfg, name, name_len, 1);
    if (hint != NULL) {
        char env[SL_CFG_SUGGEST_MAX_LEN + 1];
        env_name_of(hint, env, sizeof(env));
        return fail(errbuf, errlen,
                    "%.*s: no config key maps to this environment variable; did you mean %s?",
                    clamp_len(name_len), name, env);
    }
    return fail(errbuf, errlen, "%.*s: no config key maps to this environment variable",
                clamp_len(name_len), name);
}

int sl_config_load_env(sl_config_t *cfg, char *const *envp, char *errbuf, size_t errlen)
{
    if (envp == NULL)
        return 0;
    for (; *envp != NULL; envp++) {
        const char *ent = *envp;
        const char *eq = strchr(ent, '=');
        if (strncmp(ent, SL_CFG_ENV_PREFIX, SL_CFG_ENV_PREFIX_LEN) != 0 || eq == NULL)
            continue;
        size_t name_len = (size_t)(eq - ent);
        if (name_len == strlen(SL_CFG_ENV_FILE) && memcmp(ent, SL_CFG_ENV_FILE, name_len) == 0)
            continue;
        if (env_apply(cfg, ent, name_len, eq + 1, errbuf, errlen) != 0)
            return -1;
    }
    return 0;
}

static const char *env_lookup(char *const *envp, const char *name)
{
    size_t len = strlen(name);
    for (; envp != NULL && *envp != NULL; envp++)
        if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
            return *envp + len + 1;
    return NULL;
}

/* ---- command line ------------------------------------------------------------------------ */

typedef enum {
    ARG_CONFIG,
    ARG_SET,
    ARG_CHECK,
    ARG_HELP,
} arg_kind_t;

/* Matches "--name VALUE" or "--name=VALUE": 1 matched, 0 not this option, -1 error. */
static int arg_with_value(const char *arg, const char *name, int argc, char **argv, int *i,
                          const char **val, char *errbuf, size_t errlen)
{
    size_t len = strlen(name);
    if (strncmp(arg, name, len) != 0)
        return 0;
    if (arg[len] == '=')
        *val = arg + len + 1;
    else if (arg[len] != '\0')
        return 0;
    else if (*i < argc)
        *val = argv[(*i)++];
    else
        *val = NULL;
    if (*val == NULL || (*val)[0] == '\0')
        return fail(errbuf, errlen, "%s needs a value", name);
    return 1;
}

/* Reads the option at argv[*i] and advances *i past it and its value. */
static int next_arg(int argc, char **argv, int *i, arg_kind_t *kind, const char **val, char *errbuf,
                    size_t errlen)
{
    const char *arg = argv[(*i)++];
    int rc;
    *val = NULL;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        *kind = ARG_HELP;
        return 0;
    }
    if (strcmp(arg, "--check-config") == 0) {
        *kind = ARG_CHECK;
        return 0;
    }
    if ((rc = arg_with_value(arg, "--config", argc, argv, i, val, errbuf, errlen)) != 0) {
        *kind = ARG_CONFIG;
        return rc < 0 ? -1 : 0;
    }
    if ((rc = arg_with_value(arg, "--set", argc, argv, i, val, errbuf, errlen)) != 0) {
        *kind = ARG_SET;
        if (rc < 0)
            return -1;
        const char *eq = strchr(*val, '=');
        if (eq == NULL || eq == *val)
            return fail(errbuf, errlen, "--set %s: expected key=value", *val);
        return 0;
    }
    return fail(errbuf, errlen, "unknown argument \"%s\" (see --help)", arg);
}

sl_config_action_t sl_config_load_args(sl_config_t *cfg, const char *progname, int argc,
                                       char **argv, char *const *envp, FILE *out, char *errbuf,
                                       size_t errlen)
{
    const char *path = NULL, *val;
    int is_help = 0, is_check = 0;
    arg_kind_t kind;

    if (out == NULL)
        out = stdout;
    if (progname == NULL)
        progname = argc > 0 && argv[0] != NULL ? argv[0] : "sluice";

    /* First pass: syntax, flags and the file; --set is applied last whatever its position. */
    for (int i = 1; i < argc;) {
        if (next_arg(argc, argv, &i, &kind, &val, errbuf, errlen) != 0)
            return SL_CONFIG_ERROR;
        if (kind == ARG_HELP) {
            is_help = 1;
        } else if (kind == ARG_CHECK) {
            is_check = 1;
        } else if (kind == ARG_CONFIG) {
            if (path != NULL) {
                fail(errbuf, errlen, "--config given twice");
                return SL_CONFIG_ERROR;
            }
            path = val;
        }
    }
    if (is_help) {
        fprintf(out, "usage: %s [--config FILE] [--set key=value]... [--check-config]\n\n",
                progname);
        sl_config_print_help(cfg, out);
        return SL_CONFIG_EXIT_OK;
    }

    if (path == NULL && (path = env_lookup(envp, SL_CFG_ENV_FILE)) != NULL && path[0] == '\0')
        path = NULL;
    if (path != NULL && sl_config_load_file(cfg, path, errbuf, errlen) != 0)
        return SL_CONFIG_ERROR;
    if (sl_config_load_env(cfg, envp, errbuf, errlen) != 0)
        return SL_CONFIG_ERROR;
    for (int i = 1; i < argc;) {
        if (next_arg(argc, argv, &i, &kind, &val, errbuf, errlen) != 0)
            return SL_CONFIG_ERROR;
        if (kind != ARG_SET)
            continue;
        const char *eq = strchr(val, '=');
        if (config_set(cfg, val, (size_t)(eq - val), eq + 1, "--set", errbuf, errlen) != 0)
            return SL_CONFIG_ERROR;
    }

    if (is_check) {
        fputs("config ok\n", out);
        sl_config_print_effective(cfg, out);
        return SL_CONFIG_EXIT_OK;
    }
    return SL_CONFIG_RUN;
}

/* ---- printing ---------------------------------------------------------------------------- */

size_t sl_config_passthrough(const sl_config_t *cfg, const char *prefix, const char *const **keys,
                             const char *const **values)
{
    const sl_cfg_passthrough_t *pt = NULL;
    for (size_t i = 0; cfg != NULL && prefix != NULL && i < cfg->n_pts; i++)
        if (strcmp(cfg->pts[i].prefix, prefix) == 0)
            pt = &cfg->pts[i];
    if (keys != NULL)
        *keys = pt != NULL ? (const char *const *)pt->keys : NULL;
    if (values != NULL)
        *values = pt != NULL ? (const char *const *)pt->values : NULL;
    return pt != NULL ? pt->n : 0;
}

static const char *type_name(sl_cfg_type_t type)
{
    switch (type) {
    case SL_CFG_STR:
        return "string";
    case SL_CFG_INT:
        return "int";
    case SL_CFG_BOOL:
        return "bool";
    case SL_CFG_SIZE:
        return "size";
    case SL_CFG_MS:
        return "ms";
    case SL_CFG_ENUM:
        return "enum";
    }
    return "?";
}

void sl_config_print_help(const sl_config_t *cfg, FILE *out)
{
    for (size_t s = 0; s < cfg->n_sections; s++) {
        const sl_cfg_section_t *sec = &cfg->sections[s];
        fprintf(out, "[%s]\n", sec->name);
        for (size_t i = 0; i < sec->n_fields; i++) {
            const sl_cfg_field_t *f = &sec->fields[i];
            fprintf(out, "  %s (%s", f->key, type_name(f->type));
            if (f->def == NULL)
                fputs("; no default", out);
            else if (f->type == SL_CFG_STR)
                fprintf(out, "; default \"%s\"", f->def);
            else
                fprintf(out, "; default %s", f->def);
            if ((f->type == SL_CFG_INT || f->type == SL_CFG_SIZE || f->type == SL_CFG_MS) &&
                f->min <= f->max)
                fprintf(out, "; range [%" PRId64 ", %" PRId64 "]", f->min, f->max);
            if (f->type == SL_CFG_ENUM) {
                fputs("; one of ", out);
                for (size_t e = 0; f->enum_names[e] != NULL; e++)
                    fprintf(out, "%s%s", e > 0 ? ", " : "", f->enum_names[e]);
            }
            fputs("; env ", out);
            print_env_name(out, f->key);
            fputs(")\n", out);
            if (f->doc != NULL && f->doc[0] != '\0')
                fprintf(out, "      %s\n", f->doc);
        }
    }
    for (size_t p = 0; p < cfg->n_pts; p++) {
        const sl_cfg_passthrough_t *pt = &cfg->pts[p];
        fprintf(out, "[%s*]\n  %s<name> (passed through; env ", pt->prefix, pt->prefix);
        print_env_name(out, pt->prefix);
        fputs("<NAME> with '_' for '.')\n", out);
        if (pt->doc[0] != '\0')
            fprintf(out, "      %s\n", pt->doc);
    }
}

/* Quotes when the file parser would otherwise change the value, so the output reloads. */
static void print_str(FILE *out, int is_secret, const char *v)
{
    if (is_secret) {
        fputs("<redacted>", out);
        return;
    }
    size_t len = strlen(v);
    int needs_quotes =
        len == 0 || is_blank(v[0]) || is_blank(v[len - 1]) || strpbrk(v, " \t#\"\\") != NULL;
    if (!needs_quotes) {
        fputs(v, out);
        return;
    }
    fputc('"', out);
    for (; *v != '\0'; v++) {
        if (*v == '"' || *v == '\\')
            fputc('\\', out);
        fputc(*v, out);
    }
    fputc('"', out);
}

void sl_config_print_effective(const sl_config_t *cfg, FILE *out)
{
    for (size_t s = 0; s < cfg->n_sections; s++) {
        const sl_cfg_section_t *sec = &cfg->sections[s];
        for (size_t i = 0; i < sec->n_fields; i++) {
            const sl_cfg_field_t *f = &sec->fields[i];
            const void *p = field_ptr(sec, f);
            if (f->type == SL_CFG_STR && *(char *const *)p == NULL) {
                fprintf(out, "# %s is unset\n", f->key);
                continue;
            }
            fprintf(out, "%s = ", f->key);
            switch (f->type) {
            case SL_CFG_STR:
                print_str(out, is_secret_key(f->key), *(char *const *)p);
                break;
            case SL_CFG_INT:
            case SL_CFG_MS:
                fprintf(out, "%" PRId64, *(const int64_t *)p);
                break;
            case SL_CFG_BOOL:
                fputs(*(const int *)p ? "true" : "false", out);
                break;
            case SL_CFG_SIZE:
                fprintf(out, "%" PRIu64, *(const uint64_t *)p);
                break;
            case SL_CFG_ENUM:
                fputs(f->enum_names[*(const int *)p], out);
                break;
            }
            fputc('\n', out);
        }
    }
    for (size_t p = 0; p < cfg->n_pts; p++) {
        const sl_cfg_passthrough_t *pt = &cfg->pts[p];
        for (size_t i = 0; i < pt->n; i++) {
            fprintf(out, "%s%s = ", pt->prefix, pt->keys[i]);
            print_str(out, is_secret_key(pt->prefix) || is_secret_key(pt->keys[i]), pt->values[i]);
            fputc('\n', out);
        }
    }
}
