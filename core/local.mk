# core/: liboutbox and outboxctl.
#
# The code lives in a convenience library (liboutbox-core.la) so that tests
# can reach internal functions (outbox__*); liboutbox.la is the same code
# with only the public ^outbox_[a-z] symbols exported.
noinst_LTLIBRARIES += core/liboutbox-core.la
core_liboutbox_core_la_SOURCES = \
	core/internal.h \
	core/error.c \
	core/conf.c \
	core/schema.h core/schema.c \
	core/outbox.c \
	core/put.c \
	core/promote.h core/promote.c \
	core/event.c \
	core/tail.c
core_liboutbox_core_la_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS) $(PCRE2_CFLAGS)
core_liboutbox_core_la_LIBADD = $(MONGOC_LIBS) $(PCRE2_LIBS)

lib_LTLIBRARIES += core/liboutbox.la
core_liboutbox_la_SOURCES =
core_liboutbox_la_LIBADD = core/liboutbox-core.la
# -version-info C:R:A is set in configure.ac (OUTBOX_LT_VERSION_INFO), with
# the rule for changing it beside it.
core_liboutbox_la_LDFLAGS = $(AM_LDFLAGS) -version-info $(OUTBOX_LT_VERSION_INFO) \
	-export-symbols-regex '^outbox_[a-z]'
# An empty source list needs a linker choice.
nodist_EXTRA_core_liboutbox_la_SOURCES = dummy.c

outboxincludedir = $(includedir)/outbox
outboxinclude_HEADERS = include/outbox/outbox.h

bin_PROGRAMS += core/outboxctl
core_outboxctl_SOURCES = core/outboxctl.c
core_outboxctl_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
core_outboxctl_LDADD = core/liboutbox.la $(MONGOC_LIBS)

EXTRA_DIST += core/README.md
