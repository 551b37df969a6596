/* The registry's state: schemas by global id, subjects with their versions, compatibility
 * levels. Every change is one JSON line appended to DATA_DIR/registry.log and fsync'd before it
 * is applied (so an answered write survives a crash); opening the store replays the log. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reg_int.h"
#include "sl_log.h"

#define MAX_SUBJECT_BYTES 255

typedef struct {
    int32_t id;
    reg_type_t type;
    const char *text;  /* as served: avro's compact JSON, or the .proto text */
    const char *canon; /* identity: avro's sorted compact JSON, or the .proto text */
    char *proto_text;  /* owned copy for Protobuf (Avro's live in the reg_avro_t) */
    uint64_t hash;     /* of canon, to skip most comparisons */
    reg_avro_t *avro;
    reg_proto_t *proto;
} reg_schema_t;

typedef struct {
    char *name;
    int32_t *ids; /* ids[v - 1] is version v's schema id */
    size_t n, cap;
    int level; /* reg_level_t, or -1: none of its own */
} reg_subject_t;

struct reg_store {
    reg_store_conf_t conf;
    char *data_dir, *protoc, *log_path;
    int fd;
    off_t log_size;
    reg_schema_t *schemas; /* schemas[id - 1]: ids are dense and never reused */
    size_t n_schemas, cap_schemas;
    reg_subject_t *subjects;
    size_t n_subjects, cap_subjects;
    reg_level_t global;
};

static const int err_codes[] = {
#define REG_ERR_CODE(e, code, status) code,
    REG_ERR_LIST(REG_ERR_CODE)
#undef REG_ERR_CODE
};
static const int err_statuses[] = {
#define REG_ERR_STATUS(e, code, status) status,
    REG_ERR_LIST(REG_ERR_STATUS)
#undef REG_ERR_STATUS
};

int reg_err_code(reg_err_t err)
{
    return err_codes[err];
}

int reg_err_status(reg_err_t err)
{
    return err_statuses[err];
}

const char *const reg_level_names[] = {
#define REG_LEVEL_NAME(l) #l,
    REG_LEVEL_LIST(REG_LEVEL_NAME)
#undef REG_LEVEL_NAME
        NULL};

int reg_level_parse(const char *name, reg_level_t *out)
{
    for (int i = 0; name != NULL && i < REG_LEVEL__COUNT; i++)
        if (strcasecmp(name, reg_level_names[i]) == 0) {
            *out = (reg_level_t)i;
            return 0;
        }
    return -1;
}

const char *reg_type_name(reg_type_t type)
{
    return type == REG_PROTOBUF ? "PROTOBUF" : "AVRO";
}

