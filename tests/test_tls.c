/* md_tls end to end, without a network: an in-process OpenSSL server over
 * its own memory BIOs, and the md_tls client, with the test moving the
 * ciphertext between them in chunks of a chosen size. The certificates
 * (CA, server, expired server, unrelated CA, client) are made at start-up
 * and written as PEM files to a temporary directory, since md_tls_ctx_new
 * reads files. Every loop is bounded by PUMP_LIMIT; nothing depends on
 * timing (the validity windows are days wide). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "md_config.h"
#include "md_tls.h"

/* Iterations of any pump loop: a 1-byte chunk needs one per byte moved,
 * and no test moves more than ~300 KB. */
#define PUMP_LIMIT 2000000L
#define DAY 86400L
#define VARY 0 /* chunk size: cycle through small and large pieces */

static const size_t vary_sizes[] = {1, 7, 300, 16384, 5, 65536, 2, 1500};

/* ---- certificates ------------------------------------------------------ */

static struct {
    char dir[64];
    EVP_PKEY *ca_key, *ca2_key, *srv_key, *cli_key, *other_key;
    X509 *ca, *ca2, *srv, *expired, *cli;
    char ca_pem[128], ca2_pem[128], cli_pem[128], cli_key_pem[128], other_key_pem[128],
        junk_pem[128], missing[128];
} F;

static const char *const files[] = {"ca.pem",     "ca2.pem",   "client.pem",
                                    "client.key", "other.key", "junk.pem"};

enum { CERT_CA, CERT_SERVER, CERT_CLIENT };

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* issuer NULL: self-signed with key. Validity from/to are seconds from now. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial, long from, long to, int kind)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *n = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                                (const unsigned char *)cn, -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n), 1);
    X509 *iss = issuer ? issuer : x;
    switch (kind) {
    case CERT_CA:
        add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
        break;
    case CERT_SERVER:
        add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, iss, NID_key_usage, "critical,digitalSignature");
        add_ext(x, iss, NID_ext_key_usage, "serverAuth");
        add_ext(x, iss, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
        break;
    default:
        add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, iss, NID_key_usage, "critical,digitalSignature");
        add_ext(x, iss, NID_ext_key_usage, "clientAuth");
        break;
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(char *path, size_t cap, const char *name, X509 *x, EVP_PKEY *k)
{
    snprintf(path, cap, "%s/%s", F.dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (x) assert_int_equal(PEM_write_X509(f, x), 1);
    if (k) assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(F.dir, sizeof F.dir, "/tmp/md_test_tls.XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    F.ca_key = EVP_EC_gen("P-256");
    F.ca2_key = EVP_EC_gen("P-256");
    F.srv_key = EVP_EC_gen("P-256");
    F.cli_key = EVP_EC_gen("P-256");
    F.other_key = EVP_EC_gen("P-256");
    assert_true(F.ca_key && F.ca2_key && F.srv_key && F.cli_key && F.other_key);

    F.ca = make_cert("mdcache test CA", F.ca_key, NULL, NULL, 1, -DAY, 30 * DAY, CERT_CA);
    F.ca2 = make_cert("mdcache other CA", F.ca2_key, NULL, NULL, 1, -DAY, 30 * DAY, CERT_CA);
    F.srv = make_cert("localhost", F.srv_key, F.ca, F.ca_key, 2, -DAY, 30 * DAY, CERT_SERVER);
    F.expired =
        make_cert("localhost", F.srv_key, F.ca, F.ca_key, 3, -10 * DAY, -2 * DAY, CERT_SERVER);
    F.cli = make_cert("mdcache client", F.cli_key, F.ca, F.ca_key, 4, -DAY, 30 * DAY,
                      CERT_CLIENT);

    write_pem(F.ca_pem, sizeof F.ca_pem, "ca.pem", F.ca, NULL);
    write_pem(F.ca2_pem, sizeof F.ca2_pem, "ca2.pem", F.ca2, NULL);
    write_pem(F.cli_pem, sizeof F.cli_pem, "client.pem", F.cli, NULL);
    write_pem(F.cli_key_pem, sizeof F.cli_key_pem, "client.key", NULL, F.cli_key);
    write_pem(F.other_key_pem, sizeof F.other_key_pem, "other.key", NULL, F.other_key);
    snprintf(F.junk_pem, sizeof F.junk_pem, "%s/junk.pem", F.dir);
    FILE *f = fopen(F.junk_pem, "w");
    assert_non_null(f);
    fputs("this is not a certificate\n", f);
    assert_int_equal(fclose(f), 0);
    snprintf(F.missing, sizeof F.missing, "%s/missing.pem", F.dir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char path[160];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", F.dir, files[i]);
        unlink(path);
    }
    if (F.dir[0]) rmdir(F.dir);
    X509_free(F.ca);
    X509_free(F.ca2);
    X509_free(F.srv);
    X509_free(F.expired);
    X509_free(F.cli);
    EVP_PKEY_free(F.ca_key);
    EVP_PKEY_free(F.ca2_key);
    EVP_PKEY_free(F.srv_key);
    EVP_PKEY_free(F.cli_key);
    EVP_PKEY_free(F.other_key);
    memset(&F, 0, sizeof F);
    return 0;
}

/* ---- the server and the pump ---------------------------------------- */

typedef struct server {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *in, *out;
    int done; /* handshake: 1 complete, -1 failed, 0 in progress */
} server;

/* max_version 0 = OpenSSL's default (TLS 1.3). */
static void server_new(server *s, X509 *cert, EVP_PKEY *key, bool need_client_cert,
                       int max_version)
{
    memset(s, 0, sizeof *s);
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    assert_int_equal(SSL_CTX_use_certificate(s->ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, key), 1);
    if (max_version) assert_int_equal(SSL_CTX_set_max_proto_version(s->ctx, max_version), 1);
    if (need_client_cert) {
        assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(s->ctx), F.ca), 1);
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    s->ssl = SSL_new(s->ctx);
    s->in = BIO_new(BIO_s_mem());
    s->out = BIO_new(BIO_s_mem());
    assert_true(s->ssl && s->in && s->out);
    BIO_set_mem_eof_return(s->in, -1);
    BIO_set_mem_eof_return(s->out, -1);
    SSL_set_bio(s->ssl, s->in, s->out);
    SSL_set_accept_state(s->ssl);
}

static void server_free(server *s)
{
    SSL_free(s->ssl);
    SSL_CTX_free(s->ctx);
}

static void server_step(server *s)
{
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        s->done = 1;
        return;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) s->done = -1;
    ERR_clear_error();
}

