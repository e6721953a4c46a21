/*
 * feedgen: what the tick generators share (tools/mdfeed for tests and the
 * demo, bench/mdgen for the benchmark): a seedable PRNG, the oracle model
 * of every symbol's state -- deliberately independent of the daemon's
 * coalescer and formatter, so the two can check each other -- the wire
 * encoders, the loopback-only target parser, and the --expect writer; and
 * the same for account messages (mdfeed --accounts), at the end.
 */
#ifndef FEEDGEN_H
#define FEEDGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define FG_PRICE_EXP (-2)
#define FG_SIZE_EXP (-3)
#define FG_NAME_MAX 31

enum { FG_UDP, FG_TCP, FG_UNIX, FG_FILE };
enum { FG_BIN1, FG_JSONL };

/* A decimal as the generator sent it: exp 0 or negative, or absent. */
typedef struct fg_dec {
    int64_t mant;
    int exp;
    bool present;
} fg_dec;

/* The oracle's view of one symbol, kept with its own arithmetic. */
typedef struct fg_sym {
    int64_t base;  /* price mantissa, exp -2 */
    int64_t price; /* current random-walk price mantissa */
    bool known;    /* at least one tick applied */
    fg_dec last, bid, ask, vol, high, low;
    int64_t ts_ns;
    bool has_ts;
} fg_sym;

/* One data tick. */
typedef struct fg_tick {
    int type; /* 1 quote, 2 trade */
    uint32_t sym;
    uint64_t seq;
    int64_t ts_ns;
    int64_t origin_ns; /* 0 = none */
    fg_dec v[4];
} fg_tick;

typedef struct fg_model {
    uint32_t nsym;
    char prefix[16];
    double trade_ratio;
    bool decimal_sizes;
    fg_sym *syms;
} fg_model;

typedef struct fg_target {
    int transport;
    char host[256];
    int port;
    char path[108];
} fg_target;

/* splitmix64: tiny, seedable, good enough for test data. */
uint64_t fg_rnd(uint64_t *s);
uint64_t fg_rnd_below(uint64_t *s, uint64_t n);
double fg_rnd_unit(uint64_t *s);
int64_t fg_now(clockid_t c);

/* Symbols get random base prices from *rng. -1 if out of memory. */
int fg_model_init(fg_model *m, uint32_t nsym, const char *prefix, uint64_t *rng);
void fg_model_free(fg_model *m);
/* "SYM00042" */
void fg_sym_name(const fg_model *m, uint32_t i, char out[32]);
/* Next tick of symbol si (a random walk), stamped seq and ts. */
void fg_gen_tick(fg_model *m, uint64_t *rng, uint32_t si, uint64_t seq, int64_t ts_ns, fg_tick *t);
/* The oracle: applies t to its symbol's expected state. */
void fg_apply(fg_model *m, const fg_tick *t);
/* The price value JSON the symbol's key must hold. */
size_t fg_value(const fg_sym *s, char *out);
/* Writes one {"key":..,"value":..} line per known symbol. -1 on error (printed). */
int fg_write_expect(const fg_model *m, const char *path, const char *who);

size_t fg_dec_print(fg_dec d, char *out);
/* A numeric option's value in [lo, hi], or exit 2 naming who and the option. */
double fg_num_arg(const char *who, const char *name, const char *v, double lo, double hi);
fg_dec fg_mk(int64_t mant, int exp);

/* Encodes t (with its origin stamp when set) at out; returns bytes, 0 if it
 * does not fit in cap. string_numbers quotes some jsonl numbers. */
size_t fg_encode(const fg_model *m, int format, const fg_tick *t, const char *source,
                 bool string_numbers, unsigned char *out, size_t cap);

/* udp://H:P, tcp://H:P, unix:///path or file://path (a capture to replay
 * with mdcache's file:// listener); H must be loopback. 0 or -1 with err. */
int fg_target_parse(const char *spec, fg_target *t, char *err, size_t errlen);
/* Connected socket, or -1 with err. */
int fg_connect(const fg_target *t, char *err, size_t errlen);

/* ---- account messages (mdfeed --accounts) ----
 *
 * A second generator and oracle beside the price one, with its own PRNG
 * stream so that turning accounts on leaves every price tick's values as
 * they were. The generator side decides what a feed would send (which
 * orders are still open, whether a balance was ever sent); the oracle side
 * applies each message by docs/keys.md's rules alone and keeps what every
 * account key must end up holding. */

