/*
 * mdfeed: deterministic tick generator for mdcache, and the oracle that says
 * what Redis must hold afterwards.
 *
 * It sends quotes and trades for N symbols (seeded PRNG, so a run can be
 * repeated exactly) over UDP, TCP or a Unix stream socket, in bin1 or jsonl,
 * optionally mixed with duplicates, garbage and heartbeats. While sending it
 * keeps its own model of every symbol's state -- deliberately independent of
 * the daemon's coalescer and formatter, so the two can check each other --
 * and with --expect writes the exact value every price key must end up with.
 *
 * With --accounts it also sends position, order, balance and account
 * messages for that many accounts, from a PRNG stream of their own, and
 * keeps a second oracle of what every account key must hold (or, for an
 * order that ended, must no longer hold): tools/common/feedgen.h.
 *
 * Pacing is open-loop: tick i is due at start + i / rate, whatever happened
 * before, so a slow send does not silently lower the offered rate.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mdcache_bin1.h"
#include "common/feedgen.h"

#define FEED_UDP_MAX 8192   /* datagram payload cap (brief: <= 8 KiB) */
#define FEED_BUF_MAX 65536  /* stream write buffer */
#define FEED_HIST 4096      /* ticks remembered for --dup-ratio */

typedef struct feed {
    /* options */
    int format;
    fg_target target;
    fg_model model;
    uint64_t nticks;
    double rate, duration;
    uint32_t per_packet;
    double dup_ratio, garbage_ratio;
    char source[32];
    uint64_t hb_every;
    const char *expect_path;
    bool progress, string_numbers;
    uint64_t seed;
    uint32_t naccts;
    uint64_t acct_every;
    /* state */
    uint64_t rng;
    int fd;
    fg_tick hist[FEED_HIST];
    uint64_t nhist;
    uint64_t seq;
    int64_t last_ts;
    unsigned char buf[FEED_BUF_MAX];
    size_t blen;
    uint32_t in_packet;
    fg_accts accts;
    /* counters */
    uint64_t sent, dups, garbage, heartbeats, acct_msgs, bytes, packets;
} feed;

static volatile sig_atomic_t feed_stop;

static void feed_on_signal(int sig)
{
    (void)sig;
    feed_stop = 1;
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "mdfeed: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

static uint64_t rnd_below(feed *f, uint64_t n) { return fg_rnd_below(&f->rng, n); }
static double rnd_unit(feed *f) { return fg_rnd_unit(&f->rng); }

/* ---- transport ---- */

static void feed_connect(feed *f)
{
    char err[256];
    f->fd = fg_connect(&f->target, err, sizeof err);
    if (f->fd < 0)
        die("%s", err);
}

static void feed_flush(feed *f)
{
    size_t off = 0;

    if (f->blen == 0)
        return;
    if (f->target.transport == FG_UDP) {
        for (;;) {
            ssize_t n = send(f->fd, f->buf, f->blen, 0);
            if (n >= 0)
                break;
            if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) {
                struct timespec ts = {0, 50000};
                nanosleep(&ts, NULL);
                continue;
            }
            die("send failed: %s", strerror(errno));
        }
    } else {
        while (off < f->blen) {
            ssize_t n = write(f->fd, f->buf + off, f->blen - off);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                die("write failed: %s", strerror(errno));
            }
            off += (size_t)n;
        }
    }
    f->bytes += f->blen;
    f->packets++;
    f->blen = 0;
    f->in_packet = 0;
}

/* Room for a unit of `need` bytes: a datagram never exceeds FEED_UDP_MAX. */
static void feed_reserve(feed *f, size_t need)
{
    size_t cap = f->target.transport == FG_UDP ? FEED_UDP_MAX : FEED_BUF_MAX;
    if (f->blen + need > cap)
        feed_flush(f);
}

static void feed_unit_done(feed *f)
{
    if (++f->in_packet >= f->per_packet)
        feed_flush(f);
}

/* ---- encoding ---- */

static void emit_tick(feed *f, const fg_tick *t)
{
    size_t cap = f->target.transport == FG_UDP ? FEED_UDP_MAX : FEED_BUF_MAX;
    size_t n;
    if (f->blen + 512 > cap)
        feed_flush(f);
    n = fg_encode(&f->model, f->format, t, f->source, f->string_numbers, f->buf + f->blen,
                  cap - f->blen);
    if (n == 0)
        die("%s", "internal: tick encode failed");
    f->blen += n;
    feed_unit_done(f);
}

