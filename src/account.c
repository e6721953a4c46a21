/*
 * md_account: per-worker account caches (see include/md_account.h).
 *
 * Accounts are few next to symbols (hundreds to thousands, and their
 * messages arrive at order-entry rates, not market-data rates), so this
 * file favours plain code over md_state's tuned layout: the account index
 * is the same tagged open-addressing scheme, but positions and orders are
 * found by a linear scan of their account's small arrays, comparing
 * 64-bit hashes before bytes.
 *
 * Sequence numbers work as for symbols: per account, the last seq of up to
 * MD_SEQ_SLOTS sources, so a message older than one already applied from
 * the same source (any class) never overwrites it.
 *
 * Every accepted message makes its class due: account values are small
 * and their messages rare, so no attempt is made to notice that a message
 * changed nothing (md_state does that for prices, where it matters).
 */
#include "md_account.h"

#include <stdlib.h>
#include <string.h>

static inline uint64_t md_acct_src_key(uint64_t h) { return h ? h : 1; }

int md_accounts_init(md_accounts *t, uint32_t max_accounts, uint32_t max_positions,
                     uint32_t max_orders)
{
    uint64_t cap = 2;

    memset(t, 0, sizeof(*t));
    if (max_accounts == 0 || max_positions == 0 || max_orders == 0 || max_accounts > (1u << 30))
        return -1;
    while (cap < 2 * (uint64_t)max_accounts)
        cap <<= 1;
    t->slots = calloc(cap, sizeof(*t->slots));
    t->accts = calloc(max_accounts, sizeof(*t->accts));
    t->dirtyq = calloc(max_accounts, sizeof(*t->dirtyq));
    if (!t->slots || !t->accts || !t->dirtyq) {
        md_accounts_free(t);
        return -1;
    }
    t->mask = (uint32_t)(cap - 1);
    t->max = max_accounts;
    t->max_positions = max_positions;
    t->max_orders = max_orders;
    md_accounts_configure(t, (uint8_t)((1u << MD_AC_COUNT) - 1), true, NULL);
    return 0;
}

void md_accounts_configure(md_accounts *t, uint8_t enabled, bool order_keys, const char *sep)
{
    t->enabled = enabled;
    t->order_keys = order_keys;
    if (!sep)
        sep = "";
    t->sep_len = strlen(sep);
    if (t->sep_len >= sizeof t->sep)
        t->sep_len = sizeof t->sep - 1;
    memcpy(t->sep, sep, t->sep_len);
    t->sep[t->sep_len] = '\0';
}

void md_accounts_free(md_accounts *t)
{
    for (uint32_t i = 0; i < t->count; i++) {
        free(t->accts[i].pos);
        free(t->accts[i].ord);
        free(t->accts[i].oq);
    }
    free(t->slots);
    free(t->accts);
    free(t->dirtyq);
    memset(t, 0, sizeof(*t));
}

#define MD_TAG_MASK 0xffffffff00000000ull

/* The index slot holding name, or the empty slot where it would go. */
static uint32_t md_accounts_probe(const md_accounts *t, uint64_t h, const char *name, size_t len)
{
    uint32_t i = (uint32_t)h & t->mask;

    for (;;) {
        uint64_t e = t->slots[i];
        if (e == 0)
            return i;
        if (((e ^ h) & MD_TAG_MASK) == 0) {
            const md_account *a = &t->accts[(uint32_t)e - 1];
            if (a->hash == h && a->name_len == len && memcmp(a->name, name, len) == 0)
                return i;
        }
        i = (i + 1) & t->mask;
    }
}

static inline md_account *md_accounts_at(const md_accounts *t, uint32_t slot)
{
    uint64_t e = t->slots[slot];

    return e ? &t->accts[(uint32_t)e - 1] : NULL;
}

md_account *md_accounts_find(md_accounts *t, const char *name, size_t len)
{
    if (len == 0 || len > MD_ACCOUNT_MAX)
        return NULL;
    return md_accounts_at(t, md_accounts_probe(t, md_sym_hash(name, len), name, len));
}

static void md_accounts_queue(md_accounts *t, md_account *a)
{
    uint32_t at;

    if (a->queued)
        return;
    a->queued = 1;
    /* Queued at most once each, at most max accounts: never overflows. */
    at = t->dq_head + t->dq_len;
    if (at >= t->max)
        at -= t->max;
    t->dirtyq[at] = (uint32_t)(a - t->accts);
    t->dq_len++;
}

md_account *md_accounts_peek(md_accounts *t)
{
    return t->dq_len ? &t->accts[t->dirtyq[t->dq_head]] : NULL;
}

