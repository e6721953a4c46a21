/*
 * md_preflight: the start-up check. See include/md_preflight.h.
 *
 * Blocking I/O is fine here: no worker runs yet. Every wait is bounded by
 * connect_timeout from the start of the check. TLS goes through md_tls, the
 * same code the workers use, so a certificate accepted here is accepted
 * there.
 */
#include "md_preflight.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "md_format.h"
#include "md_tls.h"

typedef struct pf {
    int fd;
    md_tls *tls;
    int64_t deadline_ms;
    char *msg;
    size_t cap;
} pf;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `ev` on the socket until the deadline. 0 ready, -1 timed out. */
static int wait_fd(pf *p, short ev)
{
    for (;;) {
        int64_t left = p->deadline_ms - now_ms();
        if (left <= 0) return -1;
        struct pollfd pfd = {.fd = p->fd, .events = ev};
        int rc = poll(&pfd, 1, (int)left);
        if (rc > 0) return 0;
        if (rc < 0 && errno != EINTR) return -1;
    }
}

static int send_all(pf *p, const char *b, size_t n)
{
    while (n) {
        ssize_t k = send(p->fd, b, n, MSG_NOSIGNAL);
        if (k > 0) {
            b += k;
            n -= (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(p, POLLOUT)) {
                snprintf(p->msg, p->cap, "send: timed out");
                return -1;
            }
        } else {
            snprintf(p->msg, p->cap, "send: %s%s", strerror(errno),
                     !p->tls && errno == ECONNRESET ? " (a TLS port? then use rediss://)" : "");
            return -1;
        }
    }
    return 0;
}

static int flush_tls(pf *p)
{
    char buf[16384];
    size_t n;
    while ((n = md_tls_take_cipher(p->tls, buf, sizeof buf)) > 0)
        if (send_all(p, buf, n)) return -1;
    return 0;
}

/* Some bytes from the socket. >0 bytes, 0 closed, -1 error/timeout (msg). */
static ssize_t recv_some(pf *p, char *buf, size_t cap)
{
    for (;;) {
        ssize_t k = recv(p->fd, buf, cap, 0);
        if (k >= 0) return k;
        if (errno != EAGAIN && errno != EINTR) {
            snprintf(p->msg, p->cap, "recv: %s%s", strerror(errno),
                     !p->tls && errno == ECONNRESET ? " (a TLS port? then use rediss://)" : "");
            return -1;
        }
        if (wait_fd(p, POLLIN)) {
            snprintf(p->msg, p->cap, "no answer within connect_timeout");
            return -1;
        }
    }
}

static md_preflight_rc do_connect(pf *p, const md_redis_target *t)
{
    p->fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (p->fd < 0) {
        snprintf(p->msg, p->cap, "socket: %s", strerror(errno));
        return MD_PREFLIGHT_UNREACHABLE;
    }
    if (connect(p->fd, (const struct sockaddr *)&t->addr, t->addrlen) == 0) return MD_PREFLIGHT_OK;
    if (errno != EINPROGRESS) {
        snprintf(p->msg, p->cap, "connect: %s", strerror(errno));
        return MD_PREFLIGHT_UNREACHABLE;
    }
    if (wait_fd(p, POLLOUT)) {
        snprintf(p->msg, p->cap, "connect: timed out");
        return MD_PREFLIGHT_UNREACHABLE;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr) {
        snprintf(p->msg, p->cap, "connect: %s", strerror(soerr));
        return MD_PREFLIGHT_UNREACHABLE;
    }
    return MD_PREFLIGHT_OK;
}

