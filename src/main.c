/*
 * mdcache: entry point. Loads the configuration, opens the feed sockets,
 * starts the pinned workers, then the main thread only handles signals and
 * prints the periodic stats line; all data moves on the workers.
 *
 * Exit codes: 0 clean (every dirty key flushed), 1 runtime failure or keys
 * left unwritten at shutdown, 2 configuration error, including what Redis
 * refused at start-up (credentials, certificate, database): retrying cannot
 * fix those, and a supervisor should not restart into them. A metrics
 * address that cannot be bound is one too.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "md_config.h"
#include "md_expiry.h"
#include "md_listen.h"
#include "md_log.h"
#include "md_metrics.h"
#include "md_preflight.h"
#include "md_redis.h"
#include "md_stats.h"
#include "md_topo_service.h"
#include "md_topology.h"
#include "md_worker.h"

static md_expiry expiry;

static void print_stats(md_runtime *rt, const char *tag, int with_errors)
{
    md_stats s;
    char line[2048];
    md_runtime_stats(rt, &s);
    md_expiry_collect(&expiry, &s);
    md_stats_format(&s, with_errors, line, sizeof line);
    md_info("%s: %s", tag, line);
}

static md_hist lat, rtt, batch;

/* One line per histogram, microseconds with 0.1 us resolution. Latency is
 * per tick: from its origin (the sender's stamp, else its receipt) to
 * Redis's acknowledgement of the write carrying it, every tick of a write
 * charged as the oldest. */
static void print_latency(md_runtime *rt)
{
    md_hist_reset(&lat);
    md_hist_reset(&rtt);
    md_hist_reset(&batch);
    md_runtime_histograms(rt, &lat, &rtt, &batch);
    const struct { const char *name; const md_hist *h; double div; } rows[] = {
        {"latency_us", &lat, 1000.0}, {"redis_rtt_us", &rtt, 1000.0}, {"batch_keys", &batch, 1.0}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const md_hist *h = rows[i].h;
        double d = rows[i].div;
        md_info("%s: n=%llu p50=%.1f p90=%.1f p99=%.1f p999=%.1f max=%.1f", rows[i].name,
                (unsigned long long)h->count, (double)md_hist_quantile(h, 0.5) / d,
                (double)md_hist_quantile(h, 0.9) / d, (double)md_hist_quantile(h, 0.99) / d,
                (double)md_hist_quantile(h, 0.999) / d, (double)h->max / d);
    }
}

/* The machine-readable end of a run (bench/ reads it; field names are the
 * ones every bench baseline writes too). */
