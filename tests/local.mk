# tests/: every test program is a cmocka group printing TAP, read by
# automake's tap-driver.sh through tests/tap-cmocka.sh. Programs that need a
# server read the harness's addresses (tests/services/services.sh) and skip,
# saying why, when there is none.
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
LOG_COMPILER = $(SHELL) $(top_srcdir)/tests/tap-cmocka.sh
# MONGOC_DISABLE_SHM: libmongoc's shared-memory counters leave
# /dev/shm/mongoc-PID behind when a process is killed (the kill -9 tests do),
# and a later process with that pid then warns on stderr.
AM_TESTS_ENVIRONMENT = \
	MONGOC_DISABLE_SHM=1; export MONGOC_DISABLE_SHM; \
	OUTBOX_TEST_SRCDIR='$(abs_top_srcdir)'; export OUTBOX_TEST_SRCDIR; \
	OUTBOX_TEST_BUILDDIR='$(abs_top_builddir)'; export OUTBOX_TEST_BUILDDIR; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0; export ASAN_OPTIONS; \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; export UBSAN_OPTIONS;
# Shell tests print TAP themselves.
TEST_EXTENSIONS = .sh
SH_LOG_DRIVER = $(LOG_DRIVER)
SH_LOG_COMPILER = $(SHELL)
EXTRA_DIST += tests/test_sink_out_of_tree.sh tests/test_formats.sh tests/formats_judge.py tests/test_python_client.sh tests/test_node_client.sh tests/services_env.py \
	tests/python-requirements.txt
EXTRA_DIST += tests/tap-cmocka.sh tests/envelope_writer.py tests/README.md tests/validation/cases.json

# The one test host for sink plugins (tests/sinkhost.h): outboxd's own
# loader, option code and check (outboxd/libhost.la) with the books of every
# ack. noinst rather than check_: outbox-sink-conformance, an installed
# program, is built on it too (conformance/local.mk). A sink test links
# $(SINKHOST_LIBS) and adds -I$(top_srcdir)/tests.
noinst_LTLIBRARIES += tests/libsinkhost.la
tests_libsinkhost_la_SOURCES = tests/sinkhost.h tests/sinkhost.c
tests_libsinkhost_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)
SINKHOST_LIBS = tests/libsinkhost.la outboxd/libhost.la outboxd/libconffile.la $(LTDL_LIBS)

if HAVE_CMOCKA
check_LTLIBRARIES += tests/libtestlib.la
tests_libtestlib_la_SOURCES = tests/testlib.h tests/testlib.c
tests_libtestlib_la_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS) $(CMOCKA_CFLAGS)
tests_libtestlib_la_LIBADD = liboutbox/liboutbox-core.la $(MONGOC_LIBS) $(CMOCKA_LIBS)

TEST_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS) $(PCRE2_CFLAGS) $(CMOCKA_CFLAGS)
TEST_LDADD = tests/libtestlib.la liboutbox/liboutbox-core.la $(MONGOC_LIBS) $(CMOCKA_LIBS)

OUTBOX_TESTS = \
	tests/test_schema_validation \
	tests/test_conf \
	tests/test_redact \
	tests/test_ensure \
	tests/test_put \
	tests/test_tail_order \
	tests/test_tail_resume \
	tests/test_tail_gap \
	tests/test_tail_malformed \
	tests/test_tail_network_failure \
	tests/test_transactional_put \
	tests/test_transaction_errors \
	tests/test_schemas_stored \
	tests/test_validation_table \
	tests/test_promote \
	tests/test_concurrent_producers \
	tests/test_envelope_other_driver \
	tests/test_outboxctl \
	tests/test_outboxctl_ops \
	tests/test_outboxd \
	tests/test_outboxd_malformed \
	tests/test_tls_mongodb \
	tests/test_sinkhost

check_PROGRAMS += $(OUTBOX_TESTS)
TESTS += $(OUTBOX_TESTS) tests/test_sink_out_of_tree.sh tests/test_formats.sh tests/test_python_client.sh tests/test_node_client.sh

