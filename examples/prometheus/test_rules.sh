#!/bin/sh
# examples/prometheus/test_rules.sh - `make check`'s judge of the alert
# rules: Prometheus's own promtool checks outboxd.rules.yml and runs its unit
# tests (outboxd.rules.test.yml: given series, which alerts fire). Prints TAP.
here=$(cd "$(dirname "$0")" && pwd)
echo "1..2"
if ! command -v promtool >/dev/null 2>&1; then
    echo "not ok 1 - promtool check rules # promtool is not on PATH (Debian's prometheus package; scripts/deps.sh installs it)"
    echo "not ok 2 - promtool test rules # promtool is not on PATH"
    exit 0
fi
n=0
for what in "check rules outboxd.rules.yml" "test rules outboxd.rules.test.yml"; do
    n=$((n + 1))
    # shellcheck disable=SC2086 # the words are promtool's arguments
    if out=$(cd "$here" && promtool $what 2>&1); then
        echo "ok $n - promtool $what"
    else
        echo "not ok $n - promtool $what"
        printf '%s\n' "$out" | sed 's/^/# /'
    fi
done
