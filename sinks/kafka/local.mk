# sinks/kafka/: the Kafka sink on librdkafka (sinks/kafka/README.md). A
# libtool module installed in the plugin directory, $(sinkdir) (defined by
# outboxd/local.mk), next to the file sink; it exports only
# outbox_sink_entry. Built unless configure ran with --without-kafka.
# Include this after sinks/file/local.mk: that one sets sink_LTLIBRARIES
# with "=", this one adds to it.
if WITH_KAFKA
sink_LTLIBRARIES += sinks/kafka/kafka.la
sinks_kafka_kafka_la_SOURCES = sinks/kafka/kafka.c sinks/kafka/read_back.h sinks/kafka/read_back.c
sinks_kafka_kafka_la_CFLAGS = $(AM_CFLAGS) $(RDKAFKA_CFLAGS) -fvisibility=hidden
sinks_kafka_kafka_la_LIBADD = $(RDKAFKA_LIBS)
# $(AM_LDFLAGS) first, as per-target LDFLAGS replace it: it carries the
# sanitizer and -pthread flags.
sinks_kafka_kafka_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -export-symbols-regex '^outbox_sink_entry$$'

if HAVE_CMOCKA
# The tests talk to the harness's real Kafka broker (skipped without one)
# and take a lock so that they never run at once: the outboxd and metrics
# tests stop and start the broker.
#
# test_kafka_sink loads the built module through tests/sinkhost.h (outboxd's
# own loader, option code and check) and drives it; it defines its own
# rd_kafka_new() to reach the plugin's producer, hence -export-dynamic.
#
# test_kafka_outboxd runs the real outboxd with the module.
KAFKA_TEST_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/tests $(MONGOC_CFLAGS) $(PCRE2_CFLAGS) $(CMOCKA_CFLAGS) $(RDKAFKA_CFLAGS)
KAFKA_TEST_LDADD = tests/libtestlib.la liboutbox/liboutbox-core.la $(MONGOC_LIBS) $(CMOCKA_LIBS) $(RDKAFKA_LIBS)
check_PROGRAMS += sinks/kafka/test_kafka_sink sinks/kafka/test_kafka_outboxd
TESTS += sinks/kafka/test_kafka_sink sinks/kafka/test_kafka_outboxd

sinks_kafka_test_kafka_sink_SOURCES = sinks/kafka/test_kafka_sink.c \
	sinks/kafka/kafka_testlib.c sinks/kafka/kafka_testlib.h
sinks_kafka_test_kafka_sink_CFLAGS = $(KAFKA_TEST_CFLAGS)
sinks_kafka_test_kafka_sink_LDFLAGS = $(AM_LDFLAGS) -export-dynamic
sinks_kafka_test_kafka_sink_LDADD = $(SINKHOST_LIBS) $(KAFKA_TEST_LDADD) -ldl
EXTRA_sinks_kafka_test_kafka_sink_DEPENDENCIES = sinks/kafka/kafka.la

sinks_kafka_test_kafka_outboxd_SOURCES = sinks/kafka/test_kafka_outboxd.c \
	sinks/kafka/kafka_testlib.c sinks/kafka/kafka_testlib.h \
	tests/daemonlib.c tests/daemonlib.h tests/crashlib.c tests/crashlib.h
sinks_kafka_test_kafka_outboxd_CFLAGS = $(KAFKA_TEST_CFLAGS)
sinks_kafka_test_kafka_outboxd_LDADD = $(KAFKA_TEST_LDADD)
# outboxd, outboxctl and the module must exist before the test runs.
EXTRA_sinks_kafka_test_kafka_outboxd_DEPENDENCIES = sinks/kafka/kafka.la outboxd/outboxd$(EXEEXT) \
	outboxctl/outboxctl$(EXEEXT)

# test_kafka_metrics runs outboxd with a file and a Kafka sink and its
# HTTP endpoint (issue 15): counters against the topic, readiness while
# the broker is stopped.
check_PROGRAMS += sinks/kafka/test_kafka_metrics
TESTS += sinks/kafka/test_kafka_metrics
sinks_kafka_test_kafka_metrics_SOURCES = sinks/kafka/test_kafka_metrics.c \
	sinks/kafka/kafka_testlib.c sinks/kafka/kafka_testlib.h \
	tests/daemonlib.c tests/daemonlib.h tests/httplib.c tests/httplib.h
sinks_kafka_test_kafka_metrics_CFLAGS = $(KAFKA_TEST_CFLAGS)
sinks_kafka_test_kafka_metrics_LDADD = $(KAFKA_TEST_LDADD)
EXTRA_sinks_kafka_test_kafka_metrics_DEPENDENCIES = sinks/kafka/kafka.la sinks/file/file.la outboxd/outboxd$(EXEEXT)
endif
endif
EXTRA_DIST += sinks/kafka/README.md sinks/kafka/.gitignore
