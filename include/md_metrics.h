/*
 * md_metrics: Prometheus text exposition (format 0.0.4) of mdcache's
 * counters, gauges and histograms, served over HTTP by one thread of its
 * own ([mdcache] metrics = HOST:PORT, --metrics).
 *
 * The thread never touches worker state: it reads the mirrors the workers
 * publish (md_stats_mirror, md_hist_pub) and the expiry watcher's mirror,
 * the same atomics md_runtime_stats sums for the stats line. A slow or
 * stuck scraper therefore costs the workers nothing.
 *
 * Every MD_STATS_FIELDS entry is exported without a list here to keep in
 * step: as mdcache_<name>_total (counter) or mdcache_<name> (gauge), except
 * the few that metrics.c folds into labelled families (drops by reason,
 * Redis errors by type, keys written and expired keys by class).
 * docs/metrics.md lists them all.
 */
#ifndef MD_METRICS_H
#define MD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "md_config.h"
#include "md_hist.h"
#include "md_stats.h"

/* The histograms a worker publishes for the endpoint. */
enum { MD_MH_LATENCY, MD_MH_RTT, MD_MH_BATCH, MD_MH_COUNT };

typedef struct md_metrics_hist_def {
    const char *name;       /* family name, e.g. "mdcache_redis_rtt_seconds" */
    const char *help;
    const uint64_t *bounds; /* in recorded units (ns, or keys), ascending */
    size_t nbounds;         /* <= MD_HIST_PUB_MAX */
    uint64_t unit;          /* recorded units per exported unit (1e9 for ns -> s) */
} md_metrics_hist_def;

extern const md_metrics_hist_def md_metrics_hists[MD_MH_COUNT];

/* What one scrape shows: plain copies, taken from the mirrors by the
 * server thread (or filled by hand in tests). */
typedef struct md_metrics_view {
    int nworkers;
    const md_stats *workers;                /* [nworkers] */
    const md_stats *watcher;                /* expiry watcher's counters; NULL = all zero */
    const md_hist_snap (*hists)[MD_MH_COUNT]; /* [nworkers]; NULL = no histogram families */
    const char *version;
    int nfeeds;
    const char *const *feeds;               /* listen specs, for mdcache_feed_info */
} md_metrics_view;

/* The exposition text, NUL-terminated, in a malloc'ed buffer the caller
 * frees; *len excludes the NUL. -1 when out of memory. */
int md_metrics_render(const md_metrics_view *v, char **out, size_t *len);

/* A label value with \, " and newline escaped as the text format wants.
 * Returns the length it needs (like snprintf); out is always terminated
 * when cap > 0. */
size_t md_metrics_escape(const char *in, char *out, size_t cap);

struct md_runtime;
struct md_expiry;
typedef struct md_metrics md_metrics;

/* Binds and listens on cfg->metrics_addr (at start-up, so that a taken port
 * is reported before anything runs). NULL with a message in err. */
md_metrics *md_metrics_open(const md_config *cfg, char *err, size_t errlen);
/* Starts serving; x may be NULL (no watcher). 0 or -1. */
int md_metrics_start(md_metrics *m, struct md_runtime *rt, struct md_expiry *x);
/* Stops the thread (within its poll interval) and closes the socket. */
void md_metrics_close(md_metrics *m);

#endif
