# sinks/nats/: the NATS sink on libnats (sinks/nats/README.md), built when
# configure found libnats (--without-nats turns it off). A libtool module in
# $(sinkdir) (defined by outboxd/local.mk) exporting only outbox_sink_entry.
#
# -z nodelete: outboxd unloads plugins at exit (lt_dlclose). libnats starts
# background threads on first use and is not meant to be unloaded under
# them, and the plugin must not call nats_Close() (other sinks may share
# libnats). A module that is never unloaded keeps libnats mapped too.
if WITH_NATS
sink_LTLIBRARIES += sinks/nats/nats.la
# One file per concern (nats.h says what they share): options, the
# connection, subjects and messages, publishing and acks, the plugin.
sinks_nats_nats_la_SOURCES = sinks/nats/nats.h sinks/nats/options.c \
	sinks/nats/connection.c sinks/nats/subject.c sinks/nats/publish.c sinks/nats/recover.c \
	sinks/nats/plugin.c
sinks_nats_nats_la_CFLAGS = $(AM_CFLAGS) $(NATS_CFLAGS) -fvisibility=hidden
sinks_nats_nats_la_LIBADD = $(NATS_LIBS)
# $(AM_LDFLAGS) first, as per-target LDFLAGS replace it: it carries the
# sanitizer and -pthread flags.
sinks_nats_nats_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -Wl,-z,nodelete -export-symbols-regex '^outbox_sink_entry$$'

if HAVE_CMOCKA
# Both tests start their own nats-server processes (free ports, stores in
# temporary directories) and skip, saying why, when there is no nats-server.
# test_nats_sink drives the built module through tests/sinkhost.h, the
# shared test host on outboxd's own loader and option code (no MongoDB
# needed); test_nats_outboxd runs the real outboxd.
NATS_TEST_CFLAGS = -I$(top_srcdir)/tests $(AM_CFLAGS) $(MONGOC_CFLAGS) $(PCRE2_CFLAGS) $(CMOCKA_CFLAGS) $(NATS_CFLAGS)
NATS_TEST_LDADD = tests/libtestlib.la liboutbox/liboutbox-core.la $(MONGOC_LIBS) $(CMOCKA_LIBS) $(NATS_LIBS)

check_PROGRAMS += sinks/nats/test_nats_sink sinks/nats/test_nats_outboxd
TESTS += sinks/nats/test_nats_sink sinks/nats/test_nats_outboxd

sinks_nats_test_nats_sink_SOURCES = sinks/nats/test_nats_sink.c \
	sinks/nats/natstest.h sinks/nats/natstest.c
sinks_nats_test_nats_sink_CFLAGS = $(NATS_TEST_CFLAGS)
sinks_nats_test_nats_sink_LDADD = $(SINKHOST_LIBS) $(NATS_TEST_LDADD)
EXTRA_sinks_nats_test_nats_sink_DEPENDENCIES = sinks/nats/nats.la

sinks_nats_test_nats_outboxd_SOURCES = sinks/nats/test_nats_outboxd.c \
	sinks/nats/natstest.h sinks/nats/natstest.c \
	tests/daemonlib.c tests/daemonlib.h tests/crashlib.c tests/crashlib.h
sinks_nats_test_nats_outboxd_CFLAGS = $(NATS_TEST_CFLAGS)
sinks_nats_test_nats_outboxd_LDADD = $(NATS_TEST_LDADD)
EXTRA_sinks_nats_test_nats_outboxd_DEPENDENCIES = sinks/nats/nats.la outboxd/outboxd$(EXEEXT)
endif
endif
EXTRA_DIST += sinks/nats/README.md
