#!/usr/bin/node
'use strict';
/*
 * ioredis baseline for the mdcache bench (issue #3), system "ioredis-autopipeline":
 * the Node feed-to-Redis loop users write today. One `redis.setex(key, ttl, value)`
 * per tick on a client created with `enableAutoPipelining: true`, so ioredis
 * gathers the commands issued while the previous pipeline is in flight into the
 * next one. The latency of a tick is taken in the `then` of its setex promise.
 *
 *   cd bench/baselines && npm ci
 *   node bench/baselines/ioredis_baseline.js \
 *       --listen 'udp://127.0.0.1:7400?format=bin1' --redis redis://127.0.0.1:6379/0 \
 *       --report /tmp/ioredis.json [--ttl 5]
 *
 * Prints `ready` on stderr once listening and Redis answered PING. On SIGTERM or
 * SIGINT: stops reading, waits (at most 5 s) for the setex calls already issued,
 * writes the report and exits 0. Decoders, per-symbol state, histogram and report
 * are the same as the Python baselines' (baseline_common.py); ns values are BigInt
 * or exact Numbers (< 2^53) so the report holds exact integers.
 */
const dgram = require('node:dgram');
const net = require('node:net');
const fs = require('node:fs');
const { parseArgs } = require('node:util');

let Redis;
try {
    Redis = require('ioredis');
} catch (e) {
    process.stderr.write('ioredis_baseline: ioredis is missing: run `npm ci` in bench/baselines\n');
    process.exit(1);
}

const SYSTEM = 'ioredis-autopipeline';
const SHUTDOWN_TIMEOUT_MS = 5000;

// ---------------------------------------------------------------------------
// Histogram: the scheme of src/hist.c (64 sub-buckets per power of two).
// Values are non-negative integer Numbers below 2^53 (ns: 104 days); the sum is
// kept exact with a BigInt.

const TWO32 = 4294967296;
const TWO52 = 4503599627370496;

function bitLength(v) {
    return v < TWO32 ? 32 - Math.clz32(v) : 64 - Math.clz32(Math.floor(v / TWO32));
}

class Hist {
    constructor() {
        this.b = new Float64Array(64 * 60);
        this.count = 0;
        this.sumBig = 0n;
        this.sumLo = 0;          // < 2^52, flushed into sumBig
        this.min = Infinity;
        this.max = 0;
    }

    record(v) {
        if (!(v > 0)) v = 0;
        let i;
        if (v < 128) {
            i = v;
        } else {
            const shift = bitLength(v) - 7;
            i = shift * 64 + Math.floor(v / 2 ** shift);
        }
        this.b[i]++;
        this.count++;
        if (v >= TWO52) {
            this.sumBig += BigInt(v);
        } else {
            this.sumLo += v;
            if (this.sumLo >= TWO52) {
                this.sumBig += BigInt(this.sumLo);
                this.sumLo = 0;
            }
        }
        if (v < this.min) this.min = v;
        if (v > this.max) this.max = v;
    }

    toJSON() {
        const buckets = [];
        for (let i = 0; i < this.b.length; i++) if (this.b[i]) buckets.push(`[${i},${this.b[i]}]`);
        const sum = this.sumBig + BigInt(this.sumLo);
        return `{"count":${this.count},"sum":${sum},"min":${this.count ? this.min : 0},` +
            `"max":${this.max},"buckets":[${buckets.join(',')}]}`;
    }
}

// ---------------------------------------------------------------------------
// Command line.

function usage(msg) {
    process.stderr.write(`ioredis_baseline: error: ${msg}\n` +
        'usage: ioredis_baseline.js --listen udp|tcp://127.0.0.1:PORT?format=bin1|jsonl ' +
        '[--listen ...] --redis redis://127.0.0.1:PORT/0 --report FILE [--ttl 5]\n');
    process.exit(2);
}

function isLoopback(host) {
    if (host === 'localhost' || host === '::1') return true;
    return net.isIPv4(host) && host.startsWith('127.');
}