void md_accounts_pop(md_accounts *t)
{
    if (t->dq_len == 0)
        return;
    t->accts[t->dirtyq[t->dq_head]].queued = 0;
    if (++t->dq_head == t->max)
        t->dq_head = 0;
    t->dq_len--;
}

static void md_account_due(md_accounts *t, md_account *a, int c)
{
    /* A class switched off is never known: nothing refreshes or re-sends
     * it, and it does not make a quiet account look never written. */
    if (!(t->enabled & MD_AC_BIT(c)))
        return;
    a->due |= (uint8_t)MD_AC_BIT(c);
    a->known |= (uint8_t)MD_AC_BIT(c);
    md_accounts_queue(t, a);
}

static void md_order_mark(md_accounts *t, md_account *a, uint32_t i)
{
    md_order *o = &a->ord[i];

    if (!o->dirty) {
        o->dirty = 1;
        a->oq[a->oq_len++] = i; /* each slot at most once: oq_len <= nord */
    }
    md_accounts_queue(t, a);
}

int32_t md_account_next_order(md_account *a)
{
    if (a->oq_len == 0)
        return -1;
    uint32_t i = a->oq[--a->oq_len];
    a->ord[i].dirty = 0;
    return (int32_t)i;
}

void md_accounts_requeue(md_accounts *t, md_account *a, int c, int32_t order)
{
    if (c == MD_AC_COUNT) {
        if (order >= 0 && (uint32_t)order < a->nord && a->ord[order].slot != MD_OSLOT_FREE)
            md_order_mark(t, a, (uint32_t)order);
        return;
    }
    md_account_due(t, a, c);
}

/* Empties slot i, keeping the count of DELs sent from it. */
static void md_order_clear(md_order *o)
{
    uint32_t gen = o->del_gen;

    memset(o, 0, sizeof(*o));
    o->del_gen = gen;
}

void md_account_order_deleted(md_account *a, uint32_t order, uint32_t gen)
{
    md_order *o;

    if (order >= a->nord)
        return;
    o = &a->ord[order];
    /* Came back (working again), another DEL is queued, or this answers an
     * older DEL while a newer one is still unanswered. */
    if (o->slot != MD_OSLOT_GONE || o->dirty || o->routed || o->del_gen != gen)
        return;
    md_order_clear(o);
    while (a->nord && a->ord[a->nord - 1].slot == MD_OSLOT_FREE)
        a->nord--;
}

/* A slot for a new order when all max_orders are taken: a tombstone's,
 * preferring one whose DEL is not queued. -1 if every slot is working. */
static int32_t md_order_evict(md_accounts *t, md_account *a)
{
    int32_t pick = -1;

    for (uint32_t i = 0; i < a->nord; i++) {
        if (a->ord[i].slot != MD_OSLOT_GONE)
            continue;
        pick = (int32_t)i;
        if (!a->ord[i].dirty)
            break;
    }
    if (pick < 0)
        return -1;
    if (a->ord[pick].dirty)
        for (uint32_t k = 0; k < a->oq_len; k++)
            if (a->oq[k] == (uint32_t)pick) {
                a->oq[k] = a->oq[--a->oq_len];
                break;
            }
    t->stats.evicted++;
    return pick;
}

/* ---- applying messages ---------------------------------------------- */

static int md_acct_seen_find(const md_account *a, uint64_t src)
{
    for (int i = 0; i < MD_SEQ_SLOTS; i++)
        if (a->seen[i].src == src)
            return i;
    return -1;
}

/* Grows *arr (elements of size sz, *cap of them) to hold need, doubling,
 * never past max. False if need > max or memory ran out. */
static bool md_grow(void **arr, uint32_t *cap, uint32_t need, uint32_t max, size_t sz)
{
    uint32_t n;
    void *p;

    if (need <= *cap)
        return true;
    if (need > max)
        return false;
    n = *cap ? *cap : 4;
    while (n < need)
        n = n > max / 2 ? max : n * 2;
    if (n > max)
        n = max; /* the limit is the count callers check against: never more */
    p = realloc(*arr, (size_t)n * sz);
    if (!p)
        return false;
    *arr = p;
    *cap = n;
    return true;
}

