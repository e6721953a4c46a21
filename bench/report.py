"""Reading the systems' reports and writing the bench's own: latest.md,
latest.json and SVG plots (hand-written SVG: no plotting library needed).

Histograms arrive in mdcache's log-linear scheme (src/hist.c): exact below
128, then 64 sub-buckets per power of two; every baseline writes the same
form, so one reader serves all.
"""

import json
import math
import os

SPECTRUM = [0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1.0]
COLORS = {"mdcache": "#d62728", "mdcache-tls": "#17becf", "mdcache-spin": "#ff7f0e", "hiredis-sync": "#1f77b4", "ioredis-autopipeline": "#2ca02c",
          "redispy-pipeline": "#9467bd", "redispy-setex": "#8c564b"}


def bucket_upper(idx):
    if idx < 128:
        return idx
    shift = idx // 64 - 1
    m = idx - shift * 64
    return ((m + 1) << shift) - 1


class Hist:
    def __init__(self, d):
        self.count = d.get("count", 0)
        self.max = d.get("max", 0)
        self.min = d.get("min", 0)
        self.buckets = sorted((int(i), int(c)) for i, c in d.get("buckets", []))

    def quantile(self, q):
        """Upper edge of the bucket holding the ceil(q*count)-th value, never above max."""
        if not self.count:
            return 0
        if q >= 1:
            return self.max
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for idx, c in self.buckets:
            seen += c
            if seen >= rank:
                return min(bucket_upper(idx), self.max)
        return self.max


# ------------------------------------------------------------------ SVG

def _fmt(v):
    if v >= 1e6:
        return "%gM" % (v / 1e6)
    if v >= 1e3:
        return "%gk" % (v / 1e3)
    return "%g" % v


def svg_chart(path, title, xlabel, ylabel, series, xlog=True, ylog=True, xticks=None):
    """series: {name: [(x, y), ...]}; log axes by default. xticks: [(x, label)]."""
    W, H, L, R, T, B = 760, 440, 80, 190, 40, 60
    pts = [(x, y) for s in series.values() for x, y in s if y is not None and y > 0 and x > 0]
    if not pts:
        return False
    tx = (lambda v: math.log10(v)) if xlog else (lambda v: v)
    ty = (lambda v: math.log10(v)) if ylog else (lambda v: v)
    xs = [tx(x) for x, _ in pts]
    ys = [ty(y) for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if ylog:
        y0, y1 = math.floor(y0), math.ceil(y1)
    if xlog and not xticks:
        x0, x1 = math.floor(x0), math.ceil(x1)
    if x1 == x0:
        x1 += 1
    if y1 == y0:
        y1 += 1
    px = lambda v: L + (tx(v) - x0) / (x1 - x0) * (W - L - R)
    py = lambda v: H - B - (ty(v) - y0) / (y1 - y0) * (H - T - B)
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
         'font-size="12">' % (W, H), '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>' % (L, title)]
    # grid and y labels
    if ylog:
        yt = [10 ** e for e in range(int(y0), int(y1) + 1)]
    else:
        yt = [y0 + (y1 - y0) * i / 5 for i in range(6)]
    for v in yt:
        y = py(v)
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (L, W - R, y, y))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (L - 6, y + 4, _fmt(v)))
    if xticks is None:
        xticks = [(10 ** e, _fmt(10 ** e)) for e in range(int(x0), int(x1) + 1)] if xlog else \
                 [(x0 + (x1 - x0) * i / 5, _fmt(x0 + (x1 - x0) * i / 5)) for i in range(6)]
    for v, lab in xticks:
        x = px(v)
        o.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>' % (x, x, T, H - B))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x, H - B + 18, lab))
    o.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>' % (L, T, W - L - R, H - T - B))
    o.append('<text x="%d" y="%d" text-anchor="middle">%s</text>' % ((L + W - R) / 2, H - 15, xlabel))
    o.append('<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">%s</text>'
             % ((T + H - B) / 2, (T + H - B) / 2, ylabel))
    for i, (name, s) in enumerate(series.items()):
        col = COLORS.get(name, "#333")
        good = [(x, y) for x, y in s if y is not None and y > 0 and x > 0]
        if not good:
            continue
        d = " ".join("%s%.1f,%.1f" % ("M" if j == 0 else "L", px(x), py(y)) for j, (x, y) in enumerate(good))
        o.append('<path d="%s" fill="none" stroke="%s" stroke-width="2"/>' % (d, col))
        for x, y in good:
            o.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (px(x), py(y), col))
        ly = T + 14 + i * 18
        o.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>' % (W - R + 12, W - R + 32, ly - 4, ly - 4, col))
        o.append('<text x="%d" y="%d">%s</text>' % (W - R + 38, ly, name))
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")
    return True


