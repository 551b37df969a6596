/* The registry's HTTP front end: one h2o event loop on the calling thread, plain HTTP/1.1,
 * Confluent's REST paths routed onto the store, JSON in and out (jansson: schemas are rare and
 * small, not a hot path). SIGTERM/SIGINT arrive through a signalfd watched by the same loop. */
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>

#include "reg_int.h"
#include "sl_log.h"

#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"
#define MAX_SEGMENTS 8

struct reg_server {
    const reg_config_t *rc;
    reg_store_t *st;
    h2o_globalconf_t config;
    h2o_hostconf_t *host;
    h2o_context_t ctx;
    h2o_evloop_t *loop;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener, *sigsock;
    int listen_fd, sig_fd, has_ctx, stop;
};

typedef struct {
    h2o_handler_t super;
    reg_server_t *srv;
} reg_handler_t;

/* One request's decoded path and query. */
typedef struct {
    char *seg[MAX_SEGMENTS];
    size_t n;
    int format_serialized, default_to_global;
} route_t;

/* ------------------------------------------------------------------------------------------ */
/* Answers                                                                                    */

/* Sends obj (stolen) as the body. */
static void send_json(h2o_req_t *req, int status, json_t *obj)
{
    char *body = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
    if (body == NULL)
        abort();
    json_decref(obj);
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : "";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT(CONTENT_TYPE));
    h2o_send_inline(req, body, strlen(body));
    free(body);
}

static void send_error(h2o_req_t *req, reg_err_t err, const char *message)
{
    json_t *obj = json_pack("{s:i, s:s}", "error_code", (json_int_t)reg_err_code(err), "message",
                            message != NULL && message[0] ? message : "error");
    if (obj == NULL) /* a message that is not UTF-8 (cannot happen: ours are ASCII + names) */
        obj = json_pack("{s:i, s:s}", "error_code", (json_int_t)reg_err_code(err), "message",
                        "error");
    send_json(req, reg_err_status(err), obj);
}

static json_t *schema_json(const reg_schema_info_t *info, int with_subject, int serialized)
{
    json_t *obj = json_object();
    if (with_subject) {
        json_object_set_new(obj, "subject", json_string(info->subject));
        json_object_set_new(obj, "version", json_integer(info->version));
    }
    json_object_set_new(obj, "id", json_integer(info->id));
    if (serialized && info->descriptor != NULL) {
        char *b = malloc(4 * ((info->descriptor_len + 2) / 3) + 1);
        if (b == NULL)
            abort();
        reg_base64_encode(info->descriptor, info->descriptor_len, b);
        json_object_set_new(obj, "schema", json_string(b));
        free(b);
    } else {
        json_object_set_new(obj, "schema", json_string(info->schema));
    }
    /* like Confluent: AVRO is the default and is not named */
    if (info->type != REG_AVRO)
        json_object_set_new(obj, "schemaType", json_string(reg_type_name(info->type)));
    return obj;
}

/* ------------------------------------------------------------------------------------------ */
/* Request parsing                                                                            */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into a pool string. NULL for a bad escape or an encoded NUL. */
static char *pct_decode(h2o_mem_pool_t *pool, const char *s, size_t len)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0 ||
                (hi == 0 && lo == 0))
                return NULL;
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static int has_param(const char *q, size_t qlen, const char *kv)
{
    size_t kvlen = strlen(kv);
    for (size_t i = 0; i + kvlen <= qlen; i++)
        if ((i == 0 || q[i - 1] == '&') && memcmp(q + i, kv, kvlen) == 0 &&
            (i + kvlen == qlen || q[i + kvlen] == '&'))
            return 1;
    return 0;
}

/* Splits the raw path into decoded segments. Returns 0, or -1 for too many or undecodable. */
static int route_parse(h2o_req_t *req, route_t *rt)
{
    const char *p = req->path.base, *end = p + req->path.len, *q = memchr(p, '?', req->path.len);

    memset(rt, 0, sizeof(*rt));
    if (q != NULL) {
        rt->format_serialized = has_param(q + 1, (size_t)(end - q - 1), "format=serialized");
        rt->default_to_global = has_param(q + 1, (size_t)(end - q - 1), "defaultToGlobal=true");
        end = q;
    }
    while (p < end) {
        const char *s;
        while (p < end && *p == '/')
            p++;
        if (p == end)
            break;
        s = p;
        while (p < end && *p != '/')
            p++;
        if (rt->n == MAX_SEGMENTS ||
            (rt->seg[rt->n] = pct_decode(&req->pool, s, (size_t)(p - s))) == NULL)
            return -1;
        rt->n++;
    }
    return 0;
}

