/*
 * md_expiry: the stale-feed watcher. See include/md_expiry.h.
 *
 * Keyspace notifications are fire-and-forget in Redis: an event that
 * happens while we are not subscribed is lost. So the counters say what
 * was seen, not what happened; docs/keys.md says so. Events of keys that
 * are not ours (another application's, in the same database) are skipped.
 */
#include "md_expiry.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "md_bconn.h"
#include "md_log.h"

#define MD_EXPIRY_POLL_S 0.2 /* how often the read loop looks at the stop flag */

size_t md_expiry_event_json(char *buf, size_t cap, const char *cls, const char *key,
                            size_t klen, const char *field, const char *sym, size_t slen,
                            int64_t ts_ms)
{
    /* Keys are ours in shape, but their bytes came from Redis: escape. */
    size_t o = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 < cap) buf[o++] = (c);                                                           \
    } while (0)
#define PUTS(s)                                                                                    \
    for (const char *p_ = (s); *p_; p_++) PUT(*p_)
#define PUTJ(p, n)                                                                                 \
    for (size_t i_ = 0; i_ < (n); i_++) {                                                          \
        unsigned char c_ = (unsigned char)(p)[i_];                                                 \
        if (c_ == '"' || c_ == '\\') {                                                             \
            PUT('\\');                                                                             \
            PUT((char)c_);                                                                         \
        } else if (c_ < 0x20) {                                                                    \
            char u_[8];                                                                            \
            snprintf(u_, sizeof u_, "\\u%04x", c_);                                                \
            PUTS(u_);                                                                              \
        } else {                                                                                   \
            PUT((char)c_);                                                                         \
        }                                                                                          \
    }
    PUTS("{\"event\":\"expired\",\"class\":\"");
    PUTS(cls);
    PUTS("\",\"key\":\"");
    PUTJ(key, klen);
    PUTS("\",\"");
    PUTS(field);
    PUTS("\":\"");
    PUTJ(sym, slen);
    char ts[32];
    snprintf(ts, sizeof ts, "\",\"ts\":%lld}", (long long)ts_ms);
    PUTS(ts);
#undef PUT
#undef PUTS
#undef PUTJ
    if (cap) buf[o] = '\0';
    return o;
}

