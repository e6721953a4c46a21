"""Shared parts of the Python baselines (redispy_baseline.py).

Everything here is what a user's feed-to-Redis script needs anyway, written
the plain way: command line, feed decoders (bin1 frames and jsonl lines, as in
docs/protocol.md, with the bench's origin_ns trailer), the per-symbol state
mdcache keeps (so the final keys hold the same values), the log-linear
histogram of src/hist.c and the report file.

Standard library only; runs under Debian's /usr/bin/python3.
"""
import argparse
import ipaddress
import json
import os
import re
import socket
import struct
import sys
import urllib.parse

# --------------------------------------------------------------------------
# Histogram: the scheme of src/hist.c (64 sub-buckets per power of two).


class Hist:
    __slots__ = ("b", "count", "sum", "min", "max")

    def __init__(self):
        self.b = {}
        self.count = 0
        self.sum = 0
        self.min = 1 << 64
        self.max = 0

    def record(self, v):
        if v < 0:
            v = 0
        if v < 128:
            i = v
        else:
            shift = v.bit_length() - 7
            i = shift * 64 + (v >> shift)
        b = self.b
        b[i] = b.get(i, 0) + 1
        self.count += 1
        self.sum += v
        if v < self.min:
            self.min = v
        if v > self.max:
            self.max = v

    def to_json(self):
        return {"count": self.count, "sum": self.sum,
                "min": self.min if self.count else 0, "max": self.max,
                "buckets": [[i, c] for i, c in sorted(self.b.items()) if c]}


def hist_index(v):
    if v < 128:
        return v
    shift = v.bit_length() - 7
    return shift * 64 + (v >> shift)


def hist_upper(idx):
    if idx < 128:
        return idx
    shift = idx // 64 - 1
    return ((idx - shift * 64 + 1) << shift) - 1


# --------------------------------------------------------------------------
# Command line.

class UsageError(Exception):
    pass


def _loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen(spec):
    """udp://HOST:PORT?format=bin1|jsonl or tcp://... -> (transport, host, port, fmt)."""
    u = urllib.parse.urlsplit(spec)
    if u.scheme not in ("udp", "tcp"):
        raise UsageError(f"--listen {spec!r}: scheme must be udp:// or tcp://")
    try:
        host, port = u.hostname, u.port
    except ValueError:
        raise UsageError(f"--listen {spec!r}: bad port")
    if not host or not port:
        raise UsageError(f"--listen {spec!r}: need HOST:PORT")
    q = urllib.parse.parse_qs(u.query)
    fmt = q.get("format", [None])[-1]
    if fmt not in ("bin1", "jsonl"):
        raise UsageError(f"--listen {spec!r}: need ?format=bin1 or ?format=jsonl")
    if set(q) - {"format"}:
        raise UsageError(f"--listen {spec!r}: unknown parameter(s) {sorted(set(q) - {'format'})}")
    if not _loopback(host):
        raise UsageError(f"--listen {spec!r}: refusing non-loopback host {host!r} (benchmark baselines bind to loopback only)")
    return u.scheme, host, port, fmt


def check_redis_url(url):
    u = urllib.parse.urlsplit(url)
    if u.scheme != "redis":
        raise UsageError(f"--redis {url!r}: scheme must be redis://")
    try:
        host = u.hostname
        u.port
    except ValueError:
        raise UsageError(f"--redis {url!r}: bad port")
    if not host or not _loopback(host):
        raise UsageError(f"--redis {url!r}: refusing non-loopback host {host!r} (benchmark baselines talk to a local Redis only)")
    return url


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def parse_args(prog, description, modes=None, argv=None):
    p = _Parser(prog=prog, description=description)
    p.add_argument("--listen", action="append", required=True,
                   help="udp://127.0.0.1:PORT?format=bin1|jsonl or tcp://... (repeatable)")
    p.add_argument("--redis", required=True, help="redis://127.0.0.1:PORT/0")
    p.add_argument("--report", required=True, help="JSON report written at exit")
    p.add_argument("--ttl", type=int, default=5, help="SETEX TTL in seconds (default 5)")
    if modes:
        p.add_argument("--mode", choices=modes, required=True)
    a = p.parse_args(argv)
    try:
        if a.ttl <= 0:
            raise UsageError("--ttl must be a positive number of seconds")
        a.listen = [parse_listen(s) for s in a.listen]
        check_redis_url(a.redis)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    return a


# --------------------------------------------------------------------------
# Sockets.

def udp_socket(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    size = 16 << 20
    try:  # SO_RCVBUFFORCE (33 on Linux) goes past rmem_max when privileged
        s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), size)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    s.bind((host, port))
    s.setblocking(False)
    return s


