#!/usr/bin/env python3
"""Turns scripts/bench results (JSON lines from lanchat-load) into a table, the broadcast
section of BENCHMARKS.md and docs/bench.svg. With --smoke it only prints the table and fails
if LAN Chat lost messages or delivered nothing."""

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The machine's floor: one small write to a loopback socket, with the reader spinning and
# with it waiting for data (bench/src/write_floor.rs).
FLOOR = None
NAMES = {"lanchat": "LAN Chat (TLS)", "lanchat-plain": "LAN Chat, clear text (before TLS)",
         "socketio": "socket.io", "ws": "ws"}
COLORS = {"lanchat": "#2f6fed", "lanchat-plain": "#9bb8f5", "socketio": "#d9534f", "ws": "#5cb85c"}


def load(path):
    runs, idle, join = [], {}, {}
    global FLOOR
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        kind = r.get("kind")
        if kind == "idle":
            idle[r["protocol"]] = r
        elif kind == "join":
            join[r["protocol"]] = r
        elif kind == "floor":
            FLOOR = r
        else:
            runs.append(r)
    return runs, idle, join


def table(runs, idle, join):
    lines = [
        "| server | offered deliveries/s | delivered/s | p50 ms | p99 ms | max ms | lost | server CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            "| {} | {:,.0f} | {:,.0f} | {:.2f} | {:.2f} | {:.2f} | {:,} | {:.1f} | {:.0f} |".format(
                NAMES[r["protocol"]], r["offered_deliveries_per_s"], r["deliveries_per_s"],
                r["p50_ms"], r["p99_ms"], r["max_ms"], r["lost"],
                r["server_cpu_s"] or 0, (r["server_peak_rss_kb"] or 0) / 1024))
    lines += ["", "| server | idle memory per connection | clients joined | time to join them all |",
              "|---|---:|---:|---:|"]
    for p in [p for p in NAMES if p in idle or p in join]:
        i, j = idle.get(p), join.get(p)
        lines.append("| {} | {} | {} | {} |".format(
            NAMES[p],
            "{:.1f} kB (at {:,} connections)".format(i["server_rss_per_client_kb"], i["clients"])
            if i and i.get("server_rss_per_client_kb") is not None else "-",
            "{:,}".format(j["clients"]) if j else "-",
            "{:.2f} s".format(j["connect_s"]) if j else "-"))
    if FLOOR:
        lines += ["", "The floor on this machine (`write-floor`: no runtime on the writing side, no "
                  "WebSocket, one thread writing {} bytes to each of {:,} loopback sockets): {:.1f} µs "
                  "per write while the reader spins, {:.1f} µs while each reader waits for data as a "
                  "client does. One message to {:,} members takes that thread {:.1f} ms; split "
                  "perfectly over both cores with nothing else running, the last member gets it "
                  "{:.1f} ms after it was sent.".format(
                      FLOOR["bytes"], FLOOR["sockets"], FLOOR["median_write_us"],
                      FLOOR["median_write_waiting_us"], FLOOR["sockets"],
                      FLOOR["fan_out_waiting_ms"], FLOOR["fan_out_waiting_ms"] / 2)]
    return "\n".join(lines)


def human(v):
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if v >= size:
            return f"{v / size:g}{unit}"
    return f"{v:g}"


