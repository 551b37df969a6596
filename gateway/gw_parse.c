/* From request bytes to a parsed batch: gzip inflate with a hard cap, then one pass of the JSON
 * pull scanner over the body that slices out each event and checks its envelope. No DOM. */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "gw_int.h"
#include "sl_json.h"

int gw_body_is_gzip(const char *body, size_t len)
{
    return len >= 2 && (unsigned char)body[0] == 0x1f && (unsigned char)body[1] == 0x8b;
}

sl_err_t gw_body_gunzip(const char *in, size_t len, char *scratch, size_t scratch_cap,
                        size_t *out_len)
{
    z_stream zs;
    int rc;
    sl_err_t err = SL_ERR_OK;

    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper only */
        return SL_ERR_INTERNAL;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)scratch;
    zs.avail_out = (uInt)scratch_cap;
    rc = inflate(&zs, Z_FINISH);
    if (rc == Z_STREAM_END) {
        /* trailing bytes after the gzip member (concatenated members, junk) are refused */
        if (zs.avail_in != 0)
            err = SL_ERR_MALFORMED_GZIP;
    } else if ((rc == Z_BUF_ERROR || rc == Z_OK) && zs.avail_out == 0) {
        err = SL_ERR_DECOMPRESSED_TOO_LARGE;
    } else {
        err = SL_ERR_MALFORMED_GZIP; /* truncated stream, bad header, bad checksum */
    }
    *out_len = zs.total_out;
    inflateEnd(&zs);
    return err;
}

int gw_is_uuid(const char *s, size_t len)
{
    static const unsigned char is_hex[256] = {
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
        ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
        ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1};
    if (len != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_hex[(unsigned char)s[i]]) {
            return 0;
        }
    }
    return 1;
}

typedef struct {
    gw_alloc_fn alloc;
    void *actx;
} parse_ctx_t;

/* Returns the decoded text of the current STRING token (the input span when unescaped). */
static const char *token_text(const parse_ctx_t *pc, const sl_json_t *j, size_t *len)
{
    if (!j->str_has_escapes) {
        *len = j->str_len;
        return j->str;
    }
    char *out = pc->alloc(pc->actx, j->str_len + 1);
    *len = sl_json_unescape(j->str, j->str_len, out);
    out[*len] = '\0';
    return out;
}

/* The current KEY token's name, decoded when it has escapes: "event_\u0069d" must be the
 * event_id it is to any JSON reader downstream, or an envelope check could be bypassed. Names
 * longer than the buffer are no known field: they come back as the empty name. */
static const char *key_name(const sl_json_t *j, char *buf, size_t cap, size_t *len)
{
    if (!j->str_has_escapes) {
        *len = j->str_len;
        return j->str;
    }
    *len = j->str_len < cap ? sl_json_unescape(j->str, j->str_len, buf) : 0;
    return buf;
}

static void event_fail(gw_event_t *ev, sl_err_t err, const char *path, const char *detail)
{
    if (ev->err == SL_ERR_OK) { /* the first problem is the one reported */
        ev->err = err;
        ev->err_path = path;
        ev->err_detail = detail;
    }
}

enum {
    SEEN_EVENT_ID = 1,
    SEEN_EVENT_TYPE = 2,
    SEEN_TS = 4,
    SEEN_USER_ID = 8,
    SEEN_SESSION_ID = 16,
    SEEN_PAGE_ID = 32,
    SEEN_PROPERTIES = 64,
    SEEN_SCHEMA_VERSION = 128,
};

/* Scans one event object (its OBJ_BEGIN was just returned) and checks the envelope. Returns -1
 * only on a JSON syntax error (the whole body is then malformed). */
