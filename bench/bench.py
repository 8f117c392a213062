#!/usr/bin/python3
"""bench/bench.py - runs every benchmark case against the harness's servers
and writes a Markdown report and the raw CSV (docs/performance.md explains
the cases and what limits each figure).

Run through bench/run (or `make bench`), which builds the programs and starts
the servers; bench/README.md lists the options.

Each case runs REPS times; within one repetition a figure and its raw
baseline run back to back, so that their ratio is measured under the same
load. The report gives the median of each figure and its spread (min-max)
over the repetitions. A program that moved the wrong number of events is a
failure of the run, not a number.
"""

import argparse
import csv
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pymongo
from bson import ObjectId

ALL_SINKS = ["file", "kafka", "redis", "nats"]
DB = "outbox_bench"
WARMUP = 100  # events put before the latency case's clock starts
CAPPED = str(1 << 30)  # FerretDB counts ~4x the BSON size against a capped size

TARGETS = {
    "drain": 0.9, "fanout": 0.8, "ceiling": 0.8, "latency_p99_ms_over_raw": 2.0,
    "ckpt_writes_per_100": 1.0, "rss_mb": 30.0, "naive_speedup": 10.0,
    # issue 17 (one shared reader per outbox)
    "fanout_db_cpu": 1.2, "vs_base": 0.97, "rss3_mb": 40.0,
    # issue 14 (HA leases): the drain with ha.enabled true against false
    "ha_drain": 0.97,
    # issue 15 (metrics over HTTP): the drain with /metrics scraped every second against no endpoint
    "metrics_drain": 0.98,
    # issue 19 (message formats): the drain, and each sink's ceiling, with format: cloudevents against native
    "formats_drain": 0.95, "formats_ceiling": 0.95,
    # issue 15 (the log survey): the drain with the default survey against none
    "survey_drain": 0.98,
    # issue 21 (outboxd's own ceiling, events fed from memory): the pipeline against the sink's
    # ceiling (bench_sink), fan-out from memory against single, outboxd's CPU per event (file sink)
    "pipeline": 0.8, "pipeline_fanout": 0.8, "pipeline_cpu_us": 5.0,
    # issue 18 (effectively-once): the drain with recover on against recover: false, per sink; the
    # recovery of a full window of events in doubt (ms)
    "recover_drain": 0.97, "recovery_ms": 1000.0,
}
# What --cases takes. The default is what the current targets need and fits
# in about 15 minutes; "all" adds the latency, checkpoint and naive cases.
DEFAULT_CASES = ["drain", "fanout", "fanout-files", "base", "ceiling", "json"]
ALL_CASES = DEFAULT_CASES + ["naive", "checkpoint", "latency", "metrics", "formats", "pipeline", "recovery",
                             "promote"]
# Only when named: the HA case (issue 14) kills outboxd twenty times and
# waits out leases of 10 s (about 6 minutes), and needs an outboxd with
# leases; --quick does not run it unless named either.
EXTRA_CASES = ["ha"]


class BenchError(Exception):
    pass


def free_port():
    """A loopback port free now (outboxd binds it a moment later)."""
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


class Scraper:
    """Fetches url every period seconds on a thread of its own, as a
    Prometheus server would, until stop(); keeps each fetch's time in ms
    (a refused connection, before outboxd listens, is not counted)."""

    def __init__(self, url, period):
        self.url, self.period, self.count, self.ms, self.bytes = url, period, 0, [], 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.done.is_set():
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    self.bytes = len(resp.read())
                self.ms.append(1000 * (time.perf_counter() - t))
                self.count += 1
            except OSError:
                self.done.wait(0.05)  # not listening yet: try again soon
                continue
            self.done.wait(self.period)

    def stop(self):
        self.done.set()
        self.thread.join()