static md_preflight_rc do_tls(pf *p, const md_redis_target *t)
{
    char err[256];
    p->tls = md_tls_new(t->tls, err, sizeof err);
    if (!p->tls) {
        snprintf(p->msg, p->cap, "%s", err);
        return MD_PREFLIGHT_REFUSED;
    }
    for (;;) {
        md_tls_rc rc = md_tls_handshake(p->tls);
        if (flush_tls(p)) return MD_PREFLIGHT_UNREACHABLE;
        if (rc == MD_TLS_OK) return MD_PREFLIGHT_OK;
        if (rc != MD_TLS_WANT) {
            snprintf(p->msg, p->cap, "TLS: %s",
                     rc == MD_TLS_ERR ? md_tls_error(p->tls) : "closed during the handshake");
            return MD_PREFLIGHT_REFUSED;
        }
        char buf[16384];
        ssize_t k = recv_some(p, buf, sizeof buf);
        if (k == 0) {
            snprintf(p->msg, p->cap, "TLS: connection closed during the handshake");
            return MD_PREFLIGHT_UNREACHABLE;
        }
        if (k < 0) return MD_PREFLIGHT_UNREACHABLE;
        md_tls_put_cipher(p->tls, buf, (size_t)k);
    }
}

/* Under TLS 1.3 our handshake is done before the server has checked our
 * certificate: a server that refuses it sends an alert and resets the
 * connection, and our next send may see only the reset. The alert is
 * still in the socket's receive queue; if it is there, it is the answer.
 * True (msg set) when an alert was found. */
