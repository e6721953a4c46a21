/*
 * md_tls: TLS for the Redis connection, as a filter over memory buffers.
 *
 * OpenSSL never touches a socket here: ciphertext that arrives is handed in
 * with md_tls_put_cipher, ciphertext to send is taken out with
 * md_tls_take_cipher, and the io_uring layer (md_redis) moves the bytes.
 * Nothing in this module blocks, so workers can run it on their event loop;
 * the start-up check (md_preflight) drives the same code with blocking
 * sockets, so what it verifies is exactly what the workers will do.
 *
 * One md_tls_ctx per process (the CA store, client certificate, verify
 * name), shared read-only by all threads; one md_tls per connection.
 */
#ifndef MD_TLS_H
#define MD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "md_config.h"

typedef struct md_tls_ctx md_tls_ctx;
typedef struct md_tls md_tls;

typedef enum md_tls_rc {
    MD_TLS_OK = 0,   /* done (handshake complete / bytes produced) */
    MD_TLS_WANT,     /* needs more ciphertext from the peer */
    MD_TLS_CLOSED,   /* the peer sent close_notify */
    MD_TLS_ERR,      /* fatal: md_tls_error() says why */
} md_tls_rc;

/* Loads the CA store (cacert, cacertdir, or the system default paths), the
 * client certificate and key, and sets TLS 1.2 as the floor. `name` is what
 * the server certificate must match (the SNI name, else the URL host; an IP
 * address is matched against IP SANs). NULL with a one-line message naming
 * the option on error. */
md_tls_ctx *md_tls_ctx_new(const md_config *cfg, const char *name, char *err, size_t errlen);
void md_tls_ctx_free(md_tls_ctx *c);
bool md_tls_ctx_insecure(const md_tls_ctx *c);

/* A client session; its ClientHello is ready to take after the first
 * md_tls_handshake. */
md_tls *md_tls_new(md_tls_ctx *c, char *err, size_t errlen);
void md_tls_free(md_tls *t);

/* Ciphertext from the peer. */
void md_tls_put_cipher(md_tls *t, const void *p, size_t n);
/* Advances the handshake; MD_TLS_OK once it is complete. */
md_tls_rc md_tls_handshake(md_tls *t);
/* Decrypts into buf; *got bytes. MD_TLS_WANT with *got = 0 when nothing
 * whole is buffered. */
md_tls_rc md_tls_read(md_tls *t, void *buf, size_t cap, size_t *got);
/* Encrypts all of p (memory BIOs never push back). -1 on error. */
int md_tls_write(md_tls *t, const void *p, size_t n);
/* Ciphertext waiting to be sent, and taking up to cap bytes of it. */
size_t md_tls_pending(const md_tls *t);
size_t md_tls_take_cipher(md_tls *t, void *buf, size_t cap);

/* Why the last call failed, in one line: "certificate verify failed:
 * certificate has expired", "tlsv13 alert certificate required", ... */
const char *md_tls_error(const md_tls *t);

#endif
