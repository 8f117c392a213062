#!/bin/sh
# test_ejson_roundtrip.sh - outboxd's JSON payload read back by readers we
# did not write: 10,000 random documents (fixed seed) made by pymongo's
# bson, written by outboxd's writer (outboxd/ejson_dump), parsed by
# Python's json module (valid, compact, shortest doubles that read back bit
# for bit) and by bson.json_util in relaxed mode (equal to the originals),
# and compared with libbson's encoder. test_ejson_roundtrip.py says how.
# Prints TAP.
#
# With OUTBOX_TEST_VALGRIND set, the writer runs under valgrind's memcheck
# (1,000 documents: the coverage is the same, the time a tenth); an error
# or a definite leak fails the test. OUTBOX_TEST_QUICK also takes 1,000.
set -u
srcdir=${OUTBOX_TEST_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${OUTBOX_TEST_BUILDDIR:-.}
python=/usr/bin/python3
if ! "$python" -c 'import bson.json_util' 2>/dev/null; then
  if [ -n "${OUTBOX_TEST_REQUIRE_SERVERS:-}" ]; then
    echo "1..1"
    echo "not ok 1 - $python has no bson module (Debian: python3-pymongo; scripts/deps.sh installs it)"
    exit 1
  fi
  echo "1..0 # SKIP $python has no bson module (Debian: python3-pymongo)"
  exit 0
fi
count=10000
[ -n "${OUTBOX_TEST_QUICK:-}" ] && count=1000
set --
if [ -n "${OUTBOX_TEST_VALGRIND:-}" ]; then
  count=1000
  # ejson_dump is a libtool wrapper until installed: valgrind runs the
  # program it wraps.
  set -- "$builddir/libtool" --mode=execute valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite --show-leak-kinds=definite
fi
exec "$python" "$srcdir/outboxd/test_ejson_roundtrip.py" "$builddir/outboxd/ejson_dump" "$count" "$@"
