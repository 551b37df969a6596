/* Protobuf schemas in the registry: .proto text becomes a serialized FileDescriptorProto by
 * running protoc (the only complete .proto parser on the machine) in a private temporary
 * directory with a deadline; the descriptor is then read with a small wire-format reader that
 * keeps what the compatibility rules need (messages, field numbers, labels, types). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "reg_int.h"
#include "sl_log.h"

extern char **environ;

/* A descriptor this large is far beyond any schema we accept (max_schema_bytes caps the text);
 * reading stops here instead of trusting the file. */
#define MAX_DESCRIPTOR_BYTES (16u << 20)
#define MAX_MESSAGES 4096
#define MAX_FIELDS 65536 /* over all messages */

typedef struct {
    char *name; /* field name, for messages */
    int32_t number;
    int label;       /* 1 optional, 2 required, 3 repeated */
    int type;        /* FieldDescriptorProto.Type */
    char *type_name; /* ".pkg.Msg" for messages and enums; NULL otherwise */
} proto_field_t;

typedef struct {
    char *full_name; /* ".pkg.Outer.Inner" */
    proto_field_t *fields;
    size_t n_fields;
} proto_msg_t;

struct reg_proto {
    uint8_t *desc;
    size_t desc_len;
    proto_msg_t *msgs;
    size_t n_msgs, total_fields;
};

/* ------------------------------------------------------------------------------------------ */
/* base64                                                                                     */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t reg_base64_encode(const uint8_t *data, size_t len, char *out)
{
    size_t o = 0, i;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_val(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

long reg_base64_decode(const char *s, size_t len, uint8_t *out)
{
    size_t o = 0;
    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad || (v[k] = b64_val(s[i + k])) < 0)
                return -1;
        }
        uint32_t x =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(x >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(x >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)x;
    }
    return (long)o;
}

/* ------------------------------------------------------------------------------------------ */
/* Wire format reader                                                                         */

typedef struct {
    const uint8_t *p, *end;
} wire_t;

