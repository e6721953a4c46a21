/*
 * md_bconn: blocking Redis connections for non-worker threads. See
 * include/md_bconn.h.
 */
#include "md_bconn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "md_format.h"

int64_t md_bconn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `ev` on the socket until the deadline. 0 ready, -1 timed out. */
static int wait_fd(md_bconn *p, short ev)
{
    for (;;) {
        int64_t left = p->deadline_ms - md_bconn_now_ms();
        if (left <= 0) return -1;
        struct pollfd pfd = {.fd = p->fd, .events = ev};
        int rc = poll(&pfd, 1, (int)left);
        if (rc > 0) return 0;
        if (rc < 0 && errno != EINTR) return -1;
    }
}

static int send_all(md_bconn *p, const char *b, size_t n)
{
    while (n) {
        ssize_t k = send(p->fd, b, n, MSG_NOSIGNAL);
        if (k > 0) {
            b += k;
            n -= (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(p, POLLOUT)) {
                snprintf(p->msg, sizeof p->msg, "send: timed out");
                return -1;
            }
        } else {
            snprintf(p->msg, sizeof p->msg, "send: %s%s", strerror(errno),
                     !p->tls && errno == ECONNRESET ? " (a TLS port? then use rediss://)" : "");
            return -1;
        }
    }
    return 0;
}

static int flush_tls(md_bconn *p)
{
    char buf[16384];
    size_t n;
    while ((n = md_tls_take_cipher(p->tls, buf, sizeof buf)) > 0)
        if (send_all(p, buf, n)) return -1;
    return 0;
}

/* Some bytes from the socket. >0 bytes, 0 closed, -1 error/timeout (msg). */
static ssize_t recv_some(md_bconn *p, char *buf, size_t cap)
{
    for (;;) {
        ssize_t k = recv(p->fd, buf, cap, 0);
        if (k >= 0) return k;
        if (errno != EAGAIN && errno != EINTR) {
            snprintf(p->msg, sizeof p->msg, "recv: %s%s", strerror(errno),
                     !p->tls && errno == ECONNRESET ? " (a TLS port? then use rediss://)" : "");
            return -1;
        }
        if (wait_fd(p, POLLIN)) {
            snprintf(p->msg, sizeof p->msg, "no answer in time");
            p->timed_out = true;
            return -1;
        }
    }
}

static md_bconn_rc do_connect(md_bconn *p, const md_redis_target *t)
{
    p->fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (p->fd < 0) {
        snprintf(p->msg, sizeof p->msg, "socket: %s", strerror(errno));
        return MD_BCONN_UNREACHABLE;
    }
    if (connect(p->fd, (const struct sockaddr *)&t->addr, t->addrlen) == 0) return MD_BCONN_OK;
    if (errno != EINPROGRESS) {
        snprintf(p->msg, sizeof p->msg, "connect: %s", strerror(errno));
        return MD_BCONN_UNREACHABLE;
    }
    if (wait_fd(p, POLLOUT)) {
        snprintf(p->msg, sizeof p->msg, "connect: timed out");
        return MD_BCONN_UNREACHABLE;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr) {
        snprintf(p->msg, sizeof p->msg, "connect: %s", strerror(soerr));
        return MD_BCONN_UNREACHABLE;
    }
    return MD_BCONN_OK;
}

static md_bconn_rc do_tls(md_bconn *p, const md_redis_target *t)
{
    char err[256];
    p->tls = md_tls_new(t->tls, err, sizeof err);
    if (!p->tls) {
        snprintf(p->msg, sizeof p->msg, "%s", err);
        return MD_BCONN_REFUSED;
    }
    for (;;) {
        md_tls_rc rc = md_tls_handshake(p->tls);
        if (flush_tls(p)) return MD_BCONN_UNREACHABLE;
        if (rc == MD_TLS_OK) return MD_BCONN_OK;
        if (rc != MD_TLS_WANT) {
            snprintf(p->msg, sizeof p->msg, "TLS: %s",
                     rc == MD_TLS_ERR ? md_tls_error(p->tls) : "closed during the handshake");
            return MD_BCONN_REFUSED;
        }
        char buf[16384];
        ssize_t k = recv_some(p, buf, sizeof buf);
        if (k == 0) {
            snprintf(p->msg, sizeof p->msg, "TLS: connection closed during the handshake");
            return MD_BCONN_UNREACHABLE;
        }
        if (k < 0) return MD_BCONN_UNREACHABLE;
        md_tls_put_cipher(p->tls, buf, (size_t)k);
    }
}

/* Under TLS 1.3 our handshake is done before the server has checked our
 * certificate: a server that refuses it sends an alert and resets the
 * connection, and our next send may see only the reset. The alert is
 * still in the socket's receive queue; if it is there, it is the answer.
 * True (msg set) when an alert was found. */