static md_apply_result md_apply_position(md_accounts *t, md_account *a, const md_acct *m,
                                         int64_t ts)
{
    uint64_t h = md_sym_hash(m->t.symbol, m->t.sym_len);
    md_dec net = m->t.v[MD_P_NET_POS];
    uint32_t i;

    for (i = 0; i < a->npos; i++)
        if (a->pos[i].hash == h && a->pos[i].sym_len == m->t.sym_len &&
            memcmp(a->pos[i].symbol, m->t.symbol, m->t.sym_len) == 0)
            break;
    if (net.mant == 0) {
        /* Flat: no longer an open position. Order of the rest does not
         * matter to readers (they look positions up by symbol). */
        if (i < a->npos)
            a->pos[i] = a->pos[--a->npos];
    } else {
        if (i == a->npos) {
            if (!md_grow((void **)&a->pos, &a->pos_cap, a->npos + 1, t->max_positions,
                         sizeof(*a->pos))) {
                t->stats.positions_full++;
                return MD_APPLY_FULL;
            }
            a->npos++;
        }
        md_position *p = &a->pos[i];
        p->hash = h;
        memcpy(p->symbol, m->t.symbol, m->t.sym_len);
        p->symbol[m->t.sym_len] = '\0';
        p->sym_len = m->t.sym_len;
        /* A position message is the whole state of that position. */
        p->net_pos = net;
        p->avg_price = m->t.v[MD_P_AVG_PRICE];
        p->ts_ns = ts;
    }
    if (ts > a->ts_ns[MD_AC_POSITIONS])
        a->ts_ns[MD_AC_POSITIONS] = ts;
    md_account_due(t, a, MD_AC_POSITIONS);
    return MD_APPLY_OK;
}

static md_apply_result md_apply_order(md_accounts *t, md_account *a, const md_acct *m, int64_t ts)
{
    uint64_t h = md_sym_hash(m->ref, m->ref_len);
    bool terminal = m->status != MD_ORDER_WORKING;
    uint32_t i, free_at = a->nord;
    md_order *o;

    for (i = 0; i < a->nord; i++) {
        o = &a->ord[i];
        if (o->slot == MD_OSLOT_FREE) {
            if (free_at == a->nord)
                free_at = i;
            continue;
        }
        if (o->hash == h && o->id_len == m->ref_len && memcmp(o->id, m->ref, m->ref_len) == 0)
            break;
    }
    if (i == a->nord) {
        /* New to us. A terminal one still gets a DEL: its key may be left
         * from before a restart of mdcache. */
        i = free_at;
        if (i == a->nord) {
            uint32_t cap = a->ord_cap;
            bool grown = md_grow((void **)&a->ord, &a->ord_cap, a->nord + 1, t->max_orders,
                                 sizeof(*a->ord));
            if (grown && a->ord_cap != cap) {
                uint32_t *q = realloc(a->oq, (size_t)a->ord_cap * sizeof(*a->oq));
                if (!q) {
                    a->ord_cap = cap; /* the order array is at least that big */
                    grown = false;
                } else {
                    a->oq = q;
                }
            }
            if (grown) {
                a->nord++;
            } else {
                /* Full. Tombstones are a courtesy (a DEL ahead of a 1 s TTL),
                 * so a working order takes one's slot; a terminal order
                 * never seen does not. */
                int32_t e = terminal ? -1 : md_order_evict(t, a);
                if (e < 0) {
                    t->stats.orders_full++;
                    return MD_APPLY_FULL;
                }
                i = (uint32_t)e;
            }
        }
        o = &a->ord[i];
        md_order_clear(o);
        o->hash = h;
        memcpy(o->id, m->ref, m->ref_len);
        o->id[m->ref_len] = '\0';
        o->id_len = m->ref_len;
        o->qty = o->price = md_dec_absent();
    }
    o = &a->ord[i];
    /* Updates often carry only what changed (a new price, a status), so
     * fields merge: what the message has replaces, what it lacks stays. */
    if (m->t.sym_len) {
        memcpy(o->symbol, m->t.symbol, m->t.sym_len);
        o->symbol[m->t.sym_len] = '\0';
        o->sym_len = m->t.sym_len;
    }
    if (m->side != MD_SIDE_NONE)
        o->side = m->side;
    if (md_dec_present(m->t.v[MD_O_QTY]))
        o->qty = m->t.v[MD_O_QTY];
    if (md_dec_present(m->t.v[MD_O_PRICE]))
        o->price = m->t.v[MD_O_PRICE];
    o->status = m->status;
    o->ts_ns = ts;
    if (terminal) {
        if (o->slot == MD_OSLOT_LIVE)
            a->working--;
        o->slot = MD_OSLOT_GONE;
    } else {
        if (o->slot != MD_OSLOT_LIVE)
            a->working++;
        o->slot = MD_OSLOT_LIVE;
    }
    if (ts > a->ts_ns[MD_AC_ORDERS])
        a->ts_ns[MD_AC_ORDERS] = ts;
    md_order_mark(t, a, i);
    md_account_due(t, a, MD_AC_ORDERS);
    return MD_APPLY_OK;
}

