/*
 * md_decode: the common contract of every feed decoder in feeds/.
 *
 * A decoder turns bytes into md_tick values and hands each to a callback.
 * It never stops on bad input: a bad line or frame is dropped, counted in
 * md_decode_stats by reason, and decoding goes on with the next one.
 * Decoders keep no state between calls; stream reassembly (lines or frames
 * split across reads) is the caller's job, helped by the return value.
 */
#ifndef MD_DECODE_H
#define MD_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "md_tick.h"

typedef enum md_decode_err {
    MD_DERR_SYNTAX = 0,     /* not parseable JSON / malformed frame header */
    MD_DERR_TRUNCATED,      /* frame shorter than its header says / datagram cut */
    MD_DERR_OVERSIZED,      /* line or frame longer than the limit */
    MD_DERR_VERSION,        /* unknown bin1 version */
    MD_DERR_UNKNOWN_TYPE,   /* unknown or unsupported message type */
    MD_DERR_MISSING_FIELD,  /* required field absent (e.g. symbol) */
    MD_DERR_BAD_NUMBER,     /* NaN, inf, unparseable or out-of-range number */
    MD_DERR_NEGATIVE,       /* negative size or price where not allowed */
    MD_DERR_SYMBOL,         /* empty, over-long or non-printable symbol */
    MD_DERR_ID,             /* empty, over-long or non-printable account, order_id or id */
    MD_DERR_BAD_VALUE,      /* a word field with an unknown value (order side, status) */
    MD_DERR_COUNT
} md_decode_err;

extern const char *const md_decode_err_name[MD_DERR_COUNT];

typedef struct md_decode_stats {
    uint64_t ok;                   /* ticks handed to the callback */
    uint64_t err[MD_DERR_COUNT];   /* dropped, by reason */
    uint64_t skipped;              /* well-formed messages of kinds the dialect does not
                                    * use (binance depth, kline...): not errors */
} md_decode_stats;

/* Called once per decoded tick. The tick is only valid during the call.
 * For account types (md_tick_is_account) it is the head of an md_acct. */
typedef void (*md_tick_fn)(void *ctx, const md_tick *t);

/* Called once per dropped line/frame so the caller can log at a rate limit.
 * May be NULL. `what` points at the offending bytes (not NUL-terminated). */
typedef void (*md_reject_fn)(void *ctx, md_decode_err why, const char *what, size_t len);

typedef struct md_decoder_ops {
    md_tick_fn on_tick;
    md_reject_fn on_reject;
    void *ctx;
    md_decode_stats *stats;
} md_decoder_ops;

/* Longest jsonl or binance line (its '\n' included) and longest bin1
 * frame; longer input is dropped as MD_DERR_OVERSIZED. A stream caller's reassembly
 * buffer must hold at least this many bytes. */
#define MD_JSONL_LINE_MAX 4096
#define MD_BIN1_FRAME_MAX 1024

/*
 * Decode as much of buf as forms complete units and return the number of
 * bytes consumed. Units not complete at the end of buf are left for the
 * caller to retry with more bytes, unless `final` is set (a datagram, end of
 * file), in which case the tail is decoded or dropped too and len is
 * returned.
 *
 * bin1 (docs/protocol.md): a frame whose header is invalid (magic, version,
 * length) cannot be trusted to say where the next frame starts. In a
 * datagram (final set) the rest of the datagram is dropped; in a stream the
 * decoder counts one error and resynchronises by scanning for the next
 * magic+version pair. A run of garbage whose end is not in buf yet is left
 * unconsumed (unless it is MD_BIN1_FRAME_MAX bytes or longer), so that it
 * is counted once however the stream was cut into reads. A frame longer
 * than MD_BIN1_FRAME_MAX is oversized.
 */
size_t md_bin1_decode(const uint8_t *buf, size_t len, int final, const md_decoder_ops *ops);

/* The shape of the line decoders below (jsonl, binance). */
typedef size_t (*md_line_decode_fn)(const char *buf, size_t len, int final, int *skipping,
                                    const md_decoder_ops *ops);

/* jsonl native dialect. *skipping is caller-held stream state: when set, the
 * decoder discards bytes up to and including the next '\n' (the rest of an
 * oversized line) before decoding. Pass NULL for datagrams. */
size_t md_jsonl_decode(const char *buf, size_t len, int final, int *skipping,
                       const md_decoder_ops *ops);

/* jsonl Binance dialect (docs/protocol.md, "Binance dialect"): raw public
 * WebSocket stream payloads, one per line, alone or in the combined-stream
 * wrapper. Same line framing and *skipping contract as md_jsonl_decode.
 * Streams it does not use are counted in stats->skipped. */
size_t md_binance_decode(const char *buf, size_t len, int final, int *skipping,
                         const md_decoder_ops *ops);

#endif
