/*
 * md_bconn: a blocking Redis connection for the threads that are not
 * workers: the start-up check (md_preflight) and the expiry watcher
 * (md_expiry). Plain TCP, Unix socket or TLS (through md_tls, the code the
 * workers use), replies parsed by hiredis's reader.
 *
 * Every wait ends at the connection's deadline (md_bconn_deadline), so no
 * call blocks longer than its caller allowed; a reply that has not arrived
 * by then is reported as timed_out, and the bytes of a partial reply are
 * kept for the next call.
 */
#ifndef MD_BCONN_H
#define MD_BCONN_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_config.h"
#include "md_redis.h"
#include "md_tls.h"

typedef enum md_bconn_rc {
    MD_BCONN_OK = 0,
    MD_BCONN_UNREACHABLE, /* refused, reset, timed out, closed: may pass */
    MD_BCONN_REFUSED,     /* certificate, protocol: will not pass by retrying */
} md_bconn_rc;

typedef struct md_bconn {
    int fd;
    md_tls *tls;
    redisReader *rd;
    int64_t deadline_ms; /* CLOCK_MONOTONIC ms */
    bool timed_out;      /* the last failure was the deadline */
    char msg[256];       /* why the last call failed */
} md_bconn;

int64_t md_bconn_now_ms(void);
static inline void md_bconn_deadline(md_bconn *c, double seconds)
{
    c->deadline_ms = md_bconn_now_ms() + (int64_t)(seconds * 1000);
}

/* Connects (and does the TLS handshake for TLS targets) by the deadline. */
md_bconn_rc md_bconn_open(md_bconn *c, const md_redis_target *t);
/* Sends commands (encrypted under TLS). 0, or -1 with msg. */
int md_bconn_send(md_bconn *c, const char *p, size_t n);
/* The next reply by the deadline (free it with freeReplyObject), or NULL
 * with *rc and msg set; c->timed_out tells a deadline from a failure. */
redisReply *md_bconn_reply(md_bconn *c, md_bconn_rc *rc);
/* Under TLS 1.3 a server that refuses our certificate says so in an alert
 * after our handshake finished; if one is waiting, msg gets it: true. */
bool md_bconn_tls_alert(md_bconn *c);
/* AUTH with the URL's credentials, if it has any. 0, or -1 with msg. */
int md_bconn_auth(md_bconn *c, const md_redis_url *u);
/* Sends one command of NUL-terminated arguments. 0, or -1 with msg. */
int md_bconn_command(md_bconn *c, int argc, const char *const *argv);
void md_bconn_close(md_bconn *c);

#endif
