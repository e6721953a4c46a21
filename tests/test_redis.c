/* md_redis_error_class: Redis 7's real error texts map to the class that
 * decides what happens to the key; near-misses are MD_RERR_OTHER. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "md_redis.h"

typedef struct {
    const char *msg;
    md_rerr cls;
} rcase;

static void check(const rcase *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        md_rerr got = md_redis_error_class(c[i].msg);
        if (got != c[i].cls)
            fail_msg("\"%s\": got %s, want %s", c[i].msg, md_rerr_name[got],
                     md_rerr_name[c[i].cls]);
    }
}

/* The texts Redis 7 sends (server.c shared objects, acl.c, script.c). */
static void test_real_messages(void **state)
{
    (void)state;
    static const rcase c[] = {
        {"OOM command not allowed when used memory > 'maxmemory'.", MD_RERR_OOM},
        {"READONLY You can't write against a read only replica.", MD_RERR_READONLY},
        {"LOADING Redis is loading the dataset in memory", MD_RERR_LOADING},
        {"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN "
         "NOSCRIPT.",
         MD_RERR_BUSY},
        {"BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN "
         "NOSAVE.",
         MD_RERR_BUSY},
        {"NOAUTH Authentication required.", MD_RERR_AUTH},
        {"WRONGPASS invalid username-password pair or user is disabled.", MD_RERR_AUTH},
        {"NOPERM this user has no permissions to run the 'setex' command", MD_RERR_NOPERM},
        {"NOPERM this user has no permissions to access one of the keys used as arguments",
         MD_RERR_NOPERM},
        /* Redis Cluster (cluster.c, getNodeByQuery's replies) */
        {"MOVED 3999 127.0.0.1:6381", MD_RERR_MOVED},
        {"ASK 3999 127.0.0.1:6381", MD_RERR_ASK},
        {"TRYAGAIN Multiple keys request during rehashing of slot", MD_RERR_CLUSTERDOWN},
        {"CLUSTERDOWN The cluster is down", MD_RERR_CLUSTERDOWN},
        {"CLUSTERDOWN Hash slot not served", MD_RERR_CLUSTERDOWN},
    };
    check(c, sizeof c / sizeof c[0]);
}

/* A bare code (no text after it) still classifies. */
static void test_bare_codes(void **state)
{
    (void)state;
    static const rcase c[] = {
        {"OOM", MD_RERR_OOM},       {"READONLY", MD_RERR_READONLY}, {"LOADING", MD_RERR_LOADING},
        {"BUSY", MD_RERR_BUSY},     {"NOAUTH", MD_RERR_AUTH},       {"WRONGPASS", MD_RERR_AUTH},
        {"NOPERM", MD_RERR_NOPERM},
    };
    check(c, sizeof c / sizeof c[0]);
}

/* Codes that share a prefix, other codes, wrong case, and nothing at all. */
static void test_near_misses(void **state)
{
    (void)state;
    static const rcase c[] = {
        {"OOMX command not allowed", MD_RERR_OTHER},
        {"BUSYKEY Target key name already exists.", MD_RERR_OTHER},
        {"BUSYGROUP Consumer Group name already exists", MD_RERR_OTHER},
        {"READONLYX You can't write", MD_RERR_OTHER},
        {"NOAUTHX", MD_RERR_OTHER},
        {"ERR unknown command 'setex', with args beginning with: ", MD_RERR_OTHER},
        {"ERR invalid expire time in 'setex' command", MD_RERR_OTHER},
        {"WRONGTYPE Operation against a key holding the wrong kind of value", MD_RERR_OTHER},
        {"NOREPLICAS Not enough good replicas to write.", MD_RERR_OTHER},
        {"MOVEDX 3999 127.0.0.1:6381", MD_RERR_OTHER},
        {"ASKING", MD_RERR_OTHER},
        {"CLUSTERDOWNX", MD_RERR_OTHER},
        {"", MD_RERR_OTHER},
        {" OOM leading space", MD_RERR_OTHER},
        {"oom lowercase", MD_RERR_OTHER},
        {"Oom mixed case", MD_RERR_OTHER},
        {"OO", MD_RERR_OTHER},
    };
    check(c, sizeof c / sizeof c[0]);
}

static void test_class_names(void **state)
{
    (void)state;
    assert_string_equal(md_rerr_name[MD_RERR_OOM], "OOM");
    assert_string_equal(md_rerr_name[MD_RERR_READONLY], "READONLY");
    assert_string_equal(md_rerr_name[MD_RERR_LOADING], "LOADING");
    assert_string_equal(md_rerr_name[MD_RERR_BUSY], "BUSY");
    assert_string_equal(md_rerr_name[MD_RERR_AUTH], "AUTH");
    assert_string_equal(md_rerr_name[MD_RERR_NOPERM], "NOPERM");
    assert_string_equal(md_rerr_name[MD_RERR_MOVED], "MOVED");
    assert_string_equal(md_rerr_name[MD_RERR_ASK], "ASK");
    assert_string_equal(md_rerr_name[MD_RERR_CLUSTERDOWN], "CLUSTERDOWN");
    assert_string_equal(md_rerr_name[MD_RERR_OTHER], "other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_messages),
        cmocka_unit_test(test_bare_codes),
        cmocka_unit_test(test_near_misses),
        cmocka_unit_test(test_class_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