function parseListen(spec) {
    let u;
    try {
        u = new URL(spec);
    } catch (e) {
        usage(`--listen ${spec}: not a URL`);
    }
    const transport = u.protocol.slice(0, -1);
    if (transport !== 'udp' && transport !== 'tcp') usage(`--listen ${spec}: scheme must be udp:// or tcp://`);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port);
    if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) usage(`--listen ${spec}: need HOST:PORT`);
    const fmt = u.searchParams.get('format');
    if (fmt !== 'bin1' && fmt !== 'jsonl') usage(`--listen ${spec}: need ?format=bin1 or ?format=jsonl`);
    for (const k of u.searchParams.keys()) if (k !== 'format') usage(`--listen ${spec}: unknown parameter ${k}`);
    if (!isLoopback(host)) usage(`--listen ${spec}: refusing non-loopback host ${host} (benchmark baselines bind to loopback only)`);
    return { transport, host, port, fmt };
}

function checkRedisUrl(url) {
    let u;
    try {
        u = new URL(url);
    } catch (e) {
        usage(`--redis ${url}: not a URL`);
    }
    if (u.protocol !== 'redis:') usage(`--redis ${url}: scheme must be redis://`);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (!isLoopback(host)) usage(`--redis ${url}: refusing non-loopback host ${host} (benchmark baselines talk to a local Redis only)`);
}

function cli() {
    let a;
    try {
        a = parseArgs({
            options: {
                listen: { type: 'string', multiple: true },
                redis: { type: 'string' },
                report: { type: 'string' },
                ttl: { type: 'string', default: '5' },
                help: { type: 'boolean', short: 'h' },
            },
            strict: true,
            allowPositionals: false,
        }).values;
    } catch (e) {
        usage(e.message);
    }
    if (a.help) {
        process.stderr.write('usage: ioredis_baseline.js --listen udp|tcp://127.0.0.1:PORT?format=bin1|jsonl ' +
            '[--listen ...] --redis redis://127.0.0.1:PORT/0 --report FILE [--ttl 5]\n');
        process.exit(0);
    }
    if (!a.listen || !a.listen.length) usage('--listen is required');
    if (!a.redis) usage('--redis is required');
    if (!a.report) usage('--report is required');
    if (!/^[1-9][0-9]*$/.test(a.ttl)) usage('--ttl must be a positive number of seconds');
    checkRedisUrl(a.redis);
    return { listen: a.listen.map(parseListen), redis: a.redis, report: a.report, ttl: Number(a.ttl) };
}

// ---------------------------------------------------------------------------
// Ticks: {typ, sym, src, seq, tsMs, a, b, origin}
//   quote: a = bid, b = ask (null = side not updated); trade: a = price, b = size
//   reset: sym (or "*"); src is the source name or the listener/connection id;
//   seq (Number or BigInt), tsMs (epoch ms, Number), origin (BigInt ns) or null.

const QUOTE = 1, TRADE = 2, HEARTBEAT = 3, RESET = 4;
const HB = { hb: true };      // decoded fine, nothing to write
const BAD = { bad: true };    // undecodable: counted in decode_errors
const BODY = [-1, 36, 18, 0, 0];
const POW10 = []; for (let k = 0; k <= 18; k++) POW10.push(10 ** k);   // exact doubles
const MAXMANT = 999999999999999999n;
const NAME = /^[\x21-\x7e]{1,31}$/;
const okNames = new Set();
const MS = 1000000n;
const TS_MAX = (1n << 63n) - 1n;
const SEQ_MAX = (1n << 64n) - 1n;

class Bad extends Error {}
const BAD_ERR = new Bad('bad');

function validName(s) {
    if (okNames.has(s)) return true;
    if (!NAME.test(s)) return false;
    okNames.add(s);
    return true;
}

// bin1 decimal at buf[p..p+9]: {m: Number mantissa (or BigInt when beyond 2^53)} ->
function decMant(buf, p) {
    const hi = buf.readInt32LE(p + 4);
    if (hi >= -2097152 && hi < 2097152) return hi * TWO32 + buf.readUInt32LE(p);
    const m = buf.readBigInt64LE(p);
    if (m > MAXMANT || m < -MAXMANT) throw BAD_ERR;
    return m;
}

