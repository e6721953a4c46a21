/*
 * mdgen: the benchmark's open-loop load generator.
 *
 * Tick i of a sender thread is *scheduled* at a fixed time (constant rate,
 * optionally with bursts) whatever happened before, and carries that
 * scheduled time as its origin stamp (bin1 trailer / jsonl origin_ns,
 * CLOCK_MONOTONIC). A system under test that stalls -- or a generator held
 * up by a full socket -- therefore shows the stall in every tick scheduled
 * during it instead of hiding it (coordinated omission). When it wakes, a
 * sender sends everything that is due, up to --per-datagram ticks per
 * datagram or write, as a feed handler forwards what arrived.
 *
 * Symbols are split between sender threads (symbol i belongs to thread
 * i % threads), so per-symbol order and sequence numbers hold without any
 * sharing; within a thread symbols are drawn with a Zipf skew. The oracle
 * model (tools/common/feedgen) knows every symbol's final value, and
 * --expect writes it so every run ends with an exact check against Redis.
 *
 * Bounded in count (--ticks, or rate x duration) and in time (--max-time);
 * loopback targets only.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/feedgen.h"
#include "md_hist.h"

#define GEN_UDP_DEFAULT 1400 /* datagram payload: loopback- and LAN-safe */
#define GEN_BUF_MAX 65536  /* stream write */
#define GEN_THREADS_MAX 16

typedef struct gen_opts {
    fg_target target;
    int format;
    double rate, duration, max_time, zipf;
    uint64_t nticks;
    uint32_t per_dgram, nthreads, dgram_bytes;
    int cpus[GEN_THREADS_MAX], ncpus;
    double burst_period, burst_len, burst_factor; /* seconds, seconds, x */
    char source[24];
    uint64_t seed;
    bool origin, progress;
    const char *expect;
} gen_opts;

typedef struct sender {
    pthread_t tid;
    int id;
    const gen_opts *o;
    fg_model *model;
    uint64_t rng;
    uint32_t nsym;       /* symbols owned: id, id + T, id + 2T, ... */
    double *cdf;         /* Zipf CDF over owned ranks, NULL = uniform */
    uint64_t quota;      /* ticks to send */
    double rate;         /* this thread's base ticks/s, 0 = flat out */
    int64_t start, hard_deadline;
    int fd;
    char source[32];
    unsigned char buf[GEN_BUF_MAX];
    size_t blen;
    uint32_t in_unit;
    int64_t last_ts;
    /* results */
    _Atomic uint64_t sent;
    atomic_bool done;
    uint64_t units, bytes, late;
    int64_t max_lag;
    md_hist lag;         /* per tick: moment of sending - scheduled time */
    int64_t finished;    /* CLOCK_MONOTONIC after the last send */
    bool timed_out;
    char err[256];
} sender;

static atomic_int gen_stop;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&gen_stop, 1);
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "mdgen: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

/* Waits until fd can take more, but never past the hard deadline: a
 * receiver that stops reading must not hold the generator forever.
 * -1 when time is up (or we were told to stop). */
static int wait_writable(sender *s)
{
    for (;;) {
        int64_t left = s->hard_deadline - fg_now(CLOCK_MONOTONIC);
        if (left <= 0 || atomic_load(&gen_stop)) {
            s->timed_out = left <= 0;
            return -1;
        }
        struct pollfd p = {.fd = s->fd, .events = POLLOUT};
        int ms = left > 100000000 ? 100 : (int)(left / 1000000) + 1;
        if (poll(&p, 1, ms) > 0)
            return 0;
    }
}

/* Sends the buffer as one datagram, or writes all of it to the stream.
 * The socket is non-blocking. */
