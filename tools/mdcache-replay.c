/*
 * mdcache-replay: sends a recorded capture (bin1 frames back to back, or
 * jsonl lines) to one of mdcache's listeners, at the recorded speed, a
 * multiple of it, a flat rate, or flat out.
 *
 * The file is read twice. A first pass checks the framing of the whole
 * capture before a single byte goes out, so a damaged file stops with the
 * offset of the damage instead of leaving half a replay in Redis; it also
 * learns whether the capture carries timestamps at all. The second pass
 * sends. Only framing is checked (where a frame or line starts and ends):
 * a well-framed message the daemon would reject (a NaN price, an unknown
 * type) is sent as recorded, since replaying bad input is a use too.
 *
 * Pacing is open-loop, as in mdfeed: message i is due at a time computed
 * from the start, never from when the previous one went out, so a slow
 * send does not stretch the rest of the replay.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mdcache_bin1.h"
#include "common/feedgen.h"

#define WHO "mdcache-replay"
#define STREAM_BUF (64 * 1024)
/* IPv4's largest UDP payload; "64 KiB" in round numbers. */
#define UDP_PAYLOAD_MAX 65507
#define JSONL_LINE_MAX 4096 /* with its '\n', as mdcache reads them */
#define JSON_DEPTH_MAX 64
#define PROGRESS_NS 250000000LL
/* Longest single sleep: keeps progress, signals and --max-time responsive
 * through long gaps in a capture. */
#define SLEEP_SLICE_NS 200000000LL

enum { PACE_RECORDED, PACE_RATE, PACE_FLAT };
enum { U_END, U_MSG, U_BLANK, U_BAD };

typedef struct unit {
    size_t off, len; /* the message's bytes in the file (jsonl: without '\n') */
    bool has_ts;
    int64_t ts;
} unit;

typedef struct replay {
    /* options */
    const char *path, *target_spec;
    fg_target target;
    int format; /* FG_BIN1, FG_JSONL, or -1 until detected */
    int pace;
    double speed, rate, max_time;
    uint64_t loops;
    uint32_t per_packet;
    size_t dgram_max;
    bool skip_bad, progress;
    /* the capture */
    const unsigned char *buf;
    size_t size;
    uint64_t file_msgs, file_bad;
    bool any_ts;
    /* sending */
    int fd;
    unsigned char out[STREAM_BUF];
    size_t olen;
    uint32_t in_packet;
    int64_t start, deadline;
    uint64_t sent, bytes, writes;
    uint64_t at_loop; /* where the replay is, for the progress line */
    size_t at_pos;
} replay;

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig) { stop_sig = sig; }

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
    va_list ap;
    fputs(WHO ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

/* ---- jsonl framing ----
 *
 * A line must be one JSON object. Unknown barewords are accepted where a
 * value goes, like mdcache's scanner does (it reports NaN as a bad number,
 * not as a syntax error), so a capture the daemon can read is never refused
 * here. */

static const char *js_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

static const char *js_string(const char *p, const char *e)
{
    for (p++; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\' && ++p >= e)
            return NULL;
    }
    return NULL;
}

static bool js_bare_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '+' || c == '-' || c == '.';
}

static const char *js_object(const char *p, const char *e, int depth, unit *u);

static const char *js_value(const char *p, const char *e, int depth)
{
    if (p >= e)
        return NULL;
    if (*p == '"')
        return js_string(p, e);
    if (*p == '{')
        return js_object(p, e, depth + 1, NULL);
    if (*p == '[') {
        if (depth + 1 > JSON_DEPTH_MAX)
            return NULL;
        p = js_ws(p + 1, e);
        if (p < e && *p == ']')
            return p + 1;
        for (;;) {
            p = js_value(js_ws(p, e), e, depth + 1);
            if (!p)
                return NULL;
            p = js_ws(p, e);
            if (p < e && *p == ']')
                return p + 1;
            if (p >= e || *p != ',')
                return NULL;
            p++;
        }
    }
    const char *s = p;
    while (p < e && js_bare_char(*p))
        p++;
    return p > s ? p : NULL;
}

