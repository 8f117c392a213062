#!/bin/sh
# test_conformance.sh - outbox-sink-conformance fails each purpose-built
# broken plugin (conformance/testplugins) on exactly the rule it breaks, with
# a message that names it, and passes a correct plugin (one that acks from a
# thread of its own, with publish_some) and the file sink. Prints TAP.
#
# With OUTBOX_TEST_VALGRIND set, the tool runs under valgrind's memcheck
# (through libtool, as it is a libtool wrapper in the build tree); an error
# or a definite leak fails the case.
set -u
builddir=${OUTBOX_TEST_BUILDDIR:-.}
tool="$builddir/conformance/outbox-sink-conformance"
plugins="$builddir/conformance/testplugins/.libs"
tmp=$(mktemp -d /tmp/outbox-conformance-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "1..9"

run() {
  if [ -n "${OUTBOX_TEST_VALGRIND:-}" ]; then
    "$builddir/libtool" --mode=execute valgrind -q --error-exitcode=99 --leak-check=full \
      --errors-for-leak-kinds=definite --show-leak-kinds=definite "$tool" "$@"
  else
    "$tool" "$@"
  fi
}

n=0
# case NAME EXPECTED_EXIT EXPECTED_FAILING_CHECKS PATTERN -- ARGS...: runs the
# tool; passes when it exits EXPECTED_EXIT, the numbers of its "not ok" lines
# are exactly EXPECTED_FAILING_CHECKS (space-separated, "" for none) and
# PATTERN (grep -E) matches its output.
case_() {
  name=$1 want_exit=$2 want_failing=$3 pattern=$4
  shift 5
  n=$((n + 1))
  run "$@" >"$tmp/out" 2>"$tmp/err"
  status=$?
  failing=$(sed -n 's/^not ok \([0-9]*\) .*/\1/p' "$tmp/out" | tr '\n' ' ' | sed 's/ $//')
  if [ "$status" -eq "$want_exit" ] && [ "$failing" = "$want_failing" ] && grep -Eq -- "$pattern" "$tmp/out"; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name (exit $status, want $want_exit; failing checks \"$failing\", want \"$want_failing\"; pattern: $pattern)"
    sed 's/^/# /' "$tmp/out" "$tmp/err"
  fi
}

case_ "a correct plugin that acks from its own thread passes" 0 "" "^# 0 of 17 checks failed" \
  -- "$plugins/async.so" --events 300
case_ "the file sink, the reference plugin, passes" 0 "" "^# 0 of 17 checks failed" \
  -- "$builddir/sinks/file/.libs/file.so" --route "$tmp/sink/{type}.jsonl"
case_ "double ack: fails 'exactly one ack', naming the event acked twice" 1 "8" \
  "^not ok 8 - every published event gets exactly one ack # event 1 acked twice: OK, then OK" \
  -- "$plugins/double_ack.so"
# The plugin forgets events, so it also flushes without waiting for them.
case_ "missing ack: fails 'exactly one ack', naming the events without one" 1 "6 8" \
  "^not ok 8 - every published event gets exactly one ack # 33 of 100 events got no ack .*events 3, 6, 9" \
  -- "$plugins/missing_ack.so" --timeout 1000
case_ "ack after close: fails 'no ack after close', naming the event" 1 "13" \
  "^not ok 13 - no ack arrives after close returned # event [0-9]+ acked OK after close returned" \
  -- "$plugins/ack_after_close.so"
case_ "recover that finds everything: fails 'recover finds ... only those', naming an unpublished event" 1 "11" \
  "^not ok 11 - recover finds the published events at the destination, and only those # 16 of 16 events never published were marked held" \
  -- "$plugins/recover_all.so"
case_ "flush that returns OK early: fails the flush rule, counting the unacked events" 1 "6" \
  "^not ok 6 - flush returns OK only when no ack is outstanding, within its timeout # flush returned OK with [0-9]+ events unacked" \
  -- "$plugins/flush_early.so"
case_ "a payload the plugin does not declare is refused by check and open" 1 "3 4" \
  "^not ok 3 - check accepts the options .* # command line:1:1: sink test: payload bson: plugin async accepts only json" \
  -- "$plugins/async.so" --payload bson
case_ "an option the table refuses is named with its position on the command line" 1 "3 4" \
  "^not ok 3 - .* # command line:2:1: sink test: option no_such_option: unknown option" \
  -- "$builddir/sinks/file/.libs/file.so" --route "$tmp/sink/{type}.jsonl" --option fsync=never \
  --option no_such_option=1