static int flush_buf(sender *s)
{
    size_t off = 0;
    if (!s->blen)
        return 0;
    bool dgram = s->o->target.transport == FG_UDP;
    while (off < s->blen) {
        ssize_t n = dgram ? send(s->fd, s->buf, s->blen, 0) : write(s->fd, s->buf + off, s->blen - off);
        if (n >= 0) {
            off = dgram ? s->blen : off + (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == ENOBUFS) {
            if (wait_writable(s))
                return -1;
            continue;
        }
        snprintf(s->err, sizeof s->err, "%s: %s", dgram ? "send" : "write", strerror(errno));
        return -1;
    }
    s->units++;
    s->bytes += s->blen;
    s->blen = 0;
    s->in_unit = 0;
    return 0;
}

/* Rank in [0, nsym): Zipf(s) by inverse CDF, uniform when s = 0. */
static uint32_t pick_rank(sender *s)
{
    if (!s->cdf)
        return (uint32_t)fg_rnd_below(&s->rng, s->nsym);
    double u = fg_rnd_unit(&s->rng);
    uint32_t lo = 0, hi = s->nsym - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Gap to the next scheduled tick at time t (ns since start). */
static double gap_ns(const sender *s, double t)
{
    const gen_opts *o = s->o;
    double r = s->rate;
    if (o->burst_factor > 0 && fmod(t / 1e9, o->burst_period) < o->burst_len)
        r *= o->burst_factor;
    return 1e9 / r;
}

static void *sender_main(void *arg)
{
    sender *s = arg;
    const gen_opts *o = s->o;
    const size_t cap = o->target.transport == FG_UDP ? o->dgram_bytes : GEN_BUF_MAX;
    double due = 0; /* ns after start */
    uint64_t i = 0;

    if (o->ncpus) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o->cpus[s->id % o->ncpus], &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    while (i < s->quota && !atomic_load(&gen_stop)) {
        int64_t now = fg_now(CLOCK_MONOTONIC);
        if (now >= s->hard_deadline) {
            s->timed_out = true;
            break;
        }
        if (s->rate > 0 && s->start + (int64_t)due > now) {
            if (flush_buf(s))
                break;
            int64_t at = s->start + (int64_t)due;
            struct timespec ts = {at / 1000000000, at % 1000000000};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            now = fg_now(CLOCK_MONOTONIC);
        }
        /* Everything due by now (flat out: one unit's worth). */
        uint32_t batch = 0;
        do {
            fg_tick t;
            uint32_t rank = i < s->nsym ? (uint32_t)i : pick_rank(s);
            uint32_t si = (uint32_t)s->id + rank * o->nthreads;
            int64_t ts = fg_now(CLOCK_REALTIME);
            if (ts <= s->last_ts)
                ts = s->last_ts + 1;
            s->last_ts = ts;
            fg_gen_tick(s->model, &s->rng, si, i + 1, ts, &t);
            int64_t sched = s->rate > 0 ? s->start + (int64_t)due : now;
            if (o->origin)
                t.origin_ns = sched;
            if (now - sched > s->max_lag)
                s->max_lag = now - sched;
            md_hist_record(&s->lag, (uint64_t)(now > sched ? now - sched : 0));
            if (now - sched > 1000000)
                s->late++;
            if (s->blen + 512 > cap && flush_buf(s))
                goto out;
            size_t n = fg_encode(s->model, o->format, &t, s->source, false, s->buf + s->blen,
                                 cap - s->blen);
            if (!n) {
                snprintf(s->err, sizeof s->err, "internal: encode failed");
                goto out;
            }
            s->blen += n;
            fg_apply(s->model, &t);
            i++;
            atomic_store_explicit(&s->sent, i, memory_order_relaxed);
            if (++s->in_unit >= o->per_dgram && flush_buf(s))
                goto out;
            batch++;
            if (s->rate > 0)
                due += gap_ns(s, due);
        } while (i < s->quota &&
                 (s->rate > 0 ? s->start + (int64_t)due <= now : batch < o->per_dgram));
        if (flush_buf(s))
            break;
    }
out:
    flush_buf(s);
    s->finished = fg_now(CLOCK_MONOTONIC);
    atomic_store(&s->done, true);
    return NULL;
}

static void usage(FILE *f)
{
    fputs("usage: mdgen --target udp://H:P|tcp://H:P|unix:///path|file://path [options]\n"
          "  --format bin1|jsonl        wire format (bin1)\n"
          "  --rate R                   ticks/s offered, all threads together; 0 = flat out (10000)\n"
          "  --duration S               seconds of schedule: ticks = rate x S (10)\n"
          "  --ticks N                  cap on ticks (required with --rate 0)\n"
          "  --max-time S               hard stop, seconds (2 x duration + 10)\n"
          "  --symbols N                symbols, named PREFIX00000.. (1000)\n"
          "  --symbol-prefix P          (S)\n"
          "  --zipf S                   skew of symbol popularity, 0 = uniform (0)\n"
          "  --trade-ratio F            share of trades, rest quotes (0.3)\n"
          "  --per-datagram K           most ticks per datagram or stream write (32)\n"
          "  --datagram-bytes B         largest UDP payload (1400)\n"
          "  --threads N                sender threads, each with its own socket (1)\n"
          "  --cpus LIST                pin sender thread k to LIST[k %% n], e.g. 0 or 0,1\n"
          "  --burst P:L:F              every P ms, L ms at F x the rate\n"
          "  --source NAME              source name prefix; thread k sends NAMEk (mdgen)\n"
          "  --no-origin                do not stamp scheduled send times\n"
          "  --seed S                   PRNG seed (1)\n"
          "  --expect FILE              write every key's expected final value\n"
          "  --progress                 progress line on stderr\n",
          f);
}

static double num_arg(const char *name, const char *v, double lo, double hi)
{
    return fg_num_arg("mdgen", name, v, lo, hi);
}

static void parse_cpus(gen_opts *o, const char *v)
{
    char *copy = strdup(v), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->ncpus == GEN_THREADS_MAX)
            die("too many CPUs in --cpus '%s'", v);
        o->cpus[o->ncpus++] = (int)num_arg("cpus", tok, 0, CPU_SETSIZE - 1);
    }
    free(copy);
    if (!o->ncpus)
        die("empty --cpus '%s'", v);
}