function price(buf, p) {
    const e = buf.readInt8(p + 8);
    if (e === -128) return null;
    if (e > 0 || e < -18) throw BAD_ERR;
    const m = decMant(buf, p);
    if (typeof m === 'bigint') return parseFloat(`${m}e${e}`);     // correctly rounded
    return m / POW10[-e];                                              // correctly rounded
}

function size(buf, p) {
    const e = buf.readInt8(p + 8);
    if (e === -128) return null;
    if (e > 0 || e < -18) throw BAD_ERR;
    const m = decMant(buf, p);
    if (m < 0) throw BAD_ERR;
    if (typeof m === 'bigint') return parseFloat(`${m}e${e}`);
    return e === 0 ? m : m / POW10[-e];
}

function bin1Frame(buf, off, flen, connSrc) {
    const typ = buf[off + 4], sl = buf[off + 5], rl = buf[off + 6], flags = buf[off + 7];
    const blen = typ <= 4 ? BODY[typ] : -1;
    if (blen < 0) return BAD;                                            // unknown_type
    if (24 + sl + rl + blen + (flags & 4 ? 8 : 0) > flen || sl > 31 || rl > 31) return BAD;
    const p = off + 24;
    let sym = null;
    if (sl) {
        sym = buf.toString('latin1', p, p + sl);
        if (sym === '*') {
            if (typ !== RESET) return BAD;
        } else if (!validName(sym)) {
            return BAD;
        }
    } else if (typ !== HEARTBEAT) {
        return BAD;
    }
    let src = connSrc;
    if (rl) {
        src = buf.toString('latin1', p + sl, p + sl + rl);
        if (!validName(src)) return BAD;
    }
    if (typ === HEARTBEAT) return rl ? HB : BAD;
    let tsMs = null;
    if (flags & 2) {
        const ts = buf.readBigInt64LE(off + 16);
        if (ts < 0n) return BAD;
        tsMs = Number(ts / MS);
    }
    let seq = null;
    if (flags & 1) {
        seq = buf.readBigUInt64LE(off + 8);
        if (seq <= 9007199254740991n) seq = Number(seq);
    }
    const origin = flags & 4 ? buf.readBigInt64LE(off + flen - 8) : null;
    const q = p + sl + rl;
    let a = null, b = null;
    try {
        if (typ === QUOTE) {
            a = price(buf, q);
            b = price(buf, q + 9);
            size(buf, q + 18);
            size(buf, q + 27);
            if (a === null && b === null) return BAD;                    // missing_field
        } else if (typ === TRADE) {
            a = price(buf, q);
            b = size(buf, q + 9);
            if (a === null || b === null) return BAD;
        }
    } catch (e) {
        if (e === BAD_ERR) return BAD;
        throw e;
    }
    return { typ, sym, src, seq, tsMs, a, b, origin };
}

/** Appends the ticks of one datagram to out; returns the decode error count.
 *  A broken header or a frame cut short drops the rest of the datagram. */
function bin1Datagram(data, connSrc, out) {
    const n = data.length;
    let off = 0, errors = 0;
    while (off < n) {
        if (n - off < 24) return errors + 1;
        const flen = data.readUInt16LE(off + 2);
        if (data[off] !== 0xb1 || data[off + 1] !== 1 || flen < 24 || flen > 1024 || off + flen > n)
            return errors + 1;
        const t = bin1Frame(data, off, flen, connSrc);
        if (t === BAD) errors++;
        else if (t !== HB) out.push(t);
        off += flen;
    }
    return errors;
}

const B1_01 = Buffer.from([0xb1, 0x01]);

/** TCP stream -> frames by their len field. A broken header is counted once per
 *  garbage run; decoding resumes at the next B1 01 byte pair. */
class Bin1Stream {
    constructor(connSrc) {
        this.src = connSrc;
        this.buf = null;
        this.garbage = false;
    }