int reg_type_parse(const char *name, reg_type_t *out)
{
    if (name == NULL || strcmp(name, "AVRO") == 0)
        *out = REG_AVRO;
    else if (strcmp(name, "PROTOBUF") == 0)
        *out = REG_PROTOBUF;
    else
        return -1;
    return 0;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void schema_dispose(reg_schema_t *s)
{
    reg_avro_destroy(s->avro);
    reg_proto_destroy(s->proto);
    free(s->proto_text);
    memset(s, 0, sizeof(*s));
}

/* Parses text into *s (id not set). Protobuf runs protoc unless `desc` (log replay) is given. */
static reg_err_t schema_parse(reg_store_t *st, reg_type_t type, const char *text, size_t len,
                              const uint8_t *desc, size_t desc_len, reg_schema_t *s, reg_msg_t *msg)
{
    memset(s, 0, sizeof(*s));
    s->type = type;
    if (len == 0 || memchr(text, '\0', len) != NULL) {
        reg_msg_add(msg, "Invalid schema: empty or contains a NUL byte");
        return REG_ERR_INVALID_SCHEMA;
    }
    if (type == REG_AVRO) {
        if ((s->avro = reg_avro_parse(text, len, msg)) == NULL)
            return REG_ERR_INVALID_SCHEMA;
        s->text = reg_avro_text(s->avro);
        s->canon = reg_avro_canonical(s->avro);
    } else {
        s->proto = desc != NULL
                       ? reg_proto_from_descriptor(desc, desc_len, msg)
                       : reg_proto_compile(st->protoc, st->conf.protoc_timeout_ms, text, len, msg);
        if (s->proto == NULL)
            return strncmp(msg->msg, "Invalid schema", 14) == 0 ? REG_ERR_INVALID_SCHEMA
                                                                : REG_ERR_STORE;
        if ((s->proto_text = strndup(text, len)) == NULL)
            abort();
        s->text = s->canon = s->proto_text;
    }
    s->hash = fnv1a(s->canon);
    return REG_ERR_OK;
}

static reg_subject_t *subject_find(reg_store_t *st, const char *name)
{
    for (size_t i = 0; i < st->n_subjects; i++)
        if (strcmp(st->subjects[i].name, name) == 0)
            return &st->subjects[i];
    return NULL;
}

static reg_subject_t *subject_add(reg_store_t *st, const char *name)
{
    reg_subject_t *sub;
    if (st->n_subjects == st->cap_subjects) {
        st->cap_subjects = st->cap_subjects ? st->cap_subjects * 2 : 16;
        st->subjects = realloc(st->subjects, st->cap_subjects * sizeof(*st->subjects));
        if (st->subjects == NULL)
            abort();
    }
    sub = &st->subjects[st->n_subjects++];
    memset(sub, 0, sizeof(*sub));
    if ((sub->name = strdup(name)) == NULL)
        abort();
    sub->level = -1;
    return sub;
}

static void subject_push(reg_subject_t *sub, int32_t id)
{
    if (sub->n == sub->cap) {
        sub->cap = sub->cap ? sub->cap * 2 : 4;
        if ((sub->ids = realloc(sub->ids, sub->cap * sizeof(*sub->ids))) == NULL)
            abort();
    }
    sub->ids[sub->n++] = id;
}

/* Takes ownership of *s's parsed objects; returns the new id. */
static int32_t schema_push(reg_store_t *st, reg_schema_t *s)
{
    if (st->n_schemas == st->cap_schemas) {
        st->cap_schemas = st->cap_schemas ? st->cap_schemas * 2 : 64;
        st->schemas = realloc(st->schemas, st->cap_schemas * sizeof(*st->schemas));
        if (st->schemas == NULL)
            abort();
    }
    s->id = (int32_t)st->n_schemas + 1;
    st->schemas[st->n_schemas++] = *s;
    memset(s, 0, sizeof(*s));
    return st->schemas[st->n_schemas - 1].id;
}

static const reg_schema_t *schema_find(const reg_store_t *st, const reg_schema_t *cand)
{
    for (size_t i = 0; i < st->n_schemas; i++) {
        const reg_schema_t *s = &st->schemas[i];
        if (s->hash == cand->hash && s->type == cand->type && strcmp(s->canon, cand->canon) == 0)
            return s;
    }
    return NULL;
}

/* A Protobuf schema already known by its text: found without running protoc. */
static const reg_schema_t *proto_find_text(const reg_store_t *st, const char *text, size_t len)
{
    char *tmp = strndup(text, len);
    uint64_t h;
    const reg_schema_t *found = NULL;

    if (tmp == NULL)
        abort();
    h = fnv1a(tmp);
    for (size_t i = 0; i < st->n_schemas && found == NULL; i++)
        if (st->schemas[i].type == REG_PROTOBUF && st->schemas[i].hash == h &&
            strcmp(st->schemas[i].canon, tmp) == 0)
            found = &st->schemas[i];
    free(tmp);
    return found;
}

static void fill_info(const reg_store_t *st, int32_t id, const reg_subject_t *sub, int32_t version,
                      reg_schema_info_t *out)
{
    const reg_schema_t *s = &st->schemas[id - 1];
    memset(out, 0, sizeof(*out));
    out->id = id;
    out->type = s->type;
    out->schema = s->text;
    out->subject = sub != NULL ? sub->name : NULL;
    out->version = version;
    if (s->proto != NULL)
        out->descriptor = reg_proto_descriptor(s->proto, &out->descriptor_len);
}

/* ------------------------------------------------------------------------------------------ */
/* Compatibility                                                                              */

static int can_read(const reg_schema_t *w, const reg_schema_t *r, const char *what, reg_msg_t *why)
{
    if (w->type != r->type) {
        reg_msg_add(why, "%s%s: schema type %s differs from %s", why->msg[0] ? "; " : "", what,
                    reg_type_name(w->type), reg_type_name(r->type));
        return 0;
    }
    return w->type == REG_AVRO ? reg_avro_can_read(w->avro, r->avro, what, why)
                               : reg_proto_can_read(w->proto, r->proto, what, why);
}

/* Checks cand against versions [from, to] (1-based, inclusive) of sub in the level's
 * directions. Returns 1 when compatible. */
static int check_versions(const reg_store_t *st, const reg_subject_t *sub, size_t from, size_t to,
                          reg_level_t level, const reg_schema_t *cand, reg_msg_t *why)
{
    int backward = level == REG_LEVEL_BACKWARD || level == REG_LEVEL_BACKWARD_TRANSITIVE ||
                   level == REG_LEVEL_FULL || level == REG_LEVEL_FULL_TRANSITIVE;
    int forward = level == REG_LEVEL_FORWARD || level == REG_LEVEL_FORWARD_TRANSITIVE ||
                  level == REG_LEVEL_FULL || level == REG_LEVEL_FULL_TRANSITIVE;
    int ok = 1;
    char what[64];

    for (size_t v = to; v >= from && v >= 1; v--) {
        const reg_schema_t *old = &st->schemas[sub->ids[v - 1] - 1];
        /* BACKWARD: the new schema reads what the old one wrote; FORWARD: the reverse */
        snprintf(what, sizeof(what), "new schema reading version %zu", v);
        if (backward && !can_read(old, cand, what, why))
            ok = 0;
        snprintf(what, sizeof(what), "version %zu reading the new schema", v);
        if (forward && !can_read(cand, old, what, why))
            ok = 0;
    }
    return ok;
}

static int is_transitive(reg_level_t level)
{
    return level == REG_LEVEL_BACKWARD_TRANSITIVE || level == REG_LEVEL_FORWARD_TRANSITIVE ||
           level == REG_LEVEL_FULL_TRANSITIVE;
}

static reg_level_t effective_level(const reg_store_t *st, const reg_subject_t *sub)
{
    return sub != NULL && sub->level >= 0 ? (reg_level_t)sub->level : st->global;
}

/* ------------------------------------------------------------------------------------------ */
/* The log                                                                                    */

/* Appends one record and fsyncs it. On failure the file is cut back, so a later append never
 * follows half a line. */
static reg_err_t log_append(reg_store_t *st, json_t *rec, reg_msg_t *msg)
{
    char *line = json_dumps(rec, JSON_COMPACT);
    size_t len, off = 0;
    reg_err_t rc = REG_ERR_OK;

    if (line == NULL)
        abort();
    len = strlen(line);
    line[len] = '\n'; /* json_dumps' NUL becomes the newline; length counts it */
    len++;
    while (off < len) {
        ssize_t n = pwrite(st->fd, line + off, len - off, st->log_size + (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            reg_msg_add(msg, "Error writing the registry log: %s", strerror(n < 0 ? errno : EIO));
            rc = REG_ERR_STORE;
            break;
        }
        off += (size_t)n;
    }
    if (rc == REG_ERR_OK && fdatasync(st->fd) != 0) {
        reg_msg_add(msg, "Error syncing the registry log: %s", strerror(errno));
        rc = REG_ERR_STORE;
    }
    if (rc == REG_ERR_OK) {
        st->log_size += (off_t)len;
    } else if (ftruncate(st->fd, st->log_size) != 0) {
        SL_ERROR("registry log: cannot cut back a failed append", "path=%s err=\"%s\"",
                 st->log_path, strerror(errno));
    }
    free(line);
    return rc;
}

static json_t *register_record(const reg_store_t *st, const char *subject, int32_t version,
                               const reg_schema_t *s, int is_new)
{
    json_t *rec = json_pack("{s:s, s:s, s:i, s:i}", "op", "register", "subject", subject, "version",
                            (json_int_t)version, "id", (json_int_t)s->id);
    if (rec == NULL)
        abort();
    if (is_new) {
        json_object_set_new(rec, "schemaType", json_string(reg_type_name(s->type)));
        json_object_set_new(rec, "schema", json_string(s->text));
        if (s->proto != NULL) {
            size_t dlen;
            const uint8_t *d = reg_proto_descriptor(s->proto, &dlen);
            char *b = malloc(4 * ((dlen + 2) / 3) + 1);
            if (b == NULL)
                abort();
            reg_base64_encode(d, dlen, b);
            json_object_set_new(rec, "descriptor", json_string(b));
            free(b);
        }
    }
    (void)st;
    return rec;
}

/* Applies one replayed record. Returns 0, or -1 with the reason in msg. */
static int replay_record(reg_store_t *st, json_t *rec, reg_msg_t *msg)
{
    const char *op = json_string_value(json_object_get(rec, "op"));
    const char *subject = json_string_value(json_object_get(rec, "subject"));

    if (op != NULL && strcmp(op, "config") == 0) {
        reg_level_t level;
        reg_subject_t *sub;
        if (reg_level_parse(json_string_value(json_object_get(rec, "level")), &level) != 0) {
            reg_msg_add(msg, "config record with an unknown level");
            return -1;
        }
        if (subject == NULL)
            st->global = level;
        else if ((sub = subject_find(st, subject)) != NULL || (sub = subject_add(st, subject)))
            sub->level = (int)level;
        return 0;
    }
    if (op != NULL && strcmp(op, "register") == 0 && subject != NULL) {
        json_int_t id = json_integer_value(json_object_get(rec, "id"));
        json_int_t version = json_integer_value(json_object_get(rec, "version"));
        const char *text = json_string_value(json_object_get(rec, "schema"));
        reg_subject_t *sub = subject_find(st, subject);

        if (text != NULL) { /* the first use of this id: the schema itself */
            reg_type_t type;
            reg_schema_t s;
            const char *d64 = json_string_value(json_object_get(rec, "descriptor"));
            uint8_t *desc = NULL;
            long dlen = 0;
            reg_err_t err;
            if (id != (json_int_t)st->n_schemas + 1 ||
                reg_type_parse(json_string_value(json_object_get(rec, "schemaType")), &type) != 0 ||
                (type == REG_PROTOBUF && d64 == NULL)) {
                reg_msg_add(msg, "schema record out of sequence or without its type");
                return -1;
            }
            if (d64 != NULL) {
                if ((desc = malloc(strlen(d64) / 4 * 3 + 1)) == NULL)
                    abort();
                if ((dlen = reg_base64_decode(d64, strlen(d64), desc)) < 0) {
                    free(desc);
                    reg_msg_add(msg, "bad descriptor encoding");
                    return -1;
                }
            }
            err = schema_parse(st, type, text, strlen(text), desc, (size_t)dlen, &s, msg);
            free(desc);
            if (err != REG_ERR_OK)
                return -1;
            schema_push(st, &s);
        }
        if (id < 1 || id > (json_int_t)st->n_schemas) {
            reg_msg_add(msg, "version record names unknown schema id %lld", (long long)id);
            return -1;
        }
        if (sub == NULL)
            sub = subject_add(st, subject);
        if (version != (json_int_t)sub->n + 1) {
            reg_msg_add(msg, "version %lld of %s out of sequence", (long long)version, subject);
            return -1;
        }
        subject_push(sub, (int32_t)id);
        return 0;
    }
    reg_msg_add(msg, "unknown record");
    return -1;
}

static int replay(reg_store_t *st, char *errbuf, size_t errlen)
{
    FILE *f = fdopen(dup(st->fd), "r");
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    off_t good = 0;
    int rc = 0;
    /* a line can hold one schema (JSON-escaped: up to 6 bytes per byte) plus its descriptor */
    size_t max_line = (size_t)st->conf.max_schema_bytes * 8 + (1u << 20);

    if (f == NULL) {
        snprintf(errbuf, errlen, "%s: %s", st->log_path, strerror(errno));
        return -1;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        reg_msg_t msg = {{0}};
        json_t *rec;
        int is_last, torn;

        lineno++;
        is_last = (good + n == st->log_size) || line[n - 1] != '\n';
        torn = line[n - 1] != '\n';
        if ((size_t)n > max_line) {
            snprintf(errbuf, errlen, "%s:%zu: line longer than any record can be", st->log_path,
                     lineno);
            rc = -1;
            break;
        }
        rec = torn ? NULL : json_loadb(line, (size_t)n, 0, NULL);
        if (rec == NULL && is_last) {
            /* a write that crashed half-way: the client never got an answer for it */
            SL_WARN("registry log: ignoring a torn last line", "path=%s line=%zu bytes=%zd",
                    st->log_path, lineno, n);
            if (ftruncate(st->fd, good) != 0) {
                snprintf(errbuf, errlen, "%s: cannot cut the torn line: %s", st->log_path,
                         strerror(errno));
                rc = -1;
            }
            break;
        }
        if (rec == NULL || replay_record(st, rec, &msg) != 0) {
            snprintf(errbuf, errlen, "%s:%zu: corrupt record (%s); refusing to start", st->log_path,
                     lineno, msg.msg[0] ? msg.msg : "not JSON");
            json_decref(rec);
            rc = -1;
            break;
        }
        json_decref(rec);
        good += n;
    }
    free(line);
    fclose(f);
    st->log_size = good;
    return rc;
}

reg_store_t *reg_store_open(const reg_store_conf_t *conf, char *errbuf, size_t errlen)
{
    reg_store_t *st = calloc(1, sizeof(*st));
    struct stat sb;

    if (st == NULL)
        abort();
    st->fd = -1;
    st->conf = *conf;
    st->global = conf->default_level;
    st->data_dir = strdup(conf->data_dir);
    st->protoc = strdup(conf->protoc != NULL ? conf->protoc : "protoc");
    if (st->data_dir == NULL || st->protoc == NULL ||
        asprintf(&st->log_path, "%s/registry.log", conf->data_dir) < 0)
        abort();
    st->conf.data_dir = st->data_dir;
    st->conf.protoc = st->protoc;
    if (mkdir(st->data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(errbuf, errlen, "registry.data_dir %s: %s", st->data_dir, strerror(errno));
        goto Fail;
    }
    if ((st->fd = open(st->log_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        snprintf(errbuf, errlen, "%s: %s", st->log_path, strerror(errno));
        goto Fail;
    }
    if (flock(st->fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(errbuf, errlen, "%s: %s (is another sluice-registry using this data_dir?)",
                 st->log_path, strerror(errno));
        goto Fail;
    }
    if (fstat(st->fd, &sb) != 0) {
        snprintf(errbuf, errlen, "%s: %s", st->log_path, strerror(errno));
        goto Fail;
    }
    st->log_size = sb.st_size;
    if (replay(st, errbuf, errlen) != 0)
        goto Fail;
    SL_INFO("registry log replayed", "path=%s schemas=%zu subjects=%zu bytes=%lld", st->log_path,
            st->n_schemas, st->n_subjects, (long long)st->log_size);
    return st;
Fail:
    reg_store_destroy(st);
    return NULL;
}

void reg_store_destroy(reg_store_t *st)
{
    if (st == NULL)
        return;
    if (st->fd >= 0)
        close(st->fd);
    for (size_t i = 0; i < st->n_schemas; i++)
        schema_dispose(&st->schemas[i]);
    for (size_t i = 0; i < st->n_subjects; i++) {
        free(st->subjects[i].name);
        free(st->subjects[i].ids);
    }
    free(st->schemas);
    free(st->subjects);
    free(st->data_dir);
    free(st->protoc);
    free(st->log_path);
    free(st);
}

/* ------------------------------------------------------------------------------------------ */
/* Operations                                                                                 */

static reg_err_t check_subject_name(const char *subject, reg_msg_t *msg)
{
    size_t len = subject != NULL ? strlen(subject) : 0;
    if (len == 0 || len > MAX_SUBJECT_BYTES) {
        reg_msg_add(msg, "Subject name must be 1 to %d bytes", MAX_SUBJECT_BYTES);
        return REG_ERR_BAD_REQUEST;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)subject[i] < 0x20 || subject[i] == 0x7f) {
            reg_msg_add(msg, "Subject name contains a control character");
            return REG_ERR_BAD_REQUEST;
        }
    return REG_ERR_OK;
}

static reg_err_t check_size(const reg_store_t *st, size_t schema_len, reg_msg_t *msg)
{
    if (schema_len > st->conf.max_schema_bytes) {
        reg_msg_add(msg, "Schema is %zu bytes; registry.max_schema_bytes is %zu", schema_len,
                    st->conf.max_schema_bytes);
        return REG_ERR_TOO_LARGE;
    }
    return REG_ERR_OK;
}

reg_err_t reg_store_register(reg_store_t *st, const char *subject, reg_type_t type,
                             const char *schema, size_t schema_len, int has_references,
                             reg_schema_info_t *out, reg_msg_t *msg)
{
    reg_subject_t *sub;
    reg_schema_t cand = {0};
    const reg_schema_t *existing = NULL;
    reg_err_t err;
    json_t *rec;
    int32_t id;

    if ((err = check_subject_name(subject, msg)) != REG_ERR_OK ||
        (err = check_size(st, schema_len, msg)) != REG_ERR_OK)
        return err;
    if (has_references) {
        reg_msg_add(msg, "Invalid schema: schema references are not supported by this registry");
        return REG_ERR_INVALID_SCHEMA;
    }
    sub = subject_find(st, subject);
    if (type == REG_PROTOBUF)
        existing = proto_find_text(st, schema, schema_len);
    if (existing == NULL) {
        if ((err = schema_parse(st, type, schema, schema_len, NULL, 0, &cand, msg)) != REG_ERR_OK)
            return err;
        if ((existing = schema_find(st, &cand)) != NULL)
            schema_dispose(&cand); /* the stored one stands for it from here on */
    }
    /* already under this subject: the same answer as the first time, nothing written */
    for (size_t v = 0; existing != NULL && sub != NULL && v < sub->n; v++)
        if (sub->ids[v] == existing->id) {
            schema_dispose(&cand);
            fill_info(st, existing->id, sub, (int32_t)v + 1, out);
            return REG_ERR_OK;
        }
    if (sub == NULL && st->n_subjects >= st->conf.max_subjects) {
        reg_msg_add(msg, "registry.max_subjects (%zu) reached", st->conf.max_subjects);
        err = REG_ERR_TOO_LARGE;
        goto Fail;
    }
    if (sub != NULL && sub->n >= st->conf.max_versions) {
        reg_msg_add(msg, "registry.max_versions (%zu) reached for this subject",
                    st->conf.max_versions);
        err = REG_ERR_TOO_LARGE;
        goto Fail;
    }
    if (existing == NULL && st->n_schemas >= st->conf.max_schemas) {
        reg_msg_add(msg, "registry.max_schemas (%zu) reached", st->conf.max_schemas);
        err = REG_ERR_TOO_LARGE;
        goto Fail;
    }
    if (sub != NULL && sub->n > 0) {
        reg_level_t level = effective_level(st, sub);
        const reg_schema_t *c = existing != NULL ? existing : &cand;
        if (level != REG_LEVEL_NONE &&
            !check_versions(st, sub, is_transitive(level) ? 1 : sub->n, sub->n, level, c, msg)) {
            char tmp[sizeof(msg->msg)];
            snprintf(tmp, sizeof(tmp),
                     "Schema being registered is incompatible with an earlier "
                     "schema for subject \"%s\" (%s): %.300s",
                     subject, reg_level_names[level], msg->msg);
            memcpy(msg->msg, tmp, sizeof(tmp));
            err = REG_ERR_INCOMPATIBLE;
            goto Fail;
        }
    }
    if (existing == NULL)
        cand.id = (int32_t)st->n_schemas + 1;
    rec = register_record(st, subject, sub != NULL ? (int32_t)sub->n + 1 : 1,
                          existing != NULL ? existing : &cand, existing == NULL);
    err = log_append(st, rec, msg);
    json_decref(rec);
    if (err != REG_ERR_OK)
        goto Fail;
    id = existing != NULL ? existing->id : schema_push(st, &cand);
    if (sub == NULL)
        sub = subject_add(st, subject);
    subject_push(sub, id);
    SL_INFO("schema registered", "subject=\"%s\" version=%zu id=%d type=%s", sub->name, sub->n,
            (int)id, reg_type_name(type));
    fill_info(st, id, sub, (int32_t)sub->n, out);
    return REG_ERR_OK;
Fail:
    schema_dispose(&cand);
    return err;
}

reg_err_t reg_store_lookup(reg_store_t *st, const char *subject, reg_type_t type,
                           const char *schema, size_t schema_len, reg_schema_info_t *out,
                           reg_msg_t *msg)
{
    reg_subject_t *sub = subject_find(st, subject);
    reg_schema_t cand = {0};
    const reg_schema_t *existing = NULL;
    reg_err_t err;

    if (sub == NULL || sub->n == 0) {
        reg_msg_add(msg, "Subject '%s' not found.", subject);
        return REG_ERR_SUBJECT_NOT_FOUND;
    }
    if ((err = check_size(st, schema_len, msg)) != REG_ERR_OK)
        return err;
    if (type == REG_PROTOBUF)
        existing = proto_find_text(st, schema, schema_len);
    if (existing == NULL) {
        if ((err = schema_parse(st, type, schema, schema_len, NULL, 0, &cand, msg)) != REG_ERR_OK)
            return err;
        existing = schema_find(st, &cand);
        schema_dispose(&cand);
    }
    for (size_t v = sub->n; existing != NULL && v > 0; v--)
        if (sub->ids[v - 1] == existing->id) {
            fill_info(st, existing->id, sub, (int32_t)v, out);
            return REG_ERR_OK;
        }
    reg_msg_add(msg, "Schema not found");
    return REG_ERR_SCHEMA_NOT_FOUND;
}

reg_err_t reg_store_by_id(reg_store_t *st, int32_t id, reg_schema_info_t *out, reg_msg_t *msg)
{
    if (id < 1 || (size_t)id > st->n_schemas) {
        reg_msg_add(msg, "Schema %d not found", (int)id);
        return REG_ERR_SCHEMA_NOT_FOUND;
    }
    fill_info(st, id, NULL, 0, out);
    return REG_ERR_OK;
}

reg_err_t reg_store_version(reg_store_t *st, const char *subject, int32_t version,
                            reg_schema_info_t *out, reg_msg_t *msg)
{
    reg_subject_t *sub = subject_find(st, subject);

    if (sub == NULL || sub->n == 0) {
        reg_msg_add(msg, "Subject '%s' not found.", subject);
        return REG_ERR_SUBJECT_NOT_FOUND;
    }
    if (version == -1)
        version = (int32_t)sub->n;
    if (version < 1) {
        reg_msg_add(msg,
                    "The specified version '%d' is not a valid version id. Allowed values "
                    "are between [1, 2^31-1] and the string \"latest\"",
                    (int)version);
        return REG_ERR_INVALID_VERSION;
    }
    if ((size_t)version > sub->n) {
        reg_msg_add(msg, "Version %d not found.", (int)version);
        return REG_ERR_VERSION_NOT_FOUND;
    }
    fill_info(st, sub->ids[version - 1], sub, version, out);
    return REG_ERR_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t reg_store_subjects(reg_store_t *st, const char ***names)
{
    size_t n = 0;
    *names = calloc(st->n_subjects + 1, sizeof(**names));
    if (*names == NULL)
        abort();
    for (size_t i = 0; i < st->n_subjects; i++)
        if (st->subjects[i].n > 0)
            (*names)[n++] = st->subjects[i].name;
    qsort(*names, n, sizeof(**names), cmp_names);
    return n;
}

reg_err_t reg_store_versions(reg_store_t *st, const char *subject, int32_t *count, reg_msg_t *msg)
{
    reg_subject_t *sub = subject_find(st, subject);
    if (sub == NULL || sub->n == 0) {
        reg_msg_add(msg, "Subject '%s' not found.", subject);
        return REG_ERR_SUBJECT_NOT_FOUND;
    }
    *count = (int32_t)sub->n;
    return REG_ERR_OK;
}

reg_err_t reg_store_check(reg_store_t *st, const char *subject, int32_t version, reg_type_t type,
                          const char *schema, size_t schema_len, int *is_compatible, reg_msg_t *msg)
{
    reg_subject_t *sub = subject_find(st, subject);
    reg_schema_t cand = {0};
    reg_level_t level;
    reg_err_t err;
    size_t from, to;

    *is_compatible = 0;
    if (sub == NULL || sub->n == 0) {
        reg_msg_add(msg, "Subject '%s' not found.", subject);
        return REG_ERR_SUBJECT_NOT_FOUND;
    }
    if (version == -1)
        version = (int32_t)sub->n;
    if (version < 0) {
        reg_msg_add(msg, "The specified version '%d' is not a valid version id.", (int)version);
        return REG_ERR_INVALID_VERSION;
    }
    if ((size_t)version > sub->n) {
        reg_msg_add(msg, "Version %d not found.", (int)version);
        return REG_ERR_VERSION_NOT_FOUND;
    }
    if ((err = check_size(st, schema_len, msg)) != REG_ERR_OK ||
        (err = schema_parse(st, type, schema, schema_len, NULL, 0, &cand, msg)) != REG_ERR_OK)
        return err;
    level = effective_level(st, sub);
    if (version > 0) {
        from = to = (size_t)version;
    } else {
        to = sub->n;
        from = is_transitive(level) ? 1 : sub->n;
    }
    *is_compatible =
        level == REG_LEVEL_NONE || check_versions(st, sub, from, to, level, &cand, msg);
    schema_dispose(&cand);
    return REG_ERR_OK;
}

reg_err_t reg_store_get_level(reg_store_t *st, const char *subject, int default_to_global,
                              reg_level_t *out, reg_msg_t *msg)
{
    reg_subject_t *sub;
    if (subject == NULL) {
        *out = st->global;
        return REG_ERR_OK;
    }
    sub = subject_find(st, subject);
    if (sub != NULL && sub->level >= 0) {
        *out = (reg_level_t)sub->level;
        return REG_ERR_OK;
    }
    if (default_to_global) {
        *out = st->global;
        return REG_ERR_OK;
    }
    reg_msg_add(msg, "Subject '%s' does not have subject-level compatibility configured", subject);
    return REG_ERR_SUBJECT_CONFIG_NOT_FOUND;
}

reg_err_t reg_store_set_level(reg_store_t *st, const char *subject, reg_level_t level,
                              reg_msg_t *msg)
{
    reg_subject_t *sub = NULL;
    json_t *rec;
    reg_err_t err;

    if (subject != NULL) {
        if ((err = check_subject_name(subject, msg)) != REG_ERR_OK)
            return err;
        if ((sub = subject_find(st, subject)) == NULL && st->n_subjects >= st->conf.max_subjects) {
            reg_msg_add(msg, "registry.max_subjects (%zu) reached", st->conf.max_subjects);
            return REG_ERR_TOO_LARGE;
        }
    }
    rec = json_pack("{s:s, s:s}", "op", "config", "level", reg_level_names[level]);
    if (rec == NULL)
        abort();
    if (subject != NULL)
        json_object_set_new(rec, "subject", json_string(subject));
    err = log_append(st, rec, msg);
    json_decref(rec);
    if (err != REG_ERR_OK)
        return err;
    if (subject == NULL) {
        st->global = level;
    } else {
        if (sub == NULL)
            sub = subject_add(st, subject);
        sub->level = (int)level;
    }
    SL_INFO("compatibility set", "subject=\"%s\" level=%s", subject ? subject : "(global)",
            reg_level_names[level]);
    return REG_ERR_OK;
}
