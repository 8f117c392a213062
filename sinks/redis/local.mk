# sinks/redis/: the Redis Streams sink (sinks/redis/README.md), on hiredis.
# A libtool module installed in the plugin directory, $(sinkdir), which
# outboxd/local.mk defines; it exports only outbox_sink_entry. Built unless
# configure ran with --without-redis (WITH_REDIS, HIREDIS_CFLAGS/LIBS).
EXTRA_DIST += sinks/redis/README.md

if WITH_REDIS
sink_LTLIBRARIES += sinks/redis/redis.la
sinks_redis_redis_la_SOURCES = sinks/redis/redis.c sinks/redis/redis_sink.h \
	sinks/redis/config.c sinks/redis/url.c sinks/redis/connection.c \
	sinks/redis/publish.c sinks/redis/recover.c sinks/redis/stream_name.c
# HIREDIS_SSL_CFLAGS/LIBS: set by configure only when it finds hiredis_ssl
# >= 1.0 (its CFLAGS then carry -DHAVE_HIREDIS_SSL, which compiles the
# rediss:// code); empty otherwise, as with Debian 12's hiredis 0.14.
sinks_redis_redis_la_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS) $(HIREDIS_SSL_CFLAGS) -fvisibility=hidden
sinks_redis_redis_la_LIBADD = $(HIREDIS_SSL_LIBS) $(HIREDIS_LIBS)
# $(AM_LDFLAGS) first, as per-target LDFLAGS replace it: it carries the
# sanitizer and -pthread flags.
sinks_redis_redis_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -export-symbols-regex '^outbox_sink_entry$$'

if HAVE_CMOCKA
# Both tests start their own redis-server processes (each on a free port,
# in a temporary directory) and skip, saying why, when redis-server is not
# installed. test_redis_sink loads the built module through tests/sinkhost.h
# (outboxd's own loader and option code: $(SINKHOST_LIBS)), with a scripted
# fake server for the reply-to-ack mapping; it needs no MongoDB. test_redis_outboxd runs the real outboxd against MongoDB (the
# harness's server) and the test's redis-servers. -I tests/: testlib.h and
# daemonlib.h.
REDIS_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
REDIS_TEST_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS) $(PCRE2_CFLAGS) $(CMOCKA_CFLAGS) $(HIREDIS_CFLAGS)
REDIS_TEST_LDADD = tests/libtestlib.la liboutbox/liboutbox-core.la $(MONGOC_LIBS) $(CMOCKA_LIBS) $(HIREDIS_LIBS)

check_PROGRAMS += sinks/redis/test_redis_sink sinks/redis/test_redis_outboxd
TESTS += sinks/redis/test_redis_sink sinks/redis/test_redis_outboxd

sinks_redis_test_redis_sink_SOURCES = sinks/redis/test_redis_sink.c \
	sinks/redis/redis_testlib.h sinks/redis/redis_testlib.c
sinks_redis_test_redis_sink_CPPFLAGS = $(REDIS_TEST_CPPFLAGS)
sinks_redis_test_redis_sink_CFLAGS = $(REDIS_TEST_CFLAGS)
sinks_redis_test_redis_sink_LDADD = $(SINKHOST_LIBS) $(REDIS_TEST_LDADD)
EXTRA_sinks_redis_test_redis_sink_DEPENDENCIES = sinks/redis/redis.la

sinks_redis_test_redis_outboxd_SOURCES = sinks/redis/test_redis_outboxd.c \
	sinks/redis/redis_testlib.h sinks/redis/redis_testlib.c \
	tests/daemonlib.c tests/daemonlib.h tests/crashlib.c tests/crashlib.h
sinks_redis_test_redis_outboxd_CPPFLAGS = $(REDIS_TEST_CPPFLAGS) -I$(top_srcdir)/outboxd
sinks_redis_test_redis_outboxd_CFLAGS = $(REDIS_TEST_CFLAGS)
sinks_redis_test_redis_outboxd_LDADD = outboxd/libejson.la $(REDIS_TEST_LDADD)
# The plugin, outboxd and outboxctl (status, read for secrets) must be
# built before the test runs.
EXTRA_sinks_redis_test_redis_outboxd_DEPENDENCIES = sinks/redis/redis.la outboxd/outboxd$(EXEEXT) \
	outboxctl/outboxctl$(EXEEXT)
endif
endif