    feed(chunk, out) {
        const data = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
        const n = data.length;
        let off = 0, errors = 0;
        while (n - off >= 4) {
            const flen = data.readUInt16LE(off + 2);
            if (data[off] !== 0xb1 || data[off + 1] !== 1 || flen < 24 || flen > 1024) {
                if (!this.garbage) {
                    errors++;
                    this.garbage = true;
                }
                const nxt = data.indexOf(B1_01, off + 1);
                if (nxt < 0) {
                    off = data[n - 1] === 0xb1 ? n - 1 : n;
                    break;
                }
                off = nxt;
                continue;
            }
            if (off + flen > n) break;
            this.garbage = false;
            const t = bin1Frame(data, off, flen, this.src);
            if (t === BAD) errors++;
            else if (t !== HB) out.push(t);
            off += flen;
        }
        this.buf = off < n ? Buffer.from(data.subarray(off)) : null;
        return errors;
    }

    close(out) {   // a frame left incomplete is counted as truncated
        const left = this.buf;
        this.buf = null;
        return left && !this.garbage ? 1 : 0;
    }
}

// ---- jsonl ----

const NUM = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
const DIGITS = /^[0-9]+$/;
const TYPES = new Map([['quote', QUOTE], ['trade', TRADE], ['heartbeat', HEARTBEAT], ['reset', RESET]]);
const LINE_MAX = 4095;   // bytes of content; 4096 with the newline

// Integers beyond 2^53 (ts in epoch ns) lose digits in JSON.parse: take the
// digits of the last occurrence of the key from the line itself.
const EXACT = {
    ts: /"ts"\s*:\s*(-?[0-9][0-9.eE+-]*)/g,
    seq: /"seq"\s*:\s*(-?[0-9][0-9.eE+-]*)/g,
    origin_ns: /"origin_ns"\s*:\s*(-?[0-9][0-9.eE+-]*)/g,
};

function exactDigits(line, key) {
    const re = EXACT[key];
    re.lastIndex = 0;
    let m, last = null;
    while ((m = re.exec(line)) !== null) last = m[1];
    if (last === null || !DIGITS.test(last)) throw BAD_ERR;
    return BigInt(last);
}

function jnum(v) {
    if (typeof v === 'number') {
        if (Number.isFinite(v)) return v;        // 1e400 parses to Infinity
    } else if (v === null || v === undefined) {
        return null;
    } else if (typeof v === 'string' && NUM.test(v)) {
        return jnum(Number(v));
    }
    throw BAD_ERR;
}

function jsize(v) {
    v = jnum(v);
    if (v !== null && v < 0) throw BAD_ERR;
    return v;
}

/** Non-negative integer field -> BigInt (exact), or null when absent. */
function jbig(v, line, key, top) {
    let r;
    if (v === null || v === undefined) return null;
    if (typeof v === 'number') {
        if (!Number.isInteger(v) || v < 0) throw BAD_ERR;
        r = Number.isSafeInteger(v) ? BigInt(v) : exactDigits(line, key);
    } else if (typeof v === 'string' && DIGITS.test(v)) {
        r = BigInt(v);
    } else {
        throw BAD_ERR;
    }
    if (r > top) throw BAD_ERR;
    return r;
}

function jname(v) {
    if (typeof v !== 'string' || !validName(v)) throw BAD_ERR;
    return v;
}

