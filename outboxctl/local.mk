# outboxctl/: the operator's command line, one file per group of commands.
bin_PROGRAMS += outboxctl/outboxctl
outboxctl_outboxctl_SOURCES = \
	outboxctl/outboxctl.h \
	outboxctl/main.c \
	outboxctl/common.c \
	outboxctl/cmd_log.c \
	outboxctl/cmd_status.c \
	outboxctl/cmd_checkpoint.c \
	outboxctl/cmd_deadletter.c \
	outboxctl/cmd_lease.c \
	outboxctl/cmd_schema.c \
	outboxctl/scrub.c \
	outboxd/secrets.h outboxd/secrets.c \
	outboxd/headroom.h
# outboxd's secrets registry (outboxd/secrets.c) is compiled in: one list
# of what a secret looks like for both programs. So is outboxd's builder and
# parser of N.leases documents (libleasedoc, libbson only): a compound _id
# matches only when built exactly as outboxd builds it. status's log
# headroom is outboxd's formula (headroom.h, inline), so the two agree. Its
# JSON strings are escaped by outboxd's one escaper (libejson, ejson.h).
outboxctl_outboxctl_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/outboxd
outboxctl_outboxctl_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
outboxctl_outboxctl_LDADD = outboxd/libleasedoc.la outboxd/libejson.la liboutbox/liboutbox.la $(MONGOC_LIBS)

if HAVE_CMOCKA
# status's leases and lease release, against the harness's MongoDB.
check_PROGRAMS += outboxctl/test_outboxctl_lease
TESTS += outboxctl/test_outboxctl_lease
outboxctl_test_outboxctl_lease_SOURCES = outboxctl/test_outboxctl_lease.c
outboxctl_test_outboxctl_lease_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests -I$(top_srcdir)/outboxd
outboxctl_test_outboxctl_lease_CFLAGS = $(TEST_CFLAGS)
outboxctl_test_outboxctl_lease_LDADD = outboxd/libleasedoc.la $(TEST_LDADD)
EXTRA_outboxctl_test_outboxctl_lease_DEPENDENCIES = outboxctl/outboxctl$(EXEEXT)
endif
