# outboxd/runner-tests.mk: test plugins and tests of the sink runner's ABI 1.1 host side.
if HAVE_CMOCKA
# probe: a 1.1 plugin that records what the runner hands it (publish_some,
# destinations, payload, stats). -rpath makes libtool build it shared
# although it is never installed.
check_LTLIBRARIES += outboxd/testplugins-runner/probe.la
outboxd_testplugins_runner_probe_la_SOURCES = outboxd/testplugins-runner/probe.c
outboxd_testplugins_runner_probe_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere

# The real outboxd and outboxctl against the harness's MongoDB.
check_PROGRAMS += outboxd/test_runner_abi11
TESTS += outboxd/test_runner_abi11
outboxd_test_runner_abi11_SOURCES = outboxd/test_runner_abi11.c tests/daemonlib.h tests/daemonlib.c
outboxd_test_runner_abi11_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
outboxd_test_runner_abi11_CFLAGS = $(TEST_CFLAGS)
outboxd_test_runner_abi11_LDADD = $(TEST_LDADD)
EXTRA_outboxd_test_runner_abi11_DEPENDENCIES = outboxd/outboxd$(EXEEXT) outboxctl/outboxctl$(EXEEXT) \
	outboxd/testplugins-runner/probe.la
endif