typedef struct pump {
    size_t chunk; /* bytes per move, or VARY */
    unsigned k;
} pump;

static size_t next_chunk(pump *p)
{
    if (p->chunk != VARY) return p->chunk;
    return vary_sizes[p->k++ % (sizeof vary_sizes / sizeof vary_sizes[0])];
}

static unsigned char wire[65536];

/* One piece of the client's ciphertext into the server; bytes moved. */
static size_t c2s(md_tls *c, server *s, size_t cap)
{
    if (cap > sizeof wire) cap = sizeof wire;
    size_t pending = md_tls_pending(c);
    size_t n = md_tls_take_cipher(c, wire, cap);
    assert_int_equal(n, pending < cap ? pending : cap);
    assert_int_equal(md_tls_pending(c), pending - n);
    if (n) assert_int_equal(BIO_write(s->in, wire, (int)n), (int)n);
    return n;
}

/* One piece of the server's ciphertext into the client; bytes moved. */
static size_t s2c(server *s, md_tls *c, size_t cap)
{
    if (cap > sizeof wire) cap = sizeof wire;
    int n = BIO_read(s->out, wire, (int)cap);
    if (n <= 0) return 0;
    md_tls_put_cipher(c, wire, (size_t)n);
    return (size_t)n;
}

/* Drives both handshakes until neither side has anything left to say;
 * the client's last result. */
static md_tls_rc handshake(md_tls *c, server *s, pump *p)
{
    md_tls_rc rc = MD_TLS_WANT;
    for (long i = 0; i < PUMP_LIMIT; i++) {
        if (rc == MD_TLS_WANT) rc = md_tls_handshake(c);
        if (s->done == 0) server_step(s);
        size_t moved = c2s(c, s, next_chunk(p));
        moved += s2c(s, c, next_chunk(p));
        if (moved == 0) return rc; /* no new input for anyone: settled */
    }
    fail_msg("handshake did not settle in %ld iterations", PUMP_LIMIT);
    return MD_TLS_ERR;
}

/* md_tls_read, feeding it the server's ciphertext piece by piece until it
 * returns something other than MD_TLS_WANT (or there is nothing left). */