tests_test_schema_validation_CFLAGS = $(TEST_CFLAGS)
tests_test_schema_validation_LDADD = $(TEST_LDADD)
tests_test_conf_CFLAGS = $(TEST_CFLAGS)
tests_test_conf_LDADD = $(TEST_LDADD)
tests_test_redact_CFLAGS = $(TEST_CFLAGS)
tests_test_redact_LDADD = $(TEST_LDADD)
tests_test_ensure_CFLAGS = $(TEST_CFLAGS)
tests_test_ensure_LDADD = $(TEST_LDADD)
tests_test_put_CFLAGS = $(TEST_CFLAGS)
tests_test_put_LDADD = $(TEST_LDADD)
tests_test_tail_order_CFLAGS = $(TEST_CFLAGS)
tests_test_tail_order_LDADD = $(TEST_LDADD)
tests_test_tail_resume_CFLAGS = $(TEST_CFLAGS)
tests_test_tail_resume_LDADD = $(TEST_LDADD)
tests_test_tail_gap_CFLAGS = $(TEST_CFLAGS)
tests_test_tail_gap_LDADD = $(TEST_LDADD)
tests_test_tail_malformed_CFLAGS = $(TEST_CFLAGS)
tests_test_tail_malformed_LDADD = $(TEST_LDADD)
tests_test_tail_network_failure_SOURCES = tests/test_tail_network_failure.c tests/tcp_proxy.h tests/tcp_proxy.c
tests_test_tail_network_failure_CFLAGS = $(TEST_CFLAGS)
tests_test_tail_network_failure_LDADD = $(TEST_LDADD)
tests_test_transactional_put_CFLAGS = $(TEST_CFLAGS)
tests_test_transactional_put_LDADD = $(TEST_LDADD)
tests_test_validation_table_CFLAGS = $(TEST_CFLAGS)
tests_test_validation_table_LDADD = $(TEST_LDADD)
tests_test_schemas_stored_CFLAGS = $(TEST_CFLAGS)
tests_test_schemas_stored_LDADD = $(TEST_LDADD)
tests_test_transaction_errors_SOURCES = tests/test_transaction_errors.c tests/tcp_proxy.h tests/tcp_proxy.c
tests_test_transaction_errors_CFLAGS = $(TEST_CFLAGS)
tests_test_transaction_errors_LDADD = $(TEST_LDADD)
tests_test_promote_CFLAGS = $(TEST_CFLAGS)
tests_test_promote_LDADD = $(TEST_LDADD)
tests_test_concurrent_producers_CFLAGS = $(TEST_CFLAGS)
tests_test_concurrent_producers_LDADD = $(TEST_LDADD)
tests_test_envelope_other_driver_CFLAGS = $(TEST_CFLAGS)
tests_test_envelope_other_driver_LDADD = $(TEST_LDADD)
tests_test_outboxctl_CFLAGS = $(TEST_CFLAGS)
tests_test_outboxctl_LDADD = $(TEST_LDADD)
tests_test_outboxd_malformed_SOURCES = tests/test_outboxd_malformed.c tests/daemonlib.h tests/daemonlib.c
tests_test_outboxd_malformed_CFLAGS = $(TEST_CFLAGS)
tests_test_outboxd_malformed_LDADD = $(TEST_LDADD)
EXTRA_tests_test_outboxd_malformed_DEPENDENCIES = outboxd/outboxd$(EXEEXT) sinks/file/file.la outboxctl/outboxctl$(EXEEXT)
tests_test_tls_mongodb_SOURCES = tests/test_tls_mongodb.c tests/daemonlib.h tests/daemonlib.c
tests_test_tls_mongodb_CFLAGS = $(TEST_CFLAGS)
tests_test_tls_mongodb_LDADD = $(TEST_LDADD)
EXTRA_tests_test_tls_mongodb_DEPENDENCIES = outboxd/outboxd$(EXEEXT) sinks/file/file.la
tests_test_outboxd_SOURCES = tests/test_outboxd.c tests/daemonlib.h tests/daemonlib.c tests/crashlib.h tests/crashlib.c
tests_test_outboxd_CFLAGS = $(TEST_CFLAGS)
tests_test_outboxd_LDADD = $(TEST_LDADD)
# outboxd and the file sink must exist before the daemon test runs.
EXTRA_tests_test_outboxd_DEPENDENCIES = outboxd/outboxd$(EXEEXT) sinks/file/file.la
tests_test_sinkhost_CFLAGS = $(TEST_CFLAGS)
tests_test_sinkhost_LDADD = $(SINKHOST_LIBS) $(TEST_LDADD)
# The file sink and the conformance test plugins must exist before it runs.
EXTRA_tests_test_sinkhost_DEPENDENCIES = sinks/file/file.la $(CONFORMANCE_TESTPLUGINS)
tests_test_outboxctl_ops_CFLAGS = $(TEST_CFLAGS)
tests_test_outboxctl_ops_LDADD = $(TEST_LDADD)
EXTRA_tests_test_outboxctl_ops_DEPENDENCIES = outboxctl/outboxctl$(EXEEXT)
# outboxctl must exist before its test runs.
EXTRA_tests_test_outboxctl_DEPENDENCIES = outboxctl/outboxctl$(EXEEXT)

# HA end to end (docs/leases.md 7.3): several real outboxd on one outbox,
# kill -9 and a TCP proxy, file sinks and (when the Redis sink is built) a
# redis-server of the test's own (sinks/redis/redis_testlib.c). About a
# minute. It skips, saying so, on an outboxd without leases (one that
# refuses `ha:` in --check, or starts its sinks without writing a claim):
# until docs/leases.md's package 3 is wired.
check_PROGRAMS += tests/test_ha
TESTS += tests/test_ha
tests_test_ha_SOURCES = tests/test_ha.c tests/daemonlib.h tests/daemonlib.c tests/tcp_proxy.h tests/tcp_proxy.c
tests_test_ha_CFLAGS = $(TEST_CFLAGS)
tests_test_ha_LDADD = $(TEST_LDADD)
EXTRA_tests_test_ha_DEPENDENCIES = outboxd/outboxd$(EXEEXT) sinks/file/file.la
if WITH_REDIS
tests_test_ha_SOURCES += sinks/redis/redis_testlib.h sinks/redis/redis_testlib.c
tests_test_ha_CPPFLAGS = $(AM_CPPFLAGS) -DTEST_HA_REDIS -I$(top_srcdir)/tests -I$(top_srcdir)/sinks/redis
tests_test_ha_CFLAGS += $(HIREDIS_CFLAGS)
tests_test_ha_LDADD += $(HIREDIS_LIBS)
EXTRA_tests_test_ha_DEPENDENCIES += sinks/redis/redis.la
endif
endif
