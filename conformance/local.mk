# conformance/: outbox-sink-conformance, the plugin author's contract checker (conformance/README.md).

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
	conformance/testplugins/flush_early.la
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
endif