static md_tls_rc client_read(md_tls *c, server *s, pump *p, void *buf, size_t cap, size_t *got)
{
    for (long i = 0; i < PUMP_LIMIT; i++) {
        *got = 12345;
        md_tls_rc rc = md_tls_read(c, buf, cap, got);
        if (rc != MD_TLS_WANT) return rc;
        assert_int_equal(*got, 0);
        if (s2c(s, c, next_chunk(p)) == 0) return MD_TLS_WANT;
    }
    fail_msg("client read did not settle in %ld iterations", PUMP_LIMIT);
    return MD_TLS_ERR;
}

/* SSL_read_ex on the server, feeding it the client's ciphertext piece by
 * piece; bytes read (0 when nothing is left to move). */
static size_t server_read(server *s, md_tls *c, pump *p, void *buf, size_t cap)
{
    for (long i = 0; i < PUMP_LIMIT; i++) {
        size_t n = 0;
        ERR_clear_error();
        if (SSL_read_ex(s->ssl, buf, cap, &n) == 1) return n;
        int e = SSL_get_error(s->ssl, 0);
        if (e != SSL_ERROR_WANT_READ) fail_msg("server SSL_read: error %d", e);
        if (c2s(c, s, next_chunk(p)) == 0) return 0;
    }
    fail_msg("server read did not settle in %ld iterations", PUMP_LIMIT);
    return 0;
}

static md_tls_ctx *client_ctx(const char *cacert, const char *cert, const char *key,
                              int insecure, const char *name)
{
    md_config cfg;
    md_config_defaults(&cfg);
    snprintf(cfg.tls_cacert, sizeof cfg.tls_cacert, "%s", cacert ? cacert : "");
    snprintf(cfg.tls_cert, sizeof cfg.tls_cert, "%s", cert ? cert : "");
    snprintf(cfg.tls_key, sizeof cfg.tls_key, "%s", key ? key : "");
    cfg.tls_insecure = insecure;
    char err[512] = "";
    md_tls_ctx *cx = md_tls_ctx_new(&cfg, name, err, sizeof err);
    if (!cx) fail_msg("md_tls_ctx_new: %s", err);
    assert_int_equal(md_tls_ctx_insecure(cx), insecure != 0);
    return cx;
}

static md_tls *client_new(md_tls_ctx *cx)
{
    char err[512] = "";
    md_tls *c = md_tls_new(cx, err, sizeof err);
    if (!c) fail_msg("md_tls_new: %s", err);
    return c;
}

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (unsigned char)(x >> 16);
    }
}

/* ---- tests ----------------------------------------------------------- */

/* Handshake, then ~200 KB client -> server and ~64 KB server -> client. */
static void run_data(size_t chunk)
{
    md_tls_ctx *cx = client_ctx(F.ca_pem, NULL, NULL, 0, "localhost");
    md_tls *c = client_new(cx);
    server s;
    server_new(&s, F.srv, F.srv_key, false, 0);
    pump p = {chunk, 0};

    /* Before the first md_tls_handshake there is no ciphertext. */
    assert_int_equal(md_tls_pending(c), 0);
    assert_int_equal(handshake(c, &s, &p), MD_TLS_OK);
    assert_int_equal(s.done, 1);
    assert_string_equal(SSL_get_servername(s.ssl, TLSEXT_NAMETYPE_host_name), "localhost");

    const size_t N = 200 * 1024 + 17, M = 64 * 1024 + 3;
    unsigned char *src = malloc(N), *dst = malloc(N);
    assert_true(src && dst);

    /* Nothing buffered (the session tickets, if any, are not data). */
    size_t got = 12345;
    assert_int_equal(md_tls_read(c, dst, N, &got), MD_TLS_WANT);
    assert_int_equal(got, 0);

    /* Client -> server. */
    fill(src, N, 1);
    assert_int_equal(md_tls_write(c, src, 0), 0);
    assert_int_equal(md_tls_write(c, src, 1), 0);
    assert_int_equal(md_tls_write(c, src + 1, 999), 0);
    assert_int_equal(md_tls_write(c, src + 1000, N - 1000), 0);
    assert_true(md_tls_pending(c) > N);
    size_t have = 0;
    while (have < N) {
        size_t n = server_read(&s, c, &p, dst + have, N - have);
        if (n == 0) fail_msg("server got %zu of %zu bytes", have, N);
        have += n;
    }
    assert_memory_equal(src, dst, N);
    assert_int_equal(md_tls_pending(c), 0);
    assert_int_equal(md_tls_take_cipher(c, wire, sizeof wire), 0);

    /* Server -> client, read in pieces of the pump's size. */
    fill(src, M, 2);
    size_t done = 0;
    assert_int_equal(SSL_write_ex(s.ssl, src, M, &done), 1);
    assert_int_equal(done, M);
    memset(dst, 0, M);
    have = 0;
    while (have < M) {
        size_t cap = next_chunk(&p);
        if (cap > M - have) cap = M - have;
        md_tls_rc rc = client_read(c, &s, &p, dst + have, cap, &got);
        if (rc != MD_TLS_OK) fail_msg("client got %zu of %zu bytes: rc %d", have, M, rc);
        assert_true(got > 0 && got <= cap);
        have += got;
    }
    assert_memory_equal(src, dst, M);
    got = 12345;
    assert_int_equal(md_tls_read(c, dst, N, &got), MD_TLS_WANT);
    assert_int_equal(got, 0);

    free(src);
    free(dst);
    md_tls_free(c);
    md_tls_ctx_free(cx);
    server_free(&s);
}