function jsonlLine(line, connSrc) {
    let o;
    try {
        o = JSON.parse(line);
    } catch (e) {
        return line.trim() === '' ? null : BAD;
    }
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return BAD;
    const typ = TYPES.get(o.type);
    if (typ === undefined) return BAD;
    try {
        let sym = o.symbol;
        if (sym === undefined || sym === null) {
            sym = null;
        } else {
            sym = jname(sym);
            if (sym === '*' && typ !== RESET) return BAD;
        }
        const src = o.source === undefined || o.source === null ? connSrc : jname(o.source);
        let tsMs = null;
        const ts = o.ts;
        if (typeof ts === 'number' && Number.isSafeInteger(ts) && ts >= 0) tsMs = Math.floor(ts / 1e6);
        else if (ts !== undefined && ts !== null) tsMs = Number(jbig(ts, line, 'ts', TS_MAX) / MS);
        let seq = o.seq;
        if (!(typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0)) {
            seq = jbig(seq, line, 'seq', SEQ_MAX);
            if (seq !== null && seq <= 9007199254740991n) seq = Number(seq);
        }
        let origin = o.origin_ns;
        if (typeof origin === 'number' && Number.isInteger(origin)) {
            origin = Number.isSafeInteger(origin) ? BigInt(origin) : exactDigits(line, 'origin_ns');
        } else {
            origin = null;
        }
        let a = null, b = null;
        if (typ === QUOTE) {
            if (sym === null) return BAD;
            a = jnum(o.bid);
            b = jnum(o.ask);
            jsize(o.bid_size);
            jsize(o.ask_size);
            if (a === null && b === null) return BAD;
        } else if (typ === TRADE) {
            if (sym === null) return BAD;
            a = jnum(o.price);
            b = jsize(o.size);
            if (a === null || b === null) return BAD;
        } else if (typ === HEARTBEAT) {
            return o.source === undefined || o.source === null ? BAD : HB;
        } else if (sym === null) {
            return BAD;
        }
        return { typ, sym, src, seq, tsMs, a, b, origin };
    } catch (e) {
        if (e === BAD_ERR) return BAD;
        throw e;
    }
}

/** Lines of buf[start, end) (end exclusive, no trailing partial line) -> out. */
function jsonlLines(buf, start, end, connSrc, out) {
    let errors = 0;
    while (start <= end) {
        let nl = buf.indexOf(10, start);
        if (nl < 0 || nl > end) nl = end;
        if (nl - start > LINE_MAX) {
            errors++;
        } else if (nl > start) {
            const t = jsonlLine(buf.toString('utf8', start, nl), connSrc);
            if (t === BAD) errors++;
            else if (t !== null && t !== HB) out.push(t);
        }
        start = nl + 1;
    }
    return errors;
}

function jsonlDatagram(data, connSrc, out) {
    return jsonlLines(data, 0, data.length, connSrc, out);
}

class JsonlStream {
    constructor(connSrc) {
        this.src = connSrc;
        this.buf = null;
        this.skipping = false;   // inside an oversized line: drop up to its newline
    }

    feed(chunk, out) {
        let data = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
        this.buf = null;
        let start = 0, errors = 0;
        const lastNl = data.lastIndexOf(10);
        if (this.skipping) {
            const nl = data.indexOf(10);
            if (nl < 0) return 0;
            start = nl + 1;
            this.skipping = false;
        }
        if (lastNl >= start) errors += jsonlLines(data, start, lastNl, this.src, out);
        const tail = Math.max(start, lastNl + 1);
        if (data.length - tail > LINE_MAX) {
            errors++;
            this.skipping = true;
        } else if (tail < data.length) {
            this.buf = Buffer.from(data.subarray(tail));
        }
        return errors;
    }

    close(out) {   // a last line without its newline is decoded too
        const left = this.buf;
        this.buf = null;
        if (this.skipping || !left) return 0;
        return jsonlDatagram(left, this.src, out);
    }
}

// ---------------------------------------------------------------------------
// Per-symbol state, as mdcache keeps it.

class State {
    constructor() {
        this.syms = new Map();
        this.duplicates = 0;
        this.resets = 0;
    }

    /** Applies a quote or trade; returns its symbol record, or null for a duplicate. */
    apply(t) {
        let s = this.syms.get(t.sym);
        if (s === undefined) {
            s = { key: `price:${t.sym}:latest`, last: null, bid: null, ask: null, vol: null,
                  high: null, low: null, tsMs: null, seen: new Map() };
            this.syms.set(t.sym, s);
        }
        if (t.seq !== null) {
            const last = s.seen.get(t.src);
            if (last !== undefined && t.seq <= last) {
                this.duplicates++;
                return null;
            }
            s.seen.set(t.src, t.seq);
        }
        if (t.typ === QUOTE) {
            if (t.a !== null) s.bid = t.a;
            if (t.b !== null) s.ask = t.b;
        } else {
            const p = t.a;
            s.last = p;
            s.vol = s.vol === null ? t.b : s.vol + t.b;
            if (s.high === null || p > s.high) s.high = p;
            if (s.low === null || p < s.low) s.low = p;
        }
        if (t.tsMs !== null && (s.tsMs === null || t.tsMs > s.tsMs)) s.tsMs = t.tsMs;
        return s;
    }

