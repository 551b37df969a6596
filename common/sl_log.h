/* Level-checked logfmt logging, one line per event, with rate-limited repeats per call site.
 * Never log payloads or write keys. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdatomic.h>
#include <stdint.h>

typedef enum { SL_LOG_DEBUG, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR } sl_log_level_t;

/* Names in level order, NULL-terminated: the enum names for the log.level config key. */
extern const char *const sl_log_level_names[];
/* Current threshold; set at start (sl_log_init), read everywhere. */
extern int sl_log_threshold;

/* Sets the threshold and the process name written in every line ("gateway", "devbroker"). */
void sl_log_init(sl_log_level_t level, const char *process);

/* Writes `level=… proc=… msg="…" <fields>` to stderr in one write(2). `fields` is a printf
 * format for extra logfmt pairs (may be NULL). Use the macros below. */
void sl_log_write(sl_log_level_t level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

#define SL_LOG(level, msg, ...)                                                                    \
    do {                                                                                           \
        if ((int)(level) >= sl_log_threshold)                                                      \
            sl_log_write((level), (msg), __VA_ARGS__);                                             \
    } while (0)
#define SL_DEBUG(msg, ...) SL_LOG(SL_LOG_DEBUG, msg, __VA_ARGS__)
#define SL_INFO(msg, ...) SL_LOG(SL_LOG_INFO, msg, __VA_ARGS__)
#define SL_WARN(msg, ...) SL_LOG(SL_LOG_WARN, msg, __VA_ARGS__)
#define SL_ERROR(msg, ...) SL_LOG(SL_LOG_ERROR, msg, __VA_ARGS__)

/* Rate limiting per call site: at most one line per `interval_ms`; the next line that passes
 * carries `suppressed=N`. */
typedef struct {
    _Atomic uint64_t next_ms;
    _Atomic uint64_t suppressed;
} sl_log_limit_t;

/* Returns how many lines were suppressed since the last one + 1 when this one may be written,
 * 0 when it must be dropped. */
uint64_t sl_log_limit_pass(sl_log_limit_t *lim, uint64_t interval_ms);

#define SL_LOG_RATELIMITED(level, interval_ms, msg, fields, ...)                                   \
    do {                                                                                           \
        static sl_log_limit_t sl_lim_;                                                             \
        uint64_t sl_n_;                                                                            \
        if ((int)(level) >= sl_log_threshold &&                                                    \
            (sl_n_ = sl_log_limit_pass(&sl_lim_, (interval_ms))) != 0)                             \
            sl_log_write((level), (msg), fields " suppressed=%llu", __VA_ARGS__,                   \
                         (unsigned long long)(sl_n_ - 1));                                         \
    } while (0)

/* Monotonic clock in milliseconds / nanoseconds, and wall clock in epoch milliseconds. */
uint64_t sl_now_ms(void);
uint64_t sl_now_ns(void);
int64_t sl_wall_ms(void);

#endif