def duration_s(text):
    """A Go duration as services.sh takes it ("500ms", "1s", "1m", "2h")
    in seconds; 0 when it is none of those."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)] if m else 0


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_results(text):
    return [{k: v for k, v in (kv.split("=", 1) for kv in line[7:].split() if "=" in kv)}
            for line in text.splitlines() if line.startswith("RESULT ")]


def parse_result(text, what):
    results = parse_results(text)
    if not results:
        raise BenchError(f"{what}: no RESULT line")
    return results[0]


def number(v):
    try:
        return float(v)
    except ValueError:
        return None


class Bench:
    def __init__(self, args):
        self.a = args
        self.build = os.path.abspath(args.builddir)
        self.env = self.read_services()
        self.uri = self.env["OUTBOX_TEST_MONGODB_URI"]
        self.mongo = pymongo.MongoClient(self.uri)
        self.tmp = tempfile.mkdtemp(prefix="outbox-bench-")
        # Each build of outboxd with its own plugins: "head" is the build
        # under test, "base" (--base-builddir) the earlier commit it is
        # measured against in the same run.
        self.builds = {"head": self.setup_build("head", self.build)}
        if args.base_builddir:
            self.builds["base"] = self.setup_build("base", os.path.abspath(args.base_builddir))
        self.plugins = self.builds["head"]["plugins"]
        self.rows = []      # (case, subject, metric, rep, value, unit)
        self.notes = []
        self.uniq = 0
        self.sinks = args.sinks.split(",")
        self.broker_sinks = [s for s in self.sinks if s != "file"]
        self.run_tag = time.strftime("%H%M%S")

    # ---- plumbing ---------------------------------------------------------

    def setup_build(self, label, build):
        plugins = os.path.join(self.tmp, "plugins-" + label)
        os.makedirs(plugins)
        for s in ALL_SINKS:
            so = os.path.join(build, "sinks", s, ".libs", s + ".so")
            if not os.path.exists(so):
                raise BenchError(f"{so}: not built")
            # A copy: outboxd refuses a plugin that is a link leading out
            # of its plugin folder (docs/security.md).
            shutil.copy2(so, os.path.join(plugins, s + ".so"))
        outboxd = os.path.join(build, "outboxd", "outboxd")
        if not os.access(outboxd, os.X_OK):
            raise BenchError(f"{outboxd}: not built")
        return {"outboxd": outboxd, "plugins": plugins, "dir": build}

    def read_services(self):
        path = os.path.expanduser("~/.cache/service-outbox/services.env")
        env = {}
        if os.path.exists(path):
            for line in open(path):
                if "=" in line and not line.startswith("#"):
                    k, v = line.strip().split("=", 1)
                    env[k] = v
        env.update({k: v for k, v in os.environ.items() if k.startswith("OUTBOX_TEST_")})
        for k in ["MONGODB_URI", "REDIS_URL", "NATS_URL", "KAFKA_BROKERS"]:
            if "OUTBOX_TEST_" + k not in env:
                raise BenchError(f"OUTBOX_TEST_{k} unknown: start the servers (tests/services/services.sh up)")
        return env

    def prog(self, name):
        return os.path.join(self.build, "bench", name)

    def run(self, argv, what, timeout=3600):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise BenchError(f"{what}: exit {p.returncode}: {p.stderr.strip()[-800:]}")
        return parse_result(p.stdout, what)

    def name(self, prefix):
        self.uniq += 1
        return f"{prefix}{self.run_tag}x{self.uniq}"

    def record(self, case, subject, metric, rep, value, unit):
        self.rows.append((case, subject, metric, rep, value, unit))

    def dest_args(self, sink, name):
        """Destination options for bench_dest / bench_raw, and the outboxd
        route and options for the same destination."""
        if sink == "file":
            path = os.path.join(self.tmp, name + ".jsonl")
            return ["--path", path], path, {"fsync": "batch"}
        if sink == "kafka":
            b = self.env["OUTBOX_TEST_KAFKA_BROKERS"]
            return ["--brokers", b, "--topic", name], name, {"bootstrap.servers": b}
        if sink == "redis":
            u = self.env["OUTBOX_TEST_REDIS_URL"]
            return ["--url", u, "--stream", name], name, {"url": u}
        if sink == "nats":
            u = self.env["OUTBOX_TEST_NATS_URL"]
            stream = name.upper().replace("-", "_")
            subj = name.replace("-", "_") + ".events"
            return (["--url", u, "--stream", stream, "--subject", subj], subj,
                    {"servers": u, "stream": stream})
        raise ValueError(sink)

    def prepare(self, sink, dargs):
        self.run([self.prog("bench_dest"), "prepare", sink] + dargs, f"prepare {sink}")

    def count(self, sink, dargs):
        return int(self.run([self.prog("bench_dest"), "count", sink] + dargs, f"count {sink}")["count"])

    # ---- outboxd ----------------------------------------------------------

    def write_config(self, outbox, sinks, every_events=1000, every_ms=1000, ha=None, http=None, logsec=None,
                     sinkyaml="", reader=None):
        """sinks: [(name, plugin, route, options)]; ha: the `ha:` keys
        (None: no `ha:` section, outboxd's defaults); http: the address of
        http.listen (None: no endpoint); logsec: the `log:` keys; sinkyaml:
        lines added to every sink (indented 4 spaces)."""
        path = os.path.join(self.tmp, self.name("conf") + ".yaml")
        with open(path, "w") as f:
            f.write(f'mongodb:\n  uri: "{self.uri}"\n  database: {DB}\noutbox: {outbox}\n')
            if ha is not None:
                f.write("ha:\n" + "".join(f"  {k}: {v}\n" for k, v in ha.items()))
            if http is not None:
                f.write(f'http:\n  listen: "{http}"\n')
            if logsec is not None:
                f.write("log:\n" + "".join(f"  {k}: {v}\n" for k, v in logsec.items()))
            if reader is not None:
                f.write("reader:\n" + "".join(f"  {k}: {v}\n" for k, v in reader.items()))
            f.write(f"checkpoint:\n  every_events: {every_events}\n  every_ms: {every_ms}\nsinks:\n")
            for name, plugin, route, opts in sinks:
                f.write(f'  - name: {name}\n    plugin: {plugin}\n    route: "{route}"\n{sinkyaml}')
                if opts:
                    f.write("    options:\n")
                    for k, v in opts.items():
                        f.write(f'      {k}: "{v}"\n')
        return path

    def start_outboxd(self, conf, build="head", logpath=None, generate=0):
        """outboxd on conf; generate > 0: bench_pipeline instead, the same
        daemon with that many events fed from memory (issue 21)."""
        logpath = logpath or conf + ".log"
        logf = open(logpath, "w")
        b = self.builds[build]
        prog = [self.prog("bench_pipeline"), "--events", str(generate)] if generate else [b["outboxd"]]
        p = subprocess.Popen(prog + ["--config", conf, "--plugin-dir", b["plugins"]], stdout=logf,
                             stderr=subprocess.STDOUT, env=dict(os.environ, MONGOC_DISABLE_SHM="1"))
        logf.close()
        return p, logpath

    def peak_rss_kb(self, pid):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise BenchError("no VmHWM")

    def stop_outboxd(self, p, logpath):
        """SIGTERM, then the per-sink counters from the "stopped" lines."""
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            raise BenchError(f"outboxd did not stop on SIGTERM ({logpath})")
        stats = {}
        for line in open(logpath):
            m = re.search(r"sink (\S+): stopped; .* (\d+) publish calls \((\d+) failed\), (\d+) checkpoint writes",
                          line)
            if m:
                stats[m.group(1)] = {"publish_calls": int(m.group(2)), "failed": int(m.group(3)),
                                     "ckpt_writes": int(m.group(4))}
                # Since the shared reader (issue 17): the sink's own tails.
                m2 = re.search(r"(\d+) catch-up tails, (\d+) catch-ups", line)
                if m2:
                    stats[m.group(1)].update(catchup_tails=int(m2.group(1)), catchups=int(m2.group(2)))
            m = re.search(r"shared reader: stopped; (\d+) shared tails opened, (\d+) events", line)
            if m:
                stats[""] = {"shared_tails": int(m.group(1)), "events_read": int(m.group(2))}
        return stats

    @staticmethod
    def stat_cpu_seconds(path):
        """(comm, utime + stime in seconds) of a /proc .../stat file; None
        when it is gone."""
        try:
            stat = open(path).read()
        except OSError:
            return None
        comm, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")", 1)[1].split()
        return comm, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def client_thread_seconds(self, pid):
        """CPU seconds of the broker client libraries' own threads in pid,
        where they can be told apart: librdkafka names its threads rdk:*
        (libnats's and outboxd's have the program's name)."""
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return 0.0
        threads = (self.stat_cpu_seconds(f"/proc/{pid}/task/{tid}/stat") for tid in tids)
        return sum((sec for comm, sec in filter(None, threads) if comm.startswith("rdk:")), 0.0)

    def cpu_seconds(self, pids):
        """utime + stime of each process, in seconds."""
        out = {}
        for label, pid in pids.items():
            got = self.stat_cpu_seconds(f"/proc/{pid}/stat")
            if got:
                out[label] = got[1]
        return out

    def head_rev(self):
        for r in self.rows:
            if r[0] == "setup" and r[1].startswith("this build "):
                return r[1][len("this build "):] + " (built from the commit, by bench/run --commit)"
        return None

    def base_rev(self, short=True):
        """The base build as bench/run named it ("SHA (subject)"); short:
        the SHA alone."""
        for r in self.rows:
            if r[0] == "setup" and r[1].startswith("base build "):
                rev = r[1][len("base build "):]
                return rev.split(" (")[0] if short and not rev.startswith("this build") else rev
        return "-"

    def db_label(self):
        kind = self.env.get("OUTBOX_TEST_MONGODB_KIND", "?")
        return {"ferretdb": "MongoDB server (FerretDB)", "mongod": "MongoDB server (mongod)"}.get(
            kind, "MongoDB server")

    def server_pids(self):
        # The database's process is the one that serves our URI (it says
        # its pid), not the first process of that name: a test may run a
        # private one beside it. The brokers' are the harness's own, as
        # services.sh names them (a second JVM may well be running).
        pids = {self.db_label(): int(self.mongo.admin.command("serverStatus")["pid"])}
        top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        st = subprocess.run(["bash", os.path.join(top, "tests", "services", "services.sh"), "status"],
                            capture_output=True, text=True, timeout=60)
        for line in st.stdout.splitlines():
            m = re.match(r"(\w+)[^:]*: up, pid (\d+)", line)
            if m and m.group(1) in ("kafka", "redis", "nats"):
                pids[{"kafka": "Kafka broker", "redis": "Redis", "nats": "NATS"}[m.group(1)]] = int(m.group(2))
        return pids

    def wait_checkpoint(self, outbox, sink_name, n, timeout=120):
        coll = self.mongo[DB][outbox + ".checkpoints"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            doc = coll.find_one({"_id": sink_name})
            if doc and doc.get("events", 0) >= n:
                return
            if doc and doc.get("state") not in (None, "running"):
                raise BenchError(f"sink {sink_name}: {doc.get('state')}: {doc.get('message')}")
            time.sleep(0.05)
        raise BenchError(f"sink {sink_name}: checkpoint did not reach {n} events")

    def wait_log(self, logpath, pattern, count, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(re.findall(pattern, open(logpath).read())) >= count:
                return
            time.sleep(0.05)
        raise BenchError(f"outboxd: no {count} x '{pattern}' in {logpath}: {open(logpath).read()[-1500:]}")

    def relay(self, outbox, n, sinks, every_events=1000, every_ms=1000, build="head", ha=None, scrape=False,
              logsec=None, sinkyaml="", generate=False, reader=None, sinkopts=None):
        """Runs outboxd (of the given build) from an empty checkpoint over
        a log of n events to the given sinks [(sink, name)], each to a fresh
        destination. Returns per sink: rate (events/s until the destination
        held all n), the counters, outboxd's peak RSS, and the CPU seconds
        each process used during the run (cpu_s) and the database's use
        while nothing ran, just before (db_idle_cores). scrape: outboxd
        serves /metrics on a free port, fetched every second meanwhile
        (scrapes, scrape_ms in the result). generate: bench_pipeline feeds
        the n events from memory (the outbox must be empty; the client
        libraries' threads' CPU in client_s). sinkopts: options added to
        every sink's."""
        specs, waiters = [], []
        for sink, name in sinks:
            dargs, route, opts = self.dest_args(sink, name)
            if sinkopts:
                opts = dict(opts, **sinkopts)
            self.prepare(sink, dargs)
            specs.append((name, sink, route, opts))
            waiters.append((sink, name, dargs))
        port = free_port() if scrape else None
        conf = self.write_config(outbox, specs, every_events, every_ms, ha, f"127.0.0.1:{port}" if port else None,
                                 logsec, sinkyaml, reader)
        timeout = str(max(600, n // 50))
        procs = [subprocess.Popen([self.prog("bench_dest"), "wait", s, "--events", str(n), "--timeout-s", timeout]
                                  + d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for s, _, d in waiters]
        # The waiters connect meanwhile; they do not touch the database, so
        # its CPU over this half second is what it spends with nothing of
        # ours running (another user of the same server shows here).
        pids = self.server_pids()
        db = self.db_label()
        idle0, i0 = self.cpu_seconds({db: pids[db]}), time.time()
        time.sleep(0.5)
        idle1 = self.cpu_seconds({db: pids[db]})
        db_idle = (idle1[db] - idle0[db]) / (time.time() - i0) if db in idle0 and db in idle1 else 0.0
        t0 = time.time_ns()
        p, logpath = self.start_outboxd(conf, build, generate=n if generate else 0)
        pids["outboxd"] = p.pid
        cpu0 = self.cpu_seconds(pids)
        client0 = self.client_thread_seconds(p.pid)
        out = {}
        scraper = Scraper(f"http://127.0.0.1:{port}/metrics", 1.0) if port else None
        try:
            for (sink, name, dargs), w in zip(waiters, procs):
                so, se = w.communicate()
                if w.returncode != 0:
                    raise BenchError(f"{sink} never held {n} events: {se.strip()[-500:]} (outboxd log {logpath})")
                at = int(parse_result(so, f"wait {sink}")["at_ns"])
                out[name] = {"sink": sink, "rate": n / ((at - t0) / 1e9), "dargs": dargs}
            wall = (time.time_ns() - t0) / 1e9
            if scraper:
                scraper.stop()
            cpu1 = self.cpu_seconds(pids)
            client_s = self.client_thread_seconds(p.pid) - client0
            cpu_s = {k: cpu1[k] - cpu0[k] for k in cpu1 if k in cpu0}
            cores = {k: v / wall for k, v in cpu_s.items()}
            for _, name in sinks:
                self.wait_checkpoint(outbox, name, n)
            rss = self.peak_rss_kb(p.pid)
        finally:
            if scraper:
                scraper.stop()
            if p.poll() is None:
                stats = self.stop_outboxd(p, logpath)
            else:
                raise BenchError(f"outboxd exited early ({p.returncode}): {open(logpath).read()[-1500:]}")
        for name, r in out.items():
            got = self.count(r["sink"], r["dargs"])
            if got != n:
                raise BenchError(f"sink {name}: {got} messages at the destination for {n} events")
            r.update(stats.get(name, {}))
            r["reader"] = stats.get("")
            r["rss_kb"] = rss
            r["cores"] = cores
            r["cpu_s"] = cpu_s
            r["client_s"] = client_s
            r["db_idle_cores"] = db_idle
            r["log"] = logpath
            if scraper:
                r["scrapes"], r["scrape_ms"] = scraper.count, scraper.ms
        return out

    # ---- the cases --------------------------------------------------------

    def fill(self, outbox, n):
        self.mongo[DB].drop_collection(outbox)
        self.mongo[DB].drop_collection(outbox + ".checkpoints")
        r = self.run([self.prog("bench_put"), "--uri", self.uri, "--db", DB, "--outbox", outbox,
                      "--events", str(n), "--capped-size", CAPPED], f"fill {outbox}")
        self.envelope_bytes = int(r["bytes"])
        self.record("setup", "one envelope as stored", "BSON size", 0, float(r["bytes"]), "bytes")
        self.record("setup", "liboutbox batch put", "events/s", 0, float(r["rate"]), "events/s")
        log(f"filled {outbox} with {n} events at {float(r['rate']):.0f}/s ({r['bytes']} bytes each)")

    def db_us_per_event(self, r, n):
        return 1e6 * r["cpu_s"].get(self.db_label(), 0.0) / n

    def case_relays(self, rep, cases):
        """Cases 1, 2, 2b, 6 and 8: everything that relays the drain log.
        The single-sink drains run first: they are the baselines of the
        fan-out ratios, measured minutes before them under the same load."""
        n = self.a.events
        r = self.run([self.prog("bench_read"), "--uri", self.uri, "--db", DB, "--outbox", "drain",
                      "--events", str(n)], "read ceiling")
        read = float(r["rate"])
        self.record("drain", "raw tailable cursor (read ceiling)", "events/s", rep, read, "events/s")
        log(f"rep {rep}: read ceiling {read:.0f}/s")
        single, single_db = {}, {}
        for sink in self.sinks:
            name = self.name(f"raw-{sink}-")
            dargs, _, _ = self.dest_args(sink, name)
            self.prepare(sink, dargs)
            w = float(self.run([self.prog("bench_raw"), sink, "--events", str(n)] + dargs, f"raw {sink}")["rate"])
            self.record("drain", f"raw {sink} producer (write ceiling)", "events/s", rep, w, "events/s")
            res = self.relay("drain", n, [(sink, self.name(f"d-{sink}-"))])
            (r,) = res.values()
            single[sink] = r["rate"]
            single_db[sink] = self.db_us_per_event(r, n)
            self.record("drain", f"outboxd -> {sink}", "events/s", rep, r["rate"], "events/s")
            self.record("drain", f"outboxd -> {sink}", "ratio to min(read, write)", rep, r["rate"] / min(read, w), "x")
            self.record("checkpoint", f"default policy, {sink}", "writes per 100 events", rep,
                        100.0 * r.get("ckpt_writes", 0) / n, "writes")
            self.record("memory", f"outboxd -> {sink}", "peak RSS", rep, r["rss_kb"] / 1024, "MB")
            self.record_cpu(f"drain to {sink}", rep, r, n)
            self.record_tails("drain", rep, res, n, f"outboxd -> {sink}: its tails on the log")
            log(f"rep {rep}: {sink}: raw write {w:.0f}/s, outboxd {r['rate']:.0f}/s, "
                f"{r.get('ckpt_writes')} checkpoint writes, peak RSS {r['rss_kb'] / 1024:.1f} MB, "
                f"database {single_db[sink]:.0f} us CPU per event")

        if "fanout" in cases and len(self.broker_sinks) >= 2:
            self.fanout(rep, n, read, single)
        if "fanout-files" in cases and "file" in self.sinks:
            self.fanout_files(rep, n, single["file"], single_db["file"])
        if "base" in cases and "base" in self.builds:
            self.versus_base(rep, n)
        if "naive" in cases and "kafka" in self.sinks:
            self.naive(rep, n, single["kafka"])

    def record_tails(self, case, rep, res, n, subject="outboxd's tails on the log"):
        """The tails outboxd opened on the log in a fan-out run, from its own
        log lines (an outboxd without the shared reader logs none): the
        shared reader's, and each sink's catch-up tails; and how many events
        the shared reader read per event in the log."""
        reader = next(iter(res.values())).get("reader")
        if not reader:
            return
        catchup = sum(r.get("catchup_tails", 0) for r in res.values())
        self.record(case, subject, "shared reader's tails opened", rep, reader["shared_tails"], "tails")
        self.record(case, subject, "sinks' catch-up tails opened (all sinks)", rep, catchup, "tails")
        self.record(case, subject, "events read by the shared reader / events in the log",
                    rep, reader["events_read"] / n, "x")

    def record_cpu(self, subject, rep, r, n):
        for proc, c in sorted(r["cores"].items()):
            self.record("cpu", subject, proc, rep, c, "cores")
        self.record("cpu", subject, "outboxd CPU per event", rep, 1e6 * r["cpu_s"].get("outboxd", 0.0) / n, "us")
        self.record("cpu", subject, "database CPU per event", rep, self.db_us_per_event(r, n), "us")
        self.record("cpu", subject, "database, idle just before the run", rep, r["db_idle_cores"], "cores")

    def fanout(self, rep, n, read, single):
        # The server's share, had each sink its own cursor: bare cursors,
        # one per sink, reading the log at once, each against the single
        # bare cursor above. With one shared reader outboxd no longer pays it.
        # At most 20,000 events each: a rate, and the slowest part of a repetition.
        readers = [subprocess.Popen([self.prog("bench_read"), "--uri", self.uri, "--db", DB, "--outbox", "drain",
                                     "--events", str(min(n, 20000))], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
                   for _ in self.broker_sinks]
        rates = []
        for c in readers:
            so, se = c.communicate()
            if c.returncode != 0:
                raise BenchError(f"raw readers at once: {se.strip()[-500:]}")
            rates.append(float(parse_result(so, "raw reader")["rate"]))
        self.record("fanout", "raw tailable cursors, one per sink, at once (each)", "events/s", rep, statistics.median(rates),
                    "events/s")
        self.record("fanout", "raw tailable cursors, one per sink, at once (each)", "ratio to one raw cursor", rep,
                    statistics.median(rates) / read, "x")

        res = self.relay("drain", n, [(s, self.name(f"f-{s}-")) for s in self.broker_sinks])
        for r in res.values():
            self.record("fanout", f"outboxd -> {r['sink']} (all at once)", "events/s", rep, r["rate"], "events/s")
            self.record("fanout", f"outboxd -> {r['sink']} (all at once)", "ratio to single-sink rate", rep,
                        r["rate"] / single[r["sink"]], "x")
            rss = r["rss_kb"]
        self.record_tails("fanout", rep, res, n)
        self.record_cpu("fan-out to " + " + ".join(self.broker_sinks), rep, r, n)
        self.record("memory", "outboxd -> " + " + ".join(self.broker_sinks), "peak RSS", rep, rss / 1024, "MB")
        log(f"rep {rep}: fan-out " + ", ".join(f"{r['sink']} {r['rate']:.0f}/s" for r in res.values())
            + f", peak RSS {rss / 1024:.1f} MB")

    def fanout_files(self, rep, n, single_rate, single_db):
        """Three file sinks from one outbox: what the database spends per
        event (its process's CPU seconds over the run / events) against
        the single file sink's run of this repetition. The file sinks take
        no CPU worth counting, so the database's share is the reading."""
        res = self.relay("drain", n, [("file", self.name(f"ff{i}-")) for i in (1, 2, 3)])
        for i, r in enumerate(res.values(), 1):
            self.record("fanout-files", f"outboxd -> file {i} of 3", "events/s", rep, r["rate"], "events/s")
            self.record("fanout-files", f"outboxd -> file {i} of 3", "ratio to single-sink rate", rep,
                        r["rate"] / single_rate, "x")
        db = self.db_us_per_event(r, n)
        self.record("fanout-files", "database CPU per event, one file sink", "CPU", rep, single_db, "us")
        self.record("fanout-files", "database CPU per event, three file sinks", "CPU", rep, db, "us")
        self.record("fanout-files", "database CPU per event, three file sinks",
                    "ratio to one file sink", rep, db / single_db, "x")
        self.record_tails("fanout-files", rep, res, n)
        self.record_cpu("fan-out to three files", rep, r, n)
        self.record("memory", "outboxd -> file x 3", "peak RSS", rep, r["rss_kb"] / 1024, "MB")
        log(f"rep {rep}: fan-out to 3 files: " + ", ".join(f"{r['rate']:.0f}/s" for r in res.values())
            + f"; database {db:.0f} us CPU per event against {single_db:.0f} with one sink"
            + f", peak RSS {r['rss_kb'] / 1024:.1f} MB")

    def versus_base(self, rep, n):
        """The drain of one sink by this build and by the base build (an
        earlier commit's outboxd and plugins), in pairs run back to back
        and in ABBA order (base, this, this, base; the next repetition
        this, base, base, this), so that a drift of the machine's speed
        during a repetition favours neither. Each pair gives one ratio; the
        report takes their median. On a 2-core machine shared with the
        servers, one drain's rate varies by several percent from run to
        run: the pairs' spread in the report is the noise to read a ratio
        against."""
        for sink in self.a.base_sinks.split(","):
            first, second = ("base", "head") if rep % 2 else ("head", "base")
            got = {"base": [], "head": []}
            for build in [first, second, second, first][:2 * self.a.base_pairs]:
                res = self.relay("drain", n, [(sink, self.name(f"v{build}-{sink}-"))], build=build)
                got[build].append(next(iter(res.values())))
            for build, what in [("base", "base build"), ("head", "this build")]:
                for r in got[build]:
                    self.record("base", f"outboxd -> {sink}, {what}", "events/s", rep, r["rate"], "events/s")
                    self.record("base", f"outboxd -> {sink}, {what}", "database CPU per event", rep,
                                self.db_us_per_event(r, n), "us")
                    self.record("base", f"outboxd -> {sink}, {what}", "outboxd CPU per event", rep,
                                1e6 * r["cpu_s"].get("outboxd", 0.0) / n, "us")
                    self.record("base", f"outboxd -> {sink}, {what}", "peak RSS", rep, r["rss_kb"] / 1024, "MB")
            self.record_tails("base", rep, {0: got["head"][0]}, n, f"outboxd -> {sink}, this build: its tails")
            ratios = [h["rate"] / b["rate"] for h, b in zip(got["head"], got["base"])]
            for x in ratios:
                self.record("base", f"outboxd -> {sink}, this build", "ratio to the base build (per pair)", rep, x, "x")
            log(f"rep {rep}: {sink}: this build " + ", ".join(f"{r['rate']:.0f}/s" for r in got["head"])
                + "; base build " + ", ".join(f"{r['rate']:.0f}/s" for r in got["base"])
                + "; ratios " + ", ".join(f"{x:.3f}" for x in ratios))

    def naive(self, rep, n, outboxd_kafka):
        topic = self.name("naive-")
        dargs, _, _ = self.dest_args("kafka", topic)
        self.prepare("kafka", dargs)
        r = self.run([self.prog("bench_naive"), "--uri", self.uri, "--db", DB, "--outbox", "drain",
                      "--brokers", self.env["OUTBOX_TEST_KAFKA_BROKERS"], "--topic", topic, "--events", str(n),
                      "--seconds", str(self.a.naive_seconds), "--name", self.name("naive-")], "naive relay")
        naive = float(r["rate"])
        self.record("naive", "naive relay -> kafka", "events/s", rep, naive, "events/s")
        for step, what in [("read_ms", "reading the event"), ("produce_ms", "producing it, waiting for the ack"),
                           ("checkpoint_ms", "writing the checkpoint")]:
            if step in r:
                self.record("naive", "naive relay -> kafka", f"ms per event {what}", rep, float(r[step]), "ms")
        self.record("naive", "outboxd -> kafka", "speed-up over the naive relay", rep, outboxd_kafka / naive, "x")
        log(f"rep {rep}: naive relay {naive:.0f}/s ({r['events']} events)")

    def case_checkpoint(self, rep):
        n = self.a.ckpt_events
        for label, every in [("default (every 1000 events or 1 s)", 1000), ("every event", 1)]:
            res = self.relay("ckpt", n, [("file", self.name("c-file-"))], every_events=every)
            (r,) = res.values()
            self.record("checkpoint", f"{label}, file", "events/s", rep, r["rate"], "events/s")
            self.record("checkpoint", f"{label}, file", "writes per 100 events", rep,
                        100.0 * r.get("ckpt_writes", 0) / n, "writes")
            log(f"rep {rep}: checkpoint {label}: {r['rate']:.0f}/s, {r.get('ckpt_writes')} writes")

    def sink_ceiling(self, sink, name, n, extra=(), what=""):
        """bench_sink to a fresh destination called name: its rate, once
        the destination is seen to hold all n (extra: more arguments)."""
        dargs, route, opts = self.dest_args(sink, name)
        self.prepare(sink, dargs)
        argv = [self.prog("bench_sink"), "--plugin-dir", self.plugins, "--plugin", sink, "--route", route,
                "--events", str(n)] + list(extra)
        for k, v in opts.items():
            argv += ["--option", f"{k}={v}"]
        what = f"sink ceiling {sink}{what}"
        rate = float(self.run(argv, what)["rate"])
        got = self.count(sink, dargs)
        if got != n:
            raise BenchError(f"{what}: {got} messages at the destination for {n} events")
        return rate

    def case_sink_ceiling(self, rep):
        n = self.a.ceiling_events
        for sink in (self.a.ceiling_sinks or self.a.sinks).split(","):
            name = self.name(f"raw-c-{sink}-")
            dargs, _, _ = self.dest_args(sink, name)
            self.prepare(sink, dargs)
            raw = float(self.run([self.prog("bench_raw"), sink, "--events", str(n)] + dargs, f"raw {sink}")["rate"])
            plug = self.sink_ceiling(sink, self.name(f"c-{sink}-"), n)
            self.record("ceiling", f"raw {sink} producer", "events/s", rep, raw, "events/s")
            self.record("ceiling", f"{sink} plugin via the ABI", "events/s", rep, plug, "events/s")
            self.record("ceiling", f"{sink} plugin via the ABI", "ratio to the raw producer", rep, plug / raw, "x")
            log(f"rep {rep}: ceiling {sink}: raw {raw:.0f}/s, plugin {plug:.0f}/s")

    def case_json(self, rep):
        """Case 9, the JSON encoders, from bench_json (engineer J's,
        bench/bench_json.c; built on demand, bench/run asks make for it):
        outboxd's writer against libbson's printer and jansson, per
        document, events/s and bytes of JSON. Its RESULT keys are
        DOC_ENCODER_rate and DOC_ENCODER_bytes; any other shape is
        tabled as it comes. Not built (no jansson): the case says so."""
        prog = self.prog("bench_json")
        if not os.access(prog, os.X_OK):
            if rep == 1:
                self.notes.append("case 9 (JSON encoders) not run: bench/bench_json is not built "
                                  "(`make bench/bench_json` needs libjansson-dev)")
            return
        argv = [prog, "--n", str(self.a.json_n), "--repeat", "1" if self.a.quick else "3"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            raise BenchError(f"bench_json: exit {p.returncode}: {p.stderr.strip()[-800:]}")
        res = parse_result(p.stdout, "bench_json")
        cells = {}
        for k, v in res.items():
            m = re.fullmatch(r"([a-z0-9]+)_([a-z0-9-]+)_(rate|bytes)", k)
            if m and number(v) is not None:
                cells.setdefault(m.group(1), {}).setdefault(m.group(2), {})[m.group(3)] = number(v)
            elif k not in ("n", "repeat") and number(v) is not None:
                self.record("json", "bench_json", k, rep, number(v), "")
        for doc, encs in cells.items():
            for enc, f in encs.items():
                if "rate" in f:
                    self.record("json", f"{doc}: {enc}", "events/s", rep, f["rate"], "events/s")
                if "bytes" in f:
                    self.record("json", f"{doc}: {enc}", "bytes of JSON", rep, f["bytes"], "bytes")
            ours = encs.get("outboxd", {}).get("rate")
            for enc, f in encs.items():
                if enc != "outboxd" and ours and f.get("rate"):
                    self.record("json", f"{doc}: outboxd", f"rate / {enc}'s", rep, ours / f["rate"], "x")
        if rep == 1:
            # "a double as written", the table's last column (stderr): the
            # point of the writer is 19.95 where libbson writes 17+ digits.
            shown = []
            for line in p.stderr.splitlines():
                w = line.split()
                if len(w) >= 6 and w[3].replace(".", "").isdigit() and w[4].isdigit():
                    shown.append(f"{w[0]}/{w[2]}: `{w[5]}`")
            if shown:
                self.notes.append("bench_json, the first double of each document as each encoder wrote it: "
                                  + ", ".join(shown))
        log(f"rep {rep}: bench_json: " + " ".join(f"{k}={v}" for k, v in res.items()))

    def case_latency(self, rep):
        # One sink at a time, each beside its own raw tailable cursor: with
        # every sink's tail, the raw one and the producers at once, this
        # machine's two cores ran out and the figures measured the queueing.
        for sink in self.sinks:
            self.latency_one(rep, sink)

    def latency_one(self, rep, sink):
        outbox = self.name("lat-")
        secs, rate = self.a.latency_seconds, self.a.latency_rate
        expect = secs * rate
        put = [self.prog("bench_put"), "--uri", self.uri, "--db", DB, "--outbox", outbox, "--capped-size", CAPPED]
        self.run(put + ["--ensure-only"], "ensure the latency outbox")
        name = self.name(f"l-{sink}-")
        dargs, route, opts = self.dest_args(sink, name)
        self.prepare(sink, dargs)
        raw = f"raw tailable cursor (beside {sink})"
        consumers = [(sink, [self.prog("bench_dest"), "latency", sink] + dargs),
                     (raw, [self.prog("bench_read"), "--uri", self.uri, "--db", DB, "--outbox", outbox, "--latency"])]
        conf = self.write_config(outbox, [(name, sink, route, opts)])
        p, logpath = self.start_outboxd(conf)
        procs, res = [], {}
        try:
            self.wait_log(logpath, r"opened \(plugin", 1)
            for label, argv in consumers:
                c = subprocess.Popen(argv + ["--events", str(expect), "--timeout-s", str(secs + 60),
                                             "--warmup", str(WARMUP)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                procs.append((label, c))
                line = c.stdout.readline()
                if line.strip() != "READY":
                    raise BenchError(f"latency consumer {label}: {line.strip()} {c.stderr.read()[-500:]}")
            # Warm-up events, read but not measured: a sink's first message
            # to a new destination waits for its metadata (Kafka: ~1 s).
            self.run(put + ["--events", str(WARMUP), "--batch", "1"], "warm-up events")
            time.sleep(2)
            r = self.run(put + ["--rate", str(rate), "--seconds", str(secs), "--threads", "4"], "steady producer", timeout=secs + 120)
            put_n = int(r["events"])
            self.record("latency", f"producers (liboutbox put), {sink} run", "events/s achieved", rep,
                        float(r["rate"]), "events/s")
            self.record("latency", f"producers (liboutbox put), {sink} run", "behind schedule, max", rep,
                        float(r["behind_max_ms"]), "ms")
            if put_n != expect:
                self.notes.append(f"latency rep {rep}, {sink}: the producers put {put_n} events of {expect}")
            for label, c in procs:
                so, se = c.communicate(timeout=secs + 60)
                if c.returncode != 0:
                    raise BenchError(f"latency consumer {label}: {se.strip()[-500:]}")
                res[label] = parse_result(so, f"latency {label}")
        finally:
            for _, c in procs:
                if c.poll() is None:
                    c.kill()
            if p.poll() is None:
                self.stop_outboxd(p, logpath)
        for label, r in res.items():
            if int(r["received"]) != put_n:
                raise BenchError(f"latency: {label} received {r['received']} of {put_n} events")
            subject = label if label.startswith("raw") else f"put -> {label}"
            for q in ["p50", "p99", "max"]:
                self.record("latency", subject, q, rep, float(r[f"{q}_ms"]), "ms")
        self.record("latency", f"put -> {sink}", "p99 over the raw tail's p99", rep,
                    float(res[sink]["p99_ms"]) - float(res[raw]["p99_ms"]), "ms")
        log(f"rep {rep}: latency p99 " + ", ".join(f"{k} {float(v['p99_ms']):.1f} ms" for k, v in res.items()))
        self.mongo[DB].drop_collection(outbox)
        self.mongo[DB].drop_collection(outbox + ".checkpoints")

    # ---- HA (issue 14, docs/leases.md 7.4) ----------------------------------

    def boot_ms(self):
        """outboxd's lease clock (CLOCK_BOOTTIME): its log lines' mono_ms
        are on the same time line as this on one host."""
        return time.clock_gettime(time.CLOCK_BOOTTIME) * 1000.0

    def newest_claim(self, outbox, sink):
        """The newest claim of the sink's lease in N.leases (docs/leases.md
        1.2), or None."""
        return self.mongo[DB][outbox + ".leases"].find_one(
            {"_id.lease": "sink:" + sink, "_id.op": {"$exists": False}}, sort=[("_id.term", -1)])

    def active_holder(self, outbox, sink, running, timeout=120):
        """Waits until an instance in running (instance id -> process)
        holds the sink and has claimed its checkpoint; returns (id, term)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            c = self.newest_claim(outbox, sink)
            if c and not c.get("released") and c.get("owner") in running:
                cp = self.mongo[DB][outbox + ".checkpoints"].find_one({"_id": sink}) or {}
                if cp.get("term") == c["_id"]["term"]:
                    return c["owner"], c["_id"]["term"]
            time.sleep(0.01)
        raise BenchError(f"ha: no running instance holds sink {sink} after {timeout} s")

    def acquired_ms(self, logpath, sink, term):
        """mono_ms of the log's line "lease sink:NAME: acquired term T"."""
        pat = re.compile(r"lease sink:" + re.escape(sink) + r": acquired term " + str(term) + r"\b.*mono_ms=(\d+)")
        for line in open(logpath, errors="replace"):
            m = pat.search(line)
            if m:
                return float(m.group(1))
        return None

    def ha_server_writes(self):
        """Write commands the server has served (anyone's): opcounters on
        mongod, metrics.commands on FerretDB; None when it says neither."""
        st = self.mongo.admin.command("serverStatus")
        if "opcounters" in st:
            return sum(st["opcounters"].get(k, 0) for k in ("insert", "update", "delete"))
        cmds = st.get("metrics", {}).get("commands")
        if cmds:
            return sum(cmds.get(k, {}).get("total", 0) for k in ("insert", "update", "delete", "findAndModify"))
        return None

    def ha_takeover(self, rep):
        """kill -9 of the holder of a file sink, ha_kills times per lease
        setting, two instances, a steady producer: the time from the kill to
        the other instance's claim (its log line's mono_ms) and to its first
        published event (the file grows again)."""
        for setting in self.a.ha_settings.split(","):
            ttl, renew = (int(x) for x in setting.split("/"))
            outbox, sink = self.name("ha-take-"), "take"
            path = os.path.join(self.tmp, self.name("take-") + ".jsonl")
            put = [self.prog("bench_put"), "--uri", self.uri, "--db", DB, "--outbox", outbox, "--capped-size", CAPPED]
            self.run(put + ["--ensure-only"], "ensure the takeover outbox")
            confs = {i: self.write_config(outbox, [(sink, "file", path, {"fsync": "never"})], 100, 200,
                                          {"lease_ttl_ms": ttl, "renew_ms": renew, "instance_id": i})
                     for i in ("a", "b")}
            running, logs = {}, {}

            def start(i):
                # A log per run: a restart must not truncate what the killed one said.
                running[i], logs[i] = self.start_outboxd(confs[i], logpath=os.path.join(
                    self.tmp, self.name(f"take-{i}-") + ".log"))

            producer = subprocess.Popen(put + ["--rate", str(self.a.ha_rate), "--seconds", "3600", "--threads", "1"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            to_claim, to_event = [], []
            try:
                start("a")
                self.active_holder(outbox, sink, running)
                start("b")
                for k in range(self.a.ha_kills):
                    holder, term = self.active_holder(outbox, sink, running)
                    other = "b" if holder == "a" else "a"
                    # Events flow from the holder before it dies.
                    size = os.path.getsize(path) if os.path.exists(path) else 0
                    deadline = time.time() + 60
                    while (os.path.getsize(path) if os.path.exists(path) else 0) <= size:
                        if time.time() > deadline:
                            raise BenchError(f"ha: sink {sink} publishes nothing ({logs[holder]})")
                        time.sleep(0.01)
                    p = running.pop(holder)
                    t_kill = self.boot_ms()
                    p.kill()
                    p.wait()
                    size = os.path.getsize(path)
                    t_event = t_claim = None
                    deadline = time.time() + 3 * ttl / 1000 + 60
                    while t_event is None or t_claim is None:
                        if time.time() > deadline:
                            raise BenchError(f"ha: no takeover of sink {sink} after kill -9 ({logs[other]})")
                        if t_event is None and os.path.getsize(path) > size:
                            t_event = self.boot_ms()
                        if t_claim is None:
                            c = self.newest_claim(outbox, sink)
                            if c and c["_id"]["term"] > term:
                                t_claim = self.acquired_ms(logs[other], sink, c["_id"]["term"]) or self.boot_ms()
                        time.sleep(0.002)
                    to_claim.append(t_claim - t_kill)
                    to_event.append(t_event - t_kill)
                    log(f"rep {rep}: ha {ttl}/{renew}: kill {k + 1}: the other instance claimed after "
                        f"{t_claim - t_kill:.0f} ms, published after {t_event - t_kill:.0f} ms")
                    start(holder)
            finally:
                producer.kill()
                producer.wait()
                for i, p in running.items():
                    if p.poll() is None:
                        self.stop_outboxd(p, logs[i])
                for suffix in ("", ".checkpoints", ".leases", ".pending"):
                    self.mongo[DB].drop_collection(outbox + suffix)
            subj = f"takeover after kill -9, lease_ttl_ms {ttl}, renew_ms {renew}"
            for k, (c, e) in enumerate(zip(to_claim, to_event), 1):
                self.record("ha", subj, "kill to the other instance's claim", rep, c, "ms")
                self.record("ha", subj, "kill to its first published event", rep, e, "ms")
            self.record("ha", subj, "kill to the claim, max", rep, max(to_claim), "ms")
            self.record("ha", subj, "kill to the first event, max", rep, max(to_event), "ms")
            self.record("ha", subj, "kill to the claim, median / (lease_ttl_ms + renew_ms)", rep,
                        statistics.median(to_claim) / (ttl + renew), "x")

    def ha_lease_writes(self, rep):
        """Two instances, four file sinks, idle (no event), once the sinks
        are spread 2 + 2: the lease traffic over ha_idle_seconds, counted
        from the documents themselves (each renewal increments its claim's
        or presence's renewals; a new claim is an insert), and the
        server's own count of write commands (anyone's)."""
        ttl, renew = self.a.ha_idle_lease
        outbox = self.name("ha-idle-")
        sinks = [f"idle{i}" for i in range(1, 5)]
        put = [self.prog("bench_put"), "--uri", self.uri, "--db", DB, "--outbox", outbox, "--capped-size", CAPPED]
        self.run(put + ["--ensure-only"], "ensure the idle outbox")
        specs = [(s, "file", os.path.join(self.tmp, self.name(s + "-") + ".jsonl"), {"fsync": "never"}) for s in sinks]
        ha = {} if ttl is None else {"lease_ttl_ms": ttl, "renew_ms": renew}
        running, logs = {}, {}
        try:
            for i in ("a", "b"):
                conf = self.write_config(outbox, specs, ha=dict(ha, instance_id=i))
                running[i], logs[i] = self.start_outboxd(conf)
            deadline = time.time() + 180
            while True:
                owners = [self.active_holder(outbox, s, running)[0] for s in sinks]
                if owners.count("a") == 2:
                    break
                if time.time() > deadline:
                    raise BenchError(f"ha: the sinks never spread 2 + 2 over two instances ({owners})")
                time.sleep(0.2)
            leases = self.mongo[DB][outbox + ".leases"]

            def counts():
                sink_w = presence = promoter = 0
                for d in leases.find({}):
                    i = d["_id"]
                    if "instance" in i:
                        presence += d.get("renewals", 0)
                    elif "op" in i:
                        continue
                    elif i.get("lease", "").startswith("sink:"):
                        sink_w += 1 + d.get("renewals", 0) + (1 if d.get("released") else 0)
                    else:
                        promoter += 1 + d.get("renewals", 0) + (1 if d.get("released") else 0)
                return sink_w, presence, promoter, self.ha_server_writes()

            c0, t0 = counts(), time.time()
            time.sleep(self.a.ha_idle_seconds)
            c1, secs = counts(), time.time() - t0
        finally:
            for i, p in running.items():
                if p.poll() is None:
                    self.stop_outboxd(p, logs[i])
            for suffix in ("", ".checkpoints", ".leases", ".pending"):
                self.mongo[DB].drop_collection(outbox + suffix)
        subj = f"idle, 2 instances, 4 file sinks, renew_ms {renew or 'default'}"
        self.record("ha", subj, "lease writes per second per sink", rep, (c1[0] - c0[0]) / secs / len(sinks), "/s")
        self.record("ha", subj, "presence writes per second per instance", rep, (c1[1] - c0[1]) / secs / 2, "/s")
        self.record("ha", subj, "promoter lease writes per second", rep, (c1[2] - c0[2]) / secs, "/s")
        # One find of N.leases per round and instance, as many as presence renewals.
        self.record("ha", subj, "lease reads per second, both instances", rep, (c1[1] - c0[1]) / secs, "/s")
        if c0[3] is not None and c1[3] is not None:
            self.record("ha", subj, "write commands per second on the server (anyone's)", rep,
                        (c1[3] - c0[3]) / secs, "/s")
        log(f"rep {rep}: ha idle: {(c1[0] - c0[0]) / secs / len(sinks):.2f} lease writes/s per sink, "
            f"{(c1[1] - c0[1]) / secs / 2:.2f} presence writes/s per instance over {secs:.0f} s")

    def paired_drain(self, rep, n, case, what, modes, ratio_metric, sink="file"):
        """The drain of one sink (file unless said) in two set-ups, in pairs
        back to back in ABBA order (as case 8): modes = {"on": relay kwargs,
        "off": ...}; records each drain under "drain, SINK sink, WHAT MODE"
        and the ratio on / off per pair. Returns the relays' results per
        mode."""
        first, second = ("off", "on") if rep % 2 else ("on", "off")
        got = {"on": [], "off": []}
        for mode in [first, second, second, first][:2 * self.a.ha_pairs]:
            res = self.relay("drain", n, [(sink, self.name(f"{case}{mode}-{sink}-"))], **modes[mode])
            got[mode].append(next(iter(res.values())))
        for mode in ("on", "off"):
            subj = f"drain, {sink} sink, {what(mode)}"
            for r in got[mode]:
                self.record(case, subj, "events/s", rep, r["rate"], "events/s")
                self.record(case, subj, "outboxd CPU per event", rep, 1e6 * r["cpu_s"].get("outboxd", 0.0) / n, "us")
                self.record(case, subj, "database CPU per event", rep, self.db_us_per_event(r, n), "us")
        ratios = [a["rate"] / b["rate"] for a, b in zip(got["on"], got["off"])]
        for x in ratios:
            self.record(case, f"drain, {sink} sink", ratio_metric, rep, x, "x")
        log(f"rep {rep}: {case} drain ({sink}): on " + ", ".join(f"{r['rate']:.0f}/s" for r in got["on"]) + "; off "
            + ", ".join(f"{r['rate']:.0f}/s" for r in got["off"]) + "; ratios "
            + ", ".join(f"{x:.3f}" for x in ratios))
        return got

    def ha_drain(self, rep, n):
        """The drain of one file sink with ha.enabled true and false."""
        self.paired_drain(rep, n, "ha", lambda m: f"ha.enabled: {'true' if m == 'on' else 'false'}",
                          {"on": {"ha": {"enabled": "true"}}, "off": {"ha": {"enabled": "false"}}},
                          "ha on / ha off (per pair)")

    def case_metrics(self, rep):
        """Issue 15's figures: the drain with /metrics scraped every second
        against no endpoint (every repetition), and the scrape of 16 sinks
        (first repetition)."""
        got = self.paired_drain(rep, self.a.events, "metrics",
                                lambda m: "/metrics scraped every second" if m == "on" else "no http endpoint",
                                {"on": {"scrape": True}, "off": {}}, "scraped / no endpoint (per pair)")
        for r in got["on"]:
            self.record("metrics", "drain, file sink, /metrics scraped every second", "scrapes during the drain",
                        rep, r["scrapes"], "")
        self.paired_drain(rep, self.a.events, "survey",
                          lambda m: "log survey every 10 s (the default)" if m == "on" else "no log survey",
                          {"on": {}, "off": {"logsec": {"survey_ms": 0}}},
                          "survey / no survey (per pair)")
        if rep == 1:
            self.metrics_scrape_16(rep)
            self.survey_walk(rep)

    def case_formats(self, rep):
        """Issue 19's figure: the drain of one file sink with format:
        cloudevents (structured: one JSON object per event, built by
        outboxd around the shared data JSON) against native."""
        ce = '    format: cloudevents\n    cloudevents:\n      source: "/bench/{outbox}"\n'
        self.paired_drain(rep, self.a.events, "formats",
                          lambda m: "format: cloudevents" if m == "on" else "format: native",
                          {"on": {"sinkyaml": ce}, "off": {}}, "cloudevents / native (per pair)")
        self.formats_ceiling(rep)

    def formats_ceiling(self, rep):
        """Each sink's ceiling (bench_sink, as case 7) with format:
        cloudevents and format: debezium against native, in the order
        A B C C B A (rotated each repetition): the messages laid out by
        outboxd's own msgformat.c inside the timed loop (binary content mode
        for Kafka, structured for the others). Debezium's layout sends the
        native payload with one header: the control that tells the cost of
        the as-given path itself from that of CloudEvents' larger messages."""
        n = self.a.ceiling_events
        formats = ["native", "cloudevents", "debezium"]
        order = formats[rep % 3:] + formats[:rep % 3]
        for sink in (self.a.ceiling_sinks or self.a.sinks).split(","):
            got = {f: [] for f in formats}
            for fmt in (order + order[::-1])[:3 * self.a.ha_pairs]:
                rate = self.sink_ceiling(sink, self.name(f"f-{fmt[:2]}-{sink}-"), n, ["--format", fmt],
                                         f", format {fmt}")
                got[fmt].append(rate)
                self.record("formats", f"{sink} plugin via the ABI, format: {fmt}", "events/s", rep, rate,
                            "events/s")
            for fmt in ("cloudevents", "debezium"):
                for x in (a / b for a, b in zip(got[fmt], got["native"])):
                    self.record("formats", f"sink ceiling, {sink}", f"{fmt} / native (per pair)", rep, x, "x")
            log(f"rep {rep}: formats ceiling {sink}: " + "; ".join(
                f"{f} " + ", ".join(f"{r:.0f}/s" for r in got[f]) for f in formats))

    def fill_pending(self, outbox, n):
        """n committed transactional events in outbox's N.pending, as a
        transaction leaves them (the envelope of docs/envelope.md)."""
        pending = self.mongo[DB][outbox + ".pending"]
        now = datetime.datetime.now(datetime.timezone.utc)
        for start in range(0, n, 1000):
            pending.insert_many([{"_id": ObjectId(), "type": "order.created", "key": f"order-{i % 97}",
                                  "data": {"ordernr": i + 1, "total": 19.95, "lines": [{"sku": "ABC-42", "qty": 1}]},
                                  "created": now, "v": 1} for i in range(start, min(n, start + 1000))])

    def case_promote(self, rep):
        """Issue 22's promoter: n committed transactional events moved from
        N.pending into the log by outboxctl promote (liboutbox's promoter:
        majority reads and writes, envelopes screened, ordered inserts,
        each document settled), beside the raw two steps with pymongo and
        no checks (the oldest 500 by _id, an unordered insert_many into the
        log, a delete_many by _id), which is what the promoter did before."""
        n = self.a.promote_events
        ctl = os.path.join(self.build, "outboxctl", "outboxctl")
        rates = {}
        for label in ("outboxctl promote (liboutbox)", "raw pymongo loop"):
            outbox = self.name("promote-")
            p = subprocess.run([ctl, "--uri", self.uri, "--db", DB, "--outbox", outbox, "init", "--size", CAPPED],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise BenchError(f"outboxctl init {outbox}: {p.stderr.strip()}")
            self.fill_pending(outbox, n)
            pending, log_ = self.mongo[DB][outbox + ".pending"], self.mongo[DB][outbox]
            t0 = time.monotonic()
            if label.startswith("outboxctl"):
                p = subprocess.run([ctl, "--uri", self.uri, "--db", DB, "--outbox", outbox, "promote"],
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    raise BenchError(f"outboxctl promote: {p.stderr.strip()}")
            else:
                while True:
                    docs = list(pending.find({}, sort=[("_id", 1)], limit=500))
                    if not docs:
                        break
                    log_.insert_many(docs, ordered=False)
                    pending.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
            secs = time.monotonic() - t0
            moved, left = log_.estimated_document_count(), pending.estimated_document_count()
            for suffix in ("", ".pending", ".checkpoints", ".schemas", ".quarantine"):
                self.mongo[DB].drop_collection(outbox + suffix)
            if moved != n or left != 0:
                raise BenchError(f"promote {label}: {moved} of {n} events in the log, {left} left pending")
            rates[label] = n / secs
            self.record("promote", label, "events/s", rep, rates[label], "events/s")
            log(f"rep {rep}: promote {n} events, {label}: {rates[label]:.0f}/s")
        self.record("promote", "outboxctl promote (liboutbox)", "ratio to the raw loop", rep,
                    rates["outboxctl promote (liboutbox)"] / rates["raw pymongo loop"], "x")

    def case_recovery(self, rep):
        """Issue 18's figures: per sink, the drain with recover on (the
        default: publishing bounded past the durable checkpoint) against
        recover: false; the recovery of a full window (every event of the
        default bound, 2,048 + 2 x 1,000, in doubt and at the destination);
        and the Redis drain with the Lua dedupe against without."""
        for sink in self.a.sinks.split(","):
            self.paired_drain(rep, self.a.events, "recovery",
                              lambda m: "recover on (the default)" if m == "on" else "recover: false",
                              {"on": {}, "off": {"sinkyaml": "    recover: false\n"}}, "recover on / off (per pair)",
                              sink=sink)
        if "redis" in self.a.sinks.split(","):
            self.paired_drain(rep, self.a.events, "recovery",
                              lambda m: "dedupe: true (Lua)" if m == "on" else "no dedupe",
                              {"on": {"sinkyaml": "    recover: false\n", "sinkopts": {"dedupe": "true"}},
                               "off": {"sinkyaml": "    recover: false\n"}}, "dedupe / no dedupe (per pair)",
                              sink="redis")
        for sink in self.a.sinks.split(","):
            self.full_window_recovery(rep, sink)

    def full_window_recovery(self, rep, sink, window=4048):
        """outboxd drains `window` events with no checkpoint written
        (every_events and every_ms at their maximum), is killed (-9), and
        starts again: every event is in doubt and at the destination. The
        recovery's log line gives the time to read the log and to read the
        destination back; the destination must still hold each event once."""
        outbox = self.name("recovery-")
        self.fill(outbox, window)
        name = self.name(f"rw-{sink}-")
        dargs, route, opts = self.dest_args(sink, name)
        self.prepare(sink, dargs)
        conf = self.write_config(outbox, [(name, sink, route, opts)], 1000000, 3600000, {"enabled": "false"})
        p, logpath = self.start_outboxd(conf)
        w = subprocess.run([self.prog("bench_dest"), "wait", sink, "--events", str(window), "--timeout-s", "300"]
                           + dargs, capture_output=True, text=True)
        p.kill()
        p.wait()
        if w.returncode != 0:
            raise BenchError(f"{sink} never held {window} events: {w.stderr.strip()[-500:]} ({logpath})")
        p, logpath = self.start_outboxd(conf, logpath=logpath + ".2")
        line, deadline = None, time.time() + 120
        while line is None and time.time() < deadline and p.poll() is None:
            time.sleep(0.05)
            for l in open(logpath):
                if f"sink {name}: recovered:" in l:
                    line = l
        stats = self.stop_outboxd(p, logpath) if p.poll() is None else None
        if line is None:
            raise BenchError(f"{sink}: no recovery logged within 120 s ({logpath})")
        m = re.search(r"recovered: (\d+) of the (\d+) events in doubt .* read from the log in (\d+) ms, the "
                      r"destination read back in (\d+) ms", line)
        if not m:
            raise BenchError(f"{sink}: cannot read the recovery line: {line.strip()}")
        held, doubt, read_ms, back_ms = (int(x) for x in m.groups())
        got = self.count(sink, dargs)
        if held != window or got != window:
            raise BenchError(f"{sink}: recovery found {held} of {doubt} in doubt; the destination holds {got} "
                             f"for {window} events ({logpath})")
        subj = f"recovery of a full window ({window} events in doubt, all at the destination), {sink}"
        self.record("recovery", subj, "total", rep, read_ms + back_ms, "ms")
        self.record("recovery", subj, "the log read (walk of _ids, then the documents)", rep, read_ms, "ms")
        self.record("recovery", subj, "the destination read back (the plugin's recover)", rep, back_ms, "ms")
        log(f"rep {rep}: recovery of {window} events in doubt, {sink}: log {read_ms} ms, destination {back_ms} ms")
        self.mongo[DB].drop_collection(outbox)
        self.mongo[DB].drop_collection(outbox + ".checkpoints")

    def empty_outbox(self, outbox):
        """A capped log with nothing in it, and no checkpoints: for
        bench_pipeline, whose events never touch it (with its N.pending,
        which outboxd checks for at start)."""
        for name in (outbox, outbox + ".checkpoints", outbox + ".pending"):
            self.mongo[DB].drop_collection(name)
        self.mongo[DB].create_collection(outbox, capped=True, size=int(CAPPED))
        self.mongo[DB].create_collection(outbox + ".pending")

    def case_pipeline(self, rep):
        """Issue 21, outboxd's own ceiling: the whole daemon with its events
        fed from memory (bench_pipeline), per sink beside that sink's
        ceiling (bench_sink, run right before it), then the broker sinks at
        once. outboxd's CPU per event counts its own threads: the process's
        CPU less librdkafka's threads (rdk:*); libnats's cannot be told
        apart and count as outboxd's."""
        n = self.a.ceiling_events
        single = {}
        for sink in (self.a.ceiling_sinks or self.a.sinks).split(","):
            ceiling = self.sink_ceiling(sink, self.name(f"pc-{sink}-"), n)
            self.empty_outbox("pipeline")
            res = self.relay("pipeline", n, [(sink, self.name(f"p-{sink}-"))], logsec={"survey_ms": 0},
                             generate=True)
            (r,) = res.values()
            single[sink] = r["rate"]
            own = r["cpu_s"].get("outboxd", 0.0) - r["client_s"]
            subj = f"outboxd -> {sink}, from memory"
            self.record("pipeline", f"{sink} plugin via the ABI (sink ceiling)", "events/s", rep, ceiling, "events/s")
            self.record("pipeline", subj, "events/s", rep, r["rate"], "events/s")
            self.record("pipeline", subj, "ratio to the sink ceiling", rep, r["rate"] / ceiling, "x")
            self.record("pipeline", subj, "outboxd CPU per event (its own threads)", rep, 1e6 * own / n, "us")
            if r["client_s"] > 0:
                self.record("pipeline", subj, "librdkafka's threads' CPU per event", rep, 1e6 * r["client_s"] / n,
                            "us")
            self.record("pipeline", subj, "peak RSS", rep, r["rss_kb"] / 1024, "MB")
            log(f"rep {rep}: pipeline {sink}: {r['rate']:.0f}/s from memory, sink ceiling {ceiling:.0f}/s, "
                f"outboxd {1e6 * own / n:.1f} us CPU per event")
        brokers = [s for s in self.broker_sinks if s in single]
        if len(brokers) >= 2:
            # A sink that falls behind the ring catches up on the log, which
            # a source in memory does not have: the ring holds all n here
            # (about 1 KB each), so that no sink waits for another.
            self.empty_outbox("pipeline")
            res = self.relay("pipeline", n, [(s, self.name(f"pf-{s}-")) for s in brokers], logsec={"survey_ms": 0},
                             generate=True, reader={"ring_events": n, "ring_bytes": 4 * 1024 ** 3})
            for r in res.values():
                s = r["sink"]
                self.record("pipeline", f"outboxd -> {s}, from memory, all at once", "events/s", rep, r["rate"],
                            "events/s")
                self.record("pipeline", f"outboxd -> {s}, from memory, all at once", "ratio to single", rep,
                            r["rate"] / single[s], "x")
            log(f"rep {rep}: pipeline fan-out: " + ", ".join(f"{r['sink']} {r['rate']:.0f}/s" for r in res.values()))

    def survey_walk(self, rep):
        """One survey of the drain log with a sink whose checkpoint is its
        oldest event and that cannot publish (its route needs a folder where
        a file is), so that the shared reader stops behind the head:
        outboxd's survey (outboxd_log_survey_duration_seconds) beside the
        same reads by pymongo (collStats, the oldest and the newest event,
        the checkpoint event by _id, the walk from the oldest to it)."""
        coll = self.mongo[DB]["drain"]
        oldest = coll.find_one({}, {"_id": 1})["_id"]
        n = coll.estimated_document_count()
        name, port = self.name("walk-"), free_port()
        gate = os.path.join(self.tmp, name)
        open(gate, "w").close()
        self.mongo[DB]["drain.checkpoints"].insert_one({"_id": name, "last_id": oldest, "events": 0})
        conf = self.write_config("drain", [(name, "file", os.path.join(gate, "x.jsonl"), {})],
                                 http=f"127.0.0.1:{port}", logsec={"survey_ms": 2000})
        p, logpath = self.start_outboxd(conf)
        took, lag = None, None
        try:
            deadline = time.time() + 600
            while time.time() < deadline and took is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                        text = resp.read().decode()
                except OSError:
                    time.sleep(0.2)
                    continue
                m = re.search(r"^outboxd_log_survey_duration_seconds (\S+)$", text, re.M)
                lm = re.search(r'^outboxd_sink_lag_events\{sink="%s"[^}]*\} (\S+)$' % name, text, re.M)
                if m and lm:
                    took, lag = float(m.group(1)), float(lm.group(1))
                else:
                    time.sleep(0.2)
        finally:
            if p.poll() is None:
                self.stop_outboxd(p, logpath)
            self.mongo[DB]["drain.checkpoints"].delete_one({"_id": name})
        if took is None:
            raise BenchError(f"no survey figures from outboxd within 600 s (log {logpath})")
        if int(lag) != n - 1:
            raise BenchError(f"survey: lag {lag} for a checkpoint at the oldest of {n} events")
        t = time.perf_counter()
        self.mongo[DB].command("collStats", "drain")
        coll.find_one({}, {"_id": 1, "created": 1})
        coll.find_one({}, {"_id": 1, "created": 1}, sort=[("$natural", -1)])
        list(coll.find({"_id": oldest}, {"_id": 1, "created": 1}).limit(1))
        for doc in coll.find({}, {"_id": 1}, batch_size=10000):
            if doc["_id"] == oldest:
                break
        raw = time.perf_counter() - t
        subj = f"one survey, a sink {int(lag):,} events behind, the reader not at the head"
        self.record("survey", subj, "outboxd: time of the survey", rep, took, "s")
        self.record("survey", subj, "raw: the same reads by pymongo", rep, raw, "s")
        self.record("survey", subj, "outboxd / raw", rep, took / raw if raw else 0.0, "x")
        log(f"rep {rep}: survey with a sink {lag:.0f} events behind ({n} in the log): outboxd {took:.2f} s, "
            f"the same reads by pymongo {raw:.2f} s")

    def metrics_scrape_16(self, rep, sinks=16, fetches=50):
        """outboxd with 16 file sinks over an empty outbox: the time of one
        GET /metrics (curl-like, one connection each) and its size."""
        outbox, port = self.name("m16-"), free_port()
        self.empty_outbox(outbox)  # outboxd refuses an outbox never created
        specs = [(f"s{i}", "file", os.path.join(self.tmp, self.name(f"m16-{i}-") + ".jsonl"), {"fsync": "never"})
                 for i in range(sinks)]
        conf = self.write_config(outbox, specs, http=f"127.0.0.1:{port}")
        p, logpath = self.start_outboxd(conf)
        try:
            self.wait_log(logpath, r"sink s\d+: opened", sinks)
            url, ms, size = f"http://127.0.0.1:{port}/metrics", [], 0
            for _ in range(fetches):
                t = time.perf_counter()
                with urllib.request.urlopen(url, timeout=5) as resp:
                    size = len(resp.read())
                ms.append(1000 * (time.perf_counter() - t))
        finally:
            if p.poll() is None:
                self.stop_outboxd(p, logpath)
            for suffix in ("", ".checkpoints", ".leases", ".pending"):
                self.mongo[DB].drop_collection(outbox + suffix)
        subj = f"GET /metrics, {sinks} sinks, idle"
        self.record("metrics", subj, "time per scrape, median", rep, statistics.median(ms), "ms")
        self.record("metrics", subj, "time per scrape, max", rep, max(ms), "ms")
        self.record("metrics", subj, "size of the scrape", rep, size / 1024, "KiB")
        log(f"rep {rep}: /metrics with {sinks} sinks: median {statistics.median(ms):.2f} ms, max {max(ms):.2f} ms, "
            f"{size} bytes")

    def case_ha(self, rep):
        """Issue 14's figures: takeover and idle lease traffic once (their
        own repetitions: ha_kills kills), the drain on/off every repetition."""
        if rep == 1:
            self.ha_takeover(rep)
            self.ha_lease_writes(rep)
        self.ha_drain(rep, self.a.events)

    # ---- the report -------------------------------------------------------

    def values(self, case, subject, metric):
        return [r[4] for r in self.rows if r[0] == case and r[1] == subject and r[2] == metric]

    def fmt(self, vals, unit):
        if not vals:
            return "-"
        digits = 0 if unit in ("events/s", "docs/s", "tails") else 2
        med = statistics.median(vals)
        if len(vals) == 1:
            return f"{med:,.{digits}f}"
        return f"{med:,.{digits}f} ({min(vals):,.{digits}f} - {max(vals):,.{digits}f})"

    def table(self, case):
        seen, lines = [], []
        for r in self.rows:
            if r[0] == case and (r[1], r[2], r[5]) not in seen:
                seen.append((r[1], r[2], r[5]))
        lines.append("| what | figure | median (min - max) | unit |")
        lines.append("|---|---|---:|---|")
        for subject, metric, unit in seen:
            lines.append(f"| {subject} | {metric} | {self.fmt(self.values(case, subject, metric), unit)} | {unit} |")
        return "\n".join(lines)

    def med(self, case, subject, metric):
        vals = self.values(case, subject, metric)
        return statistics.median(vals) if vals else None

    def why_missed(self, kind, sink):
        """Where the time goes, from this run's own figures, for a missed
        target (docs/performance.md explains each at length)."""
        if kind == "drain":
            cpu = {m: self.med("cpu", f"drain to {sink}", m) for m in
                   ["outboxd", "MongoDB server (FerretDB)", "MongoDB server (mongod)", "Kafka broker", "NATS", "Redis"]}
            used = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if v)
            return (f"drain to {sink}: CPU in cores during the run: {used} (of {os.cpu_count()}); the read ceiling "
                    "was measured with nothing else running, so whatever the broker takes comes out of the "
                    "server's share")
        if kind == "fanout":
            raw = self.med("fanout", "raw tailable cursors, one per sink, at once (each)", "ratio to one raw cursor")
            subj = "fan-out to " + " + ".join(self.broker_sinks)
            cpu = {m: self.med("cpu", subj, m) for m in
                   ["outboxd", self.db_label(), "Kafka broker", "NATS", "Redis"]}
            used = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if v)
            raw_s = f"; bare cursors, one per sink, reading at once got {raw:.2f} x one bare cursor" if raw else ""
            return (f"fan-out: CPU in cores during the fan-out: {used} (of {os.cpu_count()}): the brokers' "
                    f"and outboxd's share of the cores comes out of the database's{raw_s}")
        if kind == "fanout_db_cpu":
            one = self.med("fanout-files", "database CPU per event, one file sink", "CPU")
            three = self.med("fanout-files", "database CPU per event, three file sinks", "CPU")
            idle = self.med("cpu", "fan-out to three files", "database, idle just before the run")
            return (f"database CPU per event: {three:.0f} us with three file sinks against {one:.0f} us with "
                    f"one (the database used {idle:.2f} cores just before, with nothing of ours running): "
                    "the log is read more than once")
        if kind == "vs_base":
            cpu = {b: self.med("base", f"outboxd -> {sink}, {b}", "outboxd CPU per event")
                   for b in ("this build", "base build")}
            db = {b: self.med("base", f"outboxd -> {sink}, {b}", "database CPU per event")
                  for b in ("this build", "base build")}
            return (f"drain to {sink} against the base build: outboxd CPU per event {cpu['this build']:.1f} us "
                    f"(base {cpu['base build']:.1f}), database CPU per event {db['this build']:.0f} us "
                    f"(base {db['base build']:.0f})")
        if kind == "ha_drain":
            cpu = {m: self.med("ha", f"drain, file sink, ha.enabled: {m}", "outboxd CPU per event")
                   for m in ("true", "false")}
            db = {m: self.med("ha", f"drain, file sink, ha.enabled: {m}", "database CPU per event")
                  for m in ("true", "false")}
            return (f"drain with leases: outboxd CPU per event {cpu['true']:.1f} us (off {cpu['false']:.1f}), "
                    f"database CPU per event {db['true']:.0f} us (off {db['false']:.0f}); the lease thread's "
                    "round trips every renew_ms and one validity check per publish call are what HA adds")
        if kind == "metrics_drain":
            cpu = {m: self.med("metrics", f"drain, file sink, {m}", "outboxd CPU per event")
                   for m in ("/metrics scraped every second", "no http endpoint")}
            vals = list(cpu.values())
            if None in vals:
                return "drain with /metrics scraped: no CPU figures"
            return (f"drain with /metrics scraped every second: outboxd CPU per event {vals[0]:.1f} us (no endpoint "
                    f"{vals[1]:.1f}); a scrape reads the counters under one lock, the runners add to atomics")
        if kind == "formats_drain":
            cpu = {m: self.med("formats", f"drain, file sink, {m}", "outboxd CPU per event")
                   for m in ("format: cloudevents", "format: native")}
            vals = list(cpu.values())
            if None in vals:
                return "drain with format: cloudevents: no CPU figures"
            return (f"drain with format: cloudevents: outboxd CPU per event {vals[0]:.1f} us (native {vals[1]:.1f}); "
                    "each event's attributes are encoded and spliced around the shared data JSON per sink")
        if kind == "formats_ceiling":
            dbz = self.med("formats", f"sink ceiling, {sink}", "debezium / native (per pair)")
            dbz_s = f"; format: debezium, the same path with the native payload, {dbz:.2f} x" if dbz else ""
            return (f"sink ceiling, {sink}, with format: cloudevents: outboxd lays out each message (about 0.2 us "
                    "for Kafka's binary mode, 0.4 us for a structured envelope) and the message is larger (the "
                    f"attributes add about 200 bytes), which the destination stores too{dbz_s}")
        if kind in ("pipeline", "pipeline_fanout", "pipeline_cpu"):
            us = self.med("pipeline", f"outboxd -> {sink or 'file'}, from memory",
                          "outboxd CPU per event (its own threads)")
            return (f"outboxd's own ceiling{', ' + sink if sink else ''}: {us:.1f} us of outboxd's CPU per event "
                    "from memory (docs/performance.md, case 13, has the profile: where the time goes)"
                    if us is not None else "outboxd's own ceiling: no CPU figures")
        if kind == "survey_drain":
            db = {m: self.med("survey", f"drain, file sink, {m}", "database CPU per event")
                  for m in ("log survey every 10 s (the default)", "no log survey")}
            vals = list(db.values())
            if None in vals:
                return "drain with the log survey: no CPU figures"
            return (f"drain with the log survey: database CPU per event {vals[0]:.0f} us (none {vals[1]:.0f}); "
                    "while the reader drains a backlog, a survey finds the newest event in reverse natural order "
                    "(FerretDB sorts the whole log for it) and walks to checkpoints not in the ring")
        if kind == "rss3":
            return ("peak RSS with three sinks: the ring's events and bytes, the sinks' windows and the "
                    "client libraries' buffers (section 5)")
        if kind == "latency":
            extra = {"kafka": " (and librdkafka's linger.ms=5, the consumer's fetch wait)",
                     "nats": " (and the JetStream store, the push consumer's delivery)"}.get(sink, "")
            return (f"latency to {sink}: the publish round trip to the destination{extra}, on top of the bare "
                    "cursor's time; the producers' shortfall (below) shows how loaded the server was")
        if kind == "ceiling":
            return (f"sink ceiling, {sink}: the plugin's per-event work that the raw loop does not do "
                    "(docs/performance.md, case 7)")
        return ""

    def target_rows(self):
        out = []
        self.missed = []

        def check(what, vals, target, higher_better, unit, kind=None, sink=None):
            if not vals:
                return
            med = statistics.median(vals)
            ok = med >= target if higher_better else med <= target
            sign = ">=" if higher_better else "<="
            out.append(f"| {what} | {sign} {target:g} {unit} | {med:.2f} {unit} | {'met' if ok else '**missed**'} |")
            if not ok and kind:
                self.missed.append(self.why_missed(kind, sink))

        for s in self.sinks:
            check(f"drain, {s}: outboxd / min(read, write)", self.values("drain", f"outboxd -> {s}",
                  "ratio to min(read, write)"), TARGETS["drain"], True, "x", "drain", s)
        for s in self.broker_sinks:
            check(f"fan-out, {s}: rate / single-sink rate",
                  self.values("fanout", f"outboxd -> {s} (all at once)", "ratio to single-sink rate"),
                  TARGETS["fanout"], True, "x", "fanout", s)
        check("fan-out to three file sinks: database CPU per event / one file sink",
              self.values("fanout-files", "database CPU per event, three file sinks", "ratio to one file sink"),
              TARGETS["fanout_db_cpu"], False, "x", "fanout_db_cpu")
        for s in self.a.base_sinks.split(","):
            check(f"drain, {s}: this build / the base build ({self.base_rev()})",
                  self.values("base", f"outboxd -> {s}, this build", "ratio to the base build (per pair)"),
                  TARGETS["vs_base"], True, "x", "vs_base", s)
        for s in (self.a.ceiling_sinks or self.a.sinks).split(","):
            check(f"sink ceiling, {s}: plugin / raw producer",
                  self.values("ceiling", f"{s} plugin via the ABI", "ratio to the raw producer"),
                  TARGETS["ceiling"], True, "x", "ceiling", s)
        for s in self.sinks:
            check(f"latency, {s}: p99 - raw tail p99", self.values("latency", f"put -> {s}",
                  "p99 over the raw tail's p99"), TARGETS["latency_p99_ms_over_raw"], False, "ms", "latency", s)
        for s in self.sinks:
            check(f"checkpoint writes per 100 events at full speed, {s}",
                  self.values("checkpoint", f"default policy, {s}", "writes per 100 events"),
                  TARGETS["ckpt_writes_per_100"], False, "")
        rss1 = [r[4] for r in self.rows if r[0] == "memory" and " + " not in r[1] and " x " not in r[1]]
        rss3 = [r[4] for r in self.rows if r[0] == "memory" and (" + " in r[1] or " x " in r[1])]
        check("outboxd peak RSS, one sink (largest)", [max(rss1)] if rss1 else [], TARGETS["rss_mb"], False, "MB")
        check("outboxd peak RSS, three sinks, default ring (largest)", [max(rss3)] if rss3 else [],
              TARGETS["rss3_mb"], False, "MB", "rss3")
        check("outboxd / naive relay (Kafka)", self.values("naive", "outboxd -> kafka",
              "speed-up over the naive relay"), TARGETS["naive_speedup"], True, "x")
        check("drain, file: ha.enabled true / false", self.values("ha", "drain, file sink", "ha on / ha off (per pair)"),
              TARGETS["ha_drain"], True, "x", "ha_drain")
        check("drain, file: /metrics scraped every second / no endpoint",
              self.values("metrics", "drain, file sink", "scraped / no endpoint (per pair)"),
              TARGETS["metrics_drain"], True, "x", "metrics_drain")
        check("drain, file: format cloudevents / native",
              self.values("formats", "drain, file sink", "cloudevents / native (per pair)"),
              TARGETS["formats_drain"], True, "x", "formats_drain")
        for s in (self.a.ceiling_sinks or self.a.sinks).split(","):
            check(f"sink ceiling, {s}: format cloudevents / native",
                  self.values("formats", f"sink ceiling, {s}", "cloudevents / native (per pair)"),
                  TARGETS["formats_ceiling"], True, "x", "formats_ceiling", s)
        for s in (self.a.ceiling_sinks or self.a.sinks).split(","):
            check(f"pipeline from memory, {s}: outboxd / sink ceiling",
                  self.values("pipeline", f"outboxd -> {s}, from memory", "ratio to the sink ceiling"),
                  TARGETS["pipeline"], True, "x", "pipeline", s)
        for s in self.broker_sinks:
            check(f"pipeline fan-out from memory, {s}: rate / single-sink rate",
                  self.values("pipeline", f"outboxd -> {s}, from memory, all at once", "ratio to single"),
                  TARGETS["pipeline_fanout"], True, "x", "pipeline_fanout", s)
        check("pipeline from memory, file: outboxd CPU per event",
              self.values("pipeline", "outboxd -> file, from memory", "outboxd CPU per event (its own threads)"),
              TARGETS["pipeline_cpu_us"], False, "us", "pipeline_cpu")
        for s in self.a.sinks.split(","):
            check(f"drain, {s}: recover on / recover: false",
                  self.values("recovery", f"drain, {s} sink", "recover on / off (per pair)"),
                  TARGETS["recover_drain"], True, "x", "recover_drain", s)
        for s in self.a.sinks.split(","):
            check(f"recovery of a full window (4048 events), {s}",
                  self.values("recovery", f"recovery of a full window (4048 events in doubt, all at the "
                              f"destination), {s}", "total"),
                  TARGETS["recovery_ms"], False, "ms", "recovery_ms", s)
        check("drain, file: log survey (default) / no survey",
              self.values("survey", "drain, file sink", "survey / no survey (per pair)"),
              TARGETS["survey_drain"], True, "x", "survey_drain")
        return out

    def machine(self):
        def sh(cmd):
            try:
                return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
            except Exception:
                return "?"
        cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
        mem = int(sh("grep MemTotal /proc/meminfo | awk '{print $2}'") or 0) // 1024
        info = self.mongo.server_info()
        kind = self.env.get("OUTBOX_TEST_MONGODB_KIND", "?")
        ferret = info.get("ferretdbVersion") or (info.get("ferretdb") or {}).get("version")
        cleanup = self.env.get("OUTBOX_TEST_FERRETDB_CAPPED_CLEANUP", "1s")
        server = (f"FerretDB {ferret} (SQLite backend, with the harness's patch; reports itself as "
                  f"MongoDB {info.get('version')}; capped collections trimmed every {cleanup}"
                  + (", faster than FerretDB's own 1m: each trim's reading counts in the database's figures"
                     if duration_s(cleanup) < 60 else "")
                  + "), same machine"
                  if kind == "ferretdb" else f"mongod {info.get('version')}")
        redis = sh("redis-server --version | grep -o 'v=[0-9.]*'")
        # As the running server is set (services.sh: an append-only file fsynced at every write).
        aof = sh(f"redis-cli -u '{self.env['OUTBOX_TEST_REDIS_URL']}' config get 'append*' | paste -sd' '").split()
        aof = dict(zip(aof[::2], aof[1::2]))
        redis_aof = (f"appendonly {aof['appendonly']}, appendfsync {aof.get('appendfsync', '?')}"
                     if "appendonly" in aof else "persistence unknown")
        nats = sh("nats-server --version")
        return [
            ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
            ("commit", self.head_rev() or
             sh(f"git -C {os.path.dirname(os.path.abspath(__file__))} describe --always --dirty")
             + " (the working tree, as built; -dirty: with changes not committed)"),
            ("base build", self.base_rev(False) if self.base_rev() != "-" else "none (case 8 not run)"),
            ("CPU", f"{cpu}, {os.cpu_count()} cores"),
            ("memory", f"{mem:,} MB"),
            ("kernel", platform.release()),
            ("MongoDB server", server),
            ("Kafka", "Apache Kafka 4.1.1, KRaft, one node, same machine"),
            ("Redis", f"redis-server {redis} ({redis_aof}), same machine"),
            ("NATS", f"{nats} with JetStream (file storage), same machine"),
            ("libraries", sh("for m in libmongoc-1.0 rdkafka hiredis libnats; do printf '%s %s, ' $m "
                             "$(pkg-config --modversion $m); done").rstrip(", ")),
            ("parameters", f"{self.a.reps} repetitions; backlog {self.a.events:,} events of "
                           f"{getattr(self, 'envelope_bytes', '?')} bytes (BSON, as stored); sink ceiling "
                           f"{self.a.ceiling_events:,} events; latency {self.a.latency_rate}/s for "
                           f"{self.a.latency_seconds} s; checkpoint case {self.a.ckpt_events:,} events; naive relay "
                           f"at most {self.a.naive_seconds} s; JSON encoders {self.a.json_n:,} documents x 3 runs; "
                           f"cases run: {self.a.cases}"),
        ]

    def write_report(self, outdir):
        os.makedirs(outdir, exist_ok=True)
        stem = os.path.join(outdir, f"{time.strftime('%Y-%m-%d')}-{socket.gethostname()}")
        with open(stem + ".csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["case", "subject", "metric", "rep", "value", "unit"])
            for r in self.rows:
                w.writerow(r[:4] + (f"{r[4]:.6g}",) + r[5:])
        sections = [
            ("1. Drain: a backlog to one sink, beside the read and write ceilings", "drain"),
            ("2. Fan-out: the same backlog to Kafka, Redis and NATS at once", "fanout"),
            ("2b. Fan-out to three file sinks: the database's CPU per event (its process's CPU seconds / "
             "events) against one file sink", "fanout-files"),
            ("3. Latency: put to readable at the destination", "latency"),
            ("4. Checkpoint cost", "checkpoint"),
            ("5. Memory: outboxd's peak RSS (VmHWM)", "memory"),
            ("6. Naive relay (per event: publish, wait for the ack, write the checkpoint)", "naive"),
            ("7. Sink ceiling: each plugin fed from memory through the ABI, beside the raw producer", "ceiling"),
            (f"8. This build against the base build ({self.base_rev()}): the drain of one sink, back to back",
             "base"),
            ("9. JSON encoders (bench_json)", "json"),
            ("10. HA (issue 14, --cases ha): takeover after kill -9 (per kill), lease traffic at idle, the drain "
             "with ha.enabled true and false", "ha"),
            ("11. Metrics over HTTP (issue 15, --cases metrics): the drain with /metrics scraped every second "
             "against no endpoint, and one scrape of 16 sinks", "metrics"),
            ("11b. The log survey (issue 15, --cases metrics): the drain with the default survey against "
             "none, and one survey with a sink a whole log behind beside the same reads by pymongo", "survey"),
            ("12. Message formats (issue 19, --cases formats): the drain of a file sink, and each sink's "
             "ceiling (bench_sink), with format: cloudevents against native", "formats"),
            ("13. outboxd's own ceiling (issue 21, --cases pipeline): the whole daemon with its events fed from "
             "memory (bench_pipeline), beside each sink's ceiling, and the broker sinks at once", "pipeline"),
            ("14. Effectively-once (issue 18, --cases recovery): the drain with recover on against recover: "
             "false per sink, the Redis drain with the Lua dedupe against without, and the recovery of a full "
             "window of events in doubt", "recovery"),
            ("15. The promoter (issue 22, --cases promote): committed transactional events moved from N.pending "
             "into the log by outboxctl promote, beside the same two steps by pymongo with no checks", "promote"),
            ("Where the time goes: CPU used during the drain and fan-out runs (cores = CPU seconds / wall "
             "seconds; the machine has " + str(os.cpu_count()) + "; the database's CPU per event in us)", "cpu"),
        ]
        with open(stem + ".md", "w") as f:
            f.write("# service-outbox benchmark report\n\n")
            f.write("Produced by `make bench` (bench/run); what each figure means and what limits it: "
                    "docs/performance.md. Every figure is the median over the repetitions, with the "
                    "smallest and largest value in brackets.\n\n")
            f.write("| | |\n|---|---|\n")
            for k, v in self.machine():
                f.write(f"| {k} | {v} |\n")
            f.write("\n## Targets\n\n| target | wanted | measured (median) | |\n|---|---|---:|---|\n")
            f.write("\n".join(self.target_rows()) + "\n")
            missed = list(dict.fromkeys(m for m in self.missed if m))
            if missed:
                f.write("\nWhere the time goes, for the targets missed (from this run's figures; "
                        "docs/performance.md has the analysis):\n\n" + "".join(f"- {m}\n" for m in missed))
            for title, case in sections:
                if any(r[0] == case for r in self.rows):
                    f.write(f"\n## {title}\n\n{self.table(case)}\n")
            if self.notes:
                f.write("\n## Notes from the run\n\n" + "".join(f"- {n}\n" for n in self.notes))
        return stem

    def cleanup(self):
        if self.a.keep:
            log(f"kept: {self.tmp} (configurations and outboxd's logs)")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        for name in self.mongo[DB].list_collection_names():
            if name.startswith(("lat-", "ckpt", "drain", "ha-", "recovery-", "promote-")):
                self.mongo[DB].drop_collection(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--events", type=int, default=60000, help="backlog of the drain, fan-out and base cases")
    ap.add_argument("--ceiling-events", type=int, default=500000)
    ap.add_argument("--ceiling-sinks", help="comma-separated sinks of the sink-ceiling case (default: --sinks)")
    ap.add_argument("--ckpt-events", type=int, default=10000)
    ap.add_argument("--promote-events", type=int, default=5000, help="committed events the promoter moves (case promote)")
    ap.add_argument("--json-n", type=int, default=20000, help="documents per encoder and run in case 9")
    ap.add_argument("--latency-rate", type=int, default=1000)
    ap.add_argument("--latency-seconds", type=int, default=60)
    ap.add_argument("--naive-seconds", type=int, default=30)
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES),
                    help="comma-separated, or all: " + ", ".join(ALL_CASES) + " (default: "
                    + ",".join(DEFAULT_CASES) + "; --quick: all); only when named: " + ", ".join(EXTRA_CASES))
    ap.add_argument("--base-builddir", help="a built tree of an earlier commit: case 8 drains one sink with its "
                    "outboxd and plugins beside this build's (bench/run --base REV builds one)")
    ap.add_argument("--base-rev", help="what the base build is (a commit), for the report")
    ap.add_argument("--head-rev", help="the commit this build was built from (bench/run --commit), for the report")
    ap.add_argument("--base-sinks", default="file", help="comma-separated sinks of case 8")
    ap.add_argument("--base-pairs", type=int, default=2, choices=[1, 2],
                    help="pairs of drains (this build, the base build) per repetition in case 8")
    ap.add_argument("--sinks", default=",".join(ALL_SINKS), help="comma-separated sinks to measure")
    ap.add_argument("--ha-kills", type=int, default=10, help="kill -9 of the holder per lease setting (case ha)")
    ap.add_argument("--ha-settings", default="10000/3000,2000/600",
                    help="lease_ttl_ms/renew_ms settings of the takeover runs, comma-separated (case ha)")
    ap.add_argument("--ha-rate", type=int, default=200, help="events/s put during the takeover runs (case ha)")
    ap.add_argument("--ha-idle-seconds", type=int, default=60, help="how long the idle lease traffic is counted")
    ap.add_argument("--ha-pairs", type=int, default=2, choices=[1, 2],
                    help="pairs of drains (ha on, ha off) per repetition (case ha)")
    ap.add_argument("--report-from", metavar="CSV", help="write the report again from a run's CSV, run nothing")
    ap.add_argument("--keep", action="store_true", help="keep the run's folder (outboxd's configurations and logs)")
    ap.add_argument("--quick", action="store_true", help="tiny volumes: checks the harness, measures nothing")
    a = ap.parse_args()
    if a.quick:
        a.reps, a.events, a.ceiling_events, a.ckpt_events, a.json_n = 1, 2000, 5000, 500, 2000
        a.promote_events = 1000
        a.latency_rate, a.latency_seconds, a.naive_seconds = 200, 3, 2
        a.ha_kills, a.ha_settings, a.ha_idle_seconds, a.ha_pairs = 2, "1000/300", 5, 1
        if a.cases == ",".join(DEFAULT_CASES):
            a.cases = "all"
        if not a.base_builddir:
            # The path of case 8 is checked too, against this build itself.
            a.base_builddir, a.base_rev = a.builddir, "this build (--quick)"
    # The idle lease traffic with outboxd's default lease (what users run);
    # --quick with a short one, so that the sinks spread within seconds.
    a.ha_idle_lease = (1000, 300) if a.quick else (None, None)
    if a.cases == "all":
        a.cases = ",".join(ALL_CASES)
    cases = a.cases.split(",")
    unknown = [c for c in cases if c not in ALL_CASES + EXTRA_CASES]
    if unknown:
        ap.error(f"unknown case {', '.join(unknown)}: the cases are {', '.join(ALL_CASES + EXTRA_CASES)}")
    b = Bench(a)
    if a.report_from:
        with open(a.report_from) as f:
            for r in csv.DictReader(f):
                b.rows.append((r["case"], r["subject"], r["metric"], int(r["rep"]), float(r["value"]), r["unit"]))
        size = b.values("setup", "one envelope as stored", "BSON size")
        b.envelope_bytes = int(size[0]) if size else "?"
        b.a.reps = max(r[3] for r in b.rows)
        stem = b.write_report(a.out)
        log(f"report: {stem}.md, raw figures: {stem}.csv")
        shutil.rmtree(b.tmp, ignore_errors=True)  # and nothing else: a run may be going on
        return 0
    relays = [c for c in cases if c in ("drain", "fanout", "fanout-files", "base", "naive")]
    if "base" in cases and not a.base_builddir:
        b.notes.append("case 8 (against an earlier commit) not run: no base build (bench/run --base REV)")
    if a.head_rev:
        b.record("setup", "this build " + a.head_rev, "present", 0, 1.0, "")
    if a.base_builddir:
        b.record("setup", "base build " + (a.base_rev or os.path.abspath(a.base_builddir)), "present", 0, 1.0, "")
    try:
        if relays or "ha" in cases or "metrics" in cases or "formats" in cases or "recovery" in cases:
            b.fill("drain", a.events)
        if "checkpoint" in cases:
            b.fill("ckpt", a.ckpt_events)
        for rep in range(1, a.reps + 1):
            if relays:
                # The single-sink drains are the other cases' baselines:
                # they run whenever any of them does.
                b.case_relays(rep, cases)
            if "checkpoint" in cases:
                b.case_checkpoint(rep)
            if "ceiling" in cases:
                b.case_sink_ceiling(rep)
            if "latency" in cases:
                b.case_latency(rep)
            if "json" in cases:
                b.case_json(rep)
            if "ha" in cases:
                b.case_ha(rep)
            if "metrics" in cases:
                b.case_metrics(rep)
            if "formats" in cases:
                b.case_formats(rep)
            if "pipeline" in cases:
                b.case_pipeline(rep)
            if "recovery" in cases:
                b.case_recovery(rep)
            if "promote" in cases:
                b.case_promote(rep)
        stem = b.write_report(a.out)
        log(f"report: {stem}.md, raw figures: {stem}.csv")
        print(open(stem + ".md").read())
    except (BenchError, subprocess.TimeoutExpired) as e:
        log(f"FAILED: {e}")
        return 1
    finally:
        b.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
