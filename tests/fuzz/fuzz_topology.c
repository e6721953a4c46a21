/*
 * Cluster topology fuzz target: arbitrary server bytes parsed by hiredis's
 * reader, then read as CLUSTER SHARDS and as CLUSTER SLOTS replies
 * (src/topology.c), over TLS and not. Whatever the reply, the parsers must
 * not crash or misread memory, and a map they accept must be consistent:
 * every owner a real node with a usable port, `covered` the number of
 * owned slots.
 */
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "md_topology.h"

static void check(int ok)
{
    if (!ok) abort();
}

static void check_map(const md_topology *t)
{
    uint32_t owned = 0;
    check(t->nnodes <= MD_TOPO_MAX_NODES);
    for (int i = 0; i < t->nnodes; i++) {
        check(t->nodes[i].port > 0);
        check(t->nodes[i].host[0] != '\0');
        check(memchr(t->nodes[i].host, 0, sizeof t->nodes[i].host) != NULL);
        check(memchr(t->nodes[i].id, 0, sizeof t->nodes[i].id) != NULL);
    }
    for (size_t s = 0; s < MD_SLOT_COUNT; s++) {
        if (t->owner[s] == MD_SLOT_NONE) continue;
        check(t->owner[s] < t->nnodes);
        owned++;
    }
    check(owned == t->covered);
}

/* hiredis 0.14's default reader allocates a declared array whole before
 * its elements arrive, so "*1111111111" is an 8 GB calloc inside hiredis,
 * not in the code under test. Inputs declaring huge arrays are skipped. */
static int huge_array(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (d[i] != '*') continue;
        unsigned long v = 0;
        for (size_t j = i + 1; j < n && d[j] >= '0' && d[j] <= '9' && v <= 65536; j++)
            v = v * 10 + (unsigned long)(d[j] - '0');
        if (v > 65536) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (huge_array(data, size)) return 0;
    static md_topology t;
    char err[256];
    redisReader *rd = redisReaderCreate();
    void *rep = NULL;
    check(rd != NULL);
    if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK &&
        redisReaderGetReply(rd, &rep) == REDIS_OK && rep) {
        for (int tls = 0; tls < 2; tls++) {
            if (md_topology_from_shards(&t, rep, tls, "seed", err, sizeof err) == 0) check_map(&t);
            else check(err[0] != '\0');
            if (md_topology_from_slots(&t, rep, tls, "seed", err, sizeof err) == 0) check_map(&t);
            else check(err[0] != '\0');
        }
        freeReplyObject(rep);
    }
    redisReaderFree(rd);
    return 0;
}
