# liboutbox/: liboutbox and outboxctl.
#
# The code lives in a convenience library (liboutbox-core.la) so that tests
# can reach internal functions (outbox__*); liboutbox.la is the same code
# with only the public ^outbox_[a-z] symbols exported.
noinst_LTLIBRARIES += liboutbox/liboutbox-core.la
liboutbox_liboutbox_core_la_SOURCES = \
	liboutbox/internal.h \
	liboutbox/error.c \
	liboutbox/conf.c \
	liboutbox/schema.h liboutbox/schema.c \
	liboutbox/schema_store.c \
	liboutbox/outbox.c \
	liboutbox/put.c \
	liboutbox/promote.h liboutbox/promote.c \
	liboutbox/promoter.c \
	liboutbox/transaction.c \
	liboutbox/event.c \
	liboutbox/redact.c \
	liboutbox/tail.c
liboutbox_liboutbox_core_la_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS) $(PCRE2_CFLAGS)
liboutbox_liboutbox_core_la_LIBADD = $(MONGOC_LIBS) $(PCRE2_LIBS)

lib_LTLIBRARIES += liboutbox/liboutbox.la
liboutbox_liboutbox_la_SOURCES =
liboutbox_liboutbox_la_LIBADD = liboutbox/liboutbox-core.la
# -version-info C:R:A is set in configure.ac (OUTBOX_LT_VERSION_INFO), with
# the rule for changing it beside it.
liboutbox_liboutbox_la_LDFLAGS = $(AM_LDFLAGS) -version-info $(OUTBOX_LT_VERSION_INFO) \
	-export-symbols-regex '^outbox_[a-z]'
# An empty source list needs a linker choice.
nodist_EXTRA_liboutbox_liboutbox_la_SOURCES = dummy.c

outboxincludedir = $(includedir)/outbox
outboxinclude_HEADERS = include/outbox/outbox.h

EXTRA_DIST += liboutbox/README.md
