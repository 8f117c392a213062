#!/usr/bin/env bash
# examples/demo.sh - the main job, from a fresh Debian machine: installs what
# is missing, starts the local test servers, builds, creates an outbox with
# the order example's schemas, puts the order events (the C example, then
# outboxctl), shows a refused event, and tails the log.
# (outboxd and its sinks join this demo when they exist.)
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
ctl put order.created order-1003 '{"ordernr": "1003", "total": 5}' || echo "(exit $?: refused, nothing written)"

echo "== outboxctl tail --from-start"
ctl tail --from-start --timeout-ms 1000
echo "== outboxctl tail --after $id (nothing after it yet)"
ctl tail --after "$id" --timeout-ms 500
echo "== done: outbox $db.$outbox; stop the servers with: bash tests/services/services.sh down"