/* A ts of digits only that fits an i64; anything else counts as no ts,
 * which is also how the message will be paced. */
static bool js_ts(const char *p, size_t n, int64_t *out)
{
    uint64_t v = 0;
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
        p++;
        n -= 2;
    }
    if (n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

/* u: the top level, whose "ts" is wanted; NULL inside. */
static const char *js_object(const char *p, const char *e, int depth, unit *u)
{
    if (depth > JSON_DEPTH_MAX)
        return NULL;
    p = js_ws(p + 1, e);
    if (p < e && *p == '}')
        return p + 1;
    for (;;) {
        const char *k = p, *v;
        if (p >= e || *p != '"' || !(p = js_string(p, e)))
            return NULL;
        bool is_ts = u && p - k == 4 && memcmp(k, "\"ts\"", 4) == 0;
        p = js_ws(p, e);
        if (p >= e || *p != ':')
            return NULL;
        v = js_ws(p + 1, e);
        if (!(p = js_value(v, e, depth)))
            return NULL;
        if (is_ts) /* the last one wins, as in mdcache */
            u->has_ts = js_ts(v, (size_t)(p - v), &u->ts);
        p = js_ws(p, e);
        if (p < e && *p == '}')
            return p + 1;
        if (p >= e || *p != ',')
            return NULL;
        p = js_ws(p + 1, e);
    }
}

static int next_jsonl(const replay *r, size_t *pos, uint64_t *line, unit *u, char *why,
                      size_t whylen)
{
    const char *b = (const char *)r->buf, *s, *e, *nl;
    size_t next;

    if (*pos >= r->size)
        return U_END;
    s = b + *pos;
    nl = memchr(s, '\n', r->size - *pos);
    e = nl ? nl : b + r->size;
    next = nl ? (size_t)(nl - b) + 1 : r->size;
    memset(u, 0, sizeof *u);
    u->off = *pos;
    u->len = (size_t)(e - s);
    (*line)++;
    *pos = next;
    const char *p = js_ws(s, e);
    if (p == e)
        return U_BLANK;
    if (u->len + 1 > JSONL_LINE_MAX) {
        snprintf(why, whylen, "line of %zu bytes, longer than %d with its newline", u->len + 1,
                 JSONL_LINE_MAX);
        return U_BAD;
    }
    if (*p != '{') {
        snprintf(why, whylen, "not a JSON object (starts with 0x%02x)", (unsigned char)*p);
        return U_BAD;
    }
    p = js_object(p, e, 1, u);
    if (!p || js_ws(p, e) != e) {
        snprintf(why, whylen, "%s", p ? "bytes after the JSON object" : "malformed JSON object");
        u->has_ts = false;
        return U_BAD;
    }
    return U_MSG;
}

/* ---- bin1 framing ---- */

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (unsigned)p[1] << 8); }

static int64_t rd64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return (int64_t)v;
}

/* Why the frame header at off is unusable, or NULL if it is sound. */
static const char *bin1_bad(const replay *r, size_t off, char *why, size_t whylen)
{
    const unsigned char *h = r->buf + off;
    size_t left = r->size - off;
    if (left < MDCACHE_BIN1_HDR_LEN) {
        snprintf(why, whylen, "file ends inside a frame header (%zu bytes left)", left);
        return why;
    }
    unsigned len = rd16(h + 2);
    if (h[0] != MDCACHE_BIN1_MAGIC)
        snprintf(why, whylen, "bad magic 0x%02x (want 0xb1)", h[0]);
    else if (h[1] != MDCACHE_BIN1_VERSION)
        snprintf(why, whylen, "unknown version %u", h[1]);
    else if (len < MDCACHE_BIN1_HDR_LEN || len > MDCACHE_BIN1_FRAME_MAX)
        snprintf(why, whylen, "frame length %u outside 24..1024", len);
    else if (MDCACHE_BIN1_HDR_LEN + (unsigned)h[5] + h[6] > len)
        snprintf(why, whylen, "frame length %u shorter than its symbol and source", len);
    else if (len > left)
        snprintf(why, whylen, "file ends inside a frame (length %u, %zu bytes left)", len, left);
    else
        return NULL;
    return why;
}