static int write_report(md_runtime *rt, const char *path, uint64_t left)
{
    md_stats s;
    md_runtime_stats(rt, &s);
    md_expiry_collect(&expiry, &s);
    FILE *f = fopen(path, "w");
    if (!f) {
        md_error("report %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "{\"system\":\"mdcache\",\"version\":\"%s\",\"workers\":%d", MD_VERSION,
            rt->nworkers);
#define MD_REPORT_FIELD(n, ...) fprintf(f, ",\"%s\":%llu", #n, (unsigned long long)s.n);
    MD_STATS_FIELDS(MD_REPORT_FIELD)
#undef MD_REPORT_FIELD
    fprintf(f, ",\"ticks\":%llu,\"write_errors\":%llu,\"unflushed\":%llu",
            (unsigned long long)s.ticks_in, (unsigned long long)s.redis_errors,
            (unsigned long long)left);
    fputs(",\"latency_ns\":", f);
    md_hist_write_json(f, &lat);
    fputs(",\"rtt_ns\":", f);
    md_hist_write_json(f, &rtt);
    fputs(",\"batch_keys\":", f);
    md_hist_write_json(f, &batch);
    fputs("}\n", f);
    if (fclose(f) != 0) {
        md_error("report %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void empty_map(md_topology *t)
{
    memset(t, 0, sizeof *t);
    for (int s = 0; s < MD_SLOT_COUNT; s++) t->owner[s] = MD_SLOT_NONE;
}

/* The start-up check on each seed in turn (md_preflight_seeds). A cluster
 * node fills topo. Nonzero: exit 2, said on stderr. */
static int start_check(const md_config *cfg, md_redis_target *seed, md_topology *topo,
                       bool *cluster)
{
    char msg[2048];
    md_redis_target answered;
    switch (md_preflight_seeds(cfg, seed, &answered, msg, sizeof msg, topo, cluster)) {
    case MD_PREFLIGHT_OK:
        if (*cluster && topo->nnodes)
            md_info("redis %s is a Redis Cluster node: %s", answered.display, msg);
        else if (*cluster) /* INFO refused: cluster = yes is the operator's word */
            md_info("redis %s: cluster = yes; the topology thread reads the slot map",
                    answered.display);
        return 0;
    case MD_PREFLIGHT_REFUSED:
        fprintf(stderr, "mdcache: %s\n", msg);
        return -1;
    case MD_PREFLIGHT_UNREACHABLE:
        break;
    }
    /* Nobody answered: a server that is not up yet is not an error. With
     * several seeds, or cluster = yes, it is a cluster whose map the
     * topology thread keeps asking for. */
    *cluster = cfg->cluster == MD_CLUSTER_YES || cfg->redis.nseeds > 1;
    empty_map(topo);
    md_warn("%s%s; starting anyway, retrying in the background", msg,
            cfg->redis.nseeds > 1 ? ", nor any other seed" : "");
    return 0;
}

/* mlock and sched_priority, checked before anything starts: a system
 * that forbids them says so in one line (exit 2) rather than through a
 * worker that cannot start. */
static int apply_system(const md_config *cfg)
{
    if (cfg->mlock) {
        /* MCL_ONFAULT: pages are locked as they are touched, so resident
         * memory still follows the symbols held, not max_keys. */
        int rc = mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT);
        if (rc && errno == EINVAL) rc = mlockall(MCL_CURRENT | MCL_FUTURE); /* kernel < 4.4 */
        if (rc) {
            int e = errno;
            struct rlimit rl;
            char lim[64] = "unknown";
            if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0)
                snprintf(lim, sizeof lim, rl.rlim_cur == RLIM_INFINITY ? "unlimited" : "%llu KiB",
                         (unsigned long long)rl.rlim_cur / 1024);
            fprintf(stderr,
                    "mdcache: mlock = yes: mlockall: %s; RLIMIT_MEMLOCK is %s: raise it (ulimit "
                    "-l unlimited, LimitMEMLOCK=infinity in a systemd unit) or give mdcache "
                    "CAP_IPC_LOCK\n",
                    strerror(e), lim);
            return -1;
        }
    }
    if (cfg->sched_priority) {
        /* Probe on this thread, then back: workers get the policy when
         * they are created. */
        struct sched_param sp = {.sched_priority = (int)cfg->sched_priority};
        int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
        if (rc) {
            struct rlimit rl;
            char lim[32] = "unknown";
            if (getrlimit(RLIMIT_RTPRIO, &rl) == 0)
                snprintf(lim, sizeof lim, "%llu", (unsigned long long)rl.rlim_cur);
            fprintf(stderr,
                    "mdcache: sched_priority = %u: SCHED_FIFO refused: %s; needs CAP_SYS_NICE or "
                    "RLIMIT_RTPRIO >= %u (it is %s; LimitRTPRIO= in a systemd unit)\n",
                    cfg->sched_priority, strerror(rc), cfg->sched_priority, lim);
            return -1;
        }
        sp.sched_priority = 0;
        pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static md_config cfg;
    char err[1024];
    int rc = md_config_load(&cfg, argc, argv, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "mdcache: %s\n", err);
        return 2;
    }
    if (rc > 0) return 0;
    md_log_level_cur = cfg.log_level;

    static md_runtime rt;
    rt.cfg = &cfg;
    if (md_redis_resolve(&cfg.redis, &rt.redis_target, err, sizeof err)) {
        fprintf(stderr, "mdcache: %s\n", err);
        return 2;
    }
    md_tls_ctx *tls = NULL;
    if (cfg.redis.kind == MD_REDIS_TLS) {
        tls = md_tls_ctx_new(&cfg, cfg.tls_sni[0] ? cfg.tls_sni : cfg.redis.host, err, sizeof err);
        if (!tls) {
            fprintf(stderr, "mdcache: %s\n", err);
            return 2;
        }
        rt.redis_target.tls = tls;
    }
    if (cfg.check_only) {
        md_tls_ctx_free(tls);
        fprintf(stderr, "mdcache: configuration OK\n");
        return 0;
    }
    if (apply_system(&cfg)) {
        md_tls_ctx_free(tls);
        return 2;
    }
    /* Bound before anything starts, so that a taken port is an immediate,
     * plain configuration error rather than a daemon without its metrics. */
    md_metrics *metrics = NULL;
    if (cfg.metrics_addr[0] && !(metrics = md_metrics_open(&cfg, err, sizeof err))) {
        fprintf(stderr, "mdcache: %s\n", err);
        md_tls_ctx_free(tls);
        return 2;
    }
    if (tls && md_tls_ctx_insecure(tls))
        md_warn("TLS peer verification is OFF (--insecure): redis %s is not authenticated",
                rt.redis_target.display);
    static md_topology topo;
    bool cluster = false;
    if (start_check(&cfg, &rt.redis_target, &topo, &cluster) != 0) {
        md_metrics_close(metrics);
        md_tls_ctx_free(tls);
        return 2;
    }
    static md_topo_service topo_svc;
    if (cluster) {
        rt.topo = &topo_svc;
        if (md_topo_service_start(&topo_svc, &cfg, &rt.redis_target, &topo)) {
            md_error("could not start the cluster topology thread");
            md_metrics_close(metrics);
            md_tls_ctx_free(tls);
            return 1;
        }
    }

    /* Workers inherit this mask: signals are taken only here, with
     * sigtimedwait, so no handler ever runs on a worker. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (md_listen_open(rt.listeners, &cfg, err, sizeof err)) {
        md_error("%s", err);
        md_metrics_close(metrics);
        md_tls_ctx_free(tls);
        return 1;
    }
    if (md_runtime_start(&rt)) {
        md_error("could not start the workers");
        md_listen_close(rt.listeners, &cfg);
        md_metrics_close(metrics);
        md_tls_ctx_free(tls);
        return 1;
    }
    /* Its thread inherits the signal mask blocked above, like the workers. */
    if (md_expiry_start(&expiry, &cfg, &rt.redis_target, rt.topo))
        md_warn("expiry watcher could not start: stale keys will not be counted");
    if (metrics && md_metrics_start(metrics, &rt, &expiry)) {
        /* The workers run and Redis is being written: losing the
         * endpoint is not worth losing that. */
        md_error("metrics thread could not start: %s is not served", cfg.metrics_addr);
        md_metrics_close(metrics);
        metrics = NULL;
    }
    char url[1100];
    md_redis_url_redact(cfg.redis_url, url, sizeof url);
    char cpus[256];
    size_t off = 0;
    for (int i = 0; i < cfg.ncpus && off < sizeof cpus; i++)
        off += (size_t)snprintf(cpus + off, sizeof cpus - off, "%s%d", i ? "," : "", cfg.cpus[i]);
    md_info("ready: %d worker%s on cpu %s, %d feed%s", rt.nworkers, rt.nworkers == 1 ? "" : "s",
            cpus, cfg.nlisten, cfg.nlisten == 1 ? "" : "s");
    for (int i = 0; i < cfg.nlisten; i++) md_info("listening on %s", cfg.listen[i].spec);
    md_info("redis %s (from %s), keys %s, ttl %us", url, cfg.redis_url_from, cfg.price_key,
            cfg.price_ttl_s);
    if (metrics) md_info("metrics on http://%s/metrics", cfg.metrics_addr);

    double iv = cfg.stats_interval_s > 0 ? cfg.stats_interval_s : 1.0;
    struct timespec wait = {(time_t)iv, (long)((iv - (double)(time_t)iv) * 1e9)};
    for (;;) {
        int sig = sigtimedwait(&sigs, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT) {
            md_info("%s: stopping: flushing dirty keys (up to %.1fs)",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.shutdown_timeout_s);
            break;
        }
        if (sig == SIGHUP) {
            md_info("SIGHUP: logs go to stderr, nothing to reopen");
            continue;
        }
        if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            md_error("sigtimedwait: %s", strerror(errno));
            break;
        }
        if (sig < 0 && errno == EAGAIN && cfg.stats_interval_s > 0) print_stats(&rt, "stats", 0);
    }
    /* Before the expiry watcher, whose mirror it reads (the workers' last
     * until md_runtime_free). */
    md_metrics_close(metrics);
    md_expiry_stop(&expiry);
    uint64_t left = md_runtime_stop(&rt);
    if (rt.topo) md_topo_service_stop(rt.topo);
    print_stats(&rt, "final", 1);
    print_latency(&rt);
    bool report_failed = cfg.report_file[0] && write_report(&rt, cfg.report_file, left);
    md_listen_close(rt.listeners, &cfg);
    md_runtime_free(&rt);
    md_tls_ctx_free(tls);
    if (left) {
        md_error("shutdown: %llu keys were not written to Redis", (unsigned long long)left);
        return 1;
    }
    if (report_failed) {
        md_error("shutdown complete: every key flushed, but the report was not written");
        return 1;
    }
    md_info("shutdown complete: every key flushed");
    return 0;
}
