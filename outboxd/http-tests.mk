# outboxd/http-tests.mk: the HTTP endpoint (issue 15; outboxd/http.h,
# docs/metrics.md) against a real outboxd, judged by curl and promtool.
if HAVE_CMOCKA
check_PROGRAMS += outboxd/test_http_daemon
TESTS += outboxd/test_http_daemon
outboxd_test_http_daemon_SOURCES = outboxd/test_http_daemon.c tests/daemonlib.h tests/daemonlib.c \
	tests/httplib.h tests/httplib.c
outboxd_test_http_daemon_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
outboxd_test_http_daemon_CFLAGS = $(TEST_CFLAGS)
outboxd_test_http_daemon_LDADD = $(TEST_LDADD)
EXTRA_outboxd_test_http_daemon_DEPENDENCIES = outboxd/outboxd$(EXEEXT) sinks/file/file.la
endif

# The survey of the log (lag, headroom, its warning, the log's figures) and
# the watchdog of outboxd's own threads, through /metrics and /healthz.
if HAVE_CMOCKA
check_PROGRAMS += outboxd/test_metrics_daemon
TESTS += outboxd/test_metrics_daemon
outboxd_test_metrics_daemon_SOURCES = outboxd/test_metrics_daemon.c tests/daemonlib.h tests/daemonlib.c \
	tests/httplib.h tests/httplib.c tests/tcp_proxy.h tests/tcp_proxy.c
outboxd_test_metrics_daemon_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
outboxd_test_metrics_daemon_CFLAGS = $(TEST_CFLAGS)
outboxd_test_metrics_daemon_LDADD = $(TEST_LDADD) -lm
EXTRA_outboxd_test_metrics_daemon_DEPENDENCIES = outboxd/outboxd$(EXEEXT) sinks/file/file.la
endif
