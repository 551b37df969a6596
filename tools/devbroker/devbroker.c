/* The dev Kafka broker: option parsing, port reservation, the bind() interposition that hands the
 * reserved ports to librdkafka's mock brokers, and the mock cluster's lifecycle. */
#include "devbroker.h"
#include "sl_log.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define LOOPBACK "127.0.0.1"

struct devbroker {
    devbroker_config_t cfg;
    int listen_fds[DEVBROKER_MAX_BROKERS]; /* reserved listeners not (yet) handed over, or -1 */
    rd_kafka_t *rk;                        /* only hosts the mock cluster; produces nothing */
    rd_kafka_mock_cluster_t *mcluster;
    int control_fd;                        /* the FIFO, opened read-write, or -1 */
    char control_path[256];
    pthread_t control_thread;
};

/* librdkafka's log callback, called from its threads; syslog levels mapped onto ours. */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    sl_log_level_t lvl = level <= 3 ? SL_LOG_ERROR : level == 4 ? SL_LOG_WARN
                       : level <= 6 ? SL_LOG_INFO : SL_LOG_DEBUG;
    (void)rk;
    SL_LOG(lvl, buf, "source=librdkafka fac=%s", fac);
}

/* ---- configuration ---- */

/* Parses a whole unsigned decimal string within [min, max]. */
static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

void devbroker_config_init(devbroker_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = 9092;
    cfg->broker_cnt = 1;
}

int devbroker_config_set_listen(devbroker_config_t *cfg, const char *value, char *errbuf,
                                size_t errlen)
{
    const char *colon = strrchr(value, ':');
    long port;

    if (colon == NULL) {
        snprintf(errbuf, errlen, "--listen: expected HOST:PORT, got \"%s\"", value);
        return -1;
    }
    if ((size_t)(colon - value) != strlen(LOOPBACK) || strncmp(value, LOOPBACK, strlen(LOOPBACK))) {
        snprintf(errbuf, errlen,
                 "--listen: only " LOOPBACK " is supported (librdkafka's mock brokers listen on "
                 "the IPv4 loopback address), got \"%s\"",
                 value);
        return -1;
    }
    if (parse_long(colon + 1, 1, 65535, &port) == -1) {
        snprintf(errbuf, errlen, "--listen: port must be 1..65535, got \"%s\"", colon + 1);
        return -1;
    }
    cfg->port = (uint16_t)port;
    return 0;
}

int devbroker_config_set_brokers(devbroker_config_t *cfg, const char *value, char *errbuf,
                                 size_t errlen)
{
    long cnt;

    if (parse_long(value, 1, DEVBROKER_MAX_BROKERS, &cnt) == -1) {
        snprintf(errbuf, errlen, "--brokers: must be 1..%d, got \"%s\"", DEVBROKER_MAX_BROKERS,
                 value);
        return -1;
    }
    cfg->broker_cnt = (int)cnt;
    return 0;
}

int devbroker_config_add_topic(devbroker_config_t *cfg, const char *value, char *errbuf,
                               size_t errlen)
{
    const char *colon = strrchr(value, ':');
    devbroker_topic_t *topic;
    size_t name_len, i;
    long partition_cnt;

    if (colon == NULL) {
        snprintf(errbuf, errlen, "--topic: expected NAME:PARTITIONS, got \"%s\"", value);
        return -1;
    }
    name_len = (size_t)(colon - value);
    if (name_len == 0 || name_len > DEVBROKER_TOPIC_NAME_MAX) {
        snprintf(errbuf, errlen, "--topic: the name must be 1..%d characters, got \"%s\"",
                 DEVBROKER_TOPIC_NAME_MAX, value);
        return -1;
    }
    for (i = 0; i < name_len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
            snprintf(errbuf, errlen,
                     "--topic: the name may contain only A-Z a-z 0-9 . _ - (as in Kafka), "
                     "got \"%s\"",
                     value);
            return -1;
        }
    }
    if (strncmp(value, ".:", 2) == 0 || strncmp(value, "..:", 3) == 0) {
        snprintf(errbuf, errlen, "--topic: \".\" and \"..\" are not topic names");
        return -1;
    }
    if (parse_long(colon + 1, 1, DEVBROKER_MAX_PARTITIONS, &partition_cnt) == -1) {
        snprintf(errbuf, errlen, "--topic: partitions must be 1..%d, got \"%s\"",
                 DEVBROKER_MAX_PARTITIONS, value);
        return -1;
    }
    for (i = 0; i < cfg->topic_cnt; i++) {
        if (strlen(cfg->topics[i].name) == name_len &&
            memcmp(cfg->topics[i].name, value, name_len) == 0) {
            snprintf(errbuf, errlen, "--topic: %s is given twice", cfg->topics[i].name);
            return -1;
        }
    }
    if (cfg->topic_cnt == DEVBROKER_MAX_TOPICS) {
        snprintf(errbuf, errlen, "--topic: at most %d topics", DEVBROKER_MAX_TOPICS);
        return -1;
    }
    topic = &cfg->topics[cfg->topic_cnt++];
    memcpy(topic->name, value, name_len);
    topic->name[name_len] = '\0';
    topic->partition_cnt = (int)partition_cnt;
    return 0;
}

