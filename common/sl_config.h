/* Typed, bounded configuration: each module owns a field table; sources are layered as
 * defaults < file < environment (SLUICE_*) < command line (--set key=value).
 *
 * Threading: configure at startup only. Nothing here is synchronised: create, register, load
 * and print from one thread before other threads start; afterwards the module structs are
 * read-only, and only sl_config_destroy (at exit) may touch them again. */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    SL_CFG_STR,   /* char *, owned by the config (freed by sl_config_destroy) */
    SL_CFG_INT,   /* int64_t, decimal, bounded by min/max */
    SL_CFG_BOOL,  /* int, "true"/"false"/"1"/"0"/"yes"/"no"/"on"/"off", any case */
    SL_CFG_SIZE,  /* uint64_t bytes, accepts 512, 64KiB, 4MiB, 1GiB (also KB/MB/GB = 1000^n);
                   * suffixes exactly B KB MB GB KiB MiB GiB (case as written), one optional
                   * space before the suffix ("64 KiB"); no sign, no fraction */
    SL_CFG_MS,    /* int64_t milliseconds, accepts 250ms, 15s, 2m, 1h; a bare number is ms;
                   * optional '-' and one optional space before the suffix */
    SL_CFG_ENUM,  /* int index into enum_names; names match in any case */
} sl_cfg_type_t;

typedef struct {
    const char *key;                /* "gateway.max_body_bytes" */
    sl_cfg_type_t type;
    size_t offset;                  /* offsetof() into the module's config struct */
    const char *def;                /* default, as text (parsed like any other source); only
                                     * STR may be NULL (then the pointer is NULL: "unset") */
    int64_t min, max;               /* bounds for INT/SIZE/MS (inclusive); ignored when min > max,
                                     * and for STR/BOOL/ENUM */
    const char *const *enum_names;  /* NULL-terminated, for SL_CFG_ENUM */
    const char *doc;                /* one line for --help */
} sl_cfg_field_t;

typedef struct sl_config sl_config_t;

/* Creates an empty registry. Never NULL (aborts on OOM). */
sl_config_t *sl_config_create(void);
/* Frees owned strings of every registered section (setting those pointers to NULL, so the
 * module structs must still be alive), all passthrough entries and the registry; accepts NULL. */
void sl_config_destroy(sl_config_t *cfg);

/* Registers a module's table; `base` is the module's struct the offsets point into. `name` is
 * copied; `fields` and `base` are not and must outlive cfg (fields is normally static const).
 * From here on the config owns every STR pointer in `base` (it overwrites them first). The
 * defaults are applied immediately. Returns 0, or -1 with errbuf set when the table is invalid
 * (a programming error): a default that does not parse or is out of bounds, a non-STR field
 * without a default, an ENUM without names, or a key (or its env name) already registered.
 * On failure nothing is registered and the section's STR pointers are NULL. */
int sl_config_add_section(sl_config_t *cfg, const char *name, const sl_cfg_field_t *fields,
                          size_t n_fields, void *base, char *errbuf, size_t errlen);

/* Keys under `prefix` (e.g. "kafka.") are collected verbatim instead of being rejected; the
 * owning module validates them (librdkafka does). Environment SLUICE_KAFKA_A_B maps to "kafka.a.b"
 * (after the prefix '_' becomes '.' and letters are lowercased; set names containing '_' from
 * the file or --set). A registered key wins over a prefix it starts with. `prefix` must end with
 * '.'; it and `doc` are copied. Returns 0, or -1 for an invalid or duplicate prefix. */
int sl_config_add_passthrough(sl_config_t *cfg, const char *prefix, const char *doc);

/* Sets one key from text (what every source calls). Returns 0, or -1 with a message naming the
 * key and the allowed values/bounds in errbuf; the old value is then kept. `source` ("file:3",
 * "env SLUICE_X", "--set") is quoted in messages:
 *   gateway.max_events: 0 is out of range [1, 100000] (from --set)
 *   log.level: "loud" is not one of debug, info, warn, error (from env SLUICE_LOG_LEVEL)
 *   gateway.max_event: unknown key (from --set); did you mean gateway.max_events?
 * (the suggestion is the closest registered key within 3 edits). */
int sl_config_set(sl_config_t *cfg, const char *key, const char *value, const char *source,
                  char *errbuf, size_t errlen);

/* Reads "key = value" lines; '#' starts a comment (also after a value); blank lines ignored;
 * key and value are trimmed; values may be quoted with "..." (then '#' and spaces inside are
 * kept; \" and \\ are the only escapes). A later line for the same key wins. A line without
 * '=', a bad quote or an unknown key is an error whose source is "PATH:LINE". */
int sl_config_load_file(sl_config_t *cfg, const char *path, char *errbuf, size_t errlen);

/* Applies every SLUICE_* variable in envp (NULL-terminated "K=V" strings; NULL means none). The
 * env name of a key is "SLUICE_" + upper(key) with '.' -> '_' (so gateway.max_events is
 * SLUICE_GATEWAY_MAX_EVENTS); passthrough names map as described above. Unknown SLUICE_*
 * variables are errors, except SLUICE_CONFIG (the file path, handled by sl_config_load_args). */
int sl_config_load_env(sl_config_t *cfg, char *const *envp, char *errbuf, size_t errlen);

typedef enum {
    SL_CONFIG_RUN = 0,   /* go on and start */
    SL_CONFIG_EXIT_OK,   /* --help or --check-config succeeded: exit 0 */
    SL_CONFIG_ERROR,     /* errbuf says why: print it, exit 2 */
} sl_config_action_t;

/* The whole precedence chain for a process: defaults (already applied) < file (--config PATH
 * or --config=PATH, else $SLUICE_CONFIG from envp, else none) < environment < --set key=value
 * (repeatable, also --set=key=value), whatever the order in argv (argv[0] is skipped).
 * --help / -h prints "usage: PROG [--config FILE] [--set key=value]... [--check-config]" and
 * every key to `out` without loading any source; --check-config loads everything, then prints
 * "config ok" and the effective configuration to `out`. Unknown arguments, a missing value and
 * --config given twice are errors. `progname` NULL means argv[0]; `out` NULL means stdout. */
sl_config_action_t sl_config_load_args(sl_config_t *cfg, const char *progname, int argc,
                                       char **argv, char *const *envp, FILE *out, char *errbuf,
                                       size_t errlen);

/* Passthrough entries for a prefix, in the order set (later sources override earlier ones for
 * the same key, keeping one entry). Keys are returned without the prefix ("linger.ms").
 * Returns the count (0 for an unknown prefix, with NULL arrays); *keys and *values point into
 * the config, valid until the next set under that prefix or destroy. */
size_t sl_config_passthrough(const sl_config_t *cfg, const char *prefix, const char *const **keys,
                             const char *const **values);

/* Prints every key, its type, bounds, default and doc (for --help). */
void sl_config_print_help(const sl_config_t *cfg, FILE *out);
/* Prints the effective "key = value" lines, with passthrough entries ("kafka.linger.ms = 5"),
 * in a form sl_config_load_file reads back (strings quoted when needed; sizes in bytes, ms as
 * plain numbers; an unset STR prints as a "# key is unset" comment). Redaction: a string value
 * (STR field or passthrough entry) whose key contains "key", "secret" or "password" in any case
 * prints as <redacted>. */
void sl_config_print_effective(const sl_config_t *cfg, FILE *out);

#endif
