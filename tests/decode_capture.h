/*
 * Shared by the decoder unit tests: a callback sink that keeps every tick
 * and counts rejects, so a test can assert on exactly what a decoder
 * produced. Include after <cmocka.h>.
 */
#ifndef MD_TEST_DECODE_CAPTURE_H
#define MD_TEST_DECODE_CAPTURE_H

#include "md_decode.h"

#define CAP_TICKS 256

typedef struct capture {
    md_tick t[CAP_TICKS];
    size_t n;
    md_decode_stats st;
    size_t rejects;
    md_decode_err last_why;
} capture;

static void on_tick(void *ctx, const md_tick *t)
{
    capture *c = ctx;
    assert_true(c->n < CAP_TICKS);
    c->t[c->n++] = *t;
}

/* Every reject names at least one offending byte. */
static void on_reject(void *ctx, md_decode_err why, const char *what, size_t len)
{
    capture *c = ctx;
    assert_non_null(what);
    assert_true(len > 0);
    c->rejects++;
    c->last_why = why;
}

static md_decoder_ops ops_for(capture *c)
{
    md_decoder_ops o = {on_tick, on_reject, c, &c->st};
    return o;
}

static uint64_t errs(const capture *c)
{
    uint64_t s = 0;
    for (int i = 0; i < MD_DERR_COUNT; i++)
        s += c->st.err[i];
    return s;
}

#endif