md_apply_result md_accounts_apply(md_accounts *t, const md_acct *m, int64_t wall_ns)
{
    uint64_t h = m->t.sym_hash ? m->t.sym_hash : md_sym_hash(m->account, m->acct_len);
    uint64_t src = md_acct_src_key(m->t.src_hash);
    int64_t ts = (m->t.flags & MD_TICK_F_TS) ? m->t.ts_ns : wall_ns;
    int seen_at = -1;
    md_apply_result res = MD_APPLY_OK;
    md_account *a;
    uint32_t slot;

    if (!md_tick_is_account(m->t.type) || m->acct_len == 0 || m->acct_len > MD_ACCOUNT_MAX)
        return MD_APPLY_IGNORED;
    if (m->t.type == MD_TICK_ORDER && t->sep_len && t->order_keys &&
        memmem(m->account, m->acct_len, t->sep, t->sep_len)) {
        t->stats.bad_names++;
        return MD_APPLY_BAD_NAME;
    }
    slot = md_accounts_probe(t, h, m->account, m->acct_len);
    a = md_accounts_at(t, slot);
    if (a && (m->t.flags & MD_TICK_F_SEQ)) {
        seen_at = md_acct_seen_find(a, src);
        if (seen_at >= 0 && m->t.seq <= a->seen[seen_at].seq) {
            t->stats.duplicate++;
            return MD_APPLY_DUPLICATE;
        }
    }
    if (!a) {
        if (t->count == t->max) {
            t->stats.full++;
            return MD_APPLY_FULL;
        }
        a = &t->accts[t->count];
        t->slots[slot] = (h & MD_TAG_MASK) | (t->count + 1);
        memset(a, 0, sizeof(*a));
        a->hash = h;
        memcpy(a->name, m->account, m->acct_len);
        a->name[m->acct_len] = '\0';
        a->name_len = m->acct_len;
        a->cash = a->realized = a->unrealized = md_dec_absent();
        t->count++;
    }

    switch (m->t.type) {
    case MD_TICK_POSITION:
        res = md_apply_position(t, a, m, ts);
        break;
    case MD_TICK_ORDER:
        res = md_apply_order(t, a, m, ts);
        break;
    case MD_TICK_BALANCE:
        if (md_dec_present(m->t.v[MD_B_CASH]))
            a->cash = m->t.v[MD_B_CASH];
        if (md_dec_present(m->t.v[MD_B_REALIZED]))
            a->realized = m->t.v[MD_B_REALIZED];
        if (md_dec_present(m->t.v[MD_B_UNREALIZED]))
            a->unrealized = m->t.v[MD_B_UNREALIZED];
        if (ts > a->ts_ns[MD_AC_BALANCE])
            a->ts_ns[MD_AC_BALANCE] = ts;
        md_account_due(t, a, MD_AC_BALANCE);
        break;
    case MD_TICK_ACCOUNT:
        if (m->ref_len) {
            memcpy(a->id, m->ref, m->ref_len);
            a->id[m->ref_len] = '\0';
            a->id_len = m->ref_len;
        }
        if (m->active != MD_ACTIVE_UNKNOWN)
            a->active = m->active;
        if (ts > a->ts_ns[MD_AC_INFO])
            a->ts_ns[MD_AC_INFO] = ts;
        md_account_due(t, a, MD_AC_INFO);
        break;
    }
    if (res != MD_APPLY_OK)
        return res;
    if (m->t.flags & MD_TICK_F_SEQ) {
        if (seen_at < 0)
            seen_at = MD_SEQ_SLOTS - 1;
        memmove(&a->seen[1], &a->seen[0], (size_t)seen_at * sizeof(a->seen[0]));
        a->seen[0].src = src;
        a->seen[0].seq = m->t.seq;
    }
    a->src_hash = m->t.src_hash;
    t->stats.applied++;
    return MD_APPLY_OK;
}

/* ---- liveness ------------------------------------------------------- */

/* Queues every value of a that has one, every working order, and every
 * DEL not yet acknowledged. Returns values queued. */