static void test_data_1byte(void **state)
{
    (void)state;
    run_data(1);
}

static void test_data_16k(void **state)
{
    (void)state;
    run_data(16384);
}

static void test_data_varied(void **state)
{
    (void)state;
    run_data(VARY);
}

/* A handshake the client must refuse; md_tls_error must contain want. */
static void expect_verify_fail(const char *cacert, X509 *cert, const char *name, const char *want)
{
    md_tls_ctx *cx = client_ctx(cacert, NULL, NULL, 0, name);
    md_tls *c = client_new(cx);
    server s;
    server_new(&s, cert, F.srv_key, false, 0);
    pump p = {VARY, 0};
    assert_int_equal(handshake(c, &s, &p), MD_TLS_ERR);
    assert_int_not_equal(s.done, 1);
    const char *e = md_tls_error(c);
    if (!strstr(e, "certificate verify failed") || !strstr(e, want))
        fail_msg("name %s: error \"%s\", want \"certificate verify failed\" and \"%s\"", name, e,
                 want);
    md_tls_free(c);
    md_tls_ctx_free(cx);
    server_free(&s);
}

static void expect_ok(const char *cacert, X509 *cert, const char *name, int insecure)
{
    md_tls_ctx *cx = client_ctx(cacert, NULL, NULL, insecure, name);
    md_tls *c = client_new(cx);
    server s;
    server_new(&s, cert, F.srv_key, false, 0);
    pump p = {VARY, 0};
    md_tls_rc rc = handshake(c, &s, &p);
    if (rc != MD_TLS_OK) fail_msg("name %s: rc %d: %s", name, rc, md_tls_error(c));
    assert_int_equal(s.done, 1);
    md_tls_free(c);
    md_tls_ctx_free(cx);
    server_free(&s);
}

static void test_wrong_ca(void **state)
{
    (void)state;
    expect_verify_fail(F.ca2_pem, F.srv, "localhost", "unable to get local issuer certificate");
}

static void test_expired(void **state)
{
    (void)state;
    expect_verify_fail(F.ca_pem, F.expired, "localhost", "certificate has expired");
}

static void test_names(void **state)
{
    (void)state;
    expect_verify_fail(F.ca_pem, F.srv, "wrong.example", "hostname mismatch");
    expect_verify_fail(F.ca_pem, F.srv, "127.0.0.2", "IP address mismatch");
    expect_verify_fail(F.ca_pem, F.srv, "::1", "IP address mismatch");
    expect_ok(F.ca_pem, F.srv, "localhost", 0);
    expect_ok(F.ca_pem, F.srv, "LocalHost", 0);
    expect_ok(F.ca_pem, F.srv, "127.0.0.1", 0);
}

/* An IP address is verified against the IP SAN and is not sent as SNI. */
static void test_ip_no_sni(void **state)
{
    (void)state;
    md_tls_ctx *cx = client_ctx(F.ca_pem, NULL, NULL, 0, "127.0.0.1");
    md_tls *c = client_new(cx);
    server s;
    server_new(&s, F.srv, F.srv_key, false, 0);
    pump p = {16384, 0};
    assert_int_equal(handshake(c, &s, &p), MD_TLS_OK);
    assert_null(SSL_get_servername(s.ssl, TLSEXT_NAMETYPE_host_name));
    md_tls_free(c);
    md_tls_ctx_free(cx);
    server_free(&s);
}

