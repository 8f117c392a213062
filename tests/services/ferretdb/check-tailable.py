#!/usr/bin/python3
"""Check the tailable-cursor behaviour the outbox relies on, against a running server.

Runs against FerretDB (patched or not) or a real mongod and prints measured numbers:
  (a) a tailable find whose first batch is smaller than batchSize keeps its cursor open;
  (b)+(c) 4 producer threads x 2,500 inserts while one tailable awaitData cursor reads:
      the tail must see every event exactly once, in natural (insertion) order;
  (d) with 20,000 events in the log: insert-to-tail latency of one new event, and the
      server's CPU use while a tail idles;
  (e) a capped collection trimmed past a tail's position must fail the getMore with
      CappedPositionLost (136) or kill the cursor, never skip silently;
  (skip) a tailable find with skip applies it once: later getMores return every new event.

Uses only raw find/getMore commands (pymongo 3.11 from Debian: python3-pymongo) so what
is measured is the server, not driver behaviour. Exit status 0 when every check passes.

Usage: /usr/bin/python3 check-tailable.py [--uri URI] [--pid SERVER_PID]
The URI defaults to $OUTBOX_TEST_MONGODB_URI, then to services.env in the harness state
dir, then to mongodb://127.0.0.1:37017/.
"""

import argparse
import os
import statistics
import sys
import threading
import time

from bson.int64 import Int64
from bson.son import SON
import pymongo
from pymongo.errors import OperationFailure

CAPPED_POSITION_LOST = 136
CURSOR_NOT_FOUND = 43


