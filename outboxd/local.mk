# outboxd/: the daemon, and the sink plugin ABI it hosts.
sbin_PROGRAMS = outboxd/outboxd
outboxd_outboxd_SOURCES = outboxd/main.c
outboxd_outboxd_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
outboxd_outboxd_LDADD = outboxd/libdaemon.la

# The daemon itself, behind outboxd_daemon_main (daemon.h): apart from
# main.c so that bench/bench_pipeline runs the very same daemon with its
# events fed from memory.
noinst_LTLIBRARIES += outboxd/libdaemon.la
outboxd_libdaemon_la_SOURCES = \
	outboxd/daemon.h outboxd/daemon.c \
	outboxd/checkpoint.h outboxd/checkpoint.c \
	outboxd/checkpoint_writer.h outboxd/checkpoint_writer.c outboxd/condwait.h \
	outboxd/deadletter_writer.h outboxd/deadletter_writer.c \
	outboxd/retry_writer.h outboxd/retry_writer.c \
	outboxd/reader.h outboxd/reader.c \
	outboxd/sink_runner.h outboxd/sink_runner.c \
	outboxd/in_doubt.h outboxd/in_doubt.c \
	outboxd/sinkset.h outboxd/sinkset.c \
	outboxd/metrics.h outboxd/metrics.c outboxd/heartbeat.h outboxd/clock.h \
	outboxd/survey.h outboxd/survey.c outboxd/headroom.h \
	outboxd/http.h outboxd/http.c
outboxd_libdaemon_la_CPPFLAGS = $(AM_CPPFLAGS) -DOUTBOXD_PLUGIN_DIR='"$(sinkdir)"'
outboxd_libdaemon_la_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS) $(SYSTEMD_CFLAGS) $(MHD_CFLAGS)
outboxd_libdaemon_la_LIBADD = outboxd/libring.la outboxd/liblease.la outboxd/libleasedoc.la outboxd/libhost.la \
	outboxd/libconffile.la liboutbox/liboutbox.la $(MONGOC_LIBS) $(LTDL_LIBS) $(SYSTEMD_LIBS) $(MHD_LIBS)

# The lease manager (docs/leases.md), apart so that test_lease runs several
# managers in one process against the real server.
noinst_LTLIBRARIES += outboxd/liblease.la
outboxd_liblease_la_SOURCES = outboxd/lease.h outboxd/lease.c
outboxd_liblease_la_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
outboxd_liblease_la_LIBADD = outboxd/libleasedoc.la outboxd/libhost.la $(MONGOC_LIBS)

# The documents of N.leases, built and parsed by the one code outboxd and
# outboxctl share (libbson only, no threads): outboxctl links it too.
noinst_LTLIBRARIES += outboxd/libleasedoc.la
outboxd_libleasedoc_la_SOURCES = outboxd/lease_doc.h outboxd/lease_doc.c
outboxd_libleasedoc_la_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
outboxd_libleasedoc_la_LIBADD = $(MONGOC_LIBS)

# The shared events and their ring, apart so that test_ring links them
# alone (no server, no threads of outboxd's).
noinst_LTLIBRARIES += outboxd/libring.la
outboxd_libring_la_SOURCES = \
	outboxd/shared_event.h outboxd/shared_event.c \
	outboxd/ring.h outboxd/ring.c
outboxd_libring_la_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
outboxd_libring_la_LIBADD = outboxd/libejson.la outboxd/libhost.la liboutbox/liboutbox.la $(MONGOC_LIBS)

# The host side of the sink ABI, apart so that tests, tests/sinkhost.c and
# outbox-sink-conformance run the very code outboxd runs: the log, the
# secrets registry, plugin loading and its checks, the option table
# (parsing, defaults, options_fill) and the plugin's check. It needs
# liboutbox and libmongoc only for the secrets registry's URL passwords
# (outboxd_secrets_add_uri, _add_conf); the option types use neither.
noinst_LTLIBRARIES += outboxd/libhost.la
outboxd_libhost_la_SOURCES = \
	outboxd/log.h outboxd/log.c \
	outboxd/secrets.h outboxd/secrets.c \
	outboxd/plugin.h outboxd/plugin.c \
	outboxd/options.h outboxd/options.c \
	outboxd/check.h outboxd/check.c \
	outboxd/msgformat.h outboxd/msgformat.c
outboxd_libhost_la_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
outboxd_libhost_la_LIBADD = outboxd/libejson.la liboutbox/liboutbox.la $(MONGOC_LIBS) $(LTDL_LIBS)

