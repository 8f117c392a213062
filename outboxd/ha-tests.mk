# outboxd/ha-tests.mk: the daemon's side of the leases (issue 14,
# docs/leases.md 7.3, package 3): two real outboxd on one outbox.
if HAVE_CMOCKA
check_PROGRAMS += outboxd/test_ha_daemon
TESTS += outboxd/test_ha_daemon
outboxd_test_ha_daemon_SOURCES = outboxd/test_ha_daemon.c tests/daemonlib.h tests/daemonlib.c
outboxd_test_ha_daemon_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
outboxd_test_ha_daemon_CFLAGS = $(TEST_CFLAGS)
outboxd_test_ha_daemon_LDADD = $(TEST_LDADD)
EXTRA_outboxd_test_ha_daemon_DEPENDENCIES = outboxd/outboxd$(EXEEXT) outboxctl/outboxctl$(EXEEXT) sinks/file/file.la
endif