static int next_bin1(const replay *r, size_t *pos, unit *u, char *why, size_t whylen)
{
    char scratch[8];
    size_t off = *pos;

    if (off >= r->size)
        return U_END;
    memset(u, 0, sizeof *u);
    u->off = off;
    if (bin1_bad(r, off, why, whylen)) {
        /* Resynchronise on the next sound header, as a stream receiver
         * would; the whole run in between is one bad unit. */
        size_t p = off + 1;
        while (p < r->size && (r->buf[p] != MDCACHE_BIN1_MAGIC ||
                               bin1_bad(r, p, scratch, sizeof scratch)))
            p++;
        u->len = p - off;
        *pos = p;
        return U_BAD;
    }
    const unsigned char *h = r->buf + off;
    u->len = rd16(h + 2);
    if (h[7] & MDCACHE_BIN1_F_TS) {
        u->ts = rd64(h + 16);
        u->has_ts = u->ts >= 0;
    }
    *pos = off + u->len;
    return U_MSG;
}

static int next_unit(const replay *r, size_t *pos, uint64_t *line, unit *u, char *why,
                     size_t whylen)
{
    return r->format == FG_BIN1 ? next_bin1(r, pos, u, why, whylen)
                                : next_jsonl(r, pos, line, u, why, whylen);
}

/* ---- the capture ---- */

