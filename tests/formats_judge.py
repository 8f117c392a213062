"""formats_judge.py - issue 19's message formats end to end, judged by
consumers no one here wrote: outboxctl puts events (one with a W3C
traceparent and tracestate, one with a null key, one with an extension
header), the real outboxd publishes them with format: cloudevents to Kafka
(binary mode), NATS, Redis and a file (structured mode) and with format:
debezium to Kafka; then
  - kcat reads the Kafka topics, and the CloudEvents Python SDK decodes
    each message (its Kafka binding's from_binary);
  - nats-py reads the JetStream stream, redis-cli the Redis stream, and
    the SDK's JSON format decodes each structured event;
  - every attribute equals the envelope's (id, type, source, time,
    subject, partitionkey, datacontenttype, extensions), the data parses
    to the event's data, traceparent and tracestate arrive intact as the
    protocol's headers (fields on Redis, the line's headers in the file);
  - the Debezium layout: key = the event's key, header id = the event id,
    value = the data alone.
Prints TAP. Run by tests/test_formats.sh, which finds the Python with the
SDK (scripts/deps.sh makes it).
"""
import asyncio
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from services_env import services  # noqa: E402

BUILD = os.environ.get("OUTBOX_TEST_BUILDDIR", ".")
SRC = os.environ.get("OUTBOX_TEST_SRCDIR", ".")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "vendor=opaque,other=1"
results = []


