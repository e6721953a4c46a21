/*
 * feedgen: what the tick generators share (tools/mdfeed for tests and the
 * demo, bench/mdgen for the benchmark): a seedable PRNG, the oracle model
 * of every symbol's state -- deliberately independent of the daemon's
 * coalescer and formatter, so the two can check each other -- the wire
 * encoders, the loopback-only target parser, and the --expect writer.
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

#endif
