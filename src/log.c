/* md_log: see include/md_log.h. */
#include "md_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

md_log_level md_log_level_cur = MD_LOG_INFO;

static const char *const lvl_name[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void md_log(md_log_level lvl, const char *fmt, ...)
{
    if (lvl > md_log_level_cur) return;
    /* One buffer, one write(): lines from different workers never interleave
     * mid-line, and no lock is needed. */
    char buf[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, lvl_name[lvl]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof buf - 2) len = sizeof buf - 2;
    buf[len++] = '\n';
    fwrite(buf, 1, len, stderr);
}

int md_ratelimit_ok(md_ratelimit *rl, uint32_t burst)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    int64_t now = ts.tv_sec;
    int64_t w = atomic_load_explicit(&rl->window_s, memory_order_relaxed);
    if (w != now &&
        atomic_compare_exchange_strong_explicit(&rl->window_s, &w, now, memory_order_relaxed,
                                                memory_order_relaxed)) {
        atomic_store_explicit(&rl->count, 0, memory_order_relaxed);
        uint32_t s = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
        if (s) md_log(MD_LOG_WARN, "(%u similar messages suppressed)", s);
    }
    if (atomic_fetch_add_explicit(&rl->count, 1, memory_order_relaxed) < burst) return 1;
    atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
    return 0;
}