    /** Session reset: Volume 0, High/Low unknown, sequence tracking restarts. */
    reset(t) {
        this.resets++;
        let hit;
        if (t.sym === '*') {
            hit = [...this.syms.values()];
        } else {
            const s = this.syms.get(t.sym);
            hit = s === undefined ? [] : [s];
        }
        for (const s of hit) {
            s.vol = 0;
            s.high = s.low = null;
            s.seen.clear();
        }
        return hit;
    }

    static value(s) {
        return JSON.stringify({ Last: s.last, Bid: s.bid, Ask: s.ask, Volume: s.vol,
                                High: s.high, Low: s.low, Timestamp: s.tsMs });
    }
}

/** Datagrams the kernel dropped on our UDP sockets (full receive buffer): the
 *  last column of /proc/net/udp{,6}, summed over our local ports. Read while the
 *  sockets are still open. */
function udpKernelDrops(ports) {
    const want = new Set(ports.map((p) => p.toString(16).toUpperCase().padStart(4, '0')));
    let total = 0;
    for (const path of ['/proc/net/udp', '/proc/net/udp6']) {
        let text;
        try {
            text = fs.readFileSync(path, 'utf8');
        } catch (e) {
            continue;
        }
        const lines = text.split('\n');
        for (let i = 1; i < lines.length; i++) {
            const col = lines[i].trim().split(/\s+/);
            if (col.length >= 13 && want.has(col[1].split(':').pop())) total += Number(col[col.length - 1]);
        }
    }
    return total;
}

// ---------------------------------------------------------------------------
// Main.