static int parse_event(const parse_ctx_t *pc, sl_json_t *j, gw_event_t *ev)
{
    unsigned seen = 0;
    sl_json_tok_t t;

    while ((t = sl_json_next(j)) == SL_JSON_KEY) {
        char name[32];
        size_t klen;
        const char *k = key_name(j, name, sizeof(name), &klen);
        unsigned bit = 0;
        const char *path = "";

        if (SL_JSON_EQ(k, klen, "event_id"))
            bit = SEEN_EVENT_ID, path = "event_id";
        else if (SL_JSON_EQ(k, klen, "event_type"))
            bit = SEEN_EVENT_TYPE, path = "event_type";
        else if (SL_JSON_EQ(k, klen, "ts"))
            bit = SEEN_TS, path = "ts";
        else if (SL_JSON_EQ(k, klen, "user_id"))
            bit = SEEN_USER_ID, path = "user_id";
        else if (SL_JSON_EQ(k, klen, "session_id"))
            bit = SEEN_SESSION_ID, path = "session_id";
        else if (SL_JSON_EQ(k, klen, "page_id"))
            bit = SEEN_PAGE_ID, path = "page_id";
        else if (SL_JSON_EQ(k, klen, "properties"))
            bit = SEEN_PROPERTIES, path = "properties";
        else if (SL_JSON_EQ(k, klen, "schema_version"))
            bit = SEEN_SCHEMA_VERSION, path = "schema_version";
        if (bit != 0 && (seen & bit))
            event_fail(ev, SL_ERR_DUPLICATE_KEY, path, "field appears twice");
        seen |= bit;

        t = sl_json_next(j);
        if (t == SL_JSON_ERROR)
            return -1;
        switch (bit) {
        case SEEN_EVENT_ID:
        case SEEN_EVENT_TYPE:
        case SEEN_USER_ID: {
            size_t len;
            const char *s;
            if (t != SL_JSON_STRING) {
                event_fail(ev, SL_ERR_BAD_TYPE, path, "expected string");
                break;
            }
            s = token_text(pc, j, &len);
            if (len == 0) {
                event_fail(ev, SL_ERR_MISSING_FIELD, path, "must not be empty");
            } else if (bit == SEEN_EVENT_ID) {
                if (!gw_is_uuid(s, len))
                    event_fail(ev, SL_ERR_BAD_UUID, path, "expected a UUID like "
                                                          "9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11");
                ev->event_id = s, ev->event_id_len = len;
            } else if (bit == SEEN_EVENT_TYPE) {
                ev->event_type = s, ev->event_type_len = len;
            } else {
                ev->user_id = s, ev->user_id_len = len;
            }
            break;
        }
        case SEEN_TS:
        case SEEN_SCHEMA_VERSION: {
            int64_t v;
            int rc;
            if (t != SL_JSON_NUMBER) {
                event_fail(ev, SL_ERR_BAD_TYPE, path, "expected an integer");
                break;
            }
            rc = sl_json_to_i64(j->str, j->str_len, &v);
            if (rc == -1)
                event_fail(ev, SL_ERR_BAD_TYPE, path, "expected an integer");
            else if (rc != 0 || v < 0)
                event_fail(ev, SL_ERR_BAD_VALUE, path, "out of range");
            else if (bit == SEEN_TS)
                ev->ts = v;
            else if (v == 0 || v > INT32_MAX)
                event_fail(ev, SL_ERR_BAD_VALUE, path, "a version is 1 or more");
            else
                ev->schema_version = (int32_t)v;
            break;
        }
        case SEEN_SESSION_ID:
            if (t != SL_JSON_STRING && t != SL_JSON_NULL)
                event_fail(ev, SL_ERR_BAD_TYPE, path, "expected string or null");
            break;
        case SEEN_PAGE_ID: {
            int64_t v;
            if (t == SL_JSON_NULL)
                break;
            if (t != SL_JSON_NUMBER || sl_json_to_i64(j->str, j->str_len, &v) == -1)
                event_fail(ev, SL_ERR_BAD_TYPE, path, "expected an integer or null");
            else if (sl_json_to_i64(j->str, j->str_len, &v) != 0)
                event_fail(ev, SL_ERR_BAD_VALUE, path, "out of range");
            break;
        }
        case SEEN_PROPERTIES:
            if (t != SL_JSON_OBJ_BEGIN)
                event_fail(ev, SL_ERR_BAD_TYPE, path, "expected an object");
            break;
        default:
            break; /* other fields belong to the event's schema (validated by schema/) */
        }
        if ((t == SL_JSON_OBJ_BEGIN || t == SL_JSON_ARR_BEGIN) && sl_json_skip(j, t) != 0)
            return -1;
    }
    if (t != SL_JSON_OBJ_END)
        return -1;
    if (!(seen & SEEN_EVENT_ID))
        event_fail(ev, SL_ERR_MISSING_FIELD, "event_id", "required");
    if (!(seen & SEEN_EVENT_TYPE))
        event_fail(ev, SL_ERR_MISSING_FIELD, "event_type", "required");
    if (!(seen & SEEN_TS))
        event_fail(ev, SL_ERR_MISSING_FIELD, "ts", "required");
    if (!(seen & SEEN_USER_ID))
        event_fail(ev, SL_ERR_MISSING_FIELD, "user_id", "required");
    return 0;
}

static sl_err_t malformed(const parse_ctx_t *pc, const sl_json_t *j, gw_batch_doc_t *doc)
{
    char *d = pc->alloc(pc->actx, 96);
    snprintf(d, 96, "%s at byte %zu", j->err != NULL ? j->err : "syntax error", j->err_pos);
    doc->err_detail = d;
    return SL_ERR_MALFORMED_JSON;
}

