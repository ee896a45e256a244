#!/usr/bin/env python3
"""The abusers of bench/run's `abuse` scenario, and its report. Python 3 standard library only.

    abuse.py attack --h1 HOST:PORT --h2c HOST:PORT [--duration S] [...]
        Runs three abusers against a gateway until --duration passes or SIGTERM/SIGINT comes,
        then prints one JSON line with what the gateway did to them:
        - JSON bombs: --bombers keep-alive HTTP/1.1 connections, each POSTing a 60 KB JSON body
          ({"AAAA...(20,000 A's)": [0,0,... 20,000 zeros]}, application/json) to /waf/ (the
          route with the WAF) again and again, as fast as the answers come;
        - a partial-preface flood on the h2c port: --half-open connections held at once, each
          sending `PRI` and nothing more (re-opened as the gateway closes them), and
          connections that send `PRI` and close at once, --pri-close-rate per second;
        - slow bodies on the HTTP/1.1 port: --slow connections held at once, each sending a
          request head with Content-Length: 1000000 and then one byte every --slow-every
          seconds (re-opened as the gateway closes them).

    abuse.py report --input JSONL --markdown OUT [--meta KEY=VALUE ...]
        The markdown report of one abuse run: the legitimate load quiet and under abuse (loadgen
        results tagged phase=quiet and phase=abuse) and the abusers' outcome (the attack line).
"""

import argparse
import collections
import http.client
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time

BOMB_PATH = "/waf/bomb"
SLOW_LENGTH = 1_000_000


