#!/bin/sh
# test_sink_out_of_tree.sh - a third party's view of the sink ABI: install
# service-outbox into a scratch root, build a copy of the file sink there
# with nothing but the installed <outbox/sink.h> and `pkg-config
# outbox-sink`, load it with outboxd --check, run the installed
# outbox-sink-conformance on it, and publish through it. Prints TAP.
set -u
echo "1..5"
builddir=${OUTBOX_TEST_BUILDDIR:-.}
env_file=${OUTBOX_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/service-outbox}/services.env
# shellcheck disable=SC1090
[ -z "${OUTBOX_TEST_MONGODB_URI:-}" ] && [ -f "$env_file" ] && . "$env_file"
srcdir=${OUTBOX_TEST_SRCDIR:-.}
tmp=$(mktemp -d /tmp/outbox-oot-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if make -C "$builddir" install DESTDIR="$tmp/root" >"$tmp/install.log" 2>&1; then
  echo "ok 1 - make install into a scratch root"
else
  echo "not ok 1 - make install into a scratch root"; sed 's/^/# /' "$tmp/install.log" | tail -20
  exit 0
fi

pcdir=$(dirname "$(find "$tmp/root" -name outbox-sink.pc | head -1)")
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
mkdir -p "$tmp/mysink"
cp "$srcdir/sinks/file/file.c" "$tmp/mysink/"
# The sink's own build: one compiler call, as a plugin author would write.
if (cd "$tmp/mysink" && cc -std=c11 -D_GNU_SOURCE -fPIC -shared -fvisibility=hidden \
      $(pkg-config --cflags outbox-sink) file.c -o file.so) >"$tmp/build.log" 2>&1 \
   && ! grep -q -- "-I$srcdir" "$tmp/build.log"; then
  plugindir=$(pkg-config --variable=plugindir outbox-sink)
  echo "ok 2 - built against the installed header alone (plugindir $plugindir)"
else
  echo "not ok 2 - out-of-tree build"; sed 's/^/# /' "$tmp/build.log"; exit 0
fi
exported=$(nm -D --defined-only "$tmp/mysink/file.so" | awk '$2 == "T" {print $3}' | tr '\n' ' ')
echo "# exported functions: $exported"

cat >"$tmp/outboxd.yaml" <<YAML
mongodb:
  uri: "${OUTBOX_TEST_MONGODB_URI:-mongodb://127.0.0.1:1/}"
  database: outbox_test
outbox: oot_$$
sinks:
  - name: mine
    plugin: file
    route: "$tmp/out/{type}.jsonl"
YAML
if out=$("$builddir/outboxd/outboxd" --check --config "$tmp/outboxd.yaml" --plugin-dir "$tmp/mysink" 2>&1) \
   && echo "$out" | grep -q "sink mine: plugin file .*$tmp/mysink/file.so"; then
  echo "ok 3 - outboxd --check loads the out-of-tree plugin"
else
  echo "not ok 3 - outboxd --check loads the out-of-tree plugin"; echo "$out" | sed 's/^/# /'
fi

# The author's check: the installed conformance tool on the plugin. It
# links the installed liboutbox, which lives in the scratch root.
tool=$(find "$tmp/root" -name outbox-sink-conformance -type f | head -1)
libdir=$(dirname "$(find "$tmp/root" -name 'liboutbox.so*' | head -1)")
if [ -z "$tool" ]; then
  echo "not ok 4 - outbox-sink-conformance passes the out-of-tree plugin: make install did not install it"
elif LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tool" "$tmp/mysink/file.so" \
       --route "$tmp/conformance/{type}.jsonl" >"$tmp/conformance.tap" 2>&1; then
  echo "ok 4 - outbox-sink-conformance (installed) passes the out-of-tree plugin"
else
  echo "not ok 4 - outbox-sink-conformance (installed) passes the out-of-tree plugin"
  sed 's/^/# /' "$tmp/conformance.tap"
fi

# And it publishes: three events through outboxd into the plugin's file.
if [ -z "${OUTBOX_TEST_MONGODB_URI:-}" ]; then
  if [ -n "${OUTBOX_TEST_REQUIRE_SERVERS:-}" ]; then
    echo "not ok 5 - publish through the out-of-tree plugin: no MongoDB test server"
  else
    echo "ok 5 # SKIP publish through the out-of-tree plugin: no MongoDB test server (tests/services/services.sh up)"
  fi
  exit 0
fi
ctl() { "$builddir/outboxctl/outboxctl" --uri "$OUTBOX_TEST_MONGODB_URI" --db outbox_test --outbox "oot_$$" --schemas "$srcdir/examples/schemas" "$@"; }
ctl init >/dev/null && for n in 1 2 3; do ctl put order.shipped "order-$n" "{\"ordernr\": $n, \"carrier\": \"dhl\"}" >/dev/null; done
"$builddir/outboxd/outboxd" --config "$tmp/outboxd.yaml" --plugin-dir "$tmp/mysink" 2>"$tmp/outboxd.log" &
pid=$!
lines=0
for _ in $(seq 1 300); do
  lines=$(cat "$tmp/out/order.shipped.jsonl" 2>/dev/null | wc -l)
  [ "$lines" -ge 3 ] && break
  sleep 0.1
done
kill -TERM "$pid"; wait "$pid"; status=$?
if [ "$lines" -eq 3 ] && [ "$status" -eq 0 ] && grep -q '"ordernr":3' "$tmp/out/order.shipped.jsonl"; then
  echo "ok 5 - outboxd publishes through the out-of-tree plugin"
else
  echo "not ok 5 - outboxd publishes through the out-of-tree plugin ($lines lines, exit $status)"
  sed 's/^/# /' "$tmp/outboxd.log"
fi
