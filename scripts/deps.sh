#!/usr/bin/env bash
# scripts/deps.sh - installs, from Debian's packages, what building and
# testing service-outbox needs, and only what is missing. Used by the demo,
# the test suite and CI; safe to run again. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential autoconf automake libtool pkg-config  # the build
  libmongoc-dev libbson-dev     # MongoDB C driver: liboutbox's client
  libpcre2-dev                  # schema "pattern" (the regex dialect MongoDB uses)
  libyaml-dev                   # outboxd: the configuration file
  libltdl-dev                   # outboxd: loading sink plugins
  libsystemd-dev                # outboxd: sd_notify readiness (Type=notify)
  librdkafka-dev                # the Kafka sink
  libhiredis-dev                # the Redis Streams sink
  libnats-dev                   # the NATS sink
  libcmocka-dev                 # test framework
  python3 python3-pymongo       # tests: a producer in another language
  valgrind                      # tests: memory checking
  clang libjansson-dev          # tests/fuzz: libFuzzer; jansson checks our JSON output
  openssl                       # tests/services: the test CA for TLS
  patch                         # tests/services: applies our FerretDB patch (built with the Go on PATH)
  redis-server redis-tools nats-server kcat  # tests: the sinks' servers and independent clients
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
