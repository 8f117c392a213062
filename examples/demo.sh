#!/usr/bin/env bash
# examples/demo.sh - the main job, from a fresh Debian machine: installs what
# is missing, starts the local test servers, builds, creates an outbox with
# the order example's schemas, puts the order events (the C example, then
# outboxctl), shows a refused event, tails the log, and runs outboxd with two
# file sinks (Kafka, Redis and NATS join when their sinks exist).
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
echo "== outboxd: two file sinks, each with its own checkpoint"
out=$(mktemp -d /tmp/outbox-demo-XXXXXX)
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
YAML
"$build/outboxd/outboxd" --check --config "$out/outboxd.yaml" --plugin-dir "$build/sinks/file"
"$build/outboxd/outboxd" --config "$out/outboxd.yaml" --plugin-dir "$build/sinks/file" 2>"$out/outboxd.log" &
pid=$!
for _ in $(seq 1 100); do
  [ "$(cat "$out"/by-type/*.jsonl 2>/dev/null | wc -l)" -ge 5 ] && [ -s "$out/shipments.jsonl" ] && break
  sleep 0.1
done
ctl put order.shipped order-1003 '{"ordernr": 1003, "carrier": "postnl"}' >/dev/null
sleep 1
kill -TERM "$pid"; wait "$pid"
for f in "$out"/by-type/*.jsonl "$out/shipments.jsonl"; do echo "-- $f"; cat "$f"; done
echo "-- outboxd's log"; cat "$out/outboxd.log"
echo "== done: outbox $db.$outbox, sink files in $out; stop the servers with: bash tests/services/services.sh down"
