#!/usr/bin/env bash
# packaging/test-packages.sh - the distribution packages, end to end (issue
# "Distro packaging"). Prints TAP. From a clean export of the tree (git
# archive): builds the .deb packages with packaging/debian, runs lintian
# (errors fail), installs every .deb with apt-get, and with the installed
# files only (no build tree on PATH, no LD_LIBRARY_PATH or PKG_CONFIG_PATH):
# runs outboxd --check on /etc/outboxd/outboxd.yaml, builds the example sink
# and the order example against the installed liboutbox-dev alone, and runs
# the demo flow (outboxctl init/put against the test MongoDB, the installed
# outboxd as user outboxd publishing through the file sink and through one
# sink per installed sink package), and runs the installed
# outbox-sink-conformance on the out-of-tree sink. Then purges the packages and checks that
# nothing of theirs is left, and builds the RPMs from the `make dist`
# tarball with rpmbuild -bb (Debian's rpm, --nodeps).
#
# Needs root (apt-get; outboxd runs as user outboxd); installs the tools it lacks (debhelper,
# lintian, rpm, the build dependencies). The test servers come from
# tests/services/services.sh (`up` first; run-all.sh does). It removes what
# it made even on failure: temporary folders, the packages, and the outboxd
# user when it was not there before.
#
# Environment:
#   OUTBOX_PKG_REF=HEAD      the commit to export
#   OUTBOX_PKG_SINKS=auto    the sink packages to build: "auto" builds each
#                            sink with a package in the exported tree's sink
#                            list (m4/outbox-sinks.m4, through
#                            scripts/sinks.sh); or a list, e.g. "kafka
#                            redis", or "" for none. The others get the build
#                            profile pkg.service-outbox.noNAME (Debian) and
#                            --without NAME (rpmbuild).
#   OUTBOX_PKG_KEEP=1        keep the temporary folder (the packages, logs)
#   OUTBOX_TEST_REQUIRE_SERVERS=1  a missing test server fails, not skips
set -uo pipefail
export LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive
top=$(cd "$(dirname "$0")/.." && pwd)
ref=${OUTBOX_PKG_REF:-HEAD}
sinks_wanted=${OUTBOX_PKG_SINKS-auto}
# The sinks with a package of their own: this tree's sink list. One test
# each below (installed, loaded; published to its server when this script
# knows how to reach one).
all_sinks=$(sh "$top/scripts/sinks.sh" packaged | tr '\n' ' ')
[[ -n $all_sinks ]] || { echo "Bail out! no packaged sink in $top/m4/outbox-sinks.m4"; exit 1; }
n_sinks=$(wc -w <<<"$all_sinks")
plan=$((18 + n_sinks))
start=$(date +%s)

