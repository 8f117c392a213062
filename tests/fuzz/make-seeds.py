#!/usr/bin/python3
"""make-seeds.py - writes the seed corpora of the fuzz targets into
tests/fuzz/corpus/TARGET/ (committed; run again after changing a seed).
Seeds are small, valid inputs that reach each part of the code under test;
the fuzzer mutates them from there. Needs python3-pymongo (for BSON): run it with /usr/bin/python3."""
import datetime
import os
import sys

import bson

here = os.path.dirname(os.path.abspath(__file__))
top = os.path.dirname(os.path.dirname(here))


def write(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# -- the configuration loader: the full example, and small variations
with open(os.path.join(top, "outboxd", "testdata", "full.yaml"), "rb") as f:
    write("fuzz_conffile", "full.yaml", f.read())
write("fuzz_conffile", "minimal.yaml", """\
mongodb:
  uri: mongodb://127.0.0.1:37017/
  database: shop
outbox: events
sinks:
  - name: audit
    plugin: file
    route: /var/lib/outboxd/{type}.jsonl
""")
write("fuzz_conffile", "secrets.yaml", """\
mongodb:
  uri: {env: OUTBOX_MONGODB_URI}
  database: shop
outbox: events
checkpoint: {every_events: 100, every_ms: 500}
sinks:
  - name: redis
    plugin: redis
    route: "orders.{type}.{key}"
    types: [order.created, order.shipped]
    on_error: deadletter
    on_gap: continue
    payload: bson
    options:
      url: redis://127.0.0.1:6379/0
      password: {file: redis.pw}
""")
write("fuzz_conffile", "flow.yaml", '{mongodb: {uri_file: "uri", database: d}, outbox: o, sinks: [{name: a, plugin: file, route: "x/{{{type}}}"}]}\n')

# -- the schema compiler and validator: schema, NUL, data
for name in sorted(os.listdir(os.path.join(top, "examples", "schemas"))):
    with open(os.path.join(top, "examples", "schemas", name), "rb") as f:
        schema = f.read()
    write("fuzz_schema", name, schema + b"\0" + b'{"ordernr": 1001, "customer": "c-1", "lines": [{"sku": "A-1", "qty": 2, "price": 19.95}], "total": 39.9}')
write("fuzz_schema", "pattern", b'{"bsonType": "object", "properties": {"code": {"bsonType": "string", "pattern": "^[A-Z]{3}-[0-9]+$", "minLength": 5, "maxLength": 12}}, "required": ["code"], "additionalProperties": false}\0{"code": "ABC-123"}')
write("fuzz_schema", "numbers", b'{"type": "object", "properties": {"n": {"bsonType": ["int", "long", "double", "decimal"], "minimum": 0, "exclusiveMaximum": 100}, "e": {"enum": ["a", 1, null, {"x": [1]}]}, "l": {"bsonType": "array", "items": {"bsonType": "string"}, "minItems": 1, "maxItems": 3}}}\0{"n": 5, "e": {"x": [1]}, "l": ["a"]}')

# -- envelopes as they come out of the log
oid = bson.ObjectId("65f0c0ffee0123456789abcd")
created = datetime.datetime(2026, 11, 26, 18, 45, 25, 123000, tzinfo=datetime.timezone.utc)
good = {"_id": oid, "type": "order.created", "key": "order-1001",
        "data": {"ordernr": 1001, "total": 19.95, "lines": [{"sku": "A", "qty": 2}],
                 "note": "caf\u00e9 \"quoted\" \\ \n", "when": created, "big": bson.Int64(2**62)},
        "created": created, "headers": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        "v": 1}
write("fuzz_envelope", "good.bson", bson.encode(good))
write("fuzz_envelope", "null_key.bson", bson.encode(dict(good, key=None, headers={})))
write("fuzz_envelope", "no_headers.bson", bson.encode({k: v for k, v in good.items() if k != "headers"}))
write("fuzz_envelope", "int_key.bson", bson.encode(dict(good, key=7)))
write("fuzz_envelope", "array_data.bson", bson.encode(dict(good, data=[1, 2])))
write("fuzz_envelope", "string_id.bson", bson.encode(dict(good, _id="x")))
write("fuzz_envelope", "odd_values.bson", bson.encode(dict(good, data={
    "bin": bson.Binary(b"\x00\x01"), "re": bson.Regex("^a", "i"), "dec": bson.Decimal128("1.10"),
    "min": bson.MinKey(), "max": bson.MaxKey(), "ts": bson.Timestamp(1, 2), "code": bson.Code("f()"),
    "nan": float("nan"), "inf": float("inf"), "$dollar": 1, "dot.key": 2})))
nested = {}
cur = nested
for _ in range(40):
    cur["a"] = {}
    cur = cur["a"]
write("fuzz_envelope", "nested.bson", bson.encode(dict(good, data=nested)))

# -- routes: template NUL type NUL key
write("fuzz_route", "type", b"orders.{type}\0order.created\0order-1001")
write("fuzz_route", "path", b"/srv/out/{type}/{key}.jsonl\0order.created\0../../etc/passwd")
write("fuzz_route", "braces", b"{{literal}}.{type}.{key}.{key}\0t\0")
write("fuzz_route", "empty", b"\0\0")
print("seeds written under", os.path.join(here, "corpus"), file=sys.stderr)
