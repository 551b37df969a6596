/* Binary batches: a hand-written protobuf wire-format reader for
 * sluice.v1.RecordBatch { repeated bytes records = 1; int64 sent_at = 2; string write_key = 3; }.
 * Two passes over the body: the first checks the structure and counts records (so the event
 * array is allocated once, at its final size, and only after the count is within the limit),
 * the second slices out the records. No record is decoded here: schema/ validates each one. */
#include <stdio.h>
#include <string.h>

#include "gw_int.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

typedef struct {
    const uint8_t *base, *p, *end;
    unsigned max_depth;
    const char *err; /* static text for malformed_protobuf */
    size_t err_pos;
} pbr_t;

static int pbr_fail(pbr_t *r, const uint8_t *at, const char *why)
{
    r->err = why;
    r->err_pos = (size_t)(at - r->base);
    return -1;
}

/* At most 10 bytes, and the 10th may only carry bit 63: anything longer is malformed rather
 * than silently truncated. */
static int pbr_varint(pbr_t *r, uint64_t *v)
{
    uint64_t x = 0;
    const uint8_t *p = r->p;
    for (unsigned i = 0; i < 10; i++) {
        if (p + i == r->end)
            return pbr_fail(r, p, "truncated varint");
        uint8_t b = p[i];
        if (i == 9 && b > 1)
            return pbr_fail(r, p, "varint over 64 bits");
        x |= (uint64_t)(b & 0x7F) << (7 * i);
        if (b < 0x80) {
            r->p = p + i + 1;
            *v = x;
            return 0;
        }
    }
    return pbr_fail(r, p, "varint over 10 bytes"); /* not reached: byte 10 > 1 fails first */
}

/* One field: its number, wire type, and value (v for varint/fixed, [*val, *val + v) for LEN). */
static int pbr_field(pbr_t *r, uint32_t *num, int *wt, uint64_t *v, const uint8_t **val,
                     unsigned depth);

/* Skips an unknown group up to its END_GROUP (same number), nested groups included. */
static int pbr_skip_group(pbr_t *r, uint32_t num, unsigned depth)
{
    const uint8_t *start = r->p;
    if (depth >= r->max_depth)
        return pbr_fail(r, start, "groups nested too deeply");
    for (;;) {
        uint32_t n;
        int wt;
        uint64_t v;
        const uint8_t *val;
        if (r->p == r->end)
            return pbr_fail(r, start, "group without its end");
        if (pbr_field(r, &n, &wt, &v, &val, depth + 1) != 0)
            return -1;
        if (wt == WT_EGROUP) {
            if (n != num)
                return pbr_fail(r, r->p, "group ends with another field number");
            return 0;
        }
    }
}

static int pbr_field(pbr_t *r, uint32_t *num, int *wt, uint64_t *v, const uint8_t **val,
                     unsigned depth)
{
    const uint8_t *at = r->p;
    uint64_t tag;

    if (pbr_varint(r, &tag) != 0)
        return -1;
    /* a tag is a uint32 varint: at most 5 bytes, as protobuf readers require */
    if (tag > 0xFFFFFFFFu || (tag >> 3) == 0 || r->p - at > 5)
        return pbr_fail(r, at, "bad field tag");
    *num = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    *val = r->p;
    switch (*wt) {
    case WT_VARINT:
        return pbr_varint(r, v);
    case WT_I64:
    case WT_I32: {
        size_t k = *wt == WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < k)
            return pbr_fail(r, at, "truncated fixed-width value");
        r->p += k;
        return 0;
    }
    case WT_LEN:
        if (pbr_varint(r, v) != 0)
            return -1;
        if (r->p - *val > 5) /* lengths are 32-bit to protobuf readers: at most 5 bytes */
            return pbr_fail(r, at, "length over 5 bytes");
        if (*v > (uint64_t)(r->end - r->p))
            return pbr_fail(r, at, "length past the end of the body");
        *val = r->p;
        r->p += *v;
        return 0;
    case WT_SGROUP:
        return pbr_skip_group(r, *num, depth);
    case WT_EGROUP:
        if (depth == 0)
            return pbr_fail(r, at, "end of a group that was not started");
        return 0;
    default:
        return pbr_fail(r, at, "invalid wire type");
    }
}

static sl_err_t malformed(gw_alloc_fn alloc, void *actx, const pbr_t *r, gw_batch_doc_t *doc)
{
    char *d = alloc(actx, 96);
    snprintf(d, 96, "%s at byte %zu", r->err, r->err_pos);
    doc->err_detail = d;
    return SL_ERR_MALFORMED_PROTOBUF;
}

/* Known field with the wrong wire type: protobuf readers refuse these too. */
static int wrong_type(pbr_t *r, const uint8_t *at, uint32_t num)
{
    return pbr_fail(r, at,
                    num == 1   ? "records (field 1) must be length-delimited"
                    : num == 2 ? "sent_at (field 2) must be a varint"
                               : "write_key (field 3) must be length-delimited");
}

sl_err_t gw_parse_pb_batch(const char *body, size_t len, const gw_parse_limits_t *limits,
                           gw_alloc_fn alloc, void *actx, gw_batch_doc_t *doc)
{
    pbr_t r;
    size_t n_records = 0;

    memset(doc, 0, sizeof(*doc));
    r.base = (const uint8_t *)body;
    r.end = r.base + len;
    r.max_depth = limits->max_depth ? limits->max_depth : 32;

    /* pass 1: structure, known fields' wire types, the record count */
    r.p = r.base;
    while (r.p < r.end) {
        const uint8_t *at = r.p, *val;
        uint32_t num;
        int wt;
        uint64_t v;
        if (pbr_field(&r, &num, &wt, &v, &val, 0) != 0)
            return malformed(alloc, actx, &r, doc);
        if ((num == 1 && wt != WT_LEN) || (num == 2 && wt != WT_VARINT) ||
            (num == 3 && wt != WT_LEN)) {
            wrong_type(&r, at, num);
            return malformed(alloc, actx, &r, doc);
        }
        if (num == 1 && ++n_records > limits->max_events) {
            doc->err_detail = "too many events in one batch";
            return SL_ERR_TOO_MANY_EVENTS;
        }
    }
    if (n_records > 0)
        doc->events = alloc(actx, n_records * sizeof(gw_event_t));

    /* pass 2: the structure is known to be sound; a repeated sent_at or write_key is not an
     * error, the last one wins (protobuf's rule for singular fields) */
    r.p = r.base;
    while (r.p < r.end) {
        const uint8_t *val;
        uint32_t num;
        int wt;
        uint64_t v;
        if (pbr_field(&r, &num, &wt, &v, &val, 0) != 0)
            return malformed(alloc, actx, &r, doc); /* not reached: pass 1 read the same */
        if (num == 1) {
            gw_event_t *ev = &doc->events[doc->n_events++];
            memset(ev, 0, sizeof(*ev));
            ev->raw = (const char *)val;
            ev->raw_len = (size_t)v;
            if (ev->raw_len > limits->max_event_bytes) {
                ev->err = SL_ERR_EVENT_TOO_LARGE;
                ev->err_path = "";
                ev->err_detail = "event over the per-event size limit";
            }
        } else if (num == 2) {
            if ((int64_t)v < 0) { /* int64 on the wire: negative is ten bytes of two's complement */
                doc->err_detail = "sent_at must be epoch milliseconds";
                return SL_ERR_BAD_BATCH_FIELD;
            }
            doc->sent_at = (int64_t)v;
        } else if (num == 3) {
            doc->write_key = (const char *)val;
            doc->write_key_len = (size_t)v;
        }
    }
    return SL_ERR_OK;
}
