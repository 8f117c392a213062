#!/bin/sh
# tap-cmocka.sh - runs one cmocka test program and mends its TAP for
# automake's tap-driver.sh. cmocka 1.1.5 (Debian 12) prints a skipped test
# as "not ok N # SKIP name", which TAP readers count as a failure; this turns
# it into "ok N # SKIP name: <reason>", taking the reason from the
# "# skip reason: ..." line the test printed just before (tests/testlib.h).
# The program's exit status is kept. With OUTBOX_TEST_VALGRIND set, the
# program runs under valgrind's memcheck, and any error or definite leak
# makes it exit 99, which the TAP driver reports as an ERROR.
if [ -n "${OUTBOX_TEST_VALGRIND:-}" ]; then
  set -- valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite --show-leak-kinds=definite "$@"
fi
status_file=$(mktemp)
trap 'rm -f "$status_file"' EXIT
{ "$@"; echo $? >"$status_file"; } | awk '
  /^# skip reason: / { reason = substr($0, 16); print; next }
  /^not ok [0-9]+ # SKIP/ {
    sub(/^not ok/, "ok")
    if (reason != "") $0 = $0 ": " reason
    reason = ""
    print; fflush(); next
  }
  { print; fflush() }'
exit "$(cat "$status_file")"