def svg(runs):
    """Two log-log panels: delivered rate and p99 latency against offered load."""
    w, h, pad = 460, 320, 64
    series = {}
    for r in runs:
        series.setdefault(r["protocol"], []).append(r)
    xs = [r["offered_deliveries_per_s"] for r in runs]
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))
    x1 = x1 if x1 > x0 else x0 + 1

    def panel(ox, key, title, ylabel):
        ys = [max(r[key], 0.01) for r in runs]
        y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
        y1 = y1 if y1 > y0 else y0 + 1
        X = lambda v: ox + pad + (math.log10(v) - x0) / (x1 - x0) * (w - 2 * pad)
        Y = lambda v: h - pad - (math.log10(max(v, 0.01)) - y0) / (y1 - y0) * (h - 2 * pad)
        out = [f'<text x="{ox + w / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>',
               f'<rect x="{ox + pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" fill="none" stroke="#999"/>']
        for e in range(y0, y1 + 1):
            y = Y(10 ** e)
            out.append(f'<line x1="{ox + pad}" x2="{ox + w - pad}" y1="{y}" y2="{y}" stroke="#eee"/>')
            out.append(f'<text x="{ox + pad - 6}" y="{y + 4}" text-anchor="end" font-size="11">{human(10 ** e)}</text>')
        # One tick per load level (the protocols' offered rates differ by the sender's own copy).
        for v in sorted({float(f"{x:.1g}") for x in xs}):
            x = X(v)
            out.append(f'<text x="{x}" y="{h - pad + 16}" text-anchor="middle" font-size="10">{human(v)}</text>')
        out.append(f'<text x="{ox + w / 2}" y="{h - 12}" text-anchor="middle" font-size="12">offered deliveries/s</text>')
        out.append(f'<text x="{ox + 14}" y="{h / 2}" font-size="12" transform="rotate(-90 {ox + 14} {h / 2})" text-anchor="middle">{ylabel}</text>')
        for p, rs in series.items():
            pts = " ".join(f"{X(r['offered_deliveries_per_s']):.1f},{Y(max(r[key], 0.01)):.1f}"
                           for r in sorted(rs, key=lambda r: r["offered_deliveries_per_s"]))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS[p]}" stroke-width="2"/>')
            for pt in pts.split():
                cx, cy = pt.split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{COLORS[p]}"/>')
        return out

    body = panel(0, "deliveries_per_s", "Delivered rate", "deliveries/s")
    body += panel(w, "p99_ms", "p99 latency", "ms")
    legend = []
    for i, p in enumerate(series):
        legend.append(f'<rect x="{pad + i * 120}" y="{h + 4}" width="12" height="12" fill="{COLORS[p]}"/>')
        legend.append(f'<text x="{pad + i * 120 + 18}" y="{h + 15}" font-size="12">{NAMES[p]}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w}" height="{h + 24}" '
            f'font-family="sans-serif" viewBox="0 0 {2 * w} {h + 24}">'
            f'<rect width="100%" height="100%" fill="white"/>' + "".join(body + legend) + "</svg>\n")


def main():
    args = sys.argv[1:]
    smoke = "--smoke" in args
    args = [a for a in args if a != "--smoke"]
    path, machine, versions = args
    runs, idle, join = load(path)
    text = table(runs, idle, join)
    print(text)
    if smoke:
        ours = [r for r in runs if r["protocol"] == "lanchat"]
        bad = [r for r in ours if r["lost"] != 0 or r["deliveries"] == 0]
        if not ours or bad:
            sys.exit(f"bench smoke: LAN Chat lost messages or delivered none: {bad or 'no runs'}")
        return
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "bench.svg").write_text(svg(runs))
    if Path(path).resolve() != (ROOT / "docs" / "bench-results.jsonl").resolve():
        (ROOT / "docs" / "bench-results.jsonl").write_text(Path(path).read_text())
    bench = ROOT / "BENCHMARKS.md"
    doc = bench.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    section = (f"{start}\nMeasured by `scripts/bench` on {machine}; {versions}. "
               "1,000 clients in one room, 10 of them sending ~80-byte messages for 5 s per load, "
               "a fresh server per load, the load generator on the same machine.\n\n"
               "\"lost\" counts deliveries that had not arrived 3 s after sending stopped (socket.io "
               "and ws queue without bound, so past their capacity messages arrive seconds late "
               "rather than never). Raw figures: [docs/bench-results.jsonl](docs/bench-results.jsonl).\n\n"
               f"{text}\n\n![Delivered rate and p99 latency against offered load](docs/bench.svg)\n{end}")
    if start in doc:
        doc = doc[: doc.index(start)] + section + doc[doc.index(end) + len(end):]
    else:
        doc += "\n" + section + "\n"
    bench.write_text(doc)
    print("\nwrote BENCHMARKS.md and docs/bench.svg")


if __name__ == "__main__":
    main()