static void load(replay *r)
{
    struct stat st;
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        die(2, "cannot open %s: %s", r->path, strerror(errno));
    if (fstat(fd, &st) < 0)
        die(2, "cannot stat %s: %s", r->path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        die(2, "%s is not a regular file", r->path);
    r->size = (size_t)st.st_size;
    /* Mapped, not read: a capture may be far larger than what is worth
     * copying, and both passes walk it in order. (A file cut short while
     * being replayed would fault; captures are finished files.) */
    if (r->size > 0) {
        void *m = mmap(NULL, r->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            die(2, "cannot read %s: %s", r->path, strerror(errno));
        r->buf = m;
    }
    close(fd);
}

static void detect(replay *r)
{
    size_t i = 0;
    if (r->format >= 0 || r->size == 0) {
        if (r->format < 0)
            r->format = FG_JSONL; /* empty: nothing to send either way */
        return;
    }
    if (r->buf[0] == MDCACHE_BIN1_MAGIC && (r->size < 2 || r->buf[1] == MDCACHE_BIN1_VERSION)) {
        r->format = FG_BIN1;
        return;
    }
    while (i < r->size && r->buf[i] && strchr(" \t\r\n", r->buf[i]))
        i++;
    if (i < r->size && r->buf[i] == '{') {
        r->format = FG_JSONL;
        return;
    }
    if (i == r->size) {
        r->format = FG_JSONL; /* blank lines only */
        return;
    }
    die(2, "cannot tell the format of %s: byte 0x%02x at offset %zu starts neither a bin1 "
           "frame (0xb1 0x01) nor a JSON object ('{'); give --format bin1|jsonl",
        r->path, r->buf[i], i);
}

/* The first pass: framing of the whole file, before anything is sent. */
static void check(replay *r)
{
    size_t pos = 0;
    uint64_t line = 0;
    char why[160];
    unit u;
    int k;

    while ((k = next_unit(r, &pos, &line, &u, why, sizeof why)) != U_END) {
        if (k == U_MSG) {
            r->file_msgs++;
            r->any_ts |= u.has_ts;
        } else if (k == U_BAD) {
            if (!r->skip_bad) {
                if (r->format == FG_BIN1)
                    die(2, "%s: bad bin1 frame at byte offset %zu: %s (--skip-bad skips it)",
                        r->path, u.off, why);
                die(2, "%s:%" PRIu64 ": bad jsonl line at byte offset %zu: %s "
                       "(--skip-bad skips it)", r->path, line, u.off, why);
            }
            r->file_bad++;
        }
    }
}

/* ---- sending ---- */

static void connect_target(replay *r)
{
    char err[256];
    r->fd = fg_connect(&r->target, err, sizeof err);
    if (r->fd < 0)
        die(1, "%s: %s", r->target_spec, err);
}

static bool past_deadline(const replay *r) { return fg_now(CLOCK_MONOTONIC) >= r->deadline; }

static void flush(replay *r)
{
    size_t off = 0;

    if (r->olen == 0)
        return;
    if (r->target.transport == FG_UDP) {
        for (;;) {
            ssize_t n = send(r->fd, r->out, r->olen, MSG_NOSIGNAL);
            if (n >= 0)
                break;
            /* A full socket buffer is back-pressure, not failure; the
             * deadline still bounds the wait. */
            if ((errno == EINTR || errno == ENOBUFS || errno == EAGAIN) && !past_deadline(r) &&
                !stop_sig) {
                struct timespec ts = {0, 50000};
                nanosleep(&ts, NULL);
                continue;
            }
            die(1, "send to udp://%s:%d failed: %s", r->target.host, r->target.port,
                strerror(errno));
        }
    } else {
        while (off < r->olen) {
            ssize_t n = send(r->fd, r->out + off, r->olen - off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                die(1, "write failed: %s", strerror(errno));
            }
            off += (size_t)n; /* a short write: the rest goes in the next round */
        }
    }
    r->bytes += r->olen;
    r->writes++;
    r->olen = 0;
    r->in_packet = 0;
}

static void put(replay *r, const unit *u)
{
    /* jsonl lines always go out with their '\n', also the file's last one:
     * the next loop's first line must not glue onto it. */
    size_t need = u->len + (r->format == FG_JSONL);

    if (r->target.transport == FG_UDP) {
        if (r->olen && (r->olen + need > r->dgram_max || r->in_packet >= r->per_packet))
            flush(r);
    } else if (r->olen + need > sizeof r->out) {
        flush(r);
    }
    memcpy(r->out + r->olen, r->buf + u->off, u->len);
    r->olen += u->len;
    if (r->format == FG_JSONL)
        r->out[r->olen++] = '\n';
    r->in_packet++;
    r->sent++;
    if (r->target.transport == FG_UDP && r->in_packet >= r->per_packet)
        flush(r);
}

static void show_progress(const replay *r, bool final)
{
    uint64_t loop = r->at_loop;
    size_t pos = r->at_pos;
    int64_t now = fg_now(CLOCK_MONOTONIC);
    double el = (double)(now - r->start) / 1e9;
    double total = (double)r->size * (double)r->loops;
    double pct = total > 0 ? 100.0 * ((double)loop * (double)r->size + (double)pos) / total : 100;
    fprintf(stderr, "\r" WHO ": sent %" PRIu64 "  %.0f msg/s  %5.1f%% of file", r->sent,
            el > 0 ? (double)r->sent / el : 0.0, pct);
    if (r->loops > 1)
        fprintf(stderr, " (loop %" PRIu64 "/%" PRIu64 ")", loop < r->loops ? loop + 1 : r->loops,
                r->loops);
    fprintf(stderr, "  %.1fs   %s", el, final ? "\n" : "");
    fflush(stderr);
}

/* Sleeps until due (CLOCK_MONOTONIC ns), in slices, keeping the progress
 * line alive. False when the replay must stop instead. */
static bool wait_until(replay *r, int64_t due, int64_t *next_progress)
{
    flush(r); /* nothing waits in the buffer behind a pause */
    for (;;) {
        int64_t now = fg_now(CLOCK_MONOTONIC);
        if (stop_sig || now >= r->deadline)
            return false;
        if (now >= due)
            return true;
        if (r->progress && now >= *next_progress) {
            show_progress(r, false);
            *next_progress = now + PROGRESS_NS;
        }
        int64_t until = due;
        if (until > now + SLEEP_SLICE_NS)
            until = now + SLEEP_SLICE_NS;
        if (until > r->deadline)
            until = r->deadline;
        struct timespec ts = {until / 1000000000, until % 1000000000};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

/* base + d ns, clamped: a ts far in the future (or a tiny --speed/--rate)
 * must not overflow, and nobody waits past the deadline anyway; a ts that
 * went backwards is simply due now. */
static int64_t due_at(const replay *r, int64_t base, double d)
{
    if (d <= 0)
        return base;
    if (d >= (double)(r->deadline - base))
        return r->deadline;
    return base + (int64_t)d;
}

/* The second pass, once per loop. False if stopped early. */
static bool send_all(replay *r)
{
    int64_t next_progress = r->start;
    uint64_t index = 0; /* over all loops, for --rate */
    char why[160];

    for (uint64_t loop = 0; loop < r->loops; loop++) {
        size_t pos = 0, before;
        uint64_t line = 0;
        bool have_base = false;
        int64_t base = 0, ts0 = 0, cur_ts = 0;
        unit u;
        int k;

        for (;;) {
            before = pos;
            k = next_unit(r, &pos, &line, &u, why, sizeof why);
            if (k == U_END)
                break;
            r->at_loop = loop;
            r->at_pos = before;
            if (k != U_MSG)
                continue;
            int64_t due = 0;
            if (r->pace == PACE_RATE) {
                due = due_at(r, r->start, (double)index * 1e9 / r->rate);
            } else if (r->pace == PACE_RECORDED) {
                /* A message without ts keeps the previous one's time; the
                 * timeline starts at the first message that has one. */
                if (u.has_ts)
                    cur_ts = u.ts;
                if (u.has_ts && !have_base) {
                    have_base = true;
                    ts0 = u.ts;
                    base = fg_now(CLOCK_MONOTONIC);
                }
                if (have_base)
                    due = due_at(r, base, (double)(cur_ts - ts0) / r->speed);
            }
            int64_t now = fg_now(CLOCK_MONOTONIC);
            if (due > now) {
                if (!wait_until(r, due, &next_progress))
                    return false;
                now = fg_now(CLOCK_MONOTONIC);
            }
            if (stop_sig || now >= r->deadline)
                return false;
            if (r->progress && now >= next_progress) {
                show_progress(r, false);
                next_progress = now + PROGRESS_NS;
            }
            put(r, &u);
            index++;
        }
    }
    r->at_loop = r->loops;
    r->at_pos = 0;
    return true;
}

/* ---- options ---- */

static void usage(FILE *o)
{
    fputs("usage: " WHO " --target udp://H:P|tcp://H:P|unix:///path [options] FILE\n"
          "Sends a bin1 or jsonl capture to an mdcache listener.\n"
          "  --target URL             where to send (required; loopback hosts only)\n"
          "  --format bin1|jsonl      the capture's format (default: detected from its\n"
          "                           first bytes)\n"
          "pacing (one of; default --speed 1, or flat out if no message has a ts):\n"
          "  --speed X                X times the recorded speed, from each message's ts\n"
          "  --rate N                 N messages/s, ignoring ts\n"
          "  --flat-out               as fast as the socket takes them\n"
          "  --loop N                 send the capture N times (1)\n"
          "  --max-time S             stop after S seconds whatever is left (3600)\n"
          "  --per-packet K           UDP: at most K messages per datagram (1)\n"
          "  --datagram-max B         UDP: at most B bytes per datagram (1400; 512..65507)\n"
          "  --skip-bad               skip and count bad frames/lines instead of stopping\n"
          "  --progress               live progress on stderr\n"
          "  --help                   this text\n"
          "exit status: 0 sent (or stopped by --max-time), 1 connect/send failure or\n"
          "interrupted, 2 bad options or a bad, unreadable or unrecognised capture\n",
          o);
}

static double num_arg(const char *name, const char *v, double lo, double hi)
{
    return fg_num_arg(WHO, name, v, lo, hi);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", 1, 0, 't'},   {"format", 1, 0, 'f'},     {"speed", 1, 0, 's'},
        {"rate", 1, 0, 'r'},     {"flat-out", 0, 0, 'F'},   {"loop", 1, 0, 'l'},
        {"max-time", 1, 0, 'm'}, {"per-packet", 1, 0, 'K'}, {"datagram-max", 1, 0, 'D'},
        {"skip-bad", 0, 0, 'b'}, {"progress", 0, 0, 'p'},   {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    static replay R;
    replay *r = &R;
    const char *target = NULL;
    int c, npace = 0;
    bool pace_given = false;

    r->format = -1;
    r->pace = PACE_RECORDED;
    r->speed = 1;
    r->loops = 1;
    r->max_time = 3600;
    r->per_packet = 1;
    r->dgram_max = 1400;

    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 't': target = optarg; break;
        case 'f':
            if (strcmp(optarg, "bin1") == 0)
                r->format = FG_BIN1;
            else if (strcmp(optarg, "jsonl") == 0)
                r->format = FG_JSONL;
            else
                die(2, "bad --format '%s' (bin1 or jsonl)", optarg);
            break;
        case 's':
            r->speed = num_arg("speed", optarg, 1e-6, 1e9);
            r->pace = PACE_RECORDED;
            npace++;
            break;
        case 'r':
            r->rate = num_arg("rate", optarg, 1e-6, 1e9);
            r->pace = PACE_RATE;
            npace++;
            break;
        case 'F': r->pace = PACE_FLAT; npace++; break;
        case 'l': r->loops = (uint64_t)num_arg("loop", optarg, 1, 1e9); break;
        case 'm': r->max_time = num_arg("max-time", optarg, 0.001, 1e7); break;
        case 'K': r->per_packet = (uint32_t)num_arg("per-packet", optarg, 1, 100000); break;
        case 'D':
            r->dgram_max = (size_t)num_arg("datagram-max", optarg, 512, UDP_PAYLOAD_MAX);
            break;
        case 'b': r->skip_bad = true; break;
        case 'p': r->progress = true; break;
        case 'h': usage(stdout); return 0;
        case ':':
            die(2, "option '%s' needs a value (see --help)", argv[optind - 1]);
        default:
            die(2, "unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    pace_given = npace > 0;
    if (npace > 1)
        die(2, "--speed, --rate and --flat-out exclude each other: give one");
    if (!target)
        die(2, "--target is required (see --help)");
    if (optind >= argc)
        die(2, "no capture FILE given (see --help)");
    if (optind + 1 < argc)
        die(2, "unexpected argument '%s': one capture FILE at a time", argv[optind + 1]);
    r->path = argv[optind];
    r->target_spec = target;
    char err[256];
    if (fg_target_parse(target, &r->target, err, sizeof err))
        die(2, "%s", err);
    if (r->target.transport == FG_FILE)
        die(2, "--target '%s': file:// is not a listener (want udp://, tcp:// or unix://)",
            target);

    load(r);
    detect(r);
    check(r);
    if (r->pace == PACE_RECORDED && !r->any_ts && r->file_msgs > 0) {
        /* Nothing to pace by: every message would be due at once anyway;
         * say so when the user asked for a speed that cannot apply. */
        if (pace_given)
            fprintf(stderr, WHO ": note: %s has no timestamps; --speed has nothing to follow, "
                            "sending flat out (--rate N paces it)\n", r->path);
        r->pace = PACE_FLAT;
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: a sleep ends at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    connect_target(r);
    r->start = fg_now(CLOCK_MONOTONIC);
    r->deadline = r->start + (int64_t)(r->max_time * 1e9);
    bool done = send_all(r);
    flush(r);
    if (r->target.transport != FG_UDP)
        shutdown(r->fd, SHUT_WR);
    close(r->fd);

    double el = (double)(fg_now(CLOCK_MONOTONIC) - r->start) / 1e9;
    if (r->progress)
        show_progress(r, true);
    uint64_t want = r->file_msgs * r->loops;
    if (!done && stop_sig)
        fprintf(stderr, WHO ": interrupted after %" PRIu64 " of %" PRIu64 " messages\n",
                r->sent, want);
    else if (!done)
        fprintf(stderr, WHO ": --max-time %gs reached after %" PRIu64 " of %" PRIu64
                        " messages, stopping\n", r->max_time, r->sent, want);
    printf(WHO ": sent=%" PRIu64 " bytes=%" PRIu64 " skipped=%" PRIu64 " elapsed=%.3f "
              "rate=%.0f/s\n",
           r->sent, r->bytes, r->file_bad, el, el > 0 ? (double)r->sent / el : 0.0);
    if (r->buf)
        munmap((void *)r->buf, r->size);
    return !done && stop_sig ? 1 : 0;
}
