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
  python3 python3-pymongo       # tests: a producer in another language; clients/python (pymongo)
  python3-jsonschema            # clients/python: validation of events (draft 4, with bsonType added)
  python3-venv                  # tests: the venv of tests/python-requirements.txt (PyPI consumers)
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
if [[ ${#missing[@]} -gt 0 ]]; then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "scripts/deps.sh: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi

# tests: examples/grafana/test_dashboard.sh judges the Grafana dashboard by
# Grafana Labs' Grafana Foundation SDK, a Go module (no Debian package):
# fetched into Go's module cache (go mod download: nothing when it is there
# already), at the version that test's go.mod requires (one place), with the
# Go on PATH or in /usr/local/go/bin (Debian's golang-go is older than the
# Go 1.21 the SDK needs). Without Go the test skips that check, saying so.
PATH=$PATH:/usr/local/go/bin
grafana_sdk=$(sed -n 's|^require \(github.com/grafana/grafana-foundation-sdk/go\) \(v[^ ]*\)$|\1@\2|p' \
  "$top/examples/grafana/test_dashboard.sh")
[[ -n $grafana_sdk ]] || { echo "scripts/deps.sh: no Grafana Foundation SDK in examples/grafana/test_dashboard.sh" >&2; exit 1; }
if command -v go >/dev/null; then
  (cd / && go mod download "$grafana_sdk") ||
    { echo "scripts/deps.sh: go mod download $grafana_sdk failed" >&2; exit 1; }
else
  echo "scripts/deps.sh: no go on PATH: examples/grafana/test_dashboard.sh will skip its check by $grafana_sdk" >&2
fi

# tests: Python consumers no one here wrote (tests/python-requirements.txt:
# the CloudEvents SDK, nats-py), from PyPI into a venv over the system's
# Python (so that Debian's pymongo stays visible); tests/test_formats.sh
# runs with it. pip installs nothing when the pinned versions are there.
pyenv=${XDG_CACHE_HOME:-$HOME/.cache}/service-outbox/pyenv
[[ -x $pyenv/bin/pip ]] || /usr/bin/python3 -m venv --system-site-packages "$pyenv"
"$pyenv/bin/pip" install -q --disable-pip-version-check -r "$top/tests/python-requirements.txt" ||
  { echo "scripts/deps.sh: pip install -r tests/python-requirements.txt into $pyenv failed" >&2; exit 1; }

# clients/node: the Node producer library's dependencies (the official
# MongoDB driver, Ajv), from the npm registry as its package-lock.json pins
# them, into the cache (never into the source tree: make distcheck packs
# it); tests/test_node_client.sh runs with NODE_PATH there. npm ci runs only
# when the lock changed.
nodedir=${XDG_CACHE_HOME:-$HOME/.cache}/service-outbox/node-client
if command -v npm >/dev/null; then
  if ! cmp -s "$top/clients/node/package-lock.json" "$nodedir/package-lock.json" || [[ ! -d $nodedir/node_modules ]]; then
    mkdir -p "$nodedir"
    cp "$top/clients/node/package.json" "$top/clients/node/package-lock.json" "$nodedir/"
    (cd "$nodedir" && npm ci --no-audit --no-fund --loglevel=error) ||
      { echo "scripts/deps.sh: npm ci of clients/node's dependencies into $nodedir failed" >&2; exit 1; }
  fi
else
  echo "scripts/deps.sh: no npm on PATH: tests/test_node_client.sh will skip the Node producer library" >&2
fi