def host_port(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def quantiles(values, qs=(0.5, 0.99)):
    if not values:
        return {f"p{int(q * 100)}": None for q in qs} | {"max": None}
    values = sorted(values)
    out = {f"p{int(q * 100)}": values[min(len(values) - 1, int(q * len(values)))] for q in qs}
    out["max"] = values[-1]
    return out


def err_name(exc):
    return type(exc).__name__


class Counter:
    """Counts shared by threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] += n


# --- attack ---------------------------------------------------------------------------------

def bomb_body():
    return ('{"' + "A" * 20_000 + '": [' + ",".join(["0"] * 20_000) + "]}").encode()


def bomber(addr, body, stop, statuses, errors, latencies):
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection(*addr, timeout=10)
            began = time.monotonic()
            conn.request("POST", BOMB_PATH, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            latencies.append(time.monotonic() - began)
            statuses.add(str(response.status))
            if response.will_close:
                statuses.add("connection_closed_after_answer")
                conn.close()
                conn = None
        except Exception as exc:  # noqa: BLE001 - every failure is an outcome to count
            errors.add(err_name(exc))
            if conn is not None:
                conn.close()
            conn = None
            stop.wait(0.05)
    if conn is not None:
        conn.close()


class Held:
    """Connections held open by one thread with a selector: the half-open preface flood and
    the slow bodies. `first` is sent on connect; `trickle` (if any) every `every` seconds."""

    def __init__(self, addr, count, first, trickle=None, every=None):
        self.addr, self.count, self.first = addr, count, first
        self.trickle, self.every = trickle, every
        self.sel = selectors.DefaultSelector()
        self.opened = 0
        self.connect_errors = Counter()
        self.closed = Counter()       # how the gateway ended a connection
        self.lifetimes = []           # seconds from open to the gateway's close
        self.trickled = 0

    def open_one(self, stop):
        while not stop.is_set():
            try:
                s = socket.create_connection(self.addr, timeout=5)
                s.sendall(self.first)
                s.setblocking(False)
            except OSError as exc:
                self.connect_errors.add(err_name(exc))
                stop.wait(0.1)
                continue
            self.opened += 1
            self.sel.register(s, selectors.EVENT_READ, {"opened": time.monotonic(), "head": b""})
            return

    def finish(self, key, how, stop):
        self.closed.add(how)
        self.lifetimes.append(time.monotonic() - key.data["opened"])
        self.sel.unregister(key.fileobj)
        key.fileobj.close()
        self.open_one(stop)

    def run(self, stop):
        for _ in range(self.count):
            self.open_one(stop)
        next_trickle = time.monotonic() + (self.every or 0)
        while not stop.is_set():
            for key, _ in self.sel.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(4096)
                except (ConnectionResetError, BrokenPipeError):
                    self.finish(key, "reset", stop)
                    continue
                except BlockingIOError:
                    continue
                if data:
                    key.data["head"] += data
                    continue
                head = key.data["head"]
                if head.startswith(b"HTTP/"):
                    how = "answered " + head.split(b" ", 2)[1].decode(errors="replace") + ", closed"
                elif head:
                    how = "sent bytes, closed"
                else:
                    how = "closed"
                self.finish(key, how, stop)
            if self.trickle and time.monotonic() >= next_trickle:
                next_trickle += self.every
                for key in list(self.sel.get_map().values()):
                    try:
                        key.fileobj.send(self.trickle)
                        self.trickled += 1
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        self.finish(key, "reset", stop)
        open_at_end = []
        for key in list(self.sel.get_map().values()):
            if key.data["head"].startswith(b"HTTP/"):
                open_at_end.append("answered " + key.data["head"].split(b" ", 2)[1].decode())
            else:
                open_at_end.append("open")
            key.fileobj.close()
        self.sel.close()
        return collections.Counter(open_at_end)

    def result(self, open_at_end):
        return {
            "held": self.count,
            "opened": self.opened,
            "closed_by_gateway": sum(self.closed.counts.values()),
            "closed_by_kind": dict(self.closed.counts),
            "lifetime_s": quantiles(self.lifetimes),
            "open_at_end": dict(open_at_end),
            "connect_errors": dict(self.connect_errors.counts),
        }


def pri_closer(addr, rate, stop, counts):
    interval = 1.0 / rate
    due = time.monotonic()
    while not stop.is_set():
        try:
            s = socket.create_connection(addr, timeout=5)
            s.sendall(b"PRI")
            s.close()
            counts.add("connections")
        except OSError as exc:
            counts.add("error_" + err_name(exc))
        due += interval
        delay = due - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        elif delay < -1:
            due = time.monotonic()  # fell behind: do not burst to catch up


def attack(args):
    h1, h2c = host_port(args.h1), host_port(args.h2c)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    cpu0 = os.times()

    body = bomb_body()
    statuses, bomb_errors, latencies = Counter(), Counter(), []
    threads = [threading.Thread(target=bomber, args=(h1, body, stop, statuses, bomb_errors, latencies))
               for _ in range(args.bombers)]
    half_open = Held(h2c, args.half_open, b"PRI")
    slow_head = (f"POST /upload HTTP/1.1\r\nHost: {args.h1}\r\n"
                 f"Content-Type: application/octet-stream\r\nContent-Length: {SLOW_LENGTH}\r\n\r\n").encode()
    slow = Held(h1, args.slow, slow_head, trickle=b"x", every=args.slow_every)
    ends = {}
    threads.append(threading.Thread(target=lambda: ends.__setitem__("half_open", half_open.run(stop))))
    threads.append(threading.Thread(target=lambda: ends.__setitem__("slow", slow.run(stop))))
    pri_counts = Counter()
    if args.pri_close_rate > 0:
        threads.append(threading.Thread(target=pri_closer, args=(h2c, args.pri_close_rate, stop, pri_counts)))
    for t in threads:
        t.start()
    print(f"abuse: {len(threads)} threads attacking {args.h1} and {args.h2c}", file=sys.stderr)
    stop.wait(args.duration)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    cpu1 = os.times()
    out = {
        "tags": {"scenario": "abuse", "role": "abusers"},
        "duration_s": elapsed,
        "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "bomb": {
            "senders": args.bombers,
            "body_bytes": len(body),
            "requests": sum(v for k, v in statuses.counts.items() if k.isdigit()),
            "by_status": {k: v for k, v in statuses.counts.items() if k.isdigit()},
            "closed_after_answer": statuses.counts.get("connection_closed_after_answer", 0),
            "errors": dict(bomb_errors.counts),
            "latency_ms": {k: (v * 1000 if v is not None else None) for k, v in quantiles(latencies).items()},
        },
        "half_open": half_open.result(ends.get("half_open", {})),
        "pri_close": {"rate": args.pri_close_rate, **dict(pri_counts.counts)},
        "slow": {**slow.result(ends.get("slow", {})), "every_s": args.slow_every,
                 "bytes_trickled": slow.trickled},
    }
    print(json.dumps(out), flush=True)
    print(f"abuse: {json.dumps(out)}", file=sys.stderr)


# --- report ---------------------------------------------------------------------------------

def grouped(v):
    return "–" if v is None else f"{v:,.0f}"


def report(args):
    phases, abusers = {}, []
    with open(args.input) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            j = json.loads(line)
            tags = j.get("tags", {})
            if tags.get("role") == "abusers":
                abusers.append(j)
            elif "phase" in tags:
                phases.setdefault((tags.get("load", "closed"), tags["phase"]), []).append(j)
    md = ["# Abuse: legitimate gRPC through sekisho while abusers attack it", ""]
    for m in args.meta:
        k, _, v = m.partition("=")
        md.append(f"- **{k}**: {v}")
    md.append("")

    def other_load(j, abuser_cpu=0.0):
        window = j["settings"]["duration_s"]
        other = j.get("machine", {}).get("other_s", 0.0) - abuser_cpu
        return max(other, 0.0) / window

    def abuser_cpu_in_window(j, run):
        if not run or run["duration_s"] <= 0:
            return 0.0
        return run["cpu_s"] * j["settings"]["duration_s"] / run["duration_s"]

    loads = [("rate", "at a fixed rate: the goal is judged here"),
             ("closed", "closed loop, 64 workers over 4 h2c connections: the share of capacity legitimate traffic keeps")]
    def median(values):
        values = sorted(v for v in values if v is not None)
        if not values:
            return None
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    def merged(runs, run_abusers):
        """One row from several runs: the median of each figure, errors summed."""
        if not runs:
            return None
        window = runs[0]["settings"]["duration_s"]
        lat = {k: median([r.get("latency_us", {}).get(k) for r in runs]) for k in ("p50", "p99", "p999")}
        cpu = lambda r, k: r.get(k, {}).get("cpu_s", 0)
        acpu = [abuser_cpu_in_window(r, a) for r, a in zip(runs, run_abusers)] if run_abusers else [0.0]
        return {
            "rps": median([r.get("rps") for r in runs]),
            "latency_us": lat,
            "p99s": [r.get("latency_us", {}).get("p99") for r in runs],
            "errors": sum(r.get("errors", 0) for r in runs),
            "errors_by_kind": {k: v for r in runs for k, v in r.get("errors_by_kind", {}).items()},
            "proxy_cpu": median([cpu(r, "proxy") / window for r in runs]),
            "client_cpu": median([(cpu(r, "generator") + cpu(r, "backend")) / window for r in runs]),
            "abuser_cpu": median([a / window for a in acpu]),
            "other": median([other_load(r, a) for r, a in zip(runs, acpu if run_abusers else [0.0] * len(runs))]),
            "runs": len(runs),
        }

    attack_runs = iter(abusers)
    last_abusers = None
    for load, what in loads:
        quiet_runs, loud_runs = phases.get((load, "quiet"), []), phases.get((load, "abuse"), [])
        if not quiet_runs and not loud_runs:
            continue
        run_abusers = [next(attack_runs, None) for _ in loud_runs]
        if run_abusers:
            last_abusers = run_abusers[-1]
        quiet, loud = merged(quiet_runs, None), merged(loud_runs, run_abusers)
        md += [f"## Legitimate load: gRPC unary, 64 B, {what}", "",
               "Each figure is the median of the runs; p99 of each run in the last column.", "",
               "| phase | runs | req/s | p50 µs | p99 µs | p99.9 µs | errors | sekisho CPU | generator + backend CPU | abusers' CPU | other load | p99 per run |",
               "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
        for name, j in (("quiet", quiet), ("under abuse", loud)):
            if j is None:
                md.append(f"| {name} | 0 | did not run | | | | | | | | | |")
                continue
            lat = j["latency_us"]
            errs = j["errors"]
            if errs:
                errs = f"{errs} (" + ", ".join(f"{k}: {v}" for k, v in j["errors_by_kind"].items()) + ")"
            per_run = ", ".join(grouped(p) for p in j["p99s"])
            md.append(f"| {name} | {j['runs']} | {grouped(j['rps'])} | {grouped(lat['p50'])} | {grouped(lat['p99'])} "
                      f"| {grouped(lat['p999'])} | {errs} | {j['proxy_cpu']:.0%} "
                      f"| {j['client_cpu']:.0%} | {j['abuser_cpu']:.0%} | {j['other']:.0%} | {per_run} |")
        md.append("")
        if quiet and loud:
            q99, l99 = quiet["latency_us"]["p99"], loud["latency_us"]["p99"]
            errors = loud["errors"] + quiet["errors"]
            ratio = l99 / q99 if q99 and l99 else None
            rps = "–" if not quiet["rps"] else f"{loud['rps'] / quiet['rps']:.2f}×"
            if load == "rate":
                met = errors == 0 and ratio is not None and ratio <= 2.0
                md.append(f"**Goal** (zero legitimate errors, median p99 under abuse within 2× of quiet): "
                          f"**{'met' if met else 'not met'}**: {errors} legitimate errors, p99 "
                          f"{grouped(l99)} µs against {grouped(q99)} µs quiet "
                          f"({'–' if ratio is None else f'{ratio:.2f}×'}).")
            else:
                md.append(f"{errors} legitimate errors; p99 {'–' if ratio is None else f'{ratio:.2f}×'} of quiet; "
                          f"req/s {rps} of quiet.")
            md.append("")
    md.append("CPU columns are shares of one CPU during the measured window; sekisho has CPU 1 to itself, "
              "the generator, backend and abusers share CPU 0 (on 2 CPUs). Other load: the machine's busy "
              "time minus all of these (the abusers' CPU is prorated over their run).")
    md.append("")
    abusers = last_abusers
    md += ["## The abusers", ""]
    if abusers is None:
        md.append("The abusers reported nothing (see the run's log).")
    else:
        b, h, p, s = abusers["bomb"], abusers["half_open"], abusers["pri_close"], abusers["slow"]
        dur = abusers["duration_s"]

        def kinds(d):
            return ", ".join(f"{k}: {v:,}" for k, v in sorted(d.items())) or "none"

        def life(x):
            lt = x["lifetime_s"]
            if lt["p50"] is None:
                return ""
            return f"; open for {lt['p50']:.1f} s (median), {lt['max']:.1f} s at most before the gateway closed them"

        md += [f"One Python process (standard library, threads), started a few seconds before the legitimate "
               f"load and stopped when it ended: {dur:.1f} s, {abusers['cpu_s']:.1f} s of CPU.", "",
               "| abuser | sent | what the gateway did |", "|---|---|---|"]
        lat = b["latency_ms"]
        bomb_lat = "" if lat["p50"] is None else f"; answer in {lat['p50']:.1f} ms (median), {lat['p99']:.1f} ms (p99)"
        md.append(f"| JSON bomb, {b['body_bytes']:,} B to the WAF route | {b['requests']:,} POSTs from "
                  f"{b['senders']} keep-alive senders ({b['requests'] / dur:,.0f}/s) | by status: {kinds(b['by_status'])}"
                  f"{bomb_lat}; connection closed with the answer: {b['closed_after_answer']:,}; "
                  f"errors: {kinds(b['errors'])} |")
        md.append(f"| `PRI`, then silence (h2c port) | {h['opened']:,} connections, {h['held']} held at once | "
                  f"closed: {h['closed_by_gateway']:,} ({kinds(h['closed_by_kind'])}){life(h)}; "
                  f"still open at the end: {sum(h['open_at_end'].values()):,}; connect errors: {kinds(h['connect_errors'])} |")
        pri_errors = {k[6:]: v for k, v in p.items() if k.startswith("error_")}
        md.append(f"| `PRI`, then close (h2c port) | {p.get('connections', 0):,} connections "
                  f"(at most {p['rate']:,}/s) | connect errors: {kinds(pri_errors)} |")
        md.append(f"| slow body: Content-Length {SLOW_LENGTH:,}, 1 byte every {s['every_s']:g} s (HTTP/1.1 port) | "
                  f"{s['opened']:,} connections, {s['held']} held at once, {s['bytes_trickled']:,} bytes trickled | "
                  f"closed: {s['closed_by_gateway']:,} ({kinds(s['closed_by_kind'])}){life(s)}; "
                  f"still open at the end: {sum(s['open_at_end'].values()):,} ({kinds(s['open_at_end'])}); "
                  f"connect errors: {kinds(s['connect_errors'])} |")
    md.append("")
    text = "\n".join(md)
    for path in args.markdown:
        with open(path, "w") as f:
            f.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("attack")
    a.add_argument("--h1", required=True, help="HOST:PORT of the HTTP/1.1 listener")
    a.add_argument("--h2c", required=True, help="HOST:PORT of the h2c listener")
    a.add_argument("--duration", type=float, default=60.0, help="seconds at most (SIGTERM ends it sooner)")
    a.add_argument("--bombers", type=int, default=4)
    a.add_argument("--half-open", type=int, default=300)
    a.add_argument("--pri-close-rate", type=float, default=200.0, help="PRI-then-close connections per second")
    a.add_argument("--slow", type=int, default=50)
    a.add_argument("--slow-every", type=float, default=3.0)
    r = sub.add_parser("report")
    r.add_argument("--input", required=True)
    r.add_argument("--markdown", action="append", required=True)
    r.add_argument("--meta", action="append", default=[])
    args = parser.parse_args()
    attack(args) if args.command == "attack" else report(args)


if __name__ == "__main__":
    main()
