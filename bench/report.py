#!/usr/bin/env python3
"""Numbers for bench/run.sh.

  report.py row CSV ROUND SCENARIO LIB WRK_OUT BEFORE AFTER USER0 SYS0 USER1 SYS1 CLK_TCK
      (the server's user-space and kernel CPU ticks before and after the run)
      append one run's row to CSV (header written if the file is new); prints a one-line summary
  report.py mem MEM_CSV LIB KIND SIZES_FILE
      append a memory row (median of the integers in SIZES_FILE) to MEM_CSV
  report.py census CENSUS_CSV SCENARIO LIB N MONITOR_FILE
      append the MONITOR census of N sequential requests: commands the app sent vs commands run
      inside scripts (MONITOR marks those with "lua]")
  report.py table CSV MEM_CSV CENSUS_CSV HEADER_FILE LIBS...
      print the markdown report (medians over rounds)
  report.py chart CSV OUT_SVG LIBS... [--title TEXT] [--date TEXT]
      write the table's req/s and Redis CPU per request (medians over rounds) as an SVG bar
      chart: one group of bars per scenario, one bar per library, two panels; standard library
      only, hand-written SVG (TEXT: the command and the date, shown under the title)

BEFORE/AFTER are `redis-cli INFO cpu commandstats stats clients` snapshots taken right before and
after the measured wrk run; the `info` calls of those snapshots are excluded from the command
counts. A snapshot may hold one INFO per Redis node, one after the other (ours-cluster: the 3
Cluster masters); CPU, command calls, read events and clients are then summed over the nodes.
The MONITOR file of a census may likewise be the concatenation of every node's MONITOR.
"""
import csv
import math
import os
import statistics
import sys

FIELDS = [
    "round", "scenario", "lib", "requests", "duration_s", "rps", "non2xx", "socket_errors",
    "app_us_per_req", "app_kernel_us_per_req", "redis_ms_per_1k", "redis_cmds_per_req", "cmds", "p50_us", "p99_us",
    "redis_reads_per_req", "redis_clients", "redis_nodes",
]
NAMES = {"ours": "ours", "ours-cluster": "ours (Cluster)", "ours-resonance": "ours (resonance)", "tower": "tower-sessions",
         "actix": "actix-session"}
SCENARIO_ORDER = ["untouched", "plain", "read-hot", "read-many", "modify-hot", "modify-many",
                  "locked-hot", "locked-many", "new"]
SCENARIO_TEXT = {
    "untouched": "untouched `GET /` (valid cookie sent)",
    "plain": "`GET /plain` (no session layer)",
    "read-hot": "read, 1 hot session",
    "read-many": "read, 1,000 sessions",
    "modify-hot": "modify, 1 hot session",
    "modify-many": "modify, 1,000 sessions",
    "locked-hot": "locked modify (`/incr-locked`), 1 hot session",
    "locked-many": "locked modify (`/incr-locked`), 1,000 sessions",
    "new": "new session per request",
}
IGNORED_CMDS = {"info"}


def is_cluster(lib):
    return lib.split("+", 1)[0] == "ours-cluster"


def parse_info(path):
    """CPU seconds, command calls and read events/clients, summed over the nodes in the file;
    extra["nodes"] is how many nodes the file holds."""
    cpu, cmds, extra = 0.0, {}, {"nodes": 0}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("used_cpu_sys:") or line.startswith("used_cpu_user:"):
                if "children" not in line and "main_thread" not in line:
                    cpu += float(line.split(":", 1)[1])
            elif line.startswith("total_reads_processed:") or line.startswith("connected_clients:"):
                k, v = line.split(":", 1)
                extra[k] = extra.get(k, 0) + int(v)
                if k == "connected_clients":
                    extra["nodes"] += 1
            elif line.startswith("cmdstat_"):
                name, rest = line[len("cmdstat_"):].split(":", 1)
                fields = dict(kv.split("=", 1) for kv in rest.split(","))
                cmds[name] = cmds.get(name, 0) + int(fields["calls"])
    return cpu, cmds, extra


def parse_wrk(path):
    with open(path) as f:
        for line in f:
            if line.startswith("BENCH "):
                return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    raise SystemExit(f"report.py: no BENCH line in {path} (wrk failed?)")


