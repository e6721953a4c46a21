/*
 * md_log: leveled logging to stderr, safe from any thread, with a
 * per-call-site rate limit for messages that bad input could otherwise
 * turn into a flood (one malformed datagram per microsecond must not
 * become a million log lines).
 *
 * Secrets never reach this module: callers redact URLs first.
 */
#ifndef MD_LOG_H
#define MD_LOG_H

#include <stdatomic.h>
#include <stdint.h>

#include "md_config.h"

extern md_log_level md_log_level_cur;

void md_log(md_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Rate-limit state for one call site: at most `burst` lines per second,
 * then one "N similar messages suppressed" note when the next window opens. */
typedef struct md_ratelimit {
    _Atomic int64_t window_s;
    _Atomic uint32_t count;
    _Atomic uint32_t suppressed;
} md_ratelimit;

/* True if the caller may log now; folds a suppression note in when due. */
int md_ratelimit_ok(md_ratelimit *rl, uint32_t burst);

#define MD_LOG_RL(lvl, burst, ...)                                                                 \
    do {                                                                                           \
        static md_ratelimit md_rl_;                                                                \
        if (md_log_level_cur >= (lvl) && md_ratelimit_ok(&md_rl_, (burst)))                        \
            md_log((lvl), __VA_ARGS__);                                                            \
    } while (0)

#define md_error(...) md_log(MD_LOG_ERROR, __VA_ARGS__)
#define md_warn(...) md_log(MD_LOG_WARN, __VA_ARGS__)
#define md_info(...) md_log(MD_LOG_INFO, __VA_ARGS__)
#define md_debug(...)                                                                              \
    do {                                                                                           \
        if (md_log_level_cur >= MD_LOG_DEBUG) md_log(MD_LOG_DEBUG, __VA_ARGS__);                   \
    } while (0)

#endif