static void emit_heartbeat(feed *f, int64_t ts)
{
    if (f->format == FG_BIN1) {
        feed_reserve(f, 64);
        f->blen += mdcache_bin1_put_heartbeat(f->buf + f->blen, sizeof f->buf - f->blen,
                                              f->source, ts);
    } else {
        char line[128];
        int n = snprintf(line, sizeof line,
                         "{\"type\":\"heartbeat\",\"source\":\"%s\",\"ts\":%" PRId64 "}\n",
                         f->source, ts);
        feed_reserve(f, (size_t)n);
        memcpy(f->buf + f->blen, line, (size_t)n);
        f->blen += (size_t)n;
    }
    f->heartbeats++;
    feed_unit_done(f);
}

static void put_raw(feed *f, const void *p, size_t n)
{
    feed_reserve(f, n);
    memcpy(f->buf + f->blen, p, n);
    f->blen += n;
}

/*
 * Garbage the daemon must drop without losing anything around it. In a
 * stream every piece must still be self-delimiting for a receiver that
 * follows the documented resync rules: jsonl junk ends with '\n', bin1 junk
 * never contains the magic byte, and bad bin1 frames carry a consistent len.
 * In a bin1 datagram a bad header drops the rest of the datagram, so garbage
 * always ends its datagram there.
 */
static void emit_garbage(feed *f, int64_t ts)
{
    int kind = (int)rnd_below(f, 6);
    char sym[32];

    fg_sym_name(&f->model, (uint32_t)rnd_below(f, f->model.nsym), sym);
    if (f->format == FG_JSONL) {
        char line[5200];
        size_t n = 0;
        switch (kind) {
        case 0: /* binary junk */
            n = 1 + rnd_below(f, 60);
            for (size_t i = 0; i < n; i++) {
                char c = (char)rnd_below(f, 256);
                line[i] = c == '\n' ? 'x' : c;
            }
            line[0] = '\x01'; /* never a blank line, which a reader may skip silently */
            line[n++] = '\n';
            break;
        case 1:
            n = (size_t)sprintf(line, "{\"type\":\"trade\",\"symbol\":\"%s\",\"price\":\"NaN\","
                                      "\"size\":1,\"ts\":%" PRId64 "}\n", sym, ts);
            break;
        case 2:
            n = (size_t)sprintf(line, "{\"type\":\"trade\",\"symbol\":\"%s\",\"price\":100.00,"
                                      "\"size\":-3,\"ts\":%" PRId64 "}\n", sym, ts);
            break;
        case 3:
            n = (size_t)sprintf(line, "{\"type\":\"trade\",\"symbol\":\"%s%s%s%s%s\","
                                      "\"price\":1.00,\"size\":1}\n", sym, sym, sym, sym, sym);
            break;
        case 4: /* oversized line */
            n = (size_t)sprintf(line, "{\"type\":\"trade\",\"symbol\":\"%s\",\"pad\":\"", sym);
            memset(line + n, 'p', 4200);
            n += 4200;
            n += (size_t)sprintf(line + n, "\",\"price\":1.00,\"size\":1}\n");
            break;
        default: /* cut short */
            n = (size_t)sprintf(line, "{\"type\":\"trade\",\"symbol\":\"%s\",\"pri\n", sym);
            break;
        }
        put_raw(f, line, n);
    } else {
        unsigned char fr[1200];
        size_t n = 0;
        switch (kind) {
        case 0: /* binary junk without the magic byte */
            n = 1 + rnd_below(f, 60);
            for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)rnd_below(f, 256);
                fr[i] = c == MDCACHE_BIN1_MAGIC ? 0 : c;
            }
            break;
        case 1: /* exponent out of range: the binary NaN */
            n = mdcache_bin1_put_trade(fr, sizeof fr, sym, f->source, 0, 0, 0, 0,
                                       mdcache_bin1_make(100, 0), mdcache_bin1_int(1));
            fr[n - 10] = (unsigned char)-40; /* price exponent below -18 */
            break;
        case 2:
            n = mdcache_bin1_put_trade(fr, sizeof fr, sym, f->source, 0, 0, 0, 0,
                                       mdcache_bin1_make(100, 0), mdcache_bin1_int(-3));
            break;
        case 3: /* 40-byte symbol, len consistent */
            n = mdcache_bin1_put_trade(fr, sizeof fr, "X", NULL, 0, 0, 0, 0,
                                       mdcache_bin1_make(100, 0), mdcache_bin1_int(1));
            memmove(fr + 24 + 40, fr + 25, n - 25);
            memset(fr + 24, 'L', 40);
            n += 39;
            fr[2] = (unsigned char)(n & 0xff);
            fr[3] = (unsigned char)(n >> 8);
            fr[5] = 40;
            break;
        case 4: /* unknown type, len consistent */
            n = mdcache_bin1_put_trade(fr, sizeof fr, sym, NULL, 0, 0, 0, 0,
                                       mdcache_bin1_make(100, 0), mdcache_bin1_int(1));
            fr[4] = 99;
            break;
        default:
            n = mdcache_bin1_put_trade(fr, sizeof fr, sym, NULL, 0, 0, 0, 0,
                                       mdcache_bin1_make(100, 0), mdcache_bin1_int(1));
            n -= 5;
            /* A datagram can really be cut (its end bounds the frame); in a
             * stream the header must agree, or the next frame would be eaten. */
            if (f->target.transport != FG_UDP) {
                fr[2] = (unsigned char)(n & 0xff);
                fr[3] = (unsigned char)(n >> 8);
            }
            break;
        }
        put_raw(f, fr, n);
        if (f->target.transport == FG_UDP)
            feed_flush(f);
    }
    f->garbage++;
    feed_unit_done(f);
}

