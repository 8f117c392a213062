# examples/: the order example from the README, built and run by the demo.
noinst_PROGRAMS += examples/order_example
examples_order_example_SOURCES = examples/order_example.c
examples_order_example_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
examples_order_example_LDADD = liboutbox/liboutbox.la $(MONGOC_LIBS)
EXTRA_DIST += examples/schemas examples/demo.sh
# examples/prometheus/: alert rules for outboxd's /metrics, judged by promtool.
# (Files, not the folder: a VPATH build's make check writes test_rules.log
# into the build's examples/prometheus, which dist would then copy.)
TESTS += examples/prometheus/test_rules.sh
EXTRA_DIST += examples/prometheus/outboxd.rules.yml examples/prometheus/outboxd.rules.test.yml \
	examples/prometheus/test_rules.sh
# examples/grafana/: a Grafana dashboard of outboxd's /metrics. Its check
# validates the JSON, decodes it strictly with Grafana Labs' Grafana
# Foundation SDK (Go), has promtool parse every query, and holds the metric
# names of the dashboard and of the alert rules to examples/metric-names.txt
# (the one list of outboxd's metric names, which test_metrics_daemon checks
# outboxd declares). Files, not the folder (above).
TESTS += examples/grafana/test_dashboard.sh
EXTRA_DIST += examples/grafana/outboxd.json examples/grafana/README.md \
	examples/grafana/test_dashboard.sh examples/metric-names.txt