bool md_bconn_tls_alert(md_bconn *p)
{
    char buf[16384], plain[256];
    ssize_t k;
    while ((k = recv(p->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        md_tls_put_cipher(p->tls, buf, (size_t)k);
    /* Replies that came with it are kept for md_bconn_reply: a caller that
     * only timed out (the watcher) must not lose an event. */
    size_t got;
    md_tls_rc rc;
    while ((rc = md_tls_read(p->tls, plain, sizeof plain, &got)) == MD_TLS_OK)
        redisReaderFeed(p->rd, plain, got);
    if (rc != MD_TLS_ERR) return false;
    snprintf(p->msg, sizeof p->msg, "TLS: %s", md_tls_error(p->tls));
    return true;
}

/* Next reply, decrypting as needed. NULL with msg set on failure; *rc
 * says which kind. */
redisReply *md_bconn_reply(md_bconn *p, md_bconn_rc *rc)
{
    p->timed_out = false;
    char buf[16384], plain[16384];
    for (;;) {
        void *rep = NULL;
        if (redisReaderGetReply(p->rd, &rep) != REDIS_OK) {
            snprintf(p->msg, sizeof p->msg, "protocol error: %s", p->rd->errstr);
            *rc = MD_BCONN_REFUSED;
            return NULL;
        }
        if (rep) return rep;
        if (p->tls) {
            size_t got = 0;
            md_tls_rc t = md_tls_read(p->tls, plain, sizeof plain, &got);
            if (t == MD_TLS_OK) {
                redisReaderFeed(p->rd, plain, got);
                continue;
            }
            if (t == MD_TLS_ERR) {
                /* e.g. the server's "certificate required" alert (TLS 1.3) */
                snprintf(p->msg, sizeof p->msg, "TLS: %s", md_tls_error(p->tls));
                *rc = MD_BCONN_REFUSED;
                return NULL;
            }
            if (t == MD_TLS_CLOSED) {
                snprintf(p->msg, sizeof p->msg, "TLS: closed by the server");
                *rc = MD_BCONN_UNREACHABLE;
                return NULL;
            }
        }
        ssize_t k = recv_some(p, buf, sizeof buf);
        if (k < 0 && p->tls && md_bconn_tls_alert(p)) {
            *rc = MD_BCONN_REFUSED;
            return NULL;
        }
        if (k <= 0) {
            if (k == 0)
                snprintf(p->msg, sizeof p->msg, "closed the connection without answering%s",
                         p->tls ? "" : " (a TLS port? then use rediss://)");
            *rc = MD_BCONN_UNREACHABLE;
            return NULL;
        }
        if (p->tls) md_tls_put_cipher(p->tls, buf, (size_t)k);
        else redisReaderFeed(p->rd, buf, (size_t)k);
    }
}

md_bconn_rc md_bconn_open(md_bconn *c, const md_redis_target *t)
{
    int64_t deadline = c->deadline_ms; /* the caller's */
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->deadline_ms = deadline;
    c->rd = redisReaderCreate();
    if (!c->rd) {
        snprintf(c->msg, sizeof c->msg, "out of memory");
        return MD_BCONN_UNREACHABLE;
    }
    md_bconn_rc rc = do_connect(c, t);
    if (rc == MD_BCONN_OK && t->tls) rc = do_tls(c, t);
    return rc;
}

int md_bconn_send(md_bconn *c, const char *p, size_t n)
{
    if (!c->tls) return send_all(c, p, n);
    if (md_tls_write(c->tls, p, n)) {
        snprintf(c->msg, sizeof c->msg, "TLS: %s", md_tls_error(c->tls));
        return -1;
    }
    return flush_tls(c);
}

void md_bconn_close(md_bconn *c)
{
    md_tls_free(c->tls);
    if (c->rd) redisReaderFree(c->rd);
    if (c->fd >= 0) close(c->fd);
    c->tls = NULL;
    c->rd = NULL;
    c->fd = -1;
}

int md_bconn_auth(md_bconn *c, const md_redis_url *u)
{
    if (!u->pass[0]) return 0;
    char out[1024];
    size_t n = md_resp_auth(out, sizeof out, u->user, u->pass);
    int sent = md_bconn_send(c, out, n);
    memset(out, 0, sizeof out); /* the password */
    if (sent) return -1;
    md_bconn_rc rc;
    redisReply *rep = md_bconn_reply(c, &rc);
    if (!rep) return -1;
    int ok = rep->type != REDIS_REPLY_ERROR;
    if (!ok) snprintf(c->msg, sizeof c->msg, "refused the credentials: %s", rep->str);
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

int md_bconn_command(md_bconn *c, int argc, const char *const *argv)
{
    char out[4096];
    size_t n = md_resp_cmd(out, sizeof out, argc, argv, NULL);
    if (n == 0) {
        snprintf(c->msg, sizeof c->msg, "command too long");
        return -1;
    }
    return md_bconn_send(c, out, n);
}
