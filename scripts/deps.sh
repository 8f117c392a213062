#!/usr/bin/env bash
# scripts/deps.sh - installs, from Debian's packages, what building and
# testing service-outbox needs, and only what is missing. Used by the demo,
# the test suite and CI; safe to run again. Needs root (or sudo).
set -euo pipefail

# What building needs is packaging/debian/control's Build-Depends (one
# place: a sink's client library is named there with its stanza, beside its
# line in the sink list, m4/outbox-sinks.m4), without debhelper, which only
# the package build needs (packaging/test-packages.sh installs it).
top=$(cd "$(dirname "$0")/.." && pwd)
mapfile -t build_depends < <(awk '
  /^Build-Depends:/ { on = 1; sub(/^Build-Depends:/, "") }
  on && /^[^ \t]/ && !/^Build-Depends:/ { exit }
  on { print }' "$top/packaging/debian/control" |
  tr ',' '\n' | sed -e 's/([^)]*)//g' -e 's/\[[^]]*\]//g' -e 's/<[^>]*>//g' -e 's/[[:space:]]//g' |
  grep -v -e '^$' -e '^debhelper')
[[ ${#build_depends[@]} -gt 0 ]] || { echo "scripts/deps.sh: no Build-Depends in packaging/debian/control" >&2; exit 1; }

packages=(
  build-essential autoconf automake libtool      # the build (pkg-config and the libraries: Build-Depends)
  "${build_depends[@]}"
  libcmocka-dev                 # test framework
  python3 python3-pymongo       # tests: a producer in another language
  valgrind                      # tests: memory checking
  prometheus                    # tests: promtool judges outboxd's /metrics
  curl                          # tests: an HTTP client we did not write, for /metrics, /healthz, /readyz
  clang libjansson-dev          # tests/fuzz: libFuzzer; jansson checks our JSON output
  openssl                       # tests/services: the test CA for TLS
  patch                         # tests/services: applies our FerretDB patch (built with the Go on PATH)
  # tests/services: the sinks' servers (tests/services/services.sh starts
  # them) and independent clients; a sink with a new kind of server adds
  # its package here beside its start-up code there.
  redis-server redis-tools nats-server kcat
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
echo "scripts/deps.sh: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