echo "1..$plan"
n=0 failures=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); failures=$((failures + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
diag() { sed 's/^/#   /'; }
# A missing server is a skip, or a failure under OUTBOX_TEST_REQUIRE_SERVERS.
noserver() { if [[ -n ${OUTBOX_TEST_REQUIRE_SERVERS:-} ]]; then notok "$*"; else skip "$*"; fi; }

if [[ $(id -u) -ne 0 ]]; then
  # apt-get install/purge, and outboxd run as user outboxd (setpriv).
  echo "Bail out! run as root (sudo bash packaging/test-packages.sh)"; exit 1
fi
apt_get() { apt-get -y -q -o DPkg::Lock::Timeout=600 "$@"; }

tmp=$(mktemp -d /tmp/outbox-pkgtest-XXXXXX)
chmod 0755 "$tmp" # outboxd runs as user outboxd below and must reach $tmp/run
build=$tmp/build src=$tmp/build/service-outbox-0.1.0 distsrc=$tmp/dist
mkdir -p "$build" "$distsrc" "$tmp/run" "$tmp/home"

# What this run installs or creates, for the cleanup below.
our_packages=() user_was_there=false outboxd_pid="" redis_key="" nats_created=false
getent passwd outboxd >/dev/null && user_was_there=true
installed_now() { # of our packages, those dpkg knows (installed or config-files)
  local p
  for p in "${our_packages[@]}"; do
    grep -q '^[ir][ic]' <<<"$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" && echo "$p"
  done
}
cleanup() {
  [[ -n $outboxd_pid ]] && kill -TERM "$outboxd_pid" 2>/dev/null && wait "$outboxd_pid" 2>/dev/null
  if [[ ${#our_packages[@]} -gt 0 ]]; then
    local left
    mapfile -t left < <(installed_now)
    if [[ ${#left[@]} -gt 0 ]]; then
      echo "# cleanup: purging ${left[*]}"
      apt_get purge "${left[@]}" >/dev/null 2>&1 || echo "# cleanup: apt-get purge failed"
    fi
  fi
  if ! $user_was_there && getent passwd outboxd >/dev/null; then
    deluser --system --quiet outboxd >/dev/null 2>&1
    getent group outboxd >/dev/null && delgroup --system --quiet outboxd >/dev/null 2>&1
  fi
  if [[ -n $redis_key && -n ${OUTBOX_TEST_REDIS_URL:-} ]]; then
    redis-cli -u "$OUTBOX_TEST_REDIS_URL" DEL "$redis_key" >/dev/null 2>&1
  fi
  if $nats_created && [[ -n ${OUTBOX_TEST_NATS_URL:-} ]]; then
    nats_js DELETE >/dev/null 2>&1
  fi
  if [[ -n ${OUTBOX_PKG_KEEP:-} ]]; then echo "# kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The test servers (their URIs), when they run.
env_file=$(bash "$top/tests/services/services.sh" env 2>/dev/null)
# shellcheck disable=SC1090
[[ -z ${OUTBOX_TEST_MONGODB_URI:-} && -n $env_file && -f $env_file ]] && . "$env_file"

# The tools this test needs, installed when missing (as scripts/deps.sh does).
need=(build-essential debhelper dpkg-dev lintian rpm git python3 adduser autoconf automake libtool pkg-config)
missing=()
for p in "${need[@]}"; do
  grep -q 'install ok installed' <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "# installing ${missing[*]}"
  { apt_get update -qq && apt_get install "${missing[@]}"; } >"$tmp/tools.log" 2>&1 \
    || { echo "Bail out! could not install ${missing[*]}"; diag <"$tmp/tools.log"; exit 1; }
fi

# --- 1: the clean export ------------------------------------------------------
exported=false
if (cd "$top" && git archive --format=tar --prefix=service-outbox-0.1.0/ "$ref") | tar -x -C "$build" 2>"$tmp/export.log" \
   && (cd "$top" && git archive --format=tar "$ref") | tar -x -C "$distsrc" 2>>"$tmp/export.log"; then
  # debian/ at the top of the export. It comes from this script's folder,
  # so that uncommitted packaging can be tried; on a clean clone that is
  # the commit's own.
  cp -a "$top/packaging/debian" "$src/debian"
  note=""
  if ! (cd "$top" && git diff --quiet "$ref" -- packaging/debian packaging/rpm 2>/dev/null) \
     || [[ -n $(cd "$top" && git ls-files --others --exclude-standard packaging/debian packaging/rpm) ]]; then
    note=" (packaging/debian and packaging/rpm from the working tree: they differ from $ref)"
  fi
  exported=true
  ok "git archive $ref exported, debian/ copied to its top$note"
else
  notok "git archive $ref"; diag <"$tmp/export.log"
fi

# Which sinks to build: the profiles for the others.
sinks=() profiles=() rpm_without=()
for s in $all_sinks; do
  if [[ $sinks_wanted == auto ]]; then
    if $exported && grep -qx "$s" <<<"$(OUTBOX_SRCDIR=$src sh "$top/scripts/sinks.sh" packaged 2>/dev/null)"; then
      sinks+=("$s")
    else
      echo "# sink $s: not in $ref's sink list (m4/outbox-sinks.m4): no outbox-sink-$s package"
    fi
  elif [[ " $sinks_wanted " == *" $s "* ]]; then
    sinks+=("$s")
  fi
  if [[ " ${sinks[*]} " != *" $s "* ]]; then
    profiles+=("pkg.service-outbox.no$s"); rpm_without+=(--without "$s")
  fi
done
echo "# sink packages to build: ${sinks[*]:-none}; DEB_BUILD_PROFILES=${profiles[*]:-}"

# --- 2: dpkg-buildpackage -------------------------------------------------------
debs_ok=false
if ! $exported; then
  skip "dpkg-buildpackage: no export"
else
  t0=$(date +%s)
  # The build dependencies for these profiles (most are there already).
  if ! apt_get build-dep ${profiles[@]:+-P "$(IFS=,; echo "${profiles[*]}")"} "$src" >"$tmp/build-dep.log" 2>&1; then
    echo "# apt-get build-dep failed:"; tail -5 "$tmp/build-dep.log" | diag
  fi
  if (cd "$src" && DEB_BUILD_PROFILES="${profiles[*]}" DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
        dpkg-buildpackage -us -uc -b) >"$tmp/dpkg-buildpackage.log" 2>&1; then
    debs_ok=true
    ok "dpkg-buildpackage -us -uc -b ($(($(date +%s) - t0)) s): $(cd "$build" && echo ./*.deb | sed 's|\./||g')"
  else
    notok "dpkg-buildpackage -us -uc -b"; tail -40 "$tmp/dpkg-buildpackage.log" | diag
  fi
fi
debs=()
$debs_ok && mapfile -t debs < <(cd "$build" && ls ./*.deb)
for d in "${debs[@]}"; do our_packages+=("$(dpkg-deb -f "$build/$d" Package)"); done

# --- 3: the split and the ABI virtual package -----------------------------------
abi=$($exported && sed -n 's/^#define OUTBOX_SINK_ABI_MAJOR \([0-9]*\).*/\1/p' "$src/include/outbox/sink.h")
if ! $debs_ok; then
  skip "package relations: no packages"
else
  field() { dpkg-deb -f "$build/$1"_0.1.0-1_*.deb "$2" 2>/dev/null; }
  problems=()
  for p in liboutbox1 liboutbox-dev outboxd "${sinks[@]/#/outbox-sink-}"; do
    ls "$build/$p"_0.1.0-1_*.deb >/dev/null 2>&1 || problems+=("no $p package")
  done
  for s in $all_sinks; do
    if [[ " ${sinks[*]} " != *" $s "* ]] && ls "$build/outbox-sink-$s"_*.deb >/dev/null 2>&1; then
      problems+=("outbox-sink-$s built although its profile was on")
    fi
  done
  [[ $(field outboxd Provides) == *"outbox-sink-abi-$abi"* ]] || problems+=("outboxd Provides: '$(field outboxd Provides)', not outbox-sink-abi-$abi")
  [[ $(field liboutbox-dev Depends) == *"liboutbox1 (= 0.1.0-1)"* ]] || problems+=("liboutbox-dev Depends: $(field liboutbox-dev Depends)")
  [[ $(field outboxd Depends) == *"liboutbox1 (>= 0.1.0)"* ]] || problems+=("outboxd Depends (from the symbols file): $(field outboxd Depends)")
  for s in "${sinks[@]}"; do
    dep=$(field "outbox-sink-$s" Depends)
    [[ $dep == *"outboxd"* && $dep == *"outbox-sink-abi-$abi"* ]] || problems+=("outbox-sink-$s Depends: $dep")
  done
  # outboxd suggests every sink package of the list (debian/rules fills it).
  for s in $all_sinks; do
    [[ $(field outboxd Suggests) == *"outbox-sink-$s"* ]] || problems+=("outboxd Suggests: '$(field outboxd Suggests)' lacks outbox-sink-$s")
  done
  # The sink packages the profiles dropped are still declared, for the full build.
  for s in $all_sinks; do
    grep -q "^Package: outbox-sink-$s\$" "$src/debian/control" || problems+=("debian/control has no outbox-sink-$s")
  done
  if [[ ${#problems[@]} -eq 0 ]]; then
    ok "package split and relations: outboxd Provides outbox-sink-abi-$abi (sink.h ABI $abi); sink packages Depend on it"
  else
    notok "package split and relations"; printf '%s\n' "${problems[@]}" | diag
  fi
fi

# --- 4: lintian -----------------------------------------------------------------
if ! $debs_ok; then
  skip "lintian: no packages"
else
  lintian -I --pedantic "$build"/*.changes >"$tmp/lintian.log" 2>"$tmp/lintian.err"
  lintian_rc=$?
  errors=$(grep -c '^E: ' "$tmp/lintian.log")
  if [[ $errors -eq 0 && $lintian_rc -eq 0 ]]; then
    ok "lintian: no errors ($(grep -c '^W: ' "$tmp/lintian.log") warnings; see packaging/README.md)"
  else
    notok "lintian: $errors errors (exit $lintian_rc)"; diag <"$tmp/lintian.err"
  fi
  diag <"$tmp/lintian.log"
fi

# --- 5: apt-get install ./*.deb -----------------------------------------------
inst_ok=false
if ! $debs_ok; then
  skip "apt-get install: no packages"
else
  mapfile -t already < <(installed_now)
  if [[ ${#already[@]} -gt 0 ]]; then
    # Not ours to replace or purge: stop here rather than clobber them.
    our_packages=()
    notok "apt-get install: already installed on this machine: ${already[*]} (purge them first)"
  elif (cd "$build" && apt_get install "${debs[@]}") >"$tmp/install.log" 2>&1; then
    inst_ok=true
    ok "apt-get install -y ./*.deb (${our_packages[*]})"
  else
    notok "apt-get install -y ./*.deb"; tail -30 "$tmp/install.log" | diag
  fi
fi

# From here on: the installed files only.
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
inst() { (cd "$tmp/run" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$tmp/home" LC_ALL=C.UTF-8 "$@"); }

# --- 6: user, state dir, conffile, libraries --------------------------------------
if ! $inst_ok; then
  skip "outboxd user and files: not installed"
else
  problems=()
  getent passwd outboxd >/dev/null || problems+=("no outboxd user")
  [[ $(stat -c %U:%G:%a /var/lib/outboxd 2>/dev/null) == outboxd:outboxd:750 ]] \
    || problems+=("/var/lib/outboxd: $(stat -c %U:%G:%a /var/lib/outboxd 2>&1)")
  grep -q '^ */etc/outboxd/outboxd.yaml ' <(dpkg-query -W -f='${Conffiles}\n' outboxd) \
    || problems+=("/etc/outboxd/outboxd.yaml is not a conffile")
  for f in /usr/sbin/outboxd /usr/bin/outboxctl; do
    lib=$(inst ldd "$f" | awk '$1 == "liboutbox.so.1" {print $3}')
    [[ $lib == /usr/lib/$triplet/liboutbox.so.1 || $lib == /lib/$triplet/liboutbox.so.1 ]] \
      || problems+=("$f loads liboutbox.so.1 from '$lib', not the package's")
  done
  for u in outboxd.service outboxd@.service; do
    grep -q '^outboxd:' <<<"$(dpkg -S "$u" 2>/dev/null)" || problems+=("$u not in the outboxd package")
  done
  [[ -f /usr/lib/$triplet/service-outbox/sinks/file.so ]] || problems+=("no file sink in the plugin dir")
  if [[ ${#problems[@]} -eq 0 ]]; then
    ok "outboxd user, /var/lib/outboxd (outboxd:outboxd 750), conffile, units, file sink, liboutbox from /usr/lib/$triplet"
  else
    notok "outboxd user and files"; printf '%s\n' "${problems[@]}" | diag
  fi
fi

# --- 7: outboxd --check on the example configuration -------------------------------
if ! $inst_ok; then
  skip "outboxd --check: not installed"
elif out=$(inst outboxd --check --config /etc/outboxd/outboxd.yaml 2>&1); then
  ok "outboxd --check --config /etc/outboxd/outboxd.yaml"; echo "$out" | diag
else
  notok "outboxd --check --config /etc/outboxd/outboxd.yaml"; echo "$out" | diag
fi

# --- 8, 9: a third party's sink, built against liboutbox-dev alone -------------------
oot=$tmp/run/mysink
if ! $inst_ok; then
  skip "out-of-tree sink build: not installed"
  skip "outboxd loads the out-of-tree sink: not installed"
else
  mkdir -p "$oot"
  cp "$src/sinks/file/file.c" "$oot/"
  # One compiler call, as a plugin author would write it (docs/plugin-guide.md).
  if inst sh -c "cd '$oot' && cc -std=c11 -D_GNU_SOURCE -fPIC -shared -fvisibility=hidden \
        \$(pkg-config --cflags outbox-sink) file.c -o file.so && pkg-config --variable=plugindir outbox-sink" \
        >"$tmp/oot.log" 2>&1; then
    exported_syms=$(nm -D --defined-only "$oot/file.so" | awk '$2 == "T" {print $3}' | tr '\n' ' ')
    ok "example sink (sinks/file/file.c) built with pkg-config --cflags outbox-sink alone (plugindir $(tail -1 "$tmp/oot.log"); exports: $exported_syms)"
    chmod -R a+rX "$tmp/run"
    cat >"$tmp/run/oot.yaml" <<YAML
mongodb:
  uri: "mongodb://127.0.0.1:1/"
  database: outbox_test
outbox: pkgtest_oot
sinks:
  - name: mine
    plugin: file
    route: "$tmp/run/oot/{type}.jsonl"
YAML
    if out=$(inst outboxd --check --config "$tmp/run/oot.yaml" --plugin-dir "$oot" 2>&1) \
       && grep -q "sink mine: plugin file .*$oot/file.so" <<<"$out"; then
      ok "outboxd --check loads the out-of-tree sink from $oot"
    else
      notok "outboxd --check loads the out-of-tree sink"; echo "$out" | diag
    fi
  else
    notok "example sink build against the installed liboutbox-dev"; diag <"$tmp/oot.log"
    skip "outboxd loads the out-of-tree sink: it did not build"
  fi
fi

# --- 10: the installed outbox-sink-conformance on that sink -------------------------
# The plugin author's next step (docs/plugin-guide.md): the contract checker
# from liboutbox-dev, on the sink just built, as an author would run it.
if ! $inst_ok; then
  skip "outbox-sink-conformance on the out-of-tree sink: not installed"
elif [[ ! -f $oot/file.so ]]; then
  skip "outbox-sink-conformance on the out-of-tree sink: it did not build"
elif ! grep -q '^liboutbox-dev:' <<<"$(dpkg -S /usr/bin/outbox-sink-conformance 2>/dev/null)"; then
  notok "liboutbox-dev has no /usr/bin/outbox-sink-conformance"
elif out=$(inst outbox-sink-conformance "$oot/file.so" --route "$tmp/run/conformance/{type}.jsonl" 2>&1) \
     && ! grep -q '^not ok' <<<"$out" && grep -q '^1\.\.[1-9]' <<<"$out"; then
  ok "outbox-sink-conformance (liboutbox-dev) passes the out-of-tree file sink: $(grep -c '^ok' <<<"$out") checks"
  diag <<<"$out"
else
  notok "outbox-sink-conformance on the out-of-tree file sink"; diag <<<"$out"
fi

# --- 11: a program against the installed liboutbox --------------------------------
examples=/usr/share/doc/liboutbox-dev/examples
example_ok=false
if ! $inst_ok; then
  skip "order example against the installed liboutbox: not installed"
elif inst sh -c "cd '$tmp/run' && cp $examples/order_example.c . && cc -std=c11 -D_GNU_SOURCE \
        \$(pkg-config --cflags liboutbox) order_example.c -o order_example \$(pkg-config --libs liboutbox)" \
        >"$tmp/example.log" 2>&1; then
  example_ok=true
  ok "examples/order_example.c built with pkg-config --cflags --libs liboutbox"
else
  notok "order example against the installed liboutbox"; diag <"$tmp/example.log"
fi

# --- 12..: the demo flow --------------------------------------------------------
uri=${OUTBOX_TEST_MONGODB_URI:-}
run_id="pkgtest_$$_$(date +%s)"
nats_stream="PKGTEST_$$_$(date +%s)" nats_created=false
ctl() { inst outboxctl --uri "$uri" --db outbox_test --outbox "$run_id" --schemas "$examples/schemas" "$@"; }
have_pkg() { [[ " ${our_packages[*]} " == *" $1 "* ]]; }
demo_ok=false expected=0
if ! $inst_ok; then
  skip "demo: outboxctl init/put: not installed"
elif [[ -z $uri ]]; then
  noserver "demo: outboxctl init/put: no MongoDB test server (tests/services/services.sh up)"
else
  (
    set -e
    ctl init --size $((8 * 1024 * 1024))
    if $example_ok; then inst "$tmp/run/order_example" "$uri" outbox_test "$run_id" "$examples/schemas"; fi
    for i in 1 2 3; do
      ctl put order.shipped "order-$i" "{\"ordernr\": $i, \"carrier\": \"dhl\"}" --header trace-id=pkgtest
    done
    # Where the server has transactions, order_example's events wait in
    # the pending collection until promoted: promote now, so that the log
    # holds every event before outboxd starts.
    ctl promote
  ) >"$tmp/demo.log" 2>&1
  rc=$?
  expected=$(ctl tail --from-start --timeout-ms 500 2>>"$tmp/demo.log" | wc -l)
  if [[ $rc -eq 0 && $expected -ge 3 ]]; then
    demo_ok=true
    ok "demo: outboxctl init, order_example and outboxctl put: $expected events in outbox_test.$run_id ($OUTBOX_TEST_MONGODB_KIND at $uri)"
  else
    notok "demo: outboxctl init/put (exit $rc, $expected events)"; diag <"$tmp/demo.log"
  fi
fi

# outboxd, as installed and as user outboxd, with the file sink and one sink
# per installed sink package (the NATS sink creates a JetStream stream for
# the test's subjects; the cleanup deletes it, and the Redis stream key).
sink_conf() { # name: the sink's YAML entry
  case $1 in
    kafka) cat <<YAML
  - name: kafka
    plugin: kafka
    route: "$run_id"
    options:
      bootstrap.servers: "${OUTBOX_TEST_KAFKA_BROKERS:-}"
YAML
      ;;
    redis) cat <<YAML
  - name: redis
    plugin: redis
    route: "$run_id"
    options:
      url: "${OUTBOX_TEST_REDIS_URL:-}"
YAML
      ;;
    nats) cat <<YAML
  - name: nats
    plugin: nats
    route: "$run_id.{type}"
    options:
      servers: "${OUTBOX_TEST_NATS_URL:-}"
      stream: "$nats_stream"
      stream_subjects: "$run_id.>"
YAML
      ;;
  esac
}
# The sink's test server. knows: the sinks this script can publish to (a
# sink it does not know gets a test that it is installed and loads).
server_of() { case $1 in kafka) echo "${OUTBOX_TEST_KAFKA_BROKERS:-}" ;; redis) echo "${OUTBOX_TEST_REDIS_URL:-}" ;; nats) echo "${OUTBOX_TEST_NATS_URL:-}" ;; esac; }
knows() { [[ " kafka redis nats " == *" $1 "* ]]; }
# Events the sink's server holds, read with an independent client (-1: no client).
delivered() {
  case $1 in
    kafka) command -v kcat >/dev/null || { echo -1; return; }
      kcat -C -b "$OUTBOX_TEST_KAFKA_BROKERS" -t "$run_id" -o beginning -e -q 2>/dev/null | wc -l ;;
    redis) command -v redis-cli >/dev/null || { echo -1; return; }
      redis-cli -u "$OUTBOX_TEST_REDIS_URL" XLEN "$run_id" 2>/dev/null || echo 0 ;;
    nats) nats_js INFO | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"]["messages"])' 2>/dev/null || echo 0 ;;
    *) echo -1 ;;
  esac
}
# A JetStream API request on the bare NATS protocol (no NATS client is
# packaged in Debian): INFO or DELETE of the test's stream; prints the reply.
nats_js() {
  python3 - "$OUTBOX_TEST_NATS_URL" "$1" "$nats_stream" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.create_connection((u.hostname, u.port or 4222), timeout=5)
f = s.makefile("rb")
f.readline()  # INFO
s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.pkgtest 1\r\n'
          b"PUB $JS.API.STREAM.%s.%s _INBOX.pkgtest 0\r\n\r\n" % (sys.argv[2].encode(), sys.argv[3].encode()))
while True:
    line = f.readline()
    if not line:
        sys.exit(1)
    if line.startswith(b"PING"):
        s.sendall(b"PONG\r\n")
    elif line.startswith(b"MSG"):
        n = int(line.split()[-1])
        print(f.read(n + 2)[:n].decode())
        break
    elif line.startswith(b"-ERR"):
        sys.exit(1)
PY
}
running=()
outboxd_ok=false
if ! $demo_ok; then
  skip "installed outboxd publishes through the file sink: no demo outbox"
else
  out_dir=$tmp/run/out
  install -d -o outboxd -g outboxd "$out_dir"
  {
    cat <<YAML
mongodb:
  uri: "$uri"
  database: outbox_test
outbox: $run_id
sinks:
  - name: file
    plugin: file
    route: "$out_dir/{type}.jsonl"
YAML
    for s in "${sinks[@]}"; do
      have_pkg "outbox-sink-$s" && [[ -n $(server_of "$s") ]] && sink_conf "$s" && running+=("$s")
    done
  } >"$tmp/run/outboxd.yaml"
  chmod 0644 "$tmp/run/outboxd.yaml"
  [[ " ${running[*]} " == *" redis "* ]] && redis_key=$run_id
  [[ " ${running[*]} " == *" nats "* ]] && nats_created=true
  if ! inst outboxd --check --config "$tmp/run/outboxd.yaml" >"$tmp/outboxd.log" 2>&1; then
    notok "installed outboxd: --check of the demo configuration"; diag <"$tmp/outboxd.log"
  else
    # setpriv execs (no parent that would turn SIGTERM into SIGKILL).
    (cd "$tmp/run" && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
       setpriv --reuid=outboxd --regid=outboxd --init-groups /usr/sbin/outboxd --config "$tmp/run/outboxd.yaml") \
       2>>"$tmp/outboxd.log" &
    outboxd_pid=$!
    lines=0
    for _ in $(seq 1 300); do
      lines=$(cat "$out_dir"/*.jsonl 2>/dev/null | wc -l)
      [[ $lines -ge $expected ]] && break
      sleep 0.1
    done
    # The other sinks: until their servers hold every event (or 30 s).
    for s in "${running[@]}"; do
      for _ in $(seq 1 60); do
        d=$(delivered "$s"); [[ $d -lt 0 || $d -ge $expected ]] && break
        sleep 0.5
      done
    done
    sleep 1.5 # a checkpoint write (every_ms 1000 by default)
    kill -TERM "$outboxd_pid"; wait "$outboxd_pid"; status=$?; outboxd_pid=""
    owner=$(find "$out_dir" -name '*.jsonl' -printf '%u\n' 2>/dev/null | sort -u | tr '\n' ' ' | sed 's/ $//')
    if [[ $lines -eq $expected && $status -eq 0 && $owner == outboxd ]] \
       && grep -q '"carrier" *: *"dhl"' "$out_dir/order.shipped.jsonl"; then
      outboxd_ok=true
      ok "installed outboxd (user outboxd) published $lines/$expected events through the installed file sink, exit 0 on SIGTERM"
    else
      notok "installed outboxd through the file sink ($lines/$expected lines, exit $status, files owned by '$owner')"
      diag <"$tmp/outboxd.log"
    fi
  fi
fi
status_json=""
$outboxd_ok && status_json=$(ctl status --json 2>&1)
sink_status() { # name: "events lag_events state" from outboxctl status --json
  python3 -c 'import json,sys
d = json.loads(sys.argv[1])
for k in d["sinks"]:
    if k["name"] == sys.argv[2]:
        print(k["events"], k["lag_events"], k["state"])' "$status_json" "$1" 2>/dev/null
}
for s in $all_sinks; do
  if ! $inst_ok; then
    skip "$s sink: not installed"
  elif ! have_pkg "outbox-sink-$s"; then
    skip "$s sink: no outbox-sink-$s package (not built: not in $ref's sink list, or OUTBOX_PKG_SINKS)"
  elif ! knows "$s"; then
    # Its package installs the plugin where outboxd looks, and outboxd
    # loads it from there.
    so=/usr/lib/$triplet/service-outbox/sinks/$s.so
    if grep -q "^outbox-sink-$s:" <<<"$(dpkg -S "$so" 2>/dev/null)" && out=$(inst outboxd --plugin-help "$s" 2>&1); then
      ok "outbox-sink-$s: $so installed, outboxd --plugin-help $s loads it (packaging/test-packages.sh has no server for it)"
    else
      notok "outbox-sink-$s: $so from the package, loaded by outboxd --plugin-help $s"; echo "${out:-}" | diag
    fi
  elif [[ -z $(server_of "$s") ]]; then
    noserver "$s sink: no $s test server (tests/services/services.sh up)"
  elif ! $outboxd_ok; then
    skip "$s sink: outboxd did not run"
  else
    read -r events lag state <<<"$(sink_status "$s")"
    d=$(delivered "$s")
    if [[ ${lag:-x} == 0 && ${events:-0} -ge $expected && ($d -lt 0 || $d -eq $expected) ]]; then
      ok "outbox-sink-$s: outboxd published $expected events to $(server_of "$s") (checkpoint lag 0$([[ $d -ge 0 ]] && echo ", $d read back with an independent client"))"
    else
      notok "outbox-sink-$s: events=${events:-?} lag=${lag:-?} state=${state:-?}, server holds $d of $expected"
      echo "$status_json" | diag; grep -i "$s" "$tmp/outboxd.log" | tail -20 | diag
    fi
  fi
done

# --- purge, and nothing left ---------------------------------------------
if ! $inst_ok; then
  skip "apt-get purge: not installed"
  skip "nothing left after purge: not installed"
else
  for p in "${our_packages[@]}"; do dpkg -L "$p"; done 2>/dev/null | sort -u >"$tmp/files.txt"
  if apt_get purge "${our_packages[@]}" >"$tmp/purge.log" 2>&1; then
    ok "apt-get purge ${our_packages[*]}"
  else
    notok "apt-get purge"; tail -20 "$tmp/purge.log" | diag
  fi
  left=()
  mapfile -t still < <(installed_now)
  [[ ${#still[@]} -eq 0 ]] || left+=("dpkg still knows: ${still[*]}")
  # Every file of the packages is gone; so is every folder that was theirs
  # alone (folders shared with other packages stay, as dpkg does).
  while read -r f; do
    if [[ -d $f ]]; then # (a folder, or a link to one such as /lib -> usr/lib)
      [[ $f == *outbox* ]] && left+=("folder $f")
    elif [[ -e $f || -L $f ]]; then
      left+=("file $f")
    fi
  done <"$tmp/files.txt"
  for d in "/usr/lib/$triplet/service-outbox" /etc/outboxd /var/lib/outboxd /usr/include/outbox /usr/share/doc/outboxd; do
    [[ -e $d ]] && left+=("$d")
  done
  while read -r f; do left+=("systemd state $f"); done < <(find /etc/systemd /var/lib/systemd -name '*outboxd*' 2>/dev/null)
  if [[ ${#left[@]} -eq 0 ]]; then
    ok "nothing left after purge: $(wc -l <"$tmp/files.txt") paths of dpkg -L gone, no $triplet/service-outbox, /etc/outboxd (conffile purged), /var/lib/outboxd"
    getent passwd outboxd >/dev/null && echo "#   the outboxd user stays after purge, as Debian does (the test removes it if it made it)"
  else
    notok "left after purge"; printf '%s\n' "${left[@]}" | diag
  fi
fi

# --- the RPMs from the `make dist` tarball ----------------------------------
tarball=""
if ! $exported; then
  skip "make dist: no export"
else
  t0=$(date +%s)
  configure_without=()
  for s in $all_sinks; do [[ " ${sinks[*]} " == *" $s "* ]] || configure_without+=("--without-$s"); done
  if (cd "$distsrc" && autoreconf -fi && ./configure "${configure_without[@]}" && make dist) >"$tmp/dist.log" 2>&1 \
     && tarball=$(find "$distsrc" -maxdepth 1 -name 'service-outbox-*.tar.gz' | head -1) && [[ -n $tarball ]]; then
    ok "make dist: $(basename "$tarball") ($(($(date +%s) - t0)) s)"
  else
    tarball=""; notok "make dist"; tail -30 "$tmp/dist.log" | diag
  fi
fi
rpms_ok=false
rpmtop=$tmp/rpmbuild
if [[ -z $tarball ]]; then
  skip "rpmbuild -bb: no tarball"
else
  t0=$(date +%s)
  mkdir -p "$rpmtop/SOURCES" "$rpmtop/tmp"
  cp "$tarball" "$rpmtop/SOURCES/"
  # The spec configure made from packaging/rpm/service-outbox.spec.in (with
  # the sink list's packages), as the tarball carries it.
  spec=$tmp/service-outbox.spec
  if ! tar -xzOf "$tarball" --wildcards '*/packaging/rpm/service-outbox.spec' >"$spec" 2>"$tmp/rpmbuild.log" \
     || [[ ! -s $spec ]]; then
    notok "rpmbuild -bb: the tarball has no packaging/rpm/service-outbox.spec"; diag <"$tmp/rpmbuild.log"
  elif rpmbuild -bb --nodeps --define "_topdir $rpmtop" --define "_tmppath $rpmtop/tmp" \
       "${rpm_without[@]}" "$spec" >"$tmp/rpmbuild.log" 2>&1; then
    rpms_ok=true
    ok "rpmbuild -bb --nodeps ${rpm_without[*]} packaging/rpm/service-outbox.spec from the tarball ($(($(date +%s) - t0)) s): $(find "$rpmtop/RPMS" -name '*.rpm' -printf '%f ')"
  else
    notok "rpmbuild -bb packaging/rpm/service-outbox.spec"; tail -40 "$tmp/rpmbuild.log" | diag
  fi
fi
if ! $rpms_ok; then
  skip "RPM split and relations: no RPMs"
else
  rpmfile() { find "$rpmtop/RPMS" -name "$1-0.1.0-*.rpm" | head -1; }
  problems=()
  for p in liboutbox liboutbox-devel outboxd "${sinks[@]/#/outbox-sink-}"; do
    [[ -n $(rpmfile "$p") ]] || problems+=("no $p RPM")
  done
  if [[ -n $(rpmfile outboxd) ]]; then
    grep -qx "outbox-sink-abi = $abi" <<<"$(rpm -qp --provides "$(rpmfile outboxd)" 2>/dev/null)" \
      || problems+=("outboxd does not provide outbox-sink-abi = $abi")
    grep -q '/service-outbox/sinks/file.so$' <<<"$(rpm -qlp "$(rpmfile outboxd)" 2>/dev/null)" || problems+=("outboxd has no file.so")
  fi
  if [[ -n $(rpmfile liboutbox-devel) ]]; then
    grep -q '/bin/outbox-sink-conformance$' <<<"$(rpm -qlp "$(rpmfile liboutbox-devel)" 2>/dev/null)" \
      || problems+=("liboutbox-devel has no outbox-sink-conformance")
  fi
  for s in $all_sinks; do
    if [[ " ${sinks[*]} " != *" $s "* && -n $(rpmfile "outbox-sink-$s") ]]; then
      problems+=("outbox-sink-$s RPM built although --without $s")
    fi
  done
  for s in "${sinks[@]}"; do
    f=$(rpmfile "outbox-sink-$s")
    [[ -n $f ]] && { grep -qx "outbox-sink-abi = $abi" <<<"$(rpm -qp --requires "$f" 2>/dev/null)" \
      || problems+=("outbox-sink-$s does not require outbox-sink-abi = $abi"); }
  done
  if [[ ${#problems[@]} -eq 0 ]]; then
    ok "RPM split: outboxd provides outbox-sink-abi = $abi; $(find "$rpmtop/RPMS" -name '*.rpm' | wc -l) packages"
  else
    notok "RPM split and relations"; printf '%s\n' "${problems[@]}" | diag
  fi
fi

[[ $n -eq $plan ]] || echo "# internal: $n tests run, plan said $plan"
echo "# $failures failed; $(($(date +%s) - start)) s"
[[ $failures -eq 0 ]]
