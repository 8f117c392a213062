#!/bin/sh
# scripts/test_sink_list.sh - `make check`'s view of the sink list: every
# sink of m4/outbox-sinks.m4 has its folder, and the Debian control file
# (static, written by hand) agrees with the list. Prints TAP.
exec sh "$(dirname "$0")/sinks.sh" check