/* Message types: the bin1 type codes. */
enum { FG_POSITION = 5, FG_ORDER = 6, FG_BALANCE = 7, FG_ACCOUNT = 8 };
/* Order status, side and the account's active flag: the bin1 codes too. */
enum { FG_ST_WORKING = 1, FG_ST_FILLED, FG_ST_CANCELLED, FG_ST_REJECTED };
enum { FG_SIDE_NONE, FG_SIDE_BUY, FG_SIDE_SELL };
enum { FG_ACTIVE_UNKNOWN, FG_ACTIVE_NO, FG_ACTIVE_YES };

#define FG_REF_MAX 63      /* order id, account id: bytes */
#define FG_ACCT_SYMS 8     /* instruments one account trades */
#define FG_ACCT_WORKING 12 /* working orders the generator keeps per account, at most */

/* One account message as sent; what it lacks is absent (present = false,
 * sym < 0, ref "", side NONE, active UNKNOWN). */
typedef struct fg_amsg {
    int type;
    uint32_t acct;
    int32_t sym;        /* position, order: the instrument; -1 none */
    uint32_t order;     /* FG_ORDER: index in fg_accts.ord */
    uint64_t seq;
    int64_t ts_ns;
    char ref[FG_REF_MAX + 1]; /* order id (always), or the account id ("" = none) */
    int side, status, active;
    bool us_spelling;   /* jsonl: "canceled" for FG_ST_CANCELLED */
    fg_dec v[3];        /* net_pos, avg_price | qty, price | cash, realized, unrealized */
} fg_amsg;

typedef struct fg_pos {
    uint32_t sym;
    fg_dec net, avg;
    int64_t ts_ns;
} fg_pos;

typedef struct fg_order {
    uint32_t acct;
    char id[FG_REF_MAX + 1];
    /* generator: what it believes a venue still has open, and at what price */
    bool open;
    uint32_t gsym;
    int64_t gprice;
    /* oracle: the order as merged from the messages */
    bool seen, live;
    int32_t sym; /* -1 never given */
    int side, status;
    fg_dec qty, price;
    int64_t ts_ns;
    uint32_t next; /* the account's next order (oracle list), UINT32_MAX none */
} fg_order;

/* Value classes, for known[] and ts_ns[]. */
enum { FG_AC_POSITIONS, FG_AC_ORDERS, FG_AC_BALANCE, FG_AC_INFO, FG_AC_COUNT };

typedef struct fg_acct {
    /* generator */
    uint32_t work[FG_ACCT_WORKING]; /* open orders */
    uint32_t nwork;
    bool sent_balance, sent_info;
    /* oracle */
    fg_pos pos[FG_ACCT_SYMS];
    uint32_t npos;
    bool known[FG_AC_COUNT];
    int64_t ts_ns[FG_AC_COUNT]; /* newest message of the class */
    fg_dec cash, realized, unrealized;
    char id[FG_REF_MAX + 1];
    int active;
    uint32_t ofirst, olast; /* the account's orders, oldest first; UINT32_MAX none */
} fg_acct;

typedef struct fg_accts {
    uint32_t n;
    fg_acct *a;
    fg_order *ord;
    uint32_t nord, ord_cap;
    char source[32]; /* order ids are "<source>-<n>" */
    uint64_t rng;
    uint64_t msgs[FG_ACCOUNT + 1]; /* sent, per type */
} fg_accts;

/* n accounts, ACC0000..; the PRNG stream is derived from seed. -1 if out of
 * memory. */
int fg_accts_init(fg_accts *a, uint32_t n, const char *source, uint64_t seed);
void fg_accts_free(fg_accts *a);
/* "ACC0042" */
void fg_acct_name(uint32_t i, char out[32]);
/* The next account message, stamped seq and ts. -1 if out of memory. */
int fg_acct_gen(fg_accts *a, const fg_model *m, uint64_t seq, int64_t ts_ns, fg_amsg *out);
/* The oracle: applies msg to the account's expected values. */
void fg_acct_apply(fg_accts *a, const fg_amsg *msg);
/* Encodes msg at out (bin1 with the header's encoders, or one jsonl line);
 * bytes, 0 if it does not fit in cap. */
size_t fg_acct_encode(const fg_model *m, int format, const fg_amsg *msg, const char *source,
                      bool string_numbers, unsigned char *out, size_t cap);
/* Appends to path one {"key":..,"value":..} line per account key that must
 * exist, and {"key":..,"value":null} per order that ended terminal (its
 * key must not exist). -1 on error (printed). */
int fg_acct_write_expect(const fg_accts *a, const fg_model *m, const char *path,
                         const char *who);

#endif