/* ---- generation ---- */

static int64_t next_ts(feed *f)
{
    int64_t t = fg_now(CLOCK_REALTIME);
    if (t <= f->last_ts)
        t = f->last_ts + 1;
    f->last_ts = t;
    return t;
}

static void gen_tick(feed *f, uint32_t si, fg_tick *t)
{
    fg_gen_tick(&f->model, &f->rng, si, ++f->seq, next_ts(f), t);
}

/* One account message, numbered from the ticks' counter: the daemon keeps
 * one last seq per source and account, which one increasing counter per
 * source satisfies whatever the mix. */
static void emit_account(feed *f)
{
    size_t cap = f->target.transport == FG_UDP ? FEED_UDP_MAX : FEED_BUF_MAX;
    fg_amsg m;
    size_t n;

    if (fg_acct_gen(&f->accts, &f->model, ++f->seq, next_ts(f), &m))
        die("%s", "out of memory");
    if (f->blen + 1024 > cap)
        feed_flush(f);
    n = fg_acct_encode(&f->model, f->format, &m, f->source, f->string_numbers,
                       f->buf + f->blen, cap - f->blen);
    if (n == 0)
        die("%s", "internal: account message encode failed");
    f->blen += n;
    fg_acct_apply(&f->accts, &m);
    f->acct_msgs++;
    feed_unit_done(f);
}

static void show_progress(feed *f, int64_t start, bool final)
{
    double el = (double)(fg_now(CLOCK_MONOTONIC) - start) / 1e9;
    fprintf(stderr, "\rmdfeed: sent %" PRIu64 "/%" PRIu64 "  %.0f ticks/s  %.1fs   %s", f->sent,
            f->nticks, el > 0 ? (double)f->sent / el : 0.0, el, final ? "\n" : "");
    fflush(stderr);
}

static void usage(FILE *o)
{
    fputs("usage: mdfeed --target udp://H:P|tcp://H:P|unix:///path [options]\n"
          "  --format bin1|jsonl      wire format (bin1)\n"
          "  --symbols N              symbols (1000), named PREFIX00000..\n"
          "  --symbol-prefix P        symbol name prefix (SYM)\n"
          "  --ticks N                data ticks to send (100000)\n"
          "  --rate R                 ticks/s, 0 = flat out (0)\n"
          "  --duration S             hard time bound in seconds (60)\n"
          "  --per-packet K           ticks per datagram/write (20)\n"
          "  --trade-ratio F          share of trades (0.3)\n"
          "  --source NAME            source name (mdfeed)\n"
          "  --dup-ratio F            re-send old ticks with their seq (0)\n"
          "  --garbage-ratio F        mix in invalid lines/frames (0)\n"
          "  --heartbeat-every N      heartbeat after every N ticks (0 = none)\n"
          "  --accounts N             also send position, order, balance and account\n"
          "                           messages for N accounts, ACC0000.. (0 = none)\n"
          "  --account-every K        one account message after every K ticks (10)\n"
          "  --decimal-sizes          some sizes with 3 decimals\n"
          "  --string-numbers         some jsonl numbers as strings\n"
          "  --expect FILE            write expected key values as JSON lines; value\n"
          "                           null: the key must not exist (an ended order)\n"
          "  --progress               live progress on stderr\n"
          "  --seed S                 PRNG seed (1)\n",
          o);
}