static int wire_varint(wire_t *w, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (w->p >= w->end)
            return -1;
        uint8_t b = *w->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* Next field: its number and wire type; LEN fields give their bytes in *sub. Other wire types
 * are skipped for the caller, varints returned in *v. Returns 1, 0 at the end, -1 malformed. */
static int wire_next(wire_t *w, uint32_t *field, uint64_t *v, wire_t *sub)
{
    uint64_t key, len;
    if (w->p == w->end)
        return 0;
    if (wire_varint(w, &key) != 0)
        return -1;
    *field = (uint32_t)(key >> 3);
    switch (key & 7) {
    case 0:
        return wire_varint(w, v) == 0 ? 1 : -1;
    case 1:
        if (w->end - w->p < 8)
            return -1;
        w->p += 8;
        return 1;
    case 2:
        if (wire_varint(w, &len) != 0 || len > (uint64_t)(w->end - w->p))
            return -1;
        sub->p = w->p;
        sub->end = w->p + len;
        w->p += len;
        return 1;
    case 5:
        if (w->end - w->p < 4)
            return -1;
        w->p += 4;
        return 1;
    default:
        return -1; /* groups (3, 4) never appear in descriptors */
    }
}

static char *wire_strdup(const wire_t *s)
{
    return strndup((const char *)s->p, (size_t)(s->end - s->p));
}

static int parse_field(reg_proto_t *pr, proto_msg_t *m, wire_t w)
{
    proto_field_t *f;
    uint32_t num;
    uint64_t v = 0;
    wire_t sub = {0};
    int rc;

    if (pr->total_fields >= MAX_FIELDS)
        return -1;
    if ((m->fields = realloc(m->fields, (m->n_fields + 1) * sizeof(*m->fields))) == NULL)
        abort();
    f = &m->fields[m->n_fields++];
    memset(f, 0, sizeof(*f));
    pr->total_fields++;
    while ((rc = wire_next(&w, &num, &v, &sub)) == 1) {
        if (num == 1 && f->name == NULL)
            f->name = wire_strdup(&sub);
        else if (num == 3)
            f->number = (int32_t)v;
        else if (num == 4)
            f->label = (int)v;
        else if (num == 5)
            f->type = (int)v;
        else if (num == 6 && f->type_name == NULL)
            f->type_name = wire_strdup(&sub);
    }
    return rc;
}

static int parse_message(reg_proto_t *pr, const char *scope, wire_t w, int depth)
{
    uint32_t num;
    uint64_t v;
    wire_t sub = {0}, scan = w;
    char *name = NULL;
    size_t idx;
    int rc;

    if (depth > REG_MAX_SCHEMA_DEPTH || pr->n_msgs >= MAX_MESSAGES)
        return -1;
    /* the name first: nested types and fields are filed under it */
    while ((rc = wire_next(&scan, &num, &v, &sub)) == 1)
        if (num == 1 && name == NULL)
            name = wire_strdup(&sub);
    if (rc != 0 || name == NULL) {
        free(name);
        return -1;
    }
    if ((pr->msgs = realloc(pr->msgs, (pr->n_msgs + 1) * sizeof(*pr->msgs))) == NULL)
        abort();
    idx = pr->n_msgs++;
    memset(&pr->msgs[idx], 0, sizeof(pr->msgs[idx]));
    if (asprintf(&pr->msgs[idx].full_name, "%s.%s", scope, name) < 0)
        abort();
    free(name);
    while ((rc = wire_next(&w, &num, &v, &sub)) == 1) {
        if (num == 2 && parse_field(pr, &pr->msgs[idx], sub) != 0)
            return -1;
        /* pr->msgs may move while nested types are added: copy the scope first */
        if (num == 3) {
            char *nested_scope = strdup(pr->msgs[idx].full_name);
            int nrc = parse_message(pr, nested_scope, sub, depth + 1);
            free(nested_scope);
            if (nrc != 0)
                return -1;
        }
    }
    return rc;
}

static int parse_file(reg_proto_t *pr)
{
    wire_t w = {pr->desc, pr->desc + pr->desc_len}, sub = {0}, scan = w;
    uint32_t num;
    uint64_t v;
    char scope[512] = "";
    int rc;

    while ((rc = wire_next(&scan, &num, &v, &sub)) == 1)
        if (num == 2) /* package */
            snprintf(scope, sizeof(scope), ".%.*s", (int)(sub.end - sub.p), (const char *)sub.p);
    if (rc != 0)
        return -1;
    while ((rc = wire_next(&w, &num, &v, &sub)) == 1)
        if (num == 4 && parse_message(pr, scope, sub, 0) != 0)
            return -1;
    return rc;
}

void reg_proto_destroy(reg_proto_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_msgs; i++) {
        for (size_t k = 0; k < p->msgs[i].n_fields; k++) {
            free(p->msgs[i].fields[k].name);
            free(p->msgs[i].fields[k].type_name);
        }
        free(p->msgs[i].fields);
        free(p->msgs[i].full_name);
    }
    free(p->msgs);
    free(p->desc);
    free(p);
}

reg_proto_t *reg_proto_from_descriptor(const uint8_t *desc, size_t len, reg_msg_t *err)
{
    reg_proto_t *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->desc = malloc(len ? len : 1)) == NULL)
        abort();
    memcpy(p->desc, desc, len);
    p->desc_len = len;
    if (parse_file(p) != 0) {
        reg_msg_add(err, "Invalid schema: malformed or oversized FileDescriptorProto");
        reg_proto_destroy(p);
        return NULL;
    }
    return p;
}

const uint8_t *reg_proto_descriptor(const reg_proto_t *p, size_t *len)
{
    *len = p->desc_len;
    return p->desc;
}

/* ------------------------------------------------------------------------------------------ */
/* protoc                                                                                     */

static int write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    size_t off = 0;
    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    return close(fd);
}

/* Reads at most max bytes of path into a malloc'd buffer; -1 when missing or larger. */
static long read_file(const char *path, size_t max, uint8_t **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    uint8_t *buf;
    size_t off = 0;

    *out = NULL;
    if (fd < 0)
        return -1;
    if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size > max) {
        close(fd);
        return -1;
    }
    if ((buf = malloc((size_t)sb.st_size + 1)) == NULL)
        abort();
    while (off < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + off, (size_t)sb.st_size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    buf[off] = 0;
    *out = buf;
    return (long)off;
}