def row(args):
    csv_path, rnd, scenario, lib, wrk_out, before, after, u0, s0, u1, s1, clk = args
    w = parse_wrk(wrk_out)
    cpu0, c0, x0 = parse_info(before)
    cpu1, c1, x1 = parse_info(after)
    req = max(w["requests"], 1)
    dur = w["duration_us"] / 1e6
    deltas = {k: c1.get(k, 0) - c0.get(k, 0) for k in set(c0) | set(c1) if k not in IGNORED_CMDS}
    deltas = {k: v for k, v in deltas.items() if v > 0}
    total_cmds = sum(deltas.values())
    cmds = " ".join(f"{k}:{v / req:.2f}" for k, v in sorted(deltas.items(), key=lambda kv: (-kv[1], kv[0])))
    tick_us = 1e6 / int(clk)
    kernel_us = (int(s1) - int(s0)) * tick_us / req
    app_us = (int(u1) - int(u0)) * tick_us / req + kernel_us
    r = {
        "round": rnd, "scenario": scenario, "lib": lib, "requests": w["requests"],
        "duration_s": f"{dur:.3f}", "rps": f"{w['requests'] / dur:.0f}",
        "non2xx": w["status_errors"],
        "socket_errors": w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"],
        "app_us_per_req": f"{app_us:.2f}", "app_kernel_us_per_req": f"{kernel_us:.2f}",
        "redis_ms_per_1k": f"{(cpu1 - cpu0) * 1000 / (req / 1000):.2f}",
        "redis_cmds_per_req": f"{total_cmds / req:.2f}",
        "cmds": cmds or "-", "p50_us": w["p50_us"], "p99_us": w["p99_us"],
        # read events: one per read() of a client socket, however many commands it carried
        # (the snapshot's own INFO connection adds 1 read, negligible)
        "redis_reads_per_req": f"{(x1.get('total_reads_processed', 0) - x0.get('total_reads_processed', 0)) / req:.3f}",
        # clients connected at the end, minus the redis-cli taking the snapshot (one per node)
        "redis_clients": x1.get("connected_clients", 1) - max(x1["nodes"], 1),
        "redis_nodes": max(x1["nodes"], 1),
    }
    new = not os.path.exists(csv_path)
    with open(csv_path, "a", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            wr.writeheader()
        wr.writerow(r)
    warn = ""
    if r["non2xx"] or r["socket_errors"]:
        warn = f"  WARNING: {r['non2xx']} non-2xx, {r['socket_errors']} socket errors"
    print(f"  {scenario:<12} {NAMES.get(lib, lib):<15} {r['rps']:>7} req/s  app {r['app_us_per_req']:>6} us/req"
          f" ({r['app_kernel_us_per_req']} in the kernel)"
          f"  redis {r['redis_ms_per_1k']:>6} ms/1k  {r['redis_cmds_per_req']} cmds/req ({cmds or '-'}){warn}")


def mem(args):
    mem_csv, lib, kind, sizes_file = args
    with open(sizes_file) as f:
        sizes = [int(x) for x in f.read().split() if x.strip().lstrip("-").isdigit()]
    new = not os.path.exists(mem_csv)
    with open(mem_csv, "a", newline="") as f:
        wr = csv.writer(f)
        if new:
            wr.writerow(["lib", "kind", "keys", "median_bytes", "min_bytes", "max_bytes"])
        if sizes:
            wr.writerow([lib, kind, len(sizes), int(statistics.median(sizes)), min(sizes), max(sizes)])
        else:
            wr.writerow([lib, kind, 0, "", "", ""])


def census(args):
    census_csv, scenario, lib, n, monitor_file = args
    n = int(n)
    top, inner = {}, {}
    with open(monitor_file, errors="replace") as f:
        for line in f:
            # 1700000000.123456 [0 127.0.0.1:5555] "HGETALL" "key"   /   [0 lua] "HSET" ...
            if "] \"" not in line:
                continue
            src, rest = line.split("] \"", 1)
            name = rest.split("\"", 1)[0].lower()
            d = inner if src.endswith("lua") else top
            d[name] = d.get(name, 0) + 1
    fmt_d = lambda d: " ".join(f"{k}:{v / n:.2f}" for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))) or "-"
    new = not os.path.exists(census_csv)
    with open(census_csv, "a", newline="") as f:
        wr = csv.writer(f)
        if new:
            wr.writerow(["scenario", "lib", "requests", "sent_per_req", "in_scripts_per_req", "sent", "in_scripts"])
        wr.writerow([scenario, lib, n, f"{sum(top.values()) / n:.2f}", f"{sum(inner.values()) / n:.2f}",
                     fmt_d(top), fmt_d(inner)])


