/*
 * hiredis_baseline: what a C programmer writes first -- read ticks from a
 * socket, keep the latest state per symbol, and for every tick do one
 * synchronous `SETEX price:{symbol}:latest 5 value` with hiredis.
 *
 * It reuses mdcache's own decoders, symbol table and value formatter, so
 * the values are byte-identical to mdcache's and the comparison isolates
 * the one thing that differs: the write strategy (one blocking round trip
 * per tick here; coalesced, pipelined, non-blocking batches in mdcache).
 * Report format: bench/baselines/README.md.
 */
#include <errno.h>
#include <getopt.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "md_decode.h"
#include "md_format.h"
#include "md_hist.h"
#include "md_state.h"

#define BL_MAX_CONN 64
#define BL_BUF (256 * 1024)

typedef struct bl {
    redisContext *rc;
    md_state st;
    unsigned ttl;
    bool jsonl;
    uint64_t ticks, keys, write_errors;
    md_decode_stats dstats;
    md_hist lat, rtt, batch;
} bl;

static volatile sig_atomic_t bl_stop;
static void on_signal(int sig) { (void)sig; bl_stop = 1; }

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void usage_exit(const char *why)
{
    fprintf(stderr,
            "hiredis_baseline: %s\nusage: hiredis_baseline --listen udp://127.0.0.1:P?format=bin1|"
            "tcp://127.0.0.1:P?format=jsonl --redis redis://127.0.0.1:P/0 --report FILE [--ttl 5]\n",
            why);
    exit(2);
}

/* "scheme://127.x.y.z:port..." -> port; loopback IPv4 only, as the bench uses. */
static int parse_hostport(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    int port;
    if (sscanf(s, "%63[^:]:%d", host, &port) != 2 || port <= 0 || port > 65535) return -1;
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) return -1;
    if ((ntohl(sa->sin_addr.s_addr) >> 24) != 127) return -2;
    return 0;
}

static void on_tick(void *ctx, const md_tick *t)
{
    bl *b = ctx;
    int64_t origin = t->origin_ns ? t->origin_ns : mono_ns();
    b->ticks++;
    if (t->type != MD_TICK_QUOTE && t->type != MD_TICK_TRADE && t->type != MD_TICK_RESET) return;
    md_state_apply(&b->st, t, origin);
    md_sym *s;
    while ((s = md_state_pop_dirty(&b->st))) {
        char key[128], val[512];
        snprintf(key, sizeof key, "price:%s:latest", s->symbol);
        size_t vlen = md_format_price(s, val, sizeof val);
        int64_t t0 = mono_ns();
        redisReply *r = redisCommand(b->rc, "SETEX %s %u %b", key, b->ttl, val, vlen);
        int64_t now = mono_ns();
        if (!r) {
            fprintf(stderr, "hiredis_baseline: redis: %s\n", b->rc->errstr);
            exit(1);
        }
        if (r->type == REDIS_REPLY_STATUS) b->keys++;
        else b->write_errors++;
        freeReplyObject(r);
        md_hist_record(&b->rtt, (uint64_t)(now - t0));
        md_hist_record(&b->batch, 1);
        md_hist_record(&b->lat, (uint64_t)(now - origin));
    }
}

static void decode(bl *b, const uint8_t *p, size_t n, int final, int *skipping, size_t *used)
{
    md_decoder_ops ops = {on_tick, NULL, b, &b->dstats};
    *used = b->jsonl ? md_jsonl_decode((const char *)p, n, final, skipping, &ops)
                     : md_bin1_decode(p, n, final, &ops);
}

