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

# The shared reader (issue 17) on the real outboxd: sinks that keep up share
# one tail; a blocked sink falls off the ring, catches up alone and comes
# back (also across kill -9).
check_PROGRAMS += outboxd/test_shared_reader
TESTS += outboxd/test_shared_reader
outboxd_test_shared_reader_SOURCES = outboxd/test_shared_reader.c tests/daemonlib.h tests/daemonlib.c
outboxd_test_shared_reader_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
outboxd_test_shared_reader_CFLAGS = $(TEST_CFLAGS)
outboxd_test_shared_reader_LDADD = $(TEST_LDADD)
EXTRA_outboxd_test_shared_reader_DEPENDENCIES = outboxd/outboxd$(EXEEXT) sinks/file/file.la
if WITH_KAFKA
# The same program built for three file sinks and Kafka from one outbox.
check_PROGRAMS += outboxd/test_shared_reader_kafka
TESTS += outboxd/test_shared_reader_kafka
outboxd_test_shared_reader_kafka_SOURCES = outboxd/test_shared_reader.c tests/daemonlib.h tests/daemonlib.c \
	sinks/kafka/kafka_testlib.c sinks/kafka/kafka_testlib.h
outboxd_test_shared_reader_kafka_CPPFLAGS = $(AM_CPPFLAGS) -DOUTBOXD_TEST_KAFKA -I$(top_srcdir)/tests \
	-I$(top_srcdir)/sinks/kafka
outboxd_test_shared_reader_kafka_CFLAGS = $(TEST_CFLAGS) $(RDKAFKA_CFLAGS)
outboxd_test_shared_reader_kafka_LDADD = $(TEST_LDADD) $(RDKAFKA_LIBS)
EXTRA_outboxd_test_shared_reader_kafka_DEPENDENCIES = outboxd/outboxd$(EXEEXT) sinks/file/file.la \
	sinks/kafka/kafka.la
endif
endif

# The fenced writes of a sink's storage (docs/leases.md, section 3):
# checkpoint.c and the checkpoint and dead-letter writers against the real
# server, with the test's own fence callbacks. outboxd's sources are
# compiled in (they are not a library).
if HAVE_CMOCKA
check_PROGRAMS += outboxd/test_fencing
TESTS += outboxd/test_fencing
outboxd_test_fencing_SOURCES = outboxd/test_fencing.c \
	outboxd/checkpoint.h outboxd/checkpoint.c \
	outboxd/checkpoint_writer.h outboxd/checkpoint_writer.c \
	outboxd/deadletter_writer.h outboxd/deadletter_writer.c \
	outboxd/retry_writer.h outboxd/retry_writer.c outboxd/condwait.h
outboxd_test_fencing_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests -I$(top_srcdir)/outboxd
outboxd_test_fencing_CFLAGS = $(TEST_CFLAGS)
outboxd_test_fencing_LDADD = outboxd/libring.la outboxd/libhost.la $(TEST_LDADD)
endif
