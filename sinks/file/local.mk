# sinks/file/: the file sink, the reference plugin (sinks/file/README.md).
# A libtool module installed in the plugin directory, $(sinkdir), which
# outboxd/local.mk defines (defining it here too is an automake error); it
# exports only outbox_sink_entry, the one symbol the ABI
# (include/outbox/sink.h) needs.
sink_LTLIBRARIES = sinks/file/file.la
sinks_file_file_la_SOURCES = sinks/file/file.c
sinks_file_file_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
# $(AM_LDFLAGS) first, as per-target LDFLAGS replace it: it carries the
# sanitizer and -pthread flags.
sinks_file_file_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -export-symbols-regex '^outbox_sink_entry$$'
EXTRA_DIST += sinks/file/README.md sinks/file/.gitignore

if HAVE_CMOCKA
# test_file_sink drives the built module through the shared test host
# (tests/sinkhost.h: outboxd's own loader, options and check), which finds
# it under $(abs_top_builddir)/sinks/file (OUTBOX_TEST_BUILDDIR, set by
# tests/local.mk). It defines its own fsync() to watch the plugin's calls,
# hence -export-dynamic: the module's fsync must bind to the program's.
# -no-install: a real program, not libtool's wrapper script (SINKHOST_LIBS
# brings the shared liboutbox.la), so that OUTBOX_TEST_VALGRIND runs
# valgrind on the test itself rather than on the shell.
# test_file_outboxd runs the real outboxd --check; neither needs a server.
FILE_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
FILE_TEST_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS) $(CMOCKA_CFLAGS)
check_PROGRAMS += sinks/file/test_file_sink sinks/file/test_file_outboxd
TESTS += sinks/file/test_file_sink sinks/file/test_file_outboxd

sinks_file_test_file_sink_SOURCES = sinks/file/test_file_sink.c
sinks_file_test_file_sink_CPPFLAGS = $(FILE_TEST_CPPFLAGS)
sinks_file_test_file_sink_CFLAGS = $(FILE_TEST_CFLAGS)
sinks_file_test_file_sink_LDFLAGS = $(AM_LDFLAGS) -export-dynamic -no-install
sinks_file_test_file_sink_LDADD = $(SINKHOST_LIBS) $(TEST_LDADD) -ldl
EXTRA_sinks_file_test_file_sink_DEPENDENCIES = sinks/file/file.la

sinks_file_test_file_outboxd_SOURCES = sinks/file/test_file_outboxd.c tests/daemonlib.h tests/daemonlib.c
sinks_file_test_file_outboxd_CPPFLAGS = $(FILE_TEST_CPPFLAGS)
sinks_file_test_file_outboxd_CFLAGS = $(FILE_TEST_CFLAGS)
sinks_file_test_file_outboxd_LDADD = $(TEST_LDADD)
EXTRA_sinks_file_test_file_outboxd_DEPENDENCIES = sinks/file/file.la outboxd/outboxd$(EXEEXT)
endif
