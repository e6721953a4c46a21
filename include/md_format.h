/*
 * md_format: what the batch writer puts on the wire. Price values as the
 * JSON readers already parse (DESIGN.md price row, field order kept), key
 * names from templates, and RESP commands written straight into the output
 * buffer.
 *
 * RESP is formatted by hand rather than with hiredis's redisFormatCommand
 * because this is the hottest code after the decoders: hiredis allocates an
 * sds per command, here we append into the batch buffer with no allocation.
 */
#ifndef MD_FORMAT_H
#define MD_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_state.h"

/* {"Last":..,"Bid":..,"Ask":..,"Volume":..,"High":..,"Low":..,"Timestamp":ms}
 * Unknown fields are null. Returns length (no NUL counted), 0 if cap too
 * small. 512 bytes always suffice. */
size_t md_format_price(const md_sym *s, char *buf, size_t cap);

/* A key template such as "price:{symbol}:latest" with the global prefix in
 * front, split once at start-up around the single "{symbol}". */
typedef struct md_keytpl {
    char head[128];
    char tail[128];
    uint8_t head_len, tail_len;
} md_keytpl;

/* 0 on success; -1 if tpl lacks exactly one "{symbol}" or is too long. */
int md_keytpl_init(md_keytpl *k, const char *prefix, const char *tpl);
size_t md_keytpl_format(const md_keytpl *k, const char *sym, size_t sym_len, char *buf,
                        size_t cap);
/* True if key has the template's shape (prefix, head, a non-empty symbol,
 * tail); *sym points at the symbol inside key. */
bool md_keytpl_match(const md_keytpl *k, const char *key, size_t len, const char **sym,
                     size_t *sym_len);

/* RESP arrays of bulk strings. Return bytes written, 0 if cap too small. */
size_t md_resp_setex(char *buf, size_t cap, const char *key, size_t klen, uint32_t ttl_s,
                     const char *val, size_t vlen);
size_t md_resp_set(char *buf, size_t cap, const char *key, size_t klen, const char *val,
                   size_t vlen);
size_t md_resp_cmd(char *buf, size_t cap, int argc, const char *const *argv,
                   const size_t *lens);

/* AUTH user pass, or AUTH pass when user is "" (the default user). */
size_t md_resp_auth(char *buf, size_t cap, const char *user, const char *pass);

#endif