int devbroker_config_finish(devbroker_config_t *cfg, char *errbuf, size_t errlen)
{
    long last_port = (long)cfg->port + cfg->broker_cnt - 1;

    if (last_port > 65535) {
        snprintf(errbuf, errlen, "--listen/--brokers: ports %u..%ld go past 65535", cfg->port,
                 last_port);
        return -1;
    }
    if (cfg->topic_cnt == 0 && (devbroker_config_add_topic(cfg, "events:12", errbuf, errlen) ||
                                devbroker_config_add_topic(cfg, "events.dlq:3", errbuf, errlen)))
        return -1;
    return 0;
}

/* ---- bind() interposition ---- */

typedef int (*bind_fn_t)(int, __CONST_SOCKADDR_ARG, socklen_t);

static bind_fn_t real_bind_fn;
static pthread_once_t real_bind_once = PTHREAD_ONCE_INIT;

static void resolve_real_bind(void)
{
    /* RTLD_NEXT skips this executable: the next definition in lookup order is libc's. */
    real_bind_fn = (bind_fn_t)dlsym(RTLD_NEXT, "bind");
}

static int real_bind(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    pthread_once(&real_bind_once, resolve_real_bind);
    if (real_bind_fn == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return real_bind_fn(fd, addr, addrlen);
}

/* The hand-over window. Process-wide because bind() is: while it is open, the owner thread's
 * port-0 loopback binds receive the reserved listeners in order. */
static struct {
    pthread_mutex_t lock;
    bool is_open;
    pthread_t owner;
    int *fds;
    int fd_cnt;
    int next;
} handover = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Returns the next reserved listener when this bind() is a mock broker's (AF_INET, 127.0.0.1,
 * port 0, on the thread that opened the window), else -1. The caller owns the descriptor. */
static int handover_take(const struct sockaddr *addr, socklen_t addrlen)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
    int fd = -1;

    if (addr == NULL || addrlen < sizeof(*sin) || sin->sin_family != AF_INET ||
        sin->sin_addr.s_addr != htonl(INADDR_LOOPBACK) || sin->sin_port != 0)
        return -1;
    pthread_mutex_lock(&handover.lock);
    if (handover.is_open && pthread_equal(handover.owner, pthread_self()) &&
        handover.next < handover.fd_cnt) {
        fd = handover.fds[handover.next];
        handover.fds[handover.next++] = -1;
    }
    pthread_mutex_unlock(&handover.lock);
    return fd;
}

/* Interposes libc's bind() for the whole process: librdkafka.so's undefined `bind` resolves to
 * this definition because the executable comes first in the dynamic lookup order. Every bind but
 * the hand-over goes straight to libc. */
int bind(int sockfd, __CONST_SOCKADDR_ARG addr_arg, socklen_t addrlen)
{
    const struct sockaddr *addr;
    int fd, rc, saved_errno;

    /* With _GNU_SOURCE glibc declares the address as a transparent union of pointers, otherwise
     * as a plain pointer; copying the bytes yields the pointer either way. */
    _Static_assert(sizeof(addr_arg) == sizeof(addr), "bind()'s address argument is one pointer");
    memcpy(&addr, &addr_arg, sizeof(addr));

    fd = handover_take(addr, addrlen);
    if (fd == -1)
        return real_bind(sockfd, addr, addrlen);
    /* Put the reserved socket, already bound and listening, under librdkafka's descriptor number.
     * Its getsockname() then reports the fixed port, which the mock broker advertises. */
    rc = dup3(fd, sockfd, O_CLOEXEC);
    saved_errno = errno;
    close(fd);
    errno = saved_errno;
    return rc == -1 ? -1 : 0;
}

/* Binds and listens on 127.0.0.1:port. The port is checked here, before librdkafka sees it,
 * because librdkafka 2.0.2 aborts (an assert in rd_kafka_mock_cluster_destroy) when a mock
 * broker's own bind fails. */