# The configuration file loader, apart so that its test links it alone.
# It checks the URI and the names with liboutbox's own rules.
noinst_LTLIBRARIES += outboxd/libconffile.la
outboxd_libconffile_la_SOURCES = outboxd/conffile.h outboxd/conffile.c \
	outboxd/listen_addr.h outboxd/listen_addr.c
outboxd_libconffile_la_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(MONGOC_CFLAGS)
outboxd_libconffile_la_LIBADD = liboutbox/liboutbox.la $(YAML_LIBS) $(MONGOC_LIBS)

outboxinclude_HEADERS += include/outbox/sink.h
pkgconfig_DATA += outbox-sink.pc
EXTRA_DIST += outbox-sink.pc.in outboxd/README.md outboxd/testdata

# Where sink plugins install; outbox-sink.pc publishes it as plugindir.
sinkdir = $(pkglibdir)/sinks

if HAVE_CMOCKA
# Plugins that are wrong in one way each, for test_plugin_load. -rpath
# makes libtool build them shared although they are never installed.
TESTPLUGIN_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
check_LTLIBRARIES += \
	outboxd/testplugins/good.la outboxd/testplugins/dup_name.la \
	outboxd/testplugins/no_publish.la outboxd/testplugins/no_symbol.la \
	outboxd/testplugins/bad_abi.la outboxd/testplugins/short_struct.la \
	outboxd/testplugins/bad_tag.la
outboxd_testplugins_good_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_good_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_GOOD
outboxd_testplugins_good_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
outboxd_testplugins_dup_name_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_dup_name_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_DUP_NAME
outboxd_testplugins_dup_name_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
outboxd_testplugins_no_publish_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_no_publish_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_NO_PUBLISH
outboxd_testplugins_no_publish_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
outboxd_testplugins_no_symbol_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_no_symbol_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_NO_SYMBOL
outboxd_testplugins_no_symbol_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
outboxd_testplugins_bad_abi_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_bad_abi_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_BAD_ABI
outboxd_testplugins_bad_abi_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
outboxd_testplugins_short_struct_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_short_struct_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_SHORT_STRUCT
outboxd_testplugins_short_struct_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
outboxd_testplugins_bad_tag_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_bad_tag_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_BAD_TAG
outboxd_testplugins_bad_tag_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
# ABI 1.1: the struct checks, publish_some, init and fini.
check_LTLIBRARIES += \
	outboxd/testplugins/small_1_1.la outboxd/testplugins/small_options.la \
	outboxd/testplugins/publish_some_only.la outboxd/testplugins/init_fini.la \
	outboxd/testplugins/init_fatal.la
outboxd_testplugins_small_1_1_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_small_1_1_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_SMALL_1_1
outboxd_testplugins_small_1_1_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
outboxd_testplugins_small_options_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_small_options_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_SMALL_OPTIONS
outboxd_testplugins_small_options_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
outboxd_testplugins_publish_some_only_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_publish_some_only_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_PUBLISH_SOME_ONLY
outboxd_testplugins_publish_some_only_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
outboxd_testplugins_init_fini_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_init_fini_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_INIT_FINI
outboxd_testplugins_init_fini_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
outboxd_testplugins_init_fatal_la_SOURCES = outboxd/testplugins/testplugin.c
outboxd_testplugins_init_fatal_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_INIT_FATAL
outboxd_testplugins_init_fatal_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)

# For the daemon tests: an ABI 1.1 plugin with a check (checker), and a
# plugin built against the ABI 1.0 header, kept in tests/abi/1.0 and found
# as <outbox/sink.h> before include/ (abi10: AM_CPPFLAGS left out).
check_LTLIBRARIES += outboxd/testplugins/checker.la outboxd/testplugins/abi10.la
outboxd_testplugins_checker_la_SOURCES = outboxd/testplugins/checker.c
outboxd_testplugins_checker_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)
outboxd_testplugins_abi10_la_SOURCES = tests/abi/plugin_1_0.c tests/abi/1.0/outbox/sink.h
outboxd_testplugins_abi10_la_CPPFLAGS = -I$(top_srcdir)/tests/abi/1.0
outboxd_testplugins_abi10_la_LDFLAGS = $(TESTPLUGIN_LDFLAGS)

check_PROGRAMS += outboxd/test_conffile
TESTS += outboxd/test_conffile
outboxd_test_conffile_SOURCES = outboxd/test_conffile.c
outboxd_test_conffile_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(MONGOC_CFLAGS)
outboxd_test_conffile_LDADD = outboxd/libconffile.la $(CMOCKA_LIBS)

# Lease managers in one process against the real server (no daemon).
check_PROGRAMS += outboxd/test_lease
TESTS += outboxd/test_lease
outboxd_test_lease_SOURCES = outboxd/test_lease.c
outboxd_test_lease_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
outboxd_test_lease_CFLAGS = $(TEST_CFLAGS)
outboxd_test_lease_LDADD = outboxd/liblease.la $(TEST_LDADD)

