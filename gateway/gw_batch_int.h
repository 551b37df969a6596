/* Private to the batch request path (gw_batch.c: admission to answer; gw_schema.c: the schema
 * step): a batch, its slots, and the steps each file hands the batch to. */
#ifndef GW_BATCH_INT_H
#define GW_BATCH_INT_H

#include "gw_int.h"

typedef struct gw_batch gw_batch_t;

/* Where an event stands. Decided before Kafka (invalid, duplicate, in flight elsewhere), or
 * SLOT_KAFKA: produced, and its delivery report decides accepted or retry. */
enum { SLOT_KAFKA = GW_OUT__COUNT };

/* One per event. For SLOT_KAFKA events it is the delivery opaque: written by whichever
 * librdkafka thread delivers the report (or by the loop thread when producev fails at once),
 * read by the loop thread after the hand-off message (which orders the two). */
typedef struct {
    gw_batch_t *batch;
    rd_kafka_resp_err_t err;
    unsigned char state;         /* gw_outcome_t, or SLOT_KAFKA */
    unsigned char code;          /* sl_err_t behind a non-accepted outcome (0: none) */
    unsigned char is_fatal;      /* the producer failed fatally */
    unsigned char not_persisted; /* librdkafka knows it was never written */
    unsigned char dead_letter;   /* not SLOT_KAFKA: a copy went to the dead-letter topic, and
                                    err is that write's result */
    unsigned char schema_stage;  /* invalid by its schema (not by the envelope) */
    uint32_t schema_id;          /* the schema it was (or failed to be) encoded with; 0: none */
    const schema_t *schema;      /* resolved by gw_batch_resolve */
    uint32_t value_off, value_len; /* its Avro value in batch->values */
} gw_slot_t;

/* Lives on the heap because Redis and Kafka answers can outlive the request; owned by its loop
 * thread, freed in gw_batch_finish. */
struct gw_batch {
    h2o_multithread_message_t msg; /* "all deliveries arrived", sent to thr->done_receiver */
    h2o_multithread_message_t schema_msg; /* "a schema fetch ended", to thr->schema_receiver */
    gw_server_t *srv;
    gw_thread_t *thr;
    h2o_req_t *req;                /* NULL once the client went away */
    struct batch_guard *guard;     /* in req->pool; NULL once the client went away */
    gw_batch_doc_t doc;            /* events point into req->pool: only read while req != NULL */
    const gw_tenant_t *tenant;
    int64_t received_at;
    int64_t admitted_events;       /* counted in srv->inflight_events until the answer */
    int64_t kq_messages, kq_bytes; /* produced to Kafka: the producer queue depth it adds */
    uint64_t start_ns, claim_ns, produce_ns;
    uint64_t held_bytes;           /* request memory pinned until the answer (take_memory) */
    dedup_claim_t *claim;          /* NULL without dedup */
    dedup_item_t *items;           /* per event; event ids copied into `ids` (outlive req) */
    char *ids;
    size_t resolve_next;           /* gw_batch_resolve resumes here after a fetch */
    uint8_t *values;               /* the events' Avro values (Confluent framing), back to back */
    size_t values_len, values_cap;
    int is_binary;                 /* a RecordBatch: records arrive framed, forwarded unchanged */
    int degraded;                  /* Redis could not answer: dedup by the Bloom filter only */
    sl_err_t refused;              /* the whole batch is answered with this error (503), nothing
                                      stored: Redis down with dedup.policy=closed, or most
                                      schemas unavailable */
    _Atomic size_t pending;
    size_t n;
    gw_slot_t slots[];
};

/* Allocated in the request's pool: its dispose runs when h2o frees the request, so a batch
 * still waiting for Redis or Kafka learns that there is nobody left to answer. */
struct batch_guard {
    gw_batch_t *batch;
};

/* gw_batch.c: answers the batch and frees it (on its loop thread, once no Redis or Kafka
 * answer is outstanding). */
void gw_batch_finish(gw_batch_t *b);
/* gw_batch.c: dedup claim for the events still bound for Kafka, then produce. */
void gw_batch_claim(gw_batch_t *b);
/* gw_schema.c: finds each event's schema (async on a cache miss), then validates and encodes
 * (JSON) or decodes (binary records), then hands on to gw_batch_claim. */
void gw_batch_resolve(gw_batch_t *b);

#endif