static int reserve_listener(uint16_t port, int *fdp, char *errbuf, size_t errlen)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    int on = 1, fd, err;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd == -1) {
        snprintf(errbuf, errlen, "cannot create a socket: %s", strerror(errno));
        return -1;
    }
    /* As librdkafka does: a restart need not wait for connections in TIME_WAIT. TCP_NODELAY is
     * inherited by accepted sockets: the mock broker does not set it, and librdkafka 2.0.2 sends
     * one ProduceRequest per partition, so Nagle held every response after the first until the
     * client's delayed ACK (~40 ms per multi-partition batch). */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1 ||
        real_bind(fd, (const struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(fd, 64) == -1) {
        err = errno;
        if (err == EADDRINUSE)
            snprintf(errbuf, errlen,
                     "%s:%u is already in use (another Kafka broker or devbroker?); stop it or "
                     "choose another --listen port",
                     LOOPBACK, port);
        else
            snprintf(errbuf, errlen, "cannot listen on " LOOPBACK ":%u: %s", port, strerror(err));
        close(fd);
        return -1;
    }
    *fdp = fd;
    return 0;
}

/* Runs rd_kafka_mock_cluster_new() with the hand-over window open: it creates broker 1..cnt in
 * this thread, each binding one port-0 loopback socket, and they receive fds[0..cnt-1]. */
static rd_kafka_mock_cluster_t *mock_cluster_new_on(rd_kafka_t *rk, int *fds, int cnt, char *errbuf,
                                                    size_t errlen)
{
    rd_kafka_mock_cluster_t *mcluster;

    pthread_mutex_lock(&handover.lock);
    if (handover.is_open) {
        pthread_mutex_unlock(&handover.lock);
        snprintf(errbuf, errlen, "another devbroker is being created in this process");
        return NULL;
    }
    handover.is_open = true;
    handover.owner = pthread_self();
    handover.fds = fds;
    handover.fd_cnt = cnt;
    handover.next = 0;
    pthread_mutex_unlock(&handover.lock);

    mcluster = rd_kafka_mock_cluster_new(rk, cnt);

    pthread_mutex_lock(&handover.lock);
    handover.is_open = false;
    handover.fds = NULL;
    handover.fd_cnt = 0;
    pthread_mutex_unlock(&handover.lock);
    if (mcluster == NULL)
        snprintf(errbuf, errlen, "librdkafka could not create the mock cluster (see its log)");
    return mcluster;
}

/* ---- lifecycle ---- */

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errbuf,
                    size_t errlen)
{
    char errstr[256];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(errbuf, errlen, "librdkafka config %s: %s", name, errstr);
    return -1;
}

devbroker_t *devbroker_create(const devbroker_config_t *cfg, char *errbuf, size_t errlen)
{
    devbroker_t *db;
    rd_kafka_conf_t *conf = NULL;
    char errstr[512], expected[DEVBROKER_MAX_BROKERS * 24];
    const char *actual;
    size_t of = 0;
    int i, replication_factor;

    db = calloc(1, sizeof(*db));
    if (db == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    db->cfg = *cfg;
    for (i = 0; i < DEVBROKER_MAX_BROKERS; i++)
        db->listen_fds[i] = -1;
    db->control_fd = -1;

    for (i = 0; i < cfg->broker_cnt; i++)
        if (reserve_listener((uint16_t)(cfg->port + i), &db->listen_fds[i], errbuf, errlen))
            goto Fail;

    /* The mock cluster needs a client instance to live in; a default producer that is never
     * used. Warnings and errors still reach our log through the callback. */
    conf = rd_kafka_conf_new();
    if (conf_set(conf, "client.id", "sluice-devbroker", errbuf, errlen) ||
        conf_set(conf, "log_level", "4", errbuf, errlen))
        goto Fail;
    rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
    db->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (db->rk == NULL) {
        snprintf(errbuf, errlen, "librdkafka: %s", errstr);
        goto Fail;
    }
    conf = NULL; /* owned by rk now */

    db->mcluster = mock_cluster_new_on(db->rk, db->listen_fds, cfg->broker_cnt, errbuf, errlen);
    if (db->mcluster == NULL)
        goto Fail;

    /* Proof that the hand-over happened; it would not if bind() were not exported from the
     * executable, and the cluster would then sit on random ports. */
    for (i = 0; i < cfg->broker_cnt; i++)
        of += (size_t)snprintf(expected + of, sizeof(expected) - of, "%s" LOOPBACK ":%d",
                               i > 0 ? "," : "", cfg->port + i);
    actual = rd_kafka_mock_cluster_bootstraps(db->mcluster);
    if (strcmp(actual, expected) != 0) {
        snprintf(errbuf, errlen,
                 "the mock cluster listens on %s instead of %s: the bind() interposition did not "
                 "take effect (check that `nm -D` on the executable lists bind)",
                 actual, expected);
        goto Fail;
    }

    replication_factor = cfg->broker_cnt < 3 ? cfg->broker_cnt : 3;
    for (i = 0; i < (int)cfg->topic_cnt; i++) {
        const devbroker_topic_t *topic = &cfg->topics[i];
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
            db->mcluster, topic->name, topic->partition_cnt, replication_factor);
        if (err) {
            snprintf(errbuf, errlen, "creating topic %s: %s", topic->name, rd_kafka_err2str(err));
            goto Fail;
        }
        SL_INFO("topic created", "topic=%s partitions=%d replication_factor=%d",
                      topic->name, topic->partition_cnt, replication_factor);
    }
    SL_INFO("mock cluster listening", "bootstrap=%s brokers=%d", actual,
                  cfg->broker_cnt);
    return db;

Fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    devbroker_destroy(db);
    return NULL;
}

