#!/bin/sh
# test_python_client.sh - the Python producer library (clients/python, issue
# 20) against the validation table every producer runs and the real servers:
# runs clients/python/tests/test_client.py with Debian's Python, which has
# pymongo and jsonschema (scripts/deps.sh installs them). Prints TAP.
set -u
python=${OUTBOX_TEST_PYTHON3:-/usr/bin/python3}
if ! "$python" -c 'import pymongo, jsonschema' 2>/dev/null; then
  if [ -n "${OUTBOX_TEST_REQUIRE_SERVERS:-}" ]; then
    echo "1..1"
    echo "not ok 1 - pymongo and jsonschema are not in $python (scripts/deps.sh installs python3-pymongo and python3-jsonschema)"
  else
    echo "1..0 # SKIP pymongo and jsonschema are not in $python (scripts/deps.sh installs them)"
  fi
  exit 0
fi
# The Kafka broker is stopped and started by some tests (outages): wait for
# them (the lock of tests/testlib.h, OUTBOX_TEST_KAFKA_LOCK).
exec 8>>/tmp/outbox-test-kafka.lock
flock 8
export PYTHONDONTWRITEBYTECODE=1 # nothing written into the source tree (make distcheck packs it)
exec "$python" "${OUTBOX_TEST_SRCDIR:-.}/clients/python/tests/test_client.py"