async function main() {
    const args = cli();
    const ttl = args.ttl;
    const state = new State();
    const latency = new Hist(), rtt = new Hist(), batch = new Hist();
    let ticks = 0, keysWritten = 0, writeErrors = 0, decodeErrors = 0;
    let inflight = 0, stopping = false, lastRedisError = null;

    const redis = new Redis(args.redis, { enableAutoPipelining: true, lazyConnect: true });
    redis.on('error', (e) => {
        if (lastRedisError !== e.message) process.stderr.write(`ioredis_baseline: redis: ${e.message}\n`);
        lastRedisError = e.message;
    });

    function onOk(origin) {
        return () => {
            keysWritten++;
            if (origin !== null) latency.record(Number(process.hrtime.bigint() - origin));
            if (--inflight === 0 && stopping) finish();
        };
    }

    function onErr() {
        writeErrors++;
        if (--inflight === 0 && stopping) finish();
    }

    function write(key, value, origin) {
        inflight++;
        redis.setex(key, ttl, value).then(onOk(origin), onErr);
    }

    function handle(batchTicks) {
        for (let i = 0; i < batchTicks.length; i++) {
            const t = batchTicks[i];
            if (t.typ === RESET) {
                const hit = state.reset(t);
                for (let j = 0; j < hit.length; j++)
                    write(hit[j].key, State.value(hit[j]), j === hit.length - 1 ? t.origin : null);
                continue;
            }
            ticks++;
            const s = state.apply(t);
            if (s !== null) write(s.key, State.value(s), t.origin);
        }
    }

    // Sockets first, then PING, then `ready`.
    const closers = [];
    const conns = new Set();
    let connIds = 0;
    for (let i = 0; i < args.listen.length; i++) {
        const L = args.listen[i];
        if (L.transport === 'udp') {
            const decode = L.fmt === 'bin1' ? bin1Datagram : jsonlDatagram;
            const src = -1 - i;
            const sock = dgram.createSocket({ type: L.host.includes(':') ? 'udp6' : 'udp4',
                                              recvBufferSize: 16 << 20 });
            sock.on('message', (msg) => {
                if (stopping) return;
                const out = [];
                decodeErrors += decode(msg, src, out);
                if (out.length) handle(out);
            });
            await new Promise((resolve, reject) => {
                sock.once('error', reject);
                sock.bind(L.port, L.host, () => {
                    sock.removeListener('error', reject);
                    try {
                        sock.setRecvBufferSize(16 << 20);   // as large as rmem_max allows
                    } catch (e) { /* keep the default */ }
                    resolve();
                });
            });
            closers.push(() => sock.close());
        } else {
            const server = net.createServer((conn) => {
                const stream = L.fmt === 'bin1' ? new Bin1Stream(++connIds) : new JsonlStream(++connIds);
                conns.add(conn);
                conn.on('data', (chunk) => {
                    if (stopping) return;
                    const out = [];
                    decodeErrors += stream.feed(chunk, out);
                    if (out.length) handle(out);
                });
                conn.on('end', () => {
                    if (stopping) return;
                    const out = [];
                    decodeErrors += stream.close(out);
                    if (out.length) handle(out);
                });
                conn.on('error', () => {});
                conn.on('close', () => conns.delete(conn));
            });
            await new Promise((resolve, reject) => {
                server.once('error', reject);
                server.listen({ port: L.port, host: L.host, backlog: 128 }, () => {
                    server.removeListener('error', reject);
                    resolve();
                });
            });
            closers.push(() => server.close());
        }
    }

    await redis.connect();
    await redis.ping();

    // Measurement only: the round trip and size of every pipeline ioredis's
    // auto-pipelining sends (it keeps one in flight and gathers the setex calls
    // issued meanwhile into the next). Behaviour is unchanged.
    const makePipeline = redis.pipeline;
    redis.pipeline = function (...a) {
        const p = makePipeline.apply(this, a);
        const exec = p.exec;
        p.exec = function (cb) {
            const n = this.length, t0 = process.hrtime.bigint();
            const done = () => {
                rtt.record(Number(process.hrtime.bigint() - t0));
                batch.record(n);
            };
            if (typeof cb === 'function') {
                return exec.call(this, (err, res) => {
                    done();
                    cb(err, res);
                });
            }
            const pr = exec.call(this);
            pr.then(done, done);
            return pr;
        };
        return p;
    };

    let finished = false;
    function finish() {
        if (finished) return;
        finished = true;
        const rep = `{"system":${JSON.stringify(SYSTEM)},"ticks":${ticks},"keys_written":${keysWritten},` +
            `"write_errors":${writeErrors},"decode_errors":${decodeErrors},` +
            `"latency_ns":${latency.toJSON()},"rtt_ns":${rtt.toJSON()},"batch_keys":${batch.toJSON()},` +
            `"duplicates":${state.duplicates},"resets":${state.resets},"kernel_drops":${kernelDrops}}\n`;
        const tmp = args.report + '.tmp';
        fs.writeFileSync(tmp, rep);
        fs.renameSync(tmp, args.report);
        redis.disconnect();
        process.exit(0);
    }

    let kernelDrops = 0;
    const udpPorts = args.listen.filter((L) => L.transport === 'udp').map((L) => L.port);

    function stop() {
        if (stopping) return;
        stopping = true;
        kernelDrops = udpKernelDrops(udpPorts);
        for (const c of closers) c();
        for (const c of conns) c.destroy();
        if (inflight === 0) {
            finish();
            return;
        }
        setTimeout(() => {
            process.stderr.write(`ioredis_baseline: ${inflight} setex not acknowledged ` +
                                 `${SHUTDOWN_TIMEOUT_MS / 1000} s after the stop signal\n`);
            finish();
        }, SHUTDOWN_TIMEOUT_MS);
    }

    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.stderr.write('ready\n');
}

main().catch((e) => {
    process.stderr.write(`ioredis_baseline: ${e && e.message ? e.message : e}\n`);
    process.exit(1);
});
