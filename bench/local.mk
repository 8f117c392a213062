# bench/: the benchmark harness (bench/README.md, docs/performance.md).
# `make bench` (or bench/run) starts the harness's servers and runs every
# case with bench/bench.py; the programs below are its parts. They are
# built with the rest of the tree (noinst), so that a change that breaks
# them breaks the build, not the next benchmark run.
noinst_LTLIBRARIES += bench/libbench.la
bench_libbench_la_SOURCES = bench/bench.h bench/common.c
bench_libbench_la_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
bench_libbench_la_LIBADD = $(MONGOC_LIBS)

BENCH_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
BENCH_LDADD = bench/libbench.la $(MONGOC_LIBS)

# Puts a backlog, or a steady rate, of order events through liboutbox.
noinst_PROGRAMS += bench/bench_put
bench_bench_put_SOURCES = bench/bench_put.c
bench_bench_put_CFLAGS = $(BENCH_CFLAGS)
bench_bench_put_LDADD = liboutbox/liboutbox.la $(BENCH_LDADD)

# The read ceiling, and the latency baseline: a plain libmongoc tailable cursor.
noinst_PROGRAMS += bench/bench_read
bench_bench_read_SOURCES = bench/bench_read.c
bench_bench_read_CFLAGS = $(BENCH_CFLAGS)
bench_bench_read_LDADD = $(BENCH_LDADD)

# The sink ceiling: any sink plugin, loaded as outboxd loads it, fed from memory.
noinst_PROGRAMS += bench/bench_sink
bench_bench_sink_SOURCES = bench/bench_sink.c
bench_bench_sink_CFLAGS = $(BENCH_CFLAGS)
bench_bench_sink_LDADD = outboxd/libhost.la $(BENCH_LDADD) $(LTDL_LIBS)

# outboxd's own ceiling (issue 21): the whole daemon (outboxd/libdaemon.la)
# with its events fed from memory instead of the log.
noinst_PROGRAMS += bench/bench_pipeline
bench_bench_pipeline_SOURCES = bench/bench_pipeline.c
bench_bench_pipeline_CFLAGS = $(BENCH_CFLAGS)
bench_bench_pipeline_LDADD = outboxd/libdaemon.la liboutbox/liboutbox.la $(BENCH_LDADD)

if WITH_KAFKA
if WITH_REDIS
if WITH_NATS
# The write ceilings: each broker's own client library, without outboxd.
noinst_PROGRAMS += bench/bench_raw
bench_bench_raw_SOURCES = bench/bench_raw.c
bench_bench_raw_CFLAGS = $(BENCH_CFLAGS) $(RDKAFKA_CFLAGS) $(HIREDIS_CFLAGS) $(NATS_CFLAGS)
bench_bench_raw_LDADD = $(BENCH_LDADD) $(RDKAFKA_LIBS) $(HIREDIS_LIBS) $(NATS_LIBS)

# Destinations: prepare, count, wait for a count, consume for latency.
noinst_PROGRAMS += bench/bench_dest
bench_bench_dest_SOURCES = bench/bench_dest.c
bench_bench_dest_CFLAGS = $(BENCH_CFLAGS) $(RDKAFKA_CFLAGS) $(HIREDIS_CFLAGS) $(NATS_CFLAGS)
bench_bench_dest_LDADD = $(BENCH_LDADD) $(RDKAFKA_LIBS) $(HIREDIS_LIBS) $(NATS_LIBS)

# The naive relay (per event: publish, wait for the ack, write the checkpoint).
noinst_PROGRAMS += bench/bench_naive
bench_bench_naive_SOURCES = bench/bench_naive.c
bench_bench_naive_CFLAGS = $(BENCH_CFLAGS) $(RDKAFKA_CFLAGS)
bench_bench_naive_LDADD = $(BENCH_LDADD) $(RDKAFKA_LIBS)
endif
endif
endif

EXTRA_DIST += bench/README.md bench/run bench/bench.py bench/results

# The whole benchmark, with this build's programs (bench/run builds its own
# tree when run by hand). `make bench BENCH_BASE=REV` names the commit case
# 8 compares against (default: the previous one), BENCH_ARGS adds bench.py
# options (say "--reps 1").
bench: all
	$(SHELL) $(top_srcdir)/bench/run --builddir $(abs_top_builddir) \
	  $${BENCH_BASE:+--base "$$BENCH_BASE"} $${BENCH_ARGS:-}
.PHONY: bench
