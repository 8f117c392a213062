# conformance/: outbox-sink-conformance, the plugin author's contract checker (conformance/README.md).
# Installed with the -dev package: a third party points it at its own .so.
# Its host is tests/sinkhost.c (noinst tests/libsinkhost.la), the one every
# sink test uses, on outboxd's own loader and option code.
bin_PROGRAMS += conformance/outbox-sink-conformance
conformance_outbox_sink_conformance_SOURCES = \
	conformance/outbox-sink-conformance.c conformance/conformance.h \
	conformance/args.c conformance/tap.c conformance/events.c \
	conformance/check_load.c conformance/check_config.c conformance/publish.c \
	conformance/acks.c conformance/stats.c conformance/recover.c conformance/close.c conformance/rules.c
conformance_outbox_sink_conformance_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir) -I$(top_srcdir)/tests
conformance_outbox_sink_conformance_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
conformance_outbox_sink_conformance_LDADD = $(SINKHOST_LIBS) liboutbox/liboutbox.la $(MONGOC_LIBS) -lm
dist_man1_MANS = conformance/outbox-sink-conformance.1
EXTRA_DIST += conformance/README.md

if HAVE_CMOCKA
# Plugins that break one rule of sink.h each (and one that keeps them all),
# for the tool's own test and tests/test_sinkhost. -rpath makes libtool
# build them shared although they are never installed.
CONFORMANCE_TESTPLUGIN_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -rpath /nowhere
CONFORMANCE_TESTPLUGINS = \
	conformance/testplugins/async.la \
	conformance/testplugins/double_ack.la \
	conformance/testplugins/missing_ack.la \
	conformance/testplugins/ack_after_close.la \
	conformance/testplugins/flush_early.la \
	conformance/testplugins/recover_all.la
check_LTLIBRARIES += $(CONFORMANCE_TESTPLUGINS)
conformance_testplugins_async_la_SOURCES = conformance/testplugins/brokenplugin.c
conformance_testplugins_async_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_ASYNC
conformance_testplugins_async_la_LDFLAGS = $(CONFORMANCE_TESTPLUGIN_LDFLAGS)
conformance_testplugins_double_ack_la_SOURCES = conformance/testplugins/brokenplugin.c
conformance_testplugins_double_ack_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_DOUBLE_ACK
conformance_testplugins_double_ack_la_LDFLAGS = $(CONFORMANCE_TESTPLUGIN_LDFLAGS)
conformance_testplugins_missing_ack_la_SOURCES = conformance/testplugins/brokenplugin.c
conformance_testplugins_missing_ack_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_MISSING_ACK
conformance_testplugins_missing_ack_la_LDFLAGS = $(CONFORMANCE_TESTPLUGIN_LDFLAGS)
conformance_testplugins_ack_after_close_la_SOURCES = conformance/testplugins/brokenplugin.c
conformance_testplugins_ack_after_close_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_ACK_AFTER_CLOSE
conformance_testplugins_ack_after_close_la_LDFLAGS = $(CONFORMANCE_TESTPLUGIN_LDFLAGS)
conformance_testplugins_flush_early_la_SOURCES = conformance/testplugins/brokenplugin.c
conformance_testplugins_flush_early_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_FLUSH_EARLY
conformance_testplugins_flush_early_la_LDFLAGS = $(CONFORMANCE_TESTPLUGIN_LDFLAGS)
conformance_testplugins_recover_all_la_SOURCES = conformance/testplugins/brokenplugin.c
conformance_testplugins_recover_all_la_CPPFLAGS = $(AM_CPPFLAGS) -DVARIANT_RECOVER_ALL
conformance_testplugins_recover_all_la_LDFLAGS = $(CONFORMANCE_TESTPLUGIN_LDFLAGS)

# The tool on each of them and on the file sink (a shell test printing TAP;
# `make check` builds the tool and the sinks first, as part of all).
TESTS += conformance/test_conformance.sh
endif
EXTRA_DIST += conformance/test_conformance.sh

# The tool on the Kafka, Redis and NATS sinks with the harness's servers
# (each skipped, saying why, without its server or when configure left the
# sink out).
TESTS += conformance/test_conformance_sinks.sh
EXTRA_DIST += conformance/test_conformance_sinks.sh
