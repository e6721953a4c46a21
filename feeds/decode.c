/*
 * Shared by every decoder: the metric label of each drop reason. The names
 * are snake_case because they end up as Prometheus label values
 * (mdcache_decode_errors_total{reason="bad_number"}).
 */
#include "md_decode.h"

const char *const md_decode_err_name[MD_DERR_COUNT] = {
    [MD_DERR_SYNTAX] = "syntax",
    [MD_DERR_TRUNCATED] = "truncated",
    [MD_DERR_OVERSIZED] = "oversized",
    [MD_DERR_VERSION] = "version",
    [MD_DERR_UNKNOWN_TYPE] = "unknown_type",
    [MD_DERR_MISSING_FIELD] = "missing_field",
    [MD_DERR_BAD_NUMBER] = "bad_number",
    [MD_DERR_NEGATIVE] = "negative",
    [MD_DERR_SYMBOL] = "symbol",
    [MD_DERR_ID] = "id",
    [MD_DERR_BAD_VALUE] = "bad_value",
};
