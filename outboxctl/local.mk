# outboxctl/: the operator's command line, one file per group of commands.
bin_PROGRAMS += outboxctl/outboxctl
outboxctl_outboxctl_SOURCES = \
	outboxctl/outboxctl.h \
	outboxctl/main.c \
	outboxctl/common.c \
	outboxctl/cmd_log.c \
	outboxctl/cmd_status.c \
	outboxctl/cmd_checkpoint.c \
	outboxctl/cmd_deadletter.c
outboxctl_outboxctl_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
outboxctl_outboxctl_LDADD = liboutbox/liboutbox.la $(MONGOC_LIBS)
