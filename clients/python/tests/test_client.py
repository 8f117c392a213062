"""test_client.py - the Python producer library against the table and the
real servers (issue 20): prints TAP.

  1. every case of tests/validation/cases.json gets liboutbox's verdict, at
     liboutbox's path (tests/test_validation_table.c runs the same file);
  2. declarations outside the subset are refused at the keyword's path;
  3. load_types reads the types outboxctl init stored in N.schemas, and
     validates as the folder does;
  4. events put by Python (headers, unicode keys and data, a batch) and by
     C (outboxctl put) are published by the real outboxd to a file sink
     alike and in log order;
  5. a transactional put into an outbox never created is refused naming
     what to run; with_transaction commits or is skipped with the reason
     on a server without transactions.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import pymongo  # noqa: E402
from bson import json_util  # noqa: E402

from service_outbox import NotEnsuredError, Outbox, SchemaError, ValidationError  # noqa: E402

sys.path.insert(0, os.path.join(os.environ.get("OUTBOX_TEST_SRCDIR", os.path.join(HERE, "..", "..", "..")), "tests"))
from services_env import services  # noqa: E402

BUILD = os.environ.get("OUTBOX_TEST_BUILDDIR", ".")
SRC = os.environ.get("OUTBOX_TEST_SRCDIR", os.path.join(HERE, "..", "..", ".."))
DB = "outbox_test"
results = []


def ok(cond, name, why=""):
    results.append((bool(cond), name, why))


def table():
    """The table, its data read as Extended JSON ({"$numberLong": ...} is
    an Int64), as the other runners read it."""
    with open(os.path.join(SRC, "tests", "validation", "cases.json"), encoding="utf-8") as f:
        return json_util.loads(f.read())


def check_table():
    t = table()
    ob = Outbox(pymongo.MongoClient("mongodb://127.0.0.1:1/", connect=False), "d", "n")
    for name, schema in t["schemas"].items():
        ob.declare(name, schema)
    wrong = []
    for i, c in enumerate(t["cases"]):
        try:
            ob.envelope(0, c["schema"], "k", c["data"])
            got = None
        except ValidationError as e:
            got = e.path
        if got != c["path"]:
            wrong.append(f"case {i} ({c['schema']}, {json.dumps(c['data'])}): {got!r}, the table says {c['path']!r}")
    ok(not wrong, f"the validation table: {len(t['cases'])} events, liboutbox's verdicts and paths",
       "\n".join(wrong))
    wrong = []
    for i, c in enumerate(t["declarations"]):
        try:
            ob.declare("x", c["schema"])
            got = None
        except SchemaError as e:
            got = e.path
        if got != c["path"]:
            wrong.append(f"declaration {i} {json.dumps(c['schema'])}: {got!r}, the table says {c['path']!r}")
    ok(not wrong, f"the validation table: {len(t['declarations'])} declarations refused at the keyword's path",
       "\n".join(wrong))


def ctl(uri, name, *args):
    return subprocess.run([os.path.join(BUILD, "outboxctl", "outboxctl"), "--uri", uri, "--db", DB, "--outbox", name,
                           *args], capture_output=True, text=True)


def check_server(uri):
    client = pymongo.MongoClient(uri)
    name = f"py_{os.getpid()}"
    try:
        r = ctl(uri, name, "--schemas", os.path.join(SRC, "examples", "schemas"), "init")
        if r.returncode != 0:
            ok(False, "outboxctl init", r.stderr)
            return
        ob = Outbox(client, DB, name)
        n = ob.load_types()
        ok(n == 2, f"load_types: the {n} types outboxctl init stored in N.schemas")
        try:
            ob.put("order.shipped", "k", {"ordernr": 1, "carrier": "pigeon"})
            ok(False, "a put the stored schema refuses", "accepted")
        except ValidationError as e:
            ok(e.path == "data.carrier" and client[DB][name].count_documents({}) == 0,
               f"a put the stored schema refuses writes nothing: {e}")
        publishes_like_c(uri, client, ob, name)
        transactional(client, name)
    finally:
        for suffix in ("", ".pending", ".checkpoints", ".schemas", ".leases", ".quarantine"):
            client[DB].drop_collection(name + suffix)


def publishes_like_c(uri, client, ob, name):
    """C and Python events alternate in the log; outboxd's file sink writes
    each Python event exactly as its C twin, in log order."""
    data = {"ordernr": 7, "total": 19.95, "customer": "Zoë 日本", "lines": [{"sku": "ABC-42", "qty": 2}]}
    headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tenant": "ü"}
    header_args = [a for k, v in headers.items() for a in ("--header", f"{k}={v}")]
    order = []
    for key in ("order-7", "ключ-7"):
        r = ctl(uri, name, "--schemas", os.path.join(SRC, "examples", "schemas"), "put", "order.created", key,
                json.dumps(data, ensure_ascii=False), *header_args)
        ok(r.returncode == 0, f"outboxctl put (C) key {key}", r.stderr)
        order.append(("c", key))
        ob.put("order.created", key, data, headers=headers)
        order.append(("py", key))
    ids = ob.put_many([("order.shipped", None, {"ordernr": 7, "carrier": "dhl"}),
                       ("order.shipped", "x", {"ordernr": 8, "carrier": "ups"}, {"a": "b"})])
    order += [("py", None), ("py", "x")]
    ok(len(ids) == 2, "put_many: one ordered insert, the ids in order")

    brokers = services().get("OUTBOX_TEST_KAFKA_BROKERS")
    topic = f"outbox.{name}"
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "all.jsonl")
        config = os.path.join(tmp, "outboxd.yaml")
        plugins = os.path.join(tmp, "plugins")
        os.makedirs(plugins, mode=0o755)
        for plugin in ("file", "kafka"):
            so = os.path.join(BUILD, "sinks", plugin, ".libs", f"{plugin}.so")
            if os.path.exists(so):
                subprocess.run(["cp", so, os.path.join(plugins, f"{plugin}.so")], check=True)
        with_kafka = bool(brokers) and os.path.exists(os.path.join(plugins, "kafka.so"))
        with open(config, "w") as f:
            f.write(f'mongodb:\n  uri: "{uri}"\n  database: {DB}\noutbox: {name}\n'
                    f'sinks:\n  - name: file\n    plugin: file\n    route: "{out}"\n')
            if with_kafka:
                f.write(f'  - name: kafka\n    plugin: kafka\n    route: "{topic}"\n'
                        f'    options:\n      bootstrap.servers: "{brokers}"\n')
        os.chmod(config, 0o600)
        proc = subprocess.Popen([os.path.join(BUILD, "outboxd", "outboxd"), "--config", config, "--plugin-dir",
                                 plugins], stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(tmp, "outboxd.log"), "w"))
        lines, msgs = [], []
        for _ in range(600):
            if os.path.exists(out):
                with open(out, encoding="utf-8") as f:
                    lines = [json.loads(line) for line in f if line.strip()]
            if with_kafka and len(msgs) < len(order):
                r = subprocess.run(["kcat", "-C", "-b", brokers, "-t", topic, "-e", "-q", "-J", "-o", "beginning"],
                                   capture_output=True, text=True)
                msgs = [json.loads(m) for m in r.stdout.splitlines() if m.strip()]
            if len(lines) >= len(order) and (not with_kafka or len(msgs) >= len(order)):
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        log = open(os.path.join(tmp, "outboxd.log")).read()
    ok(rc == 0 and len(lines) == len(order), f"outboxd published {len(lines)} of {len(order)} events to the file, exit {rc}",
       log[-2000:])
    if len(lines) == len(order):
        keys = [line.get("key") for line in lines]
        ok(keys == [k for _, k in order], f"the file has the events in log order: {keys}")
        why = []
        for i in range(0, 4, 2):
            for field in ("type", "key", "data", "headers"):
                if lines[i].get(field) != lines[i + 1].get(field):
                    why.append(f"event {i}: {field}: C {lines[i].get(field)!r}, Python {lines[i + 1].get(field)!r}")
        ok(not why, "each Python event is written to the file exactly as its C twin (type, key, data, headers)",
           "\n".join(why))
    if not with_kafka:
        results.append((True, "Kafka: each Python event as its C twin # SKIP no Kafka broker or kafka.so", ""))
        return
    ok(len(msgs) == len(order), f"kcat reads {len(msgs)} of {len(order)} messages from {topic}")
    if len(msgs) != len(order):
        return
    def comparable(m):
        h = m.get("headers") or []
        headers = {h[j]: h[j + 1] for j in range(0, len(h), 2) if h[j] not in ("outbox-id", "outbox-created")}
        return m.get("key"), json.loads(m["payload"]), headers

    # Kafka orders a topic per partition, and a key's events share one: the
    # twins of a key arrive C first, then Python, and alike.
    why = []
    for key in ("order-7", "ключ-7"):
        twins = [m for m in msgs if m.get("key") == key]
        if len(twins) != 2 or comparable(twins[0]) != comparable(twins[1]):
            why.append(f"key {key}: {[comparable(m) for m in twins]!r}")
    ok(not why, "Kafka (kcat): each Python event's message is its C twin's, in the key's partition (key, "
                "value, headers but its own id and time)", "\n".join(why))


def test_uri():
    return services()["OUTBOX_TEST_MONGODB_URI"]


def transactional(client, name):
    never = Outbox(client, DB, f"{name}_never")
    never.declare("order.shipped", {"bsonType": "object"})
    with client.start_session() as s:
        s.start_transaction()
        try:
            never.put("order.shipped", "k", {"ordernr": 1}, session=s)
            ok(False, "a transactional put into an outbox never created", "accepted")
        except NotEnsuredError as e:
            ok("outboxctl init" in str(e) and f"{name}_never.pending" not in client[DB].list_collection_names(),
               f"a transactional put into an outbox never created: {e}")
        finally:
            try:
                s.abort_transaction()
            except pymongo.errors.PyMongoError:
                pass
    hello = client.admin.command("hello")
    try:
        build = client.admin.command("buildInfo")
    except pymongo.errors.PyMongoError:
        build = {}
    if "setName" not in hello or any(k.lower().startswith("ferretdb") for k in build):
        results.append((True, "with_transaction commits the caller's write and its event # SKIP the test server "
                              "has no transactions; run against a mongod replica set", ""))
        return
    ob = Outbox(client, DB, name)
    ob.load_types()
    client[DB]["orders"].insert_one({"setup": True})

    def place(session):
        client[DB]["orders"].insert_one({"ordernr": 9}, session=session)
        ob.put("order.shipped", "order-9", {"ordernr": 9, "carrier": "dhl"}, session=session)

    with client.start_session() as s:
        ob.with_transaction(s, place)
    ok(client[DB][name + ".pending"].count_documents({"data.ordernr": 9}) == 1,
       "with_transaction commits the caller's write and its event into N.pending")
    r = ctl(test_uri(), name, "promote")
    ok(r.returncode == 0 and client[DB][name].count_documents({"data.ordernr": 9}) == 1,
       "the committed event is in the log after outboxctl promote", r.stderr)
    with client.start_session() as s:
        s.start_transaction()
        ob.put("order.shipped", "order-10", {"ordernr": 10, "carrier": "dhl"}, session=s)
        s.abort_transaction()
    ctl(test_uri(), name, "promote")
    ok(client[DB][name + ".pending"].count_documents({"data.ordernr": 10}) == 0 and
       client[DB][name].count_documents({"data.ordernr": 10}) == 0, "an aborted transaction's event never appears")


def main():
    check_table()
    try:
        svc = services()
        uri = svc["OUTBOX_TEST_MONGODB_URI"]
    except (OSError, KeyError):
        uri = None
    if uri:
        check_server(uri)
    else:
        results.append((True, "the real server # SKIP no test servers: run tests/services/services.sh up", ""))
    print(f"1..{len(results)}")
    failed = 0
    for i, (good, name, why) in enumerate(results, 1):
        print(f"{'ok' if good else 'not ok'} {i} - {name}")
        if not good:
            failed += 1
            for line in why.splitlines():
                print(f"# {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