static int write_report(bl *b, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    uint64_t derr = 0;
    for (int i = 0; i < MD_DERR_COUNT; i++) derr += b->dstats.err[i];
    fprintf(f, "{\"system\":\"hiredis-sync\",\"ticks\":%llu,\"keys_written\":%llu,"
               "\"write_errors\":%llu,\"decode_errors\":%llu,\"latency_ns\":",
            (unsigned long long)b->ticks, (unsigned long long)b->keys,
            (unsigned long long)b->write_errors, (unsigned long long)derr);
    md_hist_write_json(f, &b->lat);
    fputs(",\"rtt_ns\":", f);
    md_hist_write_json(f, &b->rtt);
    fputs(",\"batch_keys\":", f);
    md_hist_write_json(f, &b->batch);
    fputs("}\n", f);
    return fclose(f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"listen", 1, 0, 'l'}, {"redis", 1, 0, 'r'},
                                          {"report", 1, 0, 'o'}, {"ttl", 1, 0, 't'},
                                          {0, 0, 0, 0}};
    const char *listen_spec = NULL, *redis_url = NULL, *report = NULL;
    static bl b;
    int c;
    b.ttl = 5;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen_spec = optarg; break;
        case 'r': redis_url = optarg; break;
        case 'o': report = optarg; break;
        case 't': b.ttl = (unsigned)atoi(optarg); if (!b.ttl) usage_exit("bad --ttl"); break;
        default: usage_exit("bad option");
        }
    }
    if (!listen_spec || !redis_url || !report) usage_exit("--listen, --redis and --report are required");
    bool udp = strncmp(listen_spec, "udp://", 6) == 0;
    if (!udp && strncmp(listen_spec, "tcp://", 6) != 0) usage_exit("listen must be udp:// or tcp://");
    const char *fmt = strstr(listen_spec, "format=");
    b.jsonl = fmt ? strncmp(fmt + 7, "jsonl", 5) == 0 : !udp;
    struct sockaddr_in lsa, rsa;
    if (parse_hostport(listen_spec + 6, &lsa) || strncmp(redis_url, "redis://", 8) ||
        parse_hostport(redis_url + 8, &rsa))
        usage_exit("listen and redis must be loopback IPv4 host:port");

    char rhost[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &rsa.sin_addr, rhost, sizeof rhost);
    b.rc = redisConnect(rhost, ntohs(rsa.sin_port));
    if (!b.rc || b.rc->err) {
        fprintf(stderr, "hiredis_baseline: cannot connect to redis: %s\n", b.rc ? b.rc->errstr : "oom");
        return 1;
    }
    if (md_state_init(&b.st, 1u << 20)) return 1;
    md_hist_reset(&b.lat);
    md_hist_reset(&b.rtt);
    md_hist_reset(&b.batch);

    int lfd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0), one = 1;
    int rcv = 16 << 20;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (udp && setsockopt(lfd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv))
        setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    if (bind(lfd, (struct sockaddr *)&lsa, sizeof lsa) || (!udp && listen(lfd, 16))) {
        fprintf(stderr, "hiredis_baseline: bind: %s\n", strerror(errno));
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "ready\n");

    static uint8_t buf[BL_MAX_CONN][BL_BUF];
    size_t have[BL_MAX_CONN] = {0};
    int skipping[BL_MAX_CONN] = {0};
    struct pollfd pf[BL_MAX_CONN + 1];
    int nconn = 0;
    pf[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
    while (!bl_stop) {
        int n = poll(pf, (nfds_t)nconn + 1, 100);
        if (n <= 0) continue;
        if (pf[0].revents & POLLIN) {
            if (udp) {
                ssize_t r = recv(lfd, buf[0], BL_BUF, 0);
                size_t used;
                if (r > 0) decode(&b, buf[0], (size_t)r, 1, NULL, &used);
            } else {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0 && nconn < BL_MAX_CONN) {
                    nconn++;
                    pf[nconn] = (struct pollfd){.fd = fd, .events = POLLIN};
                    have[nconn] = 0;
                    skipping[nconn] = 0;
                } else if (fd >= 0) {
                    close(fd);
                }
            }
        }
        for (int i = 1; i <= nconn; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t r = read(pf[i].fd, buf[i] + have[i], BL_BUF - have[i]);
            size_t used = 0;
            if (r <= 0) {
                if (have[i]) decode(&b, buf[i], have[i], 1, &skipping[i], &used);
                close(pf[i].fd);
                pf[i] = pf[nconn];
                have[i] = have[nconn];
                memcpy(buf[i], buf[nconn], have[nconn]);
                skipping[i] = skipping[nconn];
                nconn--;
                i--;
                continue;
            }
            have[i] += (size_t)r;
            decode(&b, buf[i], have[i], 0, &skipping[i], &used);
            memmove(buf[i], buf[i] + used, have[i] - used);
            have[i] -= used;
        }
    }
    if (write_report(&b, report)) {
        fprintf(stderr, "hiredis_baseline: cannot write %s\n", report);
        return 1;
    }
    redisFree(b.rc);
    md_state_free(&b.st);
    return 0;
}