static bool tls_alert(pf *p)
{
    char buf[16384], plain[256];
    ssize_t k;
    while ((k = recv(p->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        md_tls_put_cipher(p->tls, buf, (size_t)k);
    size_t got;
    if (md_tls_read(p->tls, plain, sizeof plain, &got) != MD_TLS_ERR) return false;
    snprintf(p->msg, p->cap, "TLS: %s", md_tls_error(p->tls));
    return true;
}

/* Next reply, decrypting as needed. NULL with msg set on failure; *rc
 * says which kind. */
static redisReply *next_reply(pf *p, redisReader *rd, md_preflight_rc *rc)
{
    char buf[16384], plain[16384];
    for (;;) {
        void *rep = NULL;
        if (redisReaderGetReply(rd, &rep) != REDIS_OK) {
            snprintf(p->msg, p->cap, "protocol error: %s", rd->errstr);
            *rc = MD_PREFLIGHT_REFUSED;
            return NULL;
        }
        if (rep) return rep;
        if (p->tls) {
            size_t got = 0;
            md_tls_rc t = md_tls_read(p->tls, plain, sizeof plain, &got);
            if (t == MD_TLS_OK) {
                redisReaderFeed(rd, plain, got);
                continue;
            }
            if (t == MD_TLS_ERR) {
                /* e.g. the server's "certificate required" alert (TLS 1.3) */
                snprintf(p->msg, p->cap, "TLS: %s", md_tls_error(p->tls));
                *rc = MD_PREFLIGHT_REFUSED;
                return NULL;
            }
            if (t == MD_TLS_CLOSED) {
                snprintf(p->msg, p->cap, "TLS: closed by the server");
                *rc = MD_PREFLIGHT_UNREACHABLE;
                return NULL;
            }
        }
        ssize_t k = recv_some(p, buf, sizeof buf);
        if (k < 0 && p->tls && tls_alert(p)) {
            *rc = MD_PREFLIGHT_REFUSED;
            return NULL;
        }
        if (k <= 0) {
            if (k == 0)
                snprintf(p->msg, p->cap, "closed the connection without answering%s",
                         p->tls ? "" : " (a TLS port? then use rediss://)");
            *rc = MD_PREFLIGHT_UNREACHABLE;
            return NULL;
        }
        if (p->tls) md_tls_put_cipher(p->tls, buf, (size_t)k);
        else redisReaderFeed(rd, buf, (size_t)k);
    }
}

static md_preflight_rc do_commands(pf *p, const md_config *cfg)
{
    const md_redis_url *u = &cfg->redis;
    char out[2048], db[16];
    size_t len = 0;
    bool auth = u->pass[0] != 0;
    if (auth) len += md_resp_auth(out + len, sizeof out - len, u->user, u->pass);
    snprintf(db, sizeof db, "%d", u->db);
    const char *sel[2] = {"SELECT", db}, *ping[1] = {"PING"};
    len += md_resp_cmd(out + len, sizeof out - len, 2, sel, NULL);
    len += md_resp_cmd(out + len, sizeof out - len, 1, ping, NULL);
    int sent = p->tls ? md_tls_write(p->tls, out, len) || flush_tls(p) : send_all(p, out, len);
    memset(out, 0, sizeof out); /* the password */
    if (sent) return p->tls && tls_alert(p) ? MD_PREFLIGHT_REFUSED : MD_PREFLIGHT_UNREACHABLE;

    redisReader *rd = redisReaderCreate();
    if (!rd) {
        snprintf(p->msg, p->cap, "out of memory");
        return MD_PREFLIGHT_UNREACHABLE;
    }
    md_preflight_rc rc = MD_PREFLIGHT_OK;
    for (int i = auth ? 0 : 1; i < 3 && rc == MD_PREFLIGHT_OK; i++) {
        redisReply *rep = next_reply(p, rd, &rc);
        if (!rep) break;
        if (rep->type == REDIS_REPLY_ERROR) {
            const char *e = rep->str;
            if (i == 0) {
                snprintf(p->msg, p->cap, "refused the credentials: %s", e);
                rc = MD_PREFLIGHT_REFUSED;
            } else if (strncmp(e, "NOAUTH", 6) == 0) {
                snprintf(p->msg, p->cap,
                         "requires a password (%s); give it in the URL, [redis] password or "
                         "REDIS_PASSWORD",
                         e);
                rc = MD_PREFLIGHT_REFUSED;
            } else if (strncmp(e, "LOADING", 7) == 0) {
                snprintf(p->msg, p->cap, "is loading its data (%s)", e);
                rc = MD_PREFLIGHT_UNREACHABLE;
            } else if (i == 1) {
                snprintf(p->msg, p->cap, "refused SELECT %d: %s", u->db, e);
                rc = MD_PREFLIGHT_REFUSED;
            }
            /* PING refused otherwise (an ACL without +ping): not ours to judge */
        }
        freeReplyObject(rep);
    }
    redisReaderFree(rd);
    return rc;
}

/* A TLS handshake that got no answer at all: a stopped server, or a
 * plain-text Redis port, which takes our ClientHello for the start of an
 * inline command and waits for its end of line. The two look the same
 * from the TLS side; a plain-text PING on a second connection tells them
 * apart, and a plain-text port will never start talking TLS. */
static bool plain_port(const md_config *cfg, const md_redis_target *t)
{
    char msg[64];
    pf q = {.fd = -1, .msg = msg, .cap = sizeof msg};
    q.deadline_ms = now_ms() + (int64_t)(cfg->connect_timeout_s * 1000);
    bool plain = false;
    if (do_connect(&q, t) == MD_PREFLIGHT_OK && send_all(&q, "PING\r\n", 6) == 0) {
        char buf[8];
        ssize_t k = recv_some(&q, buf, sizeof buf);
        plain = k > 0 && (buf[0] == '+' || buf[0] == '-');
    }
    if (q.fd >= 0) close(q.fd);
    return plain;
}

md_preflight_rc md_preflight(const md_config *cfg, const md_redis_target *t, char *msg,
                             size_t cap)
{
    pf p = {.fd = -1, .msg = msg, .cap = cap};
    msg[0] = '\0';
    p.deadline_ms = now_ms() + (int64_t)(cfg->connect_timeout_s * 1000);
    md_preflight_rc rc = do_connect(&p, t);
    if (rc == MD_PREFLIGHT_OK && t->tls) {
        rc = do_tls(&p, t);
        if (rc == MD_PREFLIGHT_UNREACHABLE && now_ms() >= p.deadline_ms && plain_port(cfg, t)) {
            snprintf(msg, cap, "TLS: no answer, but a plain-text PING is answered: this port "
                               "does not speak TLS (use redis://, or the server's TLS port)");
            rc = MD_PREFLIGHT_REFUSED;
        }
    }
    if (rc == MD_PREFLIGHT_OK) rc = do_commands(&p, cfg);
    md_tls_free(p.tls);
    if (p.fd >= 0) close(p.fd);
    return rc;
}
