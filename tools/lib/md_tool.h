/*
 * md_tool: what the operator tools (mdcache-inspect, mdcache-watch) share:
 * mdcache's own Redis options, read by mdcache's own loader so the URL,
 * the config file, the environment and TLS mean exactly what they mean to
 * the daemon; and the way a tool ends on an error (one line, an exit code).
 */
#ifndef MD_TOOL_H
#define MD_TOOL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include "md_config.h"
#include "md_redis.h"

/* getopt_long values of the shared options; a tool's own start at
 * MD_TOOL_O_OWN. */
enum {
    MD_TOOL_O_REDIS = 0x100,
    MD_TOOL_O_CLUSTER,
    MD_TOOL_O_CACERT,
    MD_TOOL_O_CACERTDIR,
    MD_TOOL_O_CERT,
    MD_TOOL_O_KEY,
    MD_TOOL_O_SNI,
    MD_TOOL_O_INSECURE,
    MD_TOOL_O_OWN,
};

/* Entries for a tool's `struct option` table (with 'c' for -c/--config). */
#define MD_TOOL_REDIS_OPTIONS                                                                      \
    {"config", required_argument, NULL, 'c'}, {"redis", required_argument, NULL, MD_TOOL_O_REDIS}, \
        {"cluster", required_argument, NULL, MD_TOOL_O_CLUSTER},                                   \
        {"cacert", required_argument, NULL, MD_TOOL_O_CACERT},                                     \
        {"cacertdir", required_argument, NULL, MD_TOOL_O_CACERTDIR},                               \
        {"cert", required_argument, NULL, MD_TOOL_O_CERT},                                         \
        {"key", required_argument, NULL, MD_TOOL_O_KEY},                                           \
        {"sni", required_argument, NULL, MD_TOOL_O_SNI},                                           \
        {"insecure", no_argument, NULL, MD_TOOL_O_INSECURE}

/* --help lines for the shared options after -c. */
#define MD_TOOL_REDIS_HELP                                                                         \
    "      --redis URL       redis[s]://[user:pass@]host:port[,host:port...][/db],\n"               \
    "                        unix:///path[?db=N]; default [redis] url, REDIS_URL,\n"                 \
    "                        CELERY_BROKER_URL, redis://localhost:6379/0\n"                         \
    "      --cluster auto|yes|no\n"                                                                \
    "      --cacert FILE, --cacertdir DIR, --cert FILE, --key FILE, --sni NAME,\n"                 \
    "      --insecure        TLS, as mdcache's options of the same name\n"                         \
    "  REDIS_PASSWORD supplies a password the URL lacks.\n"

/* The name errors start with; set it before anything can fail. */
extern const char *md_tool_prog;

/* "PROG: message" on stderr (stdout flushed first), then exit(code). */
void md_tool_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* The number in s, within [lo, hi] (and whole if integer), or exit 2
 * naming --opt. */
double md_tool_num(const char *opt, const char *s, double lo, double hi, bool integer);

/* mdcache's options a tool was given, kept for md_tool_load. */
typedef struct md_tool_args {
    char *argv[40];
    int argc;
} md_tool_args;

/* True if getopt's ch is one of the shared options (kept in a). */
bool md_tool_redis_option(md_tool_args *a, int ch, char *arg);

/* cfg as mdcache would load it from the kept options, its file and the
 * environment; exit 2 with mdcache's message when it would refuse. */
void md_tool_load(md_tool_args *a, md_config *cfg);

/* n bytes as a JSON string on stdout: quotes, backslashes, control bytes
 * and bytes outside printable ASCII escaped (\u00XX), so the output is
 * valid JSON whatever Redis held. */
void md_tool_json_str(const char *p, size_t n);

/* The wall-clock time as 2026-12-06T10:42:06.956Z (UTC, ms), mdcache's
 * log format. */
void md_tool_iso_time(char *buf, size_t cap);

/* The first seed of cfg resolved (with its TLS context), then mdcache's
 * start-up check on each seed in turn: *answered is the first that
 * answers, *cluster whether it is a cluster node. Exit 2 when one refuses
 * (credentials, certificate, database), 1 when none answers. */
void md_tool_find_server(const md_config *cfg, md_redis_target *seed, md_redis_target *answered,
                         bool *cluster);

#endif