int devbroker_print_ready(const devbroker_t *db, FILE *out)
{
    size_t i;

    fprintf(out, "devbroker ready bootstrap=%s brokers=%d topics=",
            rd_kafka_mock_cluster_bootstraps(db->mcluster), db->cfg.broker_cnt);
    for (i = 0; i < db->cfg.topic_cnt; i++)
        fprintf(out, "%s%s:%d", i > 0 ? "," : "", db->cfg.topics[i].name,
                db->cfg.topics[i].partition_cnt);
    fputc('\n', out);
    return fflush(out) == EOF || ferror(out) ? -1 : 0;
}

int devbroker_control(devbroker_t *db, const char *line, char *errbuf, size_t errlen)
{
    char verb[32];
    long a = 0, b = 0;
    int n = sscanf(line, "%31s %ld %ld", verb, &a, &b);

    if (n == 3 && strcmp(verb, "produce-errors") == 0 && a > 0 && a <= 1000) {
        rd_kafka_resp_err_t errs[1000];
        for (long i = 0; i < a; i++)
            errs[i] = (rd_kafka_resp_err_t)b;
        rd_kafka_mock_push_request_errors_array(db->mcluster, 0 /* Produce */, (size_t)a, errs);
        return 0;
    }
    if (n == 2 && strcmp(verb, "broker-down") == 0 && a >= 1 && a <= db->cfg.broker_cnt)
        return rd_kafka_mock_broker_set_down(db->mcluster, (int32_t)a) ? -1 : 0;
    if (n == 2 && strcmp(verb, "broker-up") == 0 && a >= 1 && a <= db->cfg.broker_cnt)
        return rd_kafka_mock_broker_set_up(db->mcluster, (int32_t)a) ? -1 : 0;
    snprintf(errbuf, errlen,
             "unknown control command (produce-errors COUNT CODE, broker-down ID, broker-up ID)");
    return -1;
}

static void *control_main(void *arg)
{
    devbroker_t *db = arg;
    char buf[512];
    size_t len = 0;

    for (;;) {
        ssize_t r = read(db->control_fd, buf + len, sizeof(buf) - 1 - len);
        char *nl;
        if (r <= 0)
            return NULL;
        len += (size_t)r;
        buf[len] = '\0';
        while ((nl = strchr(buf, '\n')) != NULL) {
            char err[256] = "";
            *nl = '\0';
            if (strcmp(buf, "quit") == 0)
                return NULL;
            if (buf[0] != '\0') {
                int rc = devbroker_control(db, buf, err, sizeof(err));
                SL_INFO("control", "cmd=\"%s\" result=%s%s%s%s", buf, rc == 0 ? "ok" : "error",
                        rc == 0 ? "" : " detail=\"", err, rc == 0 ? "" : "\"");
            }
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len + 1);
        }
        if (len == sizeof(buf) - 1)
            len = 0; /* a line too long to be a command */
    }
}

int devbroker_control_start(devbroker_t *db, const char *path, char *errbuf, size_t errlen)
{
    unlink(path);
    if (snprintf(db->control_path, sizeof(db->control_path), "%s", path) >=
            (int)sizeof(db->control_path) ||
        mkfifo(path, 0600) != 0 || (db->control_fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
        snprintf(errbuf, errlen, "--control %s: %s", path, strerror(errno));
        return -1;
    }
    if (pthread_create(&db->control_thread, NULL, control_main, db) != 0) {
        close(db->control_fd);
        db->control_fd = -1;
        snprintf(errbuf, errlen, "--control: cannot start its thread");
        return -1;
    }
    return 0;
}

void devbroker_destroy(devbroker_t *db)
{
    if (db != NULL && db->control_fd >= 0) { /* the reader holds the FIFO open: tell it to stop */
        (void)!write(db->control_fd, "quit\n", 5);
        pthread_join(db->control_thread, NULL);
        close(db->control_fd);
        unlink(db->control_path);
        db->control_fd = -1;
    }
    int i;

    if (db == NULL)
        return;
    if (db->mcluster != NULL)
        rd_kafka_mock_cluster_destroy(db->mcluster);
    if (db->rk != NULL)
        rd_kafka_destroy(db->rk);
    for (i = 0; i < DEVBROKER_MAX_BROKERS; i++)
        if (db->listen_fds[i] != -1)
            close(db->listen_fds[i]);
    free(db);
}