static uint32_t md_account_queue_all(md_accounts *t, md_account *a, uint8_t classes)
{
    uint32_t n = 0;

    for (int c = 0; c < MD_AC_COUNT; c++)
        if ((classes & MD_AC_BIT(c)) && (a->known & MD_AC_BIT(c))) {
            md_account_due(t, a, c);
            n++;
        }
    if (classes & MD_AC_BIT(MD_AC_ORDERS))
        for (uint32_t i = 0; i < a->nord; i++)
            if (a->ord[i].slot != MD_OSLOT_FREE && !a->ord[i].dirty) {
                md_order_mark(t, a, i);
                n++;
            }
    return n;
}

/* Queues the DELs still owed (terminal orders whose DEL was refused or
 * lost): deleting is right whether or not the account's source is alive,
 * and needs no rewrite of the list, which dropped them already. */
static uint32_t md_account_queue_gone(md_accounts *t, md_account *a)
{
    uint32_t n = 0;

    for (uint32_t j = 0; j < a->nord; j++)
        if (a->ord[j].slot == MD_OSLOT_GONE && !a->ord[j].dirty) {
            md_order_mark(t, a, j);
            n++;
        }
    return n;
}

uint32_t md_accounts_mark_live_dirty(md_accounts *t, const md_sources *src, int64_t now,
                                     int64_t source_timeout_ns)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < t->count; i++) {
        md_account *a = &t->accts[i];
        if (md_sources_alive(src, a->src_hash, now, source_timeout_ns)) {
            md_account_queue_all(t, a, (uint8_t)((1u << MD_AC_COUNT) - 1));
            n++;
            continue;
        }
        /* Quiet accounts are left to expire: only what never reached
         * Redis goes out, and a delete still owed, which is always right. */
        uint8_t never = 0;
        for (int c = 0; c < MD_AC_COUNT; c++)
            if ((a->known & MD_AC_BIT(c)) && a->written_ns[c] == 0)
                never |= (uint8_t)MD_AC_BIT(c);
        if (never) {
            for (int c = 0; c < MD_AC_COUNT; c++)
                if (never & MD_AC_BIT(c))
                    md_account_due(t, a, c);
            n++;
        }
        md_account_queue_gone(t, a);
    }
    return n;
}

uint32_t md_accounts_sweep(md_accounts *t, int64_t now, uint32_t budget,
                           const int64_t refresh_after_ns[MD_AC_COUNT], const md_sources *src,
                           int64_t source_timeout_ns)
{
    uint32_t queued = 0;
    uint32_t pos = t->sweep_pos;

    if (budget > t->count)
        budget = t->count;
    for (uint32_t n = 0; n < budget; n++) {
        md_account *a = &t->accts[pos];
        uint8_t want = 0;
        bool alive;

        if (++pos == t->count)
            pos = 0;
        alive = md_sources_alive(src, a->src_hash, now, source_timeout_ns);
        for (int c = 0; c < MD_AC_COUNT; c++) {
            if (!(a->known & MD_AC_BIT(c)) || ((a->due | a->routed) & MD_AC_BIT(c)))
                continue;
            /* Never written (a writer that could not send) must reach
             * Redis; a quiet account's values are left to expire: that is
             * how readers learn its feed stopped. */
            if (a->written_ns[c] == 0 ||
                (alive && now - a->written_ns[c] >= refresh_after_ns[c]))
                want |= (uint8_t)MD_AC_BIT(c);
        }
        for (int c = 0; c < MD_AC_COUNT; c++)
            if (want & MD_AC_BIT(c)) {
                md_account_due(t, a, c);
                queued++;
            }
        /* Each order key has its own TTL, so each is timed on its own: the
         * list is rewritten whenever any order changes, which says nothing
         * about the keys of the orders that did not. A DEL owed (refused,
         * or its reply lost) is retried on the same clock, live or not. */
        for (uint32_t j = 0; j < a->nord && t->order_keys; j++) {
            md_order *o = &a->ord[j];
            if (o->slot == MD_OSLOT_FREE || o->dirty || o->routed ||
                now - o->written_ns < refresh_after_ns[MD_AC_ORDERS])
                continue;
            if (o->slot == MD_OSLOT_GONE || alive) {
                md_order_mark(t, a, j);
                queued++;
            }
        }
    }
    t->sweep_pos = pos;
    t->stats.refreshes += queued;
    return queued;
}

uint64_t md_accounts_pending(const md_accounts *t)
{
    uint64_t n = 0;

    for (uint32_t i = 0, at = t->dq_head; i < t->dq_len; i++) {
        const md_account *a = &t->accts[t->dirtyq[at]];
        n += (uint64_t)__builtin_popcount(a->due) + a->oq_len;
        if (++at == t->max)
            at = 0;
    }
    return n;
}
