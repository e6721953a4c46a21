/*
 * md_tls: OpenSSL over a pair of memory BIOs. See include/md_tls.h.
 *
 * Why memory BIOs and not SSL_set_fd: the socket belongs to io_uring.
 * A socket BIO would make OpenSSL call read()/write() itself, outside the
 * ring, and on a blocking socket stall the worker. With memory BIOs the
 * ring does all I/O, and OpenSSL only transforms bytes.
 *
 * OpenSSL keeps its error queue per thread, so every entry point clears it
 * first and the reason of a failure is captured into the md_tls at once
 * (md_tls_error), before another connection on the same thread can
 * overwrite it.
 */
#include "md_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct md_tls_ctx {
    SSL_CTX *ctx;
    char name[256];  /* verified against the certificate */
    bool name_is_ip; /* then no SNI (RFC 6066 allows host names only) */
    bool insecure;
};

struct md_tls {
    SSL *ssl;
    BIO *in;  /* network -> OpenSSL */
    BIO *out; /* OpenSSL -> network */
    char err[256];
};

/* This thread's error queue as one reason: the oldest entry, which names
 * the cause ("no start line"), where later ones only say which layer gave
 * up ("PEM lib"). Empties the queue. */
static void last_ssl_error(char *buf, size_t cap, const char *fallback)
{
    unsigned long e, first = 0;
    while ((e = ERR_get_error()) != 0)
        if (!first) first = e;
    const char *why = first ? ERR_reason_error_string(first) : NULL;
    if (why) snprintf(buf, cap, "%s", why);
    else if (first) ERR_error_string_n(first, buf, cap);
    else snprintf(buf, cap, "%s", fallback);
}

/* True when the queued failure is the certificate check (then the verify
 * result says why). Not the same as a verify result other than OK: with
 * --insecure OpenSSL records the failure it was told to ignore, and a later
 * error of another kind must not be blamed on it. */
static bool verify_failed(void)
{
    unsigned long e = ERR_peek_error();
    return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED;
}

static md_tls_ctx *ctx_fail(md_tls_ctx *c, char *err, size_t errlen, const char *what,
                            const char *path)
{
    char why[200];
    /* OpenSSL says "system lib" for a missing file; errno says more. */
    if (path && access(path, R_OK) != 0)
        snprintf(why, sizeof why, "cannot read: %s", strerror(errno));
    else
        last_ssl_error(why, sizeof why, "failed");
    snprintf(err, errlen, "%s%s%s: %s", what, path ? " " : "", path ? path : "", why);
    md_tls_ctx_free(c);
    return NULL;
}

