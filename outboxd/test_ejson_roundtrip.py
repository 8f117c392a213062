#!/usr/bin/python3
"""test_ejson_roundtrip.py - the round trip of outboxd's JSON payload
(outboxd/ejson.h): random documents made here with a fixed seed (nested
documents and arrays, unicode keys and strings, doubles of random bit
patterns, int32/int64, dates, binary, decimal128, ObjectIds, ...), encoded
by pymongo's bson, written as JSON by outboxd's writer (outboxd/ejson_dump),
then read back:

1. by Python's json module, strictly (no NaN/Infinity literals, valid UTF-8,
   compact: the text is exactly what json.dumps writes of what was read,
   with separators ',' and ':' and ensure_ascii off, once each number's own
   text is put back), every double written in its shortest form (the digits
   of Python's repr) and with a '.' or an exponent, so it reads as a float;
2. by bson.json_util.loads in relaxed mode: equal to the original document,
   value for value and type for type (float, int, string, ...);
3. against libbson's bson_as_relaxed_extended_json of the same document:
   the same values once both are read by json (libbson's doubles have 20
   digits, ours the fewest).

Usage: test_ejson_roundtrip.py EJSON_DUMP [COUNT] [WRAPPER...]. Prints TAP.
"""
import datetime
import json
import math
import random
import struct
import subprocess
import sys

import bson
from bson import json_util
from bson.binary import Binary
from bson.code import Code
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.son import SON
from bson.timestamp import Timestamp

EPOCH = datetime.datetime(1970, 1, 1)
# datetime's own range (pymongo 3.11 decodes dates into datetime).
MS_MIN = int((datetime.datetime(1, 1, 1) - EPOCH).total_seconds() * 1000)
MS_MAX = int((datetime.datetime(9999, 12, 31, 23, 59, 59, 999000) - EPOCH).total_seconds() * 1000)

rnd = random.Random(17)

# Code points to draw from: ASCII (with the characters JSON escapes), Latin,
# the line and paragraph separators, CJK, emoji (4 bytes in UTF-8), the
# highest code point. No surrogates: they are not UTF-8.
RANGES = [(0x20, 0x7E), (0x00, 0x1F), (0x7F, 0x7F), (0xA0, 0x24F), (0x2028, 0x2029),
          (0x4E00, 0x4FFF), (0xFFFD, 0xFFFD), (0x1F600, 0x1F64F), (0x10FFFF, 0x10FFFF)]
WEIGHTS = [60, 6, 1, 10, 2, 8, 1, 5, 1]


def rand_text(max_len, nul=True):
    out = []
    for _ in range(rnd.randint(0, max_len)):
        lo, hi = rnd.choices(RANGES, WEIGHTS)[0]
        c = chr(rnd.randint(lo, hi))
        if c == "\0" and not nul:
            c = "0"
        out.append(rnd.choice(['"', "\\", "/", c, c, c, c, c]))
    return "".join(out)


def rand_double():
    kind = rnd.random()
    if kind < 0.5:  # any bit pattern: subnormals, NaNs, infinities included
        return struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0]
    if kind < 0.75:  # prices and the like
        return round(rnd.uniform(-1e6, 1e6), rnd.randint(0, 4))
    if kind < 0.85:
        return float(rnd.randint(-2**60, 2**60))
    return rnd.choice([0.0, -0.0, 19.95, 0.1, 1e21, 1e20, 1e16, 5e-324, -5e-324, 2.2250738585072014e-308,
                       1.7976931348623157e+308, float("inf"), float("-inf"), float("nan"),
                       math.ldexp(1.0, rnd.randint(-1074, 1023))])


def rand_decimal():
    if rnd.random() < 0.1:
        return Decimal128(rnd.choice(["NaN", "Infinity", "-Infinity", "-0", "0E-6176", "1E+6144"]))
    digits = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 34))).lstrip("0") or "0"
    sign = rnd.choice(["", "-"])
    return Decimal128("%s%sE%d" % (sign, digits, rnd.randint(-6176 + 34, 6111 - 34)))