# ------------------------------------------------------------------ tables

def _v(x, nd=0):
    if x is None:
        return "-"
    if isinstance(x, float) and nd:
        return ("%." + str(nd) + "f") % x
    if isinstance(x, (int, float)):
        return "{:,}".format(round(x))
    return str(x)


def _rate(r):
    return "flat out" if not r["offered_tps"] else _v(r["offered_tps"])


def common_rate(rows, scenario, systems):
    """Highest offered rate at which every system was correct and kept up."""
    best = None
    rates = sorted({r["offered_tps"] for r in rows if r["scenario"] == scenario and r["offered_tps"]})
    for rate in rates:
        ok = [r for r in rows if r["scenario"] == scenario and r["offered_tps"] == rate and r.get("correct")
              and r.get("achieved_tps", 0) >= 0.95 * rate]
        if {r["system"] for r in ok} >= set(systems):
            best = rate
    return best or (rates[0] if rates else None)


def targets(rows, ceil):
    """The issue's targets, each with the measured figure (the tls-*
    scenarios are a comparison of their own, not a target)."""
    rows = [r for r in rows if not r["scenario"].startswith("tls-")]
    md = [r for r in rows if r["system"] == "mdcache"]
    out = []
    at50 = [r for r in rows if r["scenario"] == "udp-bin1-1k" and r["offered_tps"] == 50000]
    others = ", ".join("%s %s" % (r["system"], ("p99 %s us" % _v(r.get("p99_us"))) if r.get("correct")
                                  and r.get("achieved_tps", 0) >= 0.95 * 50000 else "could not sustain it")
                       for r in at50 if not r["system"].startswith("mdcache"))
    for name in ("mdcache", "mdcache-spin"):
        reps = [r for r in rows if r["scenario"] == "target-50k-repeats" and r["system"] == name and r.get("correct")]
        reps += [r for r in at50 if r["system"] == name and r.get("correct")]
        if not reps:
            continue
        p99s = sorted(r["p99_us"] for r in reps)
        med = p99s[len(p99s) // 2]
        out.append("p99 at 50k ticks/s, 1k symbols (UDP bin1), %s: median **%s us** over %d runs (each: %s; "
                   "target < 250 us)" % (name, _v(med), len(p99s), ", ".join(_v(x) for x in p99s)))
    if at50:
        out.append("Baselines at 50k ticks/s, 1k symbols: %s" % (others or "none run"))
    fast = [r for r in md if r["transport"] == "udp" and r["format"] == "bin1" and r["symbols"] >= 10000 and r.get("correct")]
    if fast:
        b = max(fast, key=lambda r: r.get("achieved_tps", 0))
        out.append("Sustained UDP bin1 with %s symbols, every key exact: **%s ticks/s** (%s offered; target >= 1,000,000)"
                   % (_v(b["symbols"]), _v(b["achieved_tps"]), _rate(b)))
    alone = [r for r in md if r["scenario"] == "redis-alone" and r.get("correct")]
    if alone and alone[0].get("ceiling_pairs"):
        b = alone[0]
        out.append("Redis keys/s written at saturation (%s symbols, Redis alone on its core): median ratio to a "
                   "ceiling run made just before **%.0f%%** (target >= 90%%); pairs of ceiling SETEX/s and mdcache "
                   "keys/s: %s" % (_v(b["symbols"]), 100 * b.get("ratio_to_ceiling_median", 0),
                                   "; ".join("%s / %s" % (_v(c), _v(k)) for c, k in b["ceiling_pairs"])))
    elif ceil and (alone or md):
        b = max(alone or md, key=lambda r: r.get("keys_per_s", 0) if r.get("correct") else 0)
        out.append("Redis keys/s written at saturation: **%s** = %.0f%% of the redis-benchmark -P 64 ceiling "
                   "of %s SETEX/s over the same number of keys (%s, %s symbols; target >= 90%%)" % (
                       _v(b["keys_per_s"]), 100.0 * b["keys_per_s"] / ceil, _v(ceil), b["scenario"], _v(b["symbols"])))
    return out


HEADER = ("| system | offered ticks/s | achieved ticks/s | Redis keys/s | coalescing | p50 us | p90 us | p99 us "
          "| p99.9 us | p99.99 us | max us | Redis RTT p50/p99 us | mdgen lag p99 us | CPU s / M ticks | peak RSS MB | correct |")


def row_line(r):
    if r.get("error"):
        return "| %s | %s | %s |%s" % (r["system"], _rate(r), "error: " + r["error"].replace("|", "/")[:120], " |" * 13)
    ok = "yes" if r["correct"] else "**no** (%s keys wrong, %s ticks lost)" % (_v(r.get("keys_wrong")), _v(r.get("lost_ticks")))
    return "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s |" % (
        r.get("system"), _rate(r), _v(r.get("achieved_tps")), _v(r.get("keys_per_s")), _v(r.get("coalescing"), 2),
        _v(r.get("p50_us")), _v(r.get("p90_us")), _v(r.get("p99_us")), _v(r.get("p999_us")), _v(r.get("p9999_us")),
        _v(r.get("max_us")), _v(r.get("rtt_p50_us")), _v(r.get("rtt_p99_us")), _v(r.get("gen_lag_p99_us")),
        _v(r.get("cpu_s_per_mtick"), 2), _v(r.get("rss_mb"), 1), ok)


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2.0


def _ratio(a, b, nd=2):
    return ("%." + str(nd) + "f") % (a / b) if a is not None and b else "-"


def tls_reference_lines(t):
    """Redis's own figures over TLS next to TCP (meta["tls"])."""
    L = ["## Redis over TLS and over TCP, alone (redis-benchmark)", ""]
    L.append("Setup: %s. Runs interleaved, TCP and TLS alternating which goes first." % t.get("redis_tls", "TLS"))
    L.append("")
    L.append("| measurement | TCP (runs) | TLS (runs) | TLS / TCP, medians |")
    L.append("|---|---|---|---:|")
    for k, d in sorted(t.get("ceiling", {}).items(), key=lambda kv: int(kv[0])):
        L.append("| SETEX/s, `-c 8 -P 64`, %s keys | %s | %s | %s |" % (
            _v(int(k)), ", ".join(_v(x) for x in d["tcp"]), ", ".join(_v(x) for x in d["tls"]),
            _ratio(median(d["tls"]), median(d["tcp"]))))
    pf = t.get("ping_floor", {})
    for q, lab in (("p50_us", "p50"), ("p99_us", "p99"), ("max_us", "max")):
        tcp = [f[q] for f in pf.get("tcp", [])]
        tl = [f[q] for f in pf.get("tls", [])]
        if tcp or tl:
            L.append("| PING round trip %s, one client, us | %s | %s | %s |" % (
                lab, ", ".join(_v(x) for x in tcp), ", ".join(_v(x) for x in tl), _ratio(median(tl), median(tcp))))
    L.append("")
    return L


def tls_section(rows, sc, out, name):
    """A tls-* scenario: medians side by side per rate, every run below."""
    L = ["## %s" % sc, ""]
    mine = [r for r in rows if r["scenario"] == sc]
    if sc == "tls-redis-alone":
        L.append("Keys/s at saturation, Redis alone on its core (redis-alone's method), over TCP and TLS; each "
                 "run paired with a ceiling run over the same transport just before it.")
        L.append("")
        L.append("| transport | pairs: ceiling SETEX/s / mdcache keys/s | median mdcache keys/s | median ratio to ceiling "
                 "| other processes, cores | correct |")
        L.append("|---|---|---:|---:|---|---|")
        med = {}
        for r in mine:
            tr = "TLS" if r.get("redis_tls") else "TCP"
            med[tr] = r.get("keys_per_s_median")
            L.append("| %s | %s | %s | %s | %s | %s |" % (
                tr, "; ".join("%s / %s" % (_v(c), _v(k)) for c, k in r.get("ceiling_pairs", [])),
                _v(r.get("keys_per_s_median")), _v(r.get("ratio_to_ceiling_median"), 2),
                ", ".join("-" if x is None else "%.2f" % x for x in r.get("foreign_cores_runs", [])),
                "yes" if r.get("correct") else "**no** %s" % r.get("error", "")))
        if med.get("TLS") and med.get("TCP"):
            L.append("")
            L.append("mdcache keys/s over TLS / over TCP, medians: **%s**." % _ratio(med["TLS"], med["TCP"]))
        L.append("")
        return L
    rates = sorted({r["offered_tps"] for r in mine}, key=lambda x: (x == 0, x))
    L.append("mdcache writing to Redis over plain TCP and over TLS (`rediss://`, peer verified), same rate points "
             "and pinning, runs interleaved; medians of the runs at each point (every run below). `other` is the "
             "most CPU that processes not started by the bench took during any run of the point, in cores.")
    L.append("")
    L.append("| offered ticks/s | achieved TCP | achieved TLS | TLS/TCP | p50 us TCP / TLS | p99 us TCP (runs) "
             "| p99 us TLS (runs) | p99 TLS/TCP | Redis RTT p50 us TCP / TLS | CPU s / M ticks TCP / TLS | correct TCP / TLS | other |")
    L.append("|---|---:|---:|---:|---:|---|---|---:|---:|---:|---|---:|")
    series = {"achieved": {"mdcache": [], "mdcache-tls": []}, "p99": {"mdcache": [], "mdcache-tls": []}}
    for rate in rates:
        m = {}
        for sysname in ("mdcache", "mdcache-tls"):
            rs = [r for r in mine if r["offered_tps"] == rate and r["system"] == sysname and not r.get("error")]
            m[sysname] = {
                "n": len([r for r in mine if r["offered_tps"] == rate and r["system"] == sysname]),
                "ok": sum(1 for r in rs if r.get("correct")),
                "ach": median(r.get("achieved_tps") for r in rs),
                "p50": median(r.get("p50_us") for r in rs),
                "p99": median(r.get("p99_us") for r in rs),
                "p99s": [r.get("p99_us") for r in rs],
                "rtt": median(r.get("rtt_p50_us") for r in rs),
                "cpu": median(r.get("cpu_s_per_mtick") for r in rs),
            }
            if rate:
                series["achieved"][sysname].append((rate, m[sysname]["ach"]))
                series["p99"][sysname].append((rate, m[sysname]["p99"]))
        a, b = m["mdcache"], m["mdcache-tls"]
        other = [r.get("foreign_cores") for r in mine if r["offered_tps"] == rate and r.get("foreign_cores") is not None]
        L.append("| %s | %s | %s | %s | %s / %s | %s (%s) | %s (%s) | %s | %s / %s | %s / %s | %d/%d / %d/%d | %s |" % (
            "flat out" if not rate else _v(rate), _v(a["ach"]), _v(b["ach"]), _ratio(b["ach"], a["ach"]),
            _v(a["p50"]), _v(b["p50"]), _v(a["p99"]), ", ".join(_v(x) for x in a["p99s"]),
            _v(b["p99"]), ", ".join(_v(x) for x in b["p99s"]), _ratio(b["p99"], a["p99"]),
            _v(a["rtt"]), _v(b["rtt"]), _v(a["cpu"], 2), _v(b["cpu"], 2), a["ok"], a["n"], b["ok"], b["n"],
            "%.2f" % max(other) if other else "-"))
    L.append("")
    base = "%s-%s" % (name, sc)
    if svg_chart(os.path.join(out, base + "-p99.svg"), "%s: median p99 vs offered rate" % sc,
                 "offered ticks/s", "p99 latency (us)", series["p99"]):
        L.append("![p99](%s-p99.svg)" % base)
    if svg_chart(os.path.join(out, base + "-throughput.svg"), "%s: median achieved vs offered" % sc,
                 "offered ticks/s", "achieved ticks/s", series["achieved"]):
        L.append("![throughput](%s-throughput.svg)" % base)
    L.append("")
    L.append("Every run:")
    L.append("")
    L.append(HEADER)
    L.append("|---|" + "---:|" * 14 + "---|")
    L += [row_line(r) for r in mine]
    L.append("")
    return L


def write_all(out, name, meta, rows, ceil):
    doc = {"meta": meta, "ceiling_setex_per_s": ceil, "rows": rows}
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    systems = []
    for r in rows:
        if r["system"] not in systems:
            systems.append(r["system"])
    scenarios = []
    for r in rows:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
    L = ["# mdcache benchmark: %s" % meta["date"], ""]
    L.append("Machine: %s, %s cores, Linux %s. %s. Tuning during the run: %s." % (
        meta["cpu"], meta["cores"], meta["kernel"], meta["pinning"], meta.get("tuning", "none")))
    L.append("")
    L.append("Versions: %s; %s; redis-py %s (%s); Node %s with ioredis %s; hiredis %s; gcc %s."
             % (meta["mdcache"], meta["redis"].split(" sha=")[0], meta["redis_py"], meta["python"],
                meta["node"], meta["ioredis"], meta["hiredis"], meta["gcc"]))
    L.append("")
    L.append("Load: `build/mdgen`, open loop, each tick stamped with its scheduled send time; %g s per paced "
             "point, up to %d ticks per datagram or write, Zipf skew %g, 30%% trades. Latency is per tick: "
             "Redis's acknowledgement of the write carrying it minus its scheduled send time (mdcache "
             "charges every tick of a coalesced write with its oldest tick's latency). Rates stop rising for "
             "a system once it saturates. `correct` means every key in Redis equals the generator's model "
             "after the run and no tick was lost. `mdgen lag` is how late the generator itself sent "
             "(already inside every latency figure, as coordinated omission requires)." % (meta["duration_s"], meta["per_datagram"], meta["zipf"]))
    L.append("")
    if ceil:
        by = meta.get("ceiling_runs_by_keys", {})
        L.append("Ceiling: `redis-benchmark -c 8 -P 64` SETEX of the same key shape and a typical value, Redis "
                 "alone on its core, best of several runs: %s. `ceiling_setex_per_s` in the JSON is the "
                 "%s-key figure, the key space of the saturation run." % (
                     "; ".join("**%s SETEX/s** over %s keys (runs: %s)" % (_v(max(v)), _v(int(k)), ", ".join(_v(c) for c in v))
                               for k, v in sorted(by.items(), key=lambda kv: int(kv[0]))) or _v(ceil),
                     _v(max((int(k) for k in by), default=0))))
        L.append("")
    fl = meta.get("ping_floor")
    if fl:
        L.append("Floor: a single client's PING round trip between the same two cores (`redis-benchmark -c 1 "
                 "PING`): p50 %s us, p99 %s us, max %s us. No system's latency here can beat it, and its tail "
                 "shows this VM's own stalls." % (_v(fl["p50_us"]), _v(fl["p99_us"]), _v(fl["max_us"])))
        L.append("")
    if meta.get("tls"):
        L += tls_reference_lines(meta["tls"])
    tg = targets(rows, ceil)
    if tg:
        L.append("## Targets")
        L.append("")
        L += ["- " + t for t in tg]
        L.append("")
    for sc in scenarios:
        if sc.startswith("tls-"):
            L += tls_section(rows, sc, out, name)
            continue
        L.append("## %s" % sc)
        L.append("")
        L.append(HEADER)
        L.append("|---|" + "---:|" * 14 + "---|")
        L += [row_line(r) for r in rows if r["scenario"] == sc]
        L.append("")
        base = "%s-%s" % (name, sc)
        if sc in ("target-50k-repeats", "redis-alone"):
            continue  # one rate, repeated: the table says it all
        cr = common_rate(rows, sc, systems)
        spec = {s: [(1.0 / (1.0 - p) if p < 1 else 1e6, v) for p, v in r["spectrum_us"]]
                for s in systems for r in rows
                if r["scenario"] == sc and r["system"] == s and r["offered_tps"] == cr and "spectrum_us" in r}
        ticks = [(1 / (1 - p) if p < 1 else 1e6, lab) for p, lab in
                 [(0.5, "50%"), (0.9, "90%"), (0.99, "99%"), (0.999, "99.9%"), (0.9999, "99.99%"), (0.99999, "99.999%"), (1, "max")]]
        if cr and svg_chart(os.path.join(out, base + "-spectrum.svg"), "%s: latency by percentile at %s ticks/s" % (sc, _v(cr)),
                            "percentile", "latency (us)", spec, xticks=ticks):
            L.append("![latency spectrum](%s-spectrum.svg)" % base)
        thr = {s: [(r["offered_tps"], r.get("achieved_tps")) for r in rows
                   if r["scenario"] == sc and r["system"] == s and r["offered_tps"] and not r.get("error")] for s in systems}
        if svg_chart(os.path.join(out, base + "-throughput.svg"), "%s: achieved vs offered" % sc,
                     "offered ticks/s", "achieved ticks/s", thr):
            L.append("![throughput](%s-throughput.svg)" % base)
        p99 = {s: [(r["offered_tps"], r.get("p99_us")) for r in rows
                   if r["scenario"] == sc and r["system"] == s and r["offered_tps"] and not r.get("error")] for s in systems}
        if svg_chart(os.path.join(out, base + "-p99.svg"), "%s: p99 latency vs offered rate" % sc,
                     "offered ticks/s", "p99 latency (us)", p99):
            L.append("![p99](%s-p99.svg)" % base)
        L.append("")
    L.append("Run took %s s. Regenerate with `make bench`; raw rows in `%s.json`." % (meta["wall_s"], name))
    with open(os.path.join(out, name + ".md"), "w") as f:
        f.write("\n".join(L) + "\n")