check_PROGRAMS += outboxd/test_ring
TESTS += outboxd/test_ring
outboxd_test_ring_SOURCES = outboxd/test_ring.c
outboxd_test_ring_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(MONGOC_CFLAGS)
outboxd_test_ring_LDADD = outboxd/libring.la $(CMOCKA_LIBS)

check_PROGRAMS += outboxd/test_options
TESTS += outboxd/test_options
outboxd_test_options_SOURCES = outboxd/test_options.c
outboxd_test_options_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
outboxd_test_options_LDADD = outboxd/libhost.la outboxd/libconffile.la $(CMOCKA_LIBS)

# The message formats' layouts (issue 19), exactly, without a server.
check_PROGRAMS += outboxd/test_msgformat
TESTS += outboxd/test_msgformat
outboxd_test_msgformat_SOURCES = outboxd/test_msgformat.c
outboxd_test_msgformat_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS) $(CMOCKA_CFLAGS)
outboxd_test_msgformat_LDADD = outboxd/libhost.la $(CMOCKA_LIBS)

check_PROGRAMS += outboxd/test_plugin_load
TESTS += outboxd/test_plugin_load
outboxd_test_plugin_load_SOURCES = outboxd/test_plugin_load.c
outboxd_test_plugin_load_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
outboxd_test_plugin_load_LDADD = outboxd/libhost.la $(CMOCKA_LIBS)
EXTRA_outboxd_test_plugin_load_DEPENDENCIES = $(check_LTLIBRARIES)

# Daemon-level tests: they run the real outboxd (tests/daemonlib.c) against
# the harness's servers.
OUTBOXD_DAEMON_TESTS = outboxd/test_outboxd_start_stop outboxd/test_sink_abi_daemon outboxd/test_replay_daemon
if WITH_KAFKA
if WITH_REDIS
if WITH_NATS
# Every sink's secrets at once: built only when every sink is.
OUTBOXD_DAEMON_TESTS += outboxd/test_secrets_never_printed
endif
endif
endif
check_PROGRAMS += $(OUTBOXD_DAEMON_TESTS)
TESTS += $(OUTBOXD_DAEMON_TESTS)
outboxd_test_secrets_never_printed_SOURCES = outboxd/test_secrets_never_printed.c tests/daemonlib.h tests/daemonlib.c
outboxd_test_secrets_never_printed_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
outboxd_test_secrets_never_printed_CFLAGS = $(TEST_CFLAGS)
outboxd_test_secrets_never_printed_LDADD = $(TEST_LDADD)
EXTRA_outboxd_test_secrets_never_printed_DEPENDENCIES = outboxd/outboxd$(EXEEXT) outboxctl/outboxctl$(EXEEXT) \
	sinks/file/file.la sinks/redis/redis.la sinks/nats/nats.la sinks/kafka/kafka.la \
	outboxd/testplugins/checker.la
outboxd_test_outboxd_start_stop_SOURCES = outboxd/test_outboxd_start_stop.c tests/daemonlib.h tests/daemonlib.c
outboxd_test_outboxd_start_stop_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
outboxd_test_outboxd_start_stop_CFLAGS = $(TEST_CFLAGS)
outboxd_test_outboxd_start_stop_LDADD = $(TEST_LDADD)
EXTRA_outboxd_test_outboxd_start_stop_DEPENDENCIES = outboxd/outboxd$(EXEEXT) sinks/file/file.la
outboxd_test_replay_daemon_SOURCES = outboxd/test_replay_daemon.c tests/daemonlib.h tests/daemonlib.c
outboxd_test_replay_daemon_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
outboxd_test_replay_daemon_CFLAGS = $(TEST_CFLAGS)
outboxd_test_replay_daemon_LDADD = $(TEST_LDADD)
EXTRA_outboxd_test_replay_daemon_DEPENDENCIES = outboxd/outboxd$(EXEEXT) outboxctl/outboxctl$(EXEEXT) sinks/file/file.la
outboxd_test_sink_abi_daemon_SOURCES = outboxd/test_sink_abi_daemon.c tests/daemonlib.h tests/daemonlib.c
outboxd_test_sink_abi_daemon_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
outboxd_test_sink_abi_daemon_CFLAGS = $(TEST_CFLAGS)
outboxd_test_sink_abi_daemon_LDADD = $(TEST_LDADD)
EXTRA_outboxd_test_sink_abi_daemon_DEPENDENCIES = outboxd/outboxd$(EXEEXT) \
	outboxd/testplugins/checker.la outboxd/testplugins/abi10.la
endif