def rand_value(depth):
    kinds = ["str", "str", "int32", "int64", "double", "double", "double", "double", "date", "bin", "dec",
             "bool", "null", "oid", "ts", "regex", "code", "minmax"]
    if depth < 12:
        kinds += ["doc", "doc", "arr", "arr"]
    k = rnd.choice(kinds)
    if k == "str":
        return rand_text(24)
    if k == "int32":
        return rnd.choice([0, -1, 2**31 - 1, -2**31, rnd.randint(-2**31, 2**31 - 1)])
    if k == "int64":
        return Int64(rnd.choice([2**63 - 1, -2**63, rnd.randint(-2**63, 2**63 - 1), rnd.randint(-5, 5)]))
    if k == "double":
        return rand_double()
    if k == "date":
        ms = rnd.choice([0, -1, MS_MIN, MS_MAX, rnd.randint(MS_MIN, MS_MAX), rnd.randint(0, 4102444800000)])
        return EPOCH + datetime.timedelta(milliseconds=ms)
    if k == "bin":
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 40)))
        sub = rnd.choice([0, 0, 1, 4, 5, 0x80, 0x9F])  # (pymongo 3.11 fails to encode 0xFF)
        if sub == 4:
            data = bytes(rnd.getrandbits(8) for _ in range(16))
        return Binary(data, sub) if sub else data
    if k == "dec":
        return rand_decimal()
    if k == "bool":
        return rnd.random() < 0.5
    if k == "null":
        return None
    if k == "oid":
        return ObjectId(bytes(rnd.getrandbits(8) for _ in range(12)))
    if k == "ts":
        return Timestamp(rnd.getrandbits(32), rnd.getrandbits(32))
    if k == "regex":
        return Regex(rand_text(8, nul=False), "".join(sorted(rnd.sample("ilmsux", rnd.randint(0, 3)))))
    if k == "code":
        if rnd.random() < 0.5:
            return Code(rand_text(10))
        return Code(rand_text(10), {"x": rand_value(depth + 1)})
    if k == "minmax":
        return MinKey() if rnd.random() < 0.5 else MaxKey()
    if k == "doc":
        return rand_doc(depth + 1)
    return [rand_value(depth + 1) for _ in range(rnd.randint(0, 5))]


def rand_doc(depth):
    d = SON()
    for _ in range(rnd.randint(0, 6 if depth else 10)):
        d[rand_text(12, nul=False)] = rand_value(depth)
    return d


def fbits(x):
    return struct.pack("<d", x)


def to_ms(dt):
    if dt.tzinfo is not None:
        dt = dt.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return (dt - EPOCH) // datetime.timedelta(milliseconds=1)


def same(a, b, path):
    """Asserts that b (read back by json_util) is a (decoded by bson)."""
    if isinstance(a, float):
        assert type(b) is float, "%s: %r came back as %r" % (path, a, b)
        assert fbits(a) == fbits(b) or (math.isnan(a) and math.isnan(b)), "%s: %r != %r" % (path, a, b)
    elif isinstance(a, bool) or a is None:
        assert a is b, "%s: %r != %r" % (path, a, b)
    elif isinstance(a, int):  # int and Int64: relaxed mode keeps the value, not the width
        assert isinstance(b, int) and not isinstance(b, bool) and a == b, "%s: %r != %r" % (path, a, b)
    elif isinstance(a, datetime.datetime):
        assert isinstance(b, datetime.datetime) and to_ms(a) == to_ms(b), "%s: %r != %r" % (path, a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a.keys()) == list(b.keys()), "%s: keys %r != %r" % (path, a, b)
        for k in a:
            same(a[k], b[k], path + "." + k)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), "%s: %r != %r" % (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, "%s[%d]" % (path, i))
    elif isinstance(a, Code):
        assert isinstance(b, Code) and str(a) == str(b), "%s: %r != %r" % (path, a, b)
        assert (a.scope is None) == (b.scope is None), "%s: scope %r != %r" % (path, a.scope, b.scope)
        if a.scope is not None:
            same(a.scope, b.scope, path + ".$scope")
    elif isinstance(a, Regex):
        assert isinstance(b, Regex) and a.pattern == b.pattern and a.flags == b.flags, "%s: %r != %r" % (path, a, b)
    else:
        assert type(a) is type(b) and a == b, "%s: %r (%s) != %r (%s)" % (path, a, type(a), b, type(b))


def digits(text):
    mant = text.lstrip("-").lower().split("e")[0].replace(".", "").lstrip("0").rstrip("0")
    return len(mant) or 1


floats_seen = []
MARK = "\ue000"  # a private-use character that rand_text never draws


def take_float(text):
    x = float(text)
    floats_seen.append((text, x))
    return x


def reject_constant(name):
    raise ValueError("not JSON: " + name)


def strict_loads(line):
    return json.loads(line, parse_float=take_float, parse_constant=reject_constant)


