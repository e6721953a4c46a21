/*
 * md_decimal: exact fixed-point decimals.
 *
 * Prices and sizes travel through mdcache as an int64 mantissa and a decimal
 * exponent (value = mant * 10^exp), never as binary floating point, so that
 * "21000.25" or "0.00012345" reaches Redis exactly as the feed wrote it and
 * sums such as 0.5 + 0.00123 come out as 0.50123 with no float noise.
 *
 * The exponent is kept as given: "21000.00" stays mant=2100000 exp=-2 and
 * prints back as "21000.00" ("decimal values print exactly as the feed gave
 * them"). Exponents are limited to [-18, 0] internally; a positive exponent
 * on input ("1e3") is folded into the mantissa when it fits.
 */
#ifndef MD_DECIMAL_H
#define MD_DECIMAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD_DEC_EXP_MIN (-18)
/* Marks an absent value in md_dec.exp (and in bin1 frames). */
#define MD_DEC_ABSENT INT8_MIN

typedef struct md_dec {
    int64_t mant;
    int8_t exp; /* MD_DEC_EXP_MIN..0, or MD_DEC_ABSENT */
} md_dec;

static inline bool md_dec_present(md_dec d) { return d.exp != MD_DEC_ABSENT; }
static inline md_dec md_dec_absent(void) { md_dec d = {0, MD_DEC_ABSENT}; return d; }

/* Parses a JSON-style decimal ("-12.5", "21000.25", "1e-3", "5") of exactly
 * len bytes. Returns false for anything else: empty, NaN/inf words, more
 * than 18 significant digits, exponents out of range, trailing bytes. */
bool md_dec_parse(const char *s, size_t len, md_dec *out);

/* a + b exactly, at the finer of the two exponents. Returns false on
 * overflow (out is left unchanged). Absent operands count as zero. */
bool md_dec_add(md_dec a, md_dec b, md_dec *out);

/* <0, 0, >0 like strcmp, by numeric value (2.50 == 2.5). Both present. */
int md_dec_cmp(md_dec a, md_dec b);

/* Writes the decimal as a JSON number ("21000.25", "-0.001", "12345") with
 * its own exponent, NUL-terminated. Returns the length, or 0 if cap is too
 * small. 32 bytes always suffice. Absent values print as "null". */
size_t md_dec_format(md_dec d, char *buf, size_t cap);

#endif
