#!/bin/sh
# test_formats.sh - issue 19's message formats, judged by consumers no one
# here wrote (kcat, the CloudEvents Python SDK, nats-py, redis-cli): runs
# tests/formats_judge.py with the Python that scripts/deps.sh gives those
# libraries (a venv over the system's, which has pymongo). Prints TAP.
set -u
cache=${XDG_CACHE_HOME:-$HOME/.cache}/service-outbox
python=${OUTBOX_TEST_PYTHON:-$cache/pyenv/bin/python}
env_file=${OUTBOX_SERVICES_DIR:-$cache}/services.env
if [ ! -x "$python" ] || ! "$python" -c 'import cloudevents, nats, pymongo' 2>/dev/null; then
  if [ -n "${OUTBOX_TEST_REQUIRE_SERVERS:-}" ]; then
    echo "1..1"
    echo "not ok 1 - the CloudEvents SDK and nats-py are not in $python (scripts/deps.sh installs them)"
  else
    echo "1..0 # SKIP the CloudEvents SDK and nats-py are not in $python (scripts/deps.sh installs them)"
  fi
  exit 0
fi
if [ ! -f "$env_file" ]; then
  echo "1..0 # SKIP no test servers: run tests/services/services.sh up"
  exit 0
fi
# The Kafka broker is stopped and started by some tests (outages): wait for
# them (the lock of tests/testlib.h, OUTBOX_TEST_KAFKA_LOCK).
exec 8>>/tmp/outbox-test-kafka.lock
flock 8
export PYTHONDONTWRITEBYTECODE=1 # nothing written into the source tree
exec "$python" "${OUTBOX_TEST_SRCDIR:-.}/tests/formats_judge.py"