/* Runs protoc; 0 exit status, 1 protoc refused the text (its message in errtext), -1 could not
 * run or timed out (reason in err). */
static int run_protoc(const char *protoc, int64_t timeout_ms, const char *dir, reg_msg_t *err)
{
    char proto_path[600], out_arg[600], in[600], errlog[600];
    char *argv[] = {(char *)protoc, proto_path, out_arg, in, NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status = 0, rc;
    uint64_t deadline = sl_now_ms() + (uint64_t)timeout_ms;

    snprintf(proto_path, sizeof(proto_path), "--proto_path=%s", dir);
    snprintf(out_arg, sizeof(out_arg), "--descriptor_set_out=%s/out.pb", dir);
    snprintf(in, sizeof(in), "%s/schema.proto", dir);
    snprintf(errlog, sizeof(errlog), "%s/protoc.err", dir);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    rc = posix_spawnp(&pid, protoc, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        reg_msg_add(err, "cannot run %s: %s", protoc, strerror(rc));
        return -1;
    }
    /* protoc takes ~20 ms; poll its exit with a deadline rather than trust it to finish */
    while ((rc = (int)waitpid(pid, &status, WNOHANG)) == 0) {
        if (sl_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            reg_msg_add(err, "protoc did not finish within %lld ms", (long long)timeout_ms);
            return -1;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (rc < 0) {
        reg_msg_add(err, "waiting for protoc: %s", strerror(errno));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
        return 1;
    reg_msg_add(err, "protoc failed (status %d)", status);
    return -1;
}

/* protoc's complaint without our temporary directory in it, first line only. */
static void protoc_message(const char *dir, reg_msg_t *err)
{
    char path[600];
    uint8_t *text = NULL;
    char *line, *nl, *at;
    size_t dlen = strlen(dir);

    snprintf(path, sizeof(path), "%s/protoc.err", dir);
    if (read_file(path, 1 << 20, &text) < 0 || text[0] == '\0') {
        reg_msg_add(err, "Invalid schema: protoc rejected it");
        free(text);
        return;
    }
    line = (char *)text;
    /* skip protoc's warnings (e.g. "No syntax specified"): the first error line is the reason */
    while (strstr(line, "warning:") != NULL && (nl = strchr(line, '\n')) != NULL && nl[1])
        line = nl + 1;
    if ((nl = strchr(line, '\n')) != NULL)
        *nl = '\0';
    while ((at = strstr(line, dir)) != NULL) {
        size_t skip = dlen + (at[dlen] == '/' ? 1 : 0);
        memmove(at, at + skip, strlen(at + skip) + 1);
    }
    reg_msg_add(err, "Invalid schema: %.400s", line);
    free(text);
}

reg_proto_t *reg_proto_compile(const char *protoc, int64_t timeout_ms, const char *text, size_t len,
                               reg_msg_t *err)
{
    char dir[512], path[600];
    const char *tmp = getenv("TMPDIR");
    uint8_t *set = NULL;
    long set_len;
    reg_proto_t *p = NULL;
    int rc;

    snprintf(dir, sizeof(dir), "%s/sluice-registry-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        reg_msg_add(err, "cannot create a temporary directory: %s", strerror(errno));
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/schema.proto", dir);
    if (write_file(path, text, len) != 0) {
        reg_msg_add(err, "cannot write the schema for protoc: %s", strerror(errno));
        goto Done;
    }
    if ((rc = run_protoc(protoc, timeout_ms, dir, err)) != 0) {
        if (rc == 1)
            protoc_message(dir, err);
        goto Done;
    }
    snprintf(path, sizeof(path), "%s/out.pb", dir);
    if ((set_len = read_file(path, MAX_DESCRIPTOR_BYTES, &set)) < 0) {
        reg_msg_add(err, "protoc wrote no descriptor");
        goto Done;
    }
    {
        /* a FileDescriptorSet: field 1 is the one FileDescriptorProto (no --include_imports) */
        wire_t w = {set, set + set_len}, sub = {0};
        uint32_t num;
        uint64_t v;
        while ((rc = wire_next(&w, &num, &v, &sub)) == 1 && num != 1)
            ;
        if (rc != 1) {
            reg_msg_add(err, "protoc's descriptor set holds no file");
            goto Done;
        }
        p = reg_proto_from_descriptor(sub.p, (size_t)(sub.end - sub.p), err);
    }
Done:
    free(set);
    /* the directory holds exactly these names */
    const char *names[] = {"schema.proto", "out.pb", "protoc.err"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Compatibility                                                                              */

enum {
    T_DOUBLE = 1,
    T_FLOAT,
    T_INT64,
    T_UINT64,
    T_INT32,
    T_FIXED64,
    T_FIXED32,
    T_BOOL,
    T_STRING,
    T_GROUP,
    T_MESSAGE,
    T_BYTES,
    T_UINT32,
    T_ENUM,
    T_SFIXED32,
    T_SFIXED64,
    T_SINT32,
    T_SINT64
};

/* Types whose encodings read back as each other (protobuf's "Updating a message type" rules). */
static int wire_class(int type)
{
    switch (type) {
    case T_INT32:
    case T_INT64:
    case T_UINT32:
    case T_UINT64:
    case T_BOOL:
        return 1;
    case T_SINT32:
    case T_SINT64:
        return 2;
    case T_FIXED32:
    case T_SFIXED32:
        return 3;
    case T_FIXED64:
    case T_SFIXED64:
        return 4;
    case T_STRING:
    case T_BYTES:
        return 5;
    default:
        return 100 + type; /* only the same type */
    }
}

static const proto_msg_t *find_msg(const reg_proto_t *p, const char *full_name)
{
    for (size_t i = 0; i < p->n_msgs; i++)
        if (strcmp(p->msgs[i].full_name, full_name) == 0)
            return &p->msgs[i];
    return NULL;
}

static const proto_field_t *find_field(const proto_msg_t *m, int32_t number)
{
    for (size_t i = 0; i < m->n_fields; i++)
        if (m->fields[i].number == number)
            return &m->fields[i];
    return NULL;
}

int reg_proto_can_read(const reg_proto_t *writer, const reg_proto_t *reader, const char *what,
                       reg_msg_t *why)
{
    int ok = 1;
#define WHY(...)                                                                                   \
    do {                                                                                           \
        reg_msg_add(why, "%s%s: ", why->msg[0] ? "; " : "", what);                                 \
        reg_msg_add(why, __VA_ARGS__);                                                             \
        ok = 0;                                                                                    \
    } while (0)

    for (size_t i = 0; i < writer->n_msgs; i++) {
        const proto_msg_t *wm = &writer->msgs[i], *rm = find_msg(reader, wm->full_name);
        if (rm == NULL) {
            WHY("message %s was removed", wm->full_name + 1);
            continue;
        }
        for (size_t k = 0; k < wm->n_fields; k++) {
            const proto_field_t *wf = &wm->fields[k], *rf = find_field(rm, wf->number);
            if (rf == NULL)
                continue; /* the reader skips unknown field numbers */
            if (wire_class(wf->type) != wire_class(rf->type) ||
                ((wf->type == T_MESSAGE || wf->type == T_ENUM || wf->type == T_GROUP) &&
                 strcmp(wf->type_name ? wf->type_name : "", rf->type_name ? rf->type_name : "")))
                WHY("field %d of %s changed to an incompatible type", (int)wf->number,
                    wm->full_name + 1);
            else if ((wf->label == 3) != (rf->label == 3))
                WHY("field %d of %s changed between repeated and singular", (int)wf->number,
                    wm->full_name + 1);
        }
        for (size_t k = 0; k < rm->n_fields; k++)
            if (rm->fields[k].label == 2 && find_field(wm, rm->fields[k].number) == NULL)
                WHY("required field %d of %s is missing from the writer", (int)rm->fields[k].number,
                    wm->full_name + 1);
    }
#undef WHY
    return ok;
}
