#!/bin/sh
# test_conformance_sinks.sh - every shipped sink that needs a server passes
# outbox-sink-conformance against the harness's servers
# (tests/services/services.sh): Kafka, Redis and NATS (JetStream). A sink
# whose server is not there is skipped with the reason (a failure under
# OUTBOX_TEST_REQUIRE_SERVERS, as tests/run-all.sh sets it); a sink that
# configure left out is skipped too. Prints TAP.
#
# The destinations are fixed names (topic conformance-conformance.checked,
# stream key conformance:conformance.checked, JetStream stream CONFORMANCE
# on subjects conformance.>), reused by every run: event ids are unique per
# run, so runs never mistake each other's events.
set -u
builddir=${OUTBOX_TEST_BUILDDIR:-.}
env_file=${OUTBOX_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/service-outbox}/services.env
# Each address from the environment first, then from the harness's file.
for var in OUTBOX_TEST_KAFKA_BROKERS OUTBOX_TEST_REDIS_URL OUTBOX_TEST_NATS_URL; do
  eval "set_=\${$var:-}"
  if [ -z "$set_" ] && [ -f "$env_file" ]; then
    value=$(sed -n "s/^$var=//p" "$env_file" | tail -1)
    eval "$var=\$value"
  fi
done
tool="$builddir/conformance/outbox-sink-conformance"
tmp=$(mktemp -d /tmp/outbox-conformance-sinks-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "1..4"

run() {
  if [ -n "${OUTBOX_TEST_VALGRIND:-}" ]; then
    "$builddir/libtool" --mode=execute valgrind -q --error-exitcode=99 --leak-check=full \
      --errors-for-leak-kinds=definite --show-leak-kinds=definite "$tool" "$@"
  else
    "$tool" "$@"
  fi
}

n=0
# sink NAME SERVER_VARIABLE SERVER_NAME -- ARGS...
sink() {
  name=$1 var=$2 server=$3
  shift 4
  n=$((n + 1))
  so="$builddir/sinks/$name/.libs/$name.so"
  eval "address=\${$var:-}"
  if [ ! -f "$so" ]; then
    echo "ok $n # SKIP the $name sink passes outbox-sink-conformance: it is not built (configure left it out)"
    return
  fi
  if [ -z "$address" ]; then
    if [ -n "${OUTBOX_TEST_REQUIRE_SERVERS:-}" ]; then
      echo "not ok $n - the $name sink passes outbox-sink-conformance: no $server test server ($var unset)"
    else
      echo "ok $n # SKIP the $name sink passes outbox-sink-conformance: no $server test server (tests/services/services.sh up)"
    fi
    return
  fi
  run "$so" "$@" >"$tmp/out" 2>"$tmp/err"
  status=$?
  if [ "$status" -eq 0 ]; then
    echo "ok $n - the $name sink passes outbox-sink-conformance (a $server test server)"
    grep '^# ' "$tmp/out"
  else
    echo "not ok $n - the $name sink passes outbox-sink-conformance (a $server test server; exit $status)"
    sed 's/^/# /' "$tmp/out" "$tmp/err"
  fi
}

# The Kafka broker is stopped and started by some tests (outages): wait
# for them (the lock of tests/testlib.h, OUTBOX_TEST_KAFKA_LOCK).
exec 8>>/tmp/outbox-test-kafka.lock
flock 8
sink kafka OUTBOX_TEST_KAFKA_BROKERS Kafka -- \
  --option "bootstrap.servers=${OUTBOX_TEST_KAFKA_BROKERS:-}" --route 'conformance-{type}' --events 200
sink redis OUTBOX_TEST_REDIS_URL Redis -- \
  --option "url=${OUTBOX_TEST_REDIS_URL:-}" --route 'conformance:{type}' --events 200
sink nats OUTBOX_TEST_NATS_URL NATS -- \
  --option "servers=${OUTBOX_TEST_NATS_URL:-}" --option stream=CONFORMANCE \
  --option 'stream_subjects=conformance.>' --route 'conformance.{type}' --events 200

# A server that is not there: open's RETRY is the failing check, with its
# message, and nothing is published after it (no server needed).
n=$((n + 1))
so="$builddir/sinks/redis/.libs/redis.so"
if [ ! -f "$so" ]; then
  echo "ok $n # SKIP a failed open is reported and nothing is published after it: the redis sink is not built"
else
  run "$so" --option url=redis://127.0.0.1:1/0 --option connect_timeout_ms=500 >"$tmp/out" 2>"$tmp/err"
  status=$?
  failing=$(sed -n 's/^not ok \([0-9]*\) .*/\1/p' "$tmp/out" | tr '\n' ' ' | sed 's/ $//')
  if [ "$status" -eq 1 ] && [ "$failing" = "4" ] \
     && grep -q '^not ok 4 - open returns OK .* # open returned RETRY after [0-9]* ms: .*127.0.0.1:1' "$tmp/out" \
     && grep -q '^ok 5 - .* # SKIP open failed: nothing is published after a failed open' "$tmp/out"; then
    echo "ok $n - a failed open is reported and nothing is published after it"
  else
    echo "not ok $n - a failed open is reported and nothing is published after it (exit $status, failing \"$failing\")"
    sed 's/^/# /' "$tmp/out" "$tmp/err"
  fi
fi