def ok(cond, name, why=""):
    results.append((cond, name, why))


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def main():
    svc = services()
    uri, brokers = svc["OUTBOX_TEST_MONGODB_URI"], svc["OUTBOX_TEST_KAFKA_BROKERS"]
    redis_url, nats_url = svc["OUTBOX_TEST_REDIS_URL"], svc["OUTBOX_TEST_NATS_URL"]
    tag = f"fmt{os.getpid()}{int(time.time()) % 100000}"
    outbox, db = f"t_{tag}", "outbox_test"
    tmp = tempfile.mkdtemp(prefix="outbox-formats-")
    ctl = [os.path.join(BUILD, "outboxctl/outboxctl"), "--uri", uri, "--db", db, "--outbox", outbox,
           "--schemas", os.path.join(SRC, "examples/schemas")]
    run(ctl + ["init"])
    events = [  # (key, data, headers)
        ("order-1", {"ordernr": 1, "customer": "ada", "total": 10.5, "lines": [{"sku": "ABC-1", "qty": 2}]},
         {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}),
        (None, {"ordernr": 2, "customer": "bob", "total": 3, "lines": [{"sku": "ABC-2", "qty": 1}]}, {}),
        ("order-3", {"ordernr": 3, "customer": "cy", "total": 7, "lines": [{"sku": "XYZ-3", "qty": 5}]},
         {"tenant": "acme", "Not-An-Ext": "x"}),
    ]
    ids = []
    for key, data, headers in events:
        args = ctl + ["put", "order.created", key if key is not None else "-", json.dumps(data)]
        for k, v in headers.items():
            args += ["--header", f"{k}={v}"]
        ids.append(run(args).strip())
    docs = {}
    from pymongo import MongoClient
    from bson import ObjectId
    client = MongoClient(uri)
    for i in ids:
        docs[i] = client[db][outbox].find_one({"_id": ObjectId(i)})

    ce_topic, dbz_topic = f"ce.{tag}", f"outbox.event.{tag}"
    stream, subject_prefix = f"ce:{tag}", f"ce.{tag}"
    nats_stream = f"CE{tag}".upper()
    source = "/{db}/{outbox}"
    want_source = f"/{db}/{outbox}"
    conf = os.path.join(tmp, "outboxd.yaml")
    with open(conf, "w") as f:
        f.write(f'mongodb:\n  uri: "{uri}"\n  database: {db}\noutbox: {outbox}\n'
                f"ha:\n  enabled: false\nsinks:\n"
                f'  - name: kce\n    plugin: kafka\n    route: "{ce_topic}"\n    format: cloudevents\n'
                f'    cloudevents:\n      source: "{source}"\n'
                f'    options:\n      bootstrap.servers: "{brokers}"\n'
                f'  - name: kdbz\n    plugin: kafka\n    route: "{dbz_topic}"\n    format: debezium\n'
                f'    options:\n      bootstrap.servers: "{brokers}"\n'
                f'  - name: rce\n    plugin: redis\n    route: "{stream}"\n    format: cloudevents\n'
                f'    cloudevents:\n      source: "{source}"\n'
                f'    options:\n      url: "{redis_url}"\n'
                f'  - name: nce\n    plugin: nats\n    route: "{subject_prefix}.{{type}}"\n    format: cloudevents\n'
                f'    cloudevents:\n      source: "{source}"\n'
                f'    options:\n      servers: "{nats_url}"\n      stream: {nats_stream}\n'
                f'      stream_subjects: "{subject_prefix}.>"\n'
                f'  - name: fce\n    plugin: file\n    route: "{tmp}/out/ce.jsonl"\n    format: cloudevents\n'
                f'    cloudevents:\n      source: "{source}"\n'
                f'  - name: kstr\n    plugin: kafka\n    route: "{ce_topic}s"\n    format: cloudevents\n'
                f'    cloudevents:\n      source: "{source}"\n      mode: structured\n'
                f'    options:\n      bootstrap.servers: "{brokers}"\n'
                f'  - name: rdbz\n    plugin: redis\n    route: "{stream}d"\n    format: debezium\n'
                f'    options:\n      url: "{redis_url}"\n'
                f'  - name: fdbz\n    plugin: file\n    route: "{tmp}/out/dbz.jsonl"\n    format: debezium\n')
    plugins = os.path.join(tmp, "plugins")
    os.makedirs(plugins, mode=0o755)
    for name in ("file", "kafka", "redis", "nats"):
        so = os.path.join(BUILD, "sinks", name, ".libs", f"{name}.so")
        subprocess.run(["cp", so, os.path.join(plugins, f"{name}.so")], check=True)
    os.chmod(plugins, 0o755)
    log = open(os.path.join(tmp, "outboxd.log"), "w")
    d = subprocess.Popen([os.path.join(BUILD, "outboxd/outboxd"), "--config", conf, "--plugin-dir", plugins],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            st = json.loads(run(ctl + ["status", "--json"]))
            sinks = {s["name"]: s for s in st["sinks"]}
            if len(sinks) == 8 and all(s.get("lag_events") == 0 for s in sinks.values()):
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"outboxd did not publish every event within 90 s: {open(log.name).read()[-2000:]}")
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(60)
    ok(d.returncode == 0, "outboxd stops with exit 0 (under ASan: no leak, no error)",
       f"exit {d.returncode}: {open(log.name).read()[-3000:]}")

    def created_iso(doc):
        ms = int(doc["created"].replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
        return ms

    # CloudEvents, Kafka, binary mode: kcat reads, the SDK decodes.
    out = run(["kcat", "-C", "-b", brokers, "-t", ce_topic, "-e", "-q", "-J", "-o", "beginning"])
    msgs = [json.loads(l) for l in out.splitlines() if l.strip()]
    ok(len(msgs) == 3, "kafka cloudevents: one message per event", f"{len(msgs)} messages")
    for m, i, (key, data, headers) in zip(msgs, ids, events):
        h = m.get("headers") or []
        hd = {h[j]: h[j + 1].encode() for j in range(0, len(h), 2)}
        ev = from_binary(KafkaMessage(headers=hd, key=m["key"].encode() if m.get("key") is not None else None,
                                      value=m["payload"].encode()), JSONFormat())
        doc = docs[i]
        t_ms = int(ev.get_time().timestamp() * 1000)
        good = (ev.get_id() == i and ev.get_type() == "order.created" and ev.get_source() == want_source and
                ev.get_specversion() == "1.0" and t_ms == created_iso(doc) and
                ev.get_datacontenttype() == "application/json" and ev.get_data() == doc["data"] and
                ev.get_subject() == key and hd.get("ce_id") == i.encode() and
                m.get("key") == (key if key is not None else "order.created"))
        ok(good, f"kafka cloudevents: event {i} decodes with the SDK's from_binary, attributes as the envelope's",
           f"{ev.get_attributes()} data {ev.get_data()} key {m.get('key')}")
        if "traceparent" in headers:
            ok(hd.get("traceparent") == TRACEPARENT.encode() and hd.get("tracestate") == TRACESTATE.encode() and
               ev.get_extension("traceparent") == TRACEPARENT,
               "kafka cloudevents: traceparent and tracestate as headers and as the tracing extension", str(hd))
        if "tenant" in headers:
            ok(ev.get_extension("tenant") == "acme" and "ce_Not-An-Ext" not in hd,
               "kafka cloudevents: an envelope header that is a valid attribute name is an extension, others not",
               str(hd))

    # Debezium's outbox event router layout on Kafka.
    out = run(["kcat", "-C", "-b", brokers, "-t", dbz_topic, "-e", "-q", "-J", "-o", "beginning"])
    msgs = [json.loads(l) for l in out.splitlines() if l.strip()]
    ok(len(msgs) == 3, "kafka debezium: one message per event", f"{len(msgs)} messages")
    for m, i, (key, data, headers) in zip(msgs, ids, events):
        h = m.get("headers") or []
        hd = {h[j]: h[j + 1] for j in range(0, len(h), 2)}
        good = (m.get("key") == (key if key is not None else "order.created") and hd.get("id") == i and
                json.loads(m["payload"]) == docs[i]["data"] and
                not any(k.startswith("outbox-") or k.startswith("ce_") for k in hd))
        ok(good, f"kafka debezium: event {i}: key, header id and the data alone as value", json.dumps(m))
        if "traceparent" in headers:
            ok(hd.get("traceparent") == TRACEPARENT, "kafka debezium: traceparent as a header", str(hd))

    # CloudEvents on Kafka in structured mode, on request: the SDK's
    # from_structured; the key is still the event's key.
    from cloudevents.core.bindings.kafka import from_structured
    out = run(["kcat", "-C", "-b", brokers, "-t", ce_topic + "s", "-e", "-q", "-J", "-o", "beginning"])
    msgs = [json.loads(l) for l in out.splitlines() if l.strip()]
    ok(len(msgs) == 3, "kafka cloudevents structured: one message per event", f"{len(msgs)} messages")
    for m, i, (key, data, headers) in zip(msgs, ids, events):
        h = m.get("headers") or []
        hd = {h[j]: h[j + 1].encode() for j in range(0, len(h), 2)}
        ev = from_structured(KafkaMessage(headers=hd, key=m["key"].encode() if m.get("key") is not None else None,
                                          value=m["payload"].encode()), JSONFormat())
        good = (ev.get_id() == i and ev.get_source() == want_source and ev.get_data() == docs[i]["data"] and
                hd.get("content-type", b"").startswith(b"application/cloudevents+json") and
                m.get("key") == (key if key is not None else "order.created"))
        ok(good, f"kafka cloudevents structured: event {i} decodes with the SDK's from_structured",
           f"{ev.get_attributes()} {hd}")

    # Debezium's layout where the protocol has no headers: Redis fields id
    # and payload; a file line {"headers": {"id": ...}, "payload": DATA}.
    out = json.loads(run(["redis-cli", "--json", "-u", redis_url, "XRANGE", stream + "d", "-", "+"]))
    fields = [dict(zip(e[1][0::2], e[1][1::2])) for e in out]
    lines = [json.loads(l) for l in open(os.path.join(tmp, "out", "dbz.jsonl"))]
    for n, i in enumerate(ids):
        f = fields[n] if n < len(fields) else {}
        ok(f.get("id") == i and json.loads(f.get("payload", "null")) == docs[i]["data"],
           f"redis debezium: event {i}: field id and the data as payload", str(f))
        l = lines[n] if n < len(lines) else {}
        ok(l.get("headers", {}).get("id") == i and l.get("payload") == docs[i]["data"],
           f"file debezium: event {i}: headers.id and the data as payload", str(l))

    def check_structured(where, body, i, key, headers_seen, headers):
        ev = JSONFormat().read(None, body if isinstance(body, bytes) else body.encode())
        doc = docs[i]
        t_ms = int(ev.get_time().timestamp() * 1000)
        good = (ev.get_id() == i and ev.get_type() == "order.created" and ev.get_source() == want_source and
                t_ms == created_iso(doc) and ev.get_data() == doc["data"] and ev.get_subject() == key)
        ok(good, f"{where} cloudevents: event {i} decodes with the SDK's JSON format, attributes as the envelope's",
           f"{ev.get_attributes()} {ev.get_data()}")
        if "traceparent" in headers:
            ok(headers_seen.get("traceparent") == TRACEPARENT and headers_seen.get("tracestate") == TRACESTATE,
               f"{where} cloudevents: traceparent and tracestate arrive intact", str(headers_seen))

    # Redis: redis-cli reads the stream ([[entry id, [field, value, ...]], ...]).
    out = json.loads(run(["redis-cli", "--json", "-u", redis_url, "XRANGE", stream, "-", "+"]))
    entries = [dict(zip(e[1][0::2], e[1][1::2])) for e in out]
    ok(len(entries) == 3, "redis cloudevents: one stream entry per event", f"{len(entries)}: {out}")
    for fields, i, (key, data, headers) in zip(entries, ids, events):
        check_structured("redis", fields.get("payload", ""), i, key, fields, headers)

    # NATS JetStream: nats-py reads the stream.
    async def read_nats():
        import nats
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        got = []
        for seq in range(1, 4):
            m = await js.get_msg(nats_stream, seq)
            got.append((m.data, dict(m.headers or {})))
        await nc.close()
        return got
    got = asyncio.run(read_nats())
    for (body, hdrs), i, (key, data, headers) in zip(got, ids, events):
        check_structured("nats", body, i, key, hdrs, headers)

    # The file: one line per event, {"headers": ..., "payload": the CloudEvent}.
    lines = [json.loads(l) for l in open(os.path.join(tmp, "out", "ce.jsonl"))]
    ok(len(lines) == 3, "file cloudevents: one line per event", f"{len(lines)}")
    for line, i, (key, data, headers) in zip(lines, ids, events):
        check_structured("file", json.dumps(line["payload"]), i, key, line.get("headers", {}), headers)

    # Bad configurations: refused by --check, naming the file and the line.
    def check(sink_yaml):
        bad = os.path.join(tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write(f'mongodb:\n  uri: "{uri}"\n  database: {db}\noutbox: {outbox}\nsinks:\n' + sink_yaml)
        p = subprocess.run([os.path.join(BUILD, "outboxd/outboxd"), "--check", "--config", bad, "--plugin-dir",
                            plugins], capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr, bad
    rc, out, bad = check('  - name: f\n    plugin: file\n    route: "/tmp/x.jsonl"\n    format: cloudevents\n')
    ok(rc == 2 and f"{bad}:9:13: format: cloudevents needs cloudevents.source" in out,
       "--check refuses format: cloudevents without a source, at its line", f"exit {rc}: {out}")
    rc, out, bad = check('  - name: f\n    plugin: file\n    route: "/tmp/x.jsonl"\n    format: avro\n')
    ok(rc == 2 and f"{bad}:9:13: format: expected native, cloudevents or debezium, got \"avro\"" in out,
       "--check refuses an unknown format, at its line", f"exit {rc}: {out}")
    rc, out, bad = check('  - name: f\n    plugin: file\n    route: "/tmp/x.jsonl"\n    format: cloudevents\n'
                         '    cloudevents:\n      source: /s\n      mode: binary\n')
    ok(rc == 2 and f"{bad}:9:13: sink f: cloudevents.mode binary: plugin file has no CloudEvents binding" in out,
       "--check refuses binary mode for a plugin without a binding with headers", f"exit {rc}: {out}")

    client[db].drop_collection(outbox)
    client[db].drop_collection(outbox + ".checkpoints")

    print(f"1..{len(results)}")
    for n, (cond, name, why) in enumerate(results, 1):
        print(f"{'ok' if cond else 'not ok'} {n} - {name}")
        if not cond:
            print("# " + why.replace("\n", "\n# "))
    return 0 if all(c for c, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