def med(values):
    vals = [float(v) for v in values if v not in ("", None)]
    return statistics.median(vals) if vals else None


def round_ratios(by, scenario, peers):
    """Ours / best peer's req/s within each round: runs of one round follow each other within
    seconds, so the machine's slower drifts (another tenant, a compile next door) cancel out."""
    per_round = {}
    for lib in ["ours"] + peers:
        for r in by.get((scenario, lib), []):
            per_round.setdefault(r["round"], {})[lib] = float(r["rps"])
    best = [(v["ours"], max((v[p] for p in peers if p in v), default=0))
            for v in per_round.values() if "ours" in v]
    return [ours / peer for ours, peer in best if peer > 0]


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def table(args):
    csv_path, mem_csv, census_csv, header_file, libs = args[0], args[1], args[2], args[3], args[4:]
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    cens = {}
    if os.path.exists(census_csv):
        with open(census_csv) as f:
            for r in csv.DictReader(f):
                cens[(r["scenario"], r["lib"])] = r
    by = {}
    for r in rows:
        by.setdefault((r["scenario"], r["lib"]), []).append(r)
    out = []
    with open(header_file) as f:
        out.append(f.read().rstrip())
    out.append("")
    peers = [l for l in libs if l != "ours" and not is_cluster(l)]
    clusters = [l for l in libs if is_cluster(l)]
    # Redis nodes behind each library (1, or the Cluster's masters), from the snapshots
    nodes = {l: int(med(r.get("redis_nodes") or 1 for r in rows if r["lib"] == l) or 1) for l in libs}
    rounds = sorted({int(r["round"]) for r in rows})
    per_round = ("; \"per round\": that ratio within each round (the libraries of a round run back"
                 " to back, so the machine's slow drifts cancel)") if len(rounds) > 1 else ""
    out.append(f"Medians over {len(rounds)} round(s). Ratio = ours / best peer in req/s (above 1: ours"
               f" is faster){per_round}. Per-request costs are listed as"
               f" {' / '.join(NAMES.get(l, l) for l in libs)}; lower is better.")
    for l in clusters:
        out.append(f"{NAMES.get(l, l)} is our counter against a Redis Cluster of {nodes[l]} masters: its"
                   f" Redis CPU, commands, read events, connections, census and memory are summed over"
                   f" the Cluster's {nodes[l]} nodes (`INFO` of each node before and after the run).")
    out.append("")
    cols = ["scenario"] + [f"{NAMES.get(l, l)} req/s" for l in libs]
    if "ours" in libs and peers:
        cols.append("ours / best peer")
        if len(rounds) > 1:
            cols.append("per round (min / median / max)")
    libs_short = " / ".join(NAMES.get(l, l) for l in libs)
    summed = "; Cluster: sum over its nodes" if clusters else ""
    cols += [f"app µs/req ({libs_short})", f"of which in the kernel ({libs_short})",
             f"Redis ms/1k req ({libs_short}{summed})",
             f"Redis cmds/req ({libs_short}{summed})"]
    out.append("| " + " | ".join(cols) + " |")
    out.append("|" + "---|" * len(cols))
    scenarios = [s for s in SCENARIO_ORDER if any((s, l) in by for l in libs)]
    warnings = []
    for s in scenarios:
        if s == "plain" or s.startswith("locked-"):
            continue
        cells = [SCENARIO_TEXT.get(s, s)]
        rps = {l: med(r["rps"] for r in by.get((s, l), [])) for l in libs}
        cells += [fmt(rps[l]) for l in libs]
        if "ours" in libs and peers:
            best = max((rps[p] for p in peers if rps[p]), default=None)
            cells.append(f"{rps['ours'] / best:.2f}" if rps["ours"] and best else "-")
            if len(rounds) > 1:
                per = round_ratios(by, s, peers)
                cells.append(f"{min(per):.2f} / {statistics.median(per):.2f} / {max(per):.2f}"
                             if per else "-")
        for key, d in (("app_us_per_req", 1), ("app_kernel_us_per_req", 1), ("redis_ms_per_1k", 1)):
            cells.append(" / ".join(fmt(med(r.get(key) for r in by.get((s, l), [])), d) for l in libs))
        cmd_cells = []
        for l in libs:
            c = fmt(med(r["redis_cmds_per_req"] for r in by.get((s, l), [])), 2)
            ce = cens.get((s, l))
            if ce and float(ce["in_scripts_per_req"]) > 0:
                c += f" ({float(ce['sent_per_req']):.2f} sent)"
            cmd_cells.append(c)
        cells.append(" / ".join(cmd_cells))
        out.append("| " + " | ".join(cells) + " |")
    for (s, l), rs in by.items():
        for r in rs:
            if int(r["non2xx"]) or int(r["socket_errors"]):
                warnings.append(f"round {r['round']} {s} {NAMES.get(l, l)}: {r['non2xx']} non-2xx,"
                                f" {r['socket_errors']} socket errors")
    out.append("")
    # which commands
    out.append("Redis commands per request, by command. `INFO commandstats` (the cmds/req column) counts"
               " the commands a script runs as well as the script call itself, so where a census is"
               " available the cells below show what the app sent and, after \"in scripts:\", what"
               " ran inside its scripts (from `MONITOR` over 200 sequential requests after round 1's"
               " run; pipelined commands are still counted one by one). Otherwise: commandstats,"
               " median over rounds.")
    out.append("")
    out.append("| scenario | " + " | ".join(NAMES.get(l, l) for l in libs) + " |")
    out.append("|---|" + "---|" * len(libs))
    for s in scenarios:
        cells = [SCENARIO_TEXT.get(s, s)]
        for l in libs:
            per = {}
            for r in by.get((s, l), []):
                if r["cmds"] == "-":
                    continue
                for kv in r["cmds"].split():
                    k, v = kv.rsplit(":", 1)
                    per.setdefault(k, []).append(float(v))
            n = len(by.get((s, l), []))
            # a command missing from a round counts as 0 in that round
            items = sorted(((k, statistics.median(v + [0.0] * (n - len(v)))) for k, v in per.items()),
                           key=lambda kv: (-kv[1], kv[0]))
            ce = cens.get((s, l))
            if ce:
                fmt_c = lambda t: " ".join(f"`{kv.rsplit(':', 1)[0]}` {kv.rsplit(':', 1)[1]}"
                                           for kv in t.split()) if t != "-" else "none"
                cell = fmt_c(ce["sent"])
                if ce["in_scripts"] != "-":
                    cell += "; in scripts: " + fmt_c(ce["in_scripts"])
                cells.append(cell)
                continue
            cells.append(" ".join(f"`{k}` {v:.2f}" for k, v in items if v >= 0.005) or "none"
                         if n else "-")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Redis I/O: read events per request (one per `read()` of a client socket, however many"
               " pipelined commands it carried: fewer means more batching, which is most of Redis's CPU"
               " per request at this load) and client connections open (all servers stay connected"
               " to the one Redis; each server's own count is its pool"
               + ("; the Cluster's connections are its own, summed over its nodes" if clusters else "")
               + "):")
    out.append("")
    out.append("| scenario | " + " | ".join(f"{NAMES.get(l, l)} reads/req" for l in libs) + " | connections |")
    out.append("|---|" + "---|" * len(libs) + "---|")
    for s_ in scenarios:
        cells = [SCENARIO_TEXT.get(s_, s_)]
        cells += [fmt(med(r.get("redis_reads_per_req") for r in by.get((s_, l), [])), 3) for l in libs]
        conns = [r.get("redis_clients") for l in libs if not is_cluster(l) for r in by.get((s_, l), [])]
        cell = fmt(med(conns), 0) if conns else ""
        for l in clusters:
            cc = med(r.get("redis_clients") for r in by.get((s_, l), []))
            if cc is not None:
                cell += f"{'; ' if cell else ''}{NAMES.get(l, l)}: {fmt(cc, 0)}"
        cells.append(cell or "-")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    for l in clusters:
        if "ours" not in libs:
            break
        out.append(f"Redis Cluster against one server (ours, same counter, same `pool_size`, same run):"
                   f" Redis CPU per request summed over the Cluster's {nodes[l]} masters against the one"
                   f" server's; above 1 the Cluster costs more:")
        out.append("")
        out.append("| scenario | one server req/s | Cluster req/s | Cluster / one | app µs/req (one / Cluster)"
                   " | Redis ms/1k req (one / Cluster) | Cluster / one | Redis reads/req (one / Cluster) |")
        out.append("|---|---|---|---|---|---|---|---|")
        for s_ in scenarios:
            if not by.get((s_, "ours")) or not by.get((s_, l)):
                continue
            m = {k: (med(r[k] for r in by[(s_, "ours")]), med(r[k] for r in by[(s_, l)]))
                 for k in ("rps", "app_us_per_req", "redis_ms_per_1k", "redis_reads_per_req")}
            ratio = lambda k: f"{m[k][1] / m[k][0]:.2f}" if m[k][0] and m[k][1] else "-"
            out.append(f"| {SCENARIO_TEXT.get(s_, s_)} | {fmt(m['rps'][0])} | {fmt(m['rps'][1])} |"
                       f" {ratio('rps')} | {fmt(m['app_us_per_req'][0], 1)} / {fmt(m['app_us_per_req'][1], 1)} |"
                       f" {fmt(m['redis_ms_per_1k'][0], 1)} / {fmt(m['redis_ms_per_1k'][1], 1)} |"
                       f" {ratio('redis_ms_per_1k')} |"
                       f" {fmt(m['redis_reads_per_req'][0], 3)} / {fmt(m['redis_reads_per_req'][1], 3)} |")
        out.append("")
    if ("plain", "ours") in by and ("untouched", "ours") in by:
        u = med(r["rps"] for r in by[("untouched", "ours")])
        p = med(r["rps"] for r in by[("plain", "ours")])
        ua = med(r["app_us_per_req"] for r in by[("untouched", "ours")])
        pa = med(r["app_us_per_req"] for r in by[("plain", "ours")])
        out.append("Session layer overhead on a route that never asks for the session (ours; target:"
                   " within 5%):")
        out.append("")
        out.append("| route | req/s | app µs/req |")
        out.append("|---|---|---|")
        out.append(f"| `GET /` with session layer, valid cookie sent | {fmt(u)} | {fmt(ua, 1)} |")
        out.append(f"| `GET /plain` without session layer | {fmt(p)} | {fmt(pa, 1)} |")
        out.append(f"| ratio `/` / `/plain` | {u / p:.3f} | {ua / pa:.3f} |" if u and p and ua and pa
                   else "| ratio | - | - |")
        out.append("")
    locked = [(f"locked-{m}", f"modify-{m}") for m in ("hot", "many")
              if (f"locked-{m}", "ours") in by and (f"modify-{m}", "ours") in by]
    if locked:
        out.append("The opt-in session lock (ours): `/incr-locked` against `/incr`, same sessions, same"
                   " run. With one hot session all 64 connections queue on one lock:")
        out.append("")
        out.append("| scenario | req/s | unlocked req/s | locked / unlocked | app µs/req | Redis ms/1k req |")
        out.append("|---|---|---|---|---|---|")
        for lk, un in locked:
            lr = med(r["rps"] for r in by[(lk, "ours")])
            ur = med(r["rps"] for r in by[(un, "ours")])
            la = med(r["app_us_per_req"] for r in by[(lk, "ours")])
            lc = med(r["redis_ms_per_1k"] for r in by[(lk, "ours")])
            ratio = f"{lr / ur:.2f}" if lr and ur else "-"
            out.append(f"| {SCENARIO_TEXT[lk]} | {fmt(lr)} | {fmt(ur)} | {ratio} | {fmt(la, 1)} |"
                       f" {fmt(lc, 1)} |")
        out.append("")
    if os.path.exists(mem_csv):
        with open(mem_csv) as f:
            mrows = list(csv.DictReader(f))
        out.append("Redis memory per session (`MEMORY USAGE key SAMPLES 0`, bytes; same data for every"
                   " library):")
        out.append("")
        out.append("| data | " + " | ".join(NAMES.get(l, l) for l in libs) + " |")
        out.append("|---|" + "---|" * len(libs))
        kinds = [("one", "1 integer (`/incr` once), median over 1,000 sessions"),
                 ("basket", "3 integer keys `a`, `b`, `c` (stand-in for a 3-line basket), 1 session")]
        for kind, text in kinds:
            cells = [text]
            for l in libs:
                m = [r for r in mrows if r["lib"] == l and r["kind"] == kind]
                if m and m[-1]["median_bytes"]:
                    cells.append(f"{m[-1]['median_bytes']} ({m[-1]['keys']} keys)"
                                 if kind == "one" else m[-1]["median_bytes"])
                else:
                    cells.append("-")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if warnings:
        out.append("WARNINGS (must be zero):")
        out.extend(f"- {w}" for w in warnings)
        out.append("")
    print("\n".join(out))