static double num_arg(const char *name, const char *v, double lo, double hi)
{
    return fg_num_arg("mdfeed", name, v, lo, hi);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", 1, 0, 't'},        {"format", 1, 0, 'f'},       {"symbols", 1, 0, 'n'},
        {"symbol-prefix", 1, 0, 'P'}, {"ticks", 1, 0, 'k'},        {"rate", 1, 0, 'r'},
        {"duration", 1, 0, 'd'},      {"per-packet", 1, 0, 'K'},   {"trade-ratio", 1, 0, 'T'},
        {"source", 1, 0, 's'},        {"dup-ratio", 1, 0, 'D'},    {"garbage-ratio", 1, 0, 'G'},
        {"heartbeat-every", 1, 0, 'H'}, {"expect", 1, 0, 'e'},     {"progress", 0, 0, 'p'},
        {"seed", 1, 0, 'S'},          {"decimal-sizes", 0, 0, 'z'}, {"string-numbers", 0, 0, 'Z'},
        {"accounts", 1, 0, 'A'},      {"account-every", 1, 0, 'E'},
        {"help", 0, 0, 'h'},          {0, 0, 0, 0}};
    static feed F;
    feed *f = &F;
    const char *target = NULL;
    int c;

    f->format = FG_BIN1;
    f->model.nsym = 1000;
    strcpy(f->model.prefix, "SYM");
    f->nticks = 100000;
    f->duration = 60;
    f->per_packet = 20;
    f->model.trade_ratio = 0.3;
    strcpy(f->source, "mdfeed");
    f->seed = 1;
    f->acct_every = 10;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': target = optarg; break;
        case 'f':
            if (strcmp(optarg, "bin1") == 0)
                f->format = FG_BIN1;
            else if (strcmp(optarg, "jsonl") == 0)
                f->format = FG_JSONL;
            else
                die("bad --format '%s' (bin1 or jsonl)", optarg);
            break;
        case 'n': f->model.nsym = (uint32_t)num_arg("symbols", optarg, 1, 99999); break;
        case 'P':
            if (strlen(optarg) > 10)
                die("--symbol-prefix '%s' too long (max 10)", optarg);
            strcpy(f->model.prefix, optarg);
            break;
        case 'k': f->nticks = (uint64_t)num_arg("ticks", optarg, 0, 1e12); break;
        case 'r': f->rate = num_arg("rate", optarg, 0, 1e9); break;
        case 'd': f->duration = num_arg("duration", optarg, 0.001, 1e6); break;
        case 'K': f->per_packet = (uint32_t)num_arg("per-packet", optarg, 1, 10000); break;
        case 'T': f->model.trade_ratio = num_arg("trade-ratio", optarg, 0, 1); break;
        case 's':
            if (strlen(optarg) == 0 || strlen(optarg) > 31)
                die("--source '%s' must be 1..31 bytes", optarg);
            strcpy(f->source, optarg);
            break;
        case 'D': f->dup_ratio = num_arg("dup-ratio", optarg, 0, 1); break;
        case 'G': f->garbage_ratio = num_arg("garbage-ratio", optarg, 0, 1); break;
        case 'H': f->hb_every = (uint64_t)num_arg("heartbeat-every", optarg, 0, 1e12); break;
        case 'e': f->expect_path = optarg; break;
        case 'p': f->progress = true; break;
        case 'S': f->seed = (uint64_t)num_arg("seed", optarg, 0, 1.8e19); break;
        case 'z': f->model.decimal_sizes = true; break;
        case 'Z': f->string_numbers = true; break;
        case 'A': f->naccts = (uint32_t)num_arg("accounts", optarg, 0, 10000); break;
        case 'E': f->acct_every = (uint64_t)num_arg("account-every", optarg, 1, 1e12); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc)
        die("unexpected argument '%s'", argv[optind]);
    if (!target)
        die("%s", "--target is required (see --help)");
    char err[256];
    if (fg_target_parse(target, &f->target, err, sizeof err))
        die("%s", err);

    f->rng = f->seed;
    if (fg_model_init(&f->model, f->model.nsym, f->model.prefix, &f->rng))
        die("%s", "out of memory");
    if (f->naccts && fg_accts_init(&f->accts, f->naccts, f->source, f->seed))
        die("%s", "out of memory");

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, feed_on_signal);
    signal(SIGTERM, feed_on_signal);
    feed_connect(f);

    int64_t start = fg_now(CLOCK_MONOTONIC), next_progress = start;
    int64_t deadline = start + (int64_t)(f->duration * 1e9);
    bool timed_out = false;

    while (f->sent < f->nticks && !feed_stop) {
        int64_t now = fg_now(CLOCK_MONOTONIC);
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        if (f->rate > 0) {
            int64_t due = start + (int64_t)((double)f->sent * 1e9 / f->rate);
            if (due > deadline)
                due = deadline;
            if (due > now) {
                /* Idle: push out what is buffered so nothing waits behind the pause. */
                feed_flush(f);
                struct timespec ts = {due / 1000000000, due % 1000000000};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            }
        }
        if (f->progress && now >= next_progress) {
            show_progress(f, start, false);
            next_progress = now + 250000000;
        }

        fg_tick t;
        uint32_t si = f->sent < f->model.nsym ? (uint32_t)f->sent : (uint32_t)rnd_below(f, f->model.nsym);
        gen_tick(f, si, &t);
        emit_tick(f, &t);
        fg_apply(&f->model, &t);
        f->hist[f->nhist++ % FEED_HIST] = t;
        f->sent++;

        if (f->dup_ratio > 0 && rnd_unit(f) < f->dup_ratio) {
            uint64_t n = f->nhist < FEED_HIST ? f->nhist : FEED_HIST;
            fg_tick d = f->hist[rnd_below(f, n)];
            emit_tick(f, &d);
            f->dups++;
        }
        if (f->garbage_ratio > 0 && rnd_unit(f) < f->garbage_ratio)
            emit_garbage(f, next_ts(f));
        if (f->hb_every && f->sent % f->hb_every == 0)
            emit_heartbeat(f, next_ts(f));
        if (f->naccts && f->sent % f->acct_every == 0)
            emit_account(f);
    }
    feed_flush(f);
    if (f->target.transport != FG_UDP)
        shutdown(f->fd, SHUT_WR);
    close(f->fd);

    double el = (double)(fg_now(CLOCK_MONOTONIC) - start) / 1e9;
    if (f->progress)
        show_progress(f, start, true);
    if (timed_out)
        fprintf(stderr, "mdfeed: --duration %.3gs reached after %" PRIu64 " of %" PRIu64
                        " ticks, stopping\n", f->duration, f->sent, f->nticks);
    if (f->expect_path && fg_write_expect(&f->model, f->expect_path, "mdfeed") != 0)
        return 1;
    if (f->expect_path && f->naccts &&
        fg_acct_write_expect(&f->accts, &f->model, f->expect_path, "mdfeed") != 0)
        return 1;
    /* valid counts what mdcache counts as ticks_in, account messages too;
     * their own figures appear only when they were sent, so the line of a
     * run without them stays as it always was. */
    printf("mdfeed: sent=%" PRIu64 " valid=%" PRIu64 " dups=%" PRIu64 " heartbeats=%" PRIu64,
           f->sent, f->sent + f->dups + f->heartbeats + f->acct_msgs, f->dups, f->heartbeats);
    if (f->naccts)
        printf(" account_msgs=%" PRIu64 " positions=%" PRIu64 " orders=%" PRIu64
               " balances=%" PRIu64 " account_infos=%" PRIu64,
               f->acct_msgs, f->accts.msgs[FG_POSITION], f->accts.msgs[FG_ORDER],
               f->accts.msgs[FG_BALANCE], f->accts.msgs[FG_ACCOUNT]);
    printf(" garbage=%" PRIu64 " bytes=%" PRIu64 " %s=%" PRIu64 " elapsed=%.3f rate=%.0f\n",
           f->garbage, f->bytes, f->target.transport == FG_UDP ? "datagrams" : "writes",
           f->packets, el, el > 0 ? (double)f->sent / el : 0.0);
    fg_accts_free(&f->accts);
    fg_model_free(&f->model);
    return 0;
}
