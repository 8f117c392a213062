#!/bin/sh
# test_node_client.sh - the Node producer library (clients/node, issue 20)
# against the validation table every producer runs and the real servers:
# runs clients/node/test/test_client.js with the dependencies scripts/deps.sh
# installs from the npm registry into the cache (NODE_PATH). Prints TAP.
set -u
cache=${XDG_CACHE_HOME:-$HOME/.cache}/service-outbox
modules=${OUTBOX_TEST_NODE_MODULES:-$cache/node-client/node_modules}
if ! command -v node >/dev/null 2>&1 || [ ! -d "$modules/mongodb" ] || [ ! -d "$modules/ajv-draft-04" ]; then
  if [ -n "${OUTBOX_TEST_REQUIRE_SERVERS:-}" ]; then
    echo "1..1"
    echo "not ok 1 - node, or clients/node's dependencies in $modules, missing (scripts/deps.sh installs them)"
  else
    echo "1..0 # SKIP node, or clients/node's dependencies in $modules, missing (scripts/deps.sh installs them)"
  fi
  exit 0
fi
# The Kafka broker is stopped and started by some tests (outages): wait for
# them (the lock of tests/testlib.h, OUTBOX_TEST_KAFKA_LOCK).
exec 8>>/tmp/outbox-test-kafka.lock
flock 8
NODE_PATH=$modules
export NODE_PATH
exec node "${OUTBOX_TEST_SRCDIR:-.}/clients/node/test/test_client.js"