# ---------------------------------------------------------------- chart (SVG, standard library)
CHART_TEXT = {
    "untouched": "untouched GET /", "read-hot": "read, 1 hot session",
    "read-many": "read, 1,000 sessions", "modify-hot": "modify, 1 hot session",
    "modify-many": "modify, 1,000 sessions", "new": "new session",
}
# known libraries keep their colour in every chart; others (tuning variants) take the palette
CHART_COLOURS = {"ours": "#1f5fa8", "ours-cluster": "#7fb2e5", "ours-resonance": "#6a3d9a", "tower": "#e07b00", "actix": "#2a9d3a"}
CHART_PALETTE = ["#8e44ad", "#c0392b", "#7f6a00", "#d35e9f", "#555555", "#17a2b8"]
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"


def esc(t):
    return (str(t).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def text_w(t, size):
    """Rough width of t in px at font size `size` (DejaVu Sans averages ~0.6 em)."""
    return len(str(t)) * size * 0.6


def wrap(t, size, width):
    lines, cur = [], ""
    for word in str(t).split(" "):
        if cur and text_w(cur + " " + word, size) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    return lines + ([cur] if cur else [])


def nice_ticks(vmax, n=4):
    """Round tick values from 0 covering vmax with about n steps."""
    if not vmax or vmax <= 0:
        return [0, 1]
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks, v = [], 0.0
    while v < vmax + step * 0.999:
        ticks.append(v)
        v += step
    return ticks


def chart(args):
    title, date, rest = "", "", []
    it = iter(args)
    for a in it:
        if a == "--title":
            title = next(it, "")
        elif a == "--date":
            date = next(it, "")
        else:
            rest.append(a)
    csv_path, out_path, libs = rest[0], rest[1], rest[2:]
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    if not libs:
        libs = list(dict.fromkeys(r["lib"] for r in rows))
    by = {}
    for r in rows:
        by.setdefault((r["scenario"], r["lib"]), []).append(r)
    # the table's rows: the six scenarios (no `plain`, no `locked-*`)
    scenarios = [s for s in SCENARIO_ORDER if s != "plain" and not s.startswith("locked-")
                 and any((s, l) in by for l in libs)]
    rounds = len({r["round"] for r in rows})
    panels = [("rps", ("Throughput", "req/s, higher is better"), 0),
              ("redis_ms_per_1k", ("Redis CPU per request", "ms per 1,000 requests, lower is better"), 1)]
    val = {(k, s, l): med(r[k] for r in by.get((s, l), [])) for k, _, _ in panels
           for s in scenarios for l in libs}
    colours, spare = {}, iter(CHART_PALETTE * 3)
    for l in libs:
        colours[l] = CHART_COLOURS.get(l) or next(spare)

    W, left, right, gap = 800, 150, 12, 26
    pw = (W - left - right - gap) / 2          # panel width
    bh, bgap, ggap = 13, 2, 14                 # bar height, between bars, between scenarios
    o = []                                     # SVG elements
    y = 26
    o.append(f'<text x="{W / 2}" y="{y}" text-anchor="middle" font-size="16" font-weight="bold">'
             f'Session libraries: req/s and Redis CPU per request</text>')
    y += 8
    sub = []
    if title:
        sub += wrap(title, 10.5, W - 40)
    meta = f"median over {rounds} round(s)" + (f"; {date}" if date else "")
    sub += wrap(meta, 10.5, W - 40)
    for line in sub:
        y += 14
        o.append(f'<text x="{W / 2}" y="{y}" text-anchor="middle" font-size="10.5" fill="#333" '
                 f'font-family="DejaVu Sans Mono, monospace">{esc(line)}</text>')
    # legend, flowing over as many lines as it needs
    y += 22
    x = 20
    for l in libs:
        name = NAMES.get(l, l)
        wd = 16 + text_w(name, 12) + 18
        if x + wd > W - 10 and x > 20:
            x, y = 20, y + 18
        o.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colours[l]}"/>')
        o.append(f'<text x="{x + 16}" y="{y}" font-size="12">{esc(name)}</text>')
        x += wd
    # panel headers
    y += 26
    px = [left, left + pw + gap]
    for (key, (head, unit), i) in panels:
        o.append(f'<text x="{px[i] + pw / 2}" y="{y}" text-anchor="middle" font-size="12.5" '
                 f'font-weight="bold">{esc(head)}</text>')
        o.append(f'<text x="{px[i] + pw / 2}" y="{y + 14}" text-anchor="middle" font-size="11" '
                 f'fill="#333">{esc(unit)}</text>')
    y += 24
    top = y
    group_h = len(libs) * (bh + bgap) - bgap
    height_bars = len(scenarios) * (group_h + ggap) - ggap
    bottom = top + height_bars
    for (key, label, i) in panels:
        digits = 0 if key == "rps" else 1
        vals = [v for (k, _, _), v in val.items() if k == key and v is not None]
        vmax = max(vals, default=0)
        label_room = max((text_w(fmt(v, digits), 10) for v in vals), default=20) + 6
        ticks = nice_ticks(vmax)
        span = ticks[-1] or 1
        scale = (pw - label_room) / span
        # grid and tick labels
        for t in ticks:
            gx = px[i] + t * scale
            o.append(f'<line x1="{gx:.1f}" y1="{top - 4}" x2="{gx:.1f}" y2="{bottom + 4}" '
                     f'stroke="#ddd" stroke-width="1"/>')
            tl = (f"{t / 1000:g}k" if t else "0") if key == "rps" else f"{t:g}"
            o.append(f'<text x="{gx:.1f}" y="{bottom + 17}" text-anchor="middle" font-size="10" '
                     f'fill="#555">{tl}</text>')
        o.append(f'<line x1="{px[i]}" y1="{top - 4}" x2="{px[i]}" y2="{bottom + 4}" stroke="#333"/>')
        for si, s in enumerate(scenarios):
            gy = top + si * (group_h + ggap)
            for li, l in enumerate(libs):
                by_ = gy + li * (bh + bgap)
                v = val[(key, s, l)]
                if v is None:
                    o.append(f'<text x="{px[i] + 4}" y="{by_ + bh - 2}" font-size="10" fill="#777">'
                             f'no run</text>')
                    continue
                bw = max(v * scale, 0.5)
                o.append(f'<rect x="{px[i]}" y="{by_}" width="{bw:.1f}" height="{bh}" '
                         f'fill="{colours[l]}"><title>{esc(NAMES.get(l, l))}, {esc(s)}: '
                         f'{fmt(v, digits)}</title></rect>')
                o.append(f'<text x="{px[i] + bw + 3:.1f}" y="{by_ + bh - 2.5}" font-size="10" '
                         f'fill="#222">{fmt(v, digits)}</text>')
    # scenario labels, centred on their group
    for si, s in enumerate(scenarios):
        gy = top + si * (group_h + ggap) + group_h / 2 + 4
        o.append(f'<text x="{left - 8}" y="{gy:.1f}" text-anchor="end" font-size="11.5">'
                 f'{esc(CHART_TEXT.get(s, s))}</text>')
    H = bottom + 30
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H:.0f}" '
           f'viewBox="0 0 {W} {H:.0f}" font-family="{FONT}">\n'
           f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(o) + "\n</svg>\n")
    with open(out_path, "w") as f:
        f.write(svg)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"row": row, "mem": mem, "census": census, "table": table, "chart": chart}[cmd](args)


if __name__ == "__main__":
    main()