md_tls_ctx *md_tls_ctx_new(const md_config *cfg, const char *name, char *err, size_t errlen)
{
    ERR_clear_error();
    md_tls_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "TLS: out of memory");
        return NULL;
    }
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx) return ctx_fail(c, err, errlen, "TLS", NULL);
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    /* Partial writes would only matter for a socket BIO; renegotiation is
     * refused (Redis never asks for it, and it is an attack surface). */
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION);
    snprintf(c->name, sizeof c->name, "%s", name);
    unsigned char ip[16];
    c->name_is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    c->insecure = cfg->tls_insecure;

    if (cfg->tls_cacert[0] || cfg->tls_cacertdir[0]) {
        if (cfg->tls_cacert[0] &&
            SSL_CTX_load_verify_locations(c->ctx, cfg->tls_cacert, NULL) != 1)
            return ctx_fail(c, err, errlen, "--cacert", cfg->tls_cacert);
        if (cfg->tls_cacertdir[0]) {
            /* OpenSSL only looks into the directory during a handshake; a
             * wrong path would surface as "unable to get local issuer". */
            struct stat sb;
            const char *why = NULL;
            if (stat(cfg->tls_cacertdir, &sb) != 0) why = strerror(errno);
            else if (!S_ISDIR(sb.st_mode)) why = "not a directory";
            else if (access(cfg->tls_cacertdir, R_OK | X_OK) != 0) why = strerror(errno);
            if (why) {
                snprintf(err, errlen, "--cacertdir %s: %s", cfg->tls_cacertdir, why);
                md_tls_ctx_free(c);
                return NULL;
            }
            if (SSL_CTX_load_verify_locations(c->ctx, NULL, cfg->tls_cacertdir) != 1)
                return ctx_fail(c, err, errlen, "--cacertdir", cfg->tls_cacertdir);
        }
    } else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
        return ctx_fail(c, err, errlen, "TLS: system CA store", NULL);
    }
    if (cfg->tls_cert[0]) {
        if (SSL_CTX_use_certificate_chain_file(c->ctx, cfg->tls_cert) != 1)
            return ctx_fail(c, err, errlen, "--cert", cfg->tls_cert);
        if (SSL_CTX_use_PrivateKey_file(c->ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1)
            return ctx_fail(c, err, errlen, "--key", cfg->tls_key);
        if (SSL_CTX_check_private_key(c->ctx) != 1)
            return ctx_fail(c, err, errlen, "--key", cfg->tls_key);
    }
    SSL_CTX_set_verify(c->ctx, c->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    return c;
}

void md_tls_ctx_free(md_tls_ctx *c)
{
    if (!c) return;
    SSL_CTX_free(c->ctx);
    free(c);
}

bool md_tls_ctx_insecure(const md_tls_ctx *c) { return c->insecure; }

md_tls *md_tls_new(md_tls_ctx *c, char *err, size_t errlen)
{
    ERR_clear_error();
    md_tls *t = calloc(1, sizeof *t);
    if (!t) goto fail;
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    t->ssl = SSL_new(c->ctx);
    if (!in || !out || !t->ssl) {
        BIO_free(in);
        BIO_free(out);
        goto fail;
    }
    /* An empty memory BIO reports "retry", not EOF: that is what turns an
     * empty read into SSL_ERROR_WANT_READ. */
    BIO_set_mem_eof_return(in, -1);
    BIO_set_mem_eof_return(out, -1);
    SSL_set_bio(t->ssl, in, out); /* the SSL owns both BIOs now */
    t->in = in;
    t->out = out;
    SSL_set_connect_state(t->ssl);
    if (!c->name_is_ip && c->name[0] && SSL_set_tlsext_host_name(t->ssl, c->name) != 1) goto fail;
    if (!c->insecure && c->name[0]) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
        int ok = c->name_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, c->name)
                               : X509_VERIFY_PARAM_set1_host(vp, c->name, 0);
        if (ok != 1) goto fail;
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    return t;
fail: {
    char why[200];
    last_ssl_error(why, sizeof why, "out of memory");
    snprintf(err, errlen, "TLS: %s", why);
}
    md_tls_free(t);
    return NULL;
}

void md_tls_free(md_tls *t)
{
    if (!t) return;
    SSL_free(t->ssl); /* frees the BIOs it owns */
    free(t);
}

void md_tls_put_cipher(md_tls *t, const void *p, size_t n)
{
    /* A memory BIO only fails to grow when malloc fails; the handshake or
     * read that follows then reports the missing bytes as an error. */
    if (n) BIO_write(t->in, p, (int)n);
}

/* Classifies the result of an SSL_* call; captures the reason on error. */
static md_tls_rc outcome(md_tls *t, int ret)
{
    int e = SSL_get_error(t->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: return MD_TLS_WANT;
    case SSL_ERROR_ZERO_RETURN: return MD_TLS_CLOSED;
    default: break;
    }
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK && verify_failed()) {
        snprintf(t->err, sizeof t->err, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else {
        last_ssl_error(t->err, sizeof t->err,
                       e == SSL_ERROR_SYSCALL ? "unexpected end of stream" : "protocol error");
    }
    return MD_TLS_ERR;
}

md_tls_rc md_tls_handshake(md_tls *t)
{
    ERR_clear_error();
    int ret = SSL_do_handshake(t->ssl);
    return ret == 1 ? MD_TLS_OK : outcome(t, ret);
}

md_tls_rc md_tls_read(md_tls *t, void *buf, size_t cap, size_t *got)
{
    ERR_clear_error();
    size_t n = 0;
    *got = 0;
    if (SSL_read_ex(t->ssl, buf, cap, &n) == 1) {
        *got = n;
        return MD_TLS_OK;
    }
    return outcome(t, 0);
}

int md_tls_write(md_tls *t, const void *p, size_t n)
{
    ERR_clear_error();
    size_t done = 0;
    if (n == 0) return 0;
    if (SSL_write_ex(t->ssl, p, n, &done) == 1 && done == n) return 0;
    outcome(t, 0);
    return -1;
}

size_t md_tls_pending(const md_tls *t) { return BIO_ctrl_pending(t->out); }

size_t md_tls_take_cipher(md_tls *t, void *buf, size_t cap)
{
    size_t n = 0;
    if (cap > (size_t)0x7fffffff) cap = 0x7fffffff;
    if (BIO_read_ex(t->out, buf, cap, &n) != 1) return 0;
    return n;
}

const char *md_tls_error(const md_tls *t) { return t->err[0] ? t->err : "unknown TLS error"; }
