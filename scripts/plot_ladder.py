#!/usr/bin/env python3
"""Draws the ladder CSV of `mgpt bench ladder --csv` as hand-written SVG charts (standard library only).

    python3 scripts/plot_ladder.py docs/plots/ladder-shakespeare.csv --out docs/plots --prefix ladder-shakespeare

Writes <prefix>-quality.svg (log-prob, entropy), <prefix>-latency-memory.svg (median/p99 µs,
model + KV KB), <prefix>-matmuls.svg (matmuls and MACs per token) and <prefix>-quality-vs-memory.svg.
Only measured rows are drawn (computed / not-measured rows are listed in the table, docs/ladder.md).
Latency and matmul axes are logarithmic: phase 1 recomputes the whole prefix and is ~100x off the rest.
With `mgpt bench ladder --runs N` (N > 1) the CSV has <column>_spread (half of max - min over the runs):
log-prob, entropy and latency are drawn with error bars of ± that spread (absent columns: no bars).
"""
import argparse
import csv
import math
import os
import sys
from xml.sax.saxutils import escape

W, PANEL_H = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 160
COLORS = ["#3b6ea8", "#d9822b", "#5a9e52", "#b04a4a", "#7d62a8"]


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    need = {"phase", "name", "status", "avg_logprob", "avg_entropy", "median_us", "p99_us", "cpu_median_us", "model_bytes",
            "kv_cache_bytes", "matmuls_per_token", "macs_per_token"}
    if not rows:
        sys.exit(f"{path}: no rows")
    missing = need - set(rows[0].keys())
    if missing:
        sys.exit(f"{path}: missing columns {sorted(missing)} (expected the CSV of mgpt bench ladder --csv)")
    spreads = [k for k in ("avg_logprob", "avg_entropy", "median_us", "p99_us", "cpu_median_us") if k + "_spread" in rows[0]]
    out = []
    for i, r in enumerate(rows, start=2):
        if r["status"] != "measured":
            continue
        try:
            out.append({**r, **{k: float(r[k]) for k in need - {"phase", "name", "status"}},
                        **{k + "_spread": float(r[k + "_spread"] or 0) for k in spreads}})
        except ValueError as e:
            sys.exit(f"{path}: line {i}: {e}")
    if not out:
        sys.exit(f"{path}: no measured rows")
    return out