static int64_t epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps up to s seconds, in steps, so stop is honoured at once. */
static void nap(md_expiry *x, double s)
{
    for (double left = s; left > 0 && !atomic_load(&x->stop); left -= 0.05) {
        struct timespec ts = {0, (long)((left < 0.05 ? left : 0.05) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* One command's reply within connect_timeout: the reply, or NULL (msg). */
static redisReply *ask(md_bconn *c, const md_config *cfg, int argc, const char *const *argv)
{
    md_bconn_deadline(c, cfg->connect_timeout_s);
    if (md_bconn_command(c, argc, argv)) return NULL;
    md_bconn_rc rc;
    return md_bconn_reply(c, &rc);
}

static bool has_flags(const char *f, bool *E, bool *x)
{
    *E = strchr(f, 'E') != NULL;
    *x = strchr(f, 'x') != NULL || strchr(f, 'A') != NULL; /* A = "g$lshzxet" */
    return *E && *x;
}

/* Makes sure Redis sends expired-key events, or says once why it cannot. */
static void ensure_notify(md_expiry *x, md_bconn *c, bool *warned)
{
    const md_config *cfg = x->cfg;
    const char *get[3] = {"CONFIG", "GET", "notify-keyspace-events"};
    redisReply *rep = ask(c, cfg, 3, get);
    if (!rep) return;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[1]->type != REDIS_REPLY_STRING) {
        if (!*warned)
            md_warn("expiry watcher: redis %s refused CONFIG GET (%s); cannot check that "
                    "notify-keyspace-events contains E and x, without which expired keys go "
                    "unnoticed",
                    x->target->display, rep->type == REDIS_REPLY_ERROR ? rep->str : "odd reply");
        *warned = true;
        freeReplyObject(rep);
        return;
    }
    char flags[64];
    snprintf(flags, sizeof flags, "%s", rep->element[1]->str);
    freeReplyObject(rep);
    bool E, X;
    if (has_flags(flags, &E, &X)) return;
    char want[72];
    snprintf(want, sizeof want, "%s%s%s", flags, E ? "" : "E", X ? "" : "x");
    if (!cfg->set_notify_events) {
        if (!*warned)
            md_warn("expiry watcher: notify-keyspace-events is '%s', so expired keys are not "
                    "notified; set it to '%s' (or set_notify_events = yes)",
                    flags, want);
        *warned = true;
        return;
    }
    const char *set[4] = {"CONFIG", "SET", "notify-keyspace-events", want};
    rep = ask(c, cfg, 4, set);
    if (!rep) return;
    if (rep->type == REDIS_REPLY_ERROR) {
        if (!*warned)
            md_warn("expiry watcher: redis %s refused CONFIG SET notify-keyspace-events %s (%s); "
                    "expired keys go unnoticed until an operator sets it",
                    x->target->display, want, rep->str);
        *warned = true;
    } else {
        md_info("expiry watcher: notify-keyspace-events set to '%s' (was '%s')", want, flags);
    }
    freeReplyObject(rep);
}

/* PUBLISHes one event on a second connection (a subscribed one cannot). */
static void publish_event(md_expiry *x, md_bconn *pub, bool *pub_open, const char *json,
                          md_stats *st)
{
    const md_config *cfg = x->cfg;
    if (!*pub_open) {
        md_bconn_deadline(pub, cfg->connect_timeout_s);
        if (md_bconn_open(pub, x->target) != MD_BCONN_OK || md_bconn_auth(pub, &cfg->redis)) {
            MD_LOG_RL(MD_LOG_WARN, 1, "expiry watcher: cannot publish events: %s", pub->msg);
            md_bconn_close(pub);
            return;
        }
        *pub_open = true;
    }
    const char *argv[3] = {"PUBLISH", cfg->events_channel, json};
    redisReply *rep = ask(pub, cfg, 3, argv);
    if (rep && rep->type != REDIS_REPLY_ERROR) {
        st->events_published++;
    } else {
        MD_LOG_RL(MD_LOG_WARN, 1, "expiry watcher: PUBLISH on %s failed: %s", cfg->events_channel,
                  rep ? rep->str : pub->msg);
        if (!rep) {
            md_bconn_close(pub);
            *pub_open = false;
        }
    }
    if (rep) freeReplyObject(rep);
}

/* Our key classes, most specific template first: an order key also has
 * the shape of its account's order list key with a longer account. */
static const struct {
    const char *name;  /* "class" in events */
    const char *field; /* what the template's variable names */
    size_t counter;    /* offsetof(md_stats, ...) */
} md_expiry_classes[MD_EXPIRY_CLASSES] = {
    {"price", "symbol", offsetof(md_stats, expired_price)},
    {"price_fallback", "symbol", offsetof(md_stats, expired_fallback)},
    {"positions", "account", offsetof(md_stats, expired_positions)},
    {"order", "account", offsetof(md_stats, expired_orders)},
    {"order_list", "account", offsetof(md_stats, expired_orders)},
    {"balances", "account", offsetof(md_stats, expired_balances)},
    {"accounts", "account", offsetof(md_stats, expired_accounts)},
};

static void on_expired(md_expiry *x, const char *key, size_t klen, md_bconn *pub, bool *pub_open,
                       md_stats *st)
{
    const char *sym = NULL;
    size_t slen = 0;
    int c;
    for (c = 0; c < MD_EXPIRY_CLASSES; c++)
        if (x->tpl[c].nvars && md_keytpl_match(&x->tpl[c], key, klen, &sym, &slen)) break;
    if (c == MD_EXPIRY_CLASSES) return; /* not ours */
    (*(uint64_t *)((char *)st + md_expiry_classes[c].counter))++;
    MD_LOG_RL(MD_LOG_INFO, 5, "stale: %.*s expired (its source went quiet)", (int)klen, key);
    md_stats_publish(&x->pub, st);
    if (x->cfg->publish_events) {
        char json[1024];
        md_expiry_event_json(json, sizeof json, md_expiry_classes[c].name, key, klen,
                             md_expiry_classes[c].field, sym, slen, epoch_ms());
        publish_event(x, pub, pub_open, json, st);
        md_stats_publish(&x->pub, st);
    }
}

static void *watch(void *arg)
{
    md_expiry *x = arg;
    const md_config *cfg = x->cfg;
    md_stats st;
    memset(&st, 0, sizeof st);
    char chan[64];
    snprintf(chan, sizeof chan, "__keyevent@%d__:expired", cfg->redis.db);
    double backoff = cfg->reconnect_min_s;
    bool warned = false, refused = false, pub_open = false;
    md_bconn pub;
    memset(&pub, 0, sizeof pub);
    pub.fd = -1;

    while (!atomic_load(&x->stop)) {
        md_bconn c;
        md_bconn_deadline(&c, cfg->connect_timeout_s);
        bool ok = md_bconn_open(&c, x->target) == MD_BCONN_OK && md_bconn_auth(&c, &cfg->redis) == 0;
        if (ok) ensure_notify(x, &c, &warned);
        const char *sub[2] = {"SUBSCRIBE", chan};
        redisReply *rep = ok ? ask(&c, cfg, 2, sub) : NULL;
        ok = rep && rep->type == REDIS_REPLY_ARRAY;
        if (!ok && rep && rep->type == REDIS_REPLY_ERROR) {
            /* Refused, not failed (an ACL without +subscribe): say it once
             * with the fix, then keep trying quietly in case it is granted. */
            if (!refused)
                md_warn("expiry watcher: redis %s refused SUBSCRIBE %s (%s): expired keys are not "
                        "counted; grant +subscribe and &%s, or set watch_expired = no",
                        x->target->display, chan, rep->str, chan);
            refused = true;
            freeReplyObject(rep);
            md_bconn_close(&c);
            nap(x, cfg->reconnect_max_s);
            continue;
        }
        if (!ok) {
            MD_LOG_RL(MD_LOG_WARN, 1, "expiry watcher: redis %s: %s; retrying", x->target->display,
                      c.msg);
            if (rep) freeReplyObject(rep);
            md_bconn_close(&c);
            nap(x, backoff);
            backoff = backoff * 2 > cfg->reconnect_max_s ? cfg->reconnect_max_s : backoff * 2;
            continue;
        }
        freeReplyObject(rep);
        md_info("expiry watcher: subscribed to %s on redis %s", chan, x->target->display);
        backoff = cfg->reconnect_min_s;
        while (!atomic_load(&x->stop)) {
            md_bconn_deadline(&c, MD_EXPIRY_POLL_S);
            md_bconn_rc rc;
            rep = md_bconn_reply(&c, &rc);
            if (!rep) {
                if (c.timed_out) continue;
                MD_LOG_RL(MD_LOG_WARN, 1, "expiry watcher: redis %s: %s; resubscribing",
                          x->target->display, c.msg);
                break;
            }
            /* ["message", channel, key] */
            if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
                rep->element[2]->type == REDIS_REPLY_STRING &&
                strcmp(rep->element[0]->str ? rep->element[0]->str : "", "message") == 0)
                on_expired(x, rep->element[2]->str, rep->element[2]->len, &pub, &pub_open, &st);
            freeReplyObject(rep);
        }
        md_bconn_close(&c);
    }
    if (pub_open) md_bconn_close(&pub);
    return NULL;
}

int md_expiry_start(md_expiry *x, const md_config *cfg, const md_redis_target *t)
{
    memset(x, 0, sizeof *x);
    x->cfg = cfg;
    x->target = t;
    if (!cfg->watch_expired) return 0;
    /* Same order as md_expiry_classes; an empty template stays nvars 0. */
    const char *const tpls[MD_EXPIRY_CLASSES] = {
        cfg->price_key,    cfg->last_good_key,  cfg->positions_key, cfg->order_key,
        cfg->order_list_key, cfg->balances_key, cfg->accounts_key,
    };
    for (int c = 0; c < MD_EXPIRY_CLASSES; c++) {
        bool sym = c < 2, order = c == 3;
        if (tpls[c][0] && md_keytpl_init_vars(&x->tpl[c], cfg->key_prefix, tpls[c],
                                              sym ? "{symbol}" : "{account}",
                                              order ? "{order_id}" : NULL))
            return -1;
    }
    if (pthread_create(&x->thread, NULL, watch, x)) return -1;
    pthread_setname_np(x->thread, "mdcache-expiry");
    x->started = true;
    return 0;
}

void md_expiry_stop(md_expiry *x)
{
    if (!x->started) return;
    atomic_store(&x->stop, 1);
    pthread_join(x->thread, NULL);
    x->started = false;
}

void md_expiry_collect(md_expiry *x, md_stats *sum) { md_stats_collect(sum, &x->pub); }