/* Parses the "events" array (its ARR_BEGIN was just returned). */
static sl_err_t parse_events(const parse_ctx_t *pc, sl_json_t *j, const gw_parse_limits_t *lim,
                             gw_batch_doc_t *doc)
{
    size_t cap = 16;
    sl_json_tok_t t;

    doc->events = pc->alloc(pc->actx, cap * sizeof(gw_event_t));
    while ((t = sl_json_next(j)) != SL_JSON_ARR_END) {
        gw_event_t *ev;
        if (t == SL_JSON_ERROR)
            return malformed(pc, j, doc);
        if (doc->n_events == lim->max_events) {
            doc->err_detail = "too many events in one batch";
            return SL_ERR_TOO_MANY_EVENTS;
        }
        if (doc->n_events == cap) {
            gw_event_t *bigger = pc->alloc(pc->actx, 2 * cap * sizeof(gw_event_t));
            memcpy(bigger, doc->events, cap * sizeof(gw_event_t));
            doc->events = bigger;
            cap *= 2;
        }
        ev = &doc->events[doc->n_events++];
        memset(ev, 0, sizeof(*ev));
        ev->raw = j->buf + j->tok_start;
        if (t == SL_JSON_OBJ_BEGIN) {
            if (parse_event(pc, j, ev) != 0)
                return malformed(pc, j, doc);
        } else {
            event_fail(ev, SL_ERR_EVENT_NOT_OBJECT, "", "each event must be a JSON object");
            if ((t == SL_JSON_ARR_BEGIN) && sl_json_skip(j, t) != 0)
                return malformed(pc, j, doc);
        }
        ev->raw_len = j->tok_end - (size_t)(ev->raw - j->buf);
        if (ev->raw_len > lim->max_event_bytes) {
            ev->err = SL_ERR_OK; /* size wins over whatever else is wrong with it */
            event_fail(ev, SL_ERR_EVENT_TOO_LARGE, "", "event over the per-event size limit");
        }
    }
    return SL_ERR_OK;
}

sl_err_t gw_parse_batch(const char *body, size_t len, const gw_parse_limits_t *limits,
                        gw_alloc_fn alloc, void *actx, gw_batch_doc_t *doc)
{
    parse_ctx_t pc = {alloc, actx};
    sl_json_t j;
    sl_json_tok_t t;
    int has_events = 0;

    memset(doc, 0, sizeof(*doc));
    sl_json_init(&j, body, len, limits->max_depth);
    t = sl_json_next(&j);
    if (t == SL_JSON_ERROR)
        return malformed(&pc, &j, doc);
    if (t != SL_JSON_OBJ_BEGIN) {
        doc->err_detail = "body must be a JSON object with an \"events\" array";
        return SL_ERR_NOT_AN_OBJECT;
    }
    while ((t = sl_json_next(&j)) == SL_JSON_KEY) {
        char name[32];
        size_t klen;
        const char *k = key_name(&j, name, sizeof(name), &klen);

        t = sl_json_next(&j);
        if (t == SL_JSON_ERROR)
            return malformed(&pc, &j, doc);
        if (SL_JSON_EQ(k, klen, "events")) {
            sl_err_t err;
            if (t != SL_JSON_ARR_BEGIN || has_events) {
                doc->err_detail = has_events ? "\"events\" appears twice"
                                             : "\"events\" must be an array";
                return has_events ? SL_ERR_BAD_BATCH_FIELD : SL_ERR_MISSING_EVENTS;
            }
            has_events = 1;
            if ((err = parse_events(&pc, &j, limits, doc)) != SL_ERR_OK)
                return err;
            continue;
        }
        if (SL_JSON_EQ(k, klen, "write_key")) {
            if (t != SL_JSON_STRING) {
                doc->err_detail = "\"write_key\" must be a string";
                return SL_ERR_BAD_BATCH_FIELD;
            }
            doc->write_key = token_text(&pc, &j, &doc->write_key_len);
            continue;
        }
        if (SL_JSON_EQ(k, klen, "sent_at")) {
            if (t != SL_JSON_NUMBER || sl_json_to_i64(j.str, j.str_len, &doc->sent_at) != 0 ||
                doc->sent_at < 0) {
                doc->err_detail = "\"sent_at\" must be epoch milliseconds";
                return SL_ERR_BAD_BATCH_FIELD;
            }
            continue;
        }
        /* other top-level members (SDK context, batch ids) are accepted and ignored */
        if ((t == SL_JSON_OBJ_BEGIN || t == SL_JSON_ARR_BEGIN) && sl_json_skip(&j, t) != 0)
            return malformed(&pc, &j, doc);
    }
    if (t != SL_JSON_OBJ_END || sl_json_next(&j) != SL_JSON_END)
        return malformed(&pc, &j, doc);
    if (!has_events) {
        doc->err_detail = "body has no \"events\" array";
        return SL_ERR_MISSING_EVENTS;
    }
    return SL_ERR_OK;
}