static int method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static int seg_is(const route_t *rt, size_t i, const char *lit)
{
    return i < rt->n && strcmp(rt->seg[i], lit) == 0;
}

/* "latest", "-1" or 1..2^31-1. Returns 0, or -1 when it is none of them. */
static int parse_version(const char *s, int32_t *out)
{
    long long v = 0;
    if (strcmp(s, "latest") == 0 || strcmp(s, "-1") == 0) {
        *out = -1;
        return 0;
    }
    if (*s == '\0' || strlen(s) > 10)
        return -1;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        v = v * 10 + (*c - '0');
    }
    if (v < 1 || v > INT32_MAX)
        return -1;
    *out = (int32_t)v;
    return 0;
}

/* A request body {"schema": "...", "schemaType"?: "...", "references"?: [...]}. Returns a
 * borrowed view into *body_out (which the caller decrefs), or sends the error and returns -1. */
typedef struct {
    const char *schema;
    size_t schema_len;
    reg_type_t type;
    int has_references;
} schema_body_t;

static int parse_schema_body(h2o_req_t *req, json_t **body_out, schema_body_t *sb)
{
    json_error_t jerr;
    json_t *body, *schema, *type, *refs;
    char msg[300];

    *body_out = NULL;
    memset(sb, 0, sizeof(*sb));
    body = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
    if (body == NULL || !json_is_object(body)) {
        snprintf(msg, sizeof(msg), "Request body is not a JSON object%s%s",
                 body == NULL ? ": " : "", body == NULL ? jerr.text : "");
        json_decref(body);
        send_error(req, REG_ERR_BAD_REQUEST, msg);
        return -1;
    }
    *body_out = body;
    schema = json_object_get(body, "schema");
    type = json_object_get(body, "schemaType");
    refs = json_object_get(body, "references");
    if (!json_is_string(schema) || json_string_length(schema) == 0) {
        send_error(req, REG_ERR_INVALID_SCHEMA, "Empty schema");
        return -1;
    }
    if (type != NULL && !json_is_null(type) &&
        (!json_is_string(type) || reg_type_parse(json_string_value(type), &sb->type) != 0)) {
        send_error(req, REG_ERR_INVALID_SCHEMA,
                   "Invalid schemaType: this registry serves AVRO and PROTOBUF");
        return -1;
    }
    if (refs != NULL && !json_is_null(refs) && !json_is_array(refs)) {
        send_error(req, REG_ERR_BAD_REQUEST, "references must be an array");
        return -1;
    }
    sb->schema = json_string_value(schema);
    sb->schema_len = json_string_length(schema);
    sb->has_references = json_array_size(refs) > 0;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Endpoints                                                                                  */

static void on_register(reg_server_t *srv, h2o_req_t *req, const char *subject)
{
    json_t *body;
    schema_body_t sb;
    reg_schema_info_t info;
    reg_msg_t msg = {{0}};
    reg_err_t err;

    if (parse_schema_body(req, &body, &sb) != 0)
        goto Done;
    err = reg_store_register(srv->st, subject, sb.type, sb.schema, sb.schema_len, sb.has_references,
                             &info, &msg);
    if (err != REG_ERR_OK)
        send_error(req, err, msg.msg);
    else
        send_json(req, 200, json_pack("{s:i}", "id", (json_int_t)info.id));
Done:
    json_decref(body);
}

static void on_lookup(reg_server_t *srv, h2o_req_t *req, const char *subject)
{
    json_t *body;
    schema_body_t sb;
    reg_schema_info_t info;
    reg_msg_t msg = {{0}};
    reg_err_t err;

    if (parse_schema_body(req, &body, &sb) != 0)
        goto Done;
    err = reg_store_lookup(srv->st, subject, sb.type, sb.schema, sb.schema_len, &info, &msg);
    if (err != REG_ERR_OK)
        send_error(req, err, msg.msg);
    else
        send_json(req, 200, schema_json(&info, 1, 0));
Done:
    json_decref(body);
}

static void on_compat(reg_server_t *srv, h2o_req_t *req, const char *subject, int32_t version)
{
    json_t *body, *messages;
    schema_body_t sb;
    reg_msg_t msg = {{0}};
    reg_err_t err;
    int ok = 0;

    if (parse_schema_body(req, &body, &sb) != 0)
        goto Done;
    err = reg_store_check(srv->st, subject, version, sb.type, sb.schema, sb.schema_len, &ok, &msg);
    if (err != REG_ERR_OK) {
        send_error(req, err, msg.msg);
        goto Done;
    }
    messages = json_array();
    if (!ok && msg.msg[0])
        json_array_append_new(messages, json_string(msg.msg));
    send_json(req, 200, json_pack("{s:b, s:o}", "is_compatible", ok, "messages", messages));
Done:
    json_decref(body);
}

static void on_config(reg_server_t *srv, h2o_req_t *req, const char *subject, const route_t *rt)
{
    reg_msg_t msg = {{0}};
    reg_level_t level;
    reg_err_t err;

    if (method_is(req, "GET")) {
        err = reg_store_get_level(srv->st, subject, rt->default_to_global, &level, &msg);
        if (err != REG_ERR_OK)
            send_error(req, err, msg.msg);
        else
            send_json(req, 200, json_pack("{s:s}", "compatibilityLevel", reg_level_names[level]));
        return;
    }
    if (method_is(req, "PUT")) {
        json_t *body = json_loadb(req->entity.base, req->entity.len, 0, NULL);
        const char *name = json_string_value(json_object_get(body, "compatibility"));
        if (!json_is_object(body)) {
            send_error(req, REG_ERR_BAD_REQUEST, "Request body is not a JSON object");
        } else if (reg_level_parse(name, &level) != 0) {
            send_error(req, REG_ERR_INVALID_LEVEL,
                       "Invalid compatibility level. Valid values are none, backward, forward, "
                       "full, backward_transitive, forward_transitive, and full_transitive");
        } else if ((err = reg_store_set_level(srv->st, subject, level, &msg)) != REG_ERR_OK) {
            send_error(req, err, msg.msg);
        } else {
            send_json(req, 200, json_pack("{s:s}", "compatibility", reg_level_names[level]));
        }
        json_decref(body);
        return;
    }
    send_error(req, REG_ERR_METHOD_NOT_ALLOWED, "HTTP 405 Method Not Allowed");
}

static void on_subjects(reg_server_t *srv, h2o_req_t *req, const route_t *rt)
{
    const char *subject = rt->n >= 2 ? rt->seg[1] : NULL;
    reg_schema_info_t info;
    reg_msg_t msg = {{0}};
    reg_err_t err;
    int32_t version, count;

    if (rt->n == 1 && method_is(req, "GET")) { /* GET /subjects */
        const char **names;
        size_t n = reg_store_subjects(srv->st, &names);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_string(names[i]));
        free(names);
        send_json(req, 200, arr);
        return;
    }
    if (rt->n == 2 && method_is(req, "POST")) {
        on_lookup(srv, req, subject);
        return;
    }
    if (rt->n == 3 && seg_is(rt, 2, "versions") && method_is(req, "POST")) {
        on_register(srv, req, subject);
        return;
    }
    if (rt->n == 3 && seg_is(rt, 2, "versions") && method_is(req, "GET")) {
        if ((err = reg_store_versions(srv->st, subject, &count, &msg)) != REG_ERR_OK) {
            send_error(req, err, msg.msg);
        } else {
            json_t *arr = json_array();
            for (int32_t v = 1; v <= count; v++)
                json_array_append_new(arr, json_integer(v));
            send_json(req, 200, arr);
        }
        return;
    }
    if ((rt->n == 4 || (rt->n == 5 && seg_is(rt, 4, "schema"))) && seg_is(rt, 2, "versions") &&
        method_is(req, "GET")) {
        if (parse_version(rt->seg[3], &version) != 0) {
            /* Confluent checks the subject first */
            if (reg_store_versions(srv->st, subject, &count, &msg) != REG_ERR_OK)
                send_error(req, REG_ERR_SUBJECT_NOT_FOUND, msg.msg);
            else
                send_error(req, REG_ERR_INVALID_VERSION,
                           "The specified version is not a valid version id. Allowed values are "
                           "between [1, 2^31-1] and the string \"latest\"");
            return;
        }
        if ((err = reg_store_version(srv->st, subject, version, &info, &msg)) != REG_ERR_OK) {
            send_error(req, err, msg.msg);
        } else if (rt->n == 5) { /* the schema alone, as Confluent serves it */
            json_error_t jerr;
            json_t *raw = info.type == REG_AVRO ? json_loads(info.schema, JSON_DECODE_ANY, &jerr)
                                                : json_string(info.schema);
            send_json(req, 200, raw != NULL ? raw : json_string(info.schema));
        } else {
            send_json(req, 200, schema_json(&info, 1, 0));
        }
        return;
    }
    if (rt->n <= 5)
        send_error(req, REG_ERR_METHOD_NOT_ALLOWED, "HTTP 405 Method Not Allowed");
    else
        send_error(req, REG_ERR_NOT_FOUND, "HTTP 404 Not Found");
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    reg_server_t *srv = ((reg_handler_t *)self)->srv;
    route_t rt;
    reg_msg_t msg = {{0}};
    reg_schema_info_t info;
    int32_t version;

    if (route_parse(req, &rt) != 0) {
        send_error(req, REG_ERR_NOT_FOUND, "HTTP 404 Not Found: undecodable path");
        return 0;
    }
    if (rt.n == 0 && method_is(req, "GET")) {
        send_json(req, 200, json_object());
    } else if (seg_is(&rt, 0, "subjects")) {
        on_subjects(srv, req, &rt);
    } else if (seg_is(&rt, 0, "schemas") && seg_is(&rt, 1, "ids") && rt.n == 3 &&
               method_is(req, "GET")) {
        int32_t id;
        reg_err_t err;
        if (parse_version(rt.seg[2], &id) != 0 || id < 1) {
            send_error(req, REG_ERR_SCHEMA_NOT_FOUND, "Schema not found");
        } else if ((err = reg_store_by_id(srv->st, id, &info, &msg)) != REG_ERR_OK) {
            send_error(req, err, msg.msg);
        } else {
            json_t *obj = schema_json(&info, 0, rt.format_serialized);
            json_object_del(obj, "id");
            send_json(req, 200, obj);
        }
    } else if (seg_is(&rt, 0, "schemas") && seg_is(&rt, 1, "types") && rt.n == 2) {
        send_json(req, 200, json_pack("[s, s]", "AVRO", "PROTOBUF"));
    } else if (seg_is(&rt, 0, "compatibility") && seg_is(&rt, 1, "subjects") &&
               seg_is(&rt, 3, "versions") && (rt.n == 4 || rt.n == 5)) {
        if (!method_is(req, "POST"))
            send_error(req, REG_ERR_METHOD_NOT_ALLOWED, "HTTP 405 Method Not Allowed");
        else if (rt.n == 4)
            on_compat(srv, req, rt.seg[2], 0);
        else if (parse_version(rt.seg[4], &version) != 0)
            send_error(req, REG_ERR_INVALID_VERSION,
                       "The specified version is not a valid "
                       "version id");
        else
            on_compat(srv, req, rt.seg[2], version);
    } else if (seg_is(&rt, 0, "config") && rt.n <= 2) {
        on_config(srv, req, rt.n == 2 ? rt.seg[1] : NULL, &rt);
    } else {
        send_error(req, REG_ERR_NOT_FOUND, "HTTP 404 Not Found");
    }
    SL_DEBUG("request", "method=%.*s status=%d", (int)req->method.len, req->method.base,
             req->res.status);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Server lifecycle                                                                           */

static int bind_listener(const char *hostport, char *errbuf, size_t errlen)
{
    char host[256], *colon;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    int fd = -1, on = 1, rc;

    snprintf(host, sizeof(host), "%s", hostport);
    if ((colon = strrchr(host, ':')) == NULL) {
        snprintf(errbuf, errlen, "registry.listen %s: expected host:port", hostport);
        return -1;
    }
    *colon = '\0';
    if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') { /* [::1]:8081 */
        colon[-1] = '\0';
        memmove(host, host + 1, strlen(host));
    }
    if ((rc = getaddrinfo(host, colon + 1, &hints, &ai)) != 0) {
        snprintf(errbuf, errlen, "registry.listen %s: %s", hostport, gai_strerror(rc));
        return -1;
    }
    if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(errbuf, errlen, "registry.listen %s: %s", hostport, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    reg_server_t *srv = listener->data;
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    while ((sock = h2o_evloop_socket_accept(listener)) != NULL)
        h2o_accept(&srv->accept_ctx, sock);
}

static void on_signal(h2o_socket_t *sock, const char *err)
{
    reg_server_t *srv = sock->data;
    struct signalfd_siginfo si;
    while (read(srv->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        SL_INFO("stopping", "signal=%s", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        srv->stop = 1;
    }
}

reg_server_t *reg_server_create(const reg_config_t *rc, reg_store_t *st, char *errbuf,
                                size_t errlen)
{
    reg_server_t *srv = calloc(1, sizeof(*srv));
    h2o_pathconf_t *pathconf;
    reg_handler_t *h;
    sigset_t set;

    if (srv == NULL)
        abort();
    srv->rc = rc;
    srv->st = st;
    srv->listen_fd = srv->sig_fd = -1;
    h2o_config_init(&srv->config);
    srv->config.server_name = h2o_iovec_init(H2O_STRLIT("sluice-registry"));
    /* h2o buffers the whole body before our handler runs: this is the bound on it */
    srv->config.max_request_entity_size = (size_t)rc->max_body_bytes;
    srv->host =
        h2o_config_register_host(&srv->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(srv->host, "/", 0);
    h = (reg_handler_t *)h2o_create_handler(pathconf, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;

    if ((srv->listen_fd = bind_listener(rc->listen, errbuf, errlen)) < 0)
        goto Fail;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if ((srv->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        snprintf(errbuf, errlen, "signalfd: %s", strerror(errno));
        goto Fail;
    }
    srv->loop = h2o_evloop_create();
    h2o_context_init(&srv->ctx, srv->loop, &srv->config);
    srv->has_ctx = 1;
    srv->accept_ctx.ctx = &srv->ctx;
    srv->accept_ctx.hosts = srv->config.hosts;
    srv->listener = h2o_evloop_socket_create(srv->loop, srv->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    srv->listener->data = srv;
    srv->listen_fd = -1; /* owned by the socket */
    h2o_socket_read_start(srv->listener, on_accept);
    srv->sigsock = h2o_evloop_socket_create(srv->loop, srv->sig_fd, H2O_SOCKET_FLAG_DONT_READ);
    srv->sigsock->data = srv;
    h2o_socket_read_start(srv->sigsock, on_signal);
    return srv;
Fail:
    reg_server_destroy(srv);
    return NULL;
}

/* 1 when nothing of the context is alive: no connection and no pending timer (h2o 2.2.5 asserts
 * on disposing a context that is not idle). */
static int context_is_idle(h2o_context_t *ctx)
{
    h2o_timeout_t *timeouts[] = {&ctx->zero_timeout,
                                 &ctx->one_sec_timeout,
                                 &ctx->hundred_ms_timeout,
                                 &ctx->handshake_timeout,
                                 &ctx->http1.req_timeout,
                                 &ctx->http2.idle_timeout,
                                 &ctx->http2.graceful_shutdown_timeout,
                                 &ctx->proxy.io_timeout};

    if (!h2o_linklist_is_empty(&ctx->http1._conns) || !h2o_linklist_is_empty(&ctx->http2._conns))
        return 0;
    for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++)
        if (!h2o_linklist_is_empty(&timeouts[i]->_entries))
            return 0;
    return 1;
}

void reg_server_run(reg_server_t *srv)
{
    uint64_t deadline;

    SL_INFO("registry serving", "listen=%s data_dir=%s", srv->rc->listen, srv->rc->data_dir);
    while (!srv->stop)
        h2o_evloop_run(srv->loop, INT32_MAX);
    /* stop accepting; answers already handed to h2o get a moment to reach their sockets (every
     * write was fsync'd before its answer, so nothing else is left to finish) */
    h2o_socket_read_stop(srv->listener);
    h2o_socket_close(srv->listener);
    srv->listener = NULL;
    deadline = sl_now_ms() + 500;
    while (sl_now_ms() < deadline && !context_is_idle(&srv->ctx))
        h2o_evloop_run(srv->loop, 20);
}

/* Contexts with live connections (a client holding a keep-alive connection at exit): kept
 * reachable on purpose, since h2o 2.2.5 asserts when disposing a context that is not idle. */
static reg_server_t *abandoned;

void reg_server_destroy(reg_server_t *srv)
{
    if (srv == NULL)
        return;
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->listener != NULL) {
        h2o_socket_read_stop(srv->listener);
        h2o_socket_close(srv->listener);
    }
    if (srv->sigsock != NULL) {
        h2o_socket_read_stop(srv->sigsock);
        h2o_socket_close(srv->sigsock); /* closes sig_fd */
    } else if (srv->sig_fd >= 0) {
        close(srv->sig_fd);
    }
    if (srv->has_ctx) {
        h2o_evloop_run(srv->loop, 0); /* completes the closes above */
        if (!context_is_idle(&srv->ctx)) {
            abandoned = srv;
            return;
        }
        h2o_context_dispose(&srv->ctx);
    }
    h2o_config_dispose(&srv->config);
    free(srv);
}
