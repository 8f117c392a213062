#!/usr/bin/env bash
# examples/demo.sh - the main job, from a fresh Debian machine: installs what
# is missing, starts the local test servers, builds, creates an outbox with
# the order example's schemas, puts the order events (the C example, then
# outboxctl), shows a refused event, tails the log, and runs outboxd with
# every sink: two file sinks, Kafka, Redis Streams and NATS JetStream, each
# with its own checkpoint (outboxctl status shows them caught up).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/deps.sh
bash tests/services/services.sh up
# shellcheck disable=SC1090
source "$(bash tests/services/services.sh env)"
build=$(bash scripts/build.sh _build/plain --enable-werror | tail -1)

uri=$OUTBOX_TEST_MONGODB_URI
db=demo
outbox="orders_outbox_$(date +%s)"
ctl() { "$build/outboxctl/outboxctl" --uri "$uri" --db "$db" --outbox "$outbox" --schemas examples/schemas "$@"; }

echo "== server: $OUTBOX_TEST_MONGODB_KIND at $uri"
echo "== outboxctl init"
ctl init --size $((8 * 1024 * 1024))

echo "== the order example (examples/order_example.c)"
"$build/examples/order_example" "$uri" "$db" "$outbox" examples/schemas

echo "== outboxctl put (valid, then invalid)"
id=$(ctl put order.shipped order-1002 '{"ordernr": 1002, "carrier": "ups"}' --header trace-id=demo-1)
echo "put $id"
ctl put order.created order-1003 '{"ordernr": "1003", "total": 5, "lines": [{"sku": "ABC-1", "qty": 1}]}' || echo "(exit $?: refused, nothing written)"

echo "== outboxctl tail --from-start"
ctl tail --from-start --timeout-ms 1000
echo "== outboxctl tail --after $id (nothing after it yet)"
ctl tail --after "$id" --timeout-ms 500
echo "== outboxd: every sink (file x2, Kafka, Redis Streams, NATS JetStream), each with its own checkpoint"
out=$(mktemp -d /tmp/outbox-demo-XXXXXX)
# The sinks are built in separate folders; outboxd takes one plugin folder.
mkdir -p "$out/plugins"
for s in file kafka redis nats; do
  cp "$build/sinks/$s/.libs/$s.so" "$out/plugins/$s.so"
done
tag=$(date +%s)
cat >"$out/outboxd.yaml" <<YAML
mongodb:
  uri: "$uri"
  database: $db
outbox: $outbox
sinks:
  - name: by-type
    plugin: file
    route: "$out/by-type/{type}.jsonl"
  - name: shipments
    plugin: file
    route: "$out/shipments.jsonl"
    types: [order.shipped]
    options:
      fsync: always
  - name: kafka
    plugin: kafka
    route: "demo-$tag.{type}"
    options:
      bootstrap.servers: "$OUTBOX_TEST_KAFKA_BROKERS"
  - name: redis
    plugin: redis
    route: "demo-$tag:{type}"
    options:
      url: "$OUTBOX_TEST_REDIS_URL"
      dedupe: true
  - name: nats
    plugin: nats
    route: "demo$tag.{type}"
    options:
      servers: "$OUTBOX_TEST_NATS_URL"
      stream: "DEMO$tag"
      stream_subjects: "demo$tag.>"
YAML
"$build/outboxd/outboxd" --check --config "$out/outboxd.yaml" --plugin-dir "$out/plugins"
"$build/outboxd/outboxd" --config "$out/outboxd.yaml" --plugin-dir "$out/plugins" 2>"$out/outboxd.log" &
pid=$!
# Should anything below fail, outboxd must not outlive the demo.
trap 'kill "$pid" 2>/dev/null || true' EXIT
ctl put order.shipped order-1003 '{"ordernr": 1003, "carrier": "postnl"}' >/dev/null
# Wait until every sink's checkpoint has caught up with the log (lag 0).
caught_up() {
  local json
  json=$(ctl status --json 2>/dev/null) || return 1
  [ "$(grep -o '"lag_events" *: *[0-9]*' <<<"$json" | grep -c ': *0$')" -eq 5 ]
}
for _ in $(seq 1 300); do
  caught_up && break
  sleep 0.2
done
echo "-- outboxctl status"
ctl status || true
kill -TERM "$pid"; wait "$pid"
for f in "$out"/by-type/*.jsonl "$out/shipments.jsonl"; do echo "-- $f"; cat "$f"; done
echo "-- Kafka topic demo-$tag.order.created (kcat)"
kcat -b "$OUTBOX_TEST_KAFKA_BROKERS" -t "demo-$tag.order.created" -C -e -q -o beginning \
  -f 'key=%k headers=%h value=%s\n'
echo "-- Redis stream demo-$tag:order.shipped (redis-cli XRANGE)"
redis_port=${OUTBOX_TEST_REDIS_URL##*:}; redis_port=${redis_port%%/*}
redis-cli -p "$redis_port" XRANGE "demo-$tag:order.shipped" - +
echo "-- outboxd's log"; cat "$out/outboxd.log"
echo "== done: outbox $db.$outbox, sink files in $out; stop the servers with: bash tests/services/services.sh down"
