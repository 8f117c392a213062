# outboxctl/: the operator's command line.
bin_PROGRAMS += outboxctl/outboxctl
outboxctl_outboxctl_SOURCES = outboxctl/outboxctl.c
outboxctl_outboxctl_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
outboxctl_outboxctl_LDADD = liboutbox/liboutbox.la $(MONGOC_LIBS)