def unify(a, b, path):
    """libbson's reading of a value against ours (both from json.loads)."""
    if isinstance(a, float) or isinstance(b, float):
        assert type(a) is float and type(b) is float and fbits(a) == fbits(b), "%s: %r vs libbson %r" % (path, a, b)
    elif isinstance(a, dict) and isinstance(b, dict) and "$date" in a and isinstance(b.get("$date"), str) \
            and not isinstance(a["$date"], str):
        pass  # after 9999: libbson writes a 5-digit year (no reader takes it), ours milliseconds
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), "%s: %r vs libbson %r" % (path, a, b)
        for k in a:
            unify(a[k], b[k], path + "." + k)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), "%s: %r vs libbson %r" % (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            unify(x, y, "%s[%d]" % (path, i))
    else:
        assert a == b and type(a) is type(b), "%s: %r vs libbson %r" % (path, a, b)


def main():
    dump = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    wrapper = sys.argv[3:]
    docs = [rand_doc(0) for _ in range(count)]
    # The first few: what the issue names.
    docs[:4] = [SON([("total", 19.95), ("n", 3.0), ("big", 1e21), ("tiny", 5e-324)]),
                SON([("ls", "a\u2028b\u2029c"), ("nul", "a\0b"), ("k\"\\\n", 1)]),
                SON([("e", {}), ("a", []), ("i", Int64(-2**63))]),
                SON([("created", datetime.datetime(2026, 11, 26, 18, 45, 25, 123000))])]
    raw = b"".join(bson.BSON.encode(d) for d in docs)
    run = subprocess.run(wrapper + [dump, "--libbson"], input=raw, stdout=subprocess.PIPE)
    if run.returncode != 0:  # its stderr (or valgrind's) says why
        print("1..1\nnot ok 1 - %s exited %d" % (" ".join(wrapper + [dump]), run.returncode))
        return 1
    out = run.stdout
    lines = out.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 2 * count + 1, "%d lines for %d documents" % (len(lines), count)
    opts = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=False)
    tests = [("valid_compact_json_with_shortest_doubles", 0), ("equal_to_the_original_by_json_util", 0),
             ("same_values_as_libbson", 0)]
    failures = [[], [], []]
    n_floats = 0
    for i, doc in enumerate(docs):
        raw_ours, raw_theirs = lines[2 * i], lines[2 * i + 1]
        where = "document %d" % i
        try:
            text = raw_ours.decode("utf-8")  # strict: valid UTF-8
            floats_seen.clear()
            value = strict_loads(text)
            n_floats += len(floats_seen)
            for t, x in floats_seen:
                assert digits(t) == digits(repr(x)), "%s: %s is not the shortest (%r)" % (where, t, x)
                assert "." in t or "e" in t, "%s: %s reads as an integer" % (where, t)
            # Compact, and nothing escaped that JSON does not require:
            # Python's json.dumps writes exactly our text, numbers put back.
            marked = json.loads(text, parse_float=lambda t: MARK + t + MARK)
            again = json.dumps(marked, separators=(",", ":"), ensure_ascii=False)
            again = again.replace('"' + MARK, "").replace(MARK + '"', "")
            assert again == text, "%s: not Python's compact text:\n %s\n %s" % (where, text[:200], again[:200])
        except Exception as e:  # noqa: BLE001 - reported as a TAP failure
            failures[0].append("%s: %s: %s" % (where, e, raw_ours[:300]))
            continue
        try:
            original = bson.BSON.encode(doc)
            same(bson.BSON(original).decode(), json_util.loads(text, json_options=opts), where)
        except Exception as e:  # noqa: BLE001
            failures[1].append("%s: %s" % (where, e))
        try:
            assert raw_theirs != b"NULL", "libbson gave up"
            unify(strict_loads(text), json.loads(raw_theirs.decode("utf-8")), where)
        except Exception as e:  # noqa: BLE001
            failures[2].append("%s: %s" % (where, e))
    print("1..%d" % len(tests))
    for n, ((name, _), fails) in enumerate(zip(tests, failures), 1):
        if fails:
            print("not ok %d - %s (%d of %d documents)" % (n, name, len(fails), count))
            for f in fails[:5]:
                print("# " + f.replace("\n", "\\n"))
        else:
            print("ok %d - %s (%d documents, %d doubles)" % (n, name, count, n_floats))
    return 1 if any(failures) else 0


if __name__ == "__main__":
    sys.exit(main())