def udp_kernel_drops(ports):
    """Datagrams the kernel dropped on our UDP sockets (full receive buffer):
    the last column of /proc/net/udp{,6}, summed over the given local ports.
    Read while the sockets are still open."""
    want = {f"{p:04X}" for p in ports}
    total = 0
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    col = line.split()
                    if len(col) >= 13 and col[1].rsplit(":", 1)[1] in want:
                        total += int(col[-1])
        except OSError:
            pass
    return total


def tcp_listener(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(128)
    s.setblocking(False)
    return s


# --------------------------------------------------------------------------
# Ticks: tuples (type, symbol, source, seq, ts_ns, a, b, origin_ns)
#   quote: a = bid, b = ask (None = side not updated)
#   trade: a = price, b = size
#   reset: symbol (or "*"), the rest unused
# source is the tick's source name, or the listener/connection id when absent.
# None for seq / ts / origin means "not carried".

QUOTE, TRADE, HEARTBEAT, RESET = 1, 2, 3, 4
HB = object()        # decoded fine, nothing to write (heartbeat)
BAD = object()       # undecodable: counted in decode_errors

_HDR = struct.Struct("<BBHBBBBQq")
_HDR3 = struct.Struct("<BBH")
_QUOTE = struct.Struct("<qbqbqbqb")
_TRADE = struct.Struct("<qbqb")
_I64 = struct.Struct("<q")
_POW10 = [10 ** k for k in range(19)]
_MAXMANT = 999_999_999_999_999_999
_BODY = {1: 36, 2: 18, 3: 0, 4: 0}

_NAME_B = re.compile(rb"[\x21-\x7e]{1,31}\Z")
_NAME_S = re.compile(r"[\x21-\x7e]{1,31}\Z")
_sym_cache = {}      # raw symbol bytes -> str, only valid symbols
_str_ok = set()      # valid jsonl symbol/source strings seen


class _Bad(Exception):
    pass


def _price(m, e):
    """bin1 decimal -> float, None when absent; _Bad when out of range."""
    if e == -128:
        return None
    if e > 0 or e < -18 or m > _MAXMANT or m < -_MAXMANT:
        raise _Bad
    return m / _POW10[-e]


def _size(m, e):
    """bin1 decimal size -> int when integral, else float; None when absent."""
    if e == -128:
        return None
    if e > 0 or e < -18 or m > _MAXMANT or m < 0:
        raise _Bad
    if e == 0:
        return m
    d = _POW10[-e]
    q, r = divmod(m, d)
    return q if r == 0 else m / d


def bin1_frame(buf, off, flen, conn_src):
    """Decodes the frame at buf[off:off+flen] (header already known sound)."""
    _, _, _, typ, sl, rl, flags, seq, ts = _HDR.unpack_from(buf, off)
    blen = _BODY.get(typ)
    if blen is None:
        return BAD                                  # unknown_type
    if 24 + sl + rl + blen + (8 if flags & 4 else 0) > flen or sl > 31 or rl > 31:
        return BAD                                  # truncated / symbol
    p = off + 24
    if sl:
        raw = buf[p:p + sl]
        sym = _sym_cache.get(raw)
        if sym is None:
            if raw == b"*":
                if typ != RESET:
                    return BAD                      # "*" only in a reset
                sym = "*"
            elif _NAME_B.match(raw):
                sym = _sym_cache[raw] = raw.decode("ascii")
            else:
                return BAD                          # symbol
    elif typ != HEARTBEAT:
        return BAD                                  # symbol required
    else:
        sym = None
    if rl:
        src = buf[p + sl:p + sl + rl]
        if not _NAME_B.match(src):
            return BAD
    else:
        src = conn_src
    if typ == HEARTBEAT:
        return HB if rl else BAD                     # heartbeat needs a source
    if flags & 2:
        if ts < 0:
            return BAD
    else:
        ts = None
    if not flags & 1:
        seq = None
    origin = _I64.unpack_from(buf, off + flen - 8)[0] if flags & 4 else None
    q = p + sl + rl
    try:
        if typ == QUOTE:
            bm, be, am, ae, xm, xe, ym, ye = _QUOTE.unpack_from(buf, q)
            a = _price(bm, be)
            b = _price(am, ae)
            _size(xm, xe)
            _size(ym, ye)
            if a is None and b is None:
                return BAD                          # missing_field
        elif typ == TRADE:
            pm, pe, zm, ze = _TRADE.unpack_from(buf, q)
            a = _price(pm, pe)
            b = _size(zm, ze)
            if a is None or b is None:
                return BAD
        else:  # RESET
            if not sl:
                return BAD
            a = b = None
    except _Bad:
        return BAD
    return (typ, sym, src, seq, ts, a, b, origin)


def bin1_datagram(data, conn_src, out):
    """Appends the ticks of one datagram to out; returns the decode error count.
    A broken header or a frame cut short drops the rest of the datagram."""
    n = len(data)
    off = 0
    errors = 0
    while off < n:
        if n - off < 24:
            return errors + 1
        magic, ver, flen = _HDR3.unpack_from(data, off)
        if magic != 0xB1 or ver != 1 or flen < 24 or flen > 1024 or off + flen > n:
            return errors + 1
        t = bin1_frame(data, off, flen, conn_src)
        if t is BAD:
            errors += 1
        elif t is not HB:
            out.append(t)
        off += flen
    return errors


class Bin1Stream:
    """Reassembles a TCP byte stream into frames by their len field. A broken
    header is counted once per garbage run; decoding resumes at the next
    B1 01 byte pair."""

    def __init__(self, conn_src):
        self.src = conn_src
        self.buf = b""
        self.garbage = False

    def feed(self, chunk, out):
        data = self.buf + chunk if self.buf else chunk
        n = len(data)
        off = 0
        errors = 0
        while n - off >= 4:
            magic, ver, flen = _HDR3.unpack_from(data, off)
            if magic != 0xB1 or ver != 1 or flen < 24 or flen > 1024:
                if not self.garbage:
                    errors += 1
                    self.garbage = True
                nxt = data.find(b"\xb1\x01", off + 1)
                if nxt < 0:
                    off = n - 1 if data[n - 1] == 0xB1 else n
                    break
                off = nxt
                continue
            if off + flen > n:
                break
            self.garbage = False
            t = bin1_frame(data, off, flen, self.src)
            if t is BAD:
                errors += 1
            elif t is not HB:
                out.append(t)
            off += flen
        self.buf = data[off:]
        return errors

    def close(self, out):
        """End of stream: a frame left incomplete is counted as truncated."""
        left = self.buf
        self.buf = b""
        return 1 if left and not self.garbage else 0


# ---- jsonl ----

def _reject_constant(name):
    raise ValueError(name)


_JSON = json.JSONDecoder(parse_constant=_reject_constant)
_NUM = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_TYPES = {"quote": QUOTE, "trade": TRADE, "heartbeat": HEARTBEAT, "reset": RESET}
_RESERVED = {"position", "order", "balance", "account"}
_TS_MAX = (1 << 63) - 1
_SEQ_MAX = (1 << 64) - 1


def _jnum(v):
    """A JSON number, or a string holding one -> int/float; None when absent."""
    t = type(v)
    if t is float:
        if v - v == 0.0:      # finite: 1e400 parses to inf
            return v
    elif t is int:
        return v
    elif v is None:
        return None
    elif t is str and _NUM.match(v):
        if "." in v or "e" in v or "E" in v:
            return _jnum(float(v))
        return int(v)
    raise _Bad


def _jsize(v):
    v = _jnum(v)
    if v is not None:
        if v < 0:
            raise _Bad
        if type(v) is float and v.is_integer():
            v = int(v)
    return v


def _jint(v, top):
    t = type(v)
    if t is int:
        if 0 <= v <= top:
            return v
    elif v is None:
        return None
    elif t is str and v.isascii() and v.isdigit():
        v = int(v)
        if v <= top:
            return v
    raise _Bad


def _jname(v):
    if type(v) is not str:
        raise _Bad
    if v not in _str_ok:
        if not _NAME_S.match(v):
            raise _Bad
        _str_ok.add(v)
    return v


def jsonl_line(line, conn_src):
    """One line (bytes, without its newline) -> tick, HB, BAD, or None (blank)."""
    try:
        o = _JSON.decode(line.decode("utf-8"))
    except ValueError:        # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        if not line.strip():
            return None
        return BAD
    if type(o) is not dict:
        return BAD
    typ = _TYPES.get(o.get("type"))
    if typ is None:
        return BAD
    try:
        sym = o.get("symbol")
        if sym is not None:
            sym = _jname(sym)
            if sym == "*" and typ != RESET:
                return BAD
        src = o.get("source")
        src = conn_src if src is None else _jname(src)
        ts = _jint(o.get("ts"), _TS_MAX)
        seq = _jint(o.get("seq"), _SEQ_MAX)
        origin = o.get("origin_ns")
        if type(origin) is not int:
            origin = None
        if typ == QUOTE:
            if sym is None:
                return BAD
            a = _jnum(o.get("bid"))
            b = _jnum(o.get("ask"))
            _jsize(o.get("bid_size"))
            _jsize(o.get("ask_size"))
            if a is None and b is None:
                return BAD
        elif typ == TRADE:
            if sym is None:
                return BAD
            a = _jnum(o.get("price"))
            b = _jsize(o.get("size"))
            if a is None or b is None:
                return BAD
        elif typ == HEARTBEAT:
            return HB if "source" in o and o["source"] is not None else BAD
        else:
            if sym is None:
                return BAD
            a = b = None
    except _Bad:
        return BAD
    return (typ, sym, src, seq, ts, a, b, origin)


_LINE_MAX = 4095      # bytes of content; 4096 with the newline


def jsonl_datagram(data, conn_src, out):
    """Appends the ticks of one datagram (whole lines) to out; returns the error count."""
    return jsonl_lines(data.split(b"\n"), conn_src, out)


def jsonl_lines(lines, conn_src, out):
    errors = 0
    for line in lines:
        if len(line) > _LINE_MAX:
            errors += 1
            continue
        t = jsonl_line(line, conn_src)
        if t is None or t is HB:
            continue
        if t is BAD:
            errors += 1
        else:
            out.append(t)
    return errors


class JsonlStream:
    """Reassembles a TCP byte stream into lines."""

    def __init__(self, conn_src):
        self.src = conn_src
        self.buf = b""
        self.skipping = False   # inside an oversized line: drop up to its newline

    def feed(self, chunk, out):
        data = self.buf + chunk if self.buf else chunk
        lines = data.split(b"\n")
        self.buf = lines.pop()
        if self.skipping:
            if not lines:
                self.buf = b""
                return 0
            lines[0] = b""
            self.skipping = False
        errors = jsonl_lines(lines, self.src, out)
        if len(self.buf) > _LINE_MAX:
            errors += 1
            self.buf = b""
            self.skipping = True
        return errors

    def close(self, out):
        """End of stream: a last line without its newline is decoded too."""
        left = self.buf
        self.buf = b""
        if self.skipping or not left:
            return 0
        return jsonl_datagram(left, self.src, out)


def datagram_decoder(fmt):
    return bin1_datagram if fmt == "bin1" else jsonl_datagram


def stream_decoder(fmt, conn_src):
    return Bin1Stream(conn_src) if fmt == "bin1" else JsonlStream(conn_src)


# --------------------------------------------------------------------------
# Per-symbol state, as mdcache keeps it.

class Sym:
    __slots__ = ("key", "last", "bid", "ask", "vol", "high", "low", "ts", "seen")

    def __init__(self, key):
        self.key = key
        self.last = self.bid = self.ask = self.vol = self.high = self.low = self.ts = None
        self.seen = {}          # source -> last seq applied


_ENC = json.JSONEncoder(separators=(",", ":"))


class State:
    def __init__(self):
        self.syms = {}
        self.duplicates = 0
        self.resets = 0

    def apply(self, t):
        """Applies a quote or trade; returns its Sym, or None for a duplicate."""
        typ, sym, src, seq, ts, a, b, _ = t
        s = self.syms.get(sym)
        if s is None:
            s = self.syms[sym] = Sym(f"price:{sym}:latest")
        if seq is not None:
            last = s.seen.get(src)
            if last is not None and seq <= last:
                self.duplicates += 1
                return None
            s.seen[src] = seq
        if typ == QUOTE:
            if a is not None:
                s.bid = a
            if b is not None:
                s.ask = b
        else:
            s.last = a
            s.vol = b if s.vol is None else s.vol + b
            if s.high is None or a > s.high:
                s.high = a
            if s.low is None or a < s.low:
                s.low = a
        if ts is not None and (s.ts is None or ts > s.ts):
            s.ts = ts
        return s

    def reset(self, t):
        """Session reset: Volume 0, High/Low unknown, sequence tracking restarts.
        Returns the Syms whose key must be written again."""
        self.resets += 1
        sym = t[1]
        if sym == "*":
            hit = list(self.syms.values())
        else:
            s = self.syms.get(sym)
            hit = [s] if s is not None else []
        for s in hit:
            s.vol = 0
            s.high = s.low = None
            s.seen.clear()
        return hit

    @staticmethod
    def value(s):
        return _ENC.encode({"Last": s.last, "Bid": s.bid, "Ask": s.ask, "Volume": s.vol,
                            "High": s.high, "Low": s.low,
                            "Timestamp": None if s.ts is None else s.ts // 1_000_000})


# --------------------------------------------------------------------------
# Report.

def write_report(path, system, ticks, keys_written, write_errors, decode_errors,
                 latency, rtt, batch, **extra):
    rep = {"system": system, "ticks": ticks, "keys_written": keys_written,
           "write_errors": write_errors, "decode_errors": decode_errors,
           "latency_ns": latency.to_json(), "rtt_ns": rtt.to_json(),
           "batch_keys": batch.to_json()}
    rep.update(extra)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rep, f)
        f.write("\n")
    os.replace(tmp, path)
