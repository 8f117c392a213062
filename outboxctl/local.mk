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
	outboxctl/scrub.c \
	outboxd/secrets.h outboxd/secrets.c
# outboxd's secrets registry (outboxd/secrets.c) is compiled in: one list
# of what a secret looks like for both programs.
outboxctl_outboxctl_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/outboxd
outboxctl_outboxctl_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
outboxctl_outboxctl_LDADD = liboutbox/liboutbox.la $(MONGOC_LIBS)