static void parse_burst(gen_opts *o, const char *v)
{
    double p, l, f;
    char extra;
    if (sscanf(v, "%lf:%lf:%lf%c", &p, &l, &f, &extra) != 3 || !(p > 0) || !(l > 0) || l > p ||
        !(f > 0) || f > 1000)
        die("bad --burst '%s' (want PERIOD_MS:LEN_MS:FACTOR, LEN <= PERIOD)", v);
    o->burst_period = p / 1000;
    o->burst_len = l / 1000;
    o->burst_factor = f;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", 1, 0, 't'},     {"format", 1, 0, 'f'},       {"rate", 1, 0, 'r'},
        {"duration", 1, 0, 'd'},   {"ticks", 1, 0, 'k'},        {"max-time", 1, 0, 'M'},
        {"symbols", 1, 0, 'n'},    {"symbol-prefix", 1, 0, 'P'}, {"zipf", 1, 0, 'z'},
        {"trade-ratio", 1, 0, 'T'}, {"per-datagram", 1, 0, 'K'}, {"threads", 1, 0, 'j'},
        {"cpus", 1, 0, 'c'},       {"burst", 1, 0, 'b'},        {"source", 1, 0, 's'},
        {"no-origin", 0, 0, 'O'},  {"datagram-bytes", 1, 0, 'B'},  {"seed", 1, 0, 'S'},         {"expect", 1, 0, 'e'},
        {"progress", 0, 0, 'p'},   {"help", 0, 0, 'h'},         {0, 0, 0, 0}};
    static gen_opts o;
    static fg_model model;
    const char *target = NULL, *prefix = "S";
    uint32_t nsym = 1000;
    double trade_ratio = 0.3;
    bool have_ticks = false, have_max = false;
    int c;

    o.format = FG_BIN1;
    o.rate = 10000;
    o.duration = 10;
    o.per_dgram = 32;
    o.dgram_bytes = GEN_UDP_DEFAULT;
    o.nthreads = 1;
    o.origin = true;
    o.seed = 1;
    strcpy(o.source, "mdgen");
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': target = optarg; break;
        case 'f':
            if (strcmp(optarg, "bin1") == 0)
                o.format = FG_BIN1;
            else if (strcmp(optarg, "jsonl") == 0)
                o.format = FG_JSONL;
            else
                die("bad --format '%s' (bin1 or jsonl)", optarg);
            break;
        case 'r': o.rate = num_arg("rate", optarg, 0, 1e9); break;
        case 'd': o.duration = num_arg("duration", optarg, 0.001, 86400); break;
        case 'k': o.nticks = (uint64_t)num_arg("ticks", optarg, 1, 1e12); have_ticks = true; break;
        case 'M': o.max_time = num_arg("max-time", optarg, 0.001, 86400); have_max = true; break;
        case 'n': nsym = (uint32_t)num_arg("symbols", optarg, 1, 10000000); break;
        case 'P':
            if (strlen(optarg) > 10)
                die("--symbol-prefix '%s' too long (max 10)", optarg);
            prefix = optarg;
            break;
        case 'z': o.zipf = num_arg("zipf", optarg, 0, 10); break;
        case 'T': trade_ratio = num_arg("trade-ratio", optarg, 0, 1); break;
        case 'K': o.per_dgram = (uint32_t)num_arg("per-datagram", optarg, 1, 1000); break;
        case 'j': o.nthreads = (uint32_t)num_arg("threads", optarg, 1, GEN_THREADS_MAX); break;
        case 'c': parse_cpus(&o, optarg); break;
        case 'b': parse_burst(&o, optarg); break;
        case 's':
            if (strlen(optarg) == 0 || strlen(optarg) > 20)
                die("--source '%s' must be 1..20 bytes", optarg);
            strcpy(o.source, optarg);
            break;
        case 'O': o.origin = false; break;
        case 'B': o.dgram_bytes = (uint32_t)num_arg("datagram-bytes", optarg, 512, 65000); break;
        case 'S': o.seed = (uint64_t)num_arg("seed", optarg, 0, 1.8e19); break;
        case 'e': o.expect = optarg; break;
        case 'p': o.progress = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc)
        die("unexpected argument '%s'", argv[optind]);
    if (!target)
        die("%s", "--target is required (see --help)");
    char err[256];
    if (fg_target_parse(target, &o.target, err, sizeof err))
        die("%s", err);
    if (o.rate == 0 && !have_ticks)
        die("%s", "--rate 0 (flat out) needs --ticks");
    if (o.rate > 0) {
        uint64_t sched = (uint64_t)llround(o.rate * o.duration);
        if (!have_ticks || sched < o.nticks)
            o.nticks = sched;
    }
    if (!have_max)
        o.max_time = 2 * o.duration + 10;
    if (o.nthreads > nsym)
        die("%s", "--threads must not exceed --symbols");
    if (o.target.transport == FG_FILE && o.nthreads > 1)
        die("%s", "a file:// target takes one sender thread");
    if (o.target.transport == FG_FILE && o.origin && o.rate > 0)
        fprintf(stderr, "mdgen: note: origin stamps in a file are in the past when it is replayed\n");

    uint64_t rng = o.seed;
    if (fg_model_init(&model, nsym, prefix, &rng))
        die("%s", "out of memory");
    model.trade_ratio = trade_ratio;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    static sender snd[GEN_THREADS_MAX];
    int64_t start = fg_now(CLOCK_MONOTONIC) + 20000000; /* 20 ms to get every thread going */
    for (uint32_t k = 0; k < o.nthreads; k++) {
        sender *s = &snd[k];
        s->id = (int)k;
        md_hist_reset(&s->lag);
        s->o = &o;
        s->model = &model;
        s->rng = o.seed * 0x9e3779b97f4a7c15ULL + k + 1;
        s->nsym = (nsym - k + o.nthreads - 1) / o.nthreads;
        s->quota = o.nticks / o.nthreads + (k < o.nticks % o.nthreads);
        s->rate = o.rate / o.nthreads;
        s->start = start;
        s->hard_deadline = start + (int64_t)(o.max_time * 1e9);
        snprintf(s->source, sizeof s->source, "%.20s%u", o.source, k & 0xffu);
        if (o.zipf > 0) {
            s->cdf = malloc(sizeof *s->cdf * s->nsym);
            if (!s->cdf)
                die("%s", "out of memory");
            double sum = 0;
            for (uint32_t r = 0; r < s->nsym; r++)
                sum += 1.0 / pow(r + 1.0, o.zipf);
            double acc = 0;
            for (uint32_t r = 0; r < s->nsym; r++) {
                acc += 1.0 / pow(r + 1.0, o.zipf) / sum;
                s->cdf[r] = acc;
            }
            s->cdf[s->nsym - 1] = 1.0;
        }
        s->fd = fg_connect(&o.target, err, sizeof err);
        if (s->fd < 0)
            die("%s", err);
        fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
    }
    for (uint32_t k = 0; k < o.nthreads; k++)
        if (pthread_create(&snd[k].tid, NULL, sender_main, &snd[k]))
            die("%s", "cannot start a sender thread");

    /* Progress, and the wait for the senders. */
    for (;;) {
        struct timespec ts = {0, 250000000};
        nanosleep(&ts, NULL);
        uint64_t sent = 0;
        bool running = false;
        for (uint32_t k = 0; k < o.nthreads; k++) {
            uint64_t n = atomic_load_explicit(&snd[k].sent, memory_order_relaxed);
            sent += n;
            running |= !atomic_load(&snd[k].done);
        }
        if (o.progress) {
            double el = (double)(fg_now(CLOCK_MONOTONIC) - start) / 1e9;
            fprintf(stderr, "\rmdgen: sent %" PRIu64 "/%" PRIu64 "  %.0f ticks/s  %.1fs   ", sent,
                    o.nticks, el > 0 ? (double)sent / el : 0.0, el);
        }
        if (!running)
            break;
    }
    uint64_t sent = 0, units = 0, bytes = 0, late = 0;
    int64_t max_lag = 0, finished = start;
    static md_hist lag;
    md_hist_reset(&lag);
    bool timed_out = false, failed = false;
    for (uint32_t k = 0; k < o.nthreads; k++) {
        sender *s = &snd[k];
        pthread_join(s->tid, NULL);
        sent += s->sent;
        units += s->units;
        bytes += s->bytes;
        late += s->late;
        if (s->max_lag > max_lag)
            max_lag = s->max_lag;
        timed_out |= s->timed_out;
        md_hist_merge(&lag, &s->lag);
        if (s->finished > finished)
            finished = s->finished;
        if (s->err[0]) {
            fprintf(stderr, "\nmdgen: sender %u: %s\n", k, s->err);
            failed = true;
        }
        if (o.target.transport != FG_UDP)
            shutdown(s->fd, SHUT_WR);
        close(s->fd);
        free(s->cdf);
    }
    /* From the first scheduled tick to the last send. */
    double el = (double)(finished - start) / 1e9;
    if (o.progress)
        fputc('\n', stderr);
    if (timed_out)
        fprintf(stderr, "mdgen: --max-time %.3gs reached after %" PRIu64 " of %" PRIu64
                        " ticks, stopping\n", o.max_time, sent, o.nticks);
    if (o.expect && fg_write_expect(&model, o.expect, "mdgen"))
        failed = true;
    printf("mdgen: sent=%" PRIu64 " scheduled=%" PRIu64 " threads=%u %s=%" PRIu64 " bytes=%" PRIu64
           " elapsed=%.3f rate=%.0f offered=%.0f late_ticks=%" PRIu64 " lag_p50_us=%.1f"
           " lag_p99_us=%.1f lag_p999_us=%.1f max_lag_us=%.1f timed_out=%d\n",
           sent, o.nticks, o.nthreads, o.target.transport == FG_UDP ? "datagrams" : "writes", units,
           bytes, el, el > 0 ? (double)sent / el : 0.0, o.rate, late,
           (double)md_hist_quantile(&lag, 0.5) / 1e3, (double)md_hist_quantile(&lag, 0.99) / 1e3,
           (double)md_hist_quantile(&lag, 0.999) / 1e3, (double)max_lag / 1e3, timed_out ? 1 : 0);
    fg_model_free(&model);
    return failed ? 1 : 0;
}
