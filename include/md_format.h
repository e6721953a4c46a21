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

#include "md_account.h"
#include "md_state.h"

/* {"Last":..,"Bid":..,"Ask":..,"Volume":..,"High":..,"Low":..,"Timestamp":ms}
 * Unknown fields are null. Returns length (no NUL counted), 0 if cap too
 * small. 512 bytes always suffice. */
size_t md_format_price(const md_sym *s, char *buf, size_t cap);

/* A key template such as "price:{symbol}:latest" with the global prefix in
 * front, split once at start-up around its variables: one ("{symbol}",
 * "{account}") or two ("hft:orders:pending:{account}:{order_id}"). */
typedef struct md_keytpl {
    char head[128];
    char mid[128];  /* between the two variables */
    char tail[128];
    uint8_t head_len, mid_len, tail_len;
    uint8_t nvars;
} md_keytpl;

/* 0 on success; -1 if tpl lacks exactly one "{symbol}" or is too long. */
int md_keytpl_init(md_keytpl *k, const char *prefix, const char *tpl);
/* The same with variable var1 and, if var2 is not NULL, var2 after it with
 * at least one byte between them; each exactly once. */
int md_keytpl_init_vars(md_keytpl *k, const char *prefix, const char *tpl, const char *var1,
                        const char *var2);
/* One-variable templates. */
size_t md_keytpl_format(const md_keytpl *k, const char *sym, size_t sym_len, char *buf,
                        size_t cap);
/* Two-variable templates. */
size_t md_keytpl_format2(const md_keytpl *k, const char *a, size_t alen, const char *b,
                         size_t blen, char *buf, size_t cap);
/* True if key has the template's shape (prefix, head, a non-empty
 * variable, tail; for two variables, mid and a non-empty second one too);
 * *sym points at the first variable inside key. */
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

/* Account values (docs/keys.md). Each returns the length (a NUL follows),
 * 0 if cap is too small; md_account_value_max() bytes always suffice. */
size_t md_account_value_max(uint32_t max_positions, uint32_t max_orders);
size_t md_format_positions(const md_account *a, char *buf, size_t cap);
size_t md_format_order(const md_account *a, const md_order *o, char *buf, size_t cap);
size_t md_format_orders(const md_account *a, char *buf, size_t cap);
size_t md_format_balance(const md_account *a, char *buf, size_t cap);
size_t md_format_accounts(const md_account *a, char *buf, size_t cap);

#endif