def default_uri():
    if os.environ.get("OUTBOX_TEST_MONGODB_URI"):
        return os.environ["OUTBOX_TEST_MONGODB_URI"]
    state = os.environ.get("OUTBOX_SERVICES_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "service-outbox")
    try:
        with open(os.path.join(state, "services.env")) as f:
            for line in f:
                if line.startswith("OUTBOX_TEST_MONGODB_URI="):
                    return line.split("=", 1)[1].strip().strip("'\"")
    except OSError:
        pass
    return "mongodb://127.0.0.1:37017/"


def listener_pid(port):
    """Pid of the local process listening on TCP port (for CPU accounting), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except OSError:
            pass
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir("/proc/%s/fd" % pid):
                link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(pid, seconds):
    """Cores used by the server process over the next `seconds`."""
    c0, w0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - w0)


class Tail:
    """A raw tailable (awaitData) cursor driven with find/getMore commands."""

    def __init__(self, client, db, coll, batch_size, await_data=True, flt=None, skip=0):
        self.db, self.coll = db, coll
        self.session = client.start_session()
        cmd = SON([("find", coll), ("filter", flt or {}), ("tailable", True),
                   ("awaitData", await_data), ("batchSize", batch_size)])
        if skip:
            cmd["skip"] = skip
        res = db.command(cmd, session=self.session)
        self.first = res["cursor"]["firstBatch"]
        self.id = res["cursor"]["id"]

    def more(self, batch_size, max_time_ms=None):
        cmd = SON([("getMore", Int64(self.id)), ("collection", self.coll), ("batchSize", batch_size)])
        if max_time_ms is not None:
            cmd["maxTimeMS"] = max_time_ms
        res = self.db.command(cmd, session=self.session)
        self.id = res["cursor"]["id"]
        return res["cursor"]["nextBatch"]

    def close(self):
        if self.id:
            try:
                self.db.command("killCursors", self.coll, cursors=[Int64(self.id)], session=self.session)
            except OperationFailure:
                pass
        self.session.end_session()


def create_capped(db, name, size, max_docs=None):
    cmd = SON([("create", name), ("capped", True), ("size", size)])
    if max_docs:
        cmd["max"] = max_docs
    db.command(cmd)
    return db[name]


results = []


def report(name, ok, text):
    results.append(ok)
    print("%s %s: %s" % ("PASS" if ok else "FAIL", name, text), flush=True)


def check_a(client, db):
    coll = create_capped(db, "a", 1 << 20)
    coll.insert_many([{"n": i} for i in range(3)])
    t = Tail(client, db, "a", batch_size=10, await_data=False)
    got, cid = len(t.first), t.id
    follow = None
    if cid:
        coll.insert_one({"n": 3})
        follow = [d["n"] for d in t.more(10)]
    t.close()
    report("a-tailable-short-first-batch", cid != 0 and follow == [3],
           "first batch %d of batchSize 10, cursor id %s, next getMore after one insert -> %s"
           % (got, "!= 0 (open)" if cid else "0 (closed)", follow))

    # Informational only: MongoDB closes a tailable cursor on an empty collection.
    create_capped(db, "a_empty", 1 << 20)
    t = Tail(client, db, "a_empty", batch_size=10)
    print("info a-empty-collection: tailable find on an empty capped collection -> cursor id %s"
          % ("!= 0" if t.id else "0"))
    t.close()


def check_bc(client, db, producers=4, per_producer=2500, await_ms=50):
    coll = create_capped(db, "bc", 64 << 20)
    coll.insert_one({"seed": True})
    # batchSize 1 makes the first batch full, so even an unpatched server keeps the cursor open
    t = Tail(client, db, "bc", batch_size=1)
    assert t.id, "tailable cursor closed after a full first batch"
    seen, errors = [], []
    done, done_at = threading.Event(), [0.0]
    total = producers * per_producer

    def tail():
        last_new = time.monotonic()
        start = last_new
        uniq = set()
        while True:
            try:
                batch = t.more(1000, await_ms)
            except OperationFailure as e:
                errors.append("getMore failed: code %s %s" % (e.code, e))
                return
            if not t.id:
                errors.append("cursor died (id 0)")
                return
            for d in batch:
                key = (d["p"], d["n"])
                seen.append(key)
                if key not in uniq:
                    uniq.add(key)
                    last_new = time.monotonic()
            now = time.monotonic()
            # stop when all arrived, or nothing new for 10 s after the producers finished
            if len(uniq) >= total or now - start > 300 or (
                    done.is_set() and now - max(last_new, done_at[0]) > 10):
                return

    def produce(p):
        for n in range(per_producer):
            coll.insert_one({"p": p, "n": n, "pad": "x" * 64})

    tt = threading.Thread(target=tail)
    tt.start()
    t0 = time.monotonic()
    ps = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    produce_s = time.monotonic() - t0
    done_at[0] = time.monotonic()
    done.set()
    tt.join()
    tail_s = time.monotonic() - t0
    t.close()

    natural = [(d["p"], d["n"]) for d in coll.find({"p": {"$exists": True}}).sort("$natural", 1)]
    firsts, uniq = [], set()
    for k in seen:
        if k not in uniq:
            uniq.add(k)
            firsts.append(k)
    dups = len(seen) - len(uniq)
    missing = len(set(natural) - uniq)
    last_n, per_producer_disorder = {}, 0
    for p, n in firsts:
        if n < last_n.get(p, -1):
            per_producer_disorder += 1
        last_n[p] = n
    order_ok = firsts == natural
    ok = not errors and len(natural) == total and dups == 0 and missing == 0 and order_ok
    report("bc-concurrent-producers",
           ok,
           "%d producers x %d inserts (%.1fs), tail (maxTimeMS=%d) got %d deliveries: %d unique of %d, "
           "%d replayed, %d never seen, natural order %s, per-producer order violations %d, "
           "done after %.1fs%s"
           % (producers, per_producer, produce_s, await_ms, len(seen), len(uniq), len(natural), dups,
              missing, "matches" if order_ok else "DIFFERS", per_producer_disorder, tail_s,
              "; " + "; ".join(errors) if errors else ""))


def check_d(client, db, pid, docs=20000, samples=10, await_ms=5000):
    coll = create_capped(db, "d", 512 << 20)
    for i in range(0, docs, 1000):
        coll.insert_many([{"n": n, "pad": "y" * 100} for n in range(i, min(i + 1000, docs))])
    t = Tail(client, db, "d", batch_size=1000)
    n_read = len(t.first)
    while n_read < docs:
        n_read += len(t.more(1000, 1000))
    base = server_cpu(pid, 3) if pid else None  # no getMore in flight: background work only
    # Tail thread: long-polls and timestamps every arrival.
    arrivals, stop = {}, threading.Event()
    errors = []

    def tail():
        while not stop.is_set():
            try:
                batch = t.more(100, await_ms)
            except OperationFailure as e:
                errors.append("getMore failed: code %s" % e.code)
                return
            now = time.perf_counter()
            for d in batch:
                if "seq" in d:
                    arrivals.setdefault(d["seq"], now)

    tt = threading.Thread(target=tail)
    tt.start()
    idle = None
    if pid:
        time.sleep(0.5)
        idle = server_cpu(pid, 5)
    lat = []
    for seq in range(samples):
        sent = time.perf_counter()
        coll.insert_one({"seq": seq})
        deadline = time.monotonic() + 15
        while seq not in arrivals and time.monotonic() < deadline and not errors:
            time.sleep(0.0005)
        if seq in arrivals:
            lat.append((arrivals[seq] - sent) * 1000)
        time.sleep(0.05)
    stop.set()
    coll.insert_one({"wake": True})  # let the tail's last long poll return
    tt.join()
    t.close()
    ok = len(lat) == samples and not errors and statistics.median(lat) < 100
    report("d-latency-%dk" % (docs // 1000), ok,
           "%d events in log, insert->tail latency over %d/%d samples: min %.1f ms, median %.1f ms, "
           "max %.1f ms (getMore maxTimeMS=%d); server CPU: %s with one idle tail, %s without%s"
           % (docs, len(lat), samples, min(lat) if lat else -1, statistics.median(lat) if lat else -1,
              max(lat) if lat else -1, await_ms,
              "%.2f cores" % idle if idle is not None else "n/a (server pid unknown)",
              "%.2f" % base if base is not None else "n/a",
              "; " + "; ".join(errors) if errors else ""))


def check_e(client, db):
    coll = create_capped(db, "e", 16 << 20, max_docs=100)
    coll.insert_many([{"n": n} for n in range(50)])
    t = Tail(client, db, "e", batch_size=50)
    last = t.first[-1]
    coll.insert_many([{"n": n} for n in range(50, 550)])
    deadline = time.monotonic() + 60
    while coll.find_one({"_id": last["_id"]}) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    if coll.find_one({"_id": last["_id"]}) is not None:
        report("e-capped-position-lost", False, "the server never trimmed the collection")
        return
    outcomes = []
    ok = None
    for attempt in (1, 2, 3):
        if attempt > 1:
            coll.insert_one({"n": 1000 + attempt})  # something new to read if the cursor lives on
        try:
            batch = t.more(1000, 200)
            if batch:
                text = "returned n=%s instead of n=50 (silent skip)" % [d["n"] for d in batch][:5]
            elif not t.id:
                text = "cursor id 0 (cursor died)"
            else:
                text = "empty batch, cursor still open"
            if ok is None and (batch or not t.id):
                ok = not batch
        except OperationFailure as e:
            text = "error code %s %s" % (e.code, e.details.get("codeName", "") if e.details else "")
            if ok is None:
                ok = e.code in (CAPPED_POSITION_LOST, CURSOR_NOT_FOUND)
            if e.code in (CAPPED_POSITION_LOST, CURSOR_NOT_FOUND):
                t.id = 0
        outcomes.append("getMore #%d %s" % (attempt, text))
        if not t.id:
            break
    t.close()
    silent_skip = any("silent skip" in o for o in outcomes)
    report("e-capped-position-lost", bool(ok) and not silent_skip,
           "tail at n=49, log trimmed to n=450..549: " + "; ".join(outcomes))


def check_skip(client, db):
    """A tail that resumes with skip (liboutbox does) must see every later event."""
    coll = create_capped(db, "skip", 1 << 20)
    coll.insert_many([{"n": i} for i in range(1, 4)])
    t = Tail(client, db, "skip", batch_size=10, skip=1)
    first = [d["n"] for d in t.first]
    coll.insert_many([{"n": 4}, {"n": 5}])
    later = []
    for _ in range(5):
        if len(later) >= 2 or not t.id:
            break
        later += [d["n"] for d in t.more(10, 200)]
    t.close()
    report("skip-applied-once", first == [2, 3] and later == [4, 5],
           "find skip=1 on n=1..3 -> %s; after inserting n=4,5 the getMores return %s"
           % (first, later))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uri", default=default_uri())
    ap.add_argument("--pid", type=int, help="server pid for CPU accounting (default: the port's listener)")
    ap.add_argument("--docs", type=int, default=20000, help="log size for the latency check")
    ap.add_argument("--bc-await-ms", type=int, default=50, help="getMore maxTimeMS of the bc tail")
    ap.add_argument("--only", help="comma-separated subset of a,bc,d,e,skip")
    args = ap.parse_args()

    client = pymongo.MongoClient(args.uri, serverSelectionTimeoutMS=5000, maxPoolSize=16)
    info = client.admin.command("buildInfo")
    host, port = client.address
    pid = args.pid or listener_pid(port)
    print("server %s:%d: version %s%s, pid %s, pymongo %s" % (
        host, port, info.get("version"),
        " (FerretDB %s)" % info["ferretdbVersion"] if "ferretdbVersion" in info else "",
        pid, pymongo.version), flush=True)
    db = client["outbox_check_%d" % os.getpid()]
    client.drop_database(db.name)
    only = set(args.only.split(",")) if args.only else {"a", "bc", "d", "e", "skip"}
    try:
        if "a" in only:
            check_a(client, db)
        if "bc" in only:
            check_bc(client, db, await_ms=args.bc_await_ms)
        if "d" in only:
            check_d(client, db, pid, docs=args.docs)
        if "e" in only:
            check_e(client, db)
        if "skip" in only:
            check_skip(client, db)
    finally:
        client.drop_database(db.name)
    print("%d passed, %d failed" % (results.count(True), results.count(False)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
