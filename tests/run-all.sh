#!/usr/bin/env bash
# tests/run-all.sh - the whole test suite, from a fresh Debian machine:
# installs what is missing, starts the real test servers
# (tests/services/services.sh), then runs `make check` three ways -- a
# plain -Werror build, an AddressSanitizer + UBSan build, and the plain
# build under valgrind -- `make distcheck`, the distribution packages, and
# the benchmark harness with tiny volumes, and each fuzz target for a
# minute. Ends with one line:
#   N passed, N failed, N skipped
# Exit status 0 only when nothing failed.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

# Stop at the end only what this run started.
services_were_up=false
bash tests/services/services.sh status >/dev/null 2>&1 && services_were_up=true
if ! bash tests/services/services.sh up; then
  echo "tests/run-all.sh: the test servers did not start (see above)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
$services_were_up || trap 'bash tests/services/services.sh down >/dev/null 2>&1' EXIT
# Where the harness ran, a missing server is a failure, not a skip.
export OUTBOX_TEST_REQUIRE_SERVERS=1

passed=0 failed=0 skipped=0
count() { # phase, build dir: add its test-suite.log summary to the totals
  local log="$2/test-suite.log" p f s e x
  if [[ ! -f $log ]]; then
    echo "== $1: no test-suite.log (build failed?)"; failed=$((failed + 1)); return
  fi
  p=$(sed -n 's/^# PASS: *//p' "$log"); s=$(sed -n 's/^# SKIP: *//p' "$log")
  f=$(sed -n 's/^# FAIL: *//p' "$log"); e=$(sed -n 's/^# ERROR: *//p' "$log")
  x=$(sed -n 's/^# XPASS: *//p' "$log")
  echo "== $1: ${p:-0} passed, $(( ${f:-0} + ${e:-0} + ${x:-0} )) failed, ${s:-0} skipped"
  # Every folder's tests (tests/, outboxd/, sinks/*/), not only tests/.
  find "$2" -name 'test_*.log' -newer "$2/check.started" -exec grep -h '^SKIP: ' {} + 2>/dev/null | sed 's/^/   /' | sort -u
  find "$2" -name 'test_*.log' -newer "$2/check.started" -exec grep -h -E '^(FAIL|ERROR): ' {} + 2>/dev/null | sed 's/^/   /'
  # The next phase may reuse the build folder: keep this phase's summary,
  # which holds the whole log of every test that did not pass.
  cp "$log" "$top/_build/test-suite-${1%% *}.log" 2>/dev/null
  passed=$((passed + ${p:-0})); skipped=$((skipped + ${s:-0}))
  failed=$((failed + ${f:-0} + ${e:-0} + ${x:-0}))
}

phase() { # name, build dir, make target, configure args...
  local name=$1 dir=$2 target=$3
  shift 3
  echo "== $name: building in $dir"
  if ! bash scripts/build.sh "$dir" "$@" >/dev/null; then
    echo "== $name: build failed"; failed=$((failed + 1)); return
  fi
  rm -f "$dir/test-suite.log"
  touch "$dir/check.started"
  (cd "$dir" && make -j2 $target >check.out 2>&1)
  count "$name" "$dir"
}

phase "plain build (-Werror)" _build/plain check --enable-werror
phase "AddressSanitizer + UBSan" _build/asan check --enable-werror --enable-sanitizers
# valgrind: every test program under memcheck; a leak or error fails it.
# The valgrind and distcheck runs use a tenth of the volumes (OUTBOX_TEST_QUICK):
# the plain and sanitizer runs have already pushed the full ones through.
OUTBOX_TEST_QUICK=1 OUTBOX_TEST_VALGRIND=1 phase "valgrind" _build/plain check --enable-werror

echo "== make distcheck"
if (cd _build/plain && OUTBOX_TEST_QUICK=1 make distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror >distcheck.out 2>&1); then
  echo "== make distcheck: passed"; passed=$((passed + 1))
else
  echo "== make distcheck: FAILED (_build/plain/distcheck.out)"; tail -30 _build/plain/distcheck.out
  failed=$((failed + 1))
fi

# Distribution packages: build the .debs from a clean export, lint, install,
# exercise the installed files, purge; build the RPMs.
echo "== distribution packages (packaging/test-packages.sh)"
mkdir -p _build
bash packaging/test-packages.sh >_build/test-packages.log 2>&1
pk_pass=$(grep -E '^ok [0-9]+' _build/test-packages.log | grep -vc '# SKIP')
pk_skip=$(grep -cE '^ok [0-9]+ # SKIP' _build/test-packages.log)
pk_fail=$(grep -cE '^not ok [0-9]+' _build/test-packages.log)
pk_plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' _build/test-packages.log)
if grep -q '^Bail out!' _build/test-packages.log || [[ $((pk_pass + pk_skip + pk_fail)) -ne ${pk_plan:-0} ]]; then
  pk_fail=$((pk_fail + 1))
fi
echo "== distribution packages: $pk_pass passed, $pk_fail failed, $pk_skip skipped (_build/test-packages.log)"
grep -E '^(not ok|ok [0-9]+ # SKIP)' _build/test-packages.log | sed 's/^/   /'
passed=$((passed + pk_pass)); failed=$((failed + pk_fail)); skipped=$((skipped + pk_skip))

# The benchmark harness, with tiny volumes: every case runs end to end and
# writes its report (the figures mean nothing here, and nothing is timed as
# pass/fail; `make bench` is the benchmark).
echo "== benchmark harness (bench/run --quick)"
if bash bench/run --builddir "$top/_build/plain" --quick --out "$top/_build/bench-quick" \
    >_build/bench-quick.log 2>&1; then
  echo "== benchmark harness: passed"; passed=$((passed + 1))
else
  echo "== benchmark harness: FAILED (_build/bench-quick.log)"; tail -20 _build/bench-quick.log
  failed=$((failed + 1))
fi

# Fuzzing, briefly: every libFuzzer target for 60 s under ASan+UBSan
# (`make fuzz` runs them for 10 minutes each).
echo "== fuzzing (tests/fuzz/run, 60 s per target)"
FUZZ_SECONDS=${FUZZ_SECONDS:-60} bash tests/fuzz/run >_build/fuzz.log 2>&1
fz_pass=$(grep -c '^ok: ' _build/fuzz.log); fz_fail=$(grep -c '^FINDING: ' _build/fuzz.log)
grep -q '^[0-9]* passed, [0-9]* failed$' _build/fuzz.log || fz_fail=$((fz_fail + 1))
echo "== fuzzing: $fz_pass passed, $fz_fail failed (_build/fuzz.log)"
grep -E '^(ok|FINDING|   )' _build/fuzz.log | sed 's/^/   /'
passed=$((passed + fz_pass)); failed=$((failed + fz_fail))

echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
