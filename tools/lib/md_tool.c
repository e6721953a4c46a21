/*
 * md_tool: shared by the operator tools. See md_tool.h.
 */
#include "md_tool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "md_preflight.h"
#include "md_tls.h"
#include "md_topology.h"

const char *md_tool_prog = "mdcache-tool";

void md_tool_die(int code, const char *fmt, ...)
{
    va_list ap;
    /* A table or a line being drawn on stdout ends first, so the message
     * starts on a line of its own. */
    fflush(stdout);
    fprintf(stderr, "%s: ", md_tool_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

double md_tool_num(const char *opt, const char *s, double lo, double hi, bool integer)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi || (integer && v != (double)(int64_t)v))
        md_tool_die(2, "--%s: expected %s %.15g..%.15g, got '%.64s'", opt,
                    integer ? "an integer" : "a number", lo, hi, s);
    return v;
}

bool md_tool_redis_option(md_tool_args *a, int ch, char *arg)
{
    static const struct { int ch; const char *name; } names[] = {
        {'c', "--config"},        {MD_TOOL_O_REDIS, "--redis"},
        {MD_TOOL_O_CLUSTER, "--cluster"}, {MD_TOOL_O_CACERT, "--cacert"},
        {MD_TOOL_O_CACERTDIR, "--cacertdir"}, {MD_TOOL_O_CERT, "--cert"},
        {MD_TOOL_O_KEY, "--key"},        {MD_TOOL_O_SNI, "--sni"},
        {MD_TOOL_O_INSECURE, "--insecure"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (names[i].ch != ch) continue;
        /* Room kept for the program name and the end. */
        if (a->argc == 0) a->argv[a->argc++] = (char *)md_tool_prog;
        if (a->argc + 2 > (int)(sizeof a->argv / sizeof a->argv[0]) - 1)
            md_tool_die(2, "too many options (see --help)");
        a->argv[a->argc++] = (char *)names[i].name;
        if (ch != MD_TOOL_O_INSECURE) a->argv[a->argc++] = arg;
        return true;
    }
    return false;
}

void md_tool_load(md_tool_args *a, md_config *cfg)
{
    if (a->argc == 0) a->argv[a->argc++] = (char *)md_tool_prog;
    a->argv[a->argc] = NULL;
    char err[1024];
    int rc = md_config_load_client(cfg, a->argc, a->argv, err, sizeof err);
    if (rc != 0) md_tool_die(2, "%s", rc > 0 ? "unexpected --help/--version" : err);
}

void md_tool_find_server(const md_config *cfg, md_redis_target *seed, md_redis_target *answered,
                         bool *cluster)
{
    char err[1024];
    if (md_redis_resolve(&cfg->redis, seed, err, sizeof err)) md_tool_die(2, "%s", err);
    if (cfg->redis.kind == MD_REDIS_TLS) {
        /* Lives as long as the tool: every connection uses it. */
        seed->tls = md_tls_ctx_new(cfg, cfg->tls_sni[0] ? cfg->tls_sni : cfg->redis.host, err,
                                   sizeof err);
        if (!seed->tls) md_tool_die(2, "%s", err);
    }
    static md_topology probe;
    char msg[2048];
    *cluster = false;
    switch (md_preflight_seeds(cfg, seed, answered, msg, sizeof msg, &probe, cluster)) {
    case MD_PREFLIGHT_OK: return;
    case MD_PREFLIGHT_REFUSED: md_tool_die(2, "%s", msg);
    case MD_PREFLIGHT_UNREACHABLE:
        md_tool_die(1, "%s%s", msg, cfg->redis.nseeds > 1 ? " (and no other seed answered)" : "");
    }
}

void md_tool_json_str(const char *p, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

void md_tool_iso_time(char *buf, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}
