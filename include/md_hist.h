/*
 * md_hist: a log-linear latency histogram in the manner of HdrHistogram:
 * exact below 128, then 64 sub-buckets per power of two, so any recorded
 * value is reported within 1/64 (1.6%) of itself, from nanoseconds to
 * centuries, in a fixed 30 KB. Recording is an index computation and one
 * increment: cheap enough for every batch acknowledgement on a worker.
 *
 * One writer per histogram (its worker); readers merge copies after the
 * writer is done. A live view goes through md_hist_pub: the writer folds
 * its histogram into a few cumulative buckets held in atomics, which other
 * threads may read at any time.
 */
#ifndef MD_HIST_H
#define MD_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#define MD_HIST_SUB_BITS 6
#define MD_HIST_SUB (1u << MD_HIST_SUB_BITS)   /* sub-buckets per octave */
#define MD_HIST_BUCKETS ((64 - MD_HIST_SUB_BITS - 1) * MD_HIST_SUB + 2 * MD_HIST_SUB)

typedef struct md_hist {
    uint64_t count, sum, min, max;
    uint64_t b[MD_HIST_BUCKETS];
} md_hist;

void md_hist_reset(md_hist *h);
void md_hist_record(md_hist *h, uint64_t v);
/* Records v n times (n = 0 records nothing). */
void md_hist_record_n(md_hist *h, uint64_t v, uint64_t n);
/* Writes {"count":..,"sum":..,"min":..,"max":..,"buckets":[[index,count],..]}
 * (non-empty buckets only), the form bench/ reads from every system. */
void md_hist_write_json(FILE *f, const md_hist *h);
void md_hist_merge(md_hist *into, const md_hist *from);

/* The value at quantile q (0..1): the upper edge of the bucket holding the
 * ceil(q * count)-th smallest value, never above max. 0 when empty. */
uint64_t md_hist_quantile(const md_hist *h, double q);

/* Coarse live copy for readers on other threads (the metrics endpoint). */
#define MD_HIST_PUB_MAX 24
typedef struct md_hist_pub {
    _Atomic uint64_t le[MD_HIST_PUB_MAX]; /* values <= bounds[j], cumulative */
    _Atomic uint64_t count, sum;
} md_hist_pub;
typedef struct md_hist_snap {
    uint64_t le[MD_HIST_PUB_MAX];
    uint64_t count, sum;
} md_hist_snap;
/* By the writer. bounds ascend, n <= MD_HIST_PUB_MAX. A fine bucket counts
 * under bounds[j] only when all of it lies at or below bounds[j], so a
 * value within 1/64 of a bound above 127 may show under the next one:
 * never under a bound it exceeds. */
void md_hist_publish(md_hist_pub *p, const md_hist *h, const uint64_t *bounds, size_t n);
/* By any thread. count is taken as the last bucket's total, so that
 * le[] <= count holds even while the writer publishes. */
void md_hist_pub_read(const md_hist_pub *p, md_hist_snap *out, size_t n);

size_t md_hist_index(uint64_t v);
uint64_t md_hist_lower(size_t idx);
uint64_t md_hist_upper(size_t idx);

#endif