def nice_ticks(lo, hi, n=5):
    """About n round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 2.5, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while not ticks or ticks[-1] < hi - step * 1e-9:  # the last tick covers hi
        ticks.append(round(t, 10))
        t += step
    return ticks


def fmt(v):
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{v:.2f}"


class Panel:
    """One chart area with a y axis (linear or log10) and categorical x slots."""

    def __init__(self, y0, title, ylabel, values, log=False, zero=True):
        """zero: the linear axis includes 0 (bars); lines zoom to the data's range instead."""
        self.y0, self.title, self.ylabel, self.log = y0, title, ylabel, log
        self.decimals = None
        vals = [v for v in values if v is not None and (v > 0 or not log)]
        lo, hi = (min(vals), max(vals)) if vals else (0, 1)
        if log:
            self.lo, self.hi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
            if self.hi == self.lo:
                self.hi += 1
            self.ticks = [10 ** e for e in range(self.lo, self.hi + 1)]
        else:
            pad = (hi - lo) * 0.1 or abs(hi) * 0.05 or 1
            if zero:
                lo, hi = min(lo - pad if lo < 0 else 0, 0), max(hi + pad if hi > 0 else 0, 0)
            else:
                lo, hi = lo - pad, hi + pad
            self.ticks = nice_ticks(lo, hi)
            self.lo, self.hi = self.ticks[0], self.ticks[-1]
            step = self.ticks[1] - self.ticks[0] if len(self.ticks) > 1 else 1
            self.decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if round(step / 10 ** math.floor(math.log10(step) + 1e-9), 6) == 2.5 else 0)

    def y(self, v):
        h = PANEL_H - TOP - 20
        if self.log:
            f = (math.log10(v) - self.lo) / (self.hi - self.lo)
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.y0 + TOP + h * (1 - f)

    def frame(self):
        s = [f'<text x="{W / 2}" y="{self.y0 + 22}" text-anchor="middle" font-size="15" font-weight="bold">{escape(self.title)}</text>']
        x1 = W - RIGHT
        for t in self.ticks:
            yy = self.y(t)
            s.append(f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{x1}" y2="{yy:.1f}" stroke="#ddd"/>')
            label = fmt(t) if self.decimals is None else f"{t:.{self.decimals}f}"
            s.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
        top, bottom = self.y(self.ticks[-1]), self.y(self.ticks[0])
        s.append(f'<line x1="{LEFT}" y1="{top:.1f}" x2="{LEFT}" y2="{bottom:.1f}" stroke="#333"/>')
        s.append(f'<line x1="{LEFT}" y1="{bottom:.1f}" x2="{x1}" y2="{bottom:.1f}" stroke="#333"/>')
        label = self.ylabel + (" (log scale)" if self.log else "")
        cy = (top + bottom) / 2
        s.append(f'<text x="16" y="{cy:.1f}" text-anchor="middle" font-size="12" transform="rotate(-90 16 {cy:.1f})">{escape(label)}</text>')
        return s


def slots(n):
    width = (W - LEFT - RIGHT) / n
    return [LEFT + width * (i + 0.5) for i in range(n)], width


def x_labels(rows, y):
    xs, _ = slots(len(rows))
    s = []
    for x, r in zip(xs, rows):
        text = f'{r["phase"]}: {r["name"]}'
        if len(text) > 30:
            text = text[:29] + "…"
        # Steep enough that the first label (≈ 30 chars · 5.5 px) stays inside the left margin.
        s.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="10" text-anchor="end" transform="rotate(-60 {x:.1f} {y:.1f})">{escape(text)}</text>')
    return s


def legend(items, y):
    s, x = [], LEFT + 10
    for name, color in items:
        s.append(f'<rect x="{x}" y="{y - 9}" width="12" height="12" fill="{color}"/>')
        s.append(f'<text x="{x + 16}" y="{y + 1}" font-size="11">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return s


def spread(r, key):
    """Half-range over the runs (0 without a --runs CSV or for a column read_rows did not convert)."""
    v = r.get(key + "_spread", 0.0)
    return v if isinstance(v, float) else 0.0


def error_bar(panel, x, r, key, half_width=3):
    """A vertical ± spread whisker at x (nothing when the spread is 0)."""
    v, e = r[key], spread(r, key)
    if e <= 0:
        return []
    lo, hi = v - e, v + e
    if panel.log and lo <= 0:
        lo = v / 10
    y0, y1 = panel.y(lo), panel.y(hi)
    return [f'<path d="M{x:.1f},{y0:.1f}V{y1:.1f}M{x - half_width:.1f},{y0:.1f}H{x + half_width:.1f}M{x - half_width:.1f},{y1:.1f}H{x + half_width:.1f}" '
            f'stroke="#222" stroke-width="1" fill="none"/>']


def with_spread(rows, keys):
    """Every value of `keys` and its ± spread ends: what a panel's axis must hold."""
    return [r[k] + d * spread(r, k) for r in rows for k in keys for d in (-1, 0, 1)]


def bars(panel, rows, series):
    """Grouped bars: series = [(name, key, color)]."""
    xs, width = slots(len(rows))
    bw = width * 0.8 / len(series)
    base = panel.y(panel.ticks[0]) if panel.log else panel.y(max(panel.lo, 0))
    s = []
    for k, (name, key, color) in enumerate(series):
        for x, r in zip(xs, rows):
            v = r[key]
            if panel.log and v <= 0:
                continue
            yy = panel.y(v)
            left = x - width * 0.4 + k * bw
            e = spread(r, key)
            pm = f" ± {fmt(e)}" if e > 0 else ""
            s.append(f'<rect x="{left:.1f}" y="{min(yy, base):.1f}" width="{bw - 1:.1f}" height="{abs(base - yy):.1f}" fill="{color}">'
                     f'<title>{escape(r["name"])}: {escape(name)} {fmt(v)}{pm}</title></rect>')
            s += error_bar(panel, left + (bw - 1) / 2, r, key, half_width=min(3, bw / 3))
    return s


def lines(panel, rows, key, color):
    xs, _ = slots(len(rows))
    pts = [(x, panel.y(r[key])) for x, r in zip(xs, rows)]
    s = [f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}"/>']
    for (x, y), r in zip(pts, rows):
        s += error_bar(panel, x, r, key)
        pm = f" ± {spread(r, key):.4f}" if spread(r, key) > 0 else ""
        s.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"><title>{escape(r["name"])}: {r[key]:.4f}{pm}</title></circle>')
        s.append(f'<text x="{x:.1f}" y="{y - 8:.1f}" font-size="10" text-anchor="middle">{r[key]:.3f}</text>')
    return s


def svg(height, body, caption):
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" '
            f'font-family="Helvetica, Arial, sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n')
    cap = f'<text x="{LEFT}" y="{height - 8}" font-size="10" fill="#555">{escape(caption)}</text>\n'
    return head + "\n".join(body) + "\n" + cap + "</svg>\n"


def quality(rows, caption):
    body = []
    p1 = Panel(0, "Average log-prob of the next token (nats, higher is better)", "nats", with_spread(rows, ["avg_logprob"]), zero=False)
    body += p1.frame() + lines(p1, rows, "avg_logprob", COLORS[0])
    p2 = Panel(PANEL_H, "Average entropy of the predicted distribution (nats)", "nats", with_spread(rows, ["avg_entropy"]), zero=False)
    body += p2.frame() + lines(p2, rows, "avg_entropy", COLORS[1])
    body += x_labels(rows, 2 * PANEL_H - 8)
    return svg(2 * PANEL_H + BOTTOM, body, caption)


def latency_memory(rows, caption):
    body = []
    p1 = Panel(0, "Decode latency per token (µs, lower is better)", "µs",
               [v for v in with_spread(rows, ["median_us", "p99_us", "cpu_median_us"]) if v > 0], log=True)
    series = [("wall median", "median_us", COLORS[0]), ("wall p99", "p99_us", COLORS[1]), ("CPU median", "cpu_median_us", COLORS[4])]
    body += p1.frame() + bars(p1, rows, series)
    body += legend([(n, c) for n, _, c in series], PANEL_H - 6)
    for r in rows:
        r["model_kb"], r["kv_kb"] = r["model_bytes"] / 1024, r["kv_cache_bytes"] / 1024
    p2 = Panel(PANEL_H, "Memory (KB): model parameters as stored, KV cache", "KB", [r["model_kb"] for r in rows] + [r["kv_kb"] for r in rows])
    body += p2.frame() + bars(p2, rows, [("model", "model_kb", COLORS[2]), ("KV cache", "kv_kb", COLORS[3])])
    body += legend([("model", COLORS[2]), ("KV cache", COLORS[3])], 2 * PANEL_H - 6)
    body += x_labels(rows, 2 * PANEL_H + 8)
    return svg(2 * PANEL_H + BOTTOM + 16, body, caption)


def matmuls(rows, caption):
    body = []
    p1 = Panel(0, "Matrix products per decoded token", "matmuls", [r["matmuls_per_token"] for r in rows], log=True)
    body += p1.frame() + bars(p1, rows, [("matmuls", "matmuls_per_token", COLORS[0])])
    p2 = Panel(PANEL_H, "Multiply-adds per decoded token", "MACs", [r["macs_per_token"] for r in rows], log=True)
    body += p2.frame() + bars(p2, rows, [("MACs", "macs_per_token", COLORS[4])])
    body += x_labels(rows, 2 * PANEL_H - 8)
    return svg(2 * PANEL_H + BOTTOM, body, caption)


def quality_vs_memory(rows, caption):
    mem = [(r["model_bytes"] + r["kv_cache_bytes"]) / 1024 for r in rows]
    lp = [r["avg_logprob"] for r in rows]
    h = 420
    py = Panel(0, "Quality vs memory (model + KV cache)", "avg log-prob (nats)", lp, zero=False)
    py_scale = (h - 60 - TOP) / (PANEL_H - TOP - 20)
    xt = nice_ticks(0, max(mem) * 1.1)
    x0, x1 = LEFT, W - RIGHT

    def X(v):
        return x0 + (x1 - x0) * (v - xt[0]) / (xt[-1] - xt[0])

    def Y(v):
        return TOP + (py.y(v) - TOP) * py_scale

    body = [f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{escape(py.title)}</text>']
    for t in py.ticks:
        body.append(f'<line x1="{x0}" y1="{Y(t):.1f}" x2="{x1}" y2="{Y(t):.1f}" stroke="#ddd"/>')
        body.append(f'<text x="{x0 - 6}" y="{Y(t) + 4:.1f}" text-anchor="end" font-size="11">{t:.{py.decimals}f}</text>')
    yb = Y(py.ticks[0])
    for t in xt:
        body.append(f'<line x1="{X(t):.1f}" y1="{TOP}" x2="{X(t):.1f}" y2="{yb:.1f}" stroke="#eee"/>')
        body.append(f'<text x="{X(t):.1f}" y="{yb + 16:.1f}" text-anchor="middle" font-size="11">{fmt(t)}</text>')
    body.append(f'<line x1="{x0}" y1="{TOP}" x2="{x0}" y2="{yb:.1f}" stroke="#333"/>')
    body.append(f'<line x1="{x0}" y1="{yb:.1f}" x2="{x1}" y2="{yb:.1f}" stroke="#333"/>')
    body.append(f'<text x="{(x0 + x1) / 2}" y="{yb + 34:.1f}" text-anchor="middle" font-size="12">memory (KB)</text>')
    body.append(f'<text x="16" y="{(TOP + yb) / 2:.1f}" text-anchor="middle" font-size="12" transform="rotate(-90 16 {(TOP + yb) / 2:.1f})">avg log-prob (nats)</text>')
    # Point labels: the phase, with a, b, c… when several rows share it (names in the hover title).
    seen = {}
    for r in rows:
        seen[r["phase"]] = seen.get(r["phase"], 0) + 1
    count = {}
    for r in rows:
        k = count[r["phase"]] = count.get(r["phase"], 0) + 1
        r["tag"] = r["phase"] + ("abcdefghij"[k - 1] if seen[r["phase"]] > 1 else "")
    for i, (r, m, q) in enumerate(zip(rows, mem, lp)):
        body.append(f'<circle cx="{X(m):.1f}" cy="{Y(q):.1f}" r="5" fill="{COLORS[0]}"><title>{escape(r["name"])}: {m:.0f} KB, {q:.4f}</title></circle>')
        dy = -8 if i % 2 == 0 else 16
        body.append(f'<text x="{X(m) + 6:.1f}" y="{Y(q) + dy:.1f}" font-size="10">{escape(r["tag"])}</text>')
    return svg(h + 20, body, caption)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", help="CSV written by mgpt bench ladder --csv")
    ap.add_argument("--out", default="docs/plots", help="output folder")
    ap.add_argument("--prefix", default="ladder", help="file name prefix")
    a = ap.parse_args()
    rows = read_rows(a.csv)
    os.makedirs(a.out, exist_ok=True)
    caption = f"Data: {a.csv} (mgpt bench ladder). Labels: phase: name (scatter: phase, a/b/c in table order)."
    if any(spread(r, k) > 0 for r in rows for k in ("avg_logprob", "median_us")):
        caption += f" Whiskers: ± half-range over the {rows[0].get('runs', 'N')} runs."
    charts = {"quality": quality, "latency-memory": latency_memory, "matmuls": matmuls, "quality-vs-memory": quality_vs_memory}
    for name, fn in charts.items():
        path = os.path.join(a.out, f"{a.prefix}-{name}.svg")
        with open(path, "w", encoding="utf-8") as f:
            f.write(fn([dict(r) for r in rows], caption))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