static void test_insecure(void **state)
{
    (void)state;
    expect_ok(F.ca2_pem, F.srv, "localhost", 1);
    expect_ok(F.ca2_pem, F.srv, "wrong.example", 1);
    expect_ok(F.ca_pem, F.expired, "localhost", 1);
}

/* Mutual TLS, with a client certificate: both ends finish, and data flows. */
static void run_mtls_ok(int max_version)
{
    md_tls_ctx *cx = client_ctx(F.ca_pem, F.cli_pem, F.cli_key_pem, 0, "localhost");
    md_tls *c = client_new(cx);
    server s;
    server_new(&s, F.srv, F.srv_key, true, max_version);
    pump p = {VARY, 0};
    md_tls_rc rc = handshake(c, &s, &p);
    if (rc != MD_TLS_OK) fail_msg("rc %d: %s", rc, md_tls_error(c));
    assert_int_equal(s.done, 1);
    assert_int_equal(SSL_get_verify_result(s.ssl), X509_V_OK);
    X509 *peer = SSL_get0_peer_certificate(s.ssl);
    assert_non_null(peer);
    assert_int_equal(X509_cmp(peer, F.cli), 0);

    char buf[64];
    assert_int_equal(md_tls_write(c, "PING\r\n", 6), 0);
    assert_int_equal(server_read(&s, c, &p, buf, sizeof buf), 6);
    assert_memory_equal(buf, "PING\r\n", 6);
    size_t done = 0, got = 0;
    assert_int_equal(SSL_write_ex(s.ssl, "+PONG\r\n", 7, &done), 1);
    assert_int_equal(client_read(c, &s, &p, buf, sizeof buf, &got), MD_TLS_OK);
    assert_int_equal(got, 7);
    assert_memory_equal(buf, "+PONG\r\n", 7);

    md_tls_free(c);
    md_tls_ctx_free(cx);
    server_free(&s);
}

/* Mutual TLS without a client certificate: the server refuses. In TLS 1.2
 * the client learns it during the handshake; in TLS 1.3 its handshake is
 * complete before the server checks, and the alert arrives on the first
 * read. */
static void run_mtls_missing(int max_version, const char *cacert, int insecure)
{
    md_tls_ctx *cx = client_ctx(cacert, NULL, NULL, insecure, "localhost");
    md_tls *c = client_new(cx);
    server s;
    server_new(&s, F.srv, F.srv_key, true, max_version);
    pump p = {VARY, 0};
    md_tls_rc rc = handshake(c, &s, &p);
    assert_int_equal(s.done, -1);
    if (rc == MD_TLS_OK) {
        char buf[64];
        size_t got = 12345;
        rc = client_read(c, &s, &p, buf, sizeof buf, &got);
        assert_int_equal(got, 0);
    }
    assert_int_equal(rc, MD_TLS_ERR);
    const char *e = md_tls_error(c);
    assert_true(e[0] != '\0');
    if (strcmp(e, "unknown TLS error") == 0) fail_msg("no reason captured");
    if (!strstr(e, "alert")) fail_msg("error \"%s\", want the server's alert", e);
    md_tls_free(c);
    md_tls_ctx_free(cx);
    server_free(&s);
}

static void test_mtls_tls13(void **state)
{
    (void)state;
    run_mtls_ok(0);
    run_mtls_missing(0, F.ca_pem, 0);
    /* --insecure with an untrusted CA: OpenSSL still records the verify
     * failure it ignored; the alert must not be blamed on it. */
    run_mtls_missing(0, F.ca2_pem, 1);
}

static void test_mtls_tls12(void **state)
{
    (void)state;
    run_mtls_ok(TLS1_2_VERSION);
    run_mtls_missing(TLS1_2_VERSION, F.ca_pem, 0);
    run_mtls_missing(TLS1_2_VERSION, F.ca2_pem, 1);
}

/* Data before close_notify is delivered; then MD_TLS_CLOSED. */
static void run_close_notify(size_t chunk, int max_version)
{
    md_tls_ctx *cx = client_ctx(F.ca_pem, NULL, NULL, 0, "localhost");
    md_tls *c = client_new(cx);
    server s;
    server_new(&s, F.srv, F.srv_key, false, max_version);
    pump p = {chunk, 0};
    assert_int_equal(handshake(c, &s, &p), MD_TLS_OK);

    size_t done = 0, got = 0;
    assert_int_equal(SSL_write_ex(s.ssl, "bye", 3, &done), 1);
    assert_int_equal(SSL_shutdown(s.ssl), 0); /* sent; the client's not yet seen */
    char buf[16];
    assert_int_equal(client_read(c, &s, &p, buf, sizeof buf, &got), MD_TLS_OK);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "bye", 3);
    assert_int_equal(client_read(c, &s, &p, buf, sizeof buf, &got), MD_TLS_CLOSED);
    assert_int_equal(got, 0);

    md_tls_free(c);
    md_tls_ctx_free(cx);
    server_free(&s);
}

