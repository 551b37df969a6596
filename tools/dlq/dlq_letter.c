/* One dead letter: Kafka headers (API.md, "Topic events.dlq") -> fields -> the JSON record that
 * `tail` prints. No I/O here, so the mapping is unit-tested without a broker. */
#include <stdlib.h>
#include <string.h>

#include "dlq.h"

void dlq_letter_init(dlq_letter_t *l)
{
    memset(l, 0, sizeof(*l));
    l->offset = -1;
    l->timestamp = -1;
    l->received_at = -1;
    l->schema_id = -1;
    l->retryable = -1;
}

void dlq_letter_dispose(dlq_letter_t *l)
{
    char **strs[] = {&l->code,    &l->stage,           &l->path,         &l->detail,
                     &l->tenant,  &l->event_id,        &l->content_type, &l->schema_subject,
                     &l->gateway, &l->received_at_text};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        free(*strs[i]);
    free(l->value);
    dlq_letter_init(l);
}

static char *copy_text(const void *value, size_t len)
{
    if (len > DLQ_MAX_HEADER_BYTES)
        len = DLQ_MAX_HEADER_BYTES;
    char *s = malloc(len + 1);
    if (s == NULL)
        abort();
    memcpy(s, value, len);
    s[len] = '\0';
    return s;
}

/* Decimal text -> value; -1 when it is not a plain non-negative decimal of at most 18 digits. */
static int64_t parse_decimal(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18 || strspn(s, "0123456789") != n)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

void dlq_letter_set_header(dlq_letter_t *l, const char *name, const void *value, size_t len)
{
    static const struct {
        const char *name;
        size_t field; /* offset of the char * in dlq_letter_t */
    } text[] = {
        {"dlq.code", offsetof(dlq_letter_t, code)},
        {"dlq.stage", offsetof(dlq_letter_t, stage)},
        {"dlq.path", offsetof(dlq_letter_t, path)},
        {"dlq.detail", offsetof(dlq_letter_t, detail)},
        {"tenant", offsetof(dlq_letter_t, tenant)},
        {"event_id", offsetof(dlq_letter_t, event_id)},
        {"content_type", offsetof(dlq_letter_t, content_type)},
        {"schema_subject", offsetof(dlq_letter_t, schema_subject)},
        {"gateway", offsetof(dlq_letter_t, gateway)},
        {"received_at", offsetof(dlq_letter_t, received_at_text)},
    };
    if (name == NULL)
        return;
    if (strcmp(name, "dlq.retryable") == 0) {
        l->retryable = value == NULL                                ? -1
                       : len == 4 && memcmp(value, "true", 4) == 0  ? 1
                       : len == 5 && memcmp(value, "false", 5) == 0 ? 0
                                                                    : -1;
        return;
    }
    if (strcmp(name, "dlq.truncated") == 0) {
        l->is_truncated = value != NULL && len == 4 && memcmp(value, "true", 4) == 0;
        return;
    }
    if (strcmp(name, "schema_id") == 0) {
        char *s = value != NULL ? copy_text(value, len) : NULL;
        l->schema_id = s != NULL ? parse_decimal(s) : -1;
        free(s);
        return;
    }
    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
        if (strcmp(name, text[i].name) != 0)
            continue;
        char **field = (char **)((char *)l + text[i].field);
        free(*field);
        *field = value != NULL ? copy_text(value, len) : NULL;
        if (field == &l->received_at_text)
            l->received_at = *field != NULL ? parse_decimal(*field) : -1;
        return;
    }
}

void dlq_letter_set_value(dlq_letter_t *l, const void *value, size_t len)
{
    free(l->value);
    l->value = NULL;
    l->value_len = 0;
    if (value == NULL)
        return;
    if (len > DLQ_MAX_VALUE_BYTES)
        len = DLQ_MAX_VALUE_BYTES;
    /* +1 so an empty value is still a non-NULL buffer, and the copy is NUL-terminated */
    l->value = malloc(len + 1);
    if (l->value == NULL)
        abort();
    memcpy(l->value, value, len);
    l->value[len] = '\0';
    l->value_len = len;
}

/* Length of the valid UTF-8 sequence at s[0..len), or 0 when it is not one. */
static size_t utf8_seq(const uint8_t *s, size_t len)
{
    uint8_t c = s[0];
    size_t n;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int dlq_utf8_is_valid(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(s + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

/* A JSON string of header text; bytes that are not UTF-8 become U+FFFD so one bad header never
 * hides the record. */
static json_t *text_json(const char *s)
{
    if (s == NULL)
        return json_null();
    size_t len = strlen(s);
    if (dlq_utf8_is_valid((const uint8_t *)s, len))
        return json_stringn(s, len);
    char *clean = malloc(len * 3 + 1); /* each bad byte grows to 3 bytes at most */
    if (clean == NULL)
        abort();
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq((const uint8_t *)s + i, len - i);
        if (n == 0) {
            memcpy(clean + o, "\xef\xbf\xbd", 3);
            o += 3, i++;
        } else {
            memcpy(clean + o, s + i, n);
            o += n, i += n;
        }
    }
    json_t *j = json_stringn(clean, o);
    free(clean);
    return j;
}

char *dlq_base64(const uint8_t *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL)
        abort();
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[o++] = tbl[v >> 18], out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63], out[o++] = tbl[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        out[o++] = tbl[v >> 18], out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static json_t *int_or_null(int64_t v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

json_t *dlq_letter_to_json(const dlq_letter_t *l)
{
    json_t *j = json_object();
    json_object_set_new(j, "partition", json_integer(l->partition));
    json_object_set_new(j, "offset", json_integer(l->offset));
    json_object_set_new(j, "timestamp", int_or_null(l->timestamp));
    json_object_set_new(j, "code", text_json(l->code));
    json_object_set_new(j, "stage", text_json(l->stage));
    json_object_set_new(j, "path", text_json(l->path));
    json_object_set_new(j, "detail", text_json(l->detail));
    json_object_set_new(j, "retryable",
                        l->retryable < 0 ? json_null() : json_boolean(l->retryable));
    json_object_set_new(j, "tenant", text_json(l->tenant));
    json_object_set_new(j, "event_id", text_json(l->event_id));
    /* received_at as the number it is; the raw text only when it is not one */
    json_object_set_new(j, "received_at",
                        l->received_at >= 0 ? json_integer(l->received_at)
                                            : text_json(l->received_at_text));
    json_object_set_new(j, "content_type", text_json(l->content_type));
    json_object_set_new(j, "schema_subject", text_json(l->schema_subject));
    json_object_set_new(j, "schema_id", int_or_null(l->schema_id));
    json_object_set_new(j, "gateway", text_json(l->gateway));
    json_object_set_new(j, "truncated", json_boolean(l->is_truncated));
    if (l->value == NULL) {
        json_object_set_new(j, "value", json_null());
    } else if (dlq_utf8_is_valid(l->value, l->value_len)) {
        json_object_set_new(j, "value", json_stringn((const char *)l->value, l->value_len));
    } else {
        char *b64 = dlq_base64(l->value, l->value_len);
        json_object_set_new(j, "value_base64", json_string(b64));
        free(b64);
    }
    return j;
}
