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
# The test dlopen()s the built module from $(abs_top_builddir)/sinks/file/.libs
# (OUTBOX_TEST_BUILDDIR, set by tests/local.mk), as outboxd would. It
# defines its own fsync() to watch the plugin's calls, hence
# -export-dynamic: the module's fsync must bind to the program's.
check_PROGRAMS += sinks/file/test_file_sink
TESTS += sinks/file/test_file_sink
sinks_file_test_file_sink_SOURCES = sinks/file/test_file_sink.c
sinks_file_test_file_sink_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
sinks_file_test_file_sink_LDFLAGS = $(AM_LDFLAGS) -export-dynamic
sinks_file_test_file_sink_LDADD = $(CMOCKA_LIBS) -ldl
# The module must be built before its test runs.
EXTRA_sinks_file_test_file_sink_DEPENDENCIES = sinks/file/file.la
endif