static void test_close_notify(void **state)
{
    (void)state;
    run_close_notify(1, 0);
    run_close_notify(16384, 0);
    run_close_notify(VARY, TLS1_2_VERSION);
}

/* md_tls_ctx_new: NULL, and a message naming the option. */
static void expect_ctx_fail(const char *cacert, const char *cert, const char *key,
                            const char *opt, const char *path, bool cannot_read)
{
    md_config cfg;
    md_config_defaults(&cfg);
    snprintf(cfg.tls_cacert, sizeof cfg.tls_cacert, "%s", cacert ? cacert : "");
    snprintf(cfg.tls_cert, sizeof cfg.tls_cert, "%s", cert ? cert : "");
    snprintf(cfg.tls_key, sizeof cfg.tls_key, "%s", key ? key : "");
    char err[512] = "";
    md_tls_ctx *cx = md_tls_ctx_new(&cfg, "localhost", err, sizeof err);
    if (cx) {
        md_tls_ctx_free(cx);
        fail_msg("md_tls_ctx_new succeeded; want a %s error", opt);
    }
    if (strncmp(err, opt, strlen(opt)) != 0 || !strstr(err, path) ||
        (strstr(err, "cannot read") != NULL) != cannot_read || strchr(err, '\n'))
        fail_msg("error \"%s\": want %s, %s, %s\"cannot read\"", err, opt, path,
                 cannot_read ? "" : "no ");
}

static void test_ctx_errors(void **state)
{
    (void)state;
    expect_ctx_fail(F.missing, NULL, NULL, "--cacert", F.missing, true);
    expect_ctx_fail(F.junk_pem, NULL, NULL, "--cacert", F.junk_pem, false);
    expect_ctx_fail(F.ca_pem, F.missing, F.cli_key_pem, "--cert", F.missing, true);
    expect_ctx_fail(F.ca_pem, F.junk_pem, F.cli_key_pem, "--cert", F.junk_pem, false);
    expect_ctx_fail(F.ca_pem, F.cli_pem, F.missing, "--key", F.missing, true);
    expect_ctx_fail(F.ca_pem, F.cli_pem, F.other_key_pem, "--key", F.other_key_pem, false);
    /* A CA directory that is not there fails at once, not at the first
     * handshake. */
    md_config cfg;
    md_config_defaults(&cfg);
    snprintf(cfg.tls_cacertdir, sizeof cfg.tls_cacertdir, "%s", F.missing);
    char err[512] = "";
    assert_null(md_tls_ctx_new(&cfg, "localhost", err, sizeof err));
    if (strncmp(err, "--cacertdir ", 12) != 0 || !strstr(err, "No such file"))
        fail_msg("error \"%s\": want --cacertdir and the reason", err);
    snprintf(cfg.tls_cacertdir, sizeof cfg.tls_cacertdir, "%s", F.ca_pem);
    assert_null(md_tls_ctx_new(&cfg, "localhost", err, sizeof err));
    if (!strstr(err, "not a directory")) fail_msg("error \"%s\": want not a directory", err);
    /* The pair that matches loads. */
    md_tls_ctx *cx = client_ctx(F.ca_pem, F.cli_pem, F.cli_key_pem, 0, "localhost");
    assert_false(md_tls_ctx_insecure(cx));
    md_tls_ctx_free(cx);
    md_tls_ctx_free(NULL);
    md_tls_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_1byte),   cmocka_unit_test(test_data_16k),
        cmocka_unit_test(test_data_varied),  cmocka_unit_test(test_wrong_ca),
        cmocka_unit_test(test_expired),      cmocka_unit_test(test_names),
        cmocka_unit_test(test_ip_no_sni),    cmocka_unit_test(test_insecure),
        cmocka_unit_test(test_mtls_tls13),   cmocka_unit_test(test_mtls_tls12),
        cmocka_unit_test(test_close_notify), cmocka_unit_test(test_ctx_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
